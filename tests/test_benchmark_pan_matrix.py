"""benchmarks/pan_glass_matrix.py: size/seed parsing, seed statistics, resume without re-running or overwriting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from benchmark_module import loaded_benchmark


@pytest.fixture(scope="module")
def bench():
    with loaded_benchmark("pan_glass_matrix.py", "pan_glass_matrix_bench") as module:
        yield module


def test_parse_sizes_and_seeds(bench):
    assert bench.parse_sizes("5x30, 3X50") == [(5, 30), (3, 50)]
    assert bench.parse_seeds("1,2,10") == [1, 2, 10]
    for bad in ("5x", "5x0", "x30", "5x30x2", "5*30", "-1x3"):
        with pytest.raises(ValueError, match="bad size"):
            bench.parse_sizes(bad)
    with pytest.raises(ValueError, match="bad seed '-1'"):
        bench.parse_seeds("1,-1")
    assert bench.parse_cycle_scales("1, 2,0.5") == [1.0, 2.0, 0.5]
    for bad in ("0", "-1", "two", "nan", "inf", ""):
        with pytest.raises(ValueError, match="bad cycle scale"):
            bench.parse_cycle_scales(bad)
    # the published cycle keeps the names of the runs made before the cycle-scale axis existed
    assert bench.run_name(5, 30, 1) == bench.run_name(5, 30, 1, 1.0) == "PAN-5x30-s1"
    assert bench.run_name(5, 30, 1, 2.0) == "PAN-5x30-s1-c2" and bench.group_key(3, 50, 0.5) == "3x50-c0.5"


def test_summarise_seed_statistics_against_hand_values(bench):
    rows = [{"density": d, "stderr": e, "seed": s, "atoms": 1060}
            for d, e, s in [(1.10, 0.002, 1), (1.12, 0.004, 2), (1.14, 0.003, 3)]]
    t = bench.summarise(rows)
    assert t["n"] == 3 and t["seeds"] == [1, 2, 3]
    assert t["mean"] == pytest.approx(1.12)
    assert t["sd"] == pytest.approx(0.02)                    # sample SD (n - 1) of 1.10, 1.12, 1.14
    assert t["sem"] == pytest.approx(0.02 / math.sqrt(3))
    assert t["mean_block_se"] == pytest.approx(0.003)
    assert t["dev_pct"] == pytest.approx(100 * (1.12 - 1.18) / 1.18)
    assert t["dev_amorphous_pct"] == pytest.approx([100 * (1.12 - 1.14) / 1.14, 100 * (1.12 - 1.15) / 1.15])
    assert t["within_goal"] is False                        # 1.12 is -5.1 % from 1.18
    assert bench.summarise([dict(r, density=r["density"] + 0.01) for r in rows])["within_goal"] is True  # -4.2 %
    one = bench.summarise(rows[:1])
    assert one["sd"] is None and one["sem"] is None and one["within_goal"] is False  # 1.10 is -6.8 %
    assert bench.summarise([{"density": None, "seed": 1}])["n"] == 0


def _fake_result(path, rho):
    path.write_text(json.dumps({"results": [{"system": "PAN", "density": rho, "stderr": 0.002, "atoms": 1060}]}))


def test_finished_runs_are_summarised_not_rerun_and_bad_options_write_nothing(bench, tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    for s, rho in [(1, 1.11), (2, 1.13)]:
        _fake_result(out / f"PAN-5x30-s{s}.json", rho)
    before = {p.name: p.read_text() for p in out.iterdir()}
    # every run has its JSON: nothing is started (no MD would finish in a unit test), nothing rewritten
    assert bench.main(["--outdir", str(out), "--sizes", "5x30", "--seeds", "1,2"]) == 0
    assert {p.name: p.read_text() for p in out.iterdir() if p.name != "summary.json"} == before
    s = json.loads((out / "summary.json").read_text())["sizes"]["5x30"]
    assert s["n"] == 2 and s["mean"] == pytest.approx(1.12) and s["sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert "start" not in capsys.readouterr().out
    fresh = tmp_path / "fresh"
    for argv in (["--sizes", "5y30"], ["--seeds", "a"], ["--parallel", "0"], ["--", "--json", "x.json"],
                 ["--cycle-scales", "0"], ["--", "--cycle-scale", "2"],
                 ["--cycle-scales", "1,2", "--", "--glass", "quench"]):
        with pytest.raises(SystemExit) as e:
            bench.main(["--outdir", str(fresh)] + argv)
        assert e.value.code == 2
        assert not fresh.exists()


def test_cycle_scales_are_a_third_axis_of_the_summary(bench, tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    for name, rho in [("PAN-5x30-s1", 1.10), ("PAN-5x30-s2", 1.12), ("PAN-5x30-s1-c2", 1.13)]:
        _fake_result(out / f"{name}.json", rho)
    assert bench.main(["--outdir", str(out), "--sizes", "5x30", "--seeds", "1,2", "--cycle-scales", "1,2",
                       "--summarise-only"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    s = summary["sizes"]
    assert summary["cycle_scales"] == [1.0, 2.0] and summary["run_args"] is None  # not run here: settings unknown
    assert s["5x30"]["n"] == 2 and s["5x30"]["mean"] == pytest.approx(1.11) and s["5x30"]["cycle_scale"] == 1.0
    assert s["5x30-c2"]["n"] == 1 and s["5x30-c2"]["mean"] == pytest.approx(1.13)
    assert s["5x30-c2"]["seeds"] == [1] and s["5x30-c2"]["cycle_scale"] == 2.0
    printed = capsys.readouterr().out
    assert "5x30-c2" in printed and "start" not in printed


def test_each_missing_run_is_started_once_with_its_own_cycle_scale(bench, tmp_path, monkeypatch):
    started = []

    class FakeRun:  # stands in for one polymer_densities.py process: writes its JSON and exits 0
        def __init__(self, cmd, stdout=None, stderr=None):
            started.append(cmd)
            _fake_result(Path(cmd[cmd.index("--json") + 1]), 1.10 + 0.01 * float(cmd[cmd.index("--cycle-scale") + 1]))
            self.returncode = 0

        def poll(self):
            return 0

    monkeypatch.setattr(bench.subprocess, "Popen", FakeRun)
    monkeypatch.setattr(bench.time, "sleep", lambda s: None)
    out = tmp_path / "m"
    out.mkdir()
    _fake_result(out / "PAN-5x30-s1.json", 1.11)   # already finished: not started again
    assert bench.main(["--outdir", str(out), "--sizes", "5x30", "--seeds", "1", "--cycle-scales", "1,2"]) == 0
    assert len(started) == 1
    cmd = started[0]
    assert cmd[cmd.index("--cycle-scale") + 1] == "2" and cmd[cmd.index("--seed") + 1] == "1"
    assert Path(cmd[cmd.index("--json") + 1]).name == "PAN-5x30-s1-c2.json"
    assert cmd.count("--cycle-scale") == 1 and "--glass" in cmd   # the defaults, without a second cycle scale
    s = json.loads((out / "summary.json").read_text())["sizes"]
    assert s["5x30"]["mean"] == pytest.approx(1.11) and s["5x30-c2"]["mean"] == pytest.approx(1.12)
