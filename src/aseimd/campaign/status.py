"""Where every job of a campaign stands, from its files and ``squeue`` (no ``sacct``).

States: ``new`` (never started), ``pending`` (in the Slurm queue), ``running``,
``requeued`` (stopped at a walltime and back in the queue), ``paused`` (stopped
and not queued: submit or run again to continue), ``lost`` (its last session
ended without a record and Slurm no longer knows it: killed by the OOM killer,
a node failure or ``kill -9``; submitting again resumes it), ``done`` and
``failed`` (with the failure class and the log).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from aseimd.campaign.executors.slurm import in_queue, queue
from aseimd.campaign.jobs import JobDir, job_dirs
from aseimd.pipeline import job_paths, run_progress


@dataclass(frozen=True)
class JobStatus:
    """One row of ``aseimd campaign status``."""

    name: str
    chemistry: str
    stage: str
    state: str
    steps_done: int
    total_steps: int
    ns_per_day: float | None
    sessions: int
    slurm_job: str | None
    eta_s: float | None
    failure: dict | None
    log: str

    @property
    def progress(self) -> float:
        """Fraction of the protocol's steps done."""
        return self.steps_done / self.total_steps if self.total_steps else 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "chemistry": self.chemistry, "stage": self.stage, "state": self.state,
                "steps_done": self.steps_done, "total_steps": self.total_steps, "progress": self.progress,
                "ns_per_day": self.ns_per_day, "sessions": self.sessions, "slurm_job": self.slurm_job,
                "eta_s": self.eta_s, "failure": self.failure, "log": self.log}


def _alive(session: dict) -> bool:
    """A local session's process still runs (same host, pid alive)."""
    import platform

    pid = session.get("pid")
    if not pid or session.get("host") != platform.node():
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


def job_status(job: JobDir, known: dict) -> JobStatus:
    """The status of one job from its files and the ``squeue`` snapshot ``known``."""
    state = job.state
    sessions = state.get("sessions") or []
    last = sessions[-1] if sessions else {}
    steps, total, _ = run_progress(job_paths(job.path)[1])
    entry = in_queue(job.submitted, known)
    recorded = state.get("state", "new")
    if recorded in ("done", "failed"):
        shown = recorded
    elif entry is not None:
        shown = "running" if entry["state"] in ("RUNNING", "COMPLETING") else (
            "requeued" if sessions else "pending")
    elif recorded == "running":
        shown = "running" if last.get("executor") == "local" and _alive(last) else "lost"
    elif recorded in ("requeued", "paused", "stopped"):
        shown = "paused"
    else:
        shown = "new"
    rates = [s for s in sessions if s.get("steps_per_s")]
    rate = rates[-1]["steps_per_s"] if rates else None
    ns_day = next((s["ns_per_day"] for s in reversed(sessions) if s.get("ns_per_day")), None)
    eta = None
    if shown not in ("done", "failed") and rate and total:
        eta = (total - steps) / rate
    slurm = None
    if entry is not None:
        slurm = f"{entry['job_id']} {entry['state']}"
    elif job.submitted and job.submitted.get("executor") == "slurm":
        slurm = f"{job.submitted['array_job_id']}_{job.submitted['array_index']}"
    return JobStatus(job.name, job.info.get("chemistry", job.name), state.get("stage") or "-", shown, steps, total,
                     ns_day, len(sessions), slurm, eta, state.get("failure"), str(job.log))


def campaign_status(directory: Path) -> list[JobStatus]:
    """Every job's status (one ``squeue`` call for all, made only when a job was submitted to Slurm).

    Raises
    ------
    EnvironmentProblem
        A job was submitted to Slurm and ``squeue`` failed: its state is unknown (see :func:`queue`).
    """
    jobs = job_dirs(directory)
    slurm = any((job.submitted or {}).get("executor") == "slurm" for job in jobs)
    known = queue() if slurm else {}
    return [job_status(job, known) for job in jobs]


def needs_work(status: JobStatus, retry_failed: bool = False) -> bool:
    """Whether a job should be started or submitted (not done, not queued or running, not failed)."""
    if status.state == "failed":
        return retry_failed
    return status.state in ("new", "paused", "lost")


def format_status(rows: list[JobStatus], now: float | None = None, log_lines: int = 5) -> str:
    """The table ``aseimd campaign status`` prints, a summary line, and each failure with its log's last lines."""
    now = time.time() if now is None else now
    headers = ("job", "stage", "state", "progress", "ns/day", "sessions", "slurm", "predicted completion")
    table = []
    for r in rows:
        eta = "-"
        if r.state == "done":
            eta = "done"
        elif r.eta_s is not None:
            eta = time.strftime("%Y-%m-%d %H:%M", time.localtime(now + r.eta_s)) + (
                " (+queue)" if r.state in ("pending", "requeued", "paused", "lost") else "")
        table.append((r.name, r.stage, r.state if r.state != "failed" else f"failed ({r.failure.get('class')})",
                      f"{100 * r.progress:5.1f}% ({r.steps_done}/{r.total_steps})",
                      f"{r.ns_per_day:.3g}" if r.ns_per_day else "-", str(r.sessions), r.slurm_job or "-", eta))
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines.append(f"{len(rows)} jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for r in rows:
        if r.state == "failed" and r.failure:
            lines.append(f"{r.name}: {r.failure.get('class')}: {r.failure.get('message')} (log: {r.log})")
            lines += [f"    | {line}" for line in log_tail(Path(r.log), log_lines)]
    return "\n".join(lines)


def log_tail(path: Path, n: int) -> list[str]:
    """The last ``n`` lines of a job log (none if it is missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines()[-n:]] if n > 0 else []
