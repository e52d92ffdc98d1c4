"""Generalised least-squares Einstein fits and the objective onset of diffusion.

Line fit
--------
An Einstein curve y(m) = a + b m (m = lag in frames) is fitted over a set of
lags with the covariance shape K of :mod:`aseimd.analysis.msd_covariance`:

    beta = (X^T K^-1 X)^-1 X^T K^-1 y,    X = [1, m],

so ``slope = w . y`` with fixed weights ``w`` (the same for every curve of a
run, see the covariance module). The intercept absorbs the sub-diffusive
(ballistic, cage) offset that the short-time motion leaves in the MSD.

Onset test
----------
Candidate windows [m0, span * m0] (``span`` = :data:`WINDOW_SPAN` by default)
are scanned upwards in m0 on a logarithmic grid. For each, the GLS line is
fitted to the self MSD and the residuals are judged against the covariance
the random-walk model predicts for that curve at the fitted slope,

    chi² = r^T C^-1 r,   C = 2 b² K / (N d)    (self MSD of N particles in d directions),

with ``k - 2`` degrees of freedom. The onset is the first m0 whose window is
consistent with a straight line at the precision of the data
(p = P(chi²_{k-2} >= chi²) >= :data:`ONSET_P_VALUE`). Short-time memory
(ballistic flight, rattling in a solvation cage, an Ornstein-Uhlenbeck
component) curves the MSD and is rejected until its effect falls below the
statistical noise of the data in hand: more data pushes the onset later,
which is what keeps the bias below the error. If no window passes, the last
candidate is used and the result says so (``onset_found = False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.analysis._arrays import unique
from aseimd.analysis.msd_covariance import overlap_trace

#: Window end as a multiple of its start ("a few multiples of the onset").
WINDOW_SPAN = 4.0
#: Most lags used in one GLS fit (the MSD points are highly correlated; more add little).
MAX_FIT_POINTS = 12
#: Smallest number of lags in a fit (a chi² test needs at least one degree of freedom).
MIN_FIT_POINTS = 3
#: Onset candidates per decade of lag.
ONSET_POINTS_PER_DECADE = 12
#: A window is accepted as linear when its chi² p-value is at least this.
ONSET_P_VALUE = 0.05


@dataclass(frozen=True)
class LineFit:
    """GLS weights for a straight-line fit over fixed lags.

    Attributes
    ----------
    lags : numpy.ndarray, shape=(k,), dtype=int
        Lags in frames.
    weights : numpy.ndarray, shape=(2, k)
        ``weights @ y`` gives (intercept, slope per frame) for a curve sampled at ``lags``.
    slope_variance : float
        (X^T K^-1 X)^-1 [1, 1]: Var(slope) per unit of covariance scale.
    K : numpy.ndarray, shape=(k, k)
        Covariance shape used.
    """

    lags: np.ndarray
    weights: np.ndarray
    slope_variance: float
    K: np.ndarray

    def coefficients(self, y: np.ndarray) -> np.ndarray:
        """(intercept, slope per frame) of curve values ``y`` (shape=(k, ...)) at :attr:`lags`."""
        return np.tensordot(self.weights, np.asarray(y, float), axes=(1, 0))

    def chi2(self, y: np.ndarray, scale: float) -> float:
        """chi² of the residuals of ``y`` (shape=(k,)) for covariance ``scale * K``."""
        y = np.asarray(y, float)
        a, b = self.coefficients(y)
        r = y - (a + b * self.lags)
        if not scale > 0:
            return float("inf")
        return float(r @ np.linalg.solve(self.K * scale, r))


def window_lags(start: int, stop: int, max_points: int = MAX_FIT_POINTS) -> np.ndarray:
    """Integer lags spread evenly over [start, stop] (inclusive), at most ``max_points``."""
    if stop - start + 1 <= max_points:
        return np.arange(start, stop + 1, dtype=np.int64)
    return unique(np.round(np.linspace(start, stop, max_points)).astype(np.int64))


def line_fit(lags: np.ndarray, n_frames: int | None = None, K: np.ndarray | None = None) -> LineFit:
    """GLS weights for a line over ``lags``: covariance shape ``K``, or that of one run of ``n_frames``.

    Examples
    --------
    A noiseless line is returned exactly:

    >>> fit = line_fit(np.arange(2, 9), 200)
    >>> [round(float(v), 9) for v in fit.coefficients(0.5 + 0.25 * np.arange(2, 9))]
    [0.5, 0.25]
    """
    lags = np.asarray(lags, dtype=np.int64)
    if K is None:
        K = overlap_trace(lags, n_frames)
    X = np.stack([np.ones(lags.size), lags.astype(float)], axis=1)
    scale = float(np.max(np.diag(K)))
    Ks = K / scale  # well scaled for the solves
    KiX = np.linalg.solve(Ks, X)
    A = X.T @ KiX
    Ainv = np.linalg.inv(A)
    weights = Ainv @ KiX.T
    return LineFit(lags, weights, float(Ainv[1, 1] * scale), K)


def _chi2_sf(x: float, dof: int) -> float:
    from aseimd.analysis._distributions import chi2_sf

    return chi2_sf(float(x), int(dof))


@dataclass(frozen=True)
class Onset:
    """Result of the onset scan.

    Attributes
    ----------
    start, stop : int
        Fit window in frames (inclusive).
    found : bool
        Whether a window passed the linearity test.
    p_value : float
        chi² p-value of the chosen window.
    n_tested : int
        Candidate windows tested.
    """

    start: int
    stop: int
    found: bool
    p_value: float
    n_tested: int


def onset_candidates(max_stop: int, span: float = WINDOW_SPAN) -> np.ndarray:
    """Candidate window starts: 1 .. max_stop/span on a log grid, shape=(n,), dtype=int."""
    top = int(np.floor(max_stop / span))
    if top < 1:
        return np.array([], dtype=np.int64)
    n = max(2, int(np.ceil(np.log10(max(top, 1)) * ONSET_POINTS_PER_DECADE)) + 1)
    return unique(np.round(np.geomspace(1, top, n)).astype(np.int64))


def window_stop(start: int, span: float = WINDOW_SPAN) -> int:
    """End of the window that starts at ``start``: span x start, at least MIN_FIT_POINTS lags."""
    return int(max(round(span * start), start + MIN_FIT_POINTS - 1))


def find_onset(
    curves: list[tuple[np.ndarray, float]],
    K_of,
    max_stop: int,
    *,
    span: float = WINDOW_SPAN,
    p_min: float = ONSET_P_VALUE,
) -> Onset:
    """Scan window starts upwards; the first window where every curve is linear (chi² test) wins.

    Parameters
    ----------
    curves : list of (numpy.ndarray, float)
        ``(msd, n_eff_dims)``: an MSD curve at lags 0..n-1 frames (summed over
        directions) and N x d, the number of independent particle-directions
        averaged in it (the covariance scale is ``2 b² / (N d)``).
    K_of : callable
        ``K_of(lags) -> K``, the covariance shape of the curves at those lags
        (e.g. ``lambda lags: overlap_trace(lags, n_frames)`` for one run).
    max_stop : int
        Largest allowed window end (frames).

    Returns
    -------
    Onset
    """
    if max_stop < MIN_FIT_POINTS:
        raise ValueError(f"max_stop must be >= {MIN_FIT_POINTS}, got {max_stop}")
    starts = [s for s in onset_candidates(max_stop, span) if window_stop(int(s), span) <= max_stop]
    if not starts:
        starts = [1]
    last = None
    for n_tested, m0 in enumerate(starts, start=1):
        stop = window_stop(int(m0), span)
        if stop > max_stop:
            break
        lags = window_lags(int(m0), stop)
        fit = line_fit(lags, K=K_of(lags))
        p_all = 1.0
        for curve, n_eff in curves:
            y = np.asarray(curve, float)[fit.lags]
            b = float(fit.coefficients(y)[1])
            chi2 = fit.chi2(y, 2.0 * b * b / n_eff)
            p_all = min(p_all, _chi2_sf(chi2, fit.lags.size - 2))
        last = (int(m0), stop, p_all, n_tested)
        if p_all >= p_min:
            return Onset(int(m0), stop, True, p_all, n_tested)
    m0, stop, p, n_tested = last if last is not None else (1, window_stop(1, span), 0.0, 0)
    return Onset(m0, stop, False, p, n_tested)
