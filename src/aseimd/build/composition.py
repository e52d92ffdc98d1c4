"""From a :class:`~aseimd.build.recipe.Recipe` to integer molecule counts.

Volume model (ideal mixing of molar volumes, see docs/electrolyte_recipes.md)::

    V = sum_i n_i M_i / rho_i  (solvents and additives, pure-liquid densities)
      + sum_k n_k v_k          (salts, molar volume of the crystalline salt)

Every amount in a recipe is a linear condition on the moles of salt and
additive per mole of solvent blend, so the continuous composition is the
solution of one small linear system (:func:`continuous_amounts`). Counts are
then scaled to the requested size and rounded; the concentrations the integer
counts actually give are reported next to the requested ones
(:meth:`Composition.report`).

Reference quantities
--------------------
``M``     mol of salt per litre of the whole solution (salts + solvents + additives)
``m``     mol of salt per kg of the neutral liquid (solvents + additives)
``wt%``   mass of the additive / mass of the whole electrolyte
``vol%``  pure-liquid volume of the additive / that of all neutral liquids
``mol%``  molecules of the additive / all neutral molecules
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aseimd.build.recipe import Recipe
from aseimd.errors import BuildError, SpecError
from aseimd.species import get_salt, get_species

#: Avogadro constant, 1/mol (CODATA 2018, exact).
AVOGADRO_PER_MOL = 6.02214076e23
#: cm^3 per nm^3.
CM3_PER_NM3 = 1e-21


def _hexagonal_cell_volume_A3(a_A: float, c_A: float) -> float:
    return math.sqrt(3.0) / 2.0 * a_A * a_A * c_A


#: Volume of one LiPF6 formula unit in the crystal, in Å^3: R-3, hexagonal setting,
#: a = 4.932 Å, c = 12.658 Å, Z = 3 (single-crystal X-ray; "Li[PF6] (rhombohedral, R-3;
#: a = 493.2(2), c = 1265.8(4) pm; Z = 3) ... isotypes of the Li[BiF6] structure",
#: MPI for Solid State Research, pure.mpg.de item_2032952).
_LIPF6_FORMULA_VOLUME_A3 = _hexagonal_cell_volume_A3(4.932, 12.658) / 3

#: Molar volume of each salt (ion pair) in the solution volume model, cm^3/mol.
#: LiPF6 from its crystal structure (53.5 cm^3/mol, crystal density 2.84 g/cm^3).
#: LiTFSI and LiFSI: estimated -- the van der Waals volume of the ion pair (RDKit
#: ComputeMolVolume of the MMFF anion geometry, 0.1 Å grid, plus a Li+ sphere of Shannon
#: radius 0.76 Å) times the crystal/vdW volume ratio of LiPF6 (1.256). Verify against
#: measured apparent molar volumes before relying on them to better than ~20 %.
SALT_MOLAR_VOLUME_CM3_PER_MOL: dict[str, float] = {
    "LiPF6": _LIPF6_FORMULA_VOLUME_A3 * 1e-24 * AVOGADRO_PER_MOL,
    "LiTFSI": 119.3,
    "LiFSI": 76.5,
}
#: Where each salt volume comes from.
SALT_MOLAR_VOLUME_SOURCES: dict[str, str] = {
    "LiPF6": "crystal structure, R-3, a = 4.932 A, c = 12.658 A, Z = 3 (pure.mpg.de item_2032952)",
    "LiTFSI": "estimate: vdW volume x LiPF6 crystal/vdW ratio (see docs/electrolyte_recipes.md) -- verify",
    "LiFSI": "estimate: vdW volume x LiPF6 crystal/vdW ratio (see docs/electrolyte_recipes.md) -- verify",
}


def salt_molar_mass_g_per_mol(salt: str) -> float:
    """Molar mass of a salt (cation + anion), in g/mol."""
    cation, anion = get_salt(salt)
    return cation.molar_mass_g_per_mol + anion.molar_mass_g_per_mol


def salt_molar_volume_cm3_per_mol(salt: str) -> float:
    """Molar volume of a salt in the solution volume model, in cm^3/mol."""
    try:
        return SALT_MOLAR_VOLUME_CM3_PER_MOL[salt]
    except KeyError:
        raise BuildError(f"no molar volume for salt {salt!r}; known: "
                         f"{', '.join(SALT_MOLAR_VOLUME_CM3_PER_MOL)}") from None


def liquid_molar_volume_cm3_per_mol(name: str) -> float:
    """Molar volume ``M / rho`` of a pure liquid species, in cm^3/mol."""
    sp = get_species(name)
    if not sp.density_g_per_cm3:
        raise BuildError(f"species {name!r} has no liquid density in the species table; "
                         "it cannot be used as a solvent or additive")
    return sp.molar_mass_g_per_mol / sp.density_g_per_cm3


@dataclass(frozen=True)
class Amounts:
    """A composition in moles (continuous, or integer molecule counts / N_A).

    Attributes
    ----------
    recipe : Recipe
        The recipe the amounts belong to (names, units, ratio basis).
    solvents, salts, additives : numpy.ndarray, shape=(n,), dtype=float
        Amounts in mol, in the order of the recipe's solvents, salts (ion
        pairs) and additives.
    """

    recipe: Recipe
    solvents: np.ndarray
    salts: np.ndarray
    additives: np.ndarray

    def _liquid(self, attr: str) -> tuple[np.ndarray, np.ndarray]:
        r = self.recipe
        names = list(r.solvents) + [a.species for a in r.additives]
        n = np.concatenate([self.solvents, self.additives])
        if attr == "mass":
            per = np.array([get_species(s).molar_mass_g_per_mol for s in names])
        else:
            per = np.array([liquid_molar_volume_cm3_per_mol(s) for s in names])
        return n, per

    @property
    def liquid_mass_g(self) -> float:
        """Mass of the neutral liquid (solvents + additives), g."""
        n, per = self._liquid("mass")
        return float(n @ per)

    @property
    def liquid_volume_cm3(self) -> float:
        """Pure-liquid volume of the solvents + additives, cm^3."""
        n, per = self._liquid("volume")
        return float(n @ per)

    @property
    def salt_masses_g(self) -> np.ndarray:
        """Mass of each salt, g; shape=(n_salts,)."""
        return self.salts * np.array([salt_molar_mass_g_per_mol(s.salt) for s in self.recipe.salts])

    @property
    def mass_g(self) -> float:
        """Total mass, g."""
        return self.liquid_mass_g + float(self.salt_masses_g.sum())

    @property
    def volume_cm3(self) -> float:
        """Estimated solution volume (ideal mixing of molar volumes), cm^3."""
        v_salt = np.array([salt_molar_volume_cm3_per_mol(s.salt) for s in self.recipe.salts])
        return self.liquid_volume_cm3 + float(self.salts @ v_salt.reshape(-1))

    def salt_concentrations(self) -> np.ndarray:
        """Concentration of each salt in the recipe's unit (mol/L or mol/kg)."""
        if self.recipe.salt_unit == "m":
            return self.salts / (self.liquid_mass_g / 1000.0)
        return self.salts / (self.volume_cm3 / 1000.0)

    def solvent_ratio(self) -> np.ndarray:
        """Solvent ratio on the recipe's basis, scaled to the sum of the requested ratio."""
        r = self.recipe
        if r.ratio_basis == "mol/mol":
            per = np.ones(len(r.solvents))
        elif r.ratio_basis == "w/w":
            per = np.array([get_species(s).molar_mass_g_per_mol for s in r.solvents])
        else:
            per = np.array([liquid_molar_volume_cm3_per_mol(s) for s in r.solvents])
        q = self.solvents * per
        return q / q.sum() * sum(r.ratio)

    def additive_percentages(self) -> np.ndarray:
        """Amount of each additive in percent, each in its own unit (wt%, vol%, mol%)."""
        out = []
        for add, n in zip(self.recipe.additives, self.additives):
            sp = get_species(add.species)
            if add.unit == "wt%":
                out.append(100.0 * n * sp.molar_mass_g_per_mol / self.mass_g)
            elif add.unit == "vol%":
                out.append(100.0 * n * liquid_molar_volume_cm3_per_mol(add.species) / self.liquid_volume_cm3)
            else:
                out.append(100.0 * n / (self.solvents.sum() + self.additives.sum()))
        return np.array(out)


