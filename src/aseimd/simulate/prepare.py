"""The protocol-level changes the runner makes to a built System.

The built system directory (``system.pdb``, ``system.xml``, ``build.json``)
is the contract; the runner only applies what the protocol owns: the
non-bonded cutoff, hydrogen mass repartitioning, the barostat, and the
rescaling of the box to the NPT mean volume before production.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

from aseimd.errors import SimulationError, SpecError

SYSTEM_FILES = ("system.pdb", "system.xml", "build.json")
_BAROSTATS = (
    mm.MonteCarloBarostat,
    mm.MonteCarloAnisotropicBarostat,
    mm.MonteCarloMembraneBarostat,
    mm.MonteCarloFlexibleBarostat,
)


@dataclass(frozen=True)
class SystemInput:
    """A built system directory, read.

    Parameters
    ----------
    directory : pathlib.Path
    topology : openmm.app.Topology
    positions_nm : numpy.ndarray, shape=(n_atoms, 3), dtype=float64
        Initial positions in nm.
    box_vectors_nm : numpy.ndarray, shape=(3, 3)
        Periodic box vectors in nm (rows a, b, c).
    system : openmm.System
        As deserialised from ``system.xml`` (unmodified).
    build : dict
        Contents of ``build.json``.
    sha256 : dict of str to str
        Digest of each of the three files (identifies the input of a run).
    """

    directory: Path
    topology: app.Topology
    positions_nm: np.ndarray
    box_vectors_nm: np.ndarray
    system: mm.System
    build: dict
    sha256: dict[str, str]


def read_system_dir(directory: str | Path) -> SystemInput:
    """Read a built system directory (via :func:`aseimd.build.cell.read_system_dir`) and digest its files."""
    from aseimd.build.cell import read_system_dir as _read

    directory = Path(directory)
    if not directory.is_dir():
        raise SpecError(f"system directory {str(directory)!r} does not exist")
    pdb, system, build = _read(directory)
    if not isinstance(system, mm.System):
        raise SpecError(f"system.xml in {str(directory)!r} holds a {type(system).__name__}, not a System")
    if pdb.topology.getNumAtoms() != system.getNumParticles():
        raise SpecError(
            f"system.pdb has {pdb.topology.getNumAtoms()} atoms but system.xml has "
            f"{system.getNumParticles()} particles in {str(directory)!r}"
        )
    box = pdb.topology.getPeriodicBoxVectors()
    if box is None:
        raise SpecError(f"system.pdb in {str(directory)!r} has no periodic box (CRYST1 record)")
    return SystemInput(
        directory=directory.resolve(),
        topology=pdb.topology,
        positions_nm=np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=float),
        box_vectors_nm=np.asarray(box.value_in_unit(unit.nanometer), dtype=float),
        system=system,
        build=build,
        sha256={name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in SYSTEM_FILES},
    )


def copy_system(system: mm.System) -> mm.System:
    """An independent deep copy of a System."""
    return mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))


def strip_barostats(system: mm.System) -> list[str]:
    """Remove every Monte Carlo barostat from ``system`` (in place); return the removed class names."""
    removed = []
    for i in reversed(range(system.getNumForces())):
        force = system.getForce(i)
        if isinstance(force, _BAROSTATS):
            removed.append(type(force).__name__)
            system.removeForce(i)
    return removed


def set_cutoff(system: mm.System, cutoff_nm: float) -> int:
    """Set the cutoff of every cutoff-based NonbondedForce / CustomNonbondedForce (in place).

    Returns
    -------
    int
        Number of forces changed.

    Raises
    ------
    SpecError
        The system has no cutoff-based non-bonded force, or a switching
        distance would not stay below the new cutoff.
    """
    changed = 0
    for force in system.getForces():
        if isinstance(force, mm.NonbondedForce):
            if force.getNonbondedMethod() == mm.NonbondedForce.NoCutoff:
                continue
        elif isinstance(force, mm.CustomNonbondedForce):
            if force.getNonbondedMethod() == mm.CustomNonbondedForce.NoCutoff:
                continue
        else:
            continue
        if force.getUseSwitchingFunction():
            switch = force.getSwitchingDistance().value_in_unit(unit.nanometer) \
                if unit.is_quantity(force.getSwitchingDistance()) else force.getSwitchingDistance()
            if switch >= cutoff_nm:
                raise SpecError(
                    f"cutoff_nm {cutoff_nm} is not above the switching distance {switch} nm of "
                    f"{type(force).__name__}; choose cutoff_nm > {switch}"
                )
        force.setCutoffDistance(cutoff_nm)
        changed += 1
    if changed == 0:
        raise SpecError(f"cutoff_nm {cutoff_nm} given but the system has no cutoff-based non-bonded force")
    return changed


def check_cutoff_fits(cutoff_nm: float, box_vectors_nm: np.ndarray) -> None:
    """A cutoff must be at most half the shortest box edge (minimum image convention).

    Parameters
    ----------
    cutoff_nm : float
    box_vectors_nm : numpy.ndarray, shape=(3, 3)
        Box vectors (rows), nm.

    Raises
    ------
    SpecError
        Naming the cutoff, the box and the largest allowed value.
    """
    edges = np.linalg.norm(np.asarray(box_vectors_nm, dtype=float), axis=1)
    half = float(edges.min()) / 2.0
    if cutoff_nm > half:
        raise SpecError(f"cutoff_nm {cutoff_nm:g} is more than half the shortest box edge "
                        f"({' x '.join(f'{e:.3f}' for e in edges)} nm); allowed: cutoff_nm <= {half:.3f}")


def _bonded_pairs(system: mm.System, topology: app.Topology | None) -> set[tuple[int, int]]:
    pairs = set()
    for force in system.getForces():
        if isinstance(force, mm.HarmonicBondForce):
            for i in range(force.getNumBonds()):
                a, b = force.getBondParameters(i)[:2]
                pairs.add((min(a, b), max(a, b)))
    for i in range(system.getNumConstraints()):
        a, b = system.getConstraintParameters(i)[:2]
        pairs.add((min(a, b), max(a, b)))
    if topology is not None:
        for bond in topology.bonds():
            a, b = bond[0].index, bond[1].index
            pairs.add((min(a, b), max(a, b)))
    return pairs


def make_constraints_contiguous(system: mm.System, positions_nm: np.ndarray,
                                box_vectors_nm: np.ndarray) -> tuple[np.ndarray, int]:
    """Shift atoms by whole box vectors so that the two atoms of every constraint are contiguous.

    A builder may wrap atoms one by one into the box (polymer chains crossing
    the lateral boundaries), so an X-H pair can be split by a box edge. Periodic
    bonded forces do not mind, but OpenMM's constraint algorithms work on raw
    coordinates: such a constraint is "violated" by a box length, and applying
    it (at minimisation or the first step; at once with repartitioned masses)
    can blow the system up. Each connected group of constrained atoms is walked
    and every atom put at the minimum image of the atom it was reached from.
    Atoms without constraints (the frozen slab, ions) are not touched; the
    physics is unchanged (periodic images).

    Parameters
    ----------
    system : openmm.System
    positions_nm : ndarray, shape (n_atoms, 3), float, nm
    box_vectors_nm : ndarray, shape (3, 3), float, nm
        Rows a, b, c in OpenMM's reduced form (a along x, b in the xy plane).

    Returns
    -------
    positions_nm : ndarray, shape (n_atoms, 3), float, nm
        A new array.
    n_moved : int
        Atoms shifted.
    """
    pos = np.array(positions_nm, dtype=float, copy=True)
    box = np.asarray(box_vectors_nm, dtype=float)
    neighbours: dict[int, list[int]] = {}
    for k in range(system.getNumConstraints()):
        a, b = system.getConstraintParameters(k)[:2]
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    seen: set[int] = set()
    moved = 0
    for root in sorted(neighbours):
        if root in seen:
            continue
        seen.add(root)
        stack = [root]
        while stack:
            i = stack.pop()
            for j in neighbours[i]:
                if j in seen:
                    continue
                seen.add(j)
                d = pos[j] - pos[i]
                shift = np.zeros(3)
                for k in (2, 1, 0):  # reduced box vectors: c, then b, then a
                    shift = shift + np.round((d - shift)[k] / box[k, k]) * box[k]
                if np.any(shift != 0.0):
                    pos[j] -= shift
                    moved += 1
                stack.append(j)
    return pos, moved


def apply_hmr(system: mm.System, topology: app.Topology, hydrogen_mass_amu: float) -> int:
    """Hydrogen mass repartitioning, in place, conserving the total mass.

    Every hydrogen (by element, from ``topology``) bonded to a heavy atom gets
    mass ``hydrogen_mass_amu``; the difference is taken from its bonded heavy
    atom. Massless particles (virtual sites, frozen atoms) are left alone, as
    is any hydrogen whose partner is massless. Bonds come from
    HarmonicBondForce, constraints and the topology.

    Returns
    -------
    int
        Number of hydrogens changed.

    Raises
    ------
    SpecError
        A heavy atom would be left with less than 1 amu.
    """
    atoms = list(topology.atoms())
    is_h = [a.element is not None and a.element.symbol == "H" for a in atoms]
    mass = [system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())]
    partner: dict[int, int] = {}
    for a, b in sorted(_bonded_pairs(system, topology)):
        for h, heavy in ((a, b), (b, a)):
            if is_h[h] and not is_h[heavy] and h not in partner:
                partner[h] = heavy
    changed = 0
    for h, heavy in sorted(partner.items()):
        if mass[h] == 0.0 or mass[heavy] == 0.0:
            continue
        delta = hydrogen_mass_amu - mass[h]
        if mass[heavy] - delta < 1.0:
            raise SpecError(
                f"hydrogen_mass_amu {hydrogen_mass_amu} would leave atom {heavy} "
                f"({atoms[heavy].name}) with {mass[heavy] - delta:.3f} amu; choose a smaller value"
            )
        mass[heavy] -= delta
        mass[h] = hydrogen_mass_amu
        changed += 1
    for i, m in enumerate(mass):
        system.setParticleMass(i, m)
    return changed


def make_barostat(
    coupling: str, pressure_bar: float, temperature_K: float, interval_steps: int, seed: int
) -> mm.Force:
    """A Monte Carlo barostat for ``coupling`` (see :data:`aseimd.simulate.protocol.COUPLINGS`)."""
    if coupling == "isotropic":
        force = mm.MonteCarloBarostat(pressure_bar, temperature_K, interval_steps)
    elif coupling == "anisotropic":
        p = mm.Vec3(pressure_bar, pressure_bar, pressure_bar)
        force = mm.MonteCarloAnisotropicBarostat(p, temperature_K, True, True, True, interval_steps)
    elif coupling == "z":
        p = mm.Vec3(pressure_bar, pressure_bar, pressure_bar)
        force = mm.MonteCarloAnisotropicBarostat(p, temperature_K, False, False, True, interval_steps)
    elif coupling == "membrane":
        force = mm.MonteCarloMembraneBarostat(
            pressure_bar, 0.0, temperature_K,
            mm.MonteCarloMembraneBarostat.XYIsotropic, mm.MonteCarloMembraneBarostat.ZFree, interval_steps,
        )
    else:
        from aseimd.simulate.protocol import COUPLINGS

        raise SpecError(f"unknown coupling {coupling!r}; allowed: {', '.join(COUPLINGS)}")
    force.setRandomNumberSeed(seed)
    if hasattr(force, "setScaleMoleculesAsRigid"):  # OpenMM >= 8.6; keeps a tied frozen Li slab a perfect lattice
        force.setScaleMoleculesAsRigid(True)
    return force


def target_box(samples_nm: np.ndarray, coupling: str, current_nm: np.ndarray) -> np.ndarray:
    """Production box edges from NPT box samples: the volume is the mean sampled volume.

    Parameters
    ----------
    samples_nm : numpy.ndarray, shape=(n_samples, 3)
        Orthorhombic box edge lengths (a, b, c) sampled in the NPT stage, nm.
    coupling : str
        The NPT stage's coupling: ``isotropic`` keeps the shape of
        ``current_nm``; ``z`` keeps x and y; ``anisotropic``/``membrane``
        take the mean shape. In every case the volume equals
        ``mean(a * b * c)``.
    current_nm : numpy.ndarray, shape=(3,)
        Box edges at the end of the NPT stage, nm.

    Returns
    -------
    numpy.ndarray, shape=(3,)
        Box edges in nm.
    """
    samples = np.asarray(samples_nm, dtype=float)
    current = np.asarray(current_nm, dtype=float)
    if samples.ndim != 2 or samples.shape[1] != 3 or len(samples) == 0:
        raise SimulationError("no NPT box samples to average for the production volume")
    volume = float(np.mean(np.prod(samples, axis=1)))
    if coupling == "isotropic":
        shape = current
        return shape * (volume / np.prod(shape)) ** (1.0 / 3.0)
    if coupling == "z":
        return np.array([current[0], current[1], volume / (current[0] * current[1])])
    shape = samples.mean(axis=0)
    return shape * (volume / np.prod(shape)) ** (1.0 / 3.0)


def scale_molecules(
    positions_nm: np.ndarray,
    molecules: list[list[int]],
    masses_amu: np.ndarray,
    old_edges_nm: np.ndarray,
    new_edges_nm: np.ndarray,
) -> np.ndarray:
    """Move every molecule rigidly so its centre of mass scales with the box.

    Internal geometry (bond lengths, constraints) is unchanged, as in a Monte
    Carlo barostat move. Molecules of massless particles use the geometric
    centre.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_atoms, 3)
    molecules : list of list of int
        Atom indices of each molecule (``Context.getMolecules()``).
    masses_amu : numpy.ndarray, shape=(n_atoms,)
    old_edges_nm, new_edges_nm : numpy.ndarray, shape=(3,)
        Orthorhombic box edges before and after.

    Returns
    -------
    numpy.ndarray, shape=(n_atoms, 3)
        New positions in nm.
    """
    pos = np.array(positions_nm, dtype=float, copy=True)
    factor = np.asarray(new_edges_nm, dtype=float) / np.asarray(old_edges_nm, dtype=float)
    for mol in molecules:
        idx = np.asarray(mol, dtype=int)
        m = masses_amu[idx]
        centre = (m[:, None] * pos[idx]).sum(axis=0) / m.sum() if m.sum() > 0 else pos[idx].mean(axis=0)
        pos[idx] += centre * (factor - 1.0)
    return pos
