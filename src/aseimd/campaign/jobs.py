"""Campaign and job directories, and the process that runs one job (any executor).

::

    CAMPAIGN_DIR/
      campaign.json            owner (campaign name), spec SHA-256, job names, current resources
      campaign.yaml            the campaign file as given
      jobs/NAME/
        job.json               resolved pipeline spec, matrix labels/values, seed
        state.json             written only by the job process: state, stage, failure, sessions
        submitted.json         written only by the submitter: executor, Slurm array id and index
        job.log                everything the job printed, all sessions appended
        system/ run/ analysis/ the pipeline's directories (:mod:`aseimd.pipeline`)
      slurm/                   job scripts, task lists, sbatch command lines and outputs

A job runs in sessions (one per Slurm allocation or local start). Each
session is recorded in ``state.json``: host, GPU (``CUDA_VISIBLE_DEVICES``),
Slurm job id, array index, restart count, steps at start and end, measured
ns/day, and how it ended. Everything a job knows is in these files: a
requeued job (on any node) reads them and continues.

Walltime. With a deadline known (Slurm: ``squeue -o %L`` at start; or
``ASEIMD_JOB_DEADLINE``, seconds since the epoch), a watcher thread sees each
new checkpoint in ``run/run.json`` and the measured step rate; when the next
whole checkpoint interval would not fit before the deadline minus
``reserve_s`` (checkpoint + analysis), it stops the pipeline right after that
checkpoint and the job requeues itself (``scontrol requeue $SLURM_JOB_ID``).
``SIGUSR1`` (``--signal=B:USR1@N``) is the backup trigger: it stops at once
(the work since the last checkpoint is recomputed after the requeue, with
identical results). ``SIGTERM`` (scancel, preemption, an external requeue) is
recorded and the job exits without requeueing itself.

Failures are classified (:func:`classify_failure`) and are final: ``nan``
(blow-up), ``oom``, ``bad-input``, ``simulation``, ``crash``, ``no-progress``
(``max_no_progress`` sessions in a row without a new checkpoint) and
``too-many-restarts``.
"""

from __future__ import annotations

import _thread
import json
import os
import platform as _pyplatform
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aseimd import __version__
from aseimd.errors import (
    AnalysisError,
    BuildError,
    ForceFieldError,
    OutputExistsError,
    SimulationError,
    SpecError,
)
from aseimd.fileio import atomic_write_json, atomic_write_text
from aseimd.pipeline import PipelineSpec, job_paths, run_pipeline, run_progress

CAMPAIGN_FILE = "campaign.json"
FORMAT = "aseimd-campaign/1"
FAILURE_CLASSES = ("nan", "oom", "bad-input", "simulation", "crash", "no-progress", "too-many-restarts")


# ---------------------------------------------------------------------------- directories


def read_json(path: Path) -> dict | None:
    """A JSON file's content, or ``None`` when missing or unreadable (a file being replaced)."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def prepare_campaign(campaign, directory: Path) -> list:
    """Check ownership, write ``campaign.json`` and every new job's ``job.json``; return the jobs.

    Nothing is written unless every check passes.

    Raises
    ------
    SpecError
        ``directory`` belongs to another campaign, is not a campaign directory,
        or holds a job of the same name made from a different spec.
    """
    directory = Path(directory)
    jobs = campaign.jobs()
    owner = read_json(directory / CAMPAIGN_FILE)
    if owner is not None:
        if owner.get("format") != FORMAT or owner.get("name") != campaign.name:
            raise SpecError(f"directory {str(directory)!r} belongs to campaign {owner.get('name')!r}, not "
                            f"{campaign.name!r}; choose another --dir")
    elif directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise SpecError(f"directory {str(directory)!r} exists and is not an aseimd campaign directory "
                        f"(no {CAMPAIGN_FILE}); choose another --dir")
    for job in jobs:
        recorded = read_json(directory / "jobs" / job.name / "job.json")
        if recorded is not None and recorded.get("spec_sha256") != job.pipeline.fingerprint():
            raise SpecError(f"job {job.name!r} in {str(directory)!r} was made from a different spec (system, "
                            f"protocol or analyses changed); use another --dir for the changed campaign")
    names = list(dict.fromkeys([*(owner or {}).get("jobs", []), *(j.name for j in jobs)]))
    atomic_write_json(directory / CAMPAIGN_FILE, {
        "format": FORMAT, "name": campaign.name, "description": campaign.description,
        "source": str(campaign.source) if campaign.source else None, "spec_sha256": campaign.fingerprint(),
        "aseimd_version": __version__, "jobs": names, "resources": campaign.resources,
    }, force=True)
    if campaign.source is not None:
        atomic_write_text(directory / "campaign.yaml", Path(campaign.source).read_text())
    for job in jobs:
        path = directory / "jobs" / job.name / "job.json"
        if not path.exists():
            atomic_write_json(path, job.to_dict() | {"campaign": campaign.name}, force=False)
    return jobs


@dataclass
class JobDir:
    """One job directory and what its files say."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def info(self) -> dict:
        return read_json(self.path / "job.json") or {}

    @property
    def state(self) -> dict:
        return read_json(self.path / "state.json") or {"state": "new", "stage": None, "sessions": []}

    @property
    def submitted(self) -> dict | None:
        return read_json(self.path / "submitted.json")

    @property
    def log(self) -> Path:
        return self.path / "job.log"

    def spec(self) -> PipelineSpec:
        return PipelineSpec.from_dict(self.info["spec"], where=f"{self.path / 'job.json'}")

    def write_state(self, state: dict) -> None:
        atomic_write_json(self.path / "state.json", state | {"updated": _now()}, force=True)

    def analyses_done(self) -> bool:
        names = list((self.info.get("spec") or {}).get("analyses") or {})
        return all((self.path / "analysis" / f"{n}.json").is_file() for n in names)


