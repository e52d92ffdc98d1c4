"""Reading trajectories for analysis: topology check, frame range, time step, selections, chunks.

Analysis never imports :mod:`aseimd.simulate`: it reads any trajectory mdtraj
can read with its topology (DCD, XTC, TRR, NetCDF, LAMMPS dump, ...). Frames
are streamed in chunks restricted to the selected atoms, so memory is bounded
by the selection, not by the whole system.

The frame spacing is resolved in this order: an explicit ``dt_ps``; the
``run.json`` that ``aseimd run`` writes beside its ``trajectory.dcd``; the time
step stored in a DCD header (NSAVC x DELTA); the time axis of formats that
carry one (XTC, TRR, NetCDF, HDF5). If none is available an
:class:`~aseimd.errors.AnalysisError` asks for ``--dt-ps``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aseimd.analysis.dcd_reader import open_dcd
from aseimd.errors import AnalysisError

#: One AKMA time unit (CHARMM/DCD headers) in ps.
AKMA_TIME_PS = 0.04888821

#: Formats whose frames store their own time (mdtraj invents 0, 1, 2, ... for the others).
_TIMED_FORMATS = (".xtc", ".trr", ".nc", ".netcdf", ".ncdf", ".h5", ".dtr")


@dataclass(frozen=True)
class Chunk:
    """A block of consecutive (selected, strided) frames.

    Attributes
    ----------
    start : int
        Index of the chunk's first frame within the selected frame range.
    xyz_nm : numpy.ndarray, shape=(n_frames, n_atoms, 3), dtype=float32
        Positions of the requested atoms, in nm, as stored (wrapped or not).
    box_nm : numpy.ndarray, shape=(n_frames, 3, 3), dtype=float64, or None
        Box vectors (rows) in nm, if the file carries a unit cell.
    """

    start: int
    xyz_nm: np.ndarray
    box_nm: np.ndarray | None


class Trajectory:
    """A topology + trajectory pair opened for streamed analysis.

    Parameters
    ----------
    top : str or path
        Topology file (PDB, PSF, PRMTOP, GRO, ... anything ``mdtraj.load_topology`` reads).
    traj : str or path
        Trajectory file.
    dt_ps : float, optional
        Time between stored frames in ps (before ``stride``); overrides what the file says.
    start, stop, stride : int, optional
        Frame range ``[start, stop)`` with step ``stride``, in stored frames.
    chunk_frames : int
        Frames read per chunk.
    """

    def __init__(
        self,
        top: str | Path,
        traj: str | Path,
        *,
        dt_ps: float | None = None,
        start: int = 0,
        stop: int | None = None,
        stride: int = 1,
        chunk_frames: int = 1000,
    ) -> None:
        import mdtraj

        self.top_path = Path(top)
        self.traj_path = Path(traj)
        for label, path in (("topology", self.top_path), ("trajectory", self.traj_path)):
            if not path.is_file():
                raise AnalysisError(f"{label} file {str(path)!r} does not exist")
        if dt_ps is not None and not dt_ps > 0:
            raise AnalysisError(f"--dt-ps must be > 0, got {dt_ps}")
        if start < 0 or stride < 1 or (stop is not None and stop <= start):
            raise AnalysisError(
                f"bad frame range start={start} stop={stop} stride={stride}; "
                "need 0 <= start < stop and stride >= 1"
            )
        if chunk_frames < 1:
            raise AnalysisError(f"chunk_frames must be >= 1, got {chunk_frames}")
        try:
            self.topology = mdtraj.load_topology(str(self.top_path))
        except Exception as exc:  # mdtraj raises many types for unreadable files
            raise AnalysisError(f"cannot read topology {str(self.top_path)!r}: {exc}") from None
        try:
            first = mdtraj.load_frame(str(self.traj_path), 0, top=self.topology)
        except Exception as exc:
            raise AnalysisError(
                f"trajectory {str(self.traj_path)!r} does not match topology "
                f"{str(self.top_path)!r} ({self.topology.n_atoms} atoms): {_first_line(exc)}"
            ) from None
        self._has_box = first.unitcell_vectors is not None
        # DCDs are read at byte offsets of the selected atoms (dcd_reader); other formats through mdtraj
        dcd = open_dcd(self.traj_path) if self.traj_path.suffix.lower() == ".dcd" else None
        self._dcd = dcd if dcd is not None and dcd.n_atoms == self.topology.n_atoms else None
        n_stored = self._dcd.n_frames if self._dcd is not None else _count_frames(self.traj_path, self.topology)
        stop = n_stored if stop is None else min(stop, n_stored)
        if start >= stop:
            raise AnalysisError(
                f"frame range start={start} is past the end of {str(self.traj_path)!r} ({n_stored} frames)"
            )
        self.start, self.stop, self.stride = start, stop, stride
        self.n_frames = len(range(start, stop, stride))
        self.chunk_frames = chunk_frames
        self._first = first
        self._given_dt_ps = dt_ps
        self._dt: tuple[float, str] | None = None

    def _resolved_dt(self) -> tuple[float, str]:
        # resolved lazily: analyses that need no time axis (g(r), profiles) work without one
        if self._dt is None:
            if self._given_dt_ps is not None:
                self._dt = (float(self._given_dt_ps), "--dt-ps")
            else:
                self._dt = _resolve_dt_ps(self.traj_path, self._first)
        return self._dt

    @property
    def dt_ps(self) -> float:
        """Time between selected frames in ps (stored spacing x stride).

        Raises
        ------
        AnalysisError
            If the file carries no time step and none was given.
        """
        return self._resolved_dt()[0] * self.stride

    @property
    def dt_source(self) -> str:
        """Where :attr:`dt_ps` came from (``--dt-ps``, a run.json path, ``DCD header``, ...)."""
        return self._resolved_dt()[1]

    @property
    def has_box(self) -> bool:
        """Whether the trajectory carries unit-cell information."""
        return self._has_box

    @property
    def times_ps(self) -> np.ndarray:
        """Time of each selected frame relative to the first, shape=(n_frames,), in ps."""
        return np.arange(self.n_frames) * self.dt_ps

    def select(self, selection: str, label: str = "") -> np.ndarray:
        """Atom indices of an mdtraj selection; an empty or invalid selection is an error.

        Returns
        -------
        numpy.ndarray, shape=(n,), dtype=int
        """
        name = f"group {label!r} " if label else ""
        try:
            idx = self.topology.select(selection)
        except Exception as exc:
            raise AnalysisError(f"{name}selection {selection!r} is invalid: {_first_line(exc)}") from None
        if idx.size == 0:
            raise AnalysisError(f"{name}selection {selection!r} matches no atoms")
        return np.asarray(idx, dtype=int)

    def masses(self, atom_indices: np.ndarray) -> np.ndarray:
        """Atomic masses in g/mol (Da) of the given atoms, shape=(n,)."""
        atoms = list(self.topology.atoms)
        m = np.array([atoms[i].element.mass if atoms[i].element is not None else 0.0 for i in atom_indices])
        if np.any(m <= 0):
            bad = [atoms[i].name for i, mi in zip(atom_indices, m, strict=True) if mi <= 0][:5]
            raise AnalysisError(f"atoms without a mass (element unknown) in selection: {bad}")
        return m

    def iter_chunks(self, atom_indices: np.ndarray, chunk_frames: int | None = None) -> Iterator[Chunk]:
        """Stream the selected frames of ``atom_indices`` in chunks of ``chunk_frames`` (default: the
        reader's ``chunk_frames``).

        Yields
        ------
        Chunk
        """
        import mdtraj

        atom_indices = np.asarray(atom_indices, dtype=int)
        chunk = chunk_frames or self.chunk_frames
        if self._dcd is not None:
            frames = np.arange(self.start, self.stop, self.stride)
            for lo in range(0, len(frames), chunk):
                xyz, box = self._dcd.read(frames[lo:lo + chunk], atom_indices)
                yield Chunk(lo, xyz, box)
            return
        done = 0
        it = mdtraj.iterload(
            str(self.traj_path),
            chunk=chunk * self.stride,
            top=self.topology,
            skip=self.start,
            stride=self.stride,
            atom_indices=atom_indices,
        )
        for frames in it:
            n = min(frames.n_frames, self.n_frames - done)
            if n <= 0:
                break
            box = None if frames.unitcell_vectors is None else np.asarray(frames.unitcell_vectors[:n], float)
            yield Chunk(done, np.asarray(frames.xyz[:n]), box)
            done += n
        if done != self.n_frames:
            raise AnalysisError(
                f"trajectory {str(self.traj_path)!r} ended after {done} of {self.n_frames} expected frames"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _count_frames(path: Path, topology) -> int:
    import mdtraj

    try:
        with mdtraj.open(str(path)) as fh:
            return len(fh)
    except Exception:  # formats without a cheap length: count by streaming one atom
        return sum(c.n_frames for c in mdtraj.iterload(str(path), top=topology, atom_indices=[0]))


def _resolve_dt_ps(path: Path, first_frame) -> tuple[float, str]:
    run_json = path.with_name("run.json")
    if run_json.is_file():
        try:
            block = json.loads(run_json.read_text()).get("trajectory", {})
        except (OSError, ValueError):
            block = {}
        if block.get("file") == path.name and block.get("dt_ps"):
            return float(block["dt_ps"]), str(run_json)
    if path.suffix.lower() == ".dcd":
        dt = _dcd_frame_spacing_ps(path)
        if dt:
            return dt, "DCD header"
    else:
        import mdtraj

        try:
            times = next(mdtraj.iterload(str(path), chunk=2, top=first_frame.topology, atom_indices=[0])).time
        except Exception:
            times = np.array([])
        carries_time = path.suffix.lower() in _TIMED_FORMATS
        if carries_time and len(times) == 2 and times[1] > times[0]:
            return float(times[1] - times[0]), "file time axis"
    raise AnalysisError(
        f"trajectory {str(path)!r} carries no usable time step; pass --dt-ps (ps between stored frames)"
    )


def _dcd_frame_spacing_ps(path: Path) -> float | None:
    """Frame spacing from a CHARMM/OpenMM DCD header: NSAVC x DELTA (AKMA units), in ps."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if len(head) < 48 or head[4:8] != b"CORD":
        return None
    (nsavc,) = struct.unpack("<i", head[16:20])
    (delta,) = struct.unpack("<f", head[44:48])
    if nsavc == 1 and delta == 1.0:  # mdtraj's placeholder header: no real time step recorded
        return None
    dt = nsavc * delta * AKMA_TIME_PS
    return dt if dt > 0 and np.isfinite(dt) else None
