"""Self-diffusion: known D within its error bars at the expected rate, directions, windows, layers, YH."""

import mdtraj
import numpy as np
import pytest
from synthetic import ballistic, brownian, ions, molecules, wrap, write_trajectory

from aseimd.analysis import fitting
from aseimd.analysis.diffusion import (
    analyze_diffusion,
    cubic_box_edge_nm,
    layer_diffusion,
    self_diffusion,
    yeh_hummer_correction_m2_per_s,
)
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

D_NM2_PER_PS = 0.01  # = 1e-8 m^2/s


def test_standard_error_is_calibrated(rng):
    """Over many independent Brownian runs the true D lies within ±1 SE / ±2 SE at the expected rate.

    With 5 blocks the block SE has 4 degrees of freedom: P(|t_4| < 1) = 0.626,
    P(|t_4| < 2) = 0.884; the whole-run D is a little less noisy than the block
    mean, so coverage is a little higher. Both bounds are two-sided: an SE that is
    too large fails as well as one that is too small.
    """
    n = 400
    z = np.empty(n)
    for k in range(n):
        res = self_diffusion(brownian(rng, 300, 30, 1.0, D_NM2_PER_PS), 1.0)
        z[k] = (res.D_m2_per_s - 1e-8) / res.D_stderr_m2_per_s
    within1, within2 = np.mean(np.abs(z) < 1), np.mean(np.abs(z) < 2)
    assert 0.57 < within1 < 0.78, within1
    assert 0.83 < within2 < 0.97, within2
    assert abs(np.median(z)) < 0.2  # no bias


def test_brownian_d_window_and_ci(rng):
    res = self_diffusion(brownian(rng, 1000, 100, 1.0, D_NM2_PER_PS), 1.0)
    assert res.diffusive and res.window.automatic and res.window.found
    assert abs(res.slope - 1) < 0.05
    assert abs(res.D_m2_per_s - 1e-8) < 4 * res.D_stderr_m2_per_s
    assert res.D_stderr_m2_per_s < 0.05e-8
    lo, hi = res.D_ci95_m2_per_s
    assert lo < res.D_m2_per_s < hi
    assert res.window.stop <= 100  # half of a 200-frame block


@pytest.mark.parametrize("dims,expected", [
    ("x", 0.01), ("y", 0.02), ("z", 0.04), ("xy", 0.015), ("xyz", 0.07 / 3),
])
def test_directional_d_for_anisotropic_motion(rng, dims, expected):
    pos = brownian(rng, 1000, 60, 0.5, (0.01, 0.02, 0.04))
    res = self_diffusion(pos, 0.5, dims=dims, n_blocks=10)  # 9 dof: |t| > 5 has probability 0.07 %
    assert res.dims == dims
    assert abs(res.D_m2_per_s - expected * 1e-6) < 5 * res.D_stderr_m2_per_s
    assert res.D_stderr_m2_per_s < 0.1 * expected * 1e-6


def test_ballistic_is_not_diffusive(rng):
    pos = ballistic(400, rng.normal(size=(10, 3)), 1.0, np.zeros((10, 3)))
    res = self_diffusion(pos, 1.0)
    assert not res.diffusive
    assert abs(res.slope - 2) < 1e-6
    assert res.warnings and "not diffusive" in res.warnings[0]


def test_caged_motion_is_not_fitted_silently(rng):
    """Particles in harmonic cages (Ornstein-Uhlenbeck): the MSD plateaus, slope << 1."""
    n, k = 2000, 0.02
    x = np.zeros((n, 20, 3))
    for t in range(1, n):
        x[t] = x[t - 1] * (1 - k) + rng.normal(scale=0.05, size=(20, 3))
    res = self_diffusion(x, 1.0, method="ols-blocks")
    assert not res.diffusive and not res.window.found
    assert res.slope < 0.7
    assert "upper bound" in res.warnings[0]
    # gls: the short-time window looks linear, but the MSD bends over later: a transient, said so
    res = self_diffusion(x, 1.0)
    assert not res.diffusive and not res.window.found
    assert "short-time transient" in res.warnings[0] and "upper bound" in res.warnings[0]


def test_window_skips_the_ballistic_start():
    """Langevin MSD 6 D [t - tau (1 - exp(-t/tau))]: slope 2 early, 1 late."""
    tau, D = 20.0, 0.01
    t = np.arange(4001.0)
    msd = 6 * D * (t - tau * (1 - np.exp(-t / tau)))
    w = fitting.choose_window(msd, 2000)
    beta_start = np.log(msd[w.start + 1] / msd[w.start]) / np.log((w.start + 1) / w.start)
    assert w.found and abs(beta_start - 1) < 0.1
    assert w.start > 3 * tau and w.stop == pytest.approx(2000, rel=0.15)