def job_dirs(directory: Path) -> list[JobDir]:
    """The campaign's jobs in ``campaign.json`` order."""
    owner = read_json(Path(directory) / CAMPAIGN_FILE)
    if owner is None:
        raise SpecError(f"{str(directory)!r} is not an aseimd campaign directory (no {CAMPAIGN_FILE})")
    return [JobDir(Path(directory) / "jobs" / name) for name in owner.get("jobs", [])]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------------- failures


class StopSegment(BaseException):  # noqa: N818 -- not an error: the segment ends here
    """Raised in the job's main thread to end a segment (walltime, signal); the files stay resumable."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class JobFailed(Exception):
    """A job failed for good; ``kind`` is one of :data:`FAILURE_CLASSES`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """``(class, one-line message)`` of an exception that ended a job.

    ``nan``: a blow-up (non-finite or runaway energies/temperatures);
    ``oom``: out of host or GPU memory; ``bad-input``: the spec is wrong
    (unknown recipe, species, option); ``simulation``: another simulation error
    (unusable checkpoint, mismatched run directory); ``crash``: anything else.
    """
    message = " ".join(str(exc).split()) or type(exc).__name__
    lower = message.lower()
    if isinstance(exc, JobFailed):
        return exc.kind, message
    if isinstance(exc, MemoryError) or "out of memory" in lower or "out_of_memory" in lower or "bad_alloc" in lower:
        return "oom", message
    if isinstance(exc, SimulationError):
        if any(word in lower for word in ("blow-up", "nan", "non-finite", "infinite", "box size has decreased")):
            return "nan", message
        return "simulation", message
    if isinstance(exc, SpecError | BuildError | ForceFieldError | AnalysisError | OutputExistsError):
        return "bad-input", message
    return "crash", f"{type(exc).__name__}: {message}"


# ---------------------------------------------------------------------------- walltime


