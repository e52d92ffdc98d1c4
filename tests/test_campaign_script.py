"""The Slurm job script and sbatch options: throttle, --gres, and values from a spec that stay inert.

No Slurm needed: a fake ``sbatch`` records its arguments, and the generated
script is run by bash with a stand-in for Python that records its own.
"""

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from aseimd.campaign.executors.slurm import job_script, sbatch_options
from aseimd.campaign.spec import RESOURCE_DEFAULTS
from aseimd.cli import main
from aseimd.resources import data_file

TINY_PROTOCOL = yaml.safe_load(data_file("workflows", "tiny-campaign.yaml").read_text())["protocol"]

INJECTIONS = ["$(touch {pwned})", "; rm -rf ~", "`touch {pwned}`", "x' ; touch {pwned} ; '", '"; touch {pwned}; "']


def _resources(**changes):
    return RESOURCE_DEFAULTS | changes


def test_array_throttle_gres_and_options():
    opts = sbatch_options("c", _resources(max_parallel=3, gpus_per_job=2, time="02:00:00", partition="gpu",
                                          account="chem", mem="8G", extra=["--constraint=a100"]), 10, Path("/l"))
    assert "--array=0-9%3" in opts and "--gres=gpu:2" in opts and "--requeue" in opts
    assert "--signal=B:USR1@120" in opts and "--time=02:00:00" in opts and "--partition=gpu" in opts
    assert "--account=chem" in opts and "--mem=8G" in opts and opts[-1] == "--constraint=a100"
    assert not [o for o in sbatch_options("c", _resources(), 1, Path("/l")) if o.startswith("--gres")]
    assert "--array=0-0%1" in sbatch_options("c", _resources(), 1, Path("/l"))


@pytest.fixture
def recorder(tmp_path):
    """A stand-in executable that writes its argv (one per line) to a file."""
    out = tmp_path / "argv.txt"
    path = tmp_path / "record"
    path.write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" > "{out}"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path, out


@pytest.mark.parametrize("template", INJECTIONS)
def test_job_script_keeps_hostile_paths_inert(tmp_path, recorder, template):
    pwned = tmp_path / "pwned"
    campaign_dir = tmp_path / template.format(pwned=pwned).replace("/", "_")
    tasks = campaign_dir / "tasks 1.txt"
    program, argv_file = recorder
    script = job_script(campaign_dir, tasks, python=str(program),
                        command_line=["sbatch", f"--partition={template.format(pwned=pwned)}"])
    path = tmp_path / "job.sh"
    path.write_text(script)
    done = subprocess.run(["bash", str(path)], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not pwned.exists()
    assert argv_file.read_text().splitlines() == ["-m", "aseimd.campaign.jobs", str(campaign_dir), "--tasks",
                                                  str(tasks), "--executor", "slurm"]
    assert script.splitlines()[0] == "#!/bin/bash" and "trap '' USR1" in script


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.json"
    (bin_dir / "sbatch").write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\nprint('777')\n")
    (bin_dir / "squeue").write_text("#!/bin/bash\nexit 0\n")
    for p in bin_dir.iterdir():
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_spec_values_reach_sbatch_as_single_arguments(tmp_path, fake_slurm):
    pwned = tmp_path / "pwned"
    hostile = [t.format(pwned=pwned) for t in INJECTIONS]
    spec = {
        "name": "q", "system": {"recipe": "1.0 M LiPF6 in EC", "n_solvent": 30, "cutoff_nm": 0.7},
        "matrix": {"replicas": 2}, "protocol": TINY_PROTOCOL, "executor": "slurm",
        "resources": {"partition": hostile[0], "account": hostile[1], "qos": hostile[2], "mem": hostile[3],
                      "extra": ["--comment=" + hostile[4]], "gpus_per_job": 1, "max_parallel": 2},
    }
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(spec))
    got = CliRunner().invoke(main, ["campaign", "submit", str(path), "--dir", str(tmp_path / "camp")])
    assert got.exit_code == 0, got.output
    argv = json.loads(fake_slurm.read_text())
    assert f"--partition={hostile[0]}" in argv and f"--account={hostile[1]}" in argv
    assert f"--qos={hostile[2]}" in argv and f"--mem={hostile[3]}" in argv and f"--comment={hostile[4]}" in argv
    assert "--gres=gpu:1" in argv and "--array=0-1%2" in argv and argv[0] == "--parsable"
    script = Path(argv[-1])
    assert script.read_text().startswith("#!/bin/bash")
    assert not pwned.exists()
    submitted = json.loads((tmp_path / "camp" / "jobs" / "r0" / "submitted.json").read_text())
    assert submitted["array_job_id"] == "777" and submitted["array_index"] == 0
    assert (tmp_path / "camp" / "slurm" / "tasks-1.txt").read_text().split() == ["r0", "r1"]
