"""The ``ols-blocks`` estimator: fit windows for Einstein relations and errors from 5 time slices.

(The default estimator is ``gls``, :mod:`aseimd.analysis.einstein`; this one is
kept for comparison and for runs too short for it. ``FitWindow``,
``lag_grid``, ``loglog_slope`` serve both.)

Fit window (automatic)
----------------------
The local log-log slope of an MSD curve is

    beta(t) = ln[MSD(t s) / MSD(t / s)] / ln(s^2),   s = 10^(1/4),

i.e. the slope of ln MSD against ln t across half a decade centred on t,
evaluated on a logarithmic grid of lags (:data:`GRID_POINTS_PER_DECADE` per
decade). Only lags in ``[s * dt, t_max]`` are considered: the first frames
(ballistic, slope 2) fall out through the slope criterion, and ``t_max`` caps
the noisy long-lag tail (the caller passes half of one averaging block, so
that every block has at least as many time origins as lags). The window is
the longest contiguous run of grid points with ``|beta - 1| < tolerance``
(default 0.1; ties go to the later run) after which the slope never drops
below ``1 - tolerance`` again up to ``t_max`` (a linear stretch followed by
sub-diffusion, e.g. rattling in a cage before the cage relaxes, is a
transient, not the long-time regime); it must span at least a factor
:data:`MIN_WINDOW_RATIO` in time. Without such a run the regime is *not*
diffusive: the fallback window is the last factor-of-five of lags below
``t_max`` and the result carries ``diffusive = False`` and a warning (for a
sub-diffusive curve the apparent coefficient there is an upper bound).

``slope`` reported with every fit is the least-squares slope of ln MSD
against ln t over the window; ``diffusive`` is ``|slope - 1| < tolerance``.

Standard errors
---------------
The trajectory is cut into ``n_blocks`` (default 5) consecutive blocks of
equal length. Each block gives its own MSD (FFT over its own time origins) and
its own coefficient from a least-squares line over the same fit window. The
blocks are independent samples once they are much longer than the fit
window's end (the correlation time of displacements at those lags), so the
standard error of the mean over blocks is ``std(block values, ddof=1) /
sqrt(n_blocks)``; derived quantities (ratios such as t+) get the block
jackknife, which reduces to the same formula for linear quantities. This is
honest for correlated particles (collective modes, distinct correlations,
drifts) because every block keeps all particles, and it is the only choice
for collective quantities, which have one sample per time origin. The
reported value itself comes from the whole-run MSD (all time origins), whose
variance is at most that of the block mean, so the error bar is slightly
conservative. With n blocks the interval ±1 SE covers the true value with
the probability of Student's t with n-1 degrees of freedom (63 % for 5
blocks, 66 % for 10); ±t_{0.975, n-1} SE (2.78 for 5 blocks) is the 95 %
interval, which the outputs also give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.analysis._arrays import unique
from aseimd.analysis.blocks import block_stderr, jackknife_stderr, t_quantile_975
from aseimd.errors import AnalysisError

__all__ = ["block_stderr", "jackknife_stderr"]  # the one block-averaging helper lives in analysis.blocks

#: Default tolerance on |local log-log slope - 1|.
SLOPE_TOLERANCE = 0.1
#: Grid points per decade of lag for the local slope.
GRID_POINTS_PER_DECADE = 10
#: Half-width of the local-slope stencil as a factor in time (half a decade in total).
STENCIL_FACTOR = 10 ** 0.25
#: Shortest automatic window, as t_end / t_start.
MIN_WINDOW_RATIO = 2.0
#: Fallback window (no diffusive regime): [t_max / FALLBACK_RATIO, t_max].
FALLBACK_RATIO = 5.0
#: Default number of independent time blocks for standard errors.
DEFAULT_BLOCKS = 5


@dataclass(frozen=True)
class FitWindow:
    """A window of lags used for a linear Einstein fit.

    Attributes
    ----------
    start, stop : int
        First and last lag (frames) of the window, inclusive.
    automatic : bool
        Whether the window was chosen by :func:`choose_window`.
    found : bool
        Whether an automatic search found a diffusive run (always True when given).
    """

    start: int
    stop: int
    automatic: bool
    found: bool = True

    def ps(self, dt_ps: float) -> list[float]:
        """The window as [start, stop] in ps."""
        return [self.start * dt_ps, self.stop * dt_ps]


def lag_grid(max_lag: int, points_per_decade: int = GRID_POINTS_PER_DECADE) -> np.ndarray:
    """Unique integer lags 1..max_lag spaced logarithmically, shape=(n,), dtype=int."""
    if max_lag < 1:
        return np.array([], dtype=int)
    n = int(np.ceil(np.log10(max_lag) * points_per_decade)) + 1
    return unique(np.round(np.geomspace(1, max_lag, max(n, 2))).astype(int))


def local_slopes(msd: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Local log-log slope of an MSD curve on a logarithmic lag grid.

    Parameters
    ----------
    msd : numpy.ndarray, shape=(n_lags,)
        MSD at lags 0..n_lags-1 frames (any unit).
    max_lag : int
        Largest lag (frames) at which a slope is reported; the stencil reaches
        ``max_lag * STENCIL_FACTOR`` (clipped to the curve).

    Returns
    -------
    lags : numpy.ndarray, shape=(n,), dtype=int
        Grid lags in frames with ``lag / STENCIL_FACTOR >= 1``.
    slopes : numpy.ndarray, shape=(n,)
        beta at those lags (NaN where the MSD is not positive).
    """
    msd = np.asarray(msd, dtype=float)
    top = min(max_lag, len(msd) - 1)
    lags = lag_grid(top)
    lags = lags[lags >= STENCIL_FACTOR]
    t = np.arange(len(msd), dtype=float)
    lo = lags / STENCIL_FACTOR
    hi = np.minimum(lags * STENCIL_FACTOR, len(msd) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m_lo = np.interp(lo, t, msd)
        m_hi = np.interp(hi, t, msd)
        slopes = np.log(m_hi / m_lo) / np.log(hi / lo)
    slopes[~((m_lo > 0) & (m_hi > 0))] = np.nan
    return lags, slopes


def choose_window(msd: np.ndarray, max_lag: int, tolerance: float = SLOPE_TOLERANCE) -> FitWindow:
    """Pick the fit window where the local log-log slope is within ``tolerance`` of 1.

    See the module docstring for the criterion.

    Parameters
    ----------
    msd : numpy.ndarray, shape=(n_lags,)
        MSD at lags 0..n_lags-1 frames.
    max_lag : int
        Largest lag (frames) allowed in the window.

    Returns
    -------
    FitWindow
    """
    if max_lag < 2:
        raise AnalysisError(f"trajectory too short for a fit: the longest usable lag is {max_lag} frame(s)")
    lags, slopes = local_slopes(msd, max_lag)
    ok = np.abs(slopes - 1.0) < tolerance
    sub = slopes < 1.0 - tolerance
    best: tuple[float, int, int] | None = None
    i = 0
    while i < len(lags):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(lags) and ok[j + 1]:
            j += 1
        span = lags[j] / lags[i]
        transient = bool(np.any(sub[j + 1:]))  # the curve turns sub-diffusive later: not the long-time regime
        if not transient and (best is None or span >= best[0]):
            best = (span, int(lags[i]), int(lags[j]))
        i = j + 1
    if best is not None and best[0] >= MIN_WINDOW_RATIO:
        return FitWindow(best[1], best[2], automatic=True, found=True)
    start = max(1, int(round(max_lag / FALLBACK_RATIO)))
    return FitWindow(min(start, max_lag - 1), max_lag, automatic=True, found=False)


def given_window(start_ps: float, stop_ps: float, dt_ps: float, max_lag: int,
                 limit: str = "the trajectory allows lags up to {max_ps:g} ps (half of one of the averaging blocks)"
                 ) -> FitWindow:
    """A user-given window in ps, checked against the usable lags.

    ``limit`` says in the error message what sets ``max_lag`` (``{max_ps}`` is filled in).

    Raises
    ------
    AnalysisError
        If the window is empty, negative, or ends beyond ``max_lag``.
    """
    if not 0 <= start_ps < stop_ps:
        raise AnalysisError(f"--fit-window-ps {start_ps} {stop_ps}: need 0 <= A < B")
    start = max(1, int(np.ceil(start_ps / dt_ps - 1e-9)))
    stop = int(np.floor(stop_ps / dt_ps + 1e-9))
    if stop > max_lag:
        raise AnalysisError(
            f"fit window ends at {stop_ps:g} ps but {limit.format(max_ps=max_lag * dt_ps)}; "
            "use a shorter window, fewer --blocks or a longer trajectory"
        )
    if stop - start < 1:
        raise AnalysisError(
            f"fit window {start_ps:g}-{stop_ps:g} ps holds fewer than 2 lags at a frame spacing of {dt_ps:g} ps"
        )
    return FitWindow(start, stop, automatic=False, found=True)


def linear_slope(curve: np.ndarray, window: FitWindow) -> np.ndarray:
    """Least-squares slope (per frame) of ``curve`` against lag over the window, with intercept.

    Parameters
    ----------
    curve : numpy.ndarray, shape=(n_lags, ...)
        Curves along axis 0, lag in frames.

    Returns
    -------
    numpy.ndarray, shape=(...)
        Slope in units of curve per frame.
    """
    curve = np.asarray(curve, dtype=float)
    t = np.arange(window.start, window.stop + 1, dtype=float)
    y = curve[window.start:window.stop + 1]
    tc = t - t.mean()
    return np.tensordot(tc, y - y.mean(axis=0), axes=(0, 0)) / np.dot(tc, tc)


def loglog_slope(curve: np.ndarray, window: FitWindow) -> float:
    """Least-squares slope of ln(curve) against ln(lag) over the window (NaN if not positive)."""
    t = np.arange(window.start, window.stop + 1, dtype=float)
    y = np.asarray(curve, dtype=float)[window.start:window.stop + 1]
    if np.any(y <= 0):
        return float("nan")
    return float(np.polyfit(np.log(t), np.log(y), 1)[0])


def t_quantile_95(n_blocks: int) -> float:
    """Two-sided 95 % Student-t factor for ``n_blocks`` blocks (n - 1 degrees of freedom)."""
    return t_quantile_975(n_blocks - 1)


def block_bounds(n_frames: int, n_blocks: int) -> tuple[int, int]:
    """Block length (frames) and the largest fit lag: half a block.

    Raises
    ------
    AnalysisError
        If ``n_blocks < 2`` or blocks are shorter than 8 frames.
    """
    if n_blocks < 2:
        raise AnalysisError(f"--blocks must be >= 2 for a standard error, got {n_blocks}")
    block_len = n_frames // n_blocks
    if block_len < 8:
        raise AnalysisError(
            f"trajectory of {n_frames} frames is too short for {n_blocks} blocks of >= 8 frames; "
            "use a longer trajectory or fewer --blocks"
        )
    return block_len, block_len // 2
