"""Coordination numbers, compositions, speciation and residence on hand-built configurations."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import ions, molecules, write_trajectory

from aseimd.analysis.coordination import coordination, coordination_streamed
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

BOX = 3.0
OCTAHEDRON = np.array([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)], float)
CUBE = np.array([(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) / np.sqrt(3)


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def shells_trajectory(tmp_path, rng, n_frames=8):
    """Two Li, each with 6 O (EC) at 0.2 nm and 8 O (DMC) at 0.4 nm, one Li at a corner of the box."""
    centers = np.array([[0.05, 2.97, 0.1], [1.6, 1.4, 1.5]])
    xyz = np.empty((n_frames, 2 + 2 * 14, 3))
    for f in range(n_frames):
        xyz[f, :2] = centers + rng.normal(scale=0.05, size=(2, 3))
        for k in range(2):
            rot = random_rotation(rng)
            xyz[f, 2 + 6 * k: 8 + 6 * k] = xyz[f, k] + 0.2 * OCTAHEDRON @ rot
            xyz[f, 14 + 8 * k: 22 + 8 * k] = xyz[f, k] + 0.4 * CUBE @ rot
    xyz = xyz - BOX * np.floor(xyz / BOX)  # wrapped: the corner Li's shells straddle the boundary
    residues = ions(2, "LI", "LI", "Li") + molecules(12, "EC", [("O1", "O")]) + molecules(16, "DMC", [("O1", "O")])
    return write_trajectory(tmp_path, xyz, [BOX] * 3, residues)


def test_octahedron_and_second_shell_give_exact_cns(tmp_path, rng):
    top, traj = shells_trajectory(tmp_path, rng)
    res = coordination(Trajectory(top, traj), {"Li": "resname LI"},
                       {"O": "element O", "EC": "resname EC", "DMC": "resname DMC"},
                       cutoffs_nm={"DMC": 0.45})
    o, ec, dmc = res.pairs["O"], res.pairs["EC"], res.pairs["DMC"]
    assert o.cutoff_source == "auto" and 0.2 < o.cutoff_nm < 0.4
    assert o.r_peak_nm == pytest.approx(0.2, abs=0.005)
    assert (o.cn, o.cn_stderr, o.cn_molecules) == (6.0, 0.0, 6.0)
    assert (dmc.cn, dmc.cutoff_source, dmc.cutoff_nm) == (8.0, "given", 0.45)
    assert ec.cutoff_nm is None and np.isnan(ec.cn)  # g = 0 beyond the only shell: no minimum
    assert any("'EC'" in w for w in res.warnings)
    # running coordination number steps 0 -> 6 -> 14; the histogram's n agrees with g (constant volume)
    e = o.rdf.edges_nm
    assert o.rdf.n_edges[np.searchsorted(e, 0.3)] == pytest.approx(6.0)
    assert o.rdf.n_edges[np.searchsorted(e, 0.5)] == pytest.approx(14.0)
    shell_vol = 4 / 3 * np.pi * (e[1:] ** 3 - e[:-1] ** 3)
    np.testing.assert_allclose(np.cumsum(o.rdf.g * shell_vol) * (2 * 28 / BOX**3) / 2, o.rdf.n_edges[1:])
    # each DMC O is bound to one Li; half the O atoms of the combined group are
    assert dmc.shell_bound_fraction == 1.0 and o.shell_bound_fraction == pytest.approx(12 / 28)


def test_chelating_molecule_counts_once(tmp_path):
    xyz = np.array([[[1.0, 1.0, 1.0], [1.2, 1.0, 1.0], [1.0, 1.2, 1.0], [1.0, 1.0, 1.21]]])
    top, traj = write_trajectory(tmp_path, np.repeat(xyz, 3, axis=0), [3.0] * 3,
                                 ions(1, "LI", "LI", "Li") + molecules(1, "DME", [("O1", "O"), ("O2", "O")])
                                 + molecules(1, "EC", [("O1", "O")]))
    res = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"O": "element O"}, cutoffs_nm={"O": 0.3})
    p = res.pairs["O"]
    assert (p.cn, p.cn_molecules) == (3.0, 2.0)
    assert res.compositions["distribution"][0]["composition"] == "Li(O)2"


def _place(li, partners):
    """Positions: each Li, then its partner atoms at 0.2 nm along x, y, z, -x, ... in order."""
    dirs = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (-1, 0, 0), (0, -1, 0), (0, 0, -1)]
    return [np.asarray(li) + 0.2 * np.array(dirs[k]) for k in range(partners)]


def test_shell_compositions_and_speciation(tmp_path):
    # 5 Li far apart (4 nm box); anion = single-atom "PF6" residues, solvents EC and DMC
    li = np.array([[0.5, 0.5, 0.5], [2.0, 0.5, 0.5], [0.5, 2.0, 0.5], [0.5, 0.5, 2.2], [2.5, 2.5, 2.5]])
    pos, res = list(li), ions(5, "LI", "LI", "Li")
    # Li0: 3 EC + 1 DMC, no anion -> SSIP
    pos += _place(li[0], 4)
    res += molecules(3, "EC", [("O1", "O")]) + molecules(1, "DMC", [("O1", "O")])
    # Li1: 3 EC + 1 anion alone -> CIP
    pos += _place(li[1], 4)
    res += molecules(3, "EC", [("O1", "O")]) + ions(1, "PF6", "P", "P")
    # Li2 and Li3? too far apart to share; Li4 has two anions -> AGG; Li2 shares one anion with a 6th Li
    pos += _place(li[4], 2)
    res += ions(2, "PF6", "P", "P")
    shared = li[2] + [0.0, 0.0, 0.2]
    pos += [shared, shared + [0.0, 0.0, 0.2]]
    res += ions(1, "PF6", "P", "P") + ions(1, "LI", "LI", "Li")  # 6th Li at 0.2 nm beyond the anion
    pos += [np.array([3.5, 3.5, 3.5])]
    res += ions(1, "PF6", "P", "P")  # a free anion
    xyz = np.array(pos)[None].repeat(4, axis=0)
    top, traj = write_trajectory(tmp_path, xyz, [4.0] * 3, res)
    out = coordination(Trajectory(top, traj), {"Li": "resname LI"},
                       {"EC": "resname EC", "DMC": "resname DMC", "PF6": "resname PF6"},
                       cutoffs_nm={"EC": 0.25, "DMC": 0.25, "PF6": 0.25}, anion="PF6")
    dist = {d["composition"]: d["fraction"] for d in out.compositions["distribution"]}
    assert dist == pytest.approx({
        "Li(EC)3(DMC)1(PF6)0": 1 / 6, "Li(EC)3(DMC)0(PF6)1": 1 / 6, "Li(EC)0(DMC)0(PF6)2": 1 / 6,
        "Li(EC)0(DMC)0(PF6)1": 2 / 6, "Li(EC)0(DMC)0(PF6)0": 1 / 6,
    })
    assert sum(dist.values()) == pytest.approx(1.0)
    sp = out.speciation
    # SSIP: Li0, Li3; CIP: Li1; AGG: Li4 (two anions), Li2 and Li5 (one shared anion)
    assert (sp["SSIP"], sp["CIP"], sp["AGG"]) == pytest.approx((2 / 6, 1 / 6, 3 / 6))
    assert sp["free_anion_fraction"] == pytest.approx(1 / 5)
    assert out.compositions["mean_molecules"] == pytest.approx({"EC": 1.0, "DMC": 1 / 6, "PF6": 5 / 6})


def _bound_history_trajectory(tmp_path, bound):
    """One Li per column of ``bound`` (n_frames, n_pairs); its ligand sits at 0.2 nm when bound, 0.7 when not."""
    n_frames, n = bound.shape
    li = np.array([[0.5 + 2.0 * k, 1.0, 1.0] for k in range(n)])
    xyz = np.empty((n_frames, 2 * n, 3))
    xyz[:, :n] = li
    xyz[:, n:] = li + np.where(bound[..., None], 0.2, 0.7) * np.array([1.0, 0.0, 0.0])
    res = ions(n, "LI", "LI", "Li") + molecules(n, "EC", [("O1", "O")])
    return write_trajectory(tmp_path, xyz, [2.0 * n, 3.0, 3.0], res, dt_ps=0.5)


def slow_continuous_tcf(bound):
    """O(T^2) loop: sum over origins s of pairs bound without break from s to s+t, over sum h(s), s <= T-1-t."""
    n_frames = bound.shape[0]
    c = np.full(n_frames, np.nan)
    for t in range(n_frames):
        num = den = 0
        for s in range(n_frames - t):
            den += bound[s].sum()
            num += np.all(bound[s: s + t + 1], axis=0).sum()
        if den:
            c[t] = num / den
    return c


def test_residence_of_a_ligand_that_leaves_at_a_known_frame(tmp_path):
    n_frames, k = 30, 10  # bound in frames 0..9, gone from frame 10 on
    bound = (np.arange(n_frames) < k)[:, None]
    top, traj = _bound_history_trajectory(tmp_path, bound)
    out = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"EC": "resname EC"},
                       cutoffs_nm={"EC": 0.4}, residence=True)
    r = out.residence["EC"]
    lags = np.arange(k + 1)
    np.testing.assert_allclose(r.c_t[: k + 1], (k - lags) / k)
    assert np.all(r.c_t[k:n_frames - k + 1] == 0)
    assert r.decayed and r.n_runs == 1
    assert r.tau_ps == pytest.approx(k * 0.5 / 2)  # integral of a linear decay over k frames of 0.5 ps
    np.testing.assert_allclose(r.times_ps[:3], [0.0, 0.5, 1.0])


def test_residence_tcf_matches_slow_loop(tmp_path, rng):
    bound = rng.random((40, 4)) < 0.7
    bound[-3:, 0] = True  # a run still open at the end
    top, traj = _bound_history_trajectory(tmp_path, bound)
    out = coordination(Trajectory(top, traj, chunk_frames=7), {"Li": "resname LI"}, {"EC": "resname EC"},
                       cutoffs_nm={"EC": 0.4}, residence=True)
    np.testing.assert_allclose(out.residence["EC"].c_t, slow_continuous_tcf(bound), equal_nan=True)


def test_block_standard_error(tmp_path):
    # CN is 1 in the first half of the frames, 0 in the second: 4 blocks of means 1, 1, 0, 0
    bound = (np.arange(8) < 4)[:, None]
    top, traj = _bound_history_trajectory(tmp_path, bound)
    p = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"EC": "resname EC"},
                     cutoffs_nm={"EC": 0.4}, n_blocks=4).pairs["EC"]
    assert p.cn == 0.5
    assert p.cn_stderr == pytest.approx(np.std([1, 1, 0, 0], ddof=1) / 2)


def test_streamed_chunks_give_the_same_result(tmp_path, rng):
    top, traj = shells_trajectory(tmp_path, rng, n_frames=10)
    kw = dict(center={"Li": "resname LI"}, shells={"O": "element O"}, dt_ps=1.0)
    one = coordination_streamed(top, traj, chunk_frames=1000, **kw)
    many = coordination_streamed(top, traj, chunk_frames=3, **kw)
    np.testing.assert_array_equal(one.pairs["O"].rdf.g, many.pairs["O"].rdf.g)
    assert one.pairs["O"].to_dict() == many.pairs["O"].to_dict()


@pytest.mark.parametrize(
    ("center", "shells", "options", "message"),
    [
        ({"Li": "resname XX"}, {"O": "element O"}, {}, "matches no atoms"),
        ({"Li": "resname LI"}, {"Li": "element O"}, {}, "used for the centre and a shell"),
        ({"Li": "resname LI"}, {"O": "element O"}, {"cutoffs_nm": {"EC": 0.3}}, "unknown shell 'EC'"),
        ({"Li": "resname LI"}, {"O": "element O"}, {"anion": "PF6"}, "not a shell label"),
        ({"Li": "resname LI"}, {"O": "element O"}, {"r_max_nm": 2.0}, "exceeds half the shortest box width"),
        ({"Li": "resname LI"}, {"O": "element O"}, {"cutoffs_nm": {"O": 1.2}}, "must be > 0 and <= r_max"),
        ({"Li": "resname LI"}, {"O": "element O and"}, {}, "invalid"),
    ],
)
def test_bad_input_is_an_analysis_error(tmp_path, rng, center, shells, options, message):
    top, traj = shells_trajectory(tmp_path, rng, n_frames=2)
    with pytest.raises(AnalysisError, match=message):
        coordination(Trajectory(top, traj), center, shells, **options)


def test_no_box_is_an_error(tmp_path):
    top, traj = write_trajectory(tmp_path, np.zeros((2, 2, 3)), None, ions(2, "LI", "LI", "Li"))
    with pytest.raises(AnalysisError, match="no unit cell"):
        coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"X": "all"})


def test_default_rmax_is_clipped_with_a_warning(tmp_path):
    top, traj = write_trajectory(tmp_path, np.full((2, 2, 3), 0.5), [1.6] * 3, ions(2, "LI", "LI", "Li"))
    res = coordination(Trajectory(top, traj), {"A": "index 0"}, {"B": "index 1"})
    assert res.r_max_nm == pytest.approx(0.8, abs=0.005)
    assert any("clipped" in w for w in res.warnings)


def test_li_cn_agrees_with_solvation_analysis(tmp_path, rng):
    """Peer cross-check: solvation_analysis counts solvent residues per solute (our cn_molecules)."""
    mda = pytest.importorskip("MDAnalysis")
    sa_solute = pytest.importorskip("solvation_analysis.solute")
    n_li, n_ec, n_pf6, n_frames, box = 10, 30, 10, 6, 2.5
    ec = [("C1", "C"), ("O1", "O"), ("O2", "O")]
    pf6 = [("P", "P")] + [(f"F{i}", "F") for i in range(1, 7)]
    residues = ions(n_li, "LI", "LI", "Li") + molecules(n_ec, "EC", ec) + molecules(n_pf6, "PF6", pf6)
    n_atoms = n_li + 3 * n_ec + 7 * n_pf6
    xyz = rng.uniform(0, box, (n_frames, n_atoms, 3))
    top, traj = write_trajectory(tmp_path, xyz, [box] * 3, residues)
    radii_nm = {"EC": 0.45, "PF6": 0.4}
    shells = {"EC": "resname EC and name O1 O2", "PF6": "resname PF6 and element F"}
    ours = coordination(Trajectory(top, traj), {"Li": "resname LI"}, shells, cutoffs_nm=radii_nm)

    u = mda.Universe(str(top), str(traj))
    solvents = {"EC": u.select_atoms("resname EC and name O1 O2"),
                "PF6": u.select_atoms("resname PF6 and name F*")}
    solute = sa_solute.Solute.from_atoms(u.select_atoms("resname LI"), solvents,
                                         radii={k: 10 * v for k, v in radii_nm.items()}, skip_rdf=True)
    solute.run()
    peer = solute.coordination.coordination_numbers
    for name in ("EC", "PF6"):
        assert ours.pairs[name].cn_molecules > 0.3
        assert ours.pairs[name].cn_molecules == pytest.approx(peer[name], rel=1e-12)


def test_auto_cutoff_on_a_noisy_liquid_like_shell(tmp_path, rng):
    """6 O at r ~ N(0.21, 0.012) nm around each Li plus a uniform O background beyond 0.3 nm: the
    cut-off falls in the depleted gap, and cn equals a brute-force count at that cut-off."""
    n_li, n_bg, n_frames, box = 8, 400, 12, 3.0
    li = rng.uniform(0, box, (n_frames, n_li, 3))
    dirs = rng.normal(size=(n_frames, n_li, 6, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    shell = li[:, :, None, :] + rng.normal(0.21, 0.012, (n_frames, n_li, 6, 1)) * dirs
    bg = np.empty((n_frames, n_bg, 3))
    for f in range(n_frames):  # a depletion zone: no background O within 0.3 nm of a Li
        pts = rng.uniform(0, box, (4 * n_bg, 3))
        dr = pts[:, None, :] - li[f][None]
        dr -= box * np.round(dr / box)
        bg[f] = pts[np.all(np.linalg.norm(dr, axis=-1) > 0.3, axis=1)][:n_bg]
    bg[0, 0] = li[0, 0] + [0.08, 0.0, 0.0]  # one stray close pair: a huge g in a tiny shell volume
    xyz = np.concatenate([li, shell.reshape(n_frames, -1, 3), bg], axis=1)
    residues = ions(n_li, "LI", "LI", "Li") + molecules(6 * n_li + n_bg, "EC", [("O1", "O")])
    top, traj = write_trajectory(tmp_path, xyz, [box] * 3, residues)
    p = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"O": "element O"}).pairs["O"]
    assert p.cutoff_source == "auto" and 0.25 < p.cutoff_nm < 0.31
    stored = Trajectory(top, traj)
    chunk = next(stored.iter_chunks(np.arange(stored.topology.n_atoms)))
    dr = chunk.xyz_nm[:, n_li:, None, :].astype(float) - chunk.xyz_nm[:, None, :n_li, :]
    dr -= box * np.round(dr / box)
    brute = np.count_nonzero(np.linalg.norm(dr, axis=-1) < p.cutoff_nm) / (n_frames * n_li)
    assert p.cn == pytest.approx(brute, rel=1e-12)
    assert 6.0 <= p.cn < 6.5


def test_triclinic_box_shell_across_the_boundary(tmp_path, rng):
    import mdtraj

    box = np.array([[2.4, 0.0, 0.0], [0.9, 2.2, 0.0], [-1.1, 0.8, 2.6]])
    li = np.array([0.02, 0.03, 0.05])
    frames = []
    for _ in range(3):
        shell = li + 0.2 * OCTAHEDRON @ random_rotation(rng)
        second = li + 0.45 * CUBE @ random_rotation(rng)
        pts = np.vstack([li, shell, second])
        frac = pts @ np.linalg.inv(box)
        frames.append((frac - np.floor(frac)) @ box)  # wrapped into the triclinic cell
    top = mdtraj.Topology()
    chain = top.add_chain()
    for name, el, n in (("LI", mdtraj.element.lithium, 1), ("EC", mdtraj.element.oxygen, 14)):
        for _ in range(n):
            top.add_atom("O1" if name == "EC" else "LI", el, top.add_residue(name, chain))
    *lengths, = mdtraj.utils.box_vectors_to_lengths_and_angles(*box)
    lengths, angles = np.array(lengths[:3]), np.array(lengths[3:])
    t = mdtraj.Trajectory(np.array(frames, np.float32), top, unitcell_lengths=np.tile(lengths, (3, 1)),
                          unitcell_angles=np.tile(angles, (3, 1)))
    t[0].save_pdb(str(tmp_path / "tri.pdb"))
    t.save_dcd(str(tmp_path / "tri.dcd"))
    res = coordination(Trajectory(tmp_path / "tri.pdb", tmp_path / "tri.dcd", dt_ps=1.0), {"Li": "resname LI"},
                       {"O": "element O"}, r_max_nm=0.6)
    p = res.pairs["O"]
    assert p.cutoff_source == "auto" and 0.2 < p.cutoff_nm < 0.45
    assert p.cn == 6.0 and p.rdf.n_edges[-1] == 14.0


def test_exclude_intramolecular(tmp_path):
    """P-F around PF6: its own 6 F at 0.16 nm count only without the intramolecular exclusion."""
    pf6 = [("P", "P")] + [(f"F{i}", "F") for i in range(1, 7)]
    centres = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0]])
    xyz = np.concatenate([np.vstack([c, c + 0.16 * OCTAHEDRON]) for c in centres])[None].repeat(2, axis=0)
    top, traj = write_trajectory(tmp_path, xyz, [3.0] * 3, molecules(2, "PF6", pf6))
    args = ({"P": "name P"}, {"F": "element F"})
    with_self = coordination(Trajectory(top, traj), *args, cutoffs_nm={"F": 0.45}).pairs["F"]
    inter = coordination(Trajectory(top, traj), *args, cutoffs_nm={"F": 0.45},
                         exclude_intramolecular=True).pairs["F"]
    assert (with_self.cn, with_self.cn_molecules) == (7.0, 2.0)
    assert (inter.cn, inter.cn_molecules) == (1.0, 1.0)
    # g normalised by the 2 x 6 intermolecular pairs: n(r) = sum g V_shell N_pairs / (N_c V)
    e = inter.rdf.edges_nm
    shell_vol = 4 / 3 * np.pi * (e[1:] ** 3 - e[:-1] ** 3)
    np.testing.assert_allclose(np.cumsum(inter.rdf.g * shell_vol) * 12 / (2 * 27.0), inter.rdf.n_edges[1:])
    assert inter.rdf.n_edges[-1] == pytest.approx(6.0)  # all 6 F of the other PF6 lie within 1 nm


def test_without_rdf_gives_the_same_coordination(tmp_path, rng):
    top, traj = shells_trajectory(tmp_path, rng, n_frames=4)
    kw = dict(center={"Li": "resname LI"}, shells={"O": "element O", "DMC": "resname DMC"},
              cutoffs_nm={"O": 0.3, "DMC": 0.45}, dt_ps=1.0, anion="DMC", residence=True)
    full = coordination_streamed(top, traj, **kw)
    fast = coordination_streamed(top, traj, rdf=False, **kw)
    assert fast.pairs["O"].rdf is None
    for key in ("O", "DMC"):
        a, b = fast.pairs[key], full.pairs[key]
        assert (a.cn, a.cn_molecules) == (b.cn, b.cn_molecules)
    assert fast.speciation == full.speciation and fast.compositions == full.compositions
    np.testing.assert_array_equal(fast.residence["O"].c_t, full.residence["O"].c_t)
    with pytest.raises(AnalysisError, match="every cut-off must be given; missing: O"):
        coordination_streamed(top, traj, {"Li": "resname LI"}, {"O": "element O"}, dt_ps=1.0, rdf=False)


def test_default_electrolyte_groups():
    from synthetic import build_topology

    from aseimd.analysis.coordination import default_electrolyte_groups

    pf6 = [("P", "P")] + [(f"F{i}", "F") for i in range(1, 7)]
    top = build_topology(ions(2, "LI", "LI", "Li") + molecules(2, "EC", [("C1", "C"), ("O1", "O")])
                         + molecules(1, "PF6", pf6) + molecules(1, "PC", [("C1", "C"), ("O1", "O")]))
    center, shells, anion = default_electrolyte_groups(top)
    assert center == {"Li": "resname LI"} and anion == "PF6"
    assert shells == {"PF6": "resname PF6 and element F", "EC": "resname EC and name O1",
                      "PC": "resname PC and name O1"}
    assert all(top.select(sel).size for sel in shells.values())


def test_search_radius_fits_the_smallest_box_of_an_npt_run(tmp_path, rng):
    """An NPT-like DCD whose box shrinks after frame 0: the default r_max is clipped to the smallest frame's
    half width (not the first frame's, which would fail at frame 1), and a larger --rmax-nm is refused."""
    n_frames = 6
    lengths = np.full((n_frames, 3), 1.8)
    lengths[1:] *= 0.995
    lengths[3] *= 0.99  # the smallest box, frame 3
    xyz = rng.uniform(0.0, 1.0, (n_frames, 60, 3)) * lengths[:, None, :]
    top, traj = write_trajectory(tmp_path, xyz, lengths, ions(20, "LI", "LI", "Li") + ions(40, "OW", "O", "O"))
    t = Trajectory(top, traj)
    np.testing.assert_allclose(t.box_series_nm()[:, [0, 1, 2], [0, 1, 2]], lengths, rtol=1e-6)
    _, boxes = t._dcd.read(np.arange(n_frames), np.array([0]))  # the cell records alone = the full frame read
    np.testing.assert_array_equal(t.box_series_nm(), boxes)
    smallest = 0.5 * float(lengths[3, 0])
    res = coordination(t, {"Li": "resname LI"}, {"O": "resname OW"}, cutoffs_nm={"O": 0.3})
    assert res.r_max_nm == pytest.approx(smallest, rel=1e-6)
    assert any("frame 3" in w for w in res.warnings)
    with pytest.raises(AnalysisError, match="frame 3"):
        coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"O": "resname OW"}, cutoffs_nm={"O": 0.3},
                     r_max_nm=0.5 * 1.8 * 0.995)
