"""Run-directory consistency: the checkpoint's step count is the single source of truth.

Every frame of ``trajectory.dcd`` and every row of ``thermo.csv`` sits at a
step fixed by the protocol, so the number of frames and rows that belong to a
checkpoint at step ``s`` follows from ``s`` alone. On resume both files are
cut back to exactly that, which removes whatever was written after the
checkpoint (a frame written just before a kill, a half-written row) and
makes the resumed files equal an uninterrupted run's.

Checkpoints are verified before they are trusted: ``run.json`` records the
size and sha256 of the last two checkpoints (:func:`checkpoint_record`); the
previous one is kept as ``checkpoint.prev.chk`` (:func:`write_checkpoint`).
On resume :func:`verified_checkpoint` takes the newest file whose bytes match a
record and never one that does not; if neither matches, the run stops.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

from aseimd.errors import SimulationError
from aseimd.fileio import MARKER, atomic_write_bytes, atomic_write_text, clear_output_dir
from aseimd.simulate.dcd import dcd_frame_count, truncate_dcd
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.reporters import CHECKPOINT, PREVIOUS_CHECKPOINT, count_reports

RUN_FILES = ("run.json", CHECKPOINT, PREVIOUS_CHECKPOINT, "state.xml", "thermo.csv", "trajectory.dcd")
"""Files a run directory holds (``--force`` removes exactly these, and only if nothing else is there)."""
RUN_DIR_KIND = "run"
"""Kind named in a run directory's ``.aseimd`` marker."""
#: How many checkpoint records ``run.json`` keeps (the current one and the previous good one).
KEPT_CHECKPOINTS = 2


