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

DCDs are checked when opened: empty, not a DCD, an atom count other than the
topology's, or no complete frame are errors that say so; a file torn inside a
frame (or shorter than its header announces) is read on its complete frames
and :attr:`Trajectory.warnings` says so (the analyses report it with their
numbers). XTC and TRR files (GROMACS, read by mdtraj through its frame index)
get the same checks (:func:`_checked_xdr`): mdtraj indexes a cut file up to
the last frame *header* it finds and then fails with "XTC read error" on the
torn frame, so the last indexed frame is decoded once when the file is opened,
and a torn one (or bytes after the last frame) is left out with a warning;
frames are then read in bounded chunks that never touch the torn tail.
Other formats: an empty file, or a first frame mdtraj cannot read (damaged,
cut short, wrong extension; or another atom count), is an error that says which.
mdtraj's C readers are silenced on stdout (:func:`quiet_c_stdout`; also on
stderr while a damaged file is probed).
:func:`open_trajectory` also accepts an mdtraj Trajectory or an MDAnalysis
Universe in memory (:class:`MemoryTrajectory`).

A plain PDB topology (as ``aseimd build`` writes it) is read without mdtraj
(:mod:`aseimd.analysis.atom_table`) and selections in the common syntax are
evaluated on its atom table (:mod:`aseimd.analysis.selection`); any other
topology, PDB or selection goes to mdtraj, and the mdtraj ``Topology`` is
loaded on first use of :attr:`Trajectory.topology`. With a DCD, the common
``analyze diffusion`` / ``transference`` run then never imports mdtraj.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aseimd.analysis.atom_table import AtomTable, read_pdb_table
from aseimd.analysis.dcd_reader import open_dcd
from aseimd.analysis.selection import select as light_select
from aseimd.errors import AnalysisError

#: One AKMA time unit (CHARMM/DCD headers) in ps.
AKMA_TIME_PS = 0.04888821

