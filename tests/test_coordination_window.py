"""Coordination restricted to a z window: hand-counted truth, exact pair counts, g(r) normalisation, one pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import ions, molecules, write_trajectory

from aseimd.analysis.coordination import CoordinationAnalysis, coordination
from aseimd.analysis.engine import run_analyses
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

BOX = 4.0
DIRS = np.array([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)], float)


def _layered(tmp_path, n_frames=4):
    """Four Li at z = 0.5, 1.5 (written as 1.5 - 4 = -2.5: wrapping), 2.5, 3.5 with 2, 4, 6, 3 O at 0.2 nm.

    Li 2 (z = 2.5) has its 6 O as two EC (O) and four PF6 (F, single-atom anions); the others bind EC only.
    """
    li = np.array([[0.5, 0.5, 0.5], [2.5, 2.5, -2.5], [0.5, 2.5, 2.5], [2.5, 0.5, 3.5]])
    k = [2, 4, 6, 3]
    pos, residues = list(li), ions(4, "LI", "LI", "Li")
    ec, f = [], []
    for n_li, (c, kk) in enumerate(zip(li, k)):
        for d in range(kk):
            (f if (n_li == 2 and d >= 2) else ec).append(c + 0.2 * DIRS[d])
    pos += ec + f
    residues += molecules(len(ec), "EC", [("O1", "O")]) + ions(len(f), "PF6", "F", "F")
    xyz = np.repeat(np.array(pos)[None], n_frames, axis=0)
    return write_trajectory(tmp_path, xyz, [BOX] * 3, residues)


SHELLS = {"EC": "resname EC", "PF6": "resname PF6"}


def test_window_cn_equals_the_hand_count_and_differs_from_the_whole_cell(tmp_path):
    top, traj = _layered(tmp_path)
    cut = {"EC": 0.3, "PF6": 0.3}
    whole = coordination(Trajectory(top, traj), {"Li": "resname LI"}, SHELLS, cutoffs_nm=cut, anion="PF6")
    win = coordination(Trajectory(top, traj), {"Li": "resname LI"}, SHELLS, cutoffs_nm=cut, anion="PF6",
                       z_range_nm=(1.0, 3.0), window_label="middle")
    # whole cell: EC 2 + 4 + 2 + 3 = 11 over 4 Li; in [1, 3): Li at 1.5 (wrapped from -2.5) and 2.5: EC 4 + 2
    assert whole.pairs["EC"].cn == pytest.approx(11 / 4)
    assert win.pairs["EC"].cn == pytest.approx(6 / 2) and win.pairs["EC"].cn_stderr == 0.0
    assert win.pairs["PF6"].cn == pytest.approx(4 / 2) and whole.pairs["PF6"].cn == pytest.approx(4 / 4)
    w = win.window
    assert w["z_range_nm"] == [1.0, 3.0] and w["layer"] == "middle"
    assert (w["n_center_frames"], w["n_frames"], w["mean_centers_in_window"]) == (2 * 4, 4, 2.0)
    # compositions and speciation over the in-window Li only: one Li(EC)4(PF6)0 SSIP, one Li(EC)2(PF6)4 AGG
    dist = {d["composition"]: d["fraction"] for d in win.compositions["distribution"]}
    assert dist == {"Li(EC)4(PF6)0": 0.5, "Li(EC)2(PF6)4": 0.5}
    assert (win.speciation["SSIP"], win.speciation["CIP"], win.speciation["AGG"]) == (0.5, 0.0, 0.5)
    assert whole.speciation["SSIP"] == 0.75
    assert "window" in win.to_dict() and "window" not in whole.to_dict()
    # a window holding no Li: NaN numbers and a warning, not a crash
    empty = coordination(Trajectory(top, traj), {"Li": "resname LI"}, SHELLS, cutoffs_nm=cut,
                         z_range_nm=(1.7, 2.3))
    assert np.isnan(empty.pairs["EC"].cn) and empty.window["n_center_frames"] == 0
    assert any("no Li atom in the z window" in x for x in empty.warnings)


def test_anion_shared_with_a_cation_outside_the_window_still_makes_an_aggregate(tmp_path):
    # Li A at z 1.0 (inside [0.5, 1.5)) and Li B at z 1.8 (outside) share one F at z 1.4
    xyz = np.array([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.8], [1.0, 1.0, 1.4]]] * 3)
    top, traj = write_trajectory(tmp_path, xyz, [3.0] * 3, ions(2, "LI", "LI", "Li") + ions(1, "PF6", "F", "F"))
    res = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"PF6": "resname PF6"},
                       cutoffs_nm={"PF6": 0.45}, anion="PF6", z_range_nm=(0.5, 1.5))
    assert (res.speciation["CIP"], res.speciation["AGG"]) == (0.0, 1.0)
    assert res.window["n_center_frames"] == 3


def test_centre_crossing_the_window_boundary_gives_the_exact_pair_count(tmp_path):
    """Li 0 rests at z = 2.0 with 2 O; Li 1 walks from z = 0.2 to 3.8 (wrapping once) carrying 5 O."""
    n_frames = 10
    z1 = np.linspace(0.2, 4.6, n_frames)  # 4.6 -> 0.6 after wrapping
    xyz = np.empty((n_frames, 2 + 2 + 5, 3))
    for f in range(n_frames):
        a, b = np.array([1.0, 1.0, 2.0]), np.array([3.0, 3.0, z1[f]])
        xyz[f, :2] = a, b
        xyz[f, 2:4] = a + 0.2 * DIRS[:2]
        xyz[f, 4:9] = b + 0.2 * DIRS[:5]
    residues = ions(2, "LI", "LI", "Li") + molecules(7, "EC", [("O1", "O")])
    top, traj = write_trajectory(tmp_path, xyz, [BOX] * 3, residues)
    lo, hi = 1.5, 3.0
    res = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"EC": "resname EC"},
                       cutoffs_nm={"EC": 0.3}, z_range_nm=(lo, hi), n_blocks=2)
    zw = z1 % BOX
    inside = (zw >= lo) & (zw < hi)
    n_in = int(inside.sum())
    assert 0 < n_in < n_frames
    assert res.window["n_center_frames"] == n_frames + n_in
    assert res.pairs["EC"].cn == pytest.approx((2 * n_frames + 5 * n_in) / (n_frames + n_in))
    # block errors: the first and second halves of the run see different in-window mixes
    half = n_frames // 2
    blocks = [(2 * half + 5 * inside[:half].sum()) / (half + inside[:half].sum()),
              (2 * half + 5 * inside[half:].sum()) / (half + inside[half:].sum())]
    assert res.pairs["EC"].cn_stderr == pytest.approx(np.std(blocks, ddof=1) / np.sqrt(2))


def _slow_window_rdf(xyz, box, centers, shell, lo, hi, edges):
    """Brute force: every in-window centre against every shell atom (self pairs dropped), per frame."""
    n_bins = len(edges) - 1
    hv, pairs, n_c = np.zeros(n_bins), 0, 0
    counts = np.zeros(n_bins)
    for f in range(len(xyz)):
        z = xyz[f, centers, 2] % box
        cin = centers[(z >= lo) & (z < hi)]
        d = xyz[f, shell][None, :, :] - xyz[f, cin][:, None, :]
        d -= box * np.round(d / box)
        r = np.sqrt((d**2).sum(-1))
        same = cin[:, None] == shell[None, :]
        h, _ = np.histogram(r[~same], bins=edges)
        hv += h * box**3
        counts += h
        pairs += len(cin) * len(shell) - int(same.sum())
        n_c += len(cin)
    shell_v = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return hv / (pairs * shell_v), np.concatenate([[0.0], np.cumsum(counts / n_c)])


def test_window_rdf_matches_a_brute_force_count_and_is_one_for_an_ideal_gas(tmp_path):
    rng = np.random.default_rng(7)
    n_frames, box = 40, 3.0
    n_a, n_b = 40, 60  # centres: the A atoms; shell: every atom (A and B), so self pairs must be excluded
    xyz = rng.uniform(0, box, size=(n_frames, n_a + n_b, 3))
    xyz[:, :5, 2] -= box  # some centres given outside [0, L): wrapped before the window test
    residues = ions(n_a, "NA", "NA", "Na") + ions(n_b, "CL", "CL", "Cl")
    top, traj = write_trajectory(tmp_path, xyz, [box] * 3, residues)
    lo, hi = 0.8, 2.1
    res = coordination(Trajectory(top, traj), {"A": "resname NA"}, {"all": "all"}, cutoffs_nm={"all": 0.4},
                       r_max_nm=1.2, bin_nm=0.05, z_range_nm=(lo, hi))
    p = res.pairs["all"]
    xyz32 = xyz.astype(np.float32).astype(float)  # what the DCD holds
    g, n_edges = _slow_window_rdf(xyz32, box, np.arange(n_a), np.arange(n_a + n_b), lo, hi, p.rdf.edges_nm)
    np.testing.assert_allclose(p.rdf.g, g, rtol=1e-9)
    np.testing.assert_allclose(p.rdf.n_edges, n_edges, rtol=1e-9, atol=1e-12)
    # uniform points: g = 1 over r (the window's centres see the same density as the cell's)
    sel = (p.rdf.r_nm > 0.4) & (p.rdf.r_nm < 1.2)
    assert np.mean(p.rdf.g[sel]) == pytest.approx(1.0, abs=0.03)
    # a whole-cell normalisation (all centres' pairs) would be too small by the in-window fraction
    frac = res.window["mean_centers_in_window"] / n_a
    assert 0.25 < frac < 0.6


def test_bad_windows_and_residence_are_refused(tmp_path):
    top, traj = _layered(tmp_path)
    t = Trajectory(top, traj)
    for zr, msg in [((2.0, 2.0), "z_lo < z_hi"), ((3.0, 1.0), "z_lo < z_hi"), ((-0.5, 1.0), ">= 0"),
                    ((1.0, 4.5), "outside the box")]:
        with pytest.raises(AnalysisError, match=msg):
            coordination(t, {"Li": "resname LI"}, SHELLS, cutoffs_nm={"EC": 0.3, "PF6": 0.3}, z_range_nm=zr)
    with pytest.raises(AnalysisError, match="residence times in a z window"):
        coordination(t, {"Li": "resname LI"}, SHELLS, cutoffs_nm={"EC": 0.3, "PF6": 0.3}, z_range_nm=(1, 3),
                     residence=True)


def _doc(result):
    return json.loads(json.dumps(result.to_dict(), default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o)))


def test_window_analyses_in_one_pass_equal_each_alone(tmp_path):
    top, traj = _layered(tmp_path, n_frames=6)
    opts = {"cutoffs_nm": {"EC": 0.3}, "anion": "PF6"}  # PF6 cut-off from g(r): a second pass for that analysis
    windows = [None, (0.0, 2.0), (2.0, 4.0)]
    together = run_analyses(Trajectory(top, traj), [
        CoordinationAnalysis({"Li": "resname LI"}, SHELLS, z_range_nm=w, **opts) for w in windows])
    for w, r in zip(windows, together):
        alone = coordination(Trajectory(top, traj), {"Li": "resname LI"}, SHELLS, z_range_nm=w, **opts)
        a, b = _doc(r), _doc(alone)
        assert a == b
        np.testing.assert_array_equal(r.pairs["EC"].rdf.g, alone.pairs["EC"].rdf.g)
    # the two halves partition the cell: their (centre, frame) pairs add up to all of them
    assert together[1].window["n_center_frames"] + together[2].window["n_center_frames"] == 4 * 6


# ---------------------------------------------------------------- CLI: --z-range-nm and --layer

BUILD_LAYERS = {"box_nm": [BOX] * 3, "layers": [
    {"name": "slab", "z_nm": [0.0, 0.1]}, {"name": "polymer_bottom", "z_nm": [0.3, 1.9]},
    {"name": "electrolyte", "z_nm": [2.1, 2.9]}, {"name": "polymer_top", "z_nm": [3.1, 3.7]}]}
# mobile-layer edges at the gap midpoints: 0.2 | 2.0 | 3.0 | 3.85 (the last: midway to the slab's image)


def _invoke(*args):
    from click.testing import CliRunner

    from aseimd.cli import main

    return CliRunner().invoke(main, ["analyze", "coordination", *map(str, args)])


CLI_GROUPS = ("--center", "Li=resname LI", "--shell", "EC=resname EC", "--shell", "PF6=resname PF6",
              "--cutoff-nm", "EC=0.3", "--cutoff-nm", "PF6=0.3")


def test_cli_layer_and_z_range(tmp_path):
    top, traj = _layered(tmp_path)
    (tmp_path / "build.json").write_text(json.dumps(BUILD_LAYERS))
    r = _invoke("--top", top, "--traj", traj, *CLI_GROUPS, "--layer", "electrolyte", "--json", tmp_path / "el.json")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "el.json").read_text())
    assert doc["window"]["layer"] == "electrolyte"
    assert doc["window"]["z_range_nm"] == pytest.approx([2.0, 3.0])
    assert (doc["EC"]["cn"], doc["PF6"]["cn"], doc["window"]["n_center_frames"]) == (2.0, 4.0, 4)
    r = _invoke("--top", top, "--traj", traj, *CLI_GROUPS, "--z-range-nm", 0.2, 2.0, "--json", tmp_path / "pb.json")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "pb.json").read_text())
    assert doc["EC"]["cn"] == 3.0 and doc["window"]["n_center_frames"] == 8 and "layer" not in doc["window"]


@pytest.mark.parametrize("args, message", [
    (("--layer", "electrolite"), "unknown layer 'electrolite'; layers of"),
    (("--z-range-nm", 2.0, 1.0), "need LO < HI"),
    (("--z-range-nm", 1.0, 9.0), "outside the box"),
    (("--z-range-nm", 1.0, 2.0, "--layer", "electrolyte"), "not both"),
    (("--z-range-nm", 1.0, 2.0, "--residence"), "--residence with --z-range-nm/--layer"),
])
def test_cli_bad_window_exits_2_and_writes_nothing(tmp_path, args, message):
    top, traj = _layered(tmp_path)
    (tmp_path / "build.json").write_text(json.dumps(BUILD_LAYERS))
    out = tmp_path / "cn.json"
    r = _invoke("--top", top, "--traj", traj, *CLI_GROUPS, *args, "--json", out)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], r.output
    if "unknown layer" in message:
        assert "polymer_bottom, electrolyte, polymer_top" in lines[0]
    assert not any(tmp_path.glob("cn*"))


def test_cli_layer_without_build_json(tmp_path):
    top, traj = _layered(tmp_path)
    r = _invoke("--top", top, "--traj", traj, *CLI_GROUPS, "--layer", "electrolyte", "--json", tmp_path / "cn.json")
    assert r.exit_code == 2 and "build.json" in r.output and not any(tmp_path.glob("cn*"))


def _two_shells(tmp_path, rng, n_frames=6):
    """Li at z = 0.6 and 1.9 (3 nm box), each with 6 O at 0.2 nm and 8 O at 0.4 nm, randomly rotated."""
    from test_coordination import CUBE, OCTAHEDRON, random_rotation

    centers = np.array([[1.5, 1.5, 0.6], [0.7, 0.8, 1.9]])
    xyz = np.empty((n_frames, 2 + 28, 3))
    for f in range(n_frames):
        xyz[f, :2] = centers
        for k in range(2):
            rot = random_rotation(rng)
            xyz[f, 2 + 6 * k: 8 + 6 * k] = centers[k] + 0.2 * OCTAHEDRON @ rot
            xyz[f, 14 + 8 * k: 22 + 8 * k] = centers[k] + 0.4 * CUBE @ rot
    residues = ions(2, "LI", "LI", "Li") + molecules(28, "EC", [("O1", "O")])
    return write_trajectory(tmp_path, xyz, [3.0] * 3, residues)


def test_layers_take_the_whole_cell_cutoffs_and_the_pipeline_writes_one_file_per_layer(tmp_path, rng):
    from aseimd import pipeline

    top, traj = _two_shells(tmp_path, rng)
    # slab 0-0.1 | low 0.3-1.1 | high 1.3-2.7: mobile-layer edges 0.2 | 1.2 | 2.85 (midway to the slab image)
    (tmp_path / "build.json").write_text(json.dumps({"box_nm": [3.0] * 3, "layers": [
        {"name": "slab", "z_nm": [0.0, 0.1]}, {"name": "low", "z_nm": [0.3, 1.1]},
        {"name": "high", "z_nm": [1.3, 2.7]}]}))
    found = pipeline.layer_windows_nm(tmp_path, tmp_path)
    assert list(found) == ["low", "high"]
    assert found["low"] == pytest.approx((0.2, 1.2)) and found["high"] == pytest.approx((1.2, 2.85))
    t = Trajectory(top, traj)
    shells = {"O": "element O"}
    whole = CoordinationAnalysis({"Li": "resname LI"}, shells)
    layers = [CoordinationAnalysis({"Li": "resname LI"}, shells, z_range_nm=z, window_label=n, cutoffs_like=whole)
              for n, z in found.items()]
    res = run_analyses(t, [whole, *layers])
    rc = res[0].pairs["O"].cutoff_nm
    assert res[0].pairs["O"].cutoff_source == "auto" and 0.2 < rc < 0.4
    for r in res[1:]:
        assert (r.pairs["O"].cutoff_nm, r.pairs["O"].cutoff_source, r.pairs["O"].cn) == (rc, "auto (linked)", 6.0)
        assert r.window["n_center_frames"] == 6
    # the pipeline planner: one analysis per mobile layer of build.json, written beside coordination.json
    lines = []
    analyses, write = pipeline._coordination(
        t, tmp_path, tmp_path, tmp_path / "coordination.json",
        {"center": {"Li": "resname LI"}, "shells": shells, "layers": "build"}, 298.15,
        lambda text, kind: lines.append(text))
    write(run_analyses(t, analyses), lambda text, kind: lines.append(text))
    for name in ("low", "high"):
        doc = json.loads((tmp_path / f"coordination_{name}.json").read_text())
        assert doc["window"]["layer"] == name and doc["O"]["cn"] == 6.0 and doc["O"]["cutoff_nm"] == rc
        assert (tmp_path / f"coordination_{name}_rdf.csv").is_file()
    table = "\n".join(lines)
    assert "whole cell" in table and "12 pairs" in table and "6 pairs" in table