def checkpoint_record(data: bytes, step: int, state_xml: str | None = None) -> dict:
    """What ``run.json`` records about one checkpoint: step, size and sha256 (and state.xml's sha256)."""
    record = {"step": int(step), "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if state_xml is not None:
        record["state_xml_sha256"] = hashlib.sha256(state_xml.encode("utf-8")).hexdigest()
    return record


def restore_checkpoint(run_dir: Path, good: VerifiedCheckpoint) -> None:
    """Make ``checkpoint.chk`` (and ``checkpoint.prev.chk``) hold the verified checkpoint again.

    Called when resuming from an older file, so that the next checkpoint's
    rotation keeps a good previous one and never a damaged file.
    """
    for name in (CHECKPOINT, PREVIOUS_CHECKPOINT):
        path = run_dir / name
        if not path.is_file() or path.read_bytes() != good.data:
            atomic_write_bytes(path, good.data)


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A checkpoint whose bytes match a record in ``run.json``.

    Attributes
    ----------
    path : pathlib.Path
        The file it was read from.
    data : bytes
    record : dict
        The matching record (``step``, ``size_bytes``, ``sha256``, ...).
    rejected : list of str
        Why newer candidate files were not used (empty if the newest one was).
    """

    path: Path
    data: bytes
    record: dict
    rejected: tuple[str, ...] = ()

    @property
    def step(self) -> int:
        return int(self.record["step"])


def checkpoint_files(run_dir: Path) -> list[Path]:
    """The checkpoint files present, newest role first (``checkpoint.chk``, ``checkpoint.prev.chk``)."""
    return [run_dir / name for name in (CHECKPOINT, PREVIOUS_CHECKPOINT) if (run_dir / name).is_file()]


def verified_checkpoint(run_dir: Path, records: list[dict]) -> VerifiedCheckpoint:
    """The newest checkpoint file in ``run_dir`` whose size and sha256 match one of ``records``.

    Raises
    ------
    SimulationError
        No file matches: the message says what was found and expected and
        that the run cannot be resumed safely.
    """
    by_digest = {(r.get("size_bytes"), r.get("sha256")): r for r in records if isinstance(r, dict)}
    rejected, matches = [], []
    for path in checkpoint_files(run_dir):
        data = path.read_bytes()
        record = by_digest.get((len(data), hashlib.sha256(data).hexdigest()))
        if record is None:
            sizes = ", ".join(str(r.get("size_bytes")) for r in records) or "none"
            rejected.append(f"{path.name} ({len(data)} bytes) matches no checkpoint recorded in run.json "
                            f"(recorded sizes: {sizes}; damaged, or the run was killed while writing it)")
        else:
            matches.append(VerifiedCheckpoint(path, data, record))
    if not matches:
        found = "; ".join(rejected) if rejected else f"no {CHECKPOINT} or {PREVIOUS_CHECKPOINT} in the folder"
        raise SimulationError(f"no verified checkpoint in {str(run_dir)!r}: {found}; refusing to resume from "
                              f"an unverified state: pass --force to start over")
    best = max(matches, key=lambda m: m.step)
    return VerifiedCheckpoint(best.path, best.data, best.record, tuple(rejected))


def thermo_report_steps(protocol: Protocol, step: int) -> list[tuple[int, str]]:
    """``(step, stage name)`` of every ``thermo.csv`` row written up to and including global step ``step``."""
    return [(item.start_step + k * protocol.thermo_steps, item.stage.name)
            for item in protocol.schedule if item.stage.is_md
            for k in range(1, count_reports(step, item.start_step, item.end_step, protocol.thermo_steps) + 1)]


def expected_thermo_rows(protocol: Protocol, step: int) -> int:
    """Number of ``thermo.csv`` rows written up to and including global step ``step``."""
    return sum(
        count_reports(step, item.start_step, item.end_step, protocol.thermo_steps)
        for item in protocol.schedule
        if item.stage.is_md
    )


def check_thermo(path: Path, protocol: Protocol, step: int) -> list[dict[str, float | str]]:
    """The rows of ``thermo.csv`` up to global ``step``, verified against what the protocol wrote.

    Every row must be where the protocol reports (its step, in order, labelled with its stage), hold 11
    fields, and agree with itself: time = step x timestep (printed to 1e-6 ps) and volume = a b c (each
    printed to 12 digits). So a row cut short, a stage label or step garbled, or a box edge or volume
    changed by hand is found; only a change of a box edge *and* the volume together would pass.

    Returns
    -------
    list of dict
        ``{"step", "time_ps", "volume_nm3", "a", "b", "c"}`` as numbers and ``"stage"``.

    Raises
    ------
    SimulationError
        The file is missing, has the wrong header or fewer rows than the run wrote by ``step``, or a damaged
        row (named by line). Rows after ``step`` are not read.
    """
    import csv
    import io
    import math

    from aseimd.simulate.reporters import THERMO_COLUMNS

    expected = thermo_report_steps(protocol, step)
    damaged = "the run directory is damaged (pass --force to start over, or repair the file)"
    if not expected:
        return []
    if not path.is_file():
        raise SimulationError(f"{str(path)!r} is missing but the run wrote {len(expected)} rows; {damaged}")
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows or tuple(rows[0]) != THERMO_COLUMNS:
        raise SimulationError(f"{str(path)!r} does not start with the thermo.csv header; {damaged}")
    body = rows[1:]
    if len(body) < len(expected):
        raise SimulationError(f"{str(path)!r} holds {len(body)} rows but the run wrote {len(expected)} by step "
                              f"{step}; {damaged}")
    out = []
    for line, (row, (want_step, want_stage)) in enumerate(zip(body, expected), start=2):
        where = f"{str(path)!r} line {line} (step {want_step})"
        if len(row) != len(THERMO_COLUMNS):
            raise SimulationError(f"{where} has {len(row)} fields, not {len(THERMO_COLUMNS)}; {damaged}")
        try:
            got_step = int(row[0])
            nums = [float(x) for x in row[1:10]]
        except ValueError:
            raise SimulationError(f"{where} holds a field that is not a number; {damaged}") from None
        if got_step != want_step or row[10] != want_stage:
            raise SimulationError(f"{where} reads step {row[0]} of stage {row[10]!r}, expected step {want_step} of "
                                  f"{want_stage!r}; {damaged}")
        time_ps, volume, a, b, c = nums[0], nums[4], nums[6], nums[7], nums[8]
        if not all(math.isfinite(x) for x in nums) or min(volume, a, b, c) <= 0:
            raise SimulationError(f"{where} holds a non-finite value or a box that is not positive; {damaged}")
        if abs(time_ps - got_step * protocol.timestep_ps) > 2e-6 or abs(volume - a * b * c) > 1e-9 * volume:
            raise SimulationError(f"{where} disagrees with itself (time or volume against step or box edges): "
                                  f"{damaged}")
        out.append({"step": got_step, "time_ps": time_ps, "volume_nm3": volume, "a": a, "b": b, "c": c,
                    "stage": row[10]})
    return out


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
    dcd = run_dir / "trajectory.dcd"
    if frames > 0 and dcd.exists():  # check both files before cutting either: a damaged directory is left as is
        have = dcd_frame_count(dcd, n_atoms)
        if have < frames:
            raise SimulationError(f"{str(dcd)!r} holds {have} complete frames but the checkpoint at step {step} "
                                  f"needs {frames}; the run directory is damaged (use --force to start over)")
    truncate_thermo(run_dir / "thermo.csv", rows)
    if frames == 0:  # nothing to keep (a header may be half-written): the writer starts a new file
        dcd.unlink(missing_ok=True)
    elif dcd.exists():
        truncate_dcd(dcd, n_atoms, frames)
    elif frames > 0:
        raise SimulationError(f"{str(dcd)!r} is missing but the checkpoint needs {frames} frames; use --force")
    return rows, frames


def is_run_temporary(name: str) -> bool:
    """A name of the temporaries an atomic write of a run file leaves when killed (``.run.json.XXXX.tmp``)."""
    return name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in (*RUN_FILES, MARKER))


def clean_temporaries(run_dir: Path) -> None:
    """Remove temporary files left by an atomic write that was killed half-way.

    Only in a folder that is aseimd's: one with ``run.json`` or a run marker, or one holding nothing but
    such temporaries (a first run killed while writing its first file). A folder with anything else is left
    as it is, so that the refusal that follows changes nothing in it.
    """
    from aseimd.fileio import read_marker

    entries = [p for p in run_dir.iterdir() if p.name != MARKER]
    owned = (run_dir / "run.json").is_file() or (read_marker(run_dir) or {}).get("kind") == RUN_DIR_KIND
    if not owned and not all(is_run_temporary(p.name) and p.is_file() for p in entries):
        return
    for p in entries:
        if is_run_temporary(p.name):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def remove_run_files(run_dir: Path) -> None:
    """Delete a run's files, only if ``run_dir`` is an aseimd run directory holding nothing else.

    Raises
    ------
    OutputExistsError
        ``run_dir`` holds anything aseimd did not write, or has no marker/run.json
        naming it an aseimd run (nothing is deleted then).
    """
    clear_output_dir(run_dir, kind=RUN_DIR_KIND, files=RUN_FILES, legacy_json="run.json")
