"""The first minimum of g(r) (the automatic coordination cut-off), with a noise-aware significance test.

Smoothing. g is smoothed with a Gaussian of standard deviation ``smooth_nm``
(default 0.01 nm = 2 bins of 0.005 nm), kernel truncated at 4 sigma, the ends
extended with the end values: the numbers of
``scipy.ndimage.gaussian_filter1d(g, sigma, mode="nearest")``, written as a
matrix W so that the smoothed curve is gs = W g and its noise propagates
linearly. Bins whose pair count (summed over frames, smoothed the same way) is
below ``min_count`` (0.5) count as g = 0 when the first peak is sought: at
small r one or two stray pairs in a tiny shell volume give a huge g that would
otherwise pose as the first peak (a single count smooths to about 0.2).

First peak: the first local maximum of that curve whose prominence is at least
10 % of its highest value (as before).

First minimum, noise-aware rule (``method="significance"``; used whenever the
pair counts are known, i.e. for every g(r) that aseimd computes). The
candidates are the local minima m of gs after the first peak, in order of r
(a flat minimum is represented by the centre of the flat range). A candidate's
two sides are those of its prominence: to the left (right) every bin up to the
first one that is lower than gs[m]. On each side the significance is the
largest t_j = (gs[j] - gs[m]) / sigma(gs[j] - gs[m]) over the side's bins: the
*depth* below the peak on the left, the *rise* after the dip on the right. The
cut-off is the first candidate whose depth and rise both reach ``z_sigma``
(default 4) and whose plain differences max_j (gs[j] - gs[m]) on both sides
reach ``min_dip`` (0.02 in units of g: the floor that a noise-free g still
needs). A wiggle that is not significant does not end the dip: the next lower
point of the same dip is the next candidate, so the cut-off is the lowest
point of the first significant dip.

Noise of a difference, from the histogram itself:

* counting statistics: bin k holds c_k counted pairs (summed over frames) and
  g_k = a_k c_k, so var(g_k) = g_k^2 / c_k for Poisson counts (var c = c), and
  the bins are independent: var(gs_j - gs_m) = sum_k (W_jk - W_mk)^2 var(g_k).
  Exact for uncorrelated pairs (an ideal gas), but blind to correlations: the
  pairs of one frame share a centre's shell, and a shell that persists makes
  consecutive frames alike, so the counts of an MD run scatter more than Poisson.
* frame blocks: the frames are cut into B = min(10, n_frames) consecutive
  blocks, each with its own g_b (g = sum_b w_b g_b exactly, w_b = the block's
  share of the counted pairs). The block variance of each smoothed point,
  B/(B-1) sum_b w_b^2 (gs_bj - gs_j)^2, holds every correlation shorter than a
  block, but has only B - 1 = 9 degrees of freedom, and a search over many bins
  would find the places where it is small by chance. So its ratio to the
  Poisson variance of the same point, the inflation kappa(r), is pooled over r
  (ratio of sums weighted by a Gaussian of ``POOL_NM`` = 0.05 nm) and floored
  at 1: var(g_k) = max(1, kappa(r_k)) g_k^2 / c_k. With fewer than 3 blocks,
  Poisson alone.

Why 4 sigma and not 3: the test looks at every bin of both sides of every
candidate (the look-elsewhere effect). On ideal-gas histograms (g = 1 with
Poisson counts, 0-1 nm in 0.005 nm bins) a pointwise 3-sigma rule invents a
minimum in 10-18 % of realisations; at 4 sigma in at most 0.3 % (1 % with
strongly time-correlated frames)
(``tests/test_rdf_minimum.py``; numbers in docs/analysis_structure.md).

Without the counts (``counts=None``: a bare curve, no noise known) the old
rule is used (``method="prominence"``): the first minimum after the peak whose
prominence is at least 5 % of min(peak height, 2) and at least 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.errors import AnalysisError

#: Significance (in combined sigma, per side) a dip needs to be the cut-off.
Z_SIGMA = 4.0
#: Absolute floor on the depth and the rise of the dip, in units of g.
MIN_DIP = 0.02
#: Frame blocks of the RDF noise estimate (fewer when there are fewer frames; none below 3).
NOISE_BLOCKS = 10
#: Width (Gaussian sigma, nm) over which the block/Poisson variance ratio is pooled.
POOL_NM = 0.05
#: Values of FirstMinimum.method (and of ``rule=``).
METHOD_SIGNIFICANCE = "significance"
METHOD_PROMINENCE = "prominence"
#: The rules :func:`first_minimum` knows (``rule=``; the CLI's ``--cutoff-rule``).
RULES = (METHOD_SIGNIFICANCE, METHOD_PROMINENCE)


@dataclass(frozen=True)
class FirstMinimum:
    """Result of :func:`first_minimum`.

    Attributes
    ----------
    r_peak_nm : float
        Position of the first peak of the smoothed g(r), in nm (NaN if none).
    g_peak : float
        Smoothed g at the peak.
    r_min_nm : float
        Position of the first minimum after the peak, in nm (NaN if none).
    g_min : float
        Smoothed g at the minimum.
    method : str
        ``"significance"`` (noise-aware rule) or ``"prominence"`` (fixed thresholds, no counts given).
    depth : float
        Largest gs[j] - gs[m] on the left side of the dip (in units of g; NaN if none).
    depth_sigma : float
        Largest significance of that difference over the left side (NaN without counts).
    rise : float
        Largest gs[j] - gs[m] on the right side of the dip.
    rise_sigma : float
        Largest significance on the right side.
    z_sigma : float
        Significance each side needed (NaN for the prominence rule).
    min_dip : float
        Floor on depth and rise (for the prominence rule: the prominence threshold).
    noise : str
        How sigma was estimated.
    best_r_nm, best_sigma : float
        When no dip passed: the candidate with the largest min(depth_sigma, rise_sigma), and that value.
    """

    r_peak_nm: float
    g_peak: float
    r_min_nm: float
    g_min: float
    method: str = METHOD_PROMINENCE
    depth: float = float("nan")
    depth_sigma: float = float("nan")
    rise: float = float("nan")
    rise_sigma: float = float("nan")
    z_sigma: float = float("nan")
    min_dip: float = float("nan")
    noise: str = "none"
    best_r_nm: float = float("nan")
    best_sigma: float = float("nan")

    @property
    def found(self) -> bool:
        """Whether both the peak and the minimum were found."""
        return bool(np.isfinite(self.r_min_nm))

    def to_dict(self) -> dict:
        """JSON-ready description of how the minimum was (or was not) found."""
        out = {
            "method": self.method,
            "r_min_nm": self.r_min_nm if self.found else None,
            "g_min": self.g_min if self.found else None,
            "depth": _num(self.depth),
            "depth_sigma": _num(self.depth_sigma),
            "rise": _num(self.rise),
            "rise_sigma": _num(self.rise_sigma),
            "z_sigma_required": _num(self.z_sigma),
            "min_dip": _num(self.min_dip),
            "noise": self.noise,
        }
        if not self.found and np.isfinite(self.best_r_nm):
            out["best_rejected"] = {"r_nm": self.best_r_nm, "sigma": self.best_sigma}
        return out

    def describe(self) -> str:
        """A short phrase for the screen, e.g. ``dip 6.1 sigma``."""
        if not self.found:
            return "no first minimum"
        if self.method == METHOD_SIGNIFICANCE:
            return f"dip {min(self.depth_sigma, self.rise_sigma):.1f} sigma"
        return f"dip prominence {min(self.depth, self.rise):.3f}"


def _num(x: float):
    return float(x) if np.isfinite(x) else None


def smoothing_matrix(n: int, sigma_bins: float) -> np.ndarray:
    """W such that W @ g equals ``scipy.ndimage.gaussian_filter1d(g, sigma_bins, mode="nearest")``.

    Returns
    -------
    numpy.ndarray, shape=(n, n)
        Row k holds the weights of the smoothed bin k (each row sums to 1).
    """
    if sigma_bins <= 0:
        return np.eye(n)
    radius = int(4.0 * sigma_bins + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma_bins * sigma_bins) * x**2)
    phi = phi / phi.sum()
    rows = np.repeat(np.arange(n), x.size)
    cols = np.clip(rows + np.tile(x, n), 0, n - 1)
    w = np.zeros((n, n))
    np.add.at(w, (rows, cols), np.tile(phi, n))
    return w


def local_maxima(x: np.ndarray) -> np.ndarray:
    """Indices of the local maxima of ``x`` (a flat maximum: the centre of its flat range; no end points).

    The same maxima as ``scipy.signal.find_peaks(x)``.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    # compress runs of equal values, find strict maxima of the runs, map back to the run centres
    change = np.concatenate([[True], x[1:] != x[:-1]])
    starts = np.nonzero(change)[0]
    ends = np.concatenate([starts[1:], [n]]) - 1
    v = x[starts]
    if v.size < 3:
        return np.zeros(0, dtype=np.int64)
    peak = np.zeros(v.size, dtype=bool)
    peak[1:-1] = (v[1:-1] > v[:-2]) & (v[1:-1] > v[2:])
    return ((starts[peak] + ends[peak]) // 2).astype(np.int64)


def _sides(x: np.ndarray, k: int) -> tuple[int, int]:
    """First and last index of the range around maximum ``k`` of ``x`` up to (not including) a higher sample."""
    higher_left = np.nonzero(x[:k] > x[k])[0]
    higher_right = np.nonzero(x[k + 1:] > x[k])[0]
    lo = int(higher_left[-1]) + 1 if higher_left.size else 0
    hi = k + int(higher_right[0]) if higher_right.size else x.size - 1
    return lo, hi


def prominences(x: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Prominence of each peak (as ``scipy.signal.peak_prominences`` without a window)."""
    x = np.asarray(x, dtype=float)
    out = np.empty(len(peaks))
    for n, k in enumerate(peaks):
        lo, hi = _sides(x, int(k))
        out[n] = x[k] - max(x[lo:k + 1].min(), x[k:hi + 1].min())
    return out


def first_minimum(
    r_nm: np.ndarray,
    g: np.ndarray,
    smooth_nm: float = 0.01,
    counts: np.ndarray | None = None,
    min_count: float = 0.5,
    *,
    block_g: np.ndarray | None = None,
    block_weights: np.ndarray | None = None,
    z_sigma: float = Z_SIGMA,
    min_dip: float = MIN_DIP,
    rule: str | None = None,
) -> FirstMinimum:
    """Locate the first peak of g(r) and the first significant minimum after it (see module doc).

    Parameters
    ----------
    r_nm : numpy.ndarray, shape=(n,)
        Evenly spaced radii (bin centres) in nm.
    g : numpy.ndarray, shape=(n,)
        g(r) values.
    smooth_nm : float
        Standard deviation of the Gaussian smoothing, in nm (0 disables smoothing).
    counts : numpy.ndarray, shape=(n,), optional
        Pair counts behind each bin (summed over frames): they set the noise of g (noise-aware
        rule) and, where their smoothed value is below ``min_count``, the smoothed g is set to 0
        while the first peak is sought. Without them the fixed-prominence rule is used.
    min_count : float
        Smoothed count per bin below which g is treated as 0 for the peak.
    block_g : numpy.ndarray, shape=(n_blocks, n), optional
        g(r) of consecutive frame blocks (``RDF.block_g``), for the block noise estimate.
    block_weights : numpy.ndarray, shape=(n_blocks,), optional
        Each block's share of the counted pairs (``g = block_weights @ block_g``).
    z_sigma : float
        Significance each side of the dip needs, in combined sigma.
    min_dip : float
        Absolute floor on the depth and the rise, in units of g.
    rule : {"significance", "prominence"}, optional
        Force a rule; default: ``"significance"`` when ``counts`` are given, else ``"prominence"``.

    Returns
    -------
    FirstMinimum
    """
    if rule is None:
        rule = METHOD_PROMINENCE if counts is None else METHOD_SIGNIFICANCE
    check_rule(rule)
    if rule == METHOD_SIGNIFICANCE and counts is None:
        raise AnalysisError("the significance rule needs the pair counts of g(r) (counts=...)")
    r = np.asarray(r_nm, dtype=float)
    g = np.asarray(g, dtype=float)
    nan = float("nan")
    if len(r) < 3 or not np.any(g > 0):
        return FirstMinimum(nan, nan, nan, nan, rule)
    dr = float(r[1] - r[0])
    w = smoothing_matrix(len(r), smooth_nm / dr if smooth_nm > 0 else 0.0)
    gs = w @ g
    peak_curve = gs
    if counts is not None:
        c = np.asarray(counts, dtype=float)
        peak_curve = np.where(w @ c >= min_count, gs, 0.0)
    top = float(np.max(peak_curve))
    # pad with a zero on the left so a peak at the first bins still counts as a peak
    padded = np.concatenate([[0.0], peak_curve])
    peaks = local_maxima(padded)
    peaks = peaks[prominences(padded, peaks) >= 0.1 * top] - 1
    if len(peaks) == 0:
        return FirstMinimum(nan, nan, nan, nan, rule)
    p = int(peaks[0])
    g_peak = float(peak_curve[p])
    if rule == METHOD_PROMINENCE:
        return _prominence_rule(r, peak_curve, p, g_peak)
    return _significance_rule(r, g, gs, w, c, p, g_peak, block_g, block_weights, z_sigma, min_dip)


def check_rule(rule: str) -> None:
    """AnalysisError unless ``rule`` is one of :data:`RULES`."""
    if rule not in RULES:
        raise AnalysisError(f"unknown cut-off rule {rule!r}; allowed: {', '.join(RULES)}")


def _prominence_rule(r, gs, p, g_peak) -> FirstMinimum:
    # The dip must rise again by a noticeable amount on its right. Scaling that with the
    # first peak height would reject the real minimum of sharp ion-solvent peaks (g ~ 30
    # followed by a second shell of g < 1), so the scale is capped at g = 2.
    threshold = max(0.05 * min(g_peak, 2.0), 0.05)
    minima = local_maxima(-gs)
    minima = minima[prominences(-gs, minima) >= threshold]
    minima = minima[minima > p]
    if len(minima) == 0:
        return FirstMinimum(float(r[p]), g_peak, float("nan"), float("nan"), min_dip=threshold)
    m = int(minima[0])
    lo, hi = _sides(-gs, m)
    depth = float(gs[lo:m + 1].max() - gs[m])
    rise = float(gs[m:hi + 1].max() - gs[m])
    return FirstMinimum(float(r[p]), g_peak, float(r[m]), float(gs[m]), depth=depth, rise=rise,
                        min_dip=threshold)


def _significance_rule(r, g, gs, w, c, p, g_peak, block_g, block_weights, z_sigma, min_dip) -> FirstMinimum:
    n = len(r)
    dr = float(r[1] - r[0])
    # Poisson variance of each raw bin, g_k^2 / c_k (0 where no pair was counted)
    v = np.divide(g * g, c, out=np.zeros(n), where=c > 0)
    noise = "Poisson counts"
    if block_g is not None and block_weights is not None and len(block_weights) >= 3:
        v = v * _block_inflation(w, v, gs, np.asarray(block_g, dtype=float), np.asarray(block_weights, dtype=float),
                                 POOL_NM / dr)
        noise = f"Poisson counts x max(1, frame-block inflation), {len(block_weights)} blocks"
    s_self = (w * w) @ v  # sum_k W_jk^2 v_k for every j
    minima = local_maxima(-gs)
    best = (float("nan"), -np.inf)
    for m in minima[minima > p]:
        m = int(m)
        lo, hi = _sides(-gs, m)
        if lo == m or hi == m:
            continue  # a dip at the end of the range has no rise to test
        diff = gs - gs[m]
        band = np.nonzero(w[m])[0]  # the bins smoothed into gs_m
        cross = w[:, band] @ (w[m, band] * v[band])
        var = np.maximum(s_self + s_self[m] - 2.0 * cross, 0.0)  # var(gs_j - gs_m)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(var > 0, diff / np.sqrt(var), np.where(diff > 0, np.inf, 0.0))
        left, right = slice(lo, m), slice(m + 1, hi + 1)
        depth_sigma, rise_sigma = float(t[left].max()), float(t[right].max())
        depth, rise = float(diff[left].max()), float(diff[right].max())
        if min(depth_sigma, rise_sigma) >= z_sigma and min(depth, rise) >= min_dip:
            return FirstMinimum(float(r[p]), g_peak, float(r[m]), float(gs[m]), METHOD_SIGNIFICANCE, depth,
                                depth_sigma, rise, rise_sigma, z_sigma, min_dip, noise)
        score = min(depth_sigma, rise_sigma) if min(depth, rise) >= min_dip else -np.inf
        if score > best[1]:
            best = (float(r[m]), score)
    nan = float("nan")
    return FirstMinimum(float(r[p]), g_peak, nan, nan, METHOD_SIGNIFICANCE, z_sigma=z_sigma, min_dip=min_dip,
                        noise=noise, best_r_nm=best[0], best_sigma=best[1] if np.isfinite(best[1]) else nan)


def _block_inflation(w, v, gs, block_g, block_weights, pool_bins) -> np.ndarray:
    """max(1, kappa(r)): the block variance of the smoothed g over its Poisson variance, pooled over r.

    Per smoothed point j the block variance B/(B-1) sum_b w_b^2 (gs_bj - gs_j)^2 has only B - 1
    degrees of freedom; the ratio of its Gaussian-weighted sum over r (width ``pool_bins``) to the
    same sum of the Poisson variances pools many points, so that the search over many bins cannot
    pick the few where the block spread is small by chance.
    """
    nb = len(block_weights)
    gsb = block_g @ w.T
    var_b = nb / (nb - 1) * ((block_weights * block_weights) @ ((gsb - gs) ** 2))
    var_p = (w * w) @ v
    pool = smoothing_matrix(len(gs), pool_bins)
    num, den = pool @ var_b, pool @ var_p
    kappa = np.divide(num, den, out=np.ones_like(num), where=den > 0)
    return np.maximum(kappa, 1.0)
