"""Atom groups and the positions of their particles (atoms or residue centres of mass) over a run.

A :class:`Group` is a labelled mdtraj selection whose *particles* are either
its atoms or, with ``com=True``, one particle per residue: the centre of
mass of the residue's **selected** atoms. That makes polymer-bound ions work:
selecting the sulfonate atoms of a Li-Nafion chain (one residue per side
chain, or several sulfonates in one residue) gives one particle per selected
residue, located at the centre of mass of its selected atoms only.

:func:`load_positions` streams the trajectory in chunks (never all atoms of
all frames at once), unwraps every atom by minimum-image steps
(:mod:`aseimd.analysis.unwrap`; residues are made whole in the first frame),
forms the particles and writes them into one preallocated
(n_frames, n_particles, 3) float32 array. Drift removal subtracts the
displacement of a reference centre of mass from every particle: of the whole
system (default; every atom is read in the same single pass and its
minimum-image steps, in float32, are mass-weighted into the centre-of-mass
step of each frame), of another group (e.g. a frozen Li slab), or nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from aseimd.analysis.trajectory import Trajectory
from aseimd.analysis.pbc import minimum_image
from aseimd.analysis.unwrap import Unwrapper
from aseimd.errors import AnalysisError, AseimdError

#: Bytes of float32 positions read per chunk in the all-atom pass for the system centre of mass.
SYSTEM_PASS_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class Group:
    """A labelled selection and how its atoms form particles.

    Attributes
    ----------
    label : str
        Name used in outputs.
    selection : str
        mdtraj selection string.
    atom_indices : numpy.ndarray, shape=(n_atoms,), dtype=int
        Selected atoms, ordered by particle.
    particle_of_atom : numpy.ndarray, shape=(n_atoms,), dtype=int
        Particle id 0..n_particles-1 of each atom (non-decreasing).
    atom_masses : numpy.ndarray, shape=(n_atoms,), dtype=float64
        In g/mol.
    particle_masses : numpy.ndarray, shape=(n_particles,), dtype=float64
        In g/mol.
    particle_residues : tuple of str
        Residue name of each particle.
    formal_charges : numpy.ndarray, shape=(n_particles,), dtype=float64
        Formal charge (e) of each particle from :mod:`aseimd.species` by residue
        name, NaN where unknown. A residue-COM particle carries its residue's
        charge even when only part of the residue is selected (the charged group
        of a polymer residue, e.g. a sulfonate); an atom particle only when it is
        a whole single-atom residue (e.g. Li+).
    com : bool
        Whether particles are residue centres of mass.
    atom_residues : numpy.ndarray, shape=(n_atoms,), dtype=int
        Topology residue index of each atom (coordination counts residues through it).
    """

    label: str
    selection: str
    atom_indices: np.ndarray
    particle_of_atom: np.ndarray
    atom_masses: np.ndarray
    particle_masses: np.ndarray
    particle_residues: tuple[str, ...]
    formal_charges: np.ndarray
    com: bool
    atom_residues: np.ndarray | None = None

    @property
    def n_particles(self) -> int:
        """Number of particles."""
        return int(self.particle_masses.size)

    @property
    def indices(self) -> np.ndarray:
        """The selected atom indices (:attr:`atom_indices`), shape=(n_atoms,)."""
        return self.atom_indices

    @property
    def residues(self) -> np.ndarray:
        """Topology residue index of each selected atom, shape=(n_atoms,)."""
        return self.atom_residues

    @property
    def n_residues(self) -> int:
        """Number of distinct residues the group's atoms belong to."""
        return int(np.unique(self.atom_residues).size)


def make_group(traj: Trajectory, label: str, selection: str, *, com: bool) -> Group:
    """Select atoms and define the group's particles.

    Raises
    ------
    AnalysisError
        On an empty or invalid selection, or atoms without a mass.
    """
    idx = traj.select(selection, label)
    top = traj.topology
    res_index = np.array([top.atom(i).residue.index for i in idx])
    order = np.lexsort((idx, res_index)) if com else np.argsort(idx, kind="stable")
    idx, res_index = idx[order], res_index[order]
    if com:
        _, particle = np.unique(res_index, return_inverse=True)
    else:
        particle = np.arange(idx.size)
    masses = traj.masses(idx)
    n_particles = int(particle.max()) + 1
    pmass = np.bincount(particle, weights=masses, minlength=n_particles)
    first = np.r_[0, np.flatnonzero(np.diff(particle)) + 1]
    residues = tuple(top.atom(int(idx[k])).residue.name for k in first)
    charges = np.full(n_particles, np.nan)
    for p, k in enumerate(first):
        residue = top.atom(int(idx[k])).residue
        if com or residue.n_atoms == 1:
            charges[p] = _formal_charge(residue.name)
    return Group(label, selection, idx, particle.astype(int), masses, pmass, residues, charges, com, res_index)


