"""Run-directory consistency: the checkpoint's step count is the single source of truth.

Every frame of ``trajectory.dcd`` and every row of ``thermo.csv`` sits at a
step fixed by the protocol, so the number of frames and rows that belong to a
checkpoint at step ``s`` follows from ``s`` alone. On resume both files are
cut back to exactly that, which removes whatever was written after the
checkpoint (a frame written just before a kill, a half-written row) and
makes the resumed files equal an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from aseimd.errors import SimulationError
from aseimd.fileio import atomic_write_text
from aseimd.simulate.dcd import truncate_dcd
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.reporters import count_reports

RUN_FILES = ("run.json", "checkpoint.chk", "state.xml", "thermo.csv", "trajectory.dcd")
"""Files a run directory holds (``--force`` removes exactly these)."""


def expected_thermo_rows(protocol: Protocol, step: int) -> int:
    """Number of ``thermo.csv`` rows written up to and including global step ``step``."""
    return sum(
        count_reports(step, item.start_step, item.end_step, protocol.thermo_steps)
        for item in protocol.schedule
        if item.stage.is_md
    )


def expected_frames(protocol: Protocol, step: int) -> int:
    """Number of production frames written up to and including global step ``step``."""
    production = protocol.production
    if production is None:
        return 0
    return count_reports(step, production.start_step, production.end_step, protocol.trajectory_steps)


def truncate_thermo(path: Path, n_rows: int) -> None:
    """Keep the header and the first ``n_rows`` complete rows of ``thermo.csv`` (atomically)."""
    if n_rows == 0:  # nothing to keep: the reporter writes a fresh header
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        raise SimulationError(f"{str(path)!r} is missing but the checkpoint needs {n_rows} rows; use --force")
    lines = path.read_text().split("\n")
    complete = lines[:-1]  # the text after the last newline is an unfinished row (or empty)
    if len(complete) < n_rows + 1:
        raise SimulationError(
            f"{str(path)!r} holds {max(len(complete) - 1, 0)} complete rows but the checkpoint needs "
            f"{n_rows}; the run directory is damaged (use --force to start over)"
        )
    keep = complete[: n_rows + 1]
    if len(keep) != len(lines) - 1 or lines[-1] != "":
        atomic_write_text(path, "\n".join(keep) + "\n")


def truncate_outputs(run_dir: Path, protocol: Protocol, n_atoms: int, step: int) -> tuple[int, int]:
    """Cut ``thermo.csv`` and ``trajectory.dcd`` back to what a checkpoint at ``step`` has written.

    Returns
    -------
    (int, int)
        Rows and frames kept.
    """
    rows, frames = expected_thermo_rows(protocol, step), expected_frames(protocol, step)
    truncate_thermo(run_dir / "thermo.csv", rows)
    dcd = run_dir / "trajectory.dcd"
    if frames == 0:  # nothing to keep (a header may be half-written): the writer starts a new file
        dcd.unlink(missing_ok=True)
    elif dcd.exists():
        truncate_dcd(dcd, n_atoms, frames)
    elif frames > 0:
        raise SimulationError(f"{str(dcd)!r} is missing but the checkpoint needs {frames} frames; use --force")
    return rows, frames


def clean_temporaries(run_dir: Path) -> None:
    """Remove temporary files left by an atomic write that was killed half-way."""
    for name in RUN_FILES:
        for tmp in run_dir.glob(f".{name}.*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def remove_run_files(run_dir: Path) -> None:
    """Delete the files of a run (and their temporaries), leaving anything else in ``run_dir``."""
    clean_temporaries(run_dir)
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            (run_dir / name).unlink()
