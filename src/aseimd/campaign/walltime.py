"""Walltime: read the time left, stop a session after the last checkpoint that fits, and the signals.

With a deadline known (Slurm: ``squeue -h -j JOB -o %L`` at start; or
``ASEIMD_JOB_DEADLINE``, seconds since the epoch), :class:`SegmentGuard`'s
watcher thread sees each new checkpoint in ``run/run.json`` and the measured
step rate; when the next whole checkpoint interval would not fit before the
deadline minus ``reserve_s`` (final checkpoint + analysis), it stops the main
thread right after that checkpoint (:class:`StopSegment`). ``SIGUSR1``
(``--signal=B:USR1@N``) is the backup trigger: it stops at once (the steps
since the last checkpoint are recomputed after the requeue, with identical
results). ``SIGTERM`` and ``SIGINT`` stop the same way with their own reason.
Stopping anywhere is safe: the pipeline writes every file atomically and the
runner resumes from its last verified checkpoint.
"""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aseimd.pipeline import run_progress


class StopSegment(BaseException):  # noqa: N818 -- not an error: the segment ends here
    """Raised in the job's main thread to end a segment (walltime, signal); the files stay resumable."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def slurm_job_ref() -> str | None:
    """This job as Slurm commands must name it: ``ARRAY_TASK`` inside an array, else ``$SLURM_JOB_ID``.

    (The last task of an array has the array's own id as ``SLURM_JOB_ID``; ``scontrol requeue``
    of that id would requeue every task.)
    """
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


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
