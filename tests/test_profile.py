"""Density profiles against closed-form answers (aseimd.analysis.profile)."""

from __future__ import annotations

import numpy as np
import pytest

from aseimd.analysis.profile import density_profiles, formal_charges, system_xml_charges
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError


def make_topology(residues):
    """mdtraj topology from [(resname, [(atom name, element symbol), ...]), ...]."""
    import mdtraj

    top = mdtraj.Topology()
    chain = top.add_chain()
    for resname, atoms in residues:
        res = top.add_residue(resname, chain)
        for name, symbol in atoms:
            top.add_atom(name, mdtraj.element.get_by_symbol(symbol), res)
    return top


def write_traj(tmp_path, top, xyz_nm, box_nm, name="t"):
    """PDB + DCD of positions (n_frames, n_atoms, 3) in an orthorhombic box (n_frames, 3), 1 ps apart."""
    import mdtraj

    xyz_nm = np.asarray(xyz_nm, dtype=np.float32)
    box_nm = np.broadcast_to(np.asarray(box_nm, dtype=np.float32), (len(xyz_nm), 3))
    t = mdtraj.Trajectory(xyz_nm, top, time=np.arange(len(xyz_nm), dtype=float),
                          unitcell_lengths=box_nm, unitcell_angles=np.full((len(xyz_nm), 3), 90.0))
    pdb, dcd = tmp_path / f"{name}.pdb", tmp_path / f"{name}.dcd"
    t[0].save_pdb(str(pdb))
    t.save_dcd(str(dcd))
    return pdb, dcd


LI = ("LI", [("LI", "Li")])
PF6 = ("PF6", [("P", "P")] + [(f"F{i}", "F") for i in range(1, 7)])
OCT = [(0.15, 0, 0), (-0.15, 0, 0), (0, 0.15, 0), (0, -0.15, 0), (0, 0, 0.15), (0, 0, -0.15)]


