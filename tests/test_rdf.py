"""Minimum-image neighbour search and RDF normalisation (aseimd.analysis.neighbors, aseimd.analysis.rdf)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from synthetic import ions, write_trajectory

from aseimd.analysis.coordination import coordination
from aseimd.analysis.neighbors import (
    half_min_width,
    is_orthorhombic,
    minimum_image,
    neighbor_pairs,
    pair_distances,
)
from aseimd.analysis.rdf import RDFAccumulator, first_minimum
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

ORTHO = np.diag([2.0, 2.5, 3.0])
# OpenMM reduced form: a along x, b in the xy plane, |b_x| <= a_x/2, |c_x| <= a_x/2, |c_y| <= b_y/2
TRICLINIC = np.array([[2.4, 0.0, 0.0], [0.9, 2.2, 0.0], [-1.1, 0.8, 2.6]])


def slow_distances(a, b, box, reach=4):
    """Obvious double loop over atoms, shortest of all images within +-reach cells."""
    shifts = np.array(list(itertools.product(range(-reach, reach + 1), repeat=3)), float) @ box
    out = np.empty((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            out[i, j] = np.min(np.linalg.norm(q - p + shifts, axis=1))
    return out


@pytest.mark.parametrize("box", [ORTHO, TRICLINIC], ids=["orthorhombic", "triclinic"])
def test_pair_distances_match_double_loop(rng, box):
    a = rng.uniform(-1.0, 2.0, (17, 3)) @ box  # some atoms outside the cell
    b = rng.uniform(-0.5, 1.5, (23, 3)) @ box
    np.testing.assert_allclose(pair_distances(a, b, box), slow_distances(a, b, box), atol=1e-12)


@pytest.mark.parametrize("box", [ORTHO, TRICLINIC], ids=["kdtree", "numpy-triclinic"])
def test_neighbor_pairs_match_double_loop(rng, box):
    a = rng.uniform(-1.0, 2.0, (40, 3)) @ box
    b = rng.uniform(0.0, 1.0, (60, 3)) @ box
    r = 0.9 * half_min_width(box)
    i, j, d = neighbor_pairs(a, b, box, r)
    full = slow_distances(a, b, box)
    ii, jj = np.nonzero(full < r)
    assert len(ii) > 100
    np.testing.assert_array_equal(i, ii)
    np.testing.assert_array_equal(j, jj)
    np.testing.assert_allclose(d, full[ii, jj], atol=1e-9)


def test_kdtree_path_equals_numpy_path(rng):
    from aseimd.analysis import neighbors

    a = rng.uniform(0, 1, (50, 3)) @ ORTHO
    b = rng.uniform(0, 1, (70, 3)) @ ORTHO
    k = neighbors._pairs_kdtree(a, b, np.diag(ORTHO), 0.8)
    n = neighbors._pairs_numpy(a, b, ORTHO, 0.8)
    ok, on = np.lexsort((k[1], k[0])), np.lexsort((n[1], n[0]))
    for x, y in zip(k, n, strict=True):
        np.testing.assert_allclose(x[ok], y[on], atol=1e-12)


def test_minimum_image_across_the_boundary():
    box = np.diag([3.0, 3.0, 3.0])
    dr = minimum_image(np.array([2.95 - 0.05, 0.0, -2.9]), box)
    np.testing.assert_allclose(dr, [-0.1, 0.0, 0.1], atol=1e-12)
    i, j, d = neighbor_pairs(np.array([[0.05, 1.0, 1.0]]), np.array([[2.95, 1.0, 1.0], [1.5, 1, 1]]), box, 0.5)
    assert list(j) == [0] and d[0] == pytest.approx(0.1)


def test_box_helpers():
    assert is_orthorhombic(ORTHO) and not is_orthorhombic(TRICLINIC)
    assert half_min_width(ORTHO) == pytest.approx(1.0)
    # width along c of the triclinic cell is its z extent (a, b lie in the xy plane)
    assert half_min_width(TRICLINIC) <= 0.5 * 2.2 + 1e-12
    with pytest.raises(AnalysisError, match="half the shortest box width"):
        neighbor_pairs(np.zeros((1, 3)), np.zeros((1, 3)), ORTHO, 1.2)


def test_rdf_normalisation_of_one_pair_at_known_distance():
    acc = RDFAccumulator(1.0, 0.1, n_centers=1, n_pairs=1)
    acc.add_frame(np.array([0.25]), volume_nm3=8.0)
    rdf = acc.result()
    shell = 4 / 3 * np.pi * (0.3**3 - 0.2**3)
    assert rdf.g[2] == pytest.approx(8.0 / shell)
    assert rdf.g.sum() == pytest.approx(rdf.g[2])
    np.testing.assert_allclose(rdf.n_edges, [0, 0, 0] + [1] * 8)


@pytest.mark.parametrize("overlap", [True, False], ids=["same-group", "two-groups"])
def test_ideal_gas_gives_g_equal_one(tmp_path, rng, overlap):
    n_atoms, n_frames = 240, 30
    edges = rng.uniform(2.8, 3.4, (n_frames, 3))  # a fluctuating (NPT-like) box
    xyz = rng.uniform(0, 1, (n_frames, n_atoms, 3)) * edges[:, None, :]
    top, traj = write_trajectory(tmp_path, xyz, edges, ions(n_atoms // 2, "LI", "LI", "Li")
                                 + ions(n_atoms // 2, "NA", "NA", "Na"))
    shell = "all" if overlap else "resname NA"
    res = coordination(Trajectory(top, traj), {"A": "resname LI" if not overlap else "all"},
                       {"B": shell}, r_max_nm=1.35, bin_nm=0.05)
    p = res.pairs["B"]
    n_c = n_atoms if overlap else n_atoms // 2
    n_pairs = n_c * (n_c - 1) if overlap else n_c * n_c
    vol = np.prod(edges, axis=1)
    e = p.rdf.edges_nm
    expected = n_frames * n_pairs * 4 / 3 * np.pi * (e[1:] ** 3 - e[:-1] ** 3) / vol.mean()
    ok = expected > 300
    assert ok.sum() >= 20
    assert np.all(np.abs(p.rdf.g[ok] - 1.0) < 5.0 / np.sqrt(expected[ok]))
    assert np.mean(p.rdf.g[ok]) == pytest.approx(1.0, abs=0.01)
    # running coordination number of an ideal gas: n(r) = rho_pairs 4/3 pi r^3
    rho = n_pairs / n_c * np.mean(1.0 / vol)
    np.testing.assert_allclose(p.rdf.n_edges[10:], rho * 4 / 3 * np.pi * e[10:] ** 3, rtol=0.03)


def _model_g(r):
    return (8.0 * np.exp(-((r - 0.21) / 0.015) ** 2) + 1.3 * np.exp(-((r - 0.45) / 0.05) ** 2)
            + (r > 0.5) * (1 - np.exp(-(r - 0.5) / 0.1)) * 1.0) * (r > 0.17)


def test_first_minimum_of_a_noisy_rdf(rng):
    r = np.arange(0.0025, 1.0, 0.005)
    fine = np.arange(0.25, 0.45, 1e-5)
    true_min = fine[np.argmin(_model_g(fine))]
    g = _model_g(r) + rng.normal(scale=0.08, size=r.size) * (r > 0.17)
    fm = first_minimum(r, g)
    assert fm.found
    assert fm.r_peak_nm == pytest.approx(0.21, abs=0.006)
    assert fm.r_min_nm == pytest.approx(true_min, abs=0.02)


def test_first_minimum_absent():
    r = np.arange(0.0025, 1.0, 0.005)
    monotone = 1 - np.exp(-r / 0.2)
    assert not first_minimum(r, monotone).found
    assert not first_minimum(r, np.zeros_like(r)).found


def test_first_minimum_ignores_a_stray_pair_at_small_r():
    # one pair at 0.02 nm in a tiny shell volume gives g far above the real first peak at 0.21 nm
    r = np.arange(0.0025, 1.0, 0.005)
    shell = 4 / 3 * np.pi * ((r + 0.0025) ** 3 - (r - 0.0025) ** 3)
    g = _model_g(r)
    counts = np.round(g * shell * 200.0)
    g_obs = counts / (shell * 200.0)
    stray = np.searchsorted(r, 0.02)
    counts[stray] = 1.0
    g_obs[stray] = 1.0 / (shell[stray] * 200.0)
    assert g_obs[stray] > 3 * g_obs.max(where=np.arange(r.size) != stray, initial=0)
    assert first_minimum(r, g_obs).r_peak_nm < 0.1  # fooled without the counts
    fm = first_minimum(r, g_obs, counts=counts)
    assert fm.r_peak_nm == pytest.approx(0.21, abs=0.006)
    assert 0.25 < fm.r_min_nm < 0.4


def test_first_minimum_after_sharp_ion_peak():
    """Li+-O(carbonyl)-like g(r): a peak of ~30 at 0.21 nm, a dip to ~0.05 and a weak second
    shell (g ~ 0.7). The dip is the cut-off even though the second shell is far below 5 % of
    the first peak (a real case from a 1 M LiPF6 EC/DMC run)."""
    r = np.arange(0.0025, 1.0, 0.005)
    g = (30.0 * np.exp(-0.5 * ((r - 0.21) / 0.012) ** 2)
         + 0.7 / (1 + np.exp(-(r - 0.42) / 0.02)))
    fm = first_minimum(r, g)
    assert fm.r_peak_nm == pytest.approx(0.21, abs=0.006)
    assert 0.26 < fm.r_min_nm < 0.40
