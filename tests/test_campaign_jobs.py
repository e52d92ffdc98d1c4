"""One campaign job: failure classes, the walltime plan, and a job stopped and killed mid-run.

The end-to-end test runs a tiny job three ways -- uninterrupted; stopped by
the walltime plan right after a checkpoint; then SIGKILLed in production and
finished by ``aseimd campaign run`` -- and checks that the trajectory, thermo
file and analysis JSON of the interrupted job equal the uninterrupted ones
(deterministic one-thread CPU, as in tests/test_resume.py).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from click.testing import CliRunner

from aseimd.campaign.jobs import JobDir, classify_failure, execute_job, prepare_campaign
from aseimd.campaign.spec import CampaignSpec
from aseimd.campaign.status import campaign_status, format_status
from aseimd.campaign.walltime import SegmentGuard, StopSegment, parse_slurm_duration, plan_stop
from aseimd.cli import main
from aseimd.errors import AnalysisError, BuildError, SimulationError, SpecError
from aseimd.resources import data_file

TINY_PROTOCOL = yaml.safe_load(data_file("workflows", "tiny-campaign.yaml").read_text())["protocol"]

SPEC = {
    "name": "jobs-test",
    "system": {"recipe": "1.0 M LiPF6 in EC", "n_solvent": 30, "cutoff_nm": 0.7},
    "matrix": {"replicas": 1},
    "protocol": TINY_PROTOCOL,
    "set": ["stages.production.length_steps=10000", "report.trajectory_steps=20"],  # the kill below lands mid-run
    "analyses": ["diffusion", "coordination"],
    "platform": {"name": "CPU", "threads": 1, "deterministic": True},
    "executor": "local",
    "resources": {"reserve_s": 30, "max_no_progress": 3, "max_restarts": 10},
}
TOTAL_STEPS = 300 + 10000


@pytest.mark.parametrize("exc, kind", [
    (SimulationError("blow-up in stage 'npt' at step 10: energy is NaN; the last good checkpoint ..."), "nan"),
    (SimulationError("cannot load 'checkpoint.chk' on platform CPU"), "simulation"),
    (SimulationError("cannot create an OpenMM context: CUDA_ERROR_OUT_OF_MEMORY"), "oom"),
    (MemoryError(), "oom"),
    (BuildError("unknown species 'XYZ'; allowed: ..."), "bad-input"),
    (SpecError("bad"), "bad-input"),
    (AnalysisError("selection 'resname Q' matches no atoms"), "bad-input"),
    (ZeroDivisionError("division by zero"), "crash"),
])
def test_failure_classes(exc, kind):
    got, message = classify_failure(exc)
    assert got == kind and "\n" not in message


def test_slurm_durations_and_the_segment_plan():
    assert parse_slurm_duration("4:05") == 245
    assert parse_slurm_duration("1:00:00") == 3600
    assert parse_slurm_duration("2-03:04:05") == ((2 * 24 + 3) * 60 + 4) * 60 + 5
    assert parse_slurm_duration("UNLIMITED") is None
    # 500 steps at 10 steps/s need 50 s: with 100 s left, 50 s reserve fits exactly; 51 s does not
    assert not plan_stop(1000, 5000, 500, 10.0, 100.0, 50.0)
    assert plan_stop(1000, 5000, 500, 10.0, 100.0, 51.0)
    assert not plan_stop(4900, 5000, 500, 10.0, 61.0, 50.0)  # only 100 steps remain
    assert not plan_stop(5000, 5000, 500, 10.0, 0.0, 50.0)   # finished: analyse
    assert not plan_stop(1000, 5000, 500, None, 0.0, 50.0)   # no rate yet: the signal is the backup


def _campaign(tmp_path, **changes):
    spec = json.loads(json.dumps(SPEC)) | changes
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    campaign = CampaignSpec.load(path)
    directory = tmp_path / spec["name"]
    return path, directory, prepare_campaign(campaign, directory)


def test_bad_input_fails_for_good_with_its_log(tmp_path):
    _, directory, jobs = _campaign(tmp_path)
    job = JobDir(directory / "jobs" / jobs[0].name)
    info = job.info
    info["spec"]["system"]["recipe"] = "1.0 M LiPF6 in XYZ"  # as if edited by hand after submission
    (job.path / "job.json").write_text(json.dumps(info))
    lines = []
    assert execute_job(job.path, echo=lines.append) == "failed"
    state = job.state
    assert state["state"] == "failed" and state["failure"]["class"] == "bad-input"
    assert "XYZ" in state["failure"]["message"] and state["failure"]["log"].endswith("job.log")
    assert execute_job(job.path, echo=lines.append) == "failed"  # not retried
    assert len(job.state["sessions"]) == 1
    status = campaign_status(directory)[0]
    assert status.state == "failed" and status.failure["class"] == "bad-input"
    (job.path / "job.log").write_text("line 1\nBuildError: XYZ is not a solvent\n")
    text = format_status([status])
    assert "1 jobs: 1 failed" in text and "failed (bad-input)" in text
    assert "    | BuildError: XYZ is not a solvent" in text and str(job.path / "job.log") in text


@pytest.mark.parametrize("sessions, kind", [
    ([{"steps_start": 100, "steps_end": 100, "outcome": "paused"}] * 3, "no-progress"),
    ([{"steps_start": i, "steps_end": i + 1, "outcome": "paused"} for i in range(11)], "too-many-restarts"),
])
def test_restarts_without_progress_are_not_retried_forever(tmp_path, sessions, kind):
    _, directory, jobs = _campaign(tmp_path)
    job = JobDir(directory / "jobs" / jobs[0].name)
    job.write_state({"state": "requeued", "stage": "run", "sessions": sessions})
    assert execute_job(job.path, echo=lambda text: None) == "failed"
    assert job.state["failure"]["class"] == kind
    assert not (job.path / "system").exists()  # nothing was run


def test_segment_guard_stops_the_main_thread_after_a_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    now = [0.0]  # a clock the test moves

    def progress(steps, t):
        now[0] = t
        (run_dir / "run.json").write_text(json.dumps({"steps_done": steps, "total_steps": 1000,
                                                      "status": "running"}))
        time.sleep(0.4)

    guard = SegmentGuard(run_dir, 100, deadline=35.0, reserve_s=5.0, clock=lambda: now[0], poll_s=0.05)
    with pytest.raises(StopSegment, match="checkpoint at step 300"), guard:
        progress(0, 0.0)  # the session's start: not a checkpoint it wrote, never a reason to stop
        progress(100, 10.0)  # 10 steps/s: the next 100 steps need 10 s; 25 s left, 5 s reserve: go on
        assert guard.reason is None and guard.steps_per_s() == pytest.approx(10.0)
        progress(200, 20.0)  # 15 s left - 5 s reserve = 10 s: the next segment just fits
        assert guard.reason is None
        progress(300, 31.0)  # 4 s left: stop right after this checkpoint
        time.sleep(5)
    assert guard.observed[-1][1] == 300


def _files(job_dir):
    out = {name: (job_dir / "run" / name).read_bytes() for name in ("trajectory.dcd", "thermo.csv")}
    for name in ("diffusion", "coordination"):
        doc = json.loads((job_dir / "analysis" / f"{name}.json").read_text())
        doc.pop("meta")
        out[name] = doc
    return out


def test_job_stopped_at_walltime_then_killed_mid_run_resumes_exactly(tmp_path):
    spec_path, directory, jobs = _campaign(tmp_path)
    _, ref_dir, _ = _campaign(tmp_path, name="jobs-ref")
    name = jobs[0].name
    assert execute_job(ref_dir / "jobs" / name, echo=lambda t: None) == "done"
    reference = _files(ref_dir / "jobs" / name)

    job = JobDir(directory / "jobs" / name)
    run_json = job.path / "run" / "run.json"

    def clock():  # the allocation "ends" once the run is past step 200
        info = json.loads(run_json.read_text()) if run_json.exists() else {}
        return time.time() + (10_000 if (info.get("steps_done") or 0) >= 200 else 0)

    assert execute_job(job.path, deadline=time.time() + 1000, clock=clock, echo=lambda t: None) == "paused"
    first = job.state["sessions"][0]
    assert first["outcome"] == "paused" and first["stop_reason"].startswith("walltime: the next segment")
    assert 200 <= first["steps_end"] < TOTAL_STEPS

    # a second session, SIGKILLed in production
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "aseimd.campaign.jobs", str(directory), "--job", name],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while True:
        info = json.loads(run_json.read_text())
        if info["steps_done"] >= 500 or proc.poll() is not None:
            break
        assert time.time() - t0 < 120
        time.sleep(0.05)
    running = campaign_status(directory)[0]
    assert running.state == "running" and running.stage == "run" and running.sessions == 2
    assert running.eta_s is not None and running.eta_s > 0  # predicted from this session's measured rate
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(run_json.read_text())["steps_done"] < TOTAL_STEPS, "finished before the kill"
    assert campaign_status(directory)[0].state == "lost"

    got = CliRunner().invoke(main, ["campaign", "run", str(spec_path), "--dir", str(directory)])
    assert got.exit_code == 0, got.output
    assert "1 jobs: 1 done" in got.output
    sessions = job.state["sessions"]
    assert [s["outcome"] for s in sessions] == ["paused", "lost", "done"]
    assert sessions[1]["steps_end"] == sessions[2]["steps_start"] >= 500
    assert _files(job.path) == reference


_HOLD_LOCK = """
import sys, time
from pathlib import Path
from aseimd.campaign.jobs import job_lock
with job_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_job_another_process_runs_is_left_alone(tmp_path):
    """Two processes on one job (a resubmitted Slurm task, a second campaign run): the second touches nothing."""
    from aseimd.campaign.jobs import EXIT_BUSY, job_lock

    _, directory, jobs = _campaign(tmp_path)
    job = JobDir(directory / "jobs" / jobs[0].name)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(job.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        lines = []
        assert execute_job(job.path, echo=lines.append) == "busy"
        assert f"is being run by pid {holder.pid}" in lines[-1]
        assert not (job.path / "state.json").exists()  # no session recorded, no run started
        got = subprocess.run([sys.executable, "-m", "aseimd.campaign.jobs", str(directory), "--job", job.name],
                             capture_output=True, text=True, timeout=120)
        assert got.returncode == EXIT_BUSY and "leaves it alone" in job.log.read_text()
        assert not (job.path / "state.json").exists() and not (job.path / "run").exists()
    finally:
        holder.kill()
        holder.wait()
    with job_lock(job.path):  # the lock ended with its process (however it ended): nothing stale is left
        pass
