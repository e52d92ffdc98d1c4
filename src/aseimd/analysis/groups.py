"""Atom groups and the positions of their particles (atoms or residue centres of mass) over a run.

A :class:`Group` is a labelled mdtraj selection whose *particles* are either
its atoms or, with ``com=True``, one particle per residue: the centre of
mass of the residue's **selected** atoms. That makes polymer-bound ions work:
selecting the sulfonate atoms of a Li-Nafion chain (one residue per side
chain, or several sulfonates in one residue) gives one particle per selected
residue, located at the centre of mass of its selected atoms only.

:func:`load_positions` (through the incremental :class:`PositionCollector`,
which :func:`aseimd.analysis.engine.run_analyses` feeds in its single pass) streams the trajectory in chunks (never all atoms of
all frames at once), unwraps the groups' atoms by minimum-image steps
(:mod:`aseimd.analysis.unwrap`; residues are made whole in the first frame),
forms the particles and writes them into one preallocated
(n_frames, n_particles, 3) float32 array. Drift removal subtracts the
displacement of a reference centre of mass from every particle: of the whole
system (default; every atom is read in the same single pass, and the centre of
mass moves by the mass-weighted minimum-image steps of all atoms,
:class:`aseimd.analysis.unwrap.CentreDrift`, so only the groups' atoms are
unwrapped), of another group (e.g. a frozen Li slab), or nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from aseimd.analysis._arrays import unique
from aseimd.analysis.trajectory import Trajectory
from aseimd.analysis.unwrap import CentreDrift, Unwrapper, make_whole
from aseimd.errors import AnalysisError, AseimdError

#: Bytes of float32 positions read per chunk in the all-atom pass for the system centre of mass.
SYSTEM_PASS_BYTES = 64 * 1024**2
#: Bytes of float32 positions per block that :meth:`PositionCollector.feed` works on at a time (cache-sized).
BLOCK_BYTES = 512 * 1024


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
        return int(unique(self.atom_residues).size)


def make_group(traj: Trajectory, label: str, selection: str, *, com: bool) -> Group:
    """Select atoms and define the group's particles.

    Raises
    ------
    AnalysisError
        On an empty or invalid selection, or atoms without a mass.
    """
    idx = traj.select(selection, label)
    table = traj.atoms
    res_index = table.residue[idx]
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
    residues = tuple(table.residue_names[int(res_index[k])] for k in first)
    charges = np.full(n_particles, np.nan)
    for p, k in enumerate(first):
        residue = int(res_index[k])
        if com or table.residue_n_atoms[residue] == 1:
            charges[p] = _formal_charge(table.residue_names[residue])
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

    One read of the trajectory through a :class:`PositionCollector` (what
    :func:`aseimd.analysis.engine.run_analyses` feeds, together with every other
    analysis, in its single pass).

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
    collector = PositionCollector(traj, groups, drift=drift)
    for chunk in traj.iter_chunks(collector.atoms, chunk_frames=collector.chunk_frames(traj)):
        collector.feed(chunk)
    collector.end_pass()
    return collector.result()


class PositionCollector:
    """Incremental form of :func:`load_positions`: feed chunks of :attr:`atoms` in frame order, then :meth:`result`.

    The streaming contract of :mod:`aseimd.analysis.engine`: ``atoms`` (the
    atom indices it needs, ascending), ``feed(chunk)`` with a
    :class:`~aseimd.analysis.trajectory.Chunk` of exactly those atoms,
    ``end_pass()`` (``None``: no further pass needed). The groups' atoms are
    unwrapped by minimum-image steps (:class:`~aseimd.analysis.unwrap.Unwrapper`,
    residues made whole in the first frame); with ``drift="system"`` every atom
    of the system is read in the same pass (no second all-atom read): the
    groups' atoms are unwrapped, their residues made whole over all the
    residue's atoms exactly as if every atom were unwrapped, and the system
    centre of mass follows from the steps of all atoms
    (:class:`~aseimd.analysis.unwrap.CentreDrift`: the mass-weighted mean of
    the unwrapped positions to float64 rounding, without forming them).
    Unwrapping is elementwise, so an atom's positions and the drift do not
    depend on which groups are selected: analyses that share one collector get
    bit for bit what each gets alone.

    Parameters
    ----------
    traj : Trajectory
    groups : list of Group
    drift : {"system", "none"} or Group
    """

    def __init__(self, traj: Trajectory, groups: list[Group], *, drift: str | Group = "system") -> None:
        if not groups:
            raise AnalysisError("no groups given")
        if isinstance(drift, str) and drift not in ("system", "none"):
            raise AnalysisError(f"drift {drift!r} not allowed; use 'system', 'none' or a reference group")
        self.groups = list(groups)
        self.ref = ref = drift if isinstance(drift, Group) else None
        members = self.groups + ([ref] if ref is not None else [])
        self.system = system = drift == "system"
        n_atoms = traj.n_atoms
        # unwrapping is elementwise and the system centre of mass comes from every atom's steps, so each atom's
        # positions and the drift come out bit for bit the same whichever groups are selected: analyses
        # sharing one read equal each run alone
        union = unique(np.concatenate([g.atom_indices for g in members]))  # the atoms unwrapped
        self.atoms = read = np.arange(n_atoms) if system else union  # read: with drift=system, every atom
        self._union = _view(union) if system else slice(None)  # the unwrapped atoms among those read
        self._where = [_view(np.searchsorted(union, g.atom_indices)) for g in members]
        residue_of_read = traj.atoms.residue[read]
        # drift=system: the first frame is made whole over every atom's residue (as if every atom were
        # unwrapped), then only the union is followed; the other atoms enter through their steps alone
        self._residue_of_read = residue_of_read if system else None
        self._unwrapper = Unwrapper(None if system else residue_of_read)
        n_part = [g.n_particles for g in self.groups]
        offsets = np.r_[0, np.cumsum(n_part)]
        self.slices = {g.label: slice(int(offsets[k]), int(offsets[k + 1])) for k, g in enumerate(self.groups)}
        n_frames = traj.n_frames
        self._xyz = np.empty((n_frames, int(offsets[-1]), 3), dtype=np.float32)  # unwrapped, drift-free
        self._ref_com = np.empty((n_frames, 3)) if ref is not None else None
        self._boxes = np.empty((n_frames, 3, 3)) if traj.has_box else None
        self._com_steps = np.zeros((n_frames, 3)) if system else None
        self._drift = None
        if system:  # mass fractions (rounded to float32 as before, so the drift keeps its golden values)
            w_all = traj.masses(read)
            self._drift = CentreDrift((w_all / w_all.sum()).astype(np.float32).astype(np.float64))
        self._w_ref = None if ref is None else ref.atom_masses / ref.atom_masses.sum()
        self._n_fed = 0
        self._n_frames = n_frames
        self._block_frames = max(1, BLOCK_BYTES // (12 * read.size))

    def chunk_frames(self, traj: Trajectory) -> int:
        """Frames per chunk when this collector reads alone (float32 chunks of at most :data:`SYSTEM_PASS_BYTES`)."""
        return max(1, min(traj.chunk_frames, SYSTEM_PASS_BYTES // (12 * self.atoms.size)))

    def feed(self, chunk) -> None:
        """Unwrap one chunk (positions of :attr:`atoms`, frames in order) and store its particles.

        The chunk is worked through in blocks of about :data:`BLOCK_BYTES` of positions: the
        several numpy passes over each block (steps, image counts, centres, drift) then run in
        the CPU cache and reuse small temporaries, instead of streaming chunk-sized arrays
        through memory once per pass. The unwrapper carries its state across block boundaries, and
        the centre of mass is formed frame by frame, so the blocks do not change the numbers.
        """
        n = chunk.xyz_nm.shape[0]
        if chunk.start != self._n_fed:
            raise AnalysisError(f"internal: chunk at frame {chunk.start} after {self._n_fed} frames")
        if self._boxes is not None and chunk.box_nm is None:
            raise AnalysisError("the trajectory lost its unit cell part-way")
        self._n_fed += n
        step = self._block_frames
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            self._feed_block(chunk.start + lo, chunk.xyz_nm[lo:hi],
                             None if chunk.box_nm is None else chunk.box_nm[lo:hi])

    def _feed_block(self, start: int, xyz_nm: np.ndarray, box_nm: np.ndarray | None) -> None:
        n = xyz_nm.shape[0]
        sl = slice(start, start + n)
        xyz, groups, slices, where = self._xyz, self.groups, self.slices, self._where
        if self._residue_of_read is not None and start == 0 and box_nm is not None:
            whole = make_whole(xyz_nm[0], np.asarray(box_nm[0], np.float64), self._residue_of_read)
            self._unwrapper.start(xyz_nm[0, self._union], whole[self._union])
        pos = self._unwrapper.feed(xyz_nm[:, self._union], box_nm)
        if self._boxes is not None:
            self._boxes[sl] = box_nm
        for k, g in enumerate(groups):
            xyz[sl, slices[g.label]] = _particle_centres(pos[:, where[k]], g)
        if self.ref is not None:
            self._ref_com[sl] = self._w_ref @ pos[:, where[-1]]  # (n_ref,) @ (n, n_ref, 3) -> (n, 3)
        if not self.system:
            return
        com_steps = self._com_steps  # drift=system: the centre of mass of every atom, from their steps
        com_steps[sl] = self._drift.feed(xyz_nm, box_nm)
        # subtract while the chunk is in cache; the drift is tiled to one row per frame so that the
        # subtraction runs over whole rows (a (n, 1, 3) broadcast has an inner loop of 3 elements)
        rows = xyz[sl].reshape(n, -1)
        rows -= np.tile(com_steps[sl], (1, xyz.shape[1]))

    def end_pass(self):
        """No further pass is needed (``None``); checks that every frame was fed."""
        if self._n_fed != self._n_frames:
            raise AnalysisError(f"internal: {self._n_fed} of {self._n_frames} frames fed to the position collector")
        return None

    def result(self) -> ParticlePositions:
        """The positions of every group, after the pass."""
        xyz = self._xyz
        if self.ref is not None:
            drift_nm, name = self._ref_com - self._ref_com[0], f"group:{self.ref.label}"
            xyz -= drift_nm[:, None, :]
        elif self.system:
            drift_nm, name = self._com_steps, "system"  # already subtracted chunk by chunk
        else:
            drift_nm, name = np.zeros((self._n_frames, 3)), "none"
        return ParticlePositions(xyz, self.slices, self._boxes, drift_nm, name)


def _view(index: np.ndarray) -> np.ndarray | slice:
    """``index`` (ascending positions) as a slice when it is one contiguous run: indexing then makes a view."""
    if index.size and index[-1] - index[0] == index.size - 1 and np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _particle_centres(pos: np.ndarray, group: Group) -> np.ndarray:
    """Mass-weighted centres of each particle's atoms, shape=(n_frames, n_particles, 3)."""
    if not group.com or group.n_particles == group.atom_indices.size:  # one atom per particle: it is the centre
        return pos
    first = np.r_[0, np.flatnonzero(np.diff(group.particle_of_atom)) + 1]
    weighted = pos * group.atom_masses[None, :, None]
    return np.add.reduceat(weighted, first, axis=1) / group.particle_masses[None, :, None]