def group_from_indices(topology, label: str, selection: str, indices: np.ndarray) -> Group:
    """A group of atom particles from explicit atom indices of an mdtraj topology (ascending).

    Atoms without an element get mass 0 here (coordination needs no masses).
    """
    idx = np.sort(np.asarray(indices, dtype=int))
    if idx.size == 0:
        raise AnalysisError(f"group {label!r} ({selection}) matches no atoms")
    atoms = [topology.atom(int(i)) for i in idx]
    res = np.array([a.residue.index for a in atoms], dtype=int)
    masses = np.array([a.element.mass if a.element is not None else 0.0 for a in atoms], dtype=float)
    names = tuple(a.residue.name for a in atoms)
    charges = np.array([_formal_charge(a.residue.name) if a.residue.n_atoms == 1 else np.nan for a in atoms])
    return Group(label, selection, idx, np.arange(idx.size), masses, masses.copy(), names, charges, False, res)


@functools.lru_cache(maxsize=None)
def _formal_charge(residue_name: str) -> float:
    from aseimd.species import get_species

    try:
        return float(get_species(residue_name).formal_charge)
    except AseimdError:
        return float("nan")


@dataclass(frozen=True)
class ParticlePositions:
    """Unwrapped, drift-corrected particle positions of several groups.

    Attributes
    ----------
    xyz_nm : numpy.ndarray, shape=(n_frames, n_particles, 3), dtype=float32
        Positions in nm (unwrapped with float64 sums, stored as float32: ~1e-6 nm at 10 nm,
        far below any displacement that enters an MSD); particles of group ``label`` are ``xyz_nm[:, slices[label]]``.
    slices : dict of str to slice
    box_nm : numpy.ndarray, shape=(n_frames, 3, 3), or None
        Box vectors per frame in nm.
    drift_nm : numpy.ndarray, shape=(n_frames, 3)
        Displacement of the reference centre of mass that was subtracted.
    drift : str
        What was subtracted (``"system"``, ``"none"`` or ``"group:LABEL"``).
    """

    xyz_nm: np.ndarray
    slices: dict[str, slice]
    box_nm: np.ndarray | None
    drift_nm: np.ndarray
    drift: str

    def of(self, label: str) -> np.ndarray:
        """Positions of one group, shape=(n_frames, n_particles_in_group, 3)."""
        return self.xyz_nm[:, self.slices[label]]


