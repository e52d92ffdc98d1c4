"""Polymer layers and melts: PEO, PAN, PDMS, Li-Nafion, grown as self-avoiding chains.

Entry points (pure builders returning a :class:`~aseimd.build.cell.Cell`):

* :func:`build_polymer_layer` -- chains periodic in x and y, every atom at
  ``0 <= z <= thickness_nm``; the polymer film of an interface cell.
* :func:`build_melt` -- a bulk periodic cube, optionally with a salt (LiTFSI at
  EO:Li = 16 in PEO).

Both size the system from a :class:`PolymerSpec` (chain length in repeat units
or g/mol, number of chains or a density), insert salt ions into an expanded
box (layer: a thicker slab), grow the chains around them with
:mod:`aseimd.build.chain_growth`, put counter-ions next to their groups, then compress and minimise with :mod:`aseimd.build.relax`.  The provenance
records polymer, DP, chains, the tacticity (stereo) sequence measured on the
final coordinates, EW (Li-Nafion), density, growth statistics and seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from aseimd.build.cell import Cell, append_copies
from aseimd.errors import BuildError, SpecError
from aseimd.species import Polymer, get_polymer, get_salt, get_species

#: Allowed tacticities.
TACTICITIES = ("atactic", "isotactic", "syndiotactic")
#: Thinnest layer the builder accepts, nm.
MIN_LAYER_NM = 1.0
#: Density during growth as a fraction of the target (compressed afterwards).
GROWTH_DENSITY_FRACTION = 0.5
#: Start densities tried in turn (fractions of the target) when growth finds no room for the last chains.
GROWTH_DENSITY_FALLBACKS = (GROWTH_DENSITY_FRACTION, 0.35, 0.25)
#: Allowed Li-Nafion equivalent weights, g/mol (acid form): one TFE unit per side chain up to 5000.
EW_MAX_G_PER_MOL = 5000.0
_AVOGADRO = 6.02214076e23


@dataclass(frozen=True)
class PolymerSpec:
    """What to build: which polymer, how long, how many chains.

    Parameters
    ----------
    name : str
        ``PEO``, ``PAN``, ``PDMS`` or ``LiNafion`` (aliases accepted).
    n_repeat : int, optional
        Degree of polymerisation: EO units (PEO), acrylonitrile units (PAN),
        Si(CH3)2O units between the trimethylsilyl caps (PDMS), side chains
        (ionic units) per chain (Li-Nafion).
    molar_mass_g_per_mol : float, optional
        Chain molar mass instead of ``n_repeat`` (rounded to whole units).
    n_chains : int, optional
        Number of chains; default from the density and the volume.
    tacticity : str
        ``atactic`` (default), ``isotactic`` or ``syndiotactic`` (polymers with
        backbone stereocentres: PAN, Li-Nafion).
    ew_g_per_mol : float
        Li-Nafion equivalent weight (acid form, g polymer per mol SO3H), sets the
        TFE spacing between side chains; default 1100.
    end_groups : str, optional
        The caps; only each polymer's own (``methyl`` PEO, ``H`` PAN,
        ``trimethylsilyl`` PDMS, ``CF3`` Li-Nafion) is available.
    """

    name: str
    n_repeat: int | None = None
    molar_mass_g_per_mol: float | None = None
    n_chains: int | None = None
    tacticity: str = "atactic"
    ew_g_per_mol: float = 1100.0
    end_groups: str | None = None

    def __post_init__(self) -> None:
        poly = get_polymer(self.name)
        object.__setattr__(self, "name", poly.name)
        if self.n_repeat is not None and self.molar_mass_g_per_mol is not None:
            raise SpecError("give n_repeat or molar_mass_g_per_mol, not both")
        if self.n_repeat is not None and (isinstance(self.n_repeat, bool) or int(self.n_repeat) != self.n_repeat
                                          or self.n_repeat < _min_repeat(poly)):
            raise SpecError(f"n_repeat {self.n_repeat!r} not allowed for {poly.name}; "
                            f"allowed: an integer >= {_min_repeat(poly)}")
        if self.molar_mass_g_per_mol is not None and not (self.molar_mass_g_per_mol > 0):
            raise SpecError(f"molar_mass_g_per_mol {self.molar_mass_g_per_mol!r} not allowed; allowed: > 0")
        if self.n_chains is not None and (isinstance(self.n_chains, bool) or int(self.n_chains) != self.n_chains
                                          or self.n_chains < 1):
            raise SpecError(f"n_chains {self.n_chains!r} not allowed; allowed: an integer >= 1")
        if self.tacticity not in TACTICITIES:
            raise SpecError(f"tacticity {self.tacticity!r} not allowed; allowed: {', '.join(TACTICITIES)}")
        if self.tacticity != "atactic" and not poly.has_stereocentres:
            raise SpecError(f"tacticity {self.tacticity!r} not allowed for {poly.name} (no backbone "
                            f"stereocentres); allowed: atactic")
        if self.end_groups is not None and self.end_groups.lower() != poly.end_groups.lower():
            raise SpecError(f"end_groups {self.end_groups!r} not available for {poly.name}; "
                            f"allowed: {poly.end_groups}")
        if poly.spacer is not None:
            lo = ew_min_g_per_mol(poly)
            if not (lo <= self.ew_g_per_mol <= EW_MAX_G_PER_MOL):
                raise SpecError(f"ew_g_per_mol {self.ew_g_per_mol!r} impossible for {poly.name}; allowed: "
                                f"{lo:.0f} to {EW_MAX_G_PER_MOL:.0f} g/mol (at least one TFE unit per side chain)")

    @property
    def polymer(self) -> Polymer:
        """The polymer definition (:class:`aseimd.species.Polymer`)."""
        return get_polymer(self.name)

    @property
    def dp(self) -> int:
        """Degree of polymerisation actually built."""
        poly = self.polymer
        if self.n_repeat is not None:
            return int(self.n_repeat)
        if self.molar_mass_g_per_mol is None:
            return poly.default_n_repeat
        caps = _mass(poly.head.species) + _mass(poly.tail.species)
        unit = _unit_mass(poly, self.ew_g_per_mol)
        extra = poly.units_in_caps * unit if poly.spacer is None else 0.0
        n = int(round((self.molar_mass_g_per_mol - caps + extra) / unit))
        if n < _min_repeat(poly):
            raise SpecError(f"molar_mass_g_per_mol {self.molar_mass_g_per_mol:g} gives DP {n} for {poly.name}; "
                            f"allowed: at least DP {_min_repeat(poly)} "
                            f"({caps - extra + _min_repeat(poly) * unit:.0f} g/mol)")
        return n


def _min_repeat(poly: Polymer) -> int:
    return max(1, poly.units_in_caps)


def _mass(species: str) -> float:
    return get_species(species).molar_mass_g_per_mol


def ew_min_g_per_mol(poly: Polymer) -> float:
    """Smallest equivalent weight (acid form) with one spacer per charged unit, g/mol."""
    return _mass(poly.repeat.species) + 1.008 + _mass(poly.spacer.species)


def _unit_mass(poly: Polymer, ew: float) -> float:
    """Mass per chemical repeat unit (Li-Nafion: per side chain incl. its TFE share, Li form), g/mol."""
    if poly.spacer is None:
        return _mass(poly.repeat.species)
    return ew - 1.008 + _mass(poly.counter_ion)


def chain_sequence(spec: PolymerSpec, rng) -> list:
    """Residues of one chain (head, repeats/spacers, tail) as :class:`PolymerResidue` objects."""
    poly = spec.polymer
    n = spec.dp
    if poly.spacer is None:
        return [poly.head] + [poly.repeat] * (n - poly.units_in_caps) + [poly.tail]
    # EW = chain mass (acid form) / side chains: the spacers are counted so that the whole chain, its end caps
    # included, has the requested EW (to half a spacer per side chain), and they are spread over the n + 1
    # gaps with half a share at each end (a chain cut from a longer one), at least one between side chains
    caps = _mass(poly.head.species) + _mass(poly.tail.species)
    per_side_chain = _mass(poly.repeat.species) + 1.008
    total = int(round((n * spec.ew_g_per_mol - caps - n * per_side_chain) / _mass(poly.spacer.species)))
    total = max(total, n - 1)
    end = total // (2 * n) if n > 1 else total // 2
    inner_total = total - 2 * end if n > 1 else 0
    inner = np.full(max(n - 1, 0), inner_total // max(n - 1, 1), dtype=int)
    if n > 1:
        inner[rng.permutation(n - 1)[: inner_total - int(inner.sum())]] += 1
    lead, trail = end, total - end - int(inner.sum())
    seq = [poly.head] + [poly.spacer] * lead
    for k in range(n):
        seq.append(poly.repeat)
        if k < n - 1:
            seq += [poly.spacer] * int(inner[k])
    seq += [poly.spacer] * trail + [poly.tail]
    return seq


def tacticity_signs(tacticity: str, n_centres: int, rng) -> np.ndarray:
    """Stereo signs (+1/-1) of the stereocentres of one chain for a tacticity."""
    if tacticity == "isotactic":
        return np.ones(n_centres, dtype=int)
    if tacticity == "syndiotactic":
        return np.where(np.arange(n_centres) % 2 == 0, 1, -1)
    return rng.choice(np.array([1, -1]), size=n_centres)


def dyads(signs) -> str:
    """Dyad sequence ``m`` (meso, same configuration) / ``r`` (racemo) of consecutive stereocentres."""
    s = np.asarray(signs)
    return "".join("m" if a == b else "r" for a, b in zip(s[:-1], s[1:]))


def _chain_mass(seq, poly) -> float:
    m = sum(_mass(r.species) for r in seq)
    if poly.counter_ion:
        m += sum(r.species == poly.repeat.species for r in seq) * _mass(poly.counter_ion)
    return m


def _default_density(poly: Polymer, density):
    if density is None:
        return poly.density_g_per_cm3
    if not (0.05 < density < 5.0):
        raise SpecError(f"density_g_per_cm3 {density!r} not allowed; allowed: 0.05 to 5")
    return float(density)


def start_box_nm(final_box_nm, layer: bool, fraction: float) -> np.ndarray:
    """Box chains are grown in at ``fraction`` of the final density, nm.

    A layer keeps its lateral edges and is ``1 / fraction`` times thicker; a bulk box is a
    cube ``fraction ** (-1/3)`` times larger.  :func:`aseimd.build.relax.relax_cell` compresses
    it back to ``final_box_nm``.
    """
    final = np.asarray(final_box_nm, dtype=float)
    if layer:
        return final * np.array([1.0, 1.0, 1.0 / fraction])
    return final / fraction ** (1.0 / 3.0)


def grow_with_fallbacks(attempt, what: str):
    """Run ``attempt(fraction)`` at each start density of :data:`GROWTH_DENSITY_FALLBACKS` until one works.

    Parameters
    ----------
    attempt : callable
        ``attempt(fraction) -> result``; a :class:`BuildError` means "no room at this start density".
    what : str
        Named in the error when every fraction fails (the polymer).

    Returns
    -------
    result, fraction : float, failures : list of str
        What the first successful attempt returned, its fraction and one line per failed attempt.

    Raises
    ------
    BuildError
        Every fraction failed: the last failure and the fractions tried, in one line.
    """
    failures, last = [], None
    for fraction in GROWTH_DENSITY_FALLBACKS:
        try:
            return attempt(fraction), fraction, failures
        except BuildError as exc:
            failures.append(f"growth at {fraction:g} of the final density failed")
            last = exc
    tried = ", ".join(f"{f:g}" for f in GROWTH_DENSITY_FALLBACKS)
    raise BuildError(f"{what}: {last} (growth tried at {tried} of the final density)")


@dataclass
class GrownChains:
    """Chains (with their counter-ions and any ions grown with them) at one start density, not relaxed.

    Attributes
    ----------
    topology : openmm.app.Topology
        Chains, then counter-ions (Li-Nafion), then the ions given (and what ``after_growth`` appended).
    positions_nm : numpy.ndarray, shape=(n_atoms, 3)
        Unwrapped positions in nm inside ``start_box_nm``.
    start_box_nm : numpy.ndarray, shape=(3,)
        Box (bulk) or (x, y, thickness) (layer) the chains were grown in, nm.
    fraction : float
        Start density as a fraction of the target (one of :data:`GROWTH_DENSITY_FALLBACKS`).
    failures : list of str
        The attempts at denser start boxes that failed.
    n_chain_atoms : int
    blueprints : list of ChainBlueprint
        One per chain, chain order.
    signs_built : list of numpy.ndarray
        Stereo signs built per chain (the requested ones; atactic: the ones the walk took).
    sequences : list of list of PolymerResidue
    n_counter : list of int
        Counter-ions per chain.
    stats : dict
        The grower's counters.
    seconds : float
        Growth wall time (blueprints and every attempt; not ``after_growth``).
    after : object
        What ``after_growth`` returned (None without it).
    """

    topology: object
    positions_nm: np.ndarray
    start_box_nm: np.ndarray
    fraction: float
    failures: list
    n_chain_atoms: int
    blueprints: list
    signs_built: list
    sequences: list
    n_counter: list
    stats: dict
    seconds: float = 0.0
    after: object = None

    def stereocentre_rows(self) -> list:
        """``(centre, prev, next, substituent, sign)`` of every built stereocentre (global atom indices),
        as :func:`aseimd.build.relax.relax_cell` takes them."""
        rows, off = [], 0
        for bp, signs in zip(self.blueprints, self.signs_built):
            bb = [int(a) for a in bp.backbone]
            for (c, s, _), sg in zip(bp.stereocentres, signs):
                k = bb.index(c)
                rows.append((off + c, off + bb[k - 1], off + bb[k + 1], off + s, int(sg)))
            off += bp.n_atoms
        return rows


def _grow_at(spec, bps, seqs, n_counter, final_box, layer, fraction, ions, rng) -> GrownChains:
    """Salt ions, every chain, then the counter-ions, grown in the start box of one density ``fraction``."""
    from openmm import app

    from aseimd.build.chain_growth import ChainGrower, GrowthRegion

    poly = spec.polymer
    start_box = start_box_nm(final_box, layer, fraction)
    region = GrowthRegion(start_box, False, 0.0, float(start_box[2])) if layer else GrowthRegion(start_box, True)
    n_ion_atoms = sum(len(m.positions_nm) * c for m, c in ions)
    n_total = sum(bp.n_atoms for bp in bps) + sum(n_counter) + n_ion_atoms
    grower = ChainGrower(region, n_total, rng)
    positions = np.zeros((n_total, 3))
    # salt ions first, into the empty box (they occupy the last indices); then the chains around them
    ion_offset = n_total - n_ion_atoms
    for mol, count in ions:
        els = [a.element.symbol for a in mol.topology.atoms()]
        for _ in range(count):
            positions[ion_offset:ion_offset + len(els)] = grower.place_rigid(els, mol.positions_nm, ion_offset)
            ion_offset += len(els)
    offset = 0
    signs_built = []
    for bp in bps:
        signs = tacticity_signs(spec.tacticity, len(bp.stereocentres), rng)
        positions[offset:offset + bp.n_atoms] = grower.grow(bp, offset, signs,
                                                           free_stereo=spec.tacticity == "atactic")
        signs_built.append(grower.last_signs.copy())
        offset += bp.n_atoms
    n_chain_atoms = offset
    # counter-ions next to their charged groups
    n_placed = 0
    if poly.counter_ion:
        off = 0
        for bp in bps:
            for ri, res in enumerate(bp.residues):
                if res != poly.repeat.species:
                    continue
                s_atoms = [a for a in range(bp.n_atoms) if bp.residue_of[a] == ri and bp.elements[a] == "S"]
                centre = positions[off + s_atoms[0]]
                positions[offset] = grower.place_near("Li", centre, offset, 0.30, 0.45)
                offset += 1
                n_placed += 1
            off += bp.n_atoms
    # topology in the same order
    top = app.Topology()
    for bp in bps:
        chain = top.addChain()
        atoms = []
        residues = [top.addResidue(name, chain) for name in bp.residues]
        for a in range(bp.n_atoms):
            atoms.append(top.addAtom(bp.names[a], app.Element.getBySymbol(bp.elements[a]), residues[bp.residue_of[a]]))
        for a, b in bp.bonds:
            top.addBond(atoms[int(a)], atoms[int(b)])
    if n_placed:
        sp = get_species(poly.counter_ion)
        chain = top.addChain()
        for _ in range(n_placed):
            res = top.addResidue(sp.residue, chain)
            top.addAtom(sp.residue, app.Element.getBySymbol("Li"), res)
    for mol, count in ions:
        append_copies(top, mol.topology, count)
    return GrownChains(top, positions, start_box, fraction, [], n_chain_atoms, list(bps), signs_built,
                       list(seqs), list(n_counter), dict(grower.stats))


def grow_chains(spec: PolymerSpec, *, final_box: np.ndarray, layer: bool, n_chains: int, temperature_K: float,
                seed: int, ions=None, after_growth=None) -> GrownChains:
    """Grow the chains of a layer or a melt (not relaxed), falling back to looser start boxes.

    Chains are grown at :data:`GROWTH_DENSITY_FRACTION` of the final density; when the last chains
    find no room (bulky repeat units such as PDMS's dimethylsiloxane, many chains per layer), or
    ``after_growth`` fails, everything is grown again, continuing the same random stream, in the
    looser start boxes of :data:`GROWTH_DENSITY_FALLBACKS` (:func:`grow_with_fallbacks`; the
    relaxation compresses any of them to the same final box).

    Parameters
    ----------
    spec : PolymerSpec
    final_box : numpy.ndarray, shape=(3,)
        Final box (bulk) or (x, y, thickness) (layer), nm.
    layer : bool
    n_chains : int
    temperature_K : float
        Temperature of the torsion-state statistics.
    seed : int
    ions : list of (Molecule, int), optional
        Rigid ions placed into the empty start box before the chains (salted melts).
    after_growth : callable, optional
        ``after_growth(grown) -> object`` run on each attempt's grown chains, at the same start
        density (salted layers insert their ions here and append them to ``grown``); a
        :class:`BuildError` from it fails the attempt like a growth failure.  Its result is
        ``GrownChains.after``.

    Returns
    -------
    GrownChains
    """
    from aseimd.build.chain_growth import blueprint
    from aseimd.build.ffgeometry import ff_geometry
    from aseimd.forcefield.loader import residue_templates

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    poly = spec.polymer
    templates = residue_templates()
    missing = {r.species for r in (poly.head, poly.repeat, poly.tail, poly.spacer) if r} - set(templates)
    if missing:
        raise BuildError(f"{poly.name}: no force-field template for residue(s) {', '.join(sorted(missing))}")
    geom = ff_geometry()
    seqs = [chain_sequence(spec, rng) for _ in range(n_chains)]
    # one blueprint per distinct sequence (all chains of PEO, PAN, PDMS share one): the plan, the torsion
    # weights and the excluded pairs are read-only during growth
    cache: dict = {}
    bps = []
    for s in seqs:
        key = tuple(r.species for r in s)
        if key not in cache:
            cache[key] = blueprint(s, templates, geom, temperature_K)
        bps.append(cache[key])
    n_counter = [sum(r.species == poly.repeat.species for r in s) if poly.counter_ion else 0 for s in seqs]
    ions = ions or []
    after_seconds = [0.0]

    def attempt(fraction):
        grown = _grow_at(spec, bps, seqs, n_counter, final_box, layer, fraction, ions, rng)
        if after_growth is not None:
            t = time.perf_counter()
            try:
                grown.after = after_growth(grown)
            finally:
                after_seconds[0] += time.perf_counter() - t
        return grown

    grown, fraction, failures = grow_with_fallbacks(attempt, poly.name)
    grown.failures = failures
    grown.seconds = time.perf_counter() - t0 - after_seconds[0]
    return grown


def relax_and_record(spec: PolymerSpec, grown: GrownChains, *, final_box: np.ndarray, layer: bool,
                     relax: bool = True) -> tuple[np.ndarray, dict]:
    """Relax grown chains to ``final_box`` keeping every stereocentre, measure the stereo, record the growth.

    Returns
    -------
    positions_nm : numpy.ndarray, shape=(n_atoms, 3)
        Relaxed (unwrapped) positions, nm.
    info : dict
        ``growth`` (atoms, seconds, atoms_per_s, the grower's counters, ``growth_density_fraction``,
        ``growth_failures``), ``relax_seconds``, ``sequences``, ``stereo_requested``,
        ``stereo_measured`` (on the returned coordinates), ``counter_ions``, ``chain_masses_g_per_mol``.
    """
    from aseimd.build.chain_growth import stereo_signs_measured
    from aseimd.build.relax import relax_cell

    poly = spec.polymer
    positions = grown.positions_nm
    t1 = time.perf_counter()
    if relax:
        positions = relax_cell(grown.topology, positions, start_box_nm=grown.start_box_nm, final_box_nm=final_box,
                               layer=layer, stereocentres=grown.stereocentre_rows())
    t_relax = time.perf_counter() - t1
    # tacticity measured on the final coordinates (minimum image: wrapped positions are fine too)
    measured, off = [], 0
    for bp in grown.blueprints:
        if bp.stereocentres:
            measured.append(stereo_signs_measured(bp, positions[off:off + bp.n_atoms], final_box).tolist())
        off += bp.n_atoms
    n_chain_atoms = grown.n_chain_atoms
    info = {
        "growth": {"atoms": int(n_chain_atoms), "seconds": round(grown.seconds, 3),
                   "atoms_per_s": round(n_chain_atoms / max(grown.seconds, 1e-9), 1), **grown.stats,
                   "growth_density_fraction": grown.fraction, "growth_failures": list(grown.failures)},
        "relax_seconds": round(t_relax, 3),
        "sequences": [[r.species for r in s] for s in grown.sequences],
        "stereo_requested": [s.tolist() for s in grown.signs_built if len(s)],
        "stereo_measured": measured,
        "counter_ions": int(sum(grown.n_counter)),
        "chain_masses_g_per_mol": [round(_chain_mass(s, poly), 3) for s in grown.sequences],
    }
    return positions, info


def _grow_and_relax(spec: PolymerSpec, *, final_box: np.ndarray, layer: bool, n_chains: int,
                    temperature_K: float, seed: int, ions=None):
    """Shared engine of layers and melts. Returns (topology, positions, provenance pieces)."""
    grown = grow_chains(spec, final_box=final_box, layer=layer, n_chains=n_chains, temperature_K=temperature_K,
                        seed=seed, ions=ions)
    positions, info = relax_and_record(spec, grown, final_box=final_box, layer=layer)
    return grown.topology, positions, info


def _n_chains_for(spec: PolymerSpec, volume_nm3: float, density, what: str, rng_seed: int) -> tuple[int, float]:
    poly = spec.polymer
    seq = chain_sequence(spec, np.random.default_rng(rng_seed))
    m_chain = _chain_mass(seq, poly)
    if spec.n_chains is not None:
        if density is not None:
            raise SpecError("give n_chains or density_g_per_cm3, not both")
        rho = spec.n_chains * m_chain / _AVOGADRO / (volume_nm3 * 1e-21)
        if rho > 1.3 * poly.density_g_per_cm3:
            raise BuildError(f"{spec.n_chains} chains of {m_chain:.0f} g/mol in {what} ({volume_nm3:.2f} nm3) "
                             f"would be {rho:.2f} g/cm3, above 1.3 x the {poly.name} density "
                             f"{poly.density_g_per_cm3}; allowed: at most "
                             f"{int(1.3 * poly.density_g_per_cm3 * volume_nm3 * 1e-21 * _AVOGADRO / m_chain)} chains")
        return int(spec.n_chains), rho
    rho = _default_density(poly, density)
    n = int(round(rho * volume_nm3 * 1e-21 * _AVOGADRO / m_chain))
    if n < 1:
        raise BuildError(f"{what} ({volume_nm3:.2f} nm3) is too small for one {poly.name} chain of "
                         f"{m_chain:.0f} g/mol at {rho:.3f} g/cm3 (needs {m_chain / _AVOGADRO / rho * 1e21:.2f} nm3); "
                         f"use a thicker or wider layer or shorter chains")
    return n, rho


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise SpecError(f"seed {seed!r} not allowed; allowed: a non-negative integer")
    return int(seed)


def build_polymer_layer(spec: PolymerSpec, *, box_xy_nm: tuple[float, float], thickness_nm: float,
                        density_g_per_cm3: float | None = None, temperature_K: float = 298.15,
                        seed: int = 0) -> Cell:
    """A polymer film periodic in x and y, every atom at 0 <= z <= ``thickness_nm``.

    Parameters
    ----------
    spec : PolymerSpec
    box_xy_nm : (float, float)
        Lateral box edges in nm (the interface builder makes them commensurate with the Li lattice).
    thickness_nm : float
        Layer thickness in nm (>= :data:`MIN_LAYER_NM`); ``Cell.box_nm[2]``.
    density_g_per_cm3 : float, optional
        Target density (default: the polymer's experimental density); sets the
        number of chains when ``spec.n_chains`` is None.
    temperature_K : float
        Temperature of the torsion-state statistics.
    seed : int

    Returns
    -------
    Cell
        ``box_nm = (x, y, thickness_nm)``; chains may cross the lateral
        boundaries (atoms wrapped into [0, x) x [0, y), each H kept next to its bonded atom so no X-H constraint straddles an edge); counter-ions (Li-Nafion)
        inside the layer.  Provenance: polymer, DP, chains, tacticity and dyads
        per chain, EW, density, growth statistics, seed.

    Raises
    ------
    SpecError, BuildError
        Bad values; a layer too thin or too small for the chains asked for.
    """
    seed = _check_seed(seed)
    bx, by = (float(v) for v in box_xy_nm)
    if not (bx > 0 and by > 0):
        raise SpecError(f"box_xy_nm {box_xy_nm!r} not allowed; allowed: two positive lengths in nm")
    if not (thickness_nm >= MIN_LAYER_NM):
        raise BuildError(f"thickness_nm {thickness_nm!r} is too thin for polymer chains; "
                         f"allowed: >= {MIN_LAYER_NM} nm")
    final_box = np.array([bx, by, float(thickness_nm)])
    n_chains, rho = _n_chains_for(spec, float(np.prod(final_box)), density_g_per_cm3,
                                  f"a {bx:g} x {by:g} x {thickness_nm:g} nm layer", seed)
    top, pos, info = _grow_and_relax(spec, final_box=final_box, layer=True, n_chains=n_chains,
                                     temperature_K=temperature_K, seed=seed)
    pos[:, :2] = np.mod(pos[:, :2], final_box[:2])
    _hydrogens_next_to_their_atom(top, pos, final_box[:2])
    if np.any(pos[:, 2] < 0) or np.any(pos[:, 2] > thickness_nm):
        raise BuildError(f"relaxed layer leaves the slab (z from {pos[:, 2].min():.3f} to {pos[:, 2].max():.3f} nm "
                         f"for thickness {thickness_nm}); use a thicker layer or fewer chains")
    prov = _provenance(spec, "layer", n_chains, rho, temperature_K, seed, info, final_box, top)
    prov["layer"] = {"box_xy_nm": [bx, by], "thickness_nm": float(thickness_nm), "periodic": [True, True, False]}
    return Cell(top, pos, final_box, prov)


def _hydrogens_next_to_their_atom(topology, pos: np.ndarray, box_xy_nm: np.ndarray) -> None:
    """Put every H at the lateral image nearest its bonded atom (in place).

    Wrapping atoms one by one into [0, x) x [0, y) can split an X-H bond across a
    box edge; bonded forces are periodic and do not mind, but X-H bonds are
    constraints and OpenMM's constraint solvers work on raw coordinates. An H may
    then lie a little outside the box, which OpenMM accepts.
    """
    pairs = []
    for bond in topology.bonds():
        a, b = bond[0], bond[1]
        if b.element is not None and b.element.symbol == "H":
            pairs.append((a.index, b.index))
        elif a.element is not None and a.element.symbol == "H":
            pairs.append((b.index, a.index))
    if not pairs:
        return
    heavy, hyd = np.array(pairs).T
    d = pos[hyd, :2] - pos[heavy, :2]
    pos[hyd, :2] -= np.round(d / box_xy_nm) * box_xy_nm


def build_melt(spec: PolymerSpec, *, density_g_per_cm3: float | None = None, temperature_K: float = 298.15,
               salt: str | None = None, eo_per_li: float | None = None, seed: int = 0) -> Cell:
    """A bulk, cubic, periodic polymer melt, optionally with a dissolved salt.

    Parameters
    ----------
    spec : PolymerSpec
        ``n_chains`` default 8.
    density_g_per_cm3 : float, optional
        Target density (default: the polymer's experimental density, the salt's mass added).
    temperature_K : float
        Temperature of the torsion statistics (and recorded for the run).
    salt : str, optional
        e.g. ``"LiTFSI"``; only with PEO, with ``eo_per_li``.
    eo_per_li : float, optional
        Ether oxygens per Li+ (16 for r = Li/EO = 0.0625); default 16 when a salt is given.
    seed : int

    Returns
    -------
    Cell
    """
    seed = _check_seed(seed)
    if isinstance(temperature_K, bool) or not isinstance(temperature_K, int | float) or not (
            np.isfinite(temperature_K) and temperature_K > 0):
        raise SpecError(f"temperature_K {temperature_K!r} not allowed; allowed: a temperature > 0 K (the torsion "
                        f"statistics of the chain growth are Boltzmann weights at it)")
    poly = spec.polymer
    n_chains = spec.n_chains if spec.n_chains is not None else 8
    rng = np.random.default_rng(seed)
    seq = chain_sequence(spec, rng)
    m_chain = _chain_mass(seq, poly)
    rho = _default_density(poly, density_g_per_cm3)
    ions, salt_info, m_salt = [], None, 0.0
    if salt is None and eo_per_li is not None:
        raise SpecError("eo_per_li given without a salt; allowed: --salt LiTFSI (or another salt) with it")
    if salt is not None:
        if poly.name != "PEO":
            raise SpecError(f"salt {salt!r} not available for {poly.name}; allowed: salts in PEO only")
        ratio = 16.0 if eo_per_li is None else float(eo_per_li)
        if not (ratio >= 1.0):
            raise SpecError(f"eo_per_li {eo_per_li!r} not allowed; allowed: >= 1")
        cation, anion = get_salt(salt)
        n_eo = n_chains * (spec.dp + 1)  # ether O per chain: DP + 1 (methyl caps)
        n_pairs = int(round(n_eo / ratio))
        if n_pairs < 1:  # as for salted layers: not one pair at this ratio, so no ratio near it can be built
            raise BuildError(f"{n_chains} chains of DP {spec.dp} hold {n_eo} ether O: fewer than one {salt} pair at "
                             f"eo_per_li {ratio:g}; use a lower eo_per_li (<= {n_eo}) or more or longer "
                             f"chains")
        from aseimd.build.molecule import molecule

        ions = [(molecule(cation, seed=seed), n_pairs), (molecule(anion, seed=seed), n_pairs)]
        m_salt = n_pairs * (cation.molar_mass_g_per_mol + anion.molar_mass_g_per_mol)
        salt_info = {"salt": salt, "ion_pairs": n_pairs, "eo_per_li_requested": ratio,
                     "eo_per_li_achieved": n_eo / n_pairs, "r_li_per_eo": n_pairs / n_eo}
    mass_g = (n_chains * m_chain + m_salt) / _AVOGADRO
    edge = (mass_g / rho * 1e21) ** (1.0 / 3.0)
    final_box = np.full(3, edge)
    top, pos, info = _grow_and_relax(spec, final_box=final_box, layer=False, n_chains=n_chains,
                                     temperature_K=temperature_K, seed=seed, ions=ions)
    prov = _provenance(spec, "melt", n_chains, rho, temperature_K, seed, info, final_box, top)
    if salt_info:
        prov["salt"] = salt_info
    return Cell(top, pos, final_box, prov)


def _provenance(spec, kind, n_chains, rho, temperature_K, seed, info, box, top) -> dict:
    poly = spec.polymer
    prov = {
        "builder": f"polymer {kind}",
        "polymer": {"name": poly.name, "description": poly.description, "dp": spec.dp,
                    "chains": int(n_chains), "end_groups": poly.end_groups, "tacticity": spec.tacticity,
                    "residues": {"head": poly.head.species, "repeat": poly.repeat.species,
                                 "tail": poly.tail.species,
                                 "spacer": poly.spacer.species if poly.spacer else None}},
        "density_g_per_cm3": {"target": rho,
                              "achieved": float(sum(a.element.mass._value for a in top.atoms()) / _AVOGADRO
                                                / (float(np.prod(box)) * 1e-21))},
        "temperature_K": float(temperature_K),
        "seed": int(seed),
        **info,
    }
    prov["polymer"]["tacticity_sequences"] = [dyads(s) for s in info["stereo_measured"]]
    if poly.spacer is not None:
        n_sc = sum(seq.count(poly.repeat.species) for seq in info["sequences"])
        m_acid = sum(info["chain_masses_g_per_mol"]) - n_sc * (_mass(poly.counter_ion) - 1.008)
        prov["polymer"]["ew_g_per_mol"] = {"requested": spec.ew_g_per_mol, "achieved": m_acid / max(n_sc, 1)}
    return prov
