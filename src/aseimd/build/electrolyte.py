"""Bulk liquid electrolyte boxes: recipe -> counts -> Packmol -> :class:`~aseimd.build.cell.Cell`.

The box is packed at :data:`PACKING_DENSITY_FRACTION` of the estimated solution
density (a cube ``(1/0.85)**(1/3) = 1.056`` times the estimated edge): Packmol
then reaches its 2 Å tolerance in seconds, with margin for concentrated and
bulky-anion recipes, and the NPT stage of the run protocol compresses the box
to the force field's own density (a ~15 % volume change).  Given the run's
cut-off, the builder checks it against that *expected equilibrium* box (with
:data:`~aseimd.build.composition.EQUILIBRIUM_EDGE_MARGIN`), before packing.
"""

from __future__ import annotations

import math

import numpy as np

from aseimd.build.cell import Cell, topology_from_molecules
from aseimd.build.composition import CM3_PER_NM3, EQUILIBRIUM_EDGE_MARGIN, plan_electrolyte
from aseimd.build.packing import PBC_MIN_VERSION, PackItem, pack_box, packmol_executable, packmol_version
from aseimd.build.recipe import Recipe
from aseimd.errors import SpecError

#: Packed density / estimated solution density.
PACKING_DENSITY_FRACTION = 0.85
#: Packmol tolerance: minimum distance between atoms of different molecules, nm.
PACKING_TOLERANCE_NM = 0.2


def is_chiral(smiles: str) -> bool:
    """Whether a molecule has a stereocentre (assigned or not), from its SMILES (RDKit)."""
    from rdkit import Chem

    return bool(Chem.FindMolChiralCenters(Chem.MolFromSmiles(smiles), includeUnassigned=True,
                                          useLegacyImplementation=False))


def pack_composition(composition, box_nm, *, seed: int = 0, tolerance_nm: float = PACKING_TOLERANCE_NM,
                     timeout_s: float = 300.0):
    """Pack the molecules of a :class:`~aseimd.build.composition.Composition` into a periodic box.

    Shared by the bulk builder and the electrolyte layer of an interface cell.

    Parameters
    ----------
    composition : Composition
        Counts per species (ions, solvents, additives).
    box_nm : sequence of 3 float
        Box edges in nm (Packmol, periodic where its version allows).
    seed : int
        Seed of the packing and of the molecule geometries.
    tolerance_nm : float
        Packmol tolerance, nm.
    timeout_s : float
        Wall-clock limit for Packmol, s.

    Returns
    -------
    (openmm.app.Topology, numpy.ndarray of shape (n_atoms, 3), list of str)
        Topology (one chain per species, in ``species_counts`` order), packed
        positions in nm, and the chiral species packed racemic (half of their
        copies as the mirror image x -> -x).
    """
    from aseimd.build.molecule import molecule

    molecules = [(molecule(name, seed=int(seed)), n) for name, n in composition.species_counts.items()]
    items, racemic = [], []
    for m, n in molecules:
        elements = tuple(a.element.symbol if a.element is not None else "X" for a in m.topology.atoms())
        if n > 1 and is_chiral(m.species.smiles):
            # chiral solvents are racemic in the bottle (PC, FEC): pack half of the copies as the mirror
            # image (x -> -x; the force field is achiral, atom order and topology are unchanged)
            n_mirror = n // 2
            items += [PackItem(elements, m.positions_nm, n - n_mirror),
                      PackItem(elements, m.positions_nm * np.array([-1.0, 1.0, 1.0]), n_mirror)]
            racemic.append(m.species.name)
        else:
            items.append(PackItem(elements, m.positions_nm, n))
    positions_nm = pack_box(items, np.asarray(box_nm, dtype=float), seed=int(seed), tolerance_nm=tolerance_nm,
                            timeout_s=timeout_s)
    return topology_from_molecules(molecules), positions_nm, racemic


