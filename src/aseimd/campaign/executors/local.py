"""Run campaign jobs on this machine: sequentially or N at once, one GPU per job when there are GPUs.

Each job is a child process (``python -m aseimd.campaign.jobs DIR --job NAME``),
so a crash or a kill of one job leaves the others and the files intact. When
GPUs are visible (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``) each job
gets its own ``gpus_per_job`` of them through ``CUDA_VISIBLE_DEVICES``, and at
most ``len(gpus) // gpus_per_job`` jobs run at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def visible_gpus() -> list[str]:
    """GPU indices this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``, else none."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def gpu_slots(gpus: list[str], gpus_per_job: int, max_parallel: int) -> list[str | None]:
    """One entry per job slot: the ``CUDA_VISIBLE_DEVICES`` value of that slot (``None``: leave as is).

    Examples
    --------
    >>> gpu_slots(["0", "1", "2", "3"], 2, 8)
    ['0,1', '2,3']
    >>> gpu_slots([], 1, 2)
    [None, None]
    """
    if not gpus or gpus_per_job == 0:
        return [None] * max_parallel
    per = max(1, gpus_per_job)
    groups = [",".join(gpus[i:i + per]) for i in range(0, len(gpus) - per + 1, per)]
    return groups[:max_parallel] or [None]


def job_command(campaign_dir: Path, name: str) -> list[str]:
    """The command that runs one job here."""
    return [sys.executable, "-m", "aseimd.campaign.jobs", str(campaign_dir), "--job", name, "--executor", "local"]


def run_local(campaign_dir: Path, names: list[str], *, max_parallel: int = 1, gpus_per_job: int = 0,
              echo: Callable[[str], None] = print, poll_s: float = 0.5) -> dict[str, int]:
    """Run the named jobs, at most ``max_parallel`` at once; returns each job's exit code.

    Exit codes: 0 done (or paused at a deadline), 1 failed, 143 terminated, 75 (:data:`EXIT_BUSY`) the job was
    already being run by another process.
    """
    from aseimd.campaign.jobs import EXIT_BUSY

    campaign_dir = Path(campaign_dir)
    slots = gpu_slots(visible_gpus(), gpus_per_job, max_parallel)
    free = list(range(len(slots)))
    pending = list(names)
    running: dict[int, tuple[str, subprocess.Popen]] = {}
    codes: dict[str, int] = {}
    try:
        while pending or running:
            while pending and free:
                slot, name = free.pop(0), pending.pop(0)
                env = dict(os.environ)
                if slots[slot] is not None:
                    env["CUDA_VISIBLE_DEVICES"] = slots[slot]
                log = campaign_dir / "jobs" / name / "job.log"
                with open(log, "ab") as fh:
                    proc = subprocess.Popen(job_command(campaign_dir, name), env=env, stdout=fh,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                gpu = f" on GPU {slots[slot]}" if slots[slot] is not None else ""
                echo(f"started {name}{gpu} (pid {proc.pid}; log {log})")
                running[slot] = (name, proc)
            time.sleep(poll_s)
            for slot, (name, proc) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                codes[name] = code
                echo(f"{name}: " + ("done" if code == 0 else "already being run by another process; left alone"
                                     if code == EXIT_BUSY else f"exit {code}"))
                del running[slot]
                free.append(slot)
    finally:
        for name, proc in running.values():  # interrupted: stop the children, they record it
            proc.terminate()
        for name, proc in running.values():
            codes[name] = proc.wait()
    return codes
