"""Smoke test of benchmarks/analysis_speed.py: tiny data, every task in-process, results must agree.

The benchmark itself runs each task in a child process (for a clean peak-memory
figure); here the same task functions run in this process on a tiny trajectory,
so the test takes seconds and checks that the aseimd numbers match the peers'.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from benchmark_module import loaded_benchmark



@pytest.fixture(scope="module")
def bench():
    with loaded_benchmark("analysis_speed.py", "analysis_speed") as module:
        yield module


def test_generated_system_has_the_stated_structure(bench, tmp_path):
    import mdtraj

    s = bench.Sizes(n_li=6, n_ec=30, n_frames=20, box_nm=2.5)
    pdb, dcd, _ = bench.generate(s, tmp_path)
    t = mdtraj.load(str(dcd), top=str(pdb))
    assert t.n_atoms == s.n_atoms == 6 * 8 + 30 * 10
    assert len(t.topology.select(bench.ION_SELECTION_MDTRAJ)) == 12
    # each Li+ has its four bound carbonyl O at 0.21 nm (+- jitter) in every frame
    li = t.topology.select(bench.LI_SELECTION)
    o1 = t.topology.select(bench.O1_SELECTION)[:24]
    d = np.linalg.norm(t.xyz[:, o1].reshape(20, 6, 4, 3) - t.xyz[:, li][:, :, None], axis=-1)
    assert np.all(np.abs(d - bench.LI_O_NM) < 0.06)
    # unwrapped: molecules stay whole and Li moves continuously (steps << box)
    assert np.abs(np.diff(t.xyz[:, li], axis=0)).max() < 0.2


def test_quick_tasks_agree_with_peers(bench, tmp_path):
    pytest.importorskip("MDAnalysis")
    pytest.importorskip("tidynamics")  # EinsteinMSD(fft=True)
    pytest.importorskip("solvation_analysis")
    s = bench.Sizes(n_li=10, n_ec=60, n_frames=200, box_nm=2.6, sa_frames=60)  # >= 160 frames for the GLS fit
    bench.generate(s, tmp_path)
    pdb, dcd = tmp_path / "bench.pdb", tmp_path / "bench.dcd"
    t0 = time.perf_counter()
    results = {}
    for task, func in bench.TASKS.items():
        info = func(pdb, dcd, s, tmp_path / f"{task}.npy")
        results[task] = {"wall_s": 1.0, "cpu_s": 1.0, **info}
    if time.perf_counter() - t0 > 60:
        pytest.skip("tasks too slow on this machine for a smoke test")
    comparison = bench.compare(tmp_path, results, s)
    assert comparison["msd"]["agree"] and comparison["msd_curve_only"]["agree"], comparison
    assert comparison["cn"]["agree"] and comparison["cn"]["frames_compared"] == 60, comparison
    assert 4.0 <= comparison["cn"]["aseimd"] < 6.0  # four bound EC plus passers-by


def test_transport_suite_file_has_the_stated_truth(bench, tmp_path):
    """The transport benchmark's file: wrapped pairs + static solvent, and t+ within errors of its closed form."""
    from aseimd.analysis import TransferenceAnalysis, run_analyses

    p = bench.PairSizes(n_pairs=12, n_solvent=30, n_frames=800, box_nm=3.0)
    pdb, dcd, _ = bench.generate_pairs(p, tmp_path)
    (tr,) = run_analyses((pdb, dcd), [TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"),
                                                           temperature_K=bench.T_K)])
    truth = bench.pair_truth_com(p)
    doc = tr.to_json()
    assert abs(doc["t_plus_onsager"] - truth["t_plus_onsager"]) < 4 * doc["t_plus_onsager_stderr"]
    assert abs(doc["sigma_eh_S_per_m"] - truth["sigma_eh_S_per_m"]) < 4 * doc["sigma_eh_stderr_S_per_m"]
    assert abs(doc["D_plus_m2_per_s"] - truth["D_plus_m2_per_s"]) < 4 * doc["D_plus_stderr_m2_per_s"]


def test_transport_suite_runs_every_row_and_prints_the_ratios(bench, tmp_path, capsys):
    """The --suite transport table on a tiny file: every row timed, ratios to MDAnalysis and to the raw read."""
    p = bench.PairSizes(n_pairs=6, n_solvent=10, n_frames=200, box_nm=2.5)
    res = bench.transport_suite(p, tmp_path, timeout_s=300, repeat=1)
    errors = {k: v["error"] for k, v in res.items() if isinstance(v, dict) and "error" in v}
    assert not errors, errors
    for key in ("diffusion", "diffusion_no_plot", "transference", "transference_ols_blocks", "one_pass_both",
                "diffusion_library", "mdanalysis_einstein_msd_two_groups", "process_read_blas_default",
                "diffusion_no_plot_blas_default", "transference_no_plot_blas_default"):
        assert res[key]["cpu_s"] > 0 and res[key]["wall_s"] > 0, key
    assert not (tmp_path / "diffusion_gls_noplot_msd.png").exists() and (tmp_path / "diffusion_gls_msd.png").exists()
    assert set(res["estimates"]) == {"gls", "ols-blocks"}
    bench.print_transport(res)
    out = capsys.readouterr().out
    assert "MDA/this CPU" in out and "this/read CPU" in out and "load average" in out
    assert "OpenBLAS's default" in out and "OPENBLAS_NUM_THREADS=1" in out
    assert "t+ standard error: ols-blocks / gls" in out