def build_electrolyte(recipe: str | Recipe, *, n_solvent: int | None = None,
                      box_edge_nm: float | None = None, seed: int = 0,
                      packmol_timeout_s: float = 300.0,
                      packing_density_fraction: float = PACKING_DENSITY_FRACTION,
                      tolerance_nm: float = PACKING_TOLERANCE_NM,
                      cutoff_nm: float | None = None) -> Cell:
    """Build a periodic box of a liquid electrolyte.

    Parameters
    ----------
    recipe : str or Recipe
        E.g. ``"1.0 M LiPF6 in EC:DMC 1:1 v/v"`` (see :mod:`aseimd.build.recipe`).
    n_solvent : int, optional
        Number of solvent molecules (additives and ions come on top).
    box_edge_nm : float, optional
        Edge of the cube the solution fills at its estimated density, in nm
        (the packed box is larger by ``packing_density_fraction**(-1/3)``).
        Give exactly one of ``n_solvent`` and ``box_edge_nm``.
    seed : int
        Seed of the packing and of the molecule geometries.
    packmol_timeout_s : float
        Wall-clock limit for Packmol, in s.
    packing_density_fraction : float
        Packed density as a fraction of the estimated solution density, in (0, 1].
    tolerance_nm : float
        Packmol tolerance, in nm.
    cutoff_nm : float, optional
        Non-bonded cut-off the system will run with, in nm: refused (before
        packing) if the expected equilibrium box edge is below
        ``2 cutoff_nm / (1 - EQUILIBRIUM_EDGE_MARGIN)``
        (:func:`aseimd.build.composition.check_cutoff_fits`).  None skips the check.

    Returns
    -------
    Cell
        Ions first (cations, anions), then solvents, then additives; one chain
        per species. Chiral species (PC, FEC) are racemic: half of their
        copies are packed as the mirror image. ``provenance`` holds the recipe, counts, requested vs
        achieved composition, the volume model, packing settings and seed.

    Raises
    ------
    SpecError, BuildError
        On a bad recipe or sizing, an impossible composition, a box too small for
        ``cutoff_nm`` at equilibrium, or failed packing.
    """
    requested = recipe if isinstance(recipe, str) else str(recipe)
    if isinstance(recipe, str):
        recipe = Recipe.parse(recipe)
    if not (isinstance(packing_density_fraction, (int, float)) and 0 < packing_density_fraction <= 1):
        raise SpecError(f"packing_density_fraction must be in (0, 1], got {packing_density_fraction!r}")
    composition = plan_electrolyte(  # before any molecule is made or packed
        recipe, n_solvent=n_solvent, box_edge_nm=box_edge_nm, seed=seed, cutoff_nm=cutoff_nm,
        packed_edge_of=lambda c: (c.volume_nm3 / packing_density_fraction) ** (1.0 / 3.0))
    edge_nm = (composition.volume_nm3 / packing_density_fraction) ** (1.0 / 3.0)
    box_nm = np.full(3, edge_nm)
    topology, positions_nm, racemic = pack_composition(composition, box_nm, seed=int(seed),
                                                       tolerance_nm=tolerance_nm, timeout_s=packmol_timeout_s)
    report = composition.report()
    mass_g = composition.amounts.mass_g
    version = packmol_version(str(packmol_executable()))
    provenance = {
        "builder": "electrolyte",
        "recipe": {"requested": requested, "canonical": str(recipe)},
        "sizing": {"n_solvent": n_solvent} if n_solvent is not None else {"box_edge_nm": box_edge_nm},
        "seed": int(seed),
        "racemic_species": racemic,
        "cutoff_check": None if cutoff_nm is None else {
            "cutoff_nm": cutoff_nm, "expected_equilibrium_edge_nm": composition.volume_nm3 ** (1.0 / 3.0),
            "margin": EQUILIBRIUM_EDGE_MARGIN},
        **report,
        "packing": {
            "program": "packmol",
            "version": ".".join(str(v) for v in version),
            "citation": "L. Martinez et al., J. Comput. Chem. 30, 2157 (2009)",
            "periodic": version >= PBC_MIN_VERSION,
            "tolerance_nm": tolerance_nm,
            "density_fraction": packing_density_fraction,
            "packed_density_g_per_cm3": mass_g / (math.prod(box_nm) * CM3_PER_NM3),
        },
    }
    return Cell(topology=topology, positions_nm=positions_nm, box_nm=box_nm, provenance=provenance)