def parse_slurm_duration(text: str) -> float | None:
    """Seconds in a Slurm duration (``"MM:SS"``, ``"HH:MM:SS"``, ``"D-HH:MM:SS"``); ``None`` for unlimited."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "NOT_SET", "INVALID", "INFINITE", "N/A"):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [int(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts[-3:]
    return float(((days * 24 + h) * 60 + m) * 60 + s)


def deadline_from_environment(now: float | None = None) -> float | None:
    """Epoch seconds at which this job's allocation ends, or ``None`` (no limit known).

    ``ASEIMD_JOB_DEADLINE`` wins; inside Slurm the time left comes from
    ``squeue -h -j JOB -o %L`` (no accounting needed; JOB from :func:`slurm_job_ref`).
    """
    now = time.time() if now is None else now
    if os.environ.get("ASEIMD_JOB_DEADLINE"):
        return float(os.environ["ASEIMD_JOB_DEADLINE"])
    job_id = slurm_job_ref()
    if not job_id:
        return None
    try:
        out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%L"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
        left = parse_slurm_duration(out.splitlines()[0]) if out.strip() else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return None if left is None else now + left


def plan_stop(steps_done: int, total_steps: int, segment_steps: int, steps_per_s: float | None,
              seconds_left: float | None, reserve_s: float) -> bool:
    """Whether to stop now (right after a checkpoint at ``steps_done``) rather than run the next segment.

    The next segment runs to the next checkpoint (``segment_steps`` later, or
    the end); it must finish, measured at ``steps_per_s``, with ``reserve_s``
    still left for the final checkpoint and the analysis.

    Examples
    --------
    >>> plan_stop(1000, 5000, 500, steps_per_s=10.0, seconds_left=100.0, reserve_s=60.0)  # 40 s < 50 s
    True
    >>> plan_stop(1000, 5000, 500, steps_per_s=10.0, seconds_left=100.0, reserve_s=50.0)  # 50 s fit
    False
    >>> plan_stop(1000, 5000, 500, steps_per_s=None, seconds_left=1.0, reserve_s=20.0)  # nothing measured yet
    False
    """
    if steps_done >= total_steps or seconds_left is None or not steps_per_s:
        return False
    need = min(segment_steps, total_steps - steps_done) / steps_per_s
    return seconds_left - reserve_s < need


class SegmentGuard:
    """Watch ``run.json`` from a thread; stop the main thread after the last checkpoint that fits.

    Parameters
    ----------
    run_dir : pathlib.Path
    segment_steps : int
        Steps between checkpoints (the protocol's ``checkpoint_steps``).
    deadline : float or None
        Epoch seconds when the allocation ends.
    reserve_s : float
    steps_per_s_hint : float, optional
        Rate measured in earlier sessions (used until this session has measured its own).
    clock : callable
        ``time.time`` (tests may pass another).
    on_checkpoint : callable(steps, steps_per_s), optional
        Called from the watcher thread at each new checkpoint (progress notes for ``status``).
    """

    def __init__(self, run_dir: Path, segment_steps: int, deadline: float | None, reserve_s: float,
                 steps_per_s_hint: float | None = None, clock: Callable[[], float] = time.time,
                 poll_s: float = 0.2, on_checkpoint: Callable[[int, float | None], None] | None = None):
        self.on_checkpoint = on_checkpoint
        self.run_dir, self.segment_steps, self.deadline = Path(run_dir), segment_steps, deadline
        self.reserve_s, self.hint, self.clock, self.poll_s = reserve_s, steps_per_s_hint, clock, poll_s
        self.observed: list[tuple[float, int]] = []
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # measured in this session, between checkpoints it saw being written
    def steps_per_s(self) -> float | None:
        if len(self.observed) >= 2 and self.observed[-1][0] > self.observed[0][0]:
            (t0, s0), (t1, s1) = self.observed[0], self.observed[-1]
            return (s1 - s0) / (t1 - t0)
        return self.hint

    def steps_range(self) -> tuple[int | None, int | None]:
        if not self.observed:
            return None, None
        return self.observed[0][1], self.observed[-1][1]

    def _watch(self) -> None:
        last = None
        while not self._stop.wait(self.poll_s):
            steps, total, status = run_progress(self.run_dir)
            if status is None or steps == last:
                continue
            last = steps
            self.observed.append((self.clock(), steps))
            if self.on_checkpoint is not None and len(self.observed) >= 2:
                try:
                    self.on_checkpoint(steps, self.steps_per_s())
                except Exception:  # noqa: BLE001 -- a progress note must never stop the watcher
                    pass
            # decide at checkpoints this session wrote: every session makes at least one segment of progress
            if self.deadline is None or status != "running" or steps <= self.observed[0][1]:
                continue
            if plan_stop(steps, total, self.segment_steps, self.steps_per_s(), self.deadline - self.clock(),
                         self.reserve_s):
                self.trigger(f"walltime: the next segment would not fit (checkpoint at step {steps})")
                return

    def trigger(self, reason: str) -> None:
        """Stop the main thread with :class:`StopSegment` (from any thread)."""
        if self.reason is None:
            self.reason = reason
            _thread.interrupt_main(signal.SIGUSR1)

    #: Signals that end a segment (each raises :class:`StopSegment` in the main thread) and their reasons.
    SIGNALS = {signal.SIGUSR1: "walltime signal (SIGUSR1)", signal.SIGTERM: "terminated (SIGTERM)",
               signal.SIGINT: "interrupted (SIGINT)"}

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGUSR1 and self.reason is not None:
            raise StopSegment(self.reason)  # the watcher's own stop
        raise StopSegment(self.SIGNALS[signum])

    def __enter__(self) -> SegmentGuard:
        """Install the signal handlers (main thread only) and start watching."""
        self._previous = {s: signal.signal(s, self._on_signal) for s in self.SIGNALS}
        self._thread = threading.Thread(target=self._watch, name="aseimd-segment-guard", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for s, handler in self._previous.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------------------- one job


def _gpu() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def _slurm_env() -> dict[str, Any]:
    env = os.environ
    return {
        "slurm_job_id": env.get("SLURM_JOB_ID"), "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "array_index": int(env["SLURM_ARRAY_TASK_ID"]) if env.get("SLURM_ARRAY_TASK_ID") else None,
        "restart_count": int(env.get("SLURM_RESTART_COUNT") or 0), "node": env.get("SLURMD_NODENAME"),
    }


def _no_progress_streak(sessions: list[dict]) -> int:
    n = 0
    for s in reversed(sessions):
        if s.get("outcome") in ("done", "failed"):
            break
        if (s.get("steps_end") or 0) > (s.get("steps_start") or 0):
            break
        n += 1
    return n


def execute_job(job_dir: str | Path, *, executor: str = "local", requeue: Callable[[], None] | None = None,
                deadline: float | None = None, echo: Callable[[str], None] = print,
                clock: Callable[[], float] = time.time) -> str:
    """Run one job's pipeline for one session; returns ``"done"``, ``"paused"``, ``"stopped"`` or ``"failed"``.

    ``paused``: stopped for walltime (the job requeued itself when ``requeue``
    is given); ``stopped``: terminated from outside (SIGTERM, SIGINT).
    Installs handlers for SIGUSR1, SIGTERM and SIGINT while it runs (main thread only).
    ``deadline`` (epoch seconds, read on ``clock``) enables the walltime plan.
    """
    job = JobDir(Path(job_dir))
    info = job.info
    if not info:
        raise SpecError(f"{str(job.path)!r} is not an aseimd campaign job (no job.json)")
    state = job.state
    if state.get("state") == "failed":
        echo(f"job {job.name} failed before ({state.get('failure', {}).get('class')}); not rerun "
             f"(aseimd campaign run|submit --retry-failed)")
        return "failed"
    if state.get("state") == "done" and job.analyses_done():
        echo(f"job {job.name} is done")
        return "done"
    # the campaign's current resources (a resubmission may change max_restarts, reserve_s, ...)
    owner = read_json(job.path.parent.parent / CAMPAIGN_FILE) or {}
    resources = owner.get("resources") or info.get("resources") or {}
    sessions = list(state.get("sessions") or [])
    spec = job.spec()
    _, run_dir, _ = job_paths(job.path)
    steps0 = run_progress(run_dir)[0]
    for s in sessions:
        if s.get("outcome") is None:
            s.update(ended=None, steps_end=steps0, outcome="lost",
                     note="the process ended without a record (killed: out of memory, node failure, SIGKILL "
                          "or the walltime kill); steps_end is the checkpoint found afterwards")
    session = {"started": _now(), "ended": None, "executor": executor, "host": _pyplatform.node(),
               "pid": os.getpid(), "gpu": _gpu(),
               **_slurm_env(), "steps_start": steps0, "steps_end": None, "ns_per_day": None, "outcome": None}
    sessions.append(session)
    state = {"state": "running", "stage": state.get("stage"), "failure": None, "sessions": sessions,
             "aseimd_version": __version__}

    lock = threading.Lock()

    def save(**changes) -> None:
        with lock:
            state.update(changes)
            job.write_state(state)

    def progress_note(steps: int, rate: float | None) -> None:  # from the watcher thread
        with lock:
            session.update(steps_now=steps, steps_per_s=rate)
            job.write_state(state)

    save()
    from aseimd.errors import AseimdError
    from aseimd.pipeline import load_protocol

    try:
        try:
            protocol = load_protocol(spec)
        except AseimdError as exc:
            raise JobFailed("bad-input", " ".join(str(exc).split())) from None
        if len(sessions) > int(resources.get("max_restarts", 50)) + 1:
            raise JobFailed("too-many-restarts", f"{len(sessions) - 1} restarts (max_restarts "
                                                 f"{resources.get('max_restarts')})")
        streak = _no_progress_streak(sessions[:-1])
        if streak >= int(resources.get("max_no_progress", 3)):
            raise JobFailed("no-progress", f"{streak} sessions in a row ended without a new checkpoint "
                                           f"(walltime too short for one checkpoint interval, or the job is "
                                           f"killed early); see {job.log}")
    except JobFailed as exc:
        session.update(ended=_now(), outcome="failed")
        save(state="failed", failure={"class": exc.kind, "message": str(exc), "log": str(job.log)})
        echo(f"job {job.name} failed ({exc.kind}): {exc}")
        return "failed"

    hint = next((s["steps_per_s"] for s in reversed(sessions[:-1]) if s.get("steps_per_s")), None)
    guard = SegmentGuard(run_dir, protocol.checkpoint_steps, deadline, float(resources.get("reserve_s", 300)),
                         steps_per_s_hint=hint, clock=clock, on_checkpoint=progress_note)
    outcome, t_start = "failed", time.time()
    try:
        with guard:
            if deadline is not None and deadline - clock() < float(resources.get("reserve_s", 300)):
                raise StopSegment("walltime: less than reserve_s left at the start")
            result = run_pipeline(spec, job.path, progress=True, echo=lambda text, kind: echo(text),
                                  on_stage=lambda stage: save(stage=stage))
        outcome = "done"
        rate = result.run.ns_per_day
        session.update(ns_per_day=rate)
        save(state="done", stage="done")
    except StopSegment as stop:
        outcome = "stopped" if "SIGTERM" in stop.reason or "SIGINT" in stop.reason else "paused"
        session["stop_reason"] = stop.reason
        echo(f"job {job.name}: segment ended: {stop.reason}")
        save(state="requeued" if outcome == "paused" and requeue else outcome)
    except BaseException as exc:  # noqa: BLE001 -- every end of a job is recorded
        kind, message = classify_failure(exc)
        if kind == "crash":
            echo(traceback.format_exc())
        echo(f"job {job.name} failed ({kind}): {message}")
        save(state="failed", failure={"class": kind, "message": message, "log": str(job.log)})
        if not isinstance(exc, Exception):
            raise
    finally:
        guard.on_checkpoint = None
        steps1 = run_progress(run_dir)[0]
        rate = guard.steps_per_s() if len(guard.observed) >= 2 else None
        if session.get("ns_per_day") is None and rate:
            session["ns_per_day"] = rate * protocol.timestep_ps * 86400 * 1e-3
        if rate:
            session["steps_per_s"] = rate
        elif session.get("ns_per_day"):
            session["steps_per_s"] = session["ns_per_day"] / (protocol.timestep_ps * 86400 * 1e-3)
        session.pop("steps_now", None)
        session.update(ended=_now(), steps_end=steps1, outcome=outcome, wall_s=round(time.time() - t_start, 3))
        with lock:
            job.write_state(state)
    if outcome == "paused" and requeue is not None:
        echo(f"job {job.name}: requeueing at step {steps1}")
        requeue()
    return outcome


def slurm_job_ref() -> str | None:
    """This job as Slurm commands must name it: ``ARRAY_TASK`` inside an array, else ``$SLURM_JOB_ID``.

    (The last task of an array has the array's own id as ``SLURM_JOB_ID``; ``scontrol requeue``
    of that id would requeue every task.)
    """
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


def slurm_requeue() -> None:
    """``scontrol requeue`` this job: it goes back to the queue and resumes from its files."""
    subprocess.run(["scontrol", "requeue", slurm_job_ref()], check=False, timeout=60)


def _redirect_output(log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """``python -m aseimd.campaign.jobs CAMPAIGN_DIR (--job NAME | --tasks FILE) [--executor local|slurm]``.

    With ``--tasks`` the job is line ``$SLURM_ARRAY_TASK_ID`` of FILE (a Slurm array).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aseimd.campaign.jobs")
    parser.add_argument("campaign_dir")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--job")
    which.add_argument("--tasks")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local")
    args = parser.parse_args(argv)
    if args.tasks:
        names = Path(args.tasks).read_text().split()
        name = names[int(os.environ["SLURM_ARRAY_TASK_ID"])]
    else:
        name = args.job
    job_dir = Path(args.campaign_dir) / "jobs" / name
    _redirect_output(job_dir / "job.log")
    print(f"=== {_now()} job {name} on {_pyplatform.node()} (gpu {_gpu()}, slurm {_slurm_env()})", flush=True)
    slurm = args.executor == "slurm" and os.environ.get("SLURM_JOB_ID")
    outcome = execute_job(job_dir, executor=args.executor, requeue=slurm_requeue if slurm else None,
                          deadline=deadline_from_environment(), echo=lambda text: print(text, flush=True))
    print(f"=== {_now()} job {name}: {outcome}", flush=True)
    return {"done": 0, "paused": 0, "stopped": 143, "failed": 1}[outcome]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
