"""A minimal CHARMM-format DCD writer that can be truncated and appended to.

Same byte layout as :class:`openmm.app.DCDFile` (little-endian, unit cell
record, coordinates in Å as float32) but with a fixed title (no time stamp),
so two runs that write the same frames write byte-identical files, and with
:func:`truncate_dcd` to cut a file back to a frame count after a crash.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from aseimd.errors import SimulationError
from aseimd.fileio import SyncedFile

_AKMA_PS = 0.04888821  # one AKMA time unit in ps
_TITLE = b"Created by aseimd (unwrapped coordinates)"


def _header(n_atoms: int, first_step: int, interval: int, dt_ps: float, n_frames: int) -> bytes:
    last = first_step + max(n_frames - 1, 0) * interval
    head = struct.pack(
        "<i4c9if", 84, b"C", b"O", b"R", b"D", n_frames, first_step, interval, last, 0, 0, 0, 0, 0,
        dt_ps / _AKMA_PS,
    )
    head += struct.pack("<13i", 1, 0, 0, 0, 0, 0, 0, 0, 0, 24, 84, 164, 2)
    head += struct.pack("<80s", _TITLE)
    head += struct.pack("<80s", b"Coordinates in Angstrom; box from the simulation state")
    head += struct.pack("<4i", 164, 4, n_atoms, 4)
    return head


HEADER_BYTES = len(_header(1, 0, 1, 1.0, 0))


def frame_bytes(n_atoms: int) -> int:
    """Size of one frame record (unit cell + x, y, z blocks) in bytes."""
    return (4 + 48 + 4) + 3 * (4 + 4 * n_atoms + 4)


class DCDWriter(SyncedFile):
    """Write frames to a DCD file, creating it or appending to an existing one.

    Parameters
    ----------
    path : str or pathlib.Path
    n_atoms : int
    first_step : int
        Step of the first frame.
    interval : int
        Steps between frames.
    dt_ps : float
        Integration timestep in ps (stored in the header as CHARMM does).

    ``sync()`` makes the frames written so far durable, ``close()`` closes the file
    (:class:`aseimd.fileio.SyncedFile`).
    """

    def __init__(self, path: str | Path, n_atoms: int, first_step: int, interval: int, dt_ps: float):
        self.path = Path(path)
        self.n_atoms = n_atoms
        self._first_step, self._interval, self._dt_ps = first_step, interval, dt_ps
        if self.path.exists() and self.path.stat().st_size > 0:
            self.n_frames = dcd_frame_count(self.path, n_atoms)
            self._file = open(self.path, "r+b")
            self._file.seek(0, os.SEEK_END)
        else:
            self.n_frames = 0
            self._file = open(self.path, "w+b")
            self._file.write(_header(n_atoms, first_step, interval, dt_ps, 0))
            self._file.flush()

    def write(self, positions_nm: np.ndarray, box_edges_nm: np.ndarray) -> None:
        """Append one frame.

        Parameters
        ----------
        positions_nm : numpy.ndarray, shape=(n_atoms, 3)
            Positions in nm (written unchanged: no wrapping).
        box_edges_nm : numpy.ndarray, shape=(3,)
            Orthorhombic box edge lengths in nm.
        """
        pos = np.asarray(positions_nm, dtype=float)
        if pos.shape != (self.n_atoms, 3):
            raise ValueError(f"expected positions of shape ({self.n_atoms}, 3), got {pos.shape}")
        a, b, c = (10.0 * float(x) for x in box_edges_nm)
        # CHARMM order a, cos(gamma), b, cos(beta), cos(alpha), c; orthorhombic: cosines are 0
        record = struct.pack("<i6di", 48, a, 0.0, b, 0.0, 0.0, c, 48)
        block = struct.pack("<i", 4 * self.n_atoms)
        angstrom = (10.0 * pos).astype("<f4")
        for k in range(3):
            record += block + angstrom[:, k].tobytes() + block
        self._file.seek(0, os.SEEK_END)
        self._file.write(record)
        self.n_frames += 1
        self._file.seek(8)
        self._file.write(struct.pack("<i", self.n_frames))
        self._file.seek(20)
        self._file.write(struct.pack("<i", self._first_step + (self.n_frames - 1) * self._interval))
        self._file.flush()


def dcd_frame_count(path: str | Path, n_atoms: int) -> int:
    """Number of complete frames in a DCD file written by :class:`DCDWriter` (from its size)."""
    size = Path(path).stat().st_size
    if size < HEADER_BYTES:
        raise SimulationError(f"{str(path)!r} is too short to be a DCD file ({size} bytes)")
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
    if head[4:8] != b"CORD" or struct.unpack("<i", head[-8:-4])[0] != n_atoms:
        raise SimulationError(f"{str(path)!r} is not a DCD file of {n_atoms} atoms written by aseimd")
    return (size - HEADER_BYTES) // frame_bytes(n_atoms)


def truncate_dcd(path: str | Path, n_atoms: int, n_frames: int) -> None:
    """Cut a DCD file back to its first ``n_frames`` frames and fix the header's frame count.

    Raises
    ------
    SimulationError
        The file holds fewer than ``n_frames`` complete frames.
    """
    path = Path(path)
    have = dcd_frame_count(path, n_atoms)
    if have < n_frames:
        raise SimulationError(
            f"{str(path)!r} holds {have} complete frames but the checkpoint needs {n_frames}; "
            f"the run directory is damaged (use --force to start over)"
        )
    with open(path, "r+b") as fh:
        fh.truncate(HEADER_BYTES + n_frames * frame_bytes(n_atoms))
        fh.seek(8)
        fh.write(struct.pack("<i", n_frames))
        fh.seek(12)
        first_step, interval = struct.unpack("<2i", fh.read(8))
        fh.seek(20)
        fh.write(struct.pack("<i", first_step + max(n_frames - 1, 0) * interval))
        fh.flush()
        os.fsync(fh.fileno())
