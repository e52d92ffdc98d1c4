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

Walltime: :mod:`aseimd.campaign.walltime` stops a session right after the
last checkpoint that fits the allocation (or at ``SIGUSR1``); the job then
requeues itself (``scontrol requeue``). ``SIGTERM`` (scancel, preemption, an
external requeue) is recorded and the job exits without requeueing itself.

Failures are classified (:func:`classify_failure`) and are final: ``nan``
(blow-up), ``oom``, ``bad-input``, ``simulation``, ``crash``, ``no-progress``
(``max_no_progress`` sessions in a row without a new checkpoint) and
``too-many-restarts``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform as _pyplatform
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
from aseimd.campaign.walltime import SegmentGuard, StopSegment, deadline_from_environment, slurm_job_ref
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


#: The lock file in a job directory: held (``lockf``, released by the kernel when the process ends, however it
#: ends) by the one process that runs the job, so that a second one (a resubmitted Slurm task, a second
#: ``campaign run``) leaves the job alone instead of writing the same run directory.
LOCK_FILE = ".job.lock"
#: Exit code of a job process that found its job running in another process (EX_TEMPFAIL).
EXIT_BUSY = 75


class JobBusy(Exception):
    """The job is being run by another process (the message says which, as far as the lock file knows)."""


@contextlib.contextmanager
def job_lock(job_path: Path):
    """Hold the job's :data:`LOCK_FILE` for the block; :class:`JobBusy` if another process holds it.

    POSIX record locks (``fcntl.lockf``) also work between nodes on NFS with a lock manager, unlike a PID
    check. Where ``fcntl`` does not exist (not a POSIX system) the block runs without a lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path = Path(job_path) / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise JobBusy(f"job {Path(job_path).name} is being run by {holder}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {_pyplatform.node()} since {_now()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def execute_job(job_dir: str | Path, *, executor: str = "local", requeue: Callable[[], None] | None = None,
                deadline: float | None = None, echo: Callable[[str], None] = print,
                clock: Callable[[], float] = time.time) -> str:
    """Run one job's pipeline for one session; returns ``"done"``, ``"paused"``, ``"stopped"``, ``"failed"``
    or ``"busy"``.

    ``paused``: stopped for walltime (the job requeued itself when ``requeue``
    is given); ``stopped``: terminated from outside (SIGTERM, SIGINT); ``busy``:
    another process holds the job's lock (:func:`job_lock`), and nothing was touched.
    Installs handlers for SIGUSR1, SIGTERM and SIGINT while it runs (main thread only).
    ``deadline`` (epoch seconds, read on ``clock``) enables the walltime plan.
    """
    job = JobDir(Path(job_dir))
    if not job.info:
        raise SpecError(f"{str(job.path)!r} is not an aseimd campaign job (no job.json)")
    try:
        with job_lock(job.path):
            return _execute_locked(job, executor=executor, requeue=requeue, deadline=deadline, echo=echo,
                                   clock=clock)
    except JobBusy as busy:
        echo(f"{busy}; this process leaves it alone")
        return "busy"


def _execute_locked(job: JobDir, *, executor: str, requeue: Callable[[], None] | None, deadline: float | None,
                    echo: Callable[[str], None], clock: Callable[[], float]) -> str:
    info = job.info
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
    from aseimd.errors import AseimdError

    try:
        spec, spec_error = job.spec(), None
    except AseimdError as exc:  # job.json edited into something invalid: a bad-input failure, recorded below
        spec, spec_error = None, " ".join(str(exc).split())
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
    from aseimd.pipeline import load_protocol

    try:
        if spec_error is not None:
            raise JobFailed("bad-input", spec_error)
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
    return {"done": 0, "paused": 0, "stopped": 143, "failed": 1, "busy": EXIT_BUSY}[outcome]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
