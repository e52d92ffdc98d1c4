"""Submit campaign jobs as one Slurm job array per submission, and ask ``squeue`` about them.

No shell ever sees a value from a campaign file: the sbatch options are one
argument each on ``sbatch``'s command line (a list, no ``shell=True``), and the
job script holds only ``shlex``-quoted paths. The script::

    #!/bin/bash
    trap '' USR1                  # keep the walltime signal ignored until Python handles it
    exec PYTHON -m aseimd.campaign.jobs CAMPAIGN_DIR --tasks TASKS --executor slurm

Array task ``i`` runs the job on line ``i`` of ``slurm/tasks-K.txt``. Options:
``--array=0-(N-1)%P`` (P = ``max_parallel``), ``--requeue``,
``--signal=B:USR1@signal_s``, ``--gres=gpu:N`` when ``gpus_per_job`` > 0,
``--cpus-per-task``, and ``--time``, ``--partition``, ``--account``, ``--qos``,
``--mem`` and ``extra`` as given. Job state comes from ``squeue`` and the job
files only (no ``sacct``: most small clusters have no accounting).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aseimd.errors import EnvironmentProblem, SpecError
from aseimd.fileio import atomic_write_json, atomic_write_text

SQUEUE_FORMAT = "%A|%F|%K|%T|%L|%R"


def sbatch_options(campaign_name: str, resources: dict, n_tasks: int, log_dir: Path) -> list[str]:
    """sbatch options (one argument each) for an array of ``n_tasks`` jobs.

    Examples
    --------
    >>> opts = sbatch_options("tiny", {"max_parallel": 2, "gpus_per_job": 1, "cpus_per_task": 1,
    ...                                "signal_s": 60, "extra": []}, 4, Path("/c/slurm/logs"))
    >>> [o for o in opts if o.startswith(("--array", "--gres"))]
    ['--array=0-3%2', '--gres=gpu:1']
    """
    r = resources
    options = [
        f"--job-name=aseimd-{campaign_name}",
        f"--array=0-{n_tasks - 1}%{max(1, int(r['max_parallel']))}",
        "--requeue",
        "--open-mode=append",
        "--export=ALL",
        f"--signal=B:USR1@{int(r['signal_s'])}",
        f"--output={log_dir}/%A_%a.out",
        f"--cpus-per-task={int(r['cpus_per_task'])}",
    ]
    if int(r.get("gpus_per_job") or 0) > 0:
        options.append(f"--gres=gpu:{int(r['gpus_per_job'])}")
    for key in ("time", "partition", "account", "qos", "mem"):
        if r.get(key) is not None:
            options.append(f"--{key}={r[key]}")
    options.extend(r.get("extra") or [])
    return options


def job_script(campaign_dir: Path, tasks_file: Path, python: str | None = None,
               command_line: list[str] | None = None) -> str:
    """The array job script (bash); every path is ``shlex``-quoted."""
    python = python or sys.executable
    q = shlex.quote
    lines = ["#!/bin/bash",
             "# aseimd campaign job array (generated). Submitted as:"]
    if command_line:
        lines.append("#   " + shlex.join(command_line))
    lines += [
        "# The walltime signal (--signal=B:USR1@N) must not kill the job before Python handles it:",
        "trap '' USR1",
        f"exec {q(python)} -m aseimd.campaign.jobs {q(str(campaign_dir))} --tasks {q(str(tasks_file))} "
        "--executor slurm",
        "",
    ]
    return "\n".join(lines)


def job_environment() -> dict[str, str]:
    """The submitter's environment (``--export=ALL``) with ``PYTHONPATH`` entries made absolute,
    so the job imports the same aseimd whatever its working directory."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) if p else p
                                            for p in env["PYTHONPATH"].split(os.pathsep))
    return env


def have_slurm() -> bool:
    """``sbatch`` and ``squeue`` are on PATH."""
    return shutil.which("sbatch") is not None and shutil.which("squeue") is not None