def solvent_mole_fractions(recipe: Recipe) -> np.ndarray:
    """Mole fractions of the solvents (without additives) from the ratio and its basis.

    Returns
    -------
    numpy.ndarray, shape=(n_solvents,), dtype=float
        Sums to 1.
    """
    ratio = np.array(recipe.ratio, dtype=float)
    if recipe.ratio_basis == "mol/mol":
        n = ratio
    elif recipe.ratio_basis == "w/w":
        n = ratio / np.array([get_species(s).molar_mass_g_per_mol for s in recipe.solvents])
    else:
        n = ratio / np.array([liquid_molar_volume_cm3_per_mol(s) for s in recipe.solvents])
    return n / n.sum()


def continuous_amounts(recipe: Recipe) -> Amounts:
    """Moles of every component per mole of solvent blend, meeting the recipe exactly.

    Solves the linear conditions of the module docstring for the salt and
    additive amounts.

    Raises
    ------
    BuildError
        If no composition with positive amounts exists (e.g. the salts alone
        would fill more than the solution volume, or additives add up to 100 %).
    """
    x = solvent_mole_fractions(recipe)
    salts, adds = recipe.salts, recipe.additives
    n_s, n_a = len(salts), len(adds)
    if recipe.salt_unit == "M":
        fill = sum(s.concentration / 1000.0 * salt_molar_volume_cm3_per_mol(s.salt) for s in salts)
        if fill >= 1.0:
            names = " + ".join(str(s) for s in salts)
            raise BuildError(f"impossible concentration {names}: the salt alone would take "
                             f"{100 * fill:.0f} % of the solution volume (must be < 100 %)")
    base = Amounts(recipe, x, np.zeros(n_s), np.zeros(n_a))
    m_liq0, v_liq0 = base.liquid_mass_g, base.liquid_volume_cm3
    M_salt = np.array([salt_molar_mass_g_per_mol(s.salt) for s in salts])
    v_salt = np.array([salt_molar_volume_cm3_per_mol(s.salt) for s in salts])
    M_add = np.array([get_species(a.species).molar_mass_g_per_mol for a in adds])
    v_add = np.array([liquid_molar_volume_cm3_per_mol(a.species) for a in adds])

    # Linear functionals f(y) = const + coef @ y of the unknowns y = [n_salt, n_add] (mol).
    def functional(const: float, salt_coef, add_coef) -> tuple[float, np.ndarray]:
        return const, np.concatenate([np.broadcast_to(salt_coef, n_s), np.broadcast_to(add_coef, n_a)])

    volume = functional(v_liq0, v_salt, v_add)
    mass = functional(m_liq0, M_salt, M_add)
    liquid_mass = functional(m_liq0, 0.0, M_add)
    liquid_volume = functional(v_liq0, 0.0, v_add)
    neutral = functional(1.0, 0.0, 1.0)

    size = n_s + n_a
    A, b = np.zeros((size, size)), np.zeros(size)
    rows = [(i, 1.0, s.concentration / 1000.0, volume if s.unit == "M" else liquid_mass)
            for i, s in enumerate(salts)]
    for j, a in enumerate(adds):
        f = a.amount / 100.0
        if a.unit == "wt%":
            rows.append((n_s + j, M_add[j], f, mass))
        elif a.unit == "vol%":
            rows.append((n_s + j, v_add[j], f, liquid_volume))
        else:
            rows.append((n_s + j, 1.0, f, neutral))
    for i, scale, frac, (const, coef) in rows:  # scale*y_i = frac*(const + coef @ y)
        A[i] = -frac * coef
        A[i, i] += scale
        b[i] = frac * const
    # additives of one unit adding up to 100 % leave nothing for the solvent: the system is singular (or, in
    # floating point, nearly so, with astronomically large "solutions")
    if size and np.linalg.cond(A) > 1e12:
        y = np.full(size, np.nan)
    else:
        try:
            y = np.linalg.solve(A, b) if size else np.zeros(0)
        except np.linalg.LinAlgError:
            y = np.full(size, np.nan)
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise BuildError(f"impossible recipe {str(recipe)!r}: no composition with positive amounts "
                         "meets all its concentrations and percentages at once")
    return Amounts(recipe, x, y[:n_s], y[n_s:])