def test_given_window_and_too_short(rng):
    pos = brownian(rng, 100, 10, 1.0, D_NM2_PER_PS)
    res = self_diffusion(pos, 1.0, fit_window_ps=(2.0, 8.0), method="ols-blocks")
    assert res.window.ps(1.0) == [2.0, 8.0] and not res.window.automatic
    with pytest.raises(AnalysisError, match="fit window ends at 50"):
        self_diffusion(pos, 1.0, fit_window_ps=(2.0, 50.0), method="ols-blocks")
    with pytest.raises(AnalysisError, match="too short"):
        self_diffusion(pos[:30], 1.0, method="ols-blocks")
    with pytest.raises(AnalysisError, match="too short for the GLS fit"):
        self_diffusion(pos, 1.0)
    long = brownian(rng, 400, 10, 1.0, D_NM2_PER_PS)
    res = self_diffusion(long, 1.0, fit_window_ps=(2.0, 8.0))
    assert res.window.ps(1.0) == [2.0, 8.0] and not res.window.automatic and "onset_ps" not in res.onset
    assert res.onset["linearity_p_value"] > 0.001 and res.diffusive
    with pytest.raises(AnalysisError, match="fit window ends at 50 ps but blocks of time origins"):
        self_diffusion(long, 1.0, fit_window_ps=(2.0, 50.0))
    with pytest.raises(AnalysisError, match="please specify one of"):
        self_diffusion(pos, 1.0, dims="xyzw")


