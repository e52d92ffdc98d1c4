"""The automatic coordination cut-off: the first significant minimum of g(r) (aseimd.analysis.rdf_minimum).

Closed-form truths: a hand-placed shell with an empty gap before a uniform background (the minimum is the
gap), a shallow but real dip of known position (Poisson counts from a known g), and the ideal gas (no
minimum at all: the false-alarm rate of the rule), with independent and with time-correlated frames.
"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import ions, write_trajectory

from aseimd.analysis.coordination import coordination
from aseimd.analysis.rdf import RDFAccumulator, first_minimum_of
from aseimd.analysis.rdf_minimum import (
    Z_SIGMA,
    first_minimum,
    local_maxima,
    prominences,
    smoothing_matrix,
)
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

BOX_NM = 3.0


# --- the numpy pieces against scipy (the old rule's numbers must not move) ----------------------------------

@pytest.mark.parametrize("sigma_bins", [0.7, 2.0, 3.3])
def test_smoothing_matrix_equals_scipy_gaussian_filter(rng, sigma_bins):
    from scipy.ndimage import gaussian_filter1d

    g = rng.exponential(size=150)
    np.testing.assert_allclose(smoothing_matrix(150, sigma_bins) @ g,
                               gaussian_filter1d(g, sigma_bins, mode="nearest"), rtol=1e-12, atol=1e-14)


def test_extrema_and_prominences_equal_scipy(rng):
    from scipy.signal import find_peaks, peak_prominences

    for _ in range(20):
        x = np.round(rng.normal(size=200), 1)  # rounding makes flat maxima
        ours, (theirs, _) = local_maxima(x), find_peaks(x)
        np.testing.assert_array_equal(ours, theirs)
        np.testing.assert_allclose(prominences(x, ours), peak_prominences(x, theirs)[0], rtol=0, atol=1e-12)


def test_unknown_rule_is_refused():
    r = np.arange(0.0025, 1.0, 0.005)
    with pytest.raises(AnalysisError, match="unknown cut-off rule 'sharpest'; allowed: significance, prominence"):
        first_minimum(r, np.ones_like(r), rule="sharpest")
    with pytest.raises(AnalysisError, match="needs the pair counts"):
        first_minimum(r, np.ones_like(r), rule="significance")


def test_block_histograms_add_up_to_the_whole_run(rng):
    acc = RDFAccumulator(1.0, 0.01, n_centers=3, n_pairs=30, n_frames=23)
    for f in range(23):
        acc.add_frame(rng.uniform(0, 1.2, 30), volume_nm3=27.0 + rng.normal(), n_pairs=30 - f % 4)
    rdf = acc.result()
    assert rdf.block_g.shape == (10, 100) and rdf.block_weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(rdf.block_weights @ rdf.block_g, rdf.g, rtol=1e-12)


# --- a hand-placed shell, an empty gap, a uniform background ------------------------------------------------

R_SHELL, R_GAP_END = 0.21, 0.35


def _shell_and_background(rng, n_frames, n_li=8, per_li=4, n_background=150):
    """Every Li+ has ``per_li`` O at exactly R_SHELL; the other O are uniform but never within R_GAP_END of
    a Li+ (so g = 0 on (R_SHELL, R_GAP_END) exactly: the first minimum is anywhere in that gap). The Li+
    sit on a 2x2x2 lattice (1.5 nm apart) jittered by up to 0.2 nm, so no Li+ is within 1.1 nm of
    another and no O of another shell enters the gap."""
    n_o = n_li * per_li + n_background
    xyz = np.empty((n_frames, n_li + n_o, 3))
    for f in range(n_frames):
        lattice = 0.75 + 1.5 * np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, -1).T
        li = lattice[:n_li] + rng.uniform(-0.2, 0.2, (n_li, 3))
        u = rng.normal(size=(n_li * per_li, 3))
        bound = np.repeat(li, per_li, axis=0) + R_SHELL * u / np.linalg.norm(u, axis=1, keepdims=True)
        others = []
        while len(others) < n_background:
            p = rng.uniform(0, BOX_NM, 3)
            d = li - p
            d -= BOX_NM * np.round(d / BOX_NM)
            if np.min(np.linalg.norm(d, axis=1)) >= R_GAP_END:
                others.append(p)
        xyz[f] = np.vstack([li, bound, np.array(others)]) % BOX_NM
    return xyz, ions(n_li, "LI", "LI", "Li") + ions(n_o, "OW", "O", "O")


@pytest.mark.parametrize("n_frames", [3, 120], ids=["few-frames", "many-frames"])
def test_cutoff_lands_in_the_gap_after_a_hand_placed_shell(tmp_path, rng, n_frames):
    xyz, residues = _shell_and_background(rng, n_frames)
    top, traj = write_trajectory(tmp_path, xyz, [BOX_NM] * 3, residues)
    res = coordination(Trajectory(top, traj), {"Li": "resname LI"}, {"O": "resname OW"}, r_max_nm=1.0)
    p = res.pairs["O"]
    fm = p.first_minimum
    assert p.cutoff_source == "auto" and fm.method == "significance" and fm.found
    assert p.r_peak_nm == pytest.approx(R_SHELL, abs=0.005)
    # the smoothing (0.01 nm) spreads the edges by ~0.03 nm: the minimum must be well inside the gap
    assert R_SHELL + 0.02 < p.cutoff_nm < R_GAP_END - 0.02
    assert fm.depth_sigma >= Z_SIGMA and fm.rise_sigma >= Z_SIGMA
    assert p.cn == pytest.approx(4.0)  # exactly the hand-placed shell
    doc = p.to_dict()["first_minimum"]
    assert doc["method"] == "significance" and doc["rise_sigma"] == pytest.approx(fm.rise_sigma)
    assert "sigma" in p.cutoff_note


# --- a shallow but real dip ------------------------------------------------------------------------------------

R_EDGES = np.arange(0.0, 1.0 + 1e-9, 0.005)
R_MID = 0.5 * (R_EDGES[1:] + R_EDGES[:-1])
SHELL_NM3 = 4.0 / 3.0 * np.pi * (R_EDGES[1:] ** 3 - R_EDGES[:-1] ** 3)


def _shallow_g(r):
    """A Li-O-like g: a sharp first peak (g ~ 20) at 0.21 nm, a low region (g ~ 0.25) with a dip to 0.20 at
    0.30 nm, a weak second shell at 0.40 nm, then lower again (an interface cell: the ligand only in part
    of the cell). The dip's prominence is 0.085 (as in the quickstart report), below the fixed rule's 0.1."""
    onset = 1.0 / (1.0 + np.exp(-(r - 0.175) / 0.005))
    return (20.0 * np.exp(-0.5 * ((r - 0.21) / 0.012) ** 2)
            + onset * (0.25 - 0.05 * np.exp(-0.5 * ((r - 0.30) / 0.025) ** 2)
                       + 0.035 * np.exp(-0.5 * ((r - 0.40) / 0.03) ** 2)
                       - 0.12 / (1.0 + np.exp(-(r - 0.60) / 0.03))))


def _poisson_rdf(rng, g_true, pair_frames, n_blocks=10, volume_nm3=27.0):
    """The RDF an accumulator gives for Poisson counts of mean g_true * pair_frames * V_shell / V, fed as
    n_blocks frames (so the block histograms are those of independent frames)."""
    acc = RDFAccumulator(1.0, 0.005, n_centers=20, n_pairs=pair_frames // n_blocks, n_frames=n_blocks)
    lam = g_true * (pair_frames // n_blocks) * SHELL_NM3 / volume_nm3
    for _ in range(n_blocks):
        acc.add_frame(np.repeat(R_MID, rng.poisson(lam)), volume_nm3)
    return acc.result()


def test_a_shallow_real_dip_is_found_where_the_fixed_rule_skipped_it(rng):
    fine = np.arange(0.25, 0.38, 1e-5)
    true_min = fine[np.argmin(_shallow_g(fine))]
    assert true_min == pytest.approx(0.30, abs=0.001)
    new_found, old_found, errors = 0, 0, []
    n_real = 40
    for _ in range(n_real):  # 20 Li+ x 120 O x 1000 frames: ~100 pairs per 0.005 nm bin at the dip
        rdf = _poisson_rdf(rng, _shallow_g(R_MID), 20 * 120 * 1000)
        new = first_minimum_of(rdf)
        old = first_minimum_of(rdf, rule="prominence")
        old_found += old.found and abs(old.r_min_nm - true_min) < 0.03
        if new.found:
            new_found += 1
            errors.append(new.r_min_nm - true_min)
    assert old_found <= 0.2 * n_real  # the fixed rule: the rise (0.085 + noise) is mostly under its 0.1
    assert new_found >= 0.9 * n_real
    assert np.max(np.abs(errors)) < 0.03


def test_in_ten_times_fewer_counts_the_dip_is_claimed_only_where_it_is(rng):
    """Ten times fewer pairs: the 0.085 rise is ~3 sigma, so the rule often cannot place the dip and says
    so (no cut-off, the best candidate's significance below 4); when it does claim one, it is the real
    dip. (On this data the fixed rule gives a cut-off in some realisations and none in others: noise
    pushing the rise over its 0.1 decides.)"""
    true_min = 0.30
    claimed = 0
    for _ in range(40):
        fm = first_minimum_of(_poisson_rdf(rng, _shallow_g(R_MID), 20 * 120 * 100))
        if fm.found:
            claimed += 1
            assert abs(fm.r_min_nm - true_min) < 0.035
        else:
            assert fm.best_sigma < Z_SIGMA and fm.to_dict()["best_rejected"]["sigma"] == fm.best_sigma
    assert 0 < claimed < 40


# --- the ideal gas: no minimum to find ----------------------------------------------------------------------

def _ideal_gas_rdf(rng, n_c, n_s, n_frames, hold=1):
    """g(r) of uniform random centres and shell atoms; a configuration is kept for ``hold`` frames
    (time-correlated frames: their counts scatter ``hold`` times more than Poisson)."""
    acc = RDFAccumulator(1.0, 0.005, n_c, n_c * n_s, n_frames=n_frames)
    for f in range(n_frames):
        if f % hold == 0:
            a, b = rng.uniform(0, BOX_NM, (n_c, 3)), rng.uniform(0, BOX_NM, (n_s, 3))
            d = b[None] - a[:, None]
            d -= BOX_NM * np.round(d / BOX_NM)
            dist = np.sqrt((d * d).sum(-1)).ravel()
        acc.add_frame(dist, BOX_NM**3)
    return acc.result()


@pytest.mark.parametrize("n_c,n_s,n_frames,hold", [(8, 40, 20, 1), (10, 60, 200, 1), (10, 60, 400, 8)],
                         ids=["few-counts", "more-counts", "correlated-frames"])
def test_ideal_gas_false_alarm_rate(rng, n_c, n_s, n_frames, hold):
    """No minimum may be invented from noise. Measured family-wise rates at the stated level (4 sigma per
    side; docs/analysis_structure.md): <= 0.3 % with independent frames, 1.0 % with frames correlated over
    8 frames. Allowed here: at most 2 of 200 (independent; P(>= 3 | 200, 0.003) = 2 %, while a 3 % rule
    fails with P = 94 %) and at most 4 of 200 (correlated; P(>= 5 | 200, 0.01) = 5 %; a 5 % rule fails with
    P = 97 %). A pointwise 3-sigma rule, and for correlated frames the Poisson noise alone, invent many."""
    alarms = naive = 0
    for _ in range(200):
        rdf = _ideal_gas_rdf(rng, n_c, n_s, n_frames, hold)
        alarms += first_minimum_of(rdf).found
        if hold == 1:
            naive += first_minimum(rdf.r_nm, rdf.g, 0.01, rdf.counts, block_g=rdf.block_g,
                                   block_weights=rdf.block_weights, z_sigma=3.0).found
        else:
            naive += first_minimum(rdf.r_nm, rdf.g, 0.01, rdf.counts).found  # Poisson only: blind to `hold`
    assert alarms <= (2 if hold == 1 else 4)
    assert naive >= 10  # the look-elsewhere effect (3 sigma) / the correlation (Poisson only) are real