#: Formats whose frames store their own time (mdtraj invents 0, 1, 2, ... for the others).
_TIMED_FORMATS = (".xtc", ".trr", ".nc", ".netcdf", ".ncdf", ".h5", ".dtr")
#: GROMACS XDR formats: checked for damage when opened (:func:`_checked_xdr`), magic number of their frames.
_XDR_MAGIC = {".xtc": 1995, ".trr": 1993}


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
        self.top_path = Path(top)
        self.traj_path = Path(traj)
        for label, path in (("topology", self.top_path), ("trajectory", self.traj_path)):
            if not path.is_file():
                raise AnalysisError(f"{label} file {str(path)!r} does not exist")
        if dt_ps is not None and not (dt_ps > 0 and math.isfinite(dt_ps)):
            raise AnalysisError(f"--dt-ps must be a finite number > 0, got {dt_ps}")
        if start < 0 or stride < 1 or (stop is not None and stop <= start):
            raise AnalysisError(
                f"bad frame range start={start} stop={stop} stride={stride}; "
                "need 0 <= start < stop and stride >= 1"
            )
        if chunk_frames < 1:
            raise AnalysisError(f"chunk_frames must be >= 1, got {chunk_frames}")
        # a plain PDB is read without mdtraj (atom_table); anything else, and the topology object itself
        # when an analysis asks for it, through mdtraj.load_topology
        self._topology = None
        self._light_atoms = read_pdb_table(self.top_path) if self.top_path.suffix.lower() == ".pdb" else None
        self._atoms = self._light_atoms
        if self._atoms is None:
            self._load_topology()
        #: Problems with the file that did not stop the analysis (e.g. a torn last frame); reported with results.
        self.warnings: list[str] = []
        # DCDs are checked and read at byte offsets of the selected atoms (dcd_reader); other formats by mdtraj
        self._dcd = None
        suffix = self.traj_path.suffix.lower()
        if suffix == ".dcd":
            self._dcd = _checked_dcd(self.traj_path, self.top_path, self.atoms, self.warnings)
        #: complete frames of an XTC/TRR (checked; read in bounded chunks), None for other formats
        self._xdr_frames = None
        if suffix in _XDR_MAGIC:
            self._xdr_frames = _checked_xdr(self.traj_path, self.top_path, self.topology, self.warnings)
        if self._dcd is not None:
            first = None
            self._has_box = self._dcd.has_box
            n_stored = self._dcd.n_frames
        else:
            import mdtraj

            if self.traj_path.stat().st_size == 0:
                raise AnalysisError(f"trajectory {str(self.traj_path)!r} is empty (0 bytes)")
            try:
                with quiet_c_stdout():
                    first = mdtraj.load_frame(str(self.traj_path), 0, top=self.topology)
            except Exception as exc:
                raise AnalysisError(_unreadable(self.traj_path, self.top_path, self.topology, exc)) from None
            self._has_box = first.unitcell_vectors is not None
            if self._xdr_frames is not None:
                n_stored = self._xdr_frames
            else:
                with quiet_c_stdout():
                    n_stored = _count_frames(self.traj_path, self.topology)
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

    def _load_topology(self):
        import mdtraj

        try:
            self._topology = mdtraj.load_topology(str(self.top_path))
        except Exception as exc:  # mdtraj raises many types for unreadable files
            raise AnalysisError(f"cannot read topology {str(self.top_path)!r}: {exc}") from None
        return self._topology

    @property
    def topology(self):
        """The mdtraj ``Topology`` (loaded on first use when the PDB was read without mdtraj)."""
        if self._topology is None:
            return self._load_topology()
        return self._topology

    @topology.setter
    def topology(self, value) -> None:
        self._topology = value
        self._atoms = self._light_atoms = None

    @property
    def atoms(self) -> AtomTable:
        """Names, residues, elements and masses of every atom (:class:`~aseimd.analysis.atom_table.AtomTable`)."""
        if self._atoms is None:
            self._atoms = AtomTable.from_mdtraj(self.topology)
        return self._atoms

    @property
    def n_atoms(self) -> int:
        """Atoms in the topology."""
        return self._atoms.n_atoms if self._atoms is not None else self.topology.n_atoms

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

    def meta(self) -> dict:
        """What was read, for the ``meta`` block of every analysis JSON."""
        from aseimd import __version__

        return {
            "top": str(self.top_path), "traj": str(self.traj_path),
            "frames": {"start": self.start, "stop": self.stop, "stride": self.stride, "n_frames": self.n_frames},
            "dt_ps": self.dt_ps, "dt_source": self.dt_source, "aseimd_version": __version__,
            "trajectory_warnings": list(self.warnings),
        }

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
        # the common syntax is evaluated on the atom table of a PDB read without mdtraj; anything else by mdtraj
        idx = None if self._light_atoms is None else light_select(self._light_atoms, selection)
        try:
            if idx is None:
                idx = self.topology.select(selection)
        except Exception as exc:
            raise AnalysisError(
                f"{name}selection {selection!r} is invalid: {_selection_problem(exc)}; mdtraj selection syntax, "
                "e.g. 'resname LI' or 'resname EC and name O1'"
            ) from None
        if idx.size == 0:
            raise AnalysisError(f"{name}selection {selection!r} matches no atoms")
        return np.asarray(idx, dtype=int)

    def masses(self, atom_indices: np.ndarray) -> np.ndarray:
        """Atomic masses in g/mol (Da) of the given atoms, shape=(n,)."""
        table = self.atoms
        atom_indices = np.asarray(atom_indices, dtype=int)
        m = table.masses[atom_indices]
        if np.any(m <= 0):
            bad = [table.names[i] for i, mi in zip(atom_indices, m, strict=True) if mi <= 0][:5]
            raise AnalysisError(f"atoms without a mass (element unknown) in selection: {bad}")
        return m

    def first_box_nm(self) -> np.ndarray | None:
        """Box vectors (rows, nm) of the first selected frame, shape=(3, 3), or None; read once (one atom, one frame)."""
        if not hasattr(self, "_first_box"):
            if getattr(self, "_dcd", None) is not None:
                _, box = self._dcd.read(np.array([self.start]), np.array([0]))
            else:
                box = next(self.iter_chunks(np.array([0]), chunk_frames=1)).box_nm
            self._first_box = None if box is None else np.array(box[0], dtype=np.float64)
        return self._first_box

    def box_series_nm(self) -> np.ndarray | None:
        """Box vectors (rows, nm) of every selected frame, shape=(n_frames, 3, 3), where that is cheap: a DCD
        (only the unit-cell record of each frame is read, not its coordinates). ``None`` for formats that would need a full
        read (XTC, TRR, others) and for trajectories without a box."""
        if getattr(self, "_dcd", None) is None or not self.has_box:
            return None
        if not hasattr(self, "_box_series"):
            self._box_series = self._dcd.read_boxes(np.arange(self.start, self.stop, self.stride))
        return self._box_series

    def iter_chunks(self, atom_indices: np.ndarray, chunk_frames: int | None = None) -> Iterator[Chunk]:
        """Stream the selected frames of ``atom_indices`` in chunks of ``chunk_frames`` (default: the
        reader's ``chunk_frames``).

        Yields
        ------
        Chunk
        """
        atom_indices = np.asarray(atom_indices, dtype=int)
        chunk = chunk_frames or self.chunk_frames
        if self._dcd is not None:
            frames = np.arange(self.start, self.stop, self.stride)
            for lo in range(0, len(frames), chunk):
                xyz, box = self._dcd.read(frames[lo:lo + chunk], atom_indices)
                yield Chunk(lo, xyz, box)
            return
        if self._xdr_frames is not None:
            yield from self._iter_xdr(atom_indices, chunk)
            return
        import mdtraj

        done = 0
        with quiet_c_stdout():
            it = mdtraj.iterload(
                str(self.traj_path),
                chunk=chunk * self.stride,
                top=self.topology,
                skip=self.start,
                stride=self.stride,
                atom_indices=atom_indices,
            )
            frames_list = it
        for frames in _quiet_iter(frames_list):
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


    def _iter_xdr(self, atom_indices: np.ndarray, chunk: int) -> Iterator[Chunk]:
        """Chunks of an XTC/TRR read by frame count, so that a torn frame after :attr:`stop` is never decoded.

        With ``stride > 1`` every wanted frame is read on its own after a seek (the skipped frames are not
        decoded): mdtraj 1.11's XTC/TRR readers corrupt memory (glibc aborts, segfaults) when given
        ``stride > 1`` together with ``atom_indices``.
        """
        import mdtraj

        done, stride = 0, self.stride
        with quiet_c_stdout(), mdtraj.open(str(self.traj_path)) as fh:
            if stride == 1 and self.start:
                fh.seek(self.start)  # (a seek builds mdtraj's frame index: only when needed)
            while done < self.n_frames:
                want = min(chunk, self.n_frames - done)
                if stride == 1:
                    frames = fh.read_as_traj(self.topology, n_frames=want, atom_indices=atom_indices)
                    xyz, box = np.asarray(frames.xyz), frames.unitcell_vectors
                else:
                    xyz = np.empty((want, len(atom_indices), 3), dtype=np.float32)
                    box = np.empty((want, 3, 3)) if self._has_box else None
                    for k in range(want):
                        fh.seek(self.start + (done + k) * stride)
                        got = fh.read(n_frames=1, atom_indices=atom_indices)  # (xyz, time, step, box, ...)
                        xyz[k] = got[0][0]
                        if box is not None:
                            box[k] = got[3][0]
                if xyz.shape[0] != want:
                    break
                yield Chunk(done, xyz, None if box is None else np.asarray(box, dtype=np.float64))
                done += want
        if done != self.n_frames:
            raise AnalysisError(
                f"trajectory {str(self.traj_path)!r} ended after {done} of {self.n_frames} expected frames"
            )