def test_yeh_hummer_number():
    """xi kB T / (6 pi eta L) at 298 K, 3 mPa s, 5 nm (REFERENCE_DATA.md: about 4e-11 m^2/s)."""
    expected = 2.837297 * 1.380649e-23 * 298.0 / (6 * np.pi * 3.0e-3 * 5.0e-9)
    assert yeh_hummer_correction_m2_per_s(298.0, 3.0e-3, 5.0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(4.129e-11, rel=1e-3)


def test_cubic_box_check():
    cubic = np.tile(np.eye(3) * 4.0, (3, 1, 1))
    assert cubic_box_edge_nm(cubic) == pytest.approx(4.0)
    slab = np.tile(np.diag([4.0, 4.0, 9.0]), (3, 1, 1))
    with pytest.raises(AnalysisError, match="cubic boxes only"):
        cubic_box_edge_nm(slab)


def test_layer_lateral_d(rng):
    """Two slabs with different lateral D; particles never change slab."""
    n, box = 800, np.array([3.0, 3.0, 6.0])
    slow = brownian(rng, n, 40, 1.0, (0.01, 0.01, 0.0), box)
    fast = brownian(rng, n, 40, 1.0, (0.03, 0.03, 0.0), box)
    slow[..., 2] = rng.uniform(0.2, 2.8, 40)
    fast[..., 2] = rng.uniform(3.2, 5.8, 40)
    pos = np.concatenate([slow, fast], axis=1)
    boxes = np.tile(np.diag(box), (n, 1, 1))
    layers = layer_diffusion(pos, boxes, 1.0, np.array([0.0, 3.0, 6.0]), n_blocks=10)
    for layer, D in zip(layers, (0.01e-6, 0.03e-6), strict=True):
        r = layer.result
        assert layer.mean_occupancy == pytest.approx(40)
        assert abs(r.D_m2_per_s - D) < 5 * r.D_stderr_m2_per_s and r.D_stderr_m2_per_s < 0.06 * D
        assert r.diffusive


def _diatomics(rng, n_frames, n_mol, box):
    centres = brownian(rng, n_frames, n_mol, 1.0, D_NM2_PER_PS, box)
    bond = np.array([0.06, 0.0, 0.0])
    xyz = np.stack([centres - bond, centres + bond], axis=2).reshape(n_frames, 2 * n_mol, 3)
    return centres, xyz, molecules(n_mol, "DIA", [("C1", "C"), ("C2", "C")])


def test_wrapped_and_unwrapped_files_give_same_d_with_com(tmp_path, rng):
    box = (2.0, 2.0, 2.0)
    _, xyz, spec = _diatomics(rng, 400, 30, box)
    (tmp_path / "u").mkdir()
    (tmp_path / "w").mkdir()
    files_u = write_trajectory(tmp_path / "u", xyz, box, spec)
    files_w = write_trajectory(tmp_path / "w", wrap(xyz, box), box, spec)  # molecules split across faces
    ru = analyze_diffusion(Trajectory(*files_u), {"DIA": "resname DIA"}, com=True, drift="none")
    rw = analyze_diffusion(Trajectory(*files_w), {"DIA": "resname DIA"}, com=True, drift="none")
    a, b = ru.results["DIA"], rw.results["DIA"]
    assert a.n_particles == 30
    np.testing.assert_allclose(b.msd_nm2, a.msd_nm2, rtol=1e-5, atol=1e-9)
    assert b.D_m2_per_s == pytest.approx(a.D_m2_per_s, rel=1e-5)
    assert abs(a.D_m2_per_s - 1e-8) < 4 * a.D_stderr_m2_per_s


def test_drift_removal(tmp_path, rng):
    """A uniform flow of every atom is removed by drift=system (and by a reference group)."""
    n, box = 500, (3.0, 3.0, 3.0)
    pos = brownian(rng, n, 40, 1.0, D_NM2_PER_PS, box)
    wall = np.tile(rng.uniform(0, 3, (1, 10, 3)), (n, 1, 1))
    everything = np.concatenate([pos, wall], axis=1) + np.arange(n)[:, None, None] * np.array([0.05, 0.0, 0.0])
    files = write_trajectory(tmp_path, everything, box, ions(40, "LI", "LI", "Li") + ions(10, "WAL", "AU", "Au"))
    traj = Trajectory(*files)
    sel = {"Li": "resname LI"}
    # the wall moves with the flow, so the system COM drifts at exactly the flow velocity
    sys_res = analyze_diffusion(traj, sel, drift="system").results["Li"]
    wall_res = analyze_diffusion(traj, sel, drift="resname WAL").results["Li"]
    none_res = analyze_diffusion(traj, sel, drift="none").results["Li"]
    ref = self_diffusion(pos, 1.0).D_m2_per_s
    # system COM includes the Li random walks: removed drift is flow + (m_Li/M) * sum of Li walks
    m_li, m_au = mdtraj.element.lithium.mass, mdtraj.element.gold.mass
    com_walk = m_li * (pos - pos[0]).sum(axis=1, keepdims=True) / (40 * m_li + 10 * m_au)
    assert sys_res.D_m2_per_s == pytest.approx(self_diffusion(pos - com_walk, 1.0).D_m2_per_s, rel=1e-4)
    assert wall_res.D_m2_per_s == pytest.approx(ref, rel=1e-4)
    assert not none_res.diffusive and none_res.slope > 1.2
    own = analyze_diffusion(traj, sel, drift="group:Li").results["Li"].D_m2_per_s  # Li relative to Li COM
    com_frame = pos - (pos - pos[0]).mean(axis=1, keepdims=True)
    assert own == pytest.approx(self_diffusion(com_frame, 1.0).D_m2_per_s, rel=1e-4)
    with pytest.raises(AnalysisError, match="no group labelled"):
        analyze_diffusion(traj, sel, drift="group:PF6")


def test_a_mix_of_fast_and_slow_walkers_is_diffusive_with_honest_errors():
    """5 fast (D 0.1) and 45 slow (D 0.001 nm²/ps) Brownian walkers: each one a simple random walk, so the
    onset test must find the first window and the analytic error must agree with the block error. The
    random-walk variance of the mean MSD is 1/h times the identical-particle one, h = <D>²/<D²> = 0.1187."""
    from aseimd.analysis.einstein import slope_homogeneity

    D = np.r_[np.full(5, 0.1), np.full(45, 0.001)]
    h_true = D.mean() ** 2 / np.mean(D**2)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        pos = np.cumsum(rng.normal(size=(4000, 50, 3)) * np.sqrt(2 * D)[None, :, None], axis=0)
        assert slope_homogeneity([pos], 100) == pytest.approx(h_true, rel=0.08)
        r = self_diffusion(pos, 1.0)
        assert r.diffusive and r.window.ps(1.0) == [1.0, 4.0], (seed, r.warnings)
        assert r.warnings == [], (seed, r.warnings)  # in particular no "block SE is k x the analytic one"
        assert r.D_m2_per_s == pytest.approx(D.mean() * 1e-6, abs=4 * r.D_stderr_m2_per_s)
    same = np.cumsum(np.random.default_rng(9).normal(size=(2000, 40, 3)) * 0.1, axis=0)
    assert slope_homogeneity([same], 50) > 0.99  # identical walkers: h = 1 after the noise correction


def test_layer_exchange_is_measured_and_warned():
    """Two z layers with lateral D 0.03 and 0.01 nm²/ps: with z diffusion the particles change layer within
    the fit window and the layer D is biased towards the other layer's: warned, with the share that stayed;
    without z motion nothing is warned and every pair stays. n_particles of a layer is its mean occupancy."""
    def walk(Dz, seed=11, nf=2000, n=80):
        rng = np.random.default_rng(seed)
        pos = np.zeros((nf, n, 3))
        pos[0] = rng.uniform(0, 3, (n, 3))
        for t in range(1, nf):
            Dxy = np.where(pos[t - 1, :, 2] % 3.0 < 1.5, 0.03, 0.01)
            pos[t] = pos[t - 1] + rng.normal(size=(n, 3)) * np.sqrt(2 * np.c_[Dxy, Dxy, np.full(n, Dz)])
        return layer_diffusion(pos, np.tile(np.diag([3.0, 3.0, 3.0]), (nf, 1, 1)), 1.0, np.array([0, 1.5, 3.0]))

    moving = walk(0.005)
    assert all(lay.still_in_layer_at_window_end < 0.9 for lay in moving)
    assert all(any("are in another by the end of the fit window" in w for w in lay.result.warnings)
               for lay in moving)
    fixed = walk(0.0)
    assert all(lay.still_in_layer_at_window_end == 1.0 and not lay.result.warnings for lay in fixed)
    doc = fixed[0].to_json()
    assert doc["n_particles"] == doc["mean_particles"] == fixed[0].mean_occupancy < 80
