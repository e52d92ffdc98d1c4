"""benchmarks/pan_glass_matrix.py: size/seed parsing, seed statistics, resume without re-running or overwriting."""

from __future__ import annotations

import json
import math

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
    for argv in (["--sizes", "5y30"], ["--seeds", "a"], ["--parallel", "0"], ["--", "--json", "x.json"]):
        with pytest.raises(SystemExit) as e:
            bench.main(["--outdir", str(fresh)] + argv)
        assert e.value.code == 2
        assert not fresh.exists()
