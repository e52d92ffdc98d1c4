"""The analysis contract: one read for several analyses, in-memory sources, checked trajectories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import ions, pair_walks, wrap, write_trajectory

from aseimd.analysis import DiffusionAnalysis, TransferenceAnalysis, open_trajectory, run_analyses
from aseimd.analysis.diffusion import analyze_diffusion
from aseimd.analysis.trajectory import Trajectory
from aseimd.analysis.transference import analyze_transference
from aseimd.errors import AnalysisError

BOX = (3.0, 3.0, 3.0)


@pytest.fixture
def pair_files(tmp_path, rng):
    cat, an = pair_walks(rng, 12, 400, 0.01, 0.005, 0.015)
    start = rng.uniform(0, 3, (12, 3))
    pos = np.concatenate([cat + start, an + start + 0.2], axis=1)
    # heavy static "solvent" so that the centre-of-mass frame does not pin t+ to the mass ratio
    solvent = np.broadcast_to(rng.uniform(0, 3, (1, 40, 3)), (400, 40, 3))
    xyz = wrap(np.concatenate([pos, solvent], axis=1), BOX)
    spec = ions(12, "LI", "LI", "Li") + ions(12, "PF6", "P", "P") + ions(40, "XE", "XE", "Xe")
    return write_trajectory(tmp_path, xyz, BOX, spec, name="pairs")


def test_one_pass_gives_the_same_numbers_as_separate_runs(pair_files, monkeypatch):
    traj = Trajectory(*pair_files)
    reads = []
    real = traj.iter_chunks
    monkeypatch.setattr(traj, "iter_chunks", lambda *a, **k: reads.append(1) or real(*a, **k))
    diff, tr = run_analyses(traj, [
        DiffusionAnalysis({"Li": "resname LI", "PF6": "resname PF6"}, com=True),
        TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=300.0),
    ])
    assert len(reads) == 1  # both analyses from one read of the file
    monkeypatch.undo()
    alone_d = analyze_diffusion(traj, {"Li": "resname LI", "PF6": "resname PF6"}, com=True)
    alone_t = analyze_transference(traj, ("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=300.0)
    assert diff.to_json()["Li"]["D_m2_per_s"] == alone_d.to_json()["Li"]["D_m2_per_s"]
    assert tr.to_json()["t_plus_onsager"] == alone_t.to_json()["t_plus_onsager"]
    # the results own their tables
    headers, columns = diff.tables()["msd"]
    assert headers[0] == "Time (ps)" and len(columns) == len(headers)
    assert "Li MSD stderr (nm^2)" in headers
    headers, columns = tr.tables()["msd"]
    assert "charge MSD (e^2 nm^2)" in headers and all(len(c) == len(columns[0]) for c in columns)


def test_in_memory_mdtraj_and_mdanalysis_match_the_files(pair_files):
    import mdtraj

    top, path = pair_files
    sel = {"Li": "resname LI"}
    ref = analyze_diffusion(Trajectory(top, path), sel).to_json()["Li"]["D_m2_per_s"]
    t = mdtraj.load(str(path), top=str(top))
    t.time = np.arange(t.n_frames) * 1.0
    mem = analyze_diffusion(open_trajectory(t), sel).to_json()["Li"]["D_m2_per_s"]
    assert mem == pytest.approx(ref, rel=1e-6)
    mda = pytest.importorskip("MDAnalysis")
    u = mda.Universe(str(top), str(path), dt=1.0)
    uni = analyze_diffusion(open_trajectory(u, dt_ps=1.0), sel).to_json()["Li"]["D_m2_per_s"]
    assert uni == pytest.approx(ref, rel=1e-5)
    with pytest.raises(AnalysisError, match="cannot analyse a dict"):
        open_trajectory({})


def _cli(*args):
    from aseimd.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_truncated_dcd_is_analysed_on_its_complete_frames_with_a_warning(pair_files, tmp_path):
    top, path = pair_files
    full = path.read_bytes()
    frame_bytes = 56 + 3 * (8 + 4 * 64)
    torn = tmp_path / "torn"
    torn.mkdir()
    cut = torn / "pairs.dcd"
    cut.write_bytes(full[: len(full) - frame_bytes - 100])  # the last frame torn, one more frame short
    (torn / "run.json").write_text((path.parent / "run.json").read_text())
    traj = Trajectory(top, cut)
    assert traj.n_frames == 398
    assert traj.warnings == [f"trajectory {str(cut)!r} is truncated inside frame 399 of 400; "
                             "analysing its 398 complete frames"]
    r = _cli("analyze", "diffusion", "--top", top, "--traj", cut, "--group", "Li=resname LI",
             "--json", torn / "d.json")
    assert r.exit_code == 0, r.output
    doc = json.loads((torn / "d.json").read_text())
    assert doc["meta"]["frames"]["n_frames"] == 398
    assert any("truncated inside frame 399 of 400" in w for w in doc["warnings"])
    assert "truncated inside frame 399 of 400" in r.output


@pytest.mark.parametrize("content, message", [
    (b"", "is empty (0 bytes)"),
    (b"\x00" * 300, "is not a DCD file"),
    ("header", "holds no complete frame (truncated inside frame 1 of 400)"),
])
def test_unreadable_dcd_is_said_plainly(pair_files, tmp_path, content, message):
    top, path = pair_files
    if content == "header":
        content = path.read_bytes()[:400]
    bad = tmp_path / "bad.dcd"
    bad.write_bytes(content)
    r = _cli("analyze", "diffusion", "--top", top, "--traj", bad, "--group", "Li=resname LI",
             "--json", tmp_path / "x.json")
    assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert "Traceback" not in r.output and not (tmp_path / "x.json").exists()


def test_atom_count_mismatch_names_both_counts(tmp_path, rng):
    top, _ = write_trajectory(tmp_path, rng.uniform(0, 3, (5, 4, 3)), BOX, ions(4, "LI"), name="four")
    _, traj = write_trajectory(tmp_path, rng.uniform(0, 3, (5, 6, 3)), BOX, ions(6, "LI"), name="six")
    with pytest.raises(AnalysisError, match="6 atoms per frame, the topology has 4"):
        Trajectory(top, traj)


def test_dcd_reader_prints_nothing_on_stdout(pair_files, capfd):
    top, path = pair_files
    analyze_diffusion(Trajectory(top, path), {"Li": "resname LI"})
    t = Trajectory(top, path.with_suffix(".dcd"))
    next(t.iter_chunks(np.arange(3)))
    out, _ = capfd.readouterr()
    assert "dcdplugin" not in out


def test_neutral_residue_as_cation_says_its_charge_is_zero(tmp_path, rng):
    files = write_trajectory(tmp_path, rng.uniform(0, 3, (200, 4, 3)), BOX,
                             ions(2, "EC", "C1", "C") + ions(2, "PF6", "P", "P"))
    with pytest.raises(AnalysisError) as err:
        analyze_transference(Trajectory(*files), ("EC", "resname EC"), ("PF6", "resname PF6"), temperature_K=300)
    msg = str(err.value)
    assert "residue EC is neutral (formal charge 0" in msg and "pass --cation-charge Q" in msg
    assert "np.float64" not in msg and "\n" not in msg


def test_messages_do_not_leak_numpy_reprs(tmp_path, rng):
    cat, an = pair_walks(rng, 3, 300, 0.01, 0.005, 0.015)
    from aseimd.analysis.transference import onsager_transport

    with pytest.raises(AnalysisError) as err:
        onsager_transport(cat, an, 1.0, 27.0, np.float64(300.0), np.float64(0.0), np.float64(-1.0))
    assert "np.float64" not in str(err.value) and "got 0 and -1" in str(err.value)
    with pytest.raises(AnalysisError) as err:
        onsager_transport(cat, an, 1.0, 27.0, np.float64(-3.0), 1.0, -1.0)
    assert str(err.value) == "--temperature-K must be > 0, got -3"


def test_structure_analyses_share_the_life_cycle(pair_files):
    from aseimd.analysis import CoordinationAnalysis, ProfileAnalysis
    from aseimd.analysis.coordination import coordination
    from aseimd.analysis.profile import density_profiles

    traj = Trajectory(*pair_files)
    diff, cn, prof = run_analyses(traj, [
        DiffusionAnalysis({"Li": "resname LI"}),
        CoordinationAnalysis({"Li": "resname LI"}, {"PF6": "resname PF6"}, cutoffs_nm={"PF6": 0.5}),
        ProfileAnalysis({"Li": "resname LI"}, n_bins=10),
    ])
    ref = coordination(traj, {"Li": "resname LI"}, {"PF6": "resname PF6"}, cutoffs_nm={"PF6": 0.5})
    assert cn.to_json()["PF6"]["cn"] == ref.to_json()["PF6"]["cn"]
    assert "rdf" in cn.tables()
    headers, columns = prof.tables()["density"]
    assert headers[0] == "z (nm)" and len(columns[0]) == 10
    np.testing.assert_allclose(columns[1], density_profiles(traj, {"Li": "resname LI"}, n_bins=10)
                               .groups["Li"].number_density_per_nm3)


@pytest.mark.parametrize("selection", ["resnam LI", "resid > ", "(" * 3 + "x" * 3000])
def test_invalid_selection_is_one_short_line(pair_files, selection):
    traj = Trajectory(*pair_files)
    with pytest.raises(AnalysisError) as err:
        traj.select(selection, "Li")
    msg = str(err.value)
    assert "\n" not in msg and "^^^" not in msg and "mdtraj selection syntax" in msg
    assert len(msg) < 260 + len(repr(selection))


def test_minimum_image_is_exact_in_a_skewed_box(rng):
    from aseimd.analysis.pbc import minimum_image

    box = np.array([[3.0, 0.0, 0.0], [1.4, 2.6, 0.0], [-1.2, 1.1, 2.4]])
    dr = rng.uniform(-6, 6, size=(2000, 3))
    got = minimum_image(dr, box)
    shifts = np.array([[i, j, k] for i in range(-3, 4) for j in range(-3, 4) for k in range(-3, 4)]) @ box
    frac = dr @ np.linalg.inv(box)
    start = (frac - np.floor(frac)) @ box  # a lattice translate of dr inside the cell, then all images around it
    brute = start[:, None, :] + shifts[None]
    # got is a lattice translate of dr
    n = (got - dr) @ np.linalg.inv(box)
    np.testing.assert_allclose(n, np.round(n), atol=1e-9)
    best = brute[np.arange(len(dr)), np.argmin((brute**2).sum(-1), axis=1)]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.linalg.norm(best, axis=1), atol=1e-12)
    # per-frame boxes give the same, and float32 orthorhombic input stays float32
    per_frame = minimum_image(dr.reshape(20, 100, 3), np.broadcast_to(box, (20, 3, 3)))
    np.testing.assert_allclose(per_frame.reshape(-1, 3), got, atol=1e-12)
    assert minimum_image(dr.astype(np.float32), np.diag([3.0, 3.0, 3.0])).dtype == np.float32


def test_replicas_pool_and_correlated_particles_are_flagged(rng):
    from aseimd.analysis.diffusion import self_diffusion

    runs = [np.cumsum(rng.normal(scale=0.1, size=(2000, 20, 3)), axis=0) for _ in range(2)]
    one = self_diffusion(runs[0], 1.0)
    both = self_diffusion(runs, 1.0)
    assert both.block_D_m2_per_s.size == 2 * one.block_D_m2_per_s.size
    assert both.D_stderr_analytic_m2_per_s == pytest.approx(one.D_stderr_analytic_m2_per_s / np.sqrt(2), rel=0.05)
    assert both.D_m2_per_s == pytest.approx(0.005 * 1e-6, rel=5 * both.D_stderr_m2_per_s / both.D_m2_per_s)
    # every particle rides on one common walk: the independent-particle (analytic) error is far too small
    common = np.cumsum(rng.normal(scale=0.1, size=(2000, 1, 3)), axis=0)
    herd = self_diffusion(common + 0.01 * runs[0], 1.0)
    assert any("block standard error of D is" in w for w in herd.warnings)
    assert herd.D_stderr_m2_per_s > 2 * herd.D_stderr_analytic_m2_per_s


def test_a_given_window_over_curved_msd_is_said_to_be_curved(rng):
    from aseimd.analysis.diffusion import self_diffusion

    cat, _ = pair_walks(rng, 20, 3000, 0.01, 0.005, 0.015, ou_rms_nm=0.3, ou_tau_frames=4.0)
    res = self_diffusion(cat, 1.0, fit_window_ps=(1.0, 4.0))
    assert not res.diffusive and res.onset["linearity_p_value"] < 1e-3
    assert any("not a straight line over the given window 1-4 ps" in w for w in res.warnings)
    auto = self_diffusion(cat, 1.0)
    assert auto.window.start > 4  # the onset test moves the window off the memory