def load_positions(
    traj: Trajectory,
    groups: list[Group],
    *,
    drift: str | Group = "system",
) -> ParticlePositions:
    """Stream, unwrap and drift-correct the particle positions of ``groups``.

    Parameters
    ----------
    traj : Trajectory
    groups : list of Group
    drift : {"system", "none"} or Group
        Reference whose centre-of-mass displacement is subtracted from every
        particle: the whole system (all atoms, mass-weighted), nothing, or a group.

    Returns
    -------
    ParticlePositions
    """
    if not groups:
        raise AnalysisError("no groups given")
    if isinstance(drift, str) and drift not in ("system", "none"):
        raise AnalysisError(f"drift {drift!r} not allowed; use 'system', 'none' or a reference group")
    ref = drift if isinstance(drift, Group) else None
    members = groups + ([ref] if ref is not None else [])
    union = np.unique(np.concatenate([g.atom_indices for g in members]))
    system = drift == "system"
    n_atoms = traj.topology.n_atoms
    # drift=system: read every atom once, in the same pass (the selected atoms are a subset of the chunk)
    read = np.arange(n_atoms) if system else union
    where_union = np.searchsorted(read, union)
    where = [np.searchsorted(union, g.atom_indices) for g in members]
    top = traj.topology
    residue_of_union = np.array([top.atom(int(i)).residue.index for i in union])
    unwrapper = Unwrapper(residue_of_union)

    n_part = [g.n_particles for g in groups]
    offsets = np.r_[0, np.cumsum(n_part)]
    slices = {g.label: slice(int(offsets[k]), int(offsets[k + 1])) for k, g in enumerate(groups)}
    xyz = np.empty((traj.n_frames, int(offsets[-1]), 3), dtype=np.float32)  # unwrapped, drift-free: ~1e-6 nm
    ref_com = np.empty((traj.n_frames, 3)) if ref is not None else None
    boxes = np.empty((traj.n_frames, 3, 3)) if traj.has_box else None
    com_steps = np.zeros((traj.n_frames, 3)) if system else None
    w_all = None
    if system:
        w_all = traj.masses(read)
        w_all = (w_all / w_all.sum()).astype(np.float32)
    chunk_frames = max(1, min(traj.chunk_frames, SYSTEM_PASS_BYTES // (12 * read.size)))
    others = np.setdiff1d(np.arange(read.size), where_union) if system else None
    rest_walk_last = None
    last_all = None
    com0 = None

    for chunk in traj.iter_chunks(read, chunk_frames=chunk_frames):
        n = chunk.xyz_nm.shape[0]
        sl = slice(chunk.start, chunk.start + n)
        sub = chunk.xyz_nm if read is union else chunk.xyz_nm[:, where_union]
        pos = unwrapper.feed(sub, chunk.box_nm)
        if boxes is not None:
            if chunk.box_nm is None:
                raise AnalysisError("the trajectory lost its unit cell part-way")
            boxes[sl] = chunk.box_nm
        for k, g in enumerate(groups):
            xyz[sl, slices[g.label]] = _particle_centres(pos[:, where[k]], g)
        if ref is not None:
            w = ref.atom_masses / ref.atom_masses.sum()
            ref_com[sl] = np.einsum("fai,a->fi", pos[:, where[-1]], w)
        if system and union.size == n_atoms:  # every atom is selected: its unwrapped positions give the COM
            com_steps[sl] = np.tensordot(pos, w_all.astype(np.float64), axes=(1, 0))
            if com0 is None:
                com0 = com_steps[0].copy()
            com_steps[sl] -= com0
        elif system:
            # selected atoms: their unwrapped positions; the others: minimum-image steps, mass-weighted
            rest = chunk.xyz_nm[:, others]
            prev = rest[:1] if last_all is None else last_all[None]
            steps = np.diff(np.concatenate([prev, rest]), axis=0)
            if chunk.box_nm is not None:
                steps = minimum_image(steps, chunk.box_nm)
            walk = np.cumsum(np.tensordot(steps, w_all[others], axes=(1, 0)), axis=0, dtype=np.float64)
            if sl.start:
                walk += rest_walk_last
            rest_walk_last = walk[-1].copy()
            com = np.tensordot(pos, w_all[where_union].astype(np.float64), axes=(1, 0)) + walk
            if com0 is None:
                com0 = com[0].copy()
            com_steps[sl] = com - com0
            last_all = np.array(rest[-1])
        if system:  # subtract while the chunk is in cache
            xyz[sl] -= com_steps[sl][:, None, :]

    if ref is not None:
        drift_nm, name = ref_com - ref_com[0], f"group:{ref.label}"
        xyz -= drift_nm[:, None, :]
    elif system:
        drift_nm, name = com_steps, "system"  # already subtracted chunk by chunk
    else:
        drift_nm, name = np.zeros((traj.n_frames, 3)), "none"
    return ParticlePositions(xyz, slices, boxes, drift_nm, name)


def _particle_centres(pos: np.ndarray, group: Group) -> np.ndarray:
    """Mass-weighted centres of each particle's atoms, shape=(n_frames, n_particles, 3)."""
    if not group.com or group.n_particles == group.atom_indices.size:  # one atom per particle: it is the centre
        return pos
    first = np.r_[0, np.flatnonzero(np.diff(group.particle_of_atom)) + 1]
    weighted = pos * group.atom_masses[None, :, None]
    return np.add.reduceat(weighted, first, axis=1) / group.particle_masses[None, :, None]