def queue() -> dict[tuple[str, str], dict]:
    """Jobs Slurm knows now: ``{(array_job_id, task_index): {"job_id", "state", "time_left", "reason"}}``.

    Plain jobs have ``task_index`` ``""``. Empty when ``squeue`` is not installed (no Slurm here).

    Raises
    ------
    EnvironmentProblem
        ``squeue`` is installed but failed (timed out, could not reach the controller, exit code != 0): an
        empty answer would make queued and running jobs look lost or new, and resubmitting them would run two
        processes in one job directory.
    """
    if shutil.which("squeue") is None:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", SQUEUE_FORMAT], capture_output=True, text=True,
                             timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EnvironmentProblem(f"cannot read the Slurm queue: squeue failed ({exc}); job states unknown, "
                                 f"nothing was changed; try again when Slurm answers") from None
    if out.returncode != 0:
        why = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        raise EnvironmentProblem(f"cannot read the Slurm queue: squeue failed ({why}); job states unknown, "
                                 f"nothing was changed; try again when Slurm answers")
    found = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 6:
            continue
        job_id, array_id, task, state, left, reason = parts[:6]
        task = "" if task in ("N/A", "4294967294") else task
        found[(array_id, task)] = {"job_id": job_id, "state": state, "time_left": left, "reason": reason}
    return found


def in_queue(submitted: dict | None, known: dict) -> dict | None:
    """The ``squeue`` entry of a job from its ``submitted.json``, or ``None``."""
    if not submitted or submitted.get("executor") != "slurm":
        return None
    return known.get((str(submitted.get("array_job_id")), str(submitted.get("array_index"))))


def submit_array(campaign_dir: Path, campaign_name: str, resources: dict, names: list[str], *,
                 sbatch: str = "sbatch", python: str | None = None,
                 echo: Callable[[str], None] = print) -> str:
    """Write the task list and script, ``sbatch`` them; record ``submitted.json`` in each job. Returns the id.

    Raises
    ------
    SpecError
        sbatch refused the submission (its message, one line).
    """
    campaign_dir = Path(campaign_dir).resolve()
    slurm_dir = campaign_dir / "slurm"
    k = 1 + max([int(p.stem.split("-")[1]) for p in slurm_dir.glob("submit-*.json")] or [0])
    tasks = slurm_dir / f"tasks-{k}.txt"
    script = slurm_dir / f"submit-{k}.sh"
    options = sbatch_options(campaign_name, resources, len(names), slurm_dir / "logs")
    argv = [sbatch, "--parsable", *options, str(script)]
    (slurm_dir / "logs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(tasks, "\n".join(names) + "\n")
    atomic_write_text(script, job_script(campaign_dir, tasks, python, argv))
    script.chmod(0o755)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=job_environment())
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpecError(f"sbatch could not be run: {' '.join(str(exc).split())}") from None
    if done.returncode != 0:
        tasks.unlink(missing_ok=True)
        script.unlink(missing_ok=True)
        raise SpecError(f"sbatch refused the job array: {' '.join((done.stderr or done.stdout).split())}")
    array_id = done.stdout.strip().split(";")[0]
    atomic_write_json(slurm_dir / f"submit-{k}.json", {"array_job_id": array_id, "argv": argv, "jobs": names,
                                                       "tasks": str(tasks), "script": str(script)}, force=True)
    for index, name in enumerate(names):
        path = campaign_dir / "jobs" / name / "submitted.json"
        previous = _read(path)
        history = (previous or {}).get("history", []) + ([{k2: v for k2, v in previous.items() if k2 != "history"}]
                                                         if previous else [])
        atomic_write_json(path, {"executor": "slurm", "submission": k, "array_job_id": array_id,
                                 "array_index": index, "history": history}, force=True)
    echo(f"submitted job array {array_id} ({len(names)} jobs, at most {resources['max_parallel']} at once): "
         f"{script}")
    return array_id


def _read(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
