"""Independent replicas pooled by ``aseimd analyze diffusion|transference`` (repeated ``--traj``).

Closed-form truth: Brownian cation-anion pairs with correlated steps
(:func:`synthetic.pair_walks`, :func:`synthetic.pair_truth`); a Xe "solvent"
particle per pair cancels their momentum, so the system centre of mass is
fixed and the lab-frame truth is the centre-of-mass-frame truth.
"""

import json

import mdtraj
import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import ions, pair_truth, pair_walks, write_trajectory

from aseimd.cli import main

BOX = (4.0, 4.0, 4.0)
N, T = 40, 3000
DS, DA, DB = 0.002, 0.001, 0.003  # nm²/ps: shared, cation-own, anion-own
TEMPERATURE_K = 300.0
SPEC = ions(N, "LI", "LI", "Li") + ions(N, "PF6", "P", "P") + ions(N, "SLV", "XE", "Xe")
ION_ARGS = ["--cation", "Li=resname LI", "--anion", "PF6=resname PF6", "--temperature-K", TEMPERATURE_K]


def _replica(path, rng, *, D_cation=DA, n_frames=T, dt_ps=1.0, spec=SPEC, fmt="dcd"):
    path.mkdir(parents=True, exist_ok=True)
    cat, an = pair_walks(rng, N, n_frames, DS, D_cation, DB, dt_ps=dt_ps)
    m = {s: mdtraj.element.get_by_symbol(s).mass for s in ("Li", "P", "Xe")}
    sol = -(m["Li"] * cat + m["P"] * an) / m["Xe"] + rng.uniform(0, 4, (N, 3))
    cat, an = cat + rng.uniform(0, 4, (N, 3)), an + rng.uniform(0, 4, (N, 3))
    return write_trajectory(path, np.concatenate([cat, an, sol], axis=1), BOX, spec, fmt=fmt, dt_ps=dt_ps)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    rng = np.random.default_rng(20261202)
    root = tmp_path_factory.mktemp("replicas")
    return [_replica(root / f"r{k}", rng) for k in range(4)]


def _run(command, *args):
    return CliRunner().invoke(main, ["analyze", command, *map(str, args)])


def _traj_args(reps):
    return [a for top, traj in reps for a in ("--top", top, "--traj", traj)]


def _json(path):
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def pooled_transference(replicas, tmp_path_factory):
    out = tmp_path_factory.mktemp("pooled") / "t.json"
    r = _run("transference", *_traj_args(replicas), *ION_ARGS, "--json", out)
    assert r.exit_code == 0, r.output
    return _json(out), r.output


def test_pooled_transference_gives_the_truth_within_its_error(pooled_transference):
    doc, output = pooled_transference
    truth = pair_truth(N, DS, DA, DB, float(np.prod(BOX)), TEMPERATURE_K)
    for key, true in (("t_plus_onsager", truth["t_plus_onsager"]), ("t_plus_ne", truth["t_plus_ne"]),
                      ("sigma_eh_S_per_m", truth["sigma_eh"]), ("sigma_ne_S_per_m", truth["sigma_ne"]),
                      ("D_plus_m2_per_s", truth["D_plus"]), ("D_minus_m2_per_s", truth["D_minus"])):
        se = doc[key.replace("_S_per_m", "_stderr_S_per_m").replace("_m2_per_s", "_stderr_m2_per_s")
                 if key.endswith(("_S_per_m", "_m2_per_s")) else key + "_stderr"]
        assert abs(doc[key] - true) < 3.5 * se, (key, doc[key], true, se)
    rep = doc["replicas"]
    assert rep["n_replicas"] == 4 and rep["n_frames"] == [T] * 4 and len(rep["trajectories"]) == 4
    assert doc["meta"]["n_replicas"] == 4 and len(doc["meta"]["replicas"]) == 4
    assert doc["meta"]["traj"] == rep["trajectories"][0]
    est = rep["estimates"]["t_plus_onsager"]
    assert est["pooled"] == doc["t_plus_onsager"] and est["pooled_stderr"] == doc["t_plus_onsager_stderr"]
    assert len(est["per_replica"]) == len(est["per_replica_stderr"]) == 4 and est["consistent"]
    assert "from 4 replicas" in output


