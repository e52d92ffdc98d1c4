"""A Li salt dissolved in a polymer layer of an interface cell (e.g. PEO-LiTFSI at EO:Li = 16).

The layer is sized so that chains *and* salt together have the target mass
density (the polymer's experimental density unless ``density_g_per_cm3`` is
given, as for the salted bulk melt of :func:`aseimd.build.polymer.build_melt`):

1. the number of chains ``n`` solves ``rho V = n (m_chain + s_chain / ratio * m_salt)``,
   with ``s_chain`` the coordinating sites of one chain counted on the force-field
   templates (PEO: every O is an ether O; PAN: the nitrile N), ``ratio`` the sites per
   Li+ (``eo_per_li`` for PEO, ``an_per_li`` for PAN);
2. the chains are grown by the polymer layer engine of :mod:`aseimd.build.polymer`
   (:func:`~aseimd.build.polymer.grow_chains`: self-avoiding walks in a growth layer
   ``1 / fraction`` times thicker than the final one), not yet relaxed;
3. ``round(n_sites / ratio)`` cations and as many anions (the salt is 1:1, so the layer
   stays neutral) are inserted one by one at random positions and orientations into
   the free volume of the grown layer: a candidate is kept when no atom of it is closer
   than :data:`INSERT_MIN_NM` to any atom already there (a cell list of the grown
   chains, updated as ions are accepted; no all-pairs matrix); where no place is found
   in :data:`INSERT_TRIES` tries the distance steps down the :data:`INSERT_MIN_NM` ladder;
   steps 2 and 3 form one attempt at a start density ``fraction`` of the target: where the
   chains or the ions find no room, both are grown again in the looser start layers of
   :data:`aseimd.build.polymer.GROWTH_DENSITY_FALLBACKS` (0.5, then 0.35, 0.25 of the final
   density; the same code as the neat layers, :func:`~aseimd.build.polymer.grow_with_fallbacks`),
   and build.json's ``growth.growth_density_fraction`` records the one used;
4. chains and ions are relaxed together (:func:`aseimd.build.relax.relax_cell`: soft-core
   start, compression to the layer thickness, then the full force field) between the
   layer's walls, with the chirality restraint on every stereocentre of the chains (PAN's
   tacticity survives the soft core), and the result is checked: every atom inside ``0 <= z <= thickness``,
   the nearest non-bonded pair (:func:`aseimd.build.geometry.closest_nonbonded_pair`)
   at least :data:`MIN_PAIR_NM`.

Salts in PDMS (a non-polar polymer that does not dissolve Li salts) and in
Li-Nafion (a single-ion conductor whose Li+ counter-ions are built with it) are
refused.  The real density of a salted polymer is higher than the neat one
(PEO + LiTFSI, r = 0.06, 363 K: 1.230 g/cm3 vs the PEO melt's 1.073-1.080 g/cm3 at
353 K, ../shared/REFERENCE_DATA.md), so a layer sized at the neat density starts a
little dilute; the z-only NPT stage of the interface protocol compresses it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from aseimd.errors import BuildError, SpecError

#: Nearest distances (nm) tried, in turn, between an inserted ion's atoms and every atom already placed.
INSERT_MIN_NM = (0.22, 0.19, 0.16, 0.13)
#: Random positions and orientations tried per ion and distance of the ladder.
INSERT_TRIES = 3000
#: Distance of every inserted atom from the layer's faces, nm (inside the relaxation walls).
FACE_MARGIN_NM = 0.1
#: Smallest non-bonded pair accepted after the relaxation, nm.
MIN_PAIR_NM = 0.1


@dataclass(frozen=True)
class SaltHost:
    """How a polymer hosts a salt: the ratio key of the spec and the coordinating site it counts.

    Attributes
    ----------
    ratio_key : str
        Spec key of the ratio of sites to Li+ (``eo_per_li``).
    site_element : str
        Element of the coordinating site counted on the chain's templates.
    site_label : str
        What the site is, for messages and provenance.
    default_ratio : float or None
        Ratio used when only a salt is given (None: the ratio is required).
    """

    ratio_key: str
    site_element: str
    site_label: str
    default_ratio: float | None


#: Polymers that take a salt in their layer. PEO: EO:Li = 16 is the field's usual composition
#: (r = Li/EO = 0.0625, as the bulk melt builder's default); PAN: AN:Li has no common default.
SALT_HOSTS = {
    "PEO": SaltHost("eo_per_li", "O", "ether O", 16.0),
    "PAN": SaltHost("an_per_li", "N", "nitrile N", None),
}
#: Why a salt is refused in the other polymers.
NO_SALT_REASON = {
    "PDMS": "PDMS is non-polar and does not dissolve Li salts",
    "LiNafion": "Li-Nafion is a single-ion conductor and already carries its Li+ counter-ions",
}
#: Every ratio key (for spec validation).
RATIO_KEYS = tuple(sorted({h.ratio_key for h in SALT_HOSTS.values()}))
#: Allowed range of any sites-per-Li+ ratio (below 1 there would be more Li+ than coordinating sites).
RATIO_RANGE = (1.0, 10000.0)


@dataclass(frozen=True)
class LayerSalt:
    """A validated salt of a polymer layer.

    Attributes
    ----------
    salt : str
        Salt name as in :data:`aseimd.species.SALTS` (``"LiTFSI"``).
    ratio : float
        Coordinating sites per Li+ (EO:Li for PEO).
    host : SaltHost
    """

    salt: str
    ratio: float
    host: SaltHost


def validate_layer_salt(polymer_name: str, salt, ratios: dict) -> LayerSalt | None:
    """Check a polymer layer's salt options; one-line :class:`SpecError` on any problem.

    Parameters
    ----------
    polymer_name : str
        Canonical polymer name (``PEO``, ``PAN``, ``PDMS``, ``LiNafion``).
    salt : str or None
        The ``salt`` key of the polymer block.
    ratios : dict
        The ratio keys given (``{"eo_per_li": 16}``), None values left out.

    Returns
    -------
    LayerSalt or None
        None when no salt and no ratio is given.
    """
    from aseimd.species import SALTS, get_salt

    given = {k: v for k, v in ratios.items() if v is not None}
    if salt is None:
        if given:
            key = next(iter(given))
            raise SpecError(f"polymer.{key} given without polymer.salt; allowed: polymer.salt "
                            f"({', '.join(SALTS)}) with it, or neither")
        return None
    if not isinstance(salt, str) or not salt.strip():
        raise SpecError(f"polymer.salt {salt!r} not allowed; allowed: {', '.join(SALTS)}")
    if polymer_name in NO_SALT_REASON:
        raise SpecError(f"polymer.salt {salt!r} not allowed for {polymer_name} ({NO_SALT_REASON[polymer_name]}); "
                        f"salts are available in {', '.join(SALT_HOSTS)} layers")
    host = SALT_HOSTS.get(polymer_name)
    if host is None:  # pragma: no cover - a polymer added to the catalogue without a salt rule
        raise SpecError(f"polymer.salt not available for {polymer_name}; allowed in {', '.join(SALT_HOSTS)}")
    try:
        get_salt(salt)
    except BuildError:
        raise SpecError(f"polymer.salt {salt!r} unknown; allowed: {', '.join(SALTS)}") from None
    canonical = next(s for s in SALTS if s.lower() == salt.strip().lower())
    for key in given:
        if key != host.ratio_key:
            raise SpecError(f"polymer.{key} does not apply to {polymer_name}; allowed: polymer.{host.ratio_key} "
                            f"({host.site_label} per Li+)")
    value = given.get(host.ratio_key, host.default_ratio)
    if value is None:
        raise SpecError(f"polymer.salt {canonical!r} in {polymer_name} needs polymer.{host.ratio_key} "
                        f"({host.site_label} per Li+, e.g. 8)")
    lo, hi = RATIO_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (lo <= value <= hi):
        raise SpecError(f"polymer.{host.ratio_key} {value!r} impossible; allowed: {lo:g} to {hi:g} "
                        f"({host.site_label} per Li+)")
    return LayerSalt(canonical, float(value), host)


def _sites_and_mass(spec, seed: int) -> tuple[int, float]:
    """Coordinating sites and molar mass (g/mol) of one chain of ``spec``, from the force-field templates."""
    from aseimd.build.polymer import chain_sequence
    from aseimd.forcefield.loader import residue_templates
    from aseimd.species import get_species

    host = SALT_HOSTS[spec.polymer.name]
    templates = residue_templates()
    seq = chain_sequence(spec, np.random.default_rng(seed))
    sites = sum(sum(1 for a in templates[r.species].atoms if a.element == host.site_element) for r in seq)
    mass = sum(get_species(r.species).molar_mass_g_per_mol for r in seq)
    return sites, mass


def _count_sites(topology, element: str, n_chain_atoms: int) -> int:
    return sum(1 for a in topology.atoms() if a.index < n_chain_atoms and a.element is not None
               and a.element.symbol == element)


class _PointGrid:
    """Atoms binned into cells of width >= ``width_nm`` (periodic in x and y) for "anything near?" queries.

    The cell list of the insertion: built once on the grown chains, updated as each ion is
    accepted; a query compares a candidate's atoms only with the atoms of the 27 cells
    around each of them (no all-pairs matrix).
    """

    def __init__(self, positions_nm: np.ndarray, box_nm: np.ndarray, width_nm: float):
        self.box = np.asarray(box_nm, dtype=float)
        self.n = np.maximum(1, np.floor(self.box / width_nm).astype(int))
        self.cells: dict[tuple[int, int, int], list[np.ndarray]] = {}
        self.add(np.asarray(positions_nm, dtype=float))

    def _cell(self, xyz: np.ndarray) -> np.ndarray:
        c = np.floor(xyz / self.box * self.n).astype(int)
        c[:, :2] %= self.n[:2]
        return c

    def add(self, xyz: np.ndarray) -> None:
        """Add atoms at ``xyz`` (shape=(n, 3), nm)."""
        for key, p in zip(map(tuple, self._cell(xyz)), xyz):
            self.cells.setdefault(key, []).append(p)

    def near(self, xyz: np.ndarray, r_nm: float) -> bool:
        """True if any stored atom is closer than ``r_nm`` (<= the cell width) to any point of ``xyz``."""
        nx, ny, _ = self.n
        offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
        for p, (i, j, k) in zip(xyz, self._cell(xyz)):
            keys = {((i + a) % nx, (j + b) % ny, k + c) for a, b, c in offsets}
            pts = [q for key in keys for q in self.cells.get(key, ())]
            if not pts:
                continue
            d = np.asarray(pts) - p
            d[:, :2] -= self.box[:2] * np.round(d[:, :2] / self.box[:2])
            if np.any(np.einsum("ij,ij->i", d, d) < r_nm * r_nm):
                return True
        return False


def _random_rotation(rng) -> np.ndarray:
    """A uniformly random rotation matrix (from a random unit quaternion), shape=(3, 3)."""
    q = rng.normal(size=4)
    a, b, c, d = q / np.linalg.norm(q)
    return np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                     [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                     [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]])


def insert_ions(positions_nm: np.ndarray, box_nm, molecules, rng, *, tries: int = INSERT_TRIES):
    """Insert rigid ions at random positions and orientations into the free volume of a layer.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_atoms, 3), dtype=float
        Atoms already there (grown chains), nm; x and y periodic, the layer is
        ``0 <= z <= box_nm[2]``.
    box_nm : sequence of 3 float
        ``(x, y, thickness)`` in nm.
    molecules : list of (numpy.ndarray shape=(n_i, 3), int)
        Each ion's rigid geometry (nm) and how many copies, inserted in this order.
    rng : numpy.random.Generator
    tries : int
        Random placements per ion and rung of the :data:`INSERT_MIN_NM` ladder.

    Returns
    -------
    xyz : numpy.ndarray, shape=(sum n_i * count_i, 3)
        The inserted atoms in insertion order, every atom inside
        ``FACE_MARGIN_NM <= z <= thickness - FACE_MARGIN_NM`` and at least the
        distance it was accepted at from every other atom.
    stats : dict
        ``min_distance_nm_used`` (per rung, how many ions), ``tries``.

    Raises
    ------
    BuildError
        An ion found no place at the last rung.
    """
    box = np.asarray(box_nm, dtype=float)
    grid = _PointGrid(np.asarray(positions_nm, dtype=float).reshape(-1, 3), box, max(INSERT_MIN_NM))
    out, used_rungs, n_tries = [], {}, 0
    for geometry, count in molecules:
        centred = np.asarray(geometry, dtype=float) - np.asarray(geometry, dtype=float).mean(axis=0)
        for k in range(count):
            placed = None
            for dmin in INSERT_MIN_NM:
                for _ in range(tries):
                    n_tries += 1
                    xyz = centred @ _random_rotation(rng).T
                    lo = FACE_MARGIN_NM - xyz[:, 2].min()
                    hi = box[2] - FACE_MARGIN_NM - xyz[:, 2].max()
                    if hi < lo:
                        continue
                    xyz = xyz + np.array([rng.random() * box[0], rng.random() * box[1], lo + rng.random() * (hi - lo)])
                    if not grid.near(xyz, dmin):
                        placed = xyz
                        break
                if placed is not None:
                    used_rungs[dmin] = used_rungs.get(dmin, 0) + 1
                    break
            if placed is None:
                raise BuildError(f"no room for ion {k + 1} of {count} ({len(centred)} atoms) in the "
                                 f"{box[0]:.2f} x {box[1]:.2f} x {box[2]:.2f} nm layer at {min(INSERT_MIN_NM)} nm "
                                 f"from every atom; use fewer ions (a higher sites-per-Li+ ratio) or a lower density")
            grid.add(placed)
            out.append(placed)
    xyz = np.concatenate(out) if out else np.zeros((0, 3))
    return xyz, {"min_distance_nm_used": {f"{d:g}": n for d, n in sorted(used_rungs.items(), reverse=True)},
                 "tries": int(n_tries), "ladder_nm": list(INSERT_MIN_NM)}


def build_salted_layer(spec, layer_salt: LayerSalt, *, box_xy_nm, thickness_nm: float,
                       density_g_per_cm3: float | None = None, temperature_K: float = 298.15,
                       seed: int = 0):
    """A polymer layer with a dissolved salt (see the module docstring for the recipe).

    Parameters
    ----------
    spec : aseimd.build.polymer.PolymerSpec
        ``n_chains`` None: chains from the density with the salt's mass included.
    layer_salt : LayerSalt
    box_xy_nm : (float, float)
        Lateral box edges, nm.
    thickness_nm : float
        Layer thickness, nm.
    density_g_per_cm3 : float, optional
        Density of chains + salt (default: the neat polymer's experimental density).
    temperature_K : float
    seed : int

    Returns
    -------
    Cell
        As :func:`aseimd.build.polymer.build_polymer_layer`, ions after the chains;
        provenance ``salt`` (pairs, sites, requested and achieved ratio, insertion).

    Raises
    ------
    SpecError, BuildError
        Bad density; a layer too small for one chain or one ion pair; no room for the ions.
    """
    from aseimd.build.polymer import MIN_LAYER_NM, _check_seed
    from aseimd.species import get_salt

    seed = _check_seed(seed)
    poly = spec.polymer
    if poly.name not in SALT_HOSTS:
        raise SpecError(f"salt not available for {poly.name}; allowed in {', '.join(SALT_HOSTS)}")
    bx, by = (float(v) for v in box_xy_nm)
    volume_nm3 = bx * by * float(thickness_nm)
    sites, m_chain = _sites_and_mass(spec, seed)
    cation, anion = get_salt(layer_salt.salt)
    m_pair = cation.molar_mass_g_per_mol + anion.molar_mass_g_per_mol
    what = f"a {bx:g} x {by:g} x {thickness_nm:g} nm layer"
    if spec.n_chains is None:
        rho = poly.density_g_per_cm3 if density_g_per_cm3 is None else float(density_g_per_cm3)
        if not (0.05 < rho < 5.0):
            raise SpecError(f"density_g_per_cm3 {density_g_per_cm3!r} not allowed; allowed: 0.05 to 5")
        per_chain = m_chain + sites / layer_salt.ratio * m_pair
        n_chains = int(round(rho * volume_nm3 * 1e-21 * 6.02214076e23 / per_chain))
        if n_chains < 1:
            raise BuildError(f"{what} ({volume_nm3:.2f} nm3) is too small for one {poly.name} chain with its "
                             f"{layer_salt.salt}; use a thicker or wider layer or shorter chains")
        spec = replace(spec, n_chains=n_chains)
    elif density_g_per_cm3 is not None:
        raise SpecError("give n_chains or density_g_per_cm3, not both")
    else:
        rho = spec.n_chains * (m_chain + sites / layer_salt.ratio * m_pair) / 6.02214076e23 / (volume_nm3 * 1e-21)
        if rho > 1.3 * poly.density_g_per_cm3:
            raise BuildError(f"{spec.n_chains} chains with their {layer_salt.salt} in {what} would be {rho:.2f} "
                             f"g/cm3, above 1.3 x the {poly.name} density {poly.density_g_per_cm3}; use fewer chains")
    n_sites = spec.n_chains * sites
    n_pairs = int(round(n_sites / layer_salt.ratio))
    if n_pairs < 1:
        raise BuildError(f"{what} holds {n_sites} {layer_salt.host.site_label}: fewer than one {layer_salt.salt} pair "
                         f"at {layer_salt.host.ratio_key} {layer_salt.ratio:g}; use a lower "
                         f"{layer_salt.host.ratio_key} or a larger layer")
    if not (thickness_nm >= MIN_LAYER_NM):
        raise BuildError(f"thickness_nm {thickness_nm!r} is too thin for polymer chains; allowed: >= {MIN_LAYER_NM} nm")
    return _grow_insert_relax(spec, layer_salt, n_pairs, final_box=np.array([bx, by, float(thickness_nm)]),
                              rho_target=rho, temperature_K=temperature_K, seed=seed)


def _grow_insert_relax(spec, layer_salt: LayerSalt, n_pairs: int, *, final_box: np.ndarray, rho_target: float,
                       temperature_K: float, seed: int):
    """Grow the chains, insert the ions into the grown layer (both at one start density, looser ones
    if either fails), relax both keeping every stereocentre, check, record."""
    from aseimd.build.cell import Cell, append_copies
    from aseimd.build.geometry import closest_nonbonded_pair
    from aseimd.build.molecule import molecule
    from aseimd.build.polymer import _hydrogens_next_to_their_atom, _provenance, grow_chains, relax_and_record
    from aseimd.species import get_salt

    poly = spec.polymer
    thickness = float(final_box[2])
    cation, anion = get_salt(layer_salt.salt)
    mols = [(molecule(cation, seed=seed), n_pairs), (molecule(anion, seed=seed), n_pairs)]
    ion_rng = np.random.default_rng(seed + 104729)  # one stream for every attempt's insertion

    def insert_into(grown):
        """The salt into the free volume of one attempt's grown layer (appended to it)."""
        t0 = time.perf_counter()
        wrapped = np.array(grown.positions_nm, dtype=float)
        wrapped[:, :2] = np.mod(wrapped[:, :2], grown.start_box_nm[:2])
        ions_xyz, insertion = insert_ions(wrapped, grown.start_box_nm, [(m.positions_nm, n) for m, n in mols],
                                          ion_rng)
        insertion["seconds"] = round(time.perf_counter() - t0, 3)
        for mol, count in mols:
            append_copies(grown.topology, mol.topology, count)
        grown.positions_nm = np.concatenate([grown.positions_nm, ions_xyz])  # the chains stay whole
        return insertion

    grown = grow_chains(spec, final_box=final_box, layer=True, n_chains=spec.n_chains, temperature_K=temperature_K,
                        seed=seed, after_growth=insert_into)
    top, n_chain_atoms = grown.topology, grown.n_chain_atoms
    pos, info = relax_and_record(spec, grown, final_box=final_box, layer=True)
    pos[:, :2] = np.mod(pos[:, :2], final_box[:2])
    _hydrogens_next_to_their_atom(top, pos, final_box[:2])
    if np.any(pos[:, 2] < 0) or np.any(pos[:, 2] > thickness):
        raise BuildError(f"relaxed salted {poly.name} layer leaves the slab (z from {pos[:, 2].min():.3f} to "
                         f"{pos[:, 2].max():.3f} nm for thickness {thickness:g}); use a thicker layer, fewer chains "
                         f"or a higher {layer_salt.host.ratio_key}")
    pair = closest_nonbonded_pair(top, pos, final_box, (True, True, False), search_nm=0.3)
    nearest = float("inf") if pair is None else pair.distance_nm
    if nearest < MIN_PAIR_NM:
        raise BuildError(f"relaxed salted {poly.name} layer keeps atoms {pair.i} and {pair.j} {nearest:.3f} nm "
                         f"apart (< {MIN_PAIR_NM} nm); use a higher {layer_salt.host.ratio_key}")
    n_sites = _count_sites(top, layer_salt.host.site_element, n_chain_atoms)
    prov = _provenance(spec, "layer", spec.n_chains, rho_target, temperature_K, seed, info, final_box, top)
    prov["layer"] = {"box_xy_nm": [float(final_box[0]), float(final_box[1])], "thickness_nm": thickness,
                     "periodic": [True, True, False]}
    prov["salt"] = {
        "salt": layer_salt.salt, "cation": cation.name, "anion": anion.name, "ion_pairs": int(n_pairs),
        "ratio_key": layer_salt.host.ratio_key, "site": layer_salt.host.site_label, "sites": int(n_sites),
        "ratio_requested": layer_salt.ratio, "ratio_achieved": n_sites / n_pairs,
        "li_per_site": n_pairs / n_sites, "insertion": grown.after, "nearest_pair_nm": nearest,
    }
    return Cell(top, pos, final_box.copy(), prov)
