"""A real Slurm: submit the tiny campaign, interrupt two running jobs, and get the uninterrupted answer.

Each task gets one of the two fake GPUs (``--gres=gpu:1``). One array task receives the walltime signal (``scancel --batch --signal=USR1``)
and requeues itself; the other is requeued from outside (``scontrol requeue``,
which SIGTERMs it). Both resume from their checkpoints, and the trajectories,
thermo files and analysis JSON equal those of an uninterrupted local run
(deterministic one-thread CPU). ``status`` and ``report`` work on the result,
and a second ``submit`` submits nothing.

Needs ``sbatch`` on PATH (skipped otherwise) and running daemons
(``.ci/slurm.sh start``; ``.ci/run`` does this and sets ASEIMD_REQUIRE_SLURM=1
so that a Slurm that does not answer fails instead of skipping).
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aseimd.cli import main
from aseimd.resources import data_file

pytestmark = pytest.mark.skipif(shutil.which("sbatch") is None, reason="Slurm (sbatch) is not on PATH")

PRODUCTION_STEPS = 1600
COMPARED = ("run/trajectory.dcd", "run/thermo.csv")
ANALYSES = ("diffusion", "transference", "coordination")


def _require_running_slurm():
    ok = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0
    if not ok:
        if os.environ.get("ASEIMD_REQUIRE_SLURM") == "1":
            pytest.fail("sbatch is installed but Slurm does not answer (sinfo failed)")
        pytest.skip("sbatch is installed but Slurm is not running (.ci/slurm.sh start)")


def _squeue() -> dict[str, dict]:
    out = subprocess.run(["squeue", "-h", "-r", "-o", "%A|%F|%K|%T|%r"], capture_output=True, text=True,
                         timeout=30).stdout
    found = {}
    for line in out.splitlines():
        job_id, array_id, task, state, reason = line.split("|")
        found[task] = {"job_id": job_id, "array_id": array_id, "state": state, "reason": reason}
    return found


def _progress(job_dir: Path) -> tuple[int, str | None]:
    try:
        info = json.loads((job_dir / "run" / "run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0, None
    return info.get("steps_done") or 0, info.get("status")


def _state(job_dir: Path) -> dict:
    try:
        return json.loads((job_dir / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _without_meta(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("meta", None)
    return doc


@pytest.fixture
def campaign_file(tmp_path):
    spec = yaml.safe_load(data_file("workflows", "tiny-campaign.yaml").read_text())
    spec["set"] = [f"stages.production.length_steps={PRODUCTION_STEPS}"]
    spec["resources"]["time"] = "00:15:00"
    spec["resources"]["gpus_per_job"] = 1  # CI's Slurm has two fake GPUs: --gres=gpu:1 sets CUDA_VISIBLE_DEVICES
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_submit_interrupt_requeue_resume_exactly(tmp_path, campaign_file):
    _require_running_slurm()
    cli = CliRunner()
    camp = tmp_path / "slurm-camp"
    got = cli.invoke(main, ["campaign", "submit", str(campaign_file), "--dir", str(camp)])
    assert got.exit_code == 0, got.output
    assert "submitted job array" in got.output
    names = (camp / "slurm" / "tasks-1.txt").read_text().split()
    assert len(names) == 2
    jobs = [camp / "jobs" / n for n in names]

    # interrupt each job once it is past its first checkpoint and still running MD
    actions = {"0": ["scancel", "--batch", "--signal=USR1"], "1": ["scontrol", "requeue"]}
    done_actions: dict[str, str] = {}
    t0 = time.time()
    while len(done_actions) < 2:
        assert time.time() - t0 < 300, f"jobs did not reach their first checkpoint: {_squeue()}"
        queue = _squeue()
        for index, command in actions.items():
            steps, status = _progress(jobs[int(index)])
            entry = queue.get(index)
            if index in done_actions or entry is None or entry["state"] != "RUNNING":
                continue
            if status == "running" and 400 <= steps < 300 + PRODUCTION_STEPS - 200:  # in production
                ref = f"{entry['array_id']}_{index}"  # the array's own id would address every task
                subprocess.run([*command, ref], check=True, timeout=30)
                done_actions[index] = ref
        time.sleep(0.1)

    # wait until both are done. No `scontrol update StartTime=now` nudge: a requeued job started before
    # its old credential expires (AuthInfo=cred_expire) is killed as "Job credential revoked".
    t0 = time.time()
    while not all(_state(j).get("state") in ("done", "failed") for j in jobs):
        assert time.time() - t0 < 400, f"jobs did not finish: {_squeue()} {[_state(j) for j in jobs]}"
        time.sleep(1.0)

    signalled, requeued = (_state(j) for j in jobs)
    for state in (signalled, requeued):
        assert state["state"] == "done", state
        assert len(state["sessions"]) >= 2, state["sessions"]
        resumed = state["sessions"][1]
        assert resumed["restart_count"] >= 1 and resumed["steps_start"] >= 400, resumed
        assert state["sessions"][-1]["outcome"] == "done"
    gpus = [state["sessions"][0]["gpu"] for state in (signalled, requeued)]
    assert sorted(gpus) == ["0", "1"], gpus  # the two ran at once, each on its own (fake) GPU
    first = signalled["sessions"][0]
    assert first["outcome"] == "paused" and "SIGUSR1" in first["stop_reason"], first
    assert requeued["sessions"][0]["outcome"] in ("stopped", "lost"), requeued["sessions"][0]

    # the same campaign, uninterrupted, here
    ref = tmp_path / "reference"
    got = cli.invoke(main, ["campaign", "run", str(campaign_file), "--dir", str(ref)])
    assert got.exit_code == 0, got.output
    for name in names:
        for rel in COMPARED:
            a, b = (camp / "jobs" / name / rel).read_bytes(), (ref / "jobs" / name / rel).read_bytes()
            assert a == b, f"{name}/{rel} differs from the uninterrupted run"
        for analysis in ANALYSES:
            rel = Path("analysis") / f"{analysis}.json"
            assert _without_meta(camp / "jobs" / name / rel) == _without_meta(ref / "jobs" / name / rel)

    got = cli.invoke(main, ["campaign", "status", str(campaign_file), "--dir", str(camp)])
    assert got.exit_code == 0, got.output
    assert "2 jobs: 2 done" in got.output
    got = cli.invoke(main, ["campaign", "report", str(campaign_file), "--dir", str(camp)])
    assert got.exit_code == 0, got.output
    rows = (camp / "report" / "comparison.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith(("LiPF6-ECDMC", "LiPF6-EC"))
    for name in ("comparison.md", "comparison.html", "bars.png", "msd.png", "rdf.png"):
        assert (camp / "report" / name).stat().st_size > 0

    got = cli.invoke(main, ["campaign", "submit", str(campaign_file), "--dir", str(camp)])
    assert got.exit_code == 0, got.output
    assert "nothing to submit" in got.output
    assert not (camp / "slurm" / "submit-2.json").exists()
