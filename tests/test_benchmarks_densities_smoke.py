"""benchmarks/densities.py: the statistics against closed forms, and the plumbing on a tiny box.

The plumbing test builds a 24-solvent LiPF6 EC:DMC box, runs a ~1 ps protocol on
the CPU platform, checks the density against the run's own thermo.csv and the
Li+ coordination table, then reruns the script on the same work directory (the
run must be reused, not redone, and give the same numbers).
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from benchmark_module import loaded_benchmark


@pytest.fixture(scope="module")
def bench():
    with loaded_benchmark("densities.py", "densities_bench") as module:
        yield module


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    """x_i = phi x_(i-1) + e_i, unit normal e, started from the stationary distribution."""
    from scipy.signal import lfilter

    e = np.random.default_rng(seed).normal(size=n)
    e[0] /= math.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], e)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_autocorrelation_time_of_ar1_matches_closed_form(bench, phi):
    # AR(1): rho(t) = phi^t, tau_int = 1/2 + phi/(1 - phi) = (1 + phi) / (2 (1 - phi)).
    expected = (1 + phi) / (2 * (1 - phi))
    taus = [bench.integrated_autocorrelation_time(_ar1(phi, 20000, s)) for s in range(4)]
    assert np.mean(taus) == pytest.approx(expected, rel=0.1, abs=0.05)


def test_block_standard_error_matches_ar1_closed_form(bench):
    # Var(mean) of AR(1) with unit innovations ~ 2 tau_int var(x) / n, var(x) = 1/(1 - phi^2).
    phi, n = 0.8, 20000
    expected = math.sqrt(2 * (1 + phi) / (2 * (1 - phi)) / (1 - phi**2) / n)
    errs, means = [], []
    for s in range(100):
        r = bench.block_average(_ar1(phi, n, 100 + s), dt_ps=0.5)
        errs.append(r["stderr"])
        means.append(r["mean"])
        assert r["block_ps"] >= bench.BLOCK_TAU_FACTOR * r["tau_ps"] - 0.5
        assert r["warnings"] == []
    assert np.mean(errs) == pytest.approx(expected, rel=0.15)
    assert np.std(means) == pytest.approx(expected, rel=0.25)   # the error describes the scatter


def test_block_average_warns_when_series_is_too_short(bench):
    r = bench.block_average(_ar1(0.99, 200, 0), dt_ps=1.0)
    assert r["n_blocks"] == bench.MIN_BLOCKS and r["warnings"]
    assert bench.block_average(np.ones(3), 1.0)["stderr"] is None


def test_npt_density_uses_the_second_half_of_the_npt_stage(bench, tmp_path):
    header = ["Step", "Time (ps)", "Volume (nm^3)", "Density (g/cm^3)", "Stage"]
    rows = [[i, i * 0.1, 10.0, 9.0, "nvt"] for i in range(1, 5)]
    rows += [[i, i * 0.1, 20.0 + i, 1.0 + i, "npt"] for i in range(5, 15)]     # 10 NPT rows
    rows += [[i, i * 0.1, 30.0, 7.0, "production"] for i in range(15, 18)]
    with open(tmp_path / "thermo.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    r = bench.npt_density(tmp_path)
    assert r["n_samples"] == 5
    assert r["mean"] == pytest.approx(np.mean([1.0 + i for i in range(10, 15)]))
    assert r["mean_volume_nm3"] == pytest.approx(np.mean([20.0 + i for i in range(10, 15)]))
    assert r["window_ps"] == pytest.approx([1.0, 1.4])


def _write_npt(path, t, rho):
    with open(path / "thermo.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Step", "Time (ps)", "Volume (nm^3)", "Density (g/cm^3)", "Stage"])
        w.writerows([[i + 1, ti, 1.0 / ri, ri, "npt"] for i, (ti, ri) in enumerate(zip(t, rho))])


def test_drift_across_the_window_is_measured_and_flagged(bench, tmp_path):
    t = np.arange(1, 2001) * 0.1
    noise = 0.003 * _ar1(0.5, len(t), 7)
    _write_npt(tmp_path, t, 1.2 + noise)
    flat = bench.npt_density(tmp_path)
    assert abs(flat["drift_over_window_g_per_cm3"]) < 2 * flat["drift_sigma_g_per_cm3"]
    assert not any("drift" in w for w in flat["warnings"])
    _write_npt(tmp_path, t, 1.2 + noise + 0.001 * t)        # 0.1 g/cm^3 per 100 ps
    ramp = bench.npt_density(tmp_path)
    assert ramp["drift_over_window_g_per_cm3"] == pytest.approx(0.001 * (t[-1] - t[1000]), rel=0.05)
    assert any("drift" in w for w in ramp["warnings"])


def test_unknown_system_is_refused(bench, tmp_path, capsys):
    assert bench.main(["--workdir", str(tmp_path), "--systems", "XYZ"]) == 2
    assert "XYZ" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_quick_pass_end_to_end_and_reuse(bench, tmp_path):
    work, out = tmp_path / "work", tmp_path / "d.json"
    argv = ["--quick", "--systems", "LiPF6_EC_DMC", "--workdir", str(work), "--json", str(out),
            "--markdown", str(tmp_path / "d.md"), "--no-progress", "--threads", "1"]
    assert bench.main(argv) == 0
    first = json.loads(out.read_text())["results"][0]
    run_dir = work / "LiPF6_EC_DMC" / "run"
    with open(run_dir / "thermo.csv", newline="") as fh:
        rho = [float(r["Density (g/cm^3)"]) for r in csv.DictReader(fh) if r["Stage"] == "npt"]
    assert first["density_g_per_cm3"] == pytest.approx(np.mean(rho[len(rho) // 2:]))
    assert 0.3 < first["density_g_per_cm3"] < 2.5
    cn = first["li_coordination"]
    assert set(cn["per_shell"]) == {"EC", "DMC", "PF6"}
    solvent_cn = [cn["per_shell"][k]["cn_molecules"] for k in ("EC", "DMC")]
    assert cn["carbonyl_cn_total"] == pytest.approx(sum(solvent_cn), nan_ok=True)
    assert first["molarity_md_mol_per_L"] > 0
    assert "Li–O(carbonyl) total" in (tmp_path / "d.md").read_text()

    mtime = (run_dir / "trajectory.dcd").stat().st_mtime_ns
    assert bench.main(argv) == 0                      # second pass: reuse build and finished run
    again = json.loads(out.read_text())["results"][0]
    assert (run_dir / "trajectory.dcd").stat().st_mtime_ns == mtime
    assert again["density_g_per_cm3"] == first["density_g_per_cm3"]
    assert again["li_coordination"]["carbonyl_cn_total"] == cn["carbonyl_cn_total"]

    # a work directory built with other settings is refused, not silently reused
    assert bench.main(argv + ["--seed", "5"]) == 1
    refused = json.loads(out.read_text())["results"][0]
    assert "--seed 1, not 5" in refused["error"]
    assert (run_dir / "trajectory.dcd").stat().st_mtime_ns == mtime