@contextlib.contextmanager
def quiet_c_stdout():
    """Silence C-level writes to stdout (fd 1), e.g. mdtraj's ``dcdplugin) ...`` lines, inside the block."""
    try:
        sys.stdout.flush()
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        saved = os.dup(fd)
    except (OSError, ValueError, AttributeError):  # no real stdout (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence C-level writes to stderr (fd 2), e.g. xdrfile's "(xdrfile error) ..." while a damaged file is probed."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _checked_xdr(path: Path, top_path: Path, topology, warnings: list[str]) -> int:
    """Complete frames of an XTC or TRR file after checking it; raise on what cannot be analysed.

    Empty, not an XTC/TRR (no frame magic number), an atom count other than the
    topology's, or no complete frame are errors; a file cut inside a frame is
    analysed on its complete frames and ``warnings`` says so. XTC/TRR files do
    not announce their frame count, so the message gives the frame that is torn.
    """
    import mdtraj

    name, kind = str(path), path.suffix.lower()[1:].upper()
    size = path.stat().st_size
    if size == 0:
        raise AnalysisError(f"trajectory {name!r} is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if len(head) < 4 or int.from_bytes(head, "big") != _XDR_MAGIC[path.suffix.lower()]:
        raise AnalysisError(f"trajectory {name!r} is not {'an' if kind == 'XTC' else 'a'} {kind} file "
                            f"(no {kind} frame header); "
                            "give a DCD, XTC, TRR, NetCDF, ... with a matching extension")
    if kind == "XTC" and size >= 8:
        _check_small_xtc(path, size)
    with quiet_c_stdout(), _quiet_c_stderr():
        try:
            fh = mdtraj.open(name)
        except Exception:  # the magic number is right: the first frame header is cut
            raise AnalysisError(f"trajectory {name!r} holds no complete frame (truncated inside frame 1)") from None
        with fh:
            try:
                n_indexed = len(fh)
                xyz = fh.read(n_frames=1)[0]
            except Exception:  # the first frame header or its coordinates are cut
                raise AnalysisError(f"trajectory {name!r} holds no complete frame (truncated inside frame 1)"
                                    ) from None
            if xyz.shape[1] != topology.n_atoms:
                raise AnalysisError(
                    f"trajectory {name!r} does not match topology {str(top_path)!r}: {xyz.shape[1]} atoms per "
                    f"frame, the topology has {topology.n_atoms}")
            # mdtraj's index runs to the last frame header; decode the last indexed frame and look past it
            complete, torn = n_indexed, False
            try:
                fh.seek(n_indexed - 1)
                fh.read(n_frames=1)
            except Exception:
                complete, torn = n_indexed - 1, True
            if not torn:
                try:
                    fh.read(n_frames=1)  # at the end of a whole file: no frame, no error
                except Exception:  # the start of a torn frame after the last indexed one
                    torn = True
            offsets = np.asarray(getattr(fh, "offsets", []), dtype=np.int64)
    if not torn and offsets.size:  # a tail too short for mdtraj to notice (a few bytes of the next frame)
        if kind == "XTC":
            torn = size > offsets[-1] + _xtc_frame_bytes(path, int(offsets[-1]))
        elif offsets.size >= 2 and np.all(np.diff(offsets) == offsets[1] - offsets[0]):
            torn = size > offsets[-1] + (offsets[1] - offsets[0])  # TRR frames of one size
    if complete == 0:
        raise AnalysisError(f"trajectory {name!r} holds no complete frame (truncated inside frame 1)")
    if torn:
        warnings.append(f"trajectory {name!r} is truncated inside frame {complete + 1}; "
                        f"analysing its {complete} complete frames")
    return complete


def _check_small_xtc(path: Path, size: int) -> None:
    """mdtraj indexes an XTC of <= 9 atoms (plain-float frames) by file size alone and cannot open a cut one."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    (n_atoms,) = struct.unpack(">i", head[4:8])
    if not 0 < n_atoms <= 9:
        return
    frame = 56 + 12 * n_atoms
    complete, tail = divmod(size, frame)
    if tail:
        raise AnalysisError(
            f"trajectory {str(path)!r} is truncated inside frame {complete + 1} and mdtraj cannot read a cut XTC "
            f"of {n_atoms} atoms (<= 9); keep its {complete} complete frames by cutting it to {complete * frame} "
            "bytes (e.g. truncate -s)")


def _xtc_frame_bytes(path: Path, offset: int) -> int:
    """Length in bytes of the (decodable) XTC frame at ``offset``: a 56-byte header (magic, natoms, step,
    time, box, natoms), then 3 natoms floats (natoms <= 9) or the compressed block (precision, min/max
    integers, small index, byte count, the bytes padded to 4; GROMACS xdr3dfcoord)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        head = fh.read(92)
    (n_atoms,) = struct.unpack(">i", head[4:8])
    if n_atoms <= 9:
        return 56 + 12 * n_atoms
    (n_bytes,) = struct.unpack(">i", head[88:92])
    return 92 + (n_bytes + 3) // 4 * 4


def _quiet_iter(iterable):
    it = iter(iterable)
    while True:
        with quiet_c_stdout():
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


def _checked_dcd(path: Path, top_path: Path, topology, warnings: list[str]):
    """Open a DCD for byte-offset reads after checking it; raise on what cannot be analysed.

    Returns None for DCD variants the offset reader does not handle (mdtraj reads them).
    """
    size = path.stat().st_size
    name = str(path)
    if size == 0:
        raise AnalysisError(f"trajectory {name!r} is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[4:8] != b"CORD":
        raise AnalysisError(f"trajectory {name!r} is not a DCD file (no CHARMM 'CORD' header); "
                            "give a DCD, XTC, TRR, NetCDF, ... with a matching extension")
    dcd = open_dcd(path)
    if dcd is None:
        return None
    if dcd.n_atoms != topology.n_atoms:
        raise AnalysisError(
            f"trajectory {name!r} does not match topology {str(top_path)!r}: {dcd.n_atoms} atoms per frame, "
            f"the topology has {topology.n_atoms}"
        )
    announced = dcd.n_frames_header
    if dcd.trailing_bytes:
        total = max(announced, dcd.n_frames + 1)
        if dcd.n_frames == 0:
            raise AnalysisError(f"trajectory {name!r} holds no complete frame (truncated inside frame 1 of {total})")
        warnings.append(f"trajectory {name!r} is truncated inside frame {dcd.n_frames + 1} of {total}; "
                        f"analysing its {dcd.n_frames} complete frames")
    elif dcd.n_frames == 0:
        raise AnalysisError(f"trajectory {name!r} holds no frames (header only)")
    elif announced > dcd.n_frames:
        warnings.append(f"trajectory {name!r} is truncated after frame {dcd.n_frames} of {announced} (its header "
                        f"announces {announced}); analysing its {dcd.n_frames} complete frames")
    return dcd


#: Longest part of a parser message quoted in an error (pyparsing can dump its whole grammar).
MAX_PARSER_MESSAGE = 120


def _selection_problem(exc: BaseException) -> str:
    """What the selection parser objected to, in one short phrase (no grammar dump, no caret line)."""
    text = _first_line(exc)
    text = text.split(" (line:")[0].split("  (at char")[0].strip()
    if len(text) > MAX_PARSER_MESSAGE:
        text = text[:MAX_PARSER_MESSAGE].rstrip() + " ..."
    return text


def _unreadable(path: Path, top_path: Path, topology, exc: BaseException) -> str:
    """Why mdtraj could not read the first frame: another atom count than the topology's, or a damaged file."""
    text = _first_line(exc)
    if "same atoms" in text or "must be shape" in text or "atoms" in text.lower() and "match" in text.lower():
        return (f"trajectory {str(path)!r} does not match topology {str(top_path)!r} ({topology.n_atoms} atoms): "
                f"{text}")
    return (f"cannot read trajectory {str(path)!r} (damaged, cut short, or not a {path.suffix or 'known'} file; "
            f"mdtraj: {text})")


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
    elif first_frame is not None:
        import mdtraj

        try:
            with quiet_c_stdout():
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


class MemoryTrajectory(Trajectory):
    """Frames already in memory (an mdtraj Trajectory, an MDAnalysis Universe, or arrays), same interface.

    Parameters
    ----------
    xyz_nm : numpy.ndarray, shape=(n_frames, n_atoms, 3), or None
        Positions in nm (float32 is kept); ``None`` with ``frames`` given.
    topology : mdtraj.Topology
        Residues, atom names and elements (selections use mdtraj's syntax).
    box_nm : numpy.ndarray, shape=(n_frames, 3, 3), or None
    dt_ps : float, optional
        Time between frames (before ``stride``).
    masses : numpy.ndarray, shape=(n_atoms,), optional
        Atomic masses (g/mol); default from the elements.
    frames : callable, optional
        ``frames(indices, atom_indices) -> (xyz_nm, box_nm)`` for sources read on demand
        (an MDAnalysis Universe); with it, ``n_stored`` is required.
    label : str
        How the source is named in outputs.
    """

    def __init__(self, xyz_nm, topology, *, box_nm=None, dt_ps=None, dt_source="given", masses=None,
                 frames=None, n_stored=None, has_box=None, label="<in memory>", start=0, stop=None, stride=1,
                 chunk_frames=1000) -> None:
        if start < 0 or stride < 1 or (stop is not None and stop <= start):
            raise AnalysisError(
                f"bad frame range start={start} stop={stop} stride={stride}; need 0 <= start < stop and stride >= 1"
            )
        self.top_path = Path(label)
        self.traj_path = Path(label)
        self.topology = topology
        self.warnings = []
        self._xyz = None if xyz_nm is None else np.asarray(xyz_nm)
        self._box = None if box_nm is None else np.asarray(box_nm, dtype=np.float64)
        self._frames = frames
        n_stored = self._xyz.shape[0] if self._xyz is not None else int(n_stored)
        if self._xyz is not None and self._xyz.shape[1] != topology.n_atoms:
            raise AnalysisError(f"positions hold {self._xyz.shape[1]} atoms, the topology {topology.n_atoms}")
        self._has_box = bool(self._box is not None if has_box is None else has_box)
        self._masses = None if masses is None else np.asarray(masses, dtype=float)
        stop = n_stored if stop is None else min(stop, n_stored)
        if start >= stop:
            raise AnalysisError(f"frame range start={start} is past the end of {label} ({n_stored} frames)")
        self.start, self.stop, self.stride = start, stop, stride
        self.n_frames = len(range(start, stop, stride))
        self.chunk_frames = chunk_frames
        self._first = None
        self._given_dt_ps = dt_ps
        self._dt_source = dt_source
        self._dt = None

    def _resolved_dt(self) -> tuple[float, str]:
        if self._given_dt_ps is None or not (self._given_dt_ps > 0 and math.isfinite(self._given_dt_ps)):
            raise AnalysisError("the in-memory trajectory carries no usable time step; pass dt_ps "
                                "(ps between stored frames)")
        return float(self._given_dt_ps), self._dt_source

    def masses(self, atom_indices: np.ndarray) -> np.ndarray:
        """Atomic masses in g/mol of the given atoms, shape=(n,)."""
        if self._masses is None:
            return super().masses(atom_indices)
        m = self._masses[np.asarray(atom_indices, dtype=int)]
        if np.any(m <= 0):
            raise AnalysisError("atoms without a mass in selection")
        return m

    def box_series_nm(self) -> np.ndarray | None:
        """Box vectors of every selected frame when they are in memory (see :meth:`Trajectory.box_series_nm`)."""
        if self._box is None or self._frames is not None:
            return None
        return self._box[self.start:self.stop:self.stride]

    def iter_chunks(self, atom_indices: np.ndarray, chunk_frames: int | None = None) -> Iterator[Chunk]:
        """Stream the selected frames of ``atom_indices`` in chunks (see :meth:`Trajectory.iter_chunks`)."""
        atom_indices = np.asarray(atom_indices, dtype=int)
        chunk = chunk_frames or self.chunk_frames
        frames = np.arange(self.start, self.stop, self.stride)
        for lo in range(0, len(frames), chunk):
            sel = frames[lo:lo + chunk]
            if self._frames is not None:
                xyz, box = self._frames(sel, atom_indices)
            else:
                xyz = self._xyz[sel][:, atom_indices]
                box = None if self._box is None else self._box[sel]
            yield Chunk(lo, np.asarray(xyz, dtype=np.float32), box)


def _from_mdtraj(t, **kw) -> MemoryTrajectory:
    dt = None
    if t.n_frames > 1 and t.time is not None and t.time[1] > t.time[0]:
        dt = float(t.time[1] - t.time[0])
    box = None if t.unitcell_vectors is None else np.asarray(t.unitcell_vectors, float)
    given = kw.pop("dt_ps", None)
    return MemoryTrajectory(t.xyz, t.topology, box_nm=box, dt_ps=given or dt,
                            dt_source="dt_ps" if given else "mdtraj time axis", label="<mdtraj.Trajectory>", **kw)


def _from_universe(u, **kw) -> MemoryTrajectory:
    """An MDAnalysis Universe, read on demand (Å -> nm), topology rebuilt for mdtraj selections."""
    import mdtraj
    from MDAnalysis.lib.mdamath import triclinic_vectors

    top = mdtraj.Topology()
    chains: dict = {}
    atoms = u.atoms
    elements = getattr(atoms, "elements", None) if hasattr(atoms, "elements") else None
    for res in u.residues:
        seg = getattr(res, "segid", "A")
        if seg not in chains:
            chains[seg] = top.add_chain()
        r = top.add_residue(str(res.resname), chains[seg], resSeq=int(res.resid))
        for atom in res.atoms:
            symbol = None
            if elements is not None:
                symbol = str(atom.element) if getattr(atom, "element", "") else None
            element = None
            for guess in (symbol, str(atom.name)[:2], str(atom.name)[:1]):
                if not guess:
                    continue
                try:
                    element = mdtraj.element.get_by_symbol(guess.capitalize())
                    break
                except KeyError:
                    continue
            top.add_atom(str(atom.name), element, r)
    has_box = u.trajectory.ts.dimensions is not None

    def frames(indices, atom_indices):
        xyz = np.empty((len(indices), len(atom_indices), 3), dtype=np.float32)
        box = np.empty((len(indices), 3, 3)) if has_box else None
        for k, ts in enumerate(u.trajectory[np.asarray(indices)]):
            xyz[k] = ts.positions[atom_indices] * 0.1
            if box is not None:
                box[k] = triclinic_vectors(ts.dimensions) * 0.1
        return xyz, box

    given = kw.pop("dt_ps", None)
    dt = given or float(getattr(u.trajectory, "dt", 0.0) or 0.0) or None
    return MemoryTrajectory(None, top, frames=frames, n_stored=len(u.trajectory), has_box=has_box,
                            masses=np.asarray(atoms.masses, float), dt_ps=dt,
                            dt_source="dt_ps" if given else "MDAnalysis trajectory dt", label="<MDAnalysis.Universe>",
                            **kw)


def open_trajectory(source, top=None, **options) -> Trajectory:
    """Open anything analysis reads: files, an mdtraj Trajectory, an MDAnalysis Universe, or a Trajectory.

    Parameters
    ----------
    source : Trajectory, str/path, (top, traj) tuple, mdtraj.Trajectory or MDAnalysis.Universe
    top : str or path, optional
        Topology file when ``source`` is a trajectory file.
    **options
        ``dt_ps``, ``start``, ``stop``, ``stride`` (and ``chunk_frames``).

    Returns
    -------
    Trajectory
    """
    if isinstance(source, Trajectory):
        if options:
            raise AnalysisError("options are given when the trajectory is opened, not to an opened one")
        return source
    if isinstance(source, tuple) and len(source) == 2:
        return Trajectory(source[0], source[1], **options)
    if isinstance(source, (str, os.PathLike)):
        if top is None:
            raise AnalysisError(f"trajectory {str(source)!r} needs a topology (top=...)")
        return Trajectory(top, source, **options)
    kind = type(source).__module__.split(".")[0]
    if kind == "mdtraj":
        return _from_mdtraj(source, **options)
    if kind == "MDAnalysis":
        return _from_universe(source, **options)
    raise AnalysisError(f"cannot analyse a {type(source).__name__}; give files, an mdtraj.Trajectory, an "
                        "MDAnalysis.Universe or an aseimd Trajectory")
