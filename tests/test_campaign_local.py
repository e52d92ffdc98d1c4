"""Local executor: N jobs at once, one GPU set per job; and the docstring examples of the campaign modules."""

import doctest
import sys

import pytest

import aseimd.campaign.executors.local as local
import aseimd.campaign.executors.slurm as slurm
import aseimd.campaign.walltime as walltime


@pytest.mark.parametrize("module", [local, slurm, walltime])
def test_docstring_examples(module):
    failed, tried = doctest.testmod(module)
    assert tried > 0 and failed == 0


def test_gpu_slots():
    assert local.gpu_slots(["0", "1", "2"], 1, 2) == ["0", "1"]
    assert local.gpu_slots(["0", "1", "2"], 2, 4) == ["0,1"]
    assert local.gpu_slots(["3", "5"], 0, 3) == [None, None, None]  # CPU jobs: leave the variable alone


def test_run_local_gives_each_running_job_its_own_gpu(tmp_path, monkeypatch):
    """Four stand-in jobs on two GPUs: at most two at once, never two on one GPU."""
    names = [f"j{i}" for i in range(4)]
    for name in names:
        (tmp_path / "jobs" / name).mkdir(parents=True)
    script = (
        "import os, sys, time, pathlib\n"
        "d = pathlib.Path(sys.argv[1])\n"
        "gpu = os.environ['CUDA_VISIBLE_DEVICES']\n"
        "lock = d / f'gpu{gpu}.busy'\n"
        "assert not lock.exists(), 'two jobs on one GPU'\n"
        "lock.touch(); time.sleep(0.6); lock.unlink()\n"
        "(d / 'jobs' / sys.argv[2] / 'gpu.txt').write_text(gpu)\n"
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr(local, "job_command", lambda d, name: [sys.executable, "-c", script, str(d), name])
    lines = []
    codes = local.run_local(tmp_path, names, max_parallel=8, gpus_per_job=1, echo=lines.append, poll_s=0.05)
    assert codes == {name: 0 for name in names}
    gpus = [(tmp_path / "jobs" / n / "gpu.txt").read_text() for n in names]
    assert sorted(gpus) == ["0", "0", "1", "1"]
    assert sum("started" in line for line in lines) == 4