def test_pooled_error_is_one_over_sqrt_n_of_one_replica(pooled_transference):
    doc, _ = pooled_transference
    for key in ("t_plus_onsager", "sigma_eh_S_per_m", "D_plus_m2_per_s", "D_minus_m2_per_s"):
        est = doc["replicas"]["estimates"][key]
        one = np.mean(est["per_replica_stderr"])  # one replica over the same window
        # jackknife over the blocks of all 4 replicas against one replica's blocks: 1/sqrt(4) (each error
        # scatters by ~7 % over ~100 blocks per replica; seen 0.499-0.502)
        assert 0.45 < est["pooled_stderr"] / one < 0.55, (key, est["pooled_stderr"] / one)
        # and the replica-to-replica spread agrees with the pooled error (chi with 3 dof: a wide margin)
        assert 0.1 < est["between_replicas_stderr"] / est["pooled_stderr"] < 2.5, key


def test_pooled_equals_the_library_pooling_exactly(replicas, pooled_transference):
    """The CLI's pooled numbers are the library's ``onsager_transport`` of the list of replica positions."""
    from aseimd.analysis.groups import load_positions, make_group
    from aseimd.analysis.trajectory import Trajectory
    from aseimd.analysis.transference import onsager_transport, volume_nm3

    doc, _ = pooled_transference
    cats, ans, boxes = [], [], []
    for top, traj in replicas:
        t = Trajectory(top, traj)
        gp, gm = make_group(t, "Li", "resname LI", com=True), make_group(t, "PF6", "resname PF6", com=True)
        pos = load_positions(t, [gp, gm], drift="system")
        cats.append(pos.of("Li"))
        ans.append(pos.of("PF6"))
        boxes.append(pos.box_nm)
    lib = onsager_transport(cats, ans, t.dt_ps, volume_nm3(np.concatenate(boxes)), TEMPERATURE_K, 1.0, -1.0)
    assert doc["t_plus_onsager"] == lib.values["t_plus_onsager"]
    assert doc["t_plus_onsager_stderr"] == lib.stderr["t_plus_onsager"]
    assert doc["sigma_eh_S_per_m"] == lib.values["sigma_eh"] and doc["L_ij"]["L_pm"] == lib.values["L_pm"]
    assert doc["n_blocks"] == lib.n_blocks == sum(np.clip(T // (8 * lib.window.stop), 5, 100) for _ in replicas)
    # each per-replica estimate is that replica alone over the pooled window
    single = onsager_transport(cats[1], ans[1], t.dt_ps, volume_nm3(boxes[1]), TEMPERATURE_K, 1.0, -1.0,
                               fit_window_ps=lib.window.ps(t.dt_ps))
    est = doc["replicas"]["estimates"]["t_plus_onsager"]
    assert est["per_replica"][1] == single.values["t_plus_onsager"]
    assert est["per_replica_stderr"][1] == single.stderr["t_plus_onsager"]
    # the random-walk (analytic) error scales with the slopes, which agree between replicas to ~1 %:
    # pooling 4 equal replicas gives 1/sqrt(4) of one replica's
    for key in ("D_plus", "L_pp", "t_plus_onsager", "sigma_eh"):
        assert lib.stderr_analytic[key] / single.stderr_analytic[key] == pytest.approx(0.5, rel=0.1), key


def test_per_replica_estimate_equals_a_single_run_with_the_pooled_window(replicas, tmp_path):
    out = tmp_path / "d.json"
    r = _run("diffusion", *_traj_args(replicas[:2]), "--group", "Li=resname LI", "--group", "PF6=resname PF6",
             "--json", out)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    assert "2 replicas pooled" in r.output
    truth = pair_truth(N, DS, DA, DB, 64.0, TEMPERATURE_K)
    for label, true in (("Li", truth["D_plus"]), ("PF6", truth["D_minus"])):
        assert abs(doc[label]["D_m2_per_s"] - true) < 3.5 * doc[label]["D_stderr_m2_per_s"]
        w = doc[label]["fit_window_ps"]
        one = tmp_path / f"{label}1.json"
        top, traj = replicas[1]
        # the same groups (the system centre of mass is summed in the same float32 order), the pooled window
        r1 = _run("diffusion", "--top", top, "--traj", traj, "--group", "Li=resname LI", "--group",
                  "PF6=resname PF6", "--fit-window-ps", *w, "--json", one)
        assert r1.exit_code == 0, r1.output
        est = doc["replicas"]["estimates"][label]["D_m2_per_s"]
        assert est["per_replica"][1] == _json(one)[label]["D_m2_per_s"]
        assert est["per_replica_stderr"][1] == _json(one)[label]["D_stderr_m2_per_s"]
        assert "replicas" not in _json(one) and "n_replicas" not in _json(one)["meta"]  # one file: as before
    header = (tmp_path / "d_msd.csv").read_text().splitlines()[0]
    assert header.startswith("Time (ps),Li MSD (nm^2),PF6 MSD (nm^2)")


def test_replicas_that_disagree_are_flagged(replicas, tmp_path):
    rng = np.random.default_rng(7)
    fast = _replica(tmp_path / "fast", rng, D_cation=3 * DA)  # another state: Li+ much faster
    out = tmp_path / "d.json"
    r = _run("diffusion", *_traj_args([replicas[0], replicas[1], fast]), "--group", "Li=resname LI",
             "--json", out)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    est = doc["replicas"]["estimates"]["Li"]["D_m2_per_s"]
    assert not est["consistent"] and est["consistency_p_value"] < 1e-6
    assert est["between_replicas_stderr"] > 3 * est["pooled_stderr"]
    assert any(w.startswith("replicas disagree on Li/D_m2_per_s beyond their errors") for w in doc["warnings"])
    assert "replicas disagree on Li/D_m2_per_s" in r.output


def _mismatched_atoms(tmp_path, rng):
    spec = ions(N, "LI", "LI", "Li") + ions(N, "PF6", "P", "P") + ions(N, "SLV", "XE", "Xe")
    spec[5] = ("NA", [("NA", "Na")], 0)
    return _replica(tmp_path / "names", rng, spec=spec)


@pytest.mark.parametrize("case, message", [
    ("atoms", "replica 2 ('"),
    ("names", "atom 5 is NA of residue NA, in replica 1 it is LI of residue LI"),
    ("dt", "has frames every 2 ps, replica 1 every 1 ps"),
    ("twice", "replica 2 is the same trajectory as replica 1"),
    ("tops", "give one --top for all 2 --traj replicas or one --top per --traj"),
    ("ols", "replicas are pooled by --method gls only"),
    ("layers", "z-layer diffusion is not pooled over replicas"),
])
def test_replicas_bad_input_exit_2_nothing_written(replicas, tmp_path, rng, case, message):
    base = replicas[0]
    extra: list = []
    command = "diffusion"
    if case == "atoms":
        top, traj = _replica(tmp_path / "small", rng)  # then drop the solvent: 80 atoms
        t = mdtraj.load(str(traj), top=str(top)).atom_slice(np.arange(2 * N))
        t[0].save_pdb(str(tmp_path / "small.pdb"))
        t.save_dcd(str(tmp_path / "small.dcd"))
        other = (tmp_path / "small.pdb", tmp_path / "small.dcd")
        message = f"replica 2 ('{tmp_path / 'small.pdb'}') has {2 * N} atoms, replica 1"
    elif case == "names":
        other = _mismatched_atoms(tmp_path, rng)
    elif case == "dt":
        other = _replica(tmp_path / "dt2", rng, dt_ps=2.0)
    elif case == "twice":
        other = base
    else:
        other = replicas[1]
    args = _traj_args([base, other])
    if case == "tops":
        args = ["--top", base[0], "--top", other[0], "--top", other[0], "--traj", base[1], "--traj", other[1]]
    if case == "ols":
        command, extra = "transference", ["--method", "ols-blocks"]
    if case == "layers":
        extra = ["--z-layers", "2"]
    out = tmp_path / "out" / "x.json"
    out.parent.mkdir()
    group = ION_ARGS if command == "transference" else ["--group", "Li=resname LI"]
    r = _run(command, *args, *group, *extra, "--json", out)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output
    assert list(out.parent.iterdir()) == []


def test_replicas_is_a_reserved_group_label(replicas, tmp_path):
    r = _run("diffusion", "--top", replicas[0][0], "--traj", replicas[0][1], "--group", "replicas=resname LI",
             "--json", tmp_path / "d.json")
    assert r.exit_code == 2 and "group label 'replicas' is reserved" in r.output
    assert not (tmp_path / "d.json").exists()


def test_unequal_replicas_pool_by_origins(replicas, tmp_path):
    """A shorter replica counts with its own (fewer) origins and blocks: the library pooling, exactly."""
    from aseimd.analysis import DiffusionAnalysis
    from aseimd.analysis.diffusion import self_diffusion
    from aseimd.analysis.groups import load_positions, make_group
    from aseimd.analysis.replicas import pool_replicas
    from aseimd.analysis.trajectory import Trajectory

    short = _replica(tmp_path / "short", np.random.default_rng(3), n_frames=T // 2)
    rep = pool_replicas([replicas[0], short], DiffusionAnalysis({"Li": "resname LI"}))
    assert rep.n_frames == [T, T // 2] and rep.to_json()["replicas"]["n_frames"] == [T, T // 2]
    runs = []
    for source in (replicas[0], short):
        t = Trajectory(*source)
        runs.append(load_positions(t, [make_group(t, "Li", "resname LI", com=False)]).of("Li"))
    lib = self_diffusion(runs, 1.0, label="Li")
    pooled = rep.pooled.results["Li"]
    assert pooled.D_m2_per_s == lib.D_m2_per_s and pooled.D_stderr_m2_per_s == lib.D_stderr_m2_per_s
    stop = lib.window.stop
    assert pooled.block_D_m2_per_s.size == sum(int(np.clip(n // (8 * stop), 5, 100)) for n in (T, T // 2))
    est = rep.estimates[("Li", "D_m2_per_s")]
    assert est.per_replica_stderr[1] > est.per_replica_stderr[0]  # the short one is the less precise


def test_a_torn_xtc_replica_is_pooled_on_its_complete_frames_and_said_so(replicas, tmp_path):
    """Replicas may be in different formats; each one's trajectory warnings reach the pooled JSON."""
    top, xtc = _replica(tmp_path / "x", np.random.default_rng(9), fmt="xtc")
    with mdtraj.open(str(xtc)) as fh:
        last = int(fh.offsets[-1])
    torn = tmp_path / "x" / "torn.xtc"
    torn.write_bytes(xtc.read_bytes()[:last + 50])
    out = tmp_path / "d.json"
    r = _run("diffusion", *_traj_args([replicas[0], (top, torn)]), "--group", "Li=resname LI", "--json", out)
    assert r.exit_code == 0, r.output
    doc = _json(out)
    message = f"trajectory {str(torn)!r} is truncated inside frame {T}; analysing its {T - 1} complete frames"
    assert doc["meta"]["trajectory_warnings"] == [message] and message in doc["warnings"] and message in r.output
    assert doc["replicas"]["n_frames"] == [T, T - 1]
    assert doc["meta"]["replicas"][1]["trajectory_warnings"] == [message]


@pytest.mark.slow
def test_replica_consistency_test_is_calibrated_under_the_null():
    """Replicas of one state: Cochran's Q of the per-replica estimates (own jackknife errors, a common window)
    follows chi² with n-1 dof, so the disagreement flag (p < 0.01) fires for ~1 % of honest replica sets.
    Development run (300 sets of 3, 16 pairs x 3000 frames): mean Q 2.01; D flagged 1.3 %, p < 0.05 6.3 %;
    t+ (Onsager) 1.3 % / 6.0 %. (With 1500 frames, ~23 blocks per replica, t+ gives 13 % at p < 0.05: the
    noise of a jackknife error from few blocks fattens the tail, which is why the flag is at p < 0.01.)"""
    from aseimd.analysis.diffusion import self_diffusion
    from aseimd.analysis.replicas import replica_consistency
    from aseimd.analysis.transference import onsager_transport

    rng = np.random.default_rng(42)
    q_D, p_D, p_t = [], [], []
    for _ in range(200):
        D, sD, t, st = [], [], [], []
        for _ in range(3):
            cat, an = pair_walks(rng, 16, 3000, DS, DA, DB)
            d = self_diffusion(cat, 1.0, fit_window_ps=(2.0, 8.0))
            tr = onsager_transport(cat, an, 1.0, 64.0, TEMPERATURE_K, 1.0, -1.0, fit_window_ps=(2.0, 8.0))
            D.append(d.D_m2_per_s)
            sD.append(d.D_stderr_m2_per_s)
            t.append(tr.values["t_plus_onsager"])
            st.append(tr.stderr["t_plus_onsager"])
        _, q, p = replica_consistency(D, sD)
        q_D.append(q)
        p_D.append(p)
        p_t.append(replica_consistency(t, st)[2])
    p_D, p_t = np.array(p_D), np.array(p_t)
    assert abs(np.mean(q_D) - 2.0) < 0.45  # E[chi²_2] = 2, sd of the mean over 200 sets 0.14
    for p in (p_D, p_t):
        assert np.mean(p < 0.01) <= 0.04
        assert 0.01 <= np.mean(p < 0.05) <= 0.12
        assert 0.38 <= np.mean(p < 0.5) <= 0.62


def test_replicas_in_memory_pool_like_their_files(replicas):
    """mdtraj Trajectories in memory pool to the same numbers as their files; one object twice is refused."""
    from aseimd.analysis import TransferenceAnalysis
    from aseimd.analysis.replicas import pool_replicas
    from aseimd.errors import AnalysisError

    def analysis():
        return TransferenceAnalysis(("Li", "resname LI"), ("PF6", "resname PF6"), temperature_K=TEMPERATURE_K)

    files = pool_replicas(replicas[:2], analysis())
    memory = [mdtraj.load(str(traj), top=str(top)) for top, traj in replicas[:2]]
    mem = pool_replicas(memory, analysis(), dt_ps=1.0)
    # the two sources feed the position collector in different chunks; its float32 unwrap is chunk-independent
    # only to accumulation error (tests/test_speed_paths.py), so equal to 1e-6 relative, not bit for bit
    mv, fv = mem.pooled.result.values, files.pooled.result.values
    assert mv.keys() == fv.keys()
    for key in fv:
        np.testing.assert_allclose(mv[key], fv[key], rtol=1e-6, err_msg=key)
    np.testing.assert_allclose(mem.estimates[("t_plus_onsager",)].per_replica,
                               files.estimates[("t_plus_onsager",)].per_replica, rtol=1e-6)
    with pytest.raises(AnalysisError, match="replica 2 is the same trajectory as replica 1"):
        pool_replicas([memory[0], memory[0]], analysis(), dt_ps=1.0)