@dataclass(frozen=True)
class Composition:
    """Integer molecule counts for a recipe, and what they achieve.

    Attributes
    ----------
    recipe : Recipe
    solvent_counts : tuple of int
        Molecules of each solvent, in recipe order.
    salt_counts : tuple of int
        Ion pairs of each salt, in recipe order.
    additive_counts : tuple of int
        Molecules of each additive, in recipe order.
    """

    recipe: Recipe
    solvent_counts: tuple[int, ...]
    salt_counts: tuple[int, ...]
    additive_counts: tuple[int, ...]

    @property
    def amounts(self) -> Amounts:
        """The integer counts as :class:`Amounts` (mol)."""
        def mol(c):
            return np.array(c, dtype=float) / AVOGADRO_PER_MOL
        return Amounts(self.recipe, mol(self.solvent_counts), mol(self.salt_counts), mol(self.additive_counts))

    @property
    def species_counts(self) -> dict[str, int]:
        """Molecules per species: cations, anions, solvents, additives (in that order)."""
        cations: dict[str, int] = {}
        anions: dict[str, int] = {}
        for s, n in zip(self.recipe.salts, self.salt_counts):
            cat, an = get_salt(s.salt)
            cations[cat.name] = cations.get(cat.name, 0) + n
            anions[an.name] = anions.get(an.name, 0) + n
        out = {**cations, **anions}
        out.update(zip(self.recipe.solvents, self.solvent_counts))
        out.update((a.species, n) for a, n in zip(self.recipe.additives, self.additive_counts))
        return out

    @property
    def volume_nm3(self) -> float:
        """Estimated solution volume of these molecules, nm^3."""
        return self.amounts.volume_cm3 / CM3_PER_NM3

    @property
    def density_g_per_cm3(self) -> float:
        """Estimated density of the solution, g/cm^3."""
        a = self.amounts
        return a.mass_g / a.volume_cm3

    def report(self) -> dict:
        """Requested vs achieved composition, JSON-ready (goes into build.json)."""
        r, a = self.recipe, self.amounts
        unit = {"M": "mol/L", "m": "mol/kg"}
        achieved_c = a.salt_concentrations()
        return {
            "counts": self.species_counts,
            "salts": [
                {"salt": s.salt, "unit": unit[s.unit], "requested": s.concentration,
                 "achieved": float(c), "ion_pairs": n}
                for s, c, n in zip(r.salts, achieved_c, self.salt_counts)
            ],
            "solvent_ratio": {
                "solvents": list(r.solvents), "basis": r.ratio_basis,
                "requested": list(r.ratio), "achieved": [float(v) for v in a.solvent_ratio()],
            },
            "additives": [
                {"species": ad.species, "unit": ad.unit, "requested": ad.amount, "achieved": float(p),
                 "molecules": n}
                for ad, p, n in zip(r.additives, a.additive_percentages(), self.additive_counts)
            ],
            "estimated_volume_nm3": self.volume_nm3,
            "estimated_density_g_per_cm3": self.density_g_per_cm3,
            "estimated_box_edge_nm": self.volume_nm3 ** (1.0 / 3.0),
            "volume_model": {
                "method": "ideal mixing: pure-liquid molar volumes M/rho + crystal molar volume of each salt",
                "molar_volumes_cm3_per_mol": {
                    **{s: liquid_molar_volume_cm3_per_mol(s)
                       for s in (*r.solvents, *(ad.species for ad in r.additives))},
                    **{s.salt: salt_molar_volume_cm3_per_mol(s.salt) for s in r.salts},
                },
                "sources": {
                    **{s: get_species(s).density_source
                       for s in (*r.solvents, *(ad.species for ad in r.additives))},
                    **{s.salt: SALT_MOLAR_VOLUME_SOURCES[s.salt] for s in r.salts},
                },
            },
        }


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    return counts


