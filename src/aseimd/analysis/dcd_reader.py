"""Reading selected atoms of a CHARMM/OpenMM DCD without decoding whole frames.

A DCD frame is a fixed-size record (optional unit cell, then the x, y and z
blocks of all atoms), so the coordinates of a few atoms can be read from
every frame at known byte offsets without decoding the rest: only the span
holding the selected atoms is read. For the ions of an electrolyte (a few % of its atoms) this
is several times faster than decoding whole frames, and memory stays bounded
by the selection.

Only plain little- or big-endian CHARMM DCDs without fixed atoms or a fourth
dimension are handled here; :func:`open_dcd` returns ``None`` for anything else
and the caller falls back to mdtraj.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np


class DCDReader:
    """Random access to the frames of a DCD file, reading only the selected atoms.

    For each frame and coordinate block only the byte span from the lowest to
    the highest selected atom is read (``os.pread``), so neither the process
    memory nor the page cache traffic grows with the unselected atoms.

    Attributes
    ----------
    n_atoms, n_frames : int
    has_box : bool
    """

    def __init__(self, path: str | os.PathLike, endian: str, header_bytes: int, n_atoms: int,
                 has_box: bool) -> None:
        self.path = Path(path)
        self.n_atoms = n_atoms
        self.has_box = has_box
        self._header_bytes = header_bytes
        self._box_bytes = 56 if has_box else 0
        self.frame_bytes = self._box_bytes + 3 * (8 + 4 * n_atoms)
        size = self.path.stat().st_size
        self.n_frames = max(0, (size - header_bytes) // self.frame_bytes)  # a torn last frame is ignored
        #: Bytes after the last complete frame (a frame torn by a crash or a copy cut short).
        self.trailing_bytes = max(0, size - header_bytes - self.n_frames * self.frame_bytes)
        #: Frames the header announces (NSET; 0 when the writer left it unset).
        self.n_frames_header = 0
        self._f4 = np.dtype(endian + "f4")
        self._f8 = np.dtype(endian + "f8")

    def read_boxes(self, frames: np.ndarray) -> np.ndarray | None:
        """Box vectors (nm, shape=(n_frames, 3, 3)) of ``frames`` alone, from their unit-cell records (48 bytes
        each, read through a memory map: a page per frame, no coordinates); ``None`` without a unit cell."""
        if not self.has_box:
            return None
        frames = np.asarray(frames, dtype=np.int64)
        if frames.size == 0:
            return np.zeros((0, 3, 3))
        if frames.min() < 0 or frames.max() >= self.n_frames:
            raise IndexError(f"frame out of range [0, {self.n_frames})")
        mm = np.memmap(self.path, dtype=np.uint8, mode="r")
        try:
            records = np.ndarray((self.n_frames, 48), dtype=np.uint8, buffer=mm,
                                 offset=self._header_bytes + 4, strides=(self.frame_bytes, 1))
            cell = np.ascontiguousarray(records[frames]).view(self._f8).astype(np.float64).reshape(-1, 6)
        finally:
            del mm
        return _cells_to_boxes_nm(cell)

    def read(self, frames: np.ndarray, atom_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Positions (nm, float32) and box vectors (nm) of ``atom_indices`` in ``frames``.

        Returns
        -------
        xyz_nm : numpy.ndarray, shape=(n_frames, n_atoms, 3), dtype=float32
        box_nm : numpy.ndarray, shape=(n_frames, 3, 3), dtype=float64, or None
        """
        frames = np.asarray(frames, dtype=np.int64)
        atoms = np.asarray(atom_indices, dtype=np.int64)
        if frames.size and (frames.min() < 0 or frames.max() >= self.n_frames):
            raise IndexError(f"frame out of range [0, {self.n_frames})")
        lo, hi = int(atoms.min()), int(atoms.max()) + 1
        rel = atoms - lo
        span = 4 * (hi - lo)
        block = 8 + 4 * self.n_atoms
        xyz = np.empty((len(frames), len(atoms), 3), dtype=np.float32)
        cell = np.empty((len(frames), 6)) if self.has_box else None
        dense = 3 * span + self._box_bytes >= DENSE_FRACTION * self.frame_bytes
        consecutive = frames.size > 1 and bool(np.all(np.diff(frames) == 1))
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if dense and consecutive:  # one read for many whole frames, then views of its float32 words
                self._read_dense(fd, frames, lo, hi, rel, xyz, cell)
            else:
                for i, frame in enumerate(frames):
                    base = self._header_bytes + int(frame) * self.frame_bytes
                    if cell is not None:
                        cell[i] = np.frombuffer(os.pread(fd, 48, base + 4), dtype=self._f8)
                    for k in range(3):
                        raw = os.pread(fd, span, base + self._box_bytes + k * block + 4 + 4 * lo)
                        if len(raw) != span:
                            raise OSError(f"{self.path}: file ended inside frame {frame}")
                        xyz[i, :, k] = np.frombuffer(raw, dtype=self._f4)[rel]
                xyz *= np.float32(0.1)  # Å -> nm
        finally:
            os.close(fd)
        return xyz, None if cell is None else _cells_to_boxes_nm(cell)

    def _read_dense(self, fd: int, frames: np.ndarray, lo: int, hi: int, rel: np.ndarray, xyz: np.ndarray,
                    cell: np.ndarray | None) -> None:
        """Consecutive frames: whole frames per ``pread``, coordinates scaled Å -> nm straight into ``xyz``.

        A frame is a whole number of 4-byte words (56-byte cell record, then three blocks of
        4 + 4 n_atoms + 4 bytes), so a run of frames is one (n_frames, words) float32 array and
        each coordinate block of the selected span is a strided view of it: one pass per
        coordinate writes ``xyz[..., k] = 0.1 * block`` (the same float32 product as scaling after
        the copy, so the values are bit-identical to the per-frame path).
        """
        per = max(1, DENSE_READ_BYTES // self.frame_bytes)
        words = self.frame_bytes // 4
        block_words = 2 + self.n_atoms
        contiguous = rel.size == hi - lo and bool(np.all(np.diff(rel) == 1))  # lo..hi-1 in order: slices, no gather
        scale = np.float32(0.1)
        # one buffer, refilled: a fresh bytes object per read would fault in every page of it again
        buffer = np.empty(min(per, len(frames)) * self.frame_bytes, dtype=np.uint8)
        for lo_f in range(0, len(frames), per):
            nf = min(per, len(frames) - lo_f)
            base = self._header_bytes + int(frames[lo_f]) * self.frame_bytes
            raw = _read_into(fd, buffer[:nf * self.frame_bytes], base)
            if len(raw) != nf * self.frame_bytes:
                raise OSError(f"{self.path}: file ended inside frame {int(frames[lo_f]) + len(raw) // self.frame_bytes}")
            if cell is not None:
                rows = np.frombuffer(raw, dtype=np.uint8).reshape(nf, self.frame_bytes)
                cell[lo_f:lo_f + nf] = rows[:, 4:52].copy().view(self._f8)
            table = np.frombuffer(raw, dtype=self._f4).reshape(nf, words)
            for k in range(3):
                first = self._box_bytes // 4 + k * block_words + 1 + lo
                src = table[:, first:first + (hi - lo)]
                if not contiguous:
                    src = src[:, rel]
                np.multiply(src, scale, out=xyz[lo_f:lo_f + nf, :, k])


#: Read whole frames at once when the selected span covers at least this fraction of a frame.
DENSE_FRACTION = 0.3
#: Bytes per read in the whole-frame path (a buffer that stays in cache while its frames are scattered).
DENSE_READ_BYTES = 4 * 1024**2


def _read_into(fd: int, buffer: np.ndarray, offset: int) -> memoryview | bytes:
    """Fill ``buffer`` (uint8) from ``fd`` at ``offset``; the bytes read (fewer at the end of the file)."""
    if not hasattr(os, "preadv"):  # pragma: no cover - Linux and macOS have it
        return os.pread(fd, buffer.size, offset)
    view, done = memoryview(buffer), 0
    while done < buffer.size:
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            break
        done += n
    return view[:done]


def _cells_to_boxes_nm(cell: np.ndarray) -> np.ndarray:
    """Box vectors (nm, shape=(n, 3, 3)) of DCD unit-cell records (n, 6) = A, gamma, B, beta, alpha, C (Å);
    converted once per distinct cell (a constant box, NVT, without a sort)."""
    if len(cell) and np.all(cell == cell[0]):
        unique, inverse = cell[:1], np.zeros(len(cell), dtype=np.int64)
    else:
        unique, inverse = np.unique(cell, axis=0, return_inverse=True)
    vectors = _box_vectors_nm(unique[:, 0], unique[:, 2], unique[:, 5], unique[:, 4], unique[:, 3], unique[:, 1])
    return vectors[np.ravel(inverse)]


def _angle_deg(value: np.ndarray) -> np.ndarray:
    # CHARMM >= c25 and OpenMM store cosines; older writers store degrees
    value = np.asarray(value, dtype=float)
    return np.where(np.abs(value) <= 1.0, np.degrees(np.arccos(np.clip(value, -1.0, 1.0))), value)


def _box_vectors_nm(a, b, c, alpha, beta, gamma) -> np.ndarray:
    """Box vectors (rows, nm) from lengths in Å and angles (cosines or degrees).

    The usual triclinic construction: a along x, b in the xy plane, c completing
    the cell. Written out here (no mdtraj import on the DCD path) with the same
    float64 operations, in the same order, as ``mdtraj.utils.lengths_and_angles_to_box_vectors``,
    including its zeroing of components below 1e-6 nm, so the boxes are bit for bit
    those of mdtraj (``tests/test_dcd_reader.py`` checks it).
    """
    alpha, beta, gamma = np.radians(_angle_deg(alpha)), np.radians(_angle_deg(beta)), np.radians(_angle_deg(gamma))
    a, b, c = (np.asarray(v, dtype=float) * 0.1 for v in (a, b, c))
    zero = np.zeros_like(a)
    cx = c * np.cos(beta)
    cy = c * (np.cos(alpha) - np.cos(beta) * np.cos(gamma)) / np.sin(gamma)
    cz = np.sqrt(c * c - cx * cx - cy * cy)
    # (n, vector, component): rows a, b, c
    box = np.stack([np.stack([a, zero, zero], axis=-1),
                    np.stack([b * np.cos(gamma), b * np.sin(gamma), np.zeros_like(b)], axis=-1),
                    np.stack([cx, cy, cz], axis=-1)], axis=-2)
    # orthorhombic boxes come out with round-off in the off-diagonal; clean it (mdtraj's 1e-6 nm, then 1e-9)
    box[np.abs(box) < 1e-6] = 0.0
    # mdtraj hands out float32 unit cells: round the same way so both readers agree to the bit
    return box.astype(np.float32).astype(np.float64)


def open_dcd(path: str | os.PathLike) -> DCDReader | None:
    """Open a DCD for reading selected atoms at byte offsets, or return ``None`` if it is a variant not handled here."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if len(head) < 100 or head[4:8] != b"CORD":
        return None
    for endian in ("<", ">"):
        if struct.unpack(endian + "i", head[:4])[0] == 84:
            break
    else:
        return None
    icntrl = struct.unpack(endian + "20i", head[8:88])
    if icntrl[8] != 0 or icntrl[11] != 0 or struct.unpack(endian + "i", head[88:92])[0] != 84:
        return None  # fixed atoms or 4D coordinates
    has_box = icntrl[10] != 0
    pos = 92
    (title_len,) = struct.unpack(endian + "i", head[pos:pos + 4])
    pos += 4 + title_len
    if pos + 16 > len(head) or struct.unpack(endian + "i", head[pos:pos + 4])[0] != title_len:
        return None
    pos += 4
    marker, n_atoms, marker2 = struct.unpack(endian + "3i", head[pos:pos + 12])
    if marker != 4 or marker2 != 4 or n_atoms <= 0:
        return None
    reader = DCDReader(path, endian, pos + 12, n_atoms, has_box)
    reader.n_frames_header = max(0, int(icntrl[0]))
    return reader