def test_atoms_on_planes_give_exact_counts(tmp_path):
    # 4 x 4 x 4 nm box, 0.1 nm bins: atoms sit at bin centres (and at periodic images of them)
    z_planes = {2: 0.25, 10: 1.05, 38: -0.15, 3: 4.35}  # bin index -> z as stored (unwrapped)
    n_per_plane = {2: 5, 10: 3, 38: 7, 3: 2}
    zs = np.concatenate([[z_planes[b]] * n_per_plane[b] for b in z_planes])
    n = zs.size
    rng = np.random.default_rng(1)
    n_frames = 6
    xyz = np.empty((n_frames, n, 3))
    xyz[..., :2] = rng.uniform(-3, 7, size=(n_frames, n, 2))  # x, y anywhere (images too)
    xyz[..., 2] = zs
    top = make_topology([LI] * n)
    pdb, dcd = write_traj(tmp_path, top, xyz, [4.0, 4.0, 4.0])
    res = density_profiles(Trajectory(pdb, dcd), {"Li": "resname LI"}, bin_nm=0.1, n_blocks=3)

    assert res.n_bins == 40
    np.testing.assert_allclose(res.bin_centers_nm, 0.05 + 0.1 * np.arange(40), atol=1e-6)
    slab_nm3 = 4.0 * 4.0 * 0.1
    expected = np.zeros(40)
    for b, count in n_per_plane.items():
        expected[b] = count / slab_nm3
    g = res.groups["Li"]
    np.testing.assert_allclose(g.number_density_per_nm3, expected, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(g.number_density_stderr_per_nm3, 0.0, atol=1e-6)  # every frame identical
    np.testing.assert_allclose(g.charge_density_e_per_nm3, expected, rtol=1e-5, atol=1e-9)  # Li+ = +1 e
    assert g.integral_n_atoms == pytest.approx(n, rel=1e-6)
    assert g.total_charge_e == pytest.approx(n)
    assert res.warnings == []


def test_uniform_random_atoms_give_flat_density(tmp_path, rng):
    n, n_frames, box = 400, 200, np.array([3.0, 3.0, 5.0])
    xyz = rng.uniform(0, 1, size=(n_frames, n, 3)) * box + rng.integers(-2, 3, size=(n_frames, n, 3)) * box
    top = make_topology([LI] * n)
    pdb, dcd = write_traj(tmp_path, top, xyz, box)
    res = density_profiles(Trajectory(pdb, dcd), {"all": "all"}, n_bins=20, n_blocks=10)
    g = res.groups["all"]
    rho = n / box.prod()
    assert g.integral_n_atoms == pytest.approx(n, rel=1e-6)
    # Poisson: per-frame count per bin has variance n/20; SE of the mean over 200 frames
    se_expected = np.sqrt(n / 20 / n_frames) / (box.prod() / 20)
    z = (g.number_density_per_nm3 - rho) / se_expected
    assert np.all(np.abs(z) < 4.5)
    # block SEs estimate the same quantity (9 degrees of freedom: within a factor ~2 each, ~1 on average)
    ratio = g.number_density_stderr_per_nm3 / se_expected
    assert 0.75 < ratio.mean() < 1.25
    assert np.all((ratio > 0.3) & (ratio < 2.2))


def test_double_layer_charge_integrates_to_total(tmp_path):
    # 10 Li+ on the plane z = 1.0 nm; 6 PF6- (7 atoms each, charge spread -1/7 per atom) centred at z = 2.0 nm
    box = np.array([3.0, 3.0, 4.0])
    li = [(0.3 * i, 0.2 * i, 1.0) for i in range(10)]
    pf6 = []
    for i in range(6):
        c = np.array([0.5 * i, 1.5, 2.0])
        pf6 += [tuple(c)] + [tuple(c + np.array(o)) for o in OCT]
    top = make_topology([LI] * 10 + [PF6] * 6)
    xyz = np.array([li + pf6] * 4)
    pdb, dcd = write_traj(tmp_path, top, xyz, box)
    traj = Trajectory(pdb, dcd)
    res = density_profiles(traj, {"Li": "resname LI", "PF6": "resname PF6", "all": "all"}, n_bins=40)

    slab = 3.0 * 3.0 * 0.1
    li_g, an_g, all_g = res.groups["Li"], res.groups["PF6"], res.groups["all"]
    assert li_g.total_charge_e == pytest.approx(10)
    assert an_g.total_charge_e == pytest.approx(-6)
    assert all_g.total_charge_e == pytest.approx(4)
    assert li_g.integral_charge_e == pytest.approx(10, rel=1e-6)
    assert an_g.integral_charge_e == pytest.approx(-6, rel=1e-6)
    assert all_g.integral_charge_e == pytest.approx(4, rel=1e-6)
    # Li peak: bin of z = 1.0 is [1.0, 1.1) -> bin 10, all +10 e there
    assert li_g.charge_density_e_per_nm3[10] == pytest.approx(10 / slab, rel=1e-5)
    # anion: P and 4 equatorial F at z = 2.0 (bin 20), one F at 2.15 (bin 21) and one at 1.85 (bin 18)
    q = -1 / 7
    expected = np.zeros(40)
    expected[20], expected[21], expected[18] = 6 * 5 * q / slab, 6 * q / slab, 6 * q / slab
    np.testing.assert_allclose(an_g.charge_density_e_per_nm3, expected, rtol=1e-5, atol=1e-9)
    # the overlapping group "all" is the sum of the two
    np.testing.assert_allclose(all_g.charge_density_e_per_nm3,
                               li_g.charge_density_e_per_nm3 + an_g.charge_density_e_per_nm3, atol=1e-9)
    # double layer: cumulative charge rises to +10 e after the Li plane and falls to +4 e past the anions
    cum = np.cumsum(all_g.charge_density_e_per_nm3) * slab
    assert cum[10] == pytest.approx(10) and cum[-1] == pytest.approx(4)


def test_fluctuating_box_bins_follow_the_box(tmp_path):
    # atoms at fixed *fractional* z while the box height changes every frame
    n_frames = 5
    heights = np.array([4.0, 4.4, 3.8, 4.2, 4.1])
    s = np.array([0.1875, 0.1875, 0.6875])  # fractional z at the centres of bins 1, 1, 5 of 8
    xyz = np.zeros((n_frames, 3, 3))
    xyz[..., 0] = [0.1, 0.9, 1.3]
    xyz[..., 2] = s[None, :] * heights[:, None]
    box = np.stack([np.full(n_frames, 2.0), np.full(n_frames, 2.5), heights], axis=1)
    top = make_topology([LI] * 3)
    pdb, dcd = write_traj(tmp_path, top, xyz, box)
    res = density_profiles(Trajectory(pdb, dcd), {"Li": "all"}, n_bins=8, n_blocks=5)
    g = res.groups["Li"]
    inv_slab = 8 / (2.0 * 2.5 * heights)  # per-frame 1/bin volume
    expected = np.zeros(8)
    expected[1], expected[5] = 2 * inv_slab.mean(), inv_slab.mean()
    np.testing.assert_allclose(g.number_density_per_nm3, expected, rtol=1e-5)
    # block SE with one frame per block: std of the per-frame densities / sqrt(5)
    assert g.number_density_stderr_per_nm3[5] == pytest.approx(inv_slab.std(ddof=1) / np.sqrt(5), rel=1e-4)
    assert res.height_mean_nm == pytest.approx(heights.mean(), rel=1e-6)
    assert (res.height_min_nm, res.height_max_nm) == pytest.approx((3.8, 4.4), rel=1e-6)
    np.testing.assert_allclose(res.bin_centers_nm, (np.arange(8) + 0.5) / 8 * heights.mean(), rtol=1e-6)
    assert any("fluctuates" in w for w in res.warnings)
    # the integral over the mean box differs from N only at second order in the volume fluctuation
    assert g.integral_n_atoms == pytest.approx(3, rel=0.01)


def test_formal_charges_spread_over_residue_atoms():
    top = make_topology([LI, PF6, ("HOH", [("O", "O"), ("H1", "H"), ("H2", "H")])])
    q, unknown = formal_charges(top)
    assert q[0] == 1.0
    np.testing.assert_allclose(q[1:8], -1 / 7)
    assert np.isnan(q[8:]).all() and unknown == ["HOH"]


def test_unknown_residue_charge_is_nan_with_warning(tmp_path):
    top = make_topology([LI, ("HOH", [("O", "O"), ("H1", "H"), ("H2", "H")])])
    xyz = np.zeros((2, 4, 3)) + 0.5
    pdb, dcd = write_traj(tmp_path, top, xyz, [2.0, 2.0, 2.0])
    res = density_profiles(Trajectory(pdb, dcd), {"Li": "resname LI", "W": "resname HOH"}, n_bins=4)
    assert np.isfinite(res.groups["Li"].charge_density_e_per_nm3).all()
    assert np.isnan(res.groups["W"].charge_density_e_per_nm3).all()
    assert np.isnan(res.groups["W"].total_charge_e)
    assert any("HOH" in w and "'W'" in w for w in res.warnings)
    # number density does not depend on charges
    assert res.groups["W"].integral_n_atoms == pytest.approx(3)


def test_system_xml_charges(tmp_path):
    import openmm

    system = openmm.System()
    nb = openmm.NonbondedForce()
    for q in (0.8, -0.2, 0.1):
        system.addParticle(1.0)
        nb.addParticle(q, 0.3, 0.1)
    system.addForce(nb)
    path = tmp_path / "system.xml"
    path.write_text(openmm.XmlSerializer.serialize(system))
    np.testing.assert_allclose(system_xml_charges(path, 3), [0.8, -0.2, 0.1])
    with pytest.raises(AnalysisError, match="3 particles but the topology has 4"):
        system_xml_charges(path, 4)
    with pytest.raises(AnalysisError, match="does not exist"):
        system_xml_charges(tmp_path / "nope.xml", 3)


def test_bad_arguments(tmp_path):
    top = make_topology([LI] * 2)
    pdb, dcd = write_traj(tmp_path, top, np.zeros((2, 2, 3)), [2.0, 2.0, 2.0])
    traj = Trajectory(pdb, dcd)
    with pytest.raises(AnalysisError, match="axis 'w'"):
        density_profiles(traj, {"a": "all"}, axis="w")
    with pytest.raises(AnalysisError, match="not both"):
        density_profiles(traj, {"a": "all"}, bin_nm=0.1, n_bins=3)
    with pytest.raises(AnalysisError, match="bin width must be > 0"):
        density_profiles(traj, {"a": "all"}, bin_nm=-1.0)
    with pytest.raises(AnalysisError, match="matches no atoms"):
        density_profiles(traj, {"a": "resname XXX"})


def test_formal_charge_on_the_ionic_group_of_a_polymer_residue(monkeypatch):
    import dataclasses

    import aseimd.species as species

    li = species.get_species("Li")
    naf = dataclasses.replace(li, name="NafTest", residue="NFT", kind="polymer", formal_charge=-1,
                              ionic_atoms=("S", "O1", "O2", "O3"))
    monkeypatch.setattr(species, "all_species", lambda: (*species._SPECIES, naf))
    atoms = [("C1", "C"), ("F1", "F"), ("S", "S"), ("O1", "O"), ("O2", "O"), ("O3", "O")]
    top = make_topology([("NFT", atoms), LI])
    q, unknown = formal_charges(top)
    np.testing.assert_allclose(q, [0.0, 0.0, -0.25, -0.25, -0.25, -0.25, 1.0])
    assert unknown == []


def test_triclinic_box_bins_on_the_fractional_coordinate(tmp_path):
    import mdtraj

    # a = (3, 0, 0), b = (0, 3, 0), c = (0.8, 0, 4): slabs parallel to the ab face, height V / |a x b| = 4 nm
    a, b, c = np.array([3.0, 0, 0]), np.array([0, 3.0, 0]), np.array([0.8, 0, 4.0])
    frac = np.array([[0.1, 0.2, 0.125], [0.7, 0.9, 0.125], [0.4, 0.4, 0.875], [0.2, 0.6, 1.875]])  # last: image
    xyz = frac @ np.array([a, b, c])
    top = make_topology([LI] * 4)
    lengths = np.linalg.norm([a, b, c], axis=1)
    beta = np.degrees(np.arccos(a @ c / (lengths[0] * lengths[2])))
    t = mdtraj.Trajectory(np.array([xyz] * 2, np.float32), top, unitcell_lengths=[lengths] * 2,
                          unitcell_angles=[[90.0, beta, 90.0]] * 2)
    t[0].save_pdb(str(tmp_path / "tri.pdb"))
    t.save_dcd(str(tmp_path / "tri.dcd"))
    res = density_profiles(Trajectory(tmp_path / "tri.pdb", tmp_path / "tri.dcd"), {"Li": "all"}, n_bins=4,
                           n_blocks=2)
    assert res.height_mean_nm == pytest.approx(4.0, rel=1e-5)
    slab = 3.0 * 3.0 * 1.0
    np.testing.assert_allclose(res.groups["Li"].number_density_per_nm3, [2 / slab, 0, 0, 2 / slab], rtol=1e-5)
    # along x the slabs are parallel to the bc face (tilted): binning uses the fractional a coordinate
    # (0.1, 0.7, 0.4, 0.2 -> bins 0, 2, 1, 0), not Cartesian x (which mixes in 0.8 * s_c)
    res_x = density_profiles(Trajectory(tmp_path / "tri.pdb", tmp_path / "tri.dcd"), {"Li": "all"}, axis="x",
                             n_bins=4, n_blocks=2)
    assert res_x.height_mean_nm == pytest.approx(36.0 / np.linalg.norm(np.cross(b, c)), rel=1e-5)
    np.testing.assert_allclose(res_x.groups["Li"].number_density_per_nm3, np.array([2, 1, 1, 0]) / 9.0, rtol=1e-5)


def test_profiles_own_their_json(tmp_path):
    # the result object owns its JSON (the contract every analysis shares); the CLI document only adds meta
    from aseimd.analysis.profile import profiles_document

    n, n_frames = 4, 5
    xyz = np.zeros((n_frames, n, 3))
    xyz[..., 2] = np.array([0.25, 0.25, 1.05, 3.95])
    top = make_topology([LI] * n)
    pdb, dcd = write_traj(tmp_path, top, xyz, [4.0, 4.0, 4.0])
    traj = Trajectory(pdb, dcd)
    res = density_profiles(traj, {"Li": "resname LI"}, bin_nm=0.1, n_blocks=2)
    body = res.to_json()
    assert body["groups"]["Li"]["n_atoms"] == n
    assert body["groups"]["Li"]["number_density_per_nm3"][2] == pytest.approx(2 / 1.6, rel=1e-5)
    doc = profiles_document(res, traj)
    assert {k: v for k, v in doc.items() if k != "meta"}.keys() == body.keys()
    assert doc["meta"]["trajectory_warnings"] == [] and doc["meta"]["frames"]["n_frames"] == n_frames