def count_molecules(recipe: Recipe | str, *, n_solvent: int | None = None,
                    box_edge_nm: float | None = None) -> Composition:
    """Integer counts for a recipe, sized by solvent molecules or by box edge.

    Parameters
    ----------
    recipe : Recipe or str
    n_solvent : int, optional
        Total number of solvent molecules (the solvents after "in"; additives and
        ions come on top).
    box_edge_nm : float, optional
        Edge of a cube holding the solution at its estimated density, in nm.
        Give exactly one of ``n_solvent`` and ``box_edge_nm``.

    Returns
    -------
    Composition

    Raises
    ------
    SpecError
        On bad sizing arguments.
    BuildError
        If the recipe is impossible or the size too small for one molecule of
        every component.
    """
    if isinstance(recipe, str):
        recipe = Recipe.parse(recipe)
    if (n_solvent is None) == (box_edge_nm is None):
        got = "both" if n_solvent is not None else "neither"
        raise SpecError(f"give exactly one of n_solvent and box_edge_nm (got {got})")
    amounts = continuous_amounts(recipe)  # per mol of solvent blend
    if n_solvent is not None:
        if isinstance(n_solvent, bool) or not isinstance(n_solvent, (int, np.integer)) or n_solvent < 1:
            raise SpecError(f"n_solvent must be a positive integer, got {n_solvent!r}")
        total = int(n_solvent)
    else:
        if not isinstance(box_edge_nm, (int, float)) or not math.isfinite(box_edge_nm) or box_edge_nm <= 0:
            raise SpecError(f"box_edge_nm must be a positive number, got {box_edge_nm!r}")
        per_molecule_nm3 = amounts.volume_cm3 / CM3_PER_NM3 / AVOGADRO_PER_MOL
        total = int(round(box_edge_nm ** 3 / per_molecule_nm3))

    def too_small(what: str, per_solvent: float) -> BuildError:
        need = math.ceil(0.5 / per_solvent)
        edge = (need * amounts.volume_cm3 / CM3_PER_NM3 / AVOGADRO_PER_MOL) ** (1 / 3)
        size = f"n_solvent = {total}" if box_edge_nm is None else f"box_edge_nm = {box_edge_nm:g}"
        return BuildError(f"system too small for one {what} ({size} holds {per_solvent * total:.2f}); "
                          f"use n_solvent >= {need} or box_edge_nm >= {edge:.2f}")

    for name, frac in zip(recipe.solvents, amounts.solvents):
        if frac * total < 0.5:
            raise too_small(f"{name} molecule", frac)
    solvent_counts = _largest_remainder(amounts.solvents, total)
    for s, n in zip(recipe.salts, amounts.salts):
        if n * total < 0.5:
            raise too_small(f"{s.salt} ion pair at {s.concentration:g} {s.unit}", n)
    for ad, n in zip(recipe.additives, amounts.additives):
        if n * total < 0.5:
            raise too_small(f"{ad.species} molecule at {ad.amount:g} {ad.unit}", n)
    return Composition(
        recipe=recipe,
        solvent_counts=tuple(int(c) for c in solvent_counts),
        salt_counts=tuple(int(round(n * total)) for n in amounts.salts),
        additive_counts=tuple(int(round(n * total)) for n in amounts.additives),
    )


