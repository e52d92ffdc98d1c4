"""FFT MSD and cross-correlations against closed forms, an O(T^2) loop and MDAnalysis."""

import numpy as np
import pytest
from synthetic import ballistic, brownian, ions, write_trajectory

from aseimd.analysis import msd as msd_mod
from aseimd.analysis.msd import cross_msd_fft, msd_direct, msd_fft


@pytest.mark.parametrize("shape", [(2, 1, 3), (7, 3, 3), (64, 5, 2), (101, 17, 1)])
def test_fft_msd_equals_direct_loop(rng, shape):
    x = rng.normal(size=shape).cumsum(axis=0)
    np.testing.assert_allclose(msd_fft(x), msd_direct(x), rtol=1e-10, atol=1e-10)


def test_per_particle_and_max_lag(rng):
    x = rng.normal(size=(50, 4, 3)).cumsum(axis=0)
    per = msd_fft(x, per_particle=True, max_lag=20)
    assert per.shape == (21, 4, 3)
    for p in range(4):
        np.testing.assert_allclose(per[:, p], msd_direct(x[:, p:p + 1], max_lag=20), atol=1e-10)
    np.testing.assert_allclose(per.mean(axis=1), msd_fft(x, max_lag=20), atol=1e-12)


def test_particle_blocks_do_not_change_result(rng, monkeypatch):
    x = rng.normal(size=(40, 9, 3)).cumsum(axis=0)
    full = msd_fft(x)
    monkeypatch.setattr(msd_mod, "FFT_BLOCK_BYTES", 1)  # one particle per block
    np.testing.assert_allclose(msd_fft(x), full, rtol=1e-12)


@pytest.mark.parametrize("per_particle", [False, True])
def test_staged_transposing_copy_is_bit_identical_to_one_block_at_a_time(rng, monkeypatch, per_particle):
    # float32 frame-major input as the position collector stores it; several stages, a ragged last stage
    # and last block, a ragged last time tile
    x = rng.normal(size=(1300, 23, 3)).cumsum(axis=0).astype(np.float32)
    monkeypatch.setattr(msd_mod, "FFT_BLOCK_BYTES", 3 * 2048 * 8 * 3)  # nfft 2048: 3 particles (9 series) per block
    monkeypatch.setattr(msd_mod, "TRANSPOSE_TILE_FRAMES", 500)
    monkeypatch.setattr(msd_mod, "STAGE_BYTES", 1)  # one FFT block per stage: the plain loop
    plain = msd_fft(x, max_lag=700, per_particle=per_particle)
    monkeypatch.setattr(msd_mod, "STAGE_BYTES", 4 * 9 * 2048 * 8)  # four blocks (36 series) per stage
    staged = msd_fft(x, max_lag=700, per_particle=per_particle)
    assert np.array_equal(staged, plain)
    np.testing.assert_allclose(staged if per_particle else staged[None],
                               msd_direct(x.astype(float), max_lag=700)[None] if not per_particle else
                               np.stack([msd_direct(x[:, p:p + 1].astype(float), max_lag=700)
                                         for p in range(23)], axis=1), rtol=1e-9, atol=1e-9)


def test_ballistic_msd_is_v2_t2_exactly(rng):
    v = rng.normal(size=(20, 3))
    x = ballistic(100, v, 0.5, rng.uniform(0, 3, (20, 3)))
    t = np.arange(100) * 0.5
    expected = (v**2).sum(axis=1).mean() * t**2
    np.testing.assert_allclose(msd_fft(x).sum(axis=1), expected, rtol=1e-9, atol=1e-9)


def test_cross_msd_against_brute_force_and_msd(rng):
    x = rng.normal(size=(80, 3)).cumsum(axis=0)
    y = 0.5 * x + rng.normal(size=(80, 3)).cumsum(axis=0)
    ref = np.zeros_like(x)
    for m in range(1, 80):
        ref[m] = ((x[m:] - x[:-m]) * (y[m:] - y[:-m])).mean(axis=0)
    np.testing.assert_allclose(cross_msd_fft(x, y), ref, atol=1e-9)
    np.testing.assert_allclose(cross_msd_fft(x, x), msd_fft(x[:, None, :]), atol=1e-9)


def test_bad_shapes_raise(rng):
    with pytest.raises(ValueError):
        msd_fft(np.zeros((10, 3)))
    with pytest.raises(ValueError):
        msd_fft(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError):
        cross_msd_fft(np.zeros((5, 3)), np.zeros((6, 3)))


def test_msd_curve_matches_mdanalysis_einstein_msd(tmp_path, rng):
    pytest.importorskip("tidynamics")
    mda = pytest.importorskip("MDAnalysis")
    from MDAnalysis.analysis.msd import EinsteinMSD

    from aseimd.analysis.groups import load_positions, make_group
    from aseimd.analysis.trajectory import Trajectory

    pos = brownian(rng, 300, 25, 1.0, 0.02, (3.0, 3.0, 3.0))
    top, traj = write_trajectory(tmp_path, pos, (3.0, 3.0, 3.0), ions(25, "LI", "LI", "Li"))
    t = Trajectory(top, traj)
    p = load_positions(t, [make_group(t, "Li", "all", com=False)], drift="none")
    ours = msd_fft(p.of("Li")).sum(axis=1)

    u = mda.Universe(str(top), str(traj))
    ref = EinsteinMSD(u, select="all", msd_type="xyz", fft=True).run().results.timeseries  # Angstrom^2
    np.testing.assert_allclose(ours[1:], ref[1:] / 100.0, rtol=1e-5)
