"""Exact resume: a real `aseimd run` process killed with SIGKILL, then rerun, equals an uninterrupted run.

Reference platform: byte-identical trajectory.dcd and thermo.csv. CPU platform:
byte-identical with one thread and deterministic forces (multi-threaded CPU force
summation is not reproducible even between two uninterrupted runs).

Besides an external ``kill -9`` at a random moment, the runner's crash points
(``ASEIMD_TEST_CRASH``; the process SIGKILLs itself there) place the kill at the
dangerous moments: after a frame but before the checkpoint, between the
checkpoint and state.xml/run.json, during the NPT -> production volume switch.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from aseimd.simulate.dcd import HEADER_BYTES
from aseimd.simulate.toy import write_toy_system

PROTOCOL = {
    "name": "resume-test",
    "seed": 5,
    "report": {"thermo_steps": 20, "trajectory_steps": 20, "checkpoint_steps": 100},
    "stages": [
        {"type": "minimize", "max_iterations": 200},
        {"type": "nvt", "length_steps": 200},
        {"type": "npt", "length_steps": 400, "barostat_interval_steps": 10},
        {"type": "production", "length_steps": 600},
    ],
}
FILES = ("trajectory.dcd", "thermo.csv")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    system = write_toy_system(root / "system")
    protocol = root / "protocol.yaml"
    protocol.write_text(yaml.safe_dump(PROTOCOL))
    return root, system, protocol


def _command(system, protocol, run_dir, platform_args):
    return [sys.executable, "-c", "from aseimd.cli import main; main()", "run", str(system), "-o", str(run_dir),
            "--protocol", str(protocol), "--quiet", *platform_args]


def _run(cmd, crash=None):
    env = dict(os.environ)
    env.pop("ASEIMD_TEST_CRASH", None)
    if crash:
        env["ASEIMD_TEST_CRASH"] = crash
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def uninterrupted(setup):
    root, system, protocol = setup
    out = {}
    for name, args in (("Reference", ["--platform", "Reference"]),
                       ("CPU1", ["--platform", "CPU", "--threads", "1", "--deterministic"])):
        run_dir = root / f"full-{name}"
        done = _run(_command(system, protocol, run_dir, args))
        assert done.returncode == 0, done.stderr
        out[name] = {f: (run_dir / f).read_bytes() for f in FILES}
    return out


def _assert_same(run_dir, reference):
    for name in FILES:
        assert (run_dir / name).read_bytes() == reference[name], f"{name} differs from the uninterrupted run"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["trajectory"]["n_frames"] == 30


@pytest.mark.parametrize(
    "crash",
    [
        "after-frame@3",        # production frame written, checkpoint not yet
        "before-checkpoint@4",  # thermo rows flushed, checkpoint not written
        "after-checkpoint@3",   # checkpoint in place, state.xml and run.json stale
        "before-run-json@5",    # killed while run.json is (re)written
        "volume-switch",        # NPT -> production box switch, before its checkpoint
    ],
)
def test_resume_after_crash_point_is_exact(setup, uninterrupted, crash):
    root, system, protocol = setup
    run_dir = root / f"crash-{crash.replace('@', '-')}"
    cmd = _command(system, protocol, run_dir, ["--platform", "Reference"])
    killed = _run(cmd, crash)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "running"
    resumed = _run(cmd)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from step" in resumed.stdout or "resumed" in resumed.stderr
    _assert_same(run_dir, uninterrupted["Reference"])


def test_kill_minus_9_at_a_random_moment_then_resume(setup, uninterrupted):
    """The real thing: SIGKILL from outside once some production frames exist."""
    root, system, protocol = setup
    run_dir = root / "kill9"
    cmd = _command(system, protocol, run_dir, ["--platform", "Reference"])
    env = {k: v for k, v in os.environ.items() if k != "ASEIMD_TEST_CRASH"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dcd = run_dir / "trajectory.dcd"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if dcd.exists() and dcd.stat().st_size > HEADER_BYTES + 3000:  # a few frames on disk
            break
        time.sleep(0.002)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    resumed = _run(cmd)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(run_dir, uninterrupted["Reference"])
    again = _run(cmd)
    assert again.returncode == 0 and "already finished" in again.stdout


def test_resume_exact_on_cpu_single_thread_deterministic(setup, uninterrupted):
    root, system, protocol = setup
    run_dir = root / "cpu-crash"
    cmd = _command(system, protocol, run_dir, ["--platform", "CPU", "--threads", "1", "--deterministic"])
    assert _run(cmd, "after-frame@5").returncode == -signal.SIGKILL
    # resumed without naming platform or properties: run.json's recorded ones are reused
    plain = _command(system, protocol, run_dir, [])
    assert _run(plain).returncode == 0
    _assert_same(run_dir, uninterrupted["CPU1"])
    info = json.loads((run_dir / "run.json").read_text())
    assert info["platform"]["properties"] == {"Threads": "1", "DeterministicForces": "true"}