#: Relative margin between the expected equilibrium box edge and twice the cut-off.
#: It covers a force-field density up to 3 % above the experimental one the
#: volume model uses (edge -1 %), the NPT volume fluctuations of small boxes
#: (density r.m.s. 1.0-1.3 % in 2.3-2.8 nm boxes, docs/validation.md: edge
#: +-0.4 %, 3 sigma 1.3 %) and the overshoot while the barostat compresses the
#: packed box.
EQUILIBRIUM_EDGE_MARGIN = 0.05


def min_equilibrium_edge_nm(cutoff_nm: float, margin: float = EQUILIBRIUM_EDGE_MARGIN) -> float:
    """Smallest expected equilibrium box edge that a cut-off allows, ``2 cutoff / (1 - margin)``, in nm."""
    return 2.0 * cutoff_nm / (1.0 - margin)


def min_n_solvent_for_cutoff(recipe: Recipe | str, cutoff_nm: float,
                             margin: float = EQUILIBRIUM_EDGE_MARGIN) -> int:
    """Fewest solvent molecules whose expected equilibrium cube holds ``cutoff_nm`` with ``margin``.

    Parameters
    ----------
    recipe : Recipe or str
    cutoff_nm : float
        Non-bonded cut-off, in nm.
    margin : float
        See :data:`EQUILIBRIUM_EDGE_MARGIN`.

    Returns
    -------
    int
        The smallest ``n_solvent`` with ``count_molecules(...).volume_nm3 ** (1/3) >=
        min_equilibrium_edge_nm(cutoff_nm, margin)``.
    """
    if isinstance(recipe, str):
        recipe = Recipe.parse(recipe)
    need = min_equilibrium_edge_nm(cutoff_nm, margin) ** 3
    per_solvent_nm3 = continuous_amounts(recipe).volume_cm3 / CM3_PER_NM3 / AVOGADRO_PER_MOL
    n = max(1, math.floor(need / per_solvent_nm3) - 2)
    while True:  # integer ion counts make the volume a step function of n: walk up to the first fit
        try:
            if count_molecules(recipe, n_solvent=n).volume_nm3 >= need:
                return n
        except BuildError:  # too small for one molecule of every component
            pass
        n += 1


