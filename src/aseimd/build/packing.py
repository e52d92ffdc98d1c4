"""Packmol wrapper: put copies of rigid molecules into a periodic box, seeded, with a timeout.

Packmol (L. Martinez, R. Andrade, E. G. Birgin, J. M. Martinez, J. Comput. Chem.
30, 2157 (2009)) places molecules so that no two atoms of different molecules
are closer than ``tolerance``. With Packmol >= 20.15 the box is periodic
(``pbc``): the tolerance holds across the boundaries too (minimum image), so the
packed box can be used directly with periodic boundary conditions. Older
versions fall back to ``inside box`` shrunk by the tolerance on every side.

The binary is found, in order, from the ``ASEIMD_PACKMOL`` environment
variable, the ``packmol`` PyPI package (which ships it under
``packmol/binaries``), and ``packmol`` on ``PATH``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from aseimd.errors import BuildError, EnvironmentProblem, SpecError

#: Packmol exits with this status when it ends without a perfect packing.
_IMPERFECT_EXIT = 173
#: First Packmol version with the ``pbc`` keyword.
PBC_MIN_VERSION = (20, 15)
#: Largest box aseimd hands to Packmol, in atoms. Packmol's memory and time grow
#: with the atom count (its default loop budget already runs for many minutes at a
#: few 10^5 atoms); larger systems are better replicated from a packed,
#: equilibrated box. Checked before Packmol starts.
MAX_PACK_ATOMS = 1_000_000


def check_pack_size(n_atoms: int, n_molecules: int) -> None:
    """Refuse a packing job above :data:`MAX_PACK_ATOMS` before any work.

    Raises
    ------
    SpecError
        With the requested size and the limit.
    """
    if n_atoms > MAX_PACK_ATOMS:
        raise SpecError(f"{n_molecules} molecules ({n_atoms} atoms) is above aseimd's packing limit of "
                        f"{MAX_PACK_ATOMS} atoms; ask for fewer solvent molecules or a smaller box "
                        f"(replicate an equilibrated box for larger systems)")


@dataclass(frozen=True)
class PackItem:
    """One molecule type to pack.

    Attributes
    ----------
    elements : tuple of str
        Element symbol of every atom (only written to Packmol's input for readability).
    positions_nm : numpy.ndarray, shape=(n_atoms, 3), dtype=float
        One geometry of the molecule, in nm.
    count : int
        Number of copies.
    """

    elements: tuple[str, ...]
    positions_nm: np.ndarray
    count: int

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions_nm, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] != len(self.elements) or pos.shape[0] == 0:
            raise ValueError(f"positions_nm must have shape ({len(self.elements)}, 3), got {pos.shape}")
        object.__setattr__(self, "positions_nm", pos)
        object.__setattr__(self, "elements", tuple(self.elements))
        if int(self.count) != self.count or self.count < 0:
            raise SpecError(f"count must be a non-negative integer, got {self.count!r}")


def packmol_executable() -> Path:
    """Locate the Packmol binary.

    Returns
    -------
    pathlib.Path
        An executable file.

    Raises
    ------
    EnvironmentProblem
        If none is found (exit code 3: the machine, not the input).
    """
    env = os.environ.get("ASEIMD_PACKMOL")
    if env:
        path = Path(env)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise EnvironmentProblem(f"ASEIMD_PACKMOL={env!r} is not an executable file; point it at the Packmol "
                                 f"binary or unset it")
    spec = importlib.util.find_spec("packmol")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            for name in ("packmol", "packmol.exe"):
                path = Path(folder) / "binaries" / name
                if path.is_file() and os.access(path, os.X_OK):
                    return path
    which = shutil.which("packmol")
    if which:
        return Path(which)
    raise EnvironmentProblem("Packmol not found; install it with 'pip install packmol' "
                             "or point ASEIMD_PACKMOL at the binary")


@functools.lru_cache(maxsize=None)
def packmol_version(executable: str | None = None) -> tuple[int, ...]:
    """Version of the Packmol binary as a tuple of ints (``(0,)`` if it cannot be read)."""
    exe = executable or str(packmol_executable())
    with tempfile.TemporaryDirectory(prefix="aseimd-packmol-") as tmp:
        empty = Path(tmp) / "empty.inp"
        empty.write_text("")
        with open(empty) as stdin:
            try:
                out = subprocess.run([exe], stdin=stdin, capture_output=True, text=True, timeout=30,
                                     cwd=tmp, check=False).stdout
            except (OSError, subprocess.TimeoutExpired):
                return (0,)
    match = re.search(r"Version\s+(\d+(?:\.\d+)*)", out)
    return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)


def _tail(text: str | bytes | None, n_lines: int = 6) -> str:
    if text is None:
        return "(no output)"
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= set("-#*|")]
    return " | ".join(lines[-n_lines:]) or "(no output)"


def _write_xyz(path: Path, item: PackItem) -> None:
    pos_A = item.positions_nm * 10.0
    lines = [str(len(item.elements)), "aseimd packing input"]
    lines += [f"{el} {x:.6f} {y:.6f} {z:.6f}" for el, (x, y, z) in zip(item.elements, pos_A)]
    path.write_text("\n".join(lines) + "\n")


def _read_xyz_positions(path: Path, n_atoms: int) -> np.ndarray:
    lines = path.read_text().splitlines()
    if len(lines) < n_atoms + 2 or int(lines[0].split()[0]) != n_atoms:
        raise BuildError(f"Packmol output {path.name} does not hold the expected {n_atoms} atoms")
    xyz = np.array([[float(v) for v in ln.split()[1:4]] for ln in lines[2:2 + n_atoms]])
    return xyz / 10.0


def pack_box(items: Sequence[PackItem], box_nm: Sequence[float], *, seed: int = 0,
             tolerance_nm: float = 0.2, timeout_s: float = 300.0, nloop: int | None = None) -> np.ndarray:
    """Pack copies of molecules into an orthorhombic periodic box with Packmol.

    Parameters
    ----------
    items : sequence of PackItem
        Molecule types and counts; the output holds them in this order, each
        type's copies consecutively, atoms in input order.
    box_nm : sequence of 3 float
        Box edge lengths in nm; the box spans ``[0, box_nm]``.
    seed : int
        Random seed (non-negative; Packmol gets ``seed + 1``); the same seed gives the
        same packing.
    tolerance_nm : float
        Minimum distance between atoms of different molecules, in nm (0.2 nm = 2 Å).
    timeout_s : float
        Wall-clock limit for Packmol, in s.
    nloop : int, optional
        Packmol's iteration limit (its default: 50 per molecule type); Packmol
        gives up with an imperfect packing after that many loops.

    Returns
    -------
    numpy.ndarray, shape=(n_atoms_total, 3), dtype=float
        Packed positions in nm. Molecules are whole (not wrapped atom by atom),
        so an atom may sit up to about ``tolerance_nm`` outside ``[0, box_nm]``.

    Raises
    ------
    BuildError
        If Packmol fails, cannot reach the tolerance, or times out; the message
        ends with the tail of Packmol's output.
    """
    box = np.asarray(box_nm, dtype=float)
    if box.shape != (3,) or not np.all(np.isfinite(box)) or np.any(box <= 0):
        raise SpecError(f"box_nm must be three positive lengths, got {box_nm!r}")
    if tolerance_nm <= 0:
        raise SpecError(f"tolerance_nm must be positive, got {tolerance_nm!r}")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise SpecError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(timeout_s, (int, float)) and np.isfinite(timeout_s) and timeout_s > 0):
        raise SpecError(f"packmol timeout must be a positive number of seconds, got {timeout_s!r}")
    items = [it for it in items if it.count > 0]
    n_atoms = sum(len(it.elements) * it.count for it in items)
    n_mol = sum(it.count for it in items)
    if n_atoms == 0:
        return np.zeros((0, 3))
    check_pack_size(n_atoms, n_mol)
    exe = str(packmol_executable())
    periodic = packmol_version(exe) >= PBC_MIN_VERSION
    tol_A = tolerance_nm * 10.0
    box_A = box * 10.0
    if periodic:
        lo, hi = np.zeros(3), box_A
        header = f"pbc 0. 0. 0. {box_A[0]:.6f} {box_A[1]:.6f} {box_A[2]:.6f}"
    else:
        lo, hi = np.full(3, tol_A / 2), box_A - tol_A / 2
        header = ""
    with tempfile.TemporaryDirectory(prefix="aseimd-packmol-") as tmp:
        tmpdir = Path(tmp)
        lines = [f"tolerance {tol_A:.6f}", "filetype xyz", "output packed.xyz",
                 f"seed {int(seed) + 1}", header, f"nloop {int(nloop)}" if nloop else ""]
        for i, it in enumerate(items):
            _write_xyz(tmpdir / f"mol{i}.xyz", it)
            lines += [f"structure mol{i}.xyz", f"  number {int(it.count)}",
                      f"  inside box {lo[0]:.6f} {lo[1]:.6f} {lo[2]:.6f} {hi[0]:.6f} {hi[1]:.6f} {hi[2]:.6f}",
                      "end structure"]
        (tmpdir / "pack.inp").write_text("\n".join(ln for ln in lines if ln) + "\n")
        what = f"{n_mol} molecules ({n_atoms} atoms) into a {' x '.join(f'{b:.3f}' for b in box)} nm box"
        with open(tmpdir / "pack.inp") as stdin:
            try:
                proc = subprocess.run([exe], stdin=stdin, cwd=tmpdir, capture_output=True, text=True,
                                      timeout=timeout_s, check=False)
            except OSError as exc:
                raise EnvironmentProblem(f"cannot start Packmol ({exe!r}): {exc.strerror or exc}") from None
            except subprocess.TimeoutExpired as exc:
                raise BuildError(f"Packmol timed out after {timeout_s:g} s packing {what}; use a larger box "
                                 f"(lower packing density) or a longer timeout. Last output: "
                                 f"{_tail(exc.stdout)}") from None
        output = tmpdir / "packed.xyz"
        if proc.returncode == _IMPERFECT_EXIT:
            raise BuildError(f"Packmol could not pack {what} with tolerance {tolerance_nm:g} nm; use a "
                             f"larger box (lower packing density). Last output: {_tail(proc.stdout)}")
        if proc.returncode != 0 or not output.is_file() or "Success!" not in proc.stdout:
            raise BuildError(f"Packmol failed (exit {proc.returncode}) packing {what}. "
                             f"Last output: {_tail(proc.stdout + proc.stderr)}")
        return _read_xyz_positions(output, n_atoms)