def check_cutoff_fits(composition: Composition, cutoff_nm: float, *,
                      packed_edge_nm: float | None = None,
                      margin: float = EQUILIBRIUM_EDGE_MARGIN) -> None:
    """Refuse a box whose expected *equilibrium* edge is too small for the cut-off.

    The packed box is larger than the equilibrium one (it is packed below the
    estimated density and NPT compresses it), so a cut-off that fits the packed
    box can fail in NPT with OpenMM's "box size has decreased to less than twice
    the nonbonded cutoff".  The expected equilibrium edge is the cube root of the
    ideal-mixing volume (:attr:`Composition.volume_nm3`).

    Parameters
    ----------
    composition : Composition
    cutoff_nm : float
        Non-bonded cut-off, in nm.
    packed_edge_nm : float, optional
        Edge of the packed box, for the message.
    margin : float
        Required relative margin (:data:`EQUILIBRIUM_EDGE_MARGIN`).

    Raises
    ------
    SpecError
        If ``cutoff_nm`` is not a positive number.
    BuildError
        If ``volume_nm3 ** (1/3) < 2 cutoff_nm / (1 - margin)``; the message gives
        both edges and the n_solvent, box edge or cut-off that would work.
    """
    if isinstance(cutoff_nm, bool) or not isinstance(cutoff_nm, (int, float)) or not cutoff_nm > 0:
        raise SpecError(f"cutoff_nm must be a positive number, got {cutoff_nm!r}")
    edge = composition.volume_nm3 ** (1.0 / 3.0)
    need = min_equilibrium_edge_nm(cutoff_nm, margin)
    if edge >= need:
        return
    n_min = min_n_solvent_for_cutoff(composition.recipe, cutoff_nm, margin)
    packed = f", packed {packed_edge_nm:.3f} nm" if packed_edge_nm is not None else ""
    head = (f"box too small for cutoff_nm {cutoff_nm:g}: the expected equilibrium edge is {edge:.3f} nm{packed} "
            f"(NPT compresses the packed box), but {cutoff_nm:g} nm needs >= {need:.3f} nm "
            f"(2 x cutoff / (1 - {margin:.0%} margin)); ")
    largest = edge * (1 - margin) / 2
    from aseimd.build.packing import MAX_PACK_ATOMS

    n_atoms = n_atoms_of(count_molecules(composition.recipe, n_solvent=n_min))
    if n_atoms is not None and n_atoms > MAX_PACK_ATOMS:  # the bigger box is not a way out: say so
        raise BuildError(head + f"a box that large would hold ~{n_atoms} atoms, above the {MAX_PACK_ATOMS}-atom "
                         f"packing limit; use cutoff_nm <= {largest:.3f} (1.0-1.2 nm is usual)")
    raise BuildError(head + f"use n_solvent >= {n_min}, box_edge_nm >= {need:.2f}, or cutoff_nm <= {largest:.3f}")


def n_atoms_of(composition: Composition) -> int | None:
    """Atoms in ``composition`` from the force-field templates, or None if a species has no template."""
    from aseimd.forcefield.loader import residue_templates

    templates = residue_templates()
    total = 0
    for name, count in composition.species_counts.items():
        tmpl = templates.get(get_species(name).residue)
        if tmpl is None:
            return None
        total += count * len(tmpl.atoms)
    return total


def plan_electrolyte(recipe, *, n_solvent: int | None, box_edge_nm: float | None, seed, cutoff_nm: float | None,
                     packed_edge_of=None) -> Composition:
    """Everything :func:`aseimd.build.electrolyte.build_electrolyte` checks before it makes or packs a molecule:
    the recipe, the sizing, the seed and (unless ``cutoff_nm`` is None) the cut-off against the expected box.

    ``packed_edge_of(composition) -> nm`` gives the packed edge for the cut-off message. The campaign and
    pipeline validation call this too, so that a bad value fails before anything is submitted.

    Raises
    ------
    SpecError, BuildError
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecError(f"seed must be a non-negative integer, got {seed!r}")
    composition = count_molecules(recipe, n_solvent=n_solvent, box_edge_nm=box_edge_nm)
    if cutoff_nm is not None:
        check_cutoff_fits(composition, cutoff_nm,
                          packed_edge_nm=None if packed_edge_of is None else packed_edge_of(composition))
    return composition
