"""The GLS Einstein estimator shared by diffusion and transference (method ``gls``).

Steps (all curves of one analysis share them, so the numbers are comparable):

1. Whole-run curves by one FFT each (:mod:`aseimd.analysis.msd`), pooled over
   replicas as origin-weighted means.
2. Fit window: given, or the objective onset (:func:`aseimd.analysis.gls.find_onset`)
   of the self MSDs (the most precise curves), spanning
   :data:`~aseimd.analysis.gls.WINDOW_SPAN` x the onset.
3. One set of GLS weights over up to :data:`~aseimd.analysis.gls.MAX_FIT_POINTS`
   lags of the window, with the random-walk covariance shape K
   (:mod:`aseimd.analysis.msd_covariance`), pooled over replicas.
4. Standard errors by the delete-one-block jackknife over many blocks of time
   origins (:mod:`aseimd.analysis.blocks`; blocks at least
   :data:`BLOCK_LENGTH_FACTOR` window lengths long, between :data:`MIN_BLOCKS`
   and :data:`MAX_BLOCKS` per run), the whole estimator (slopes and derived
   quantities) recomputed per deleted block. The callers add the analytic
   (random-walk) standard error as a cross-check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from aseimd.analysis import gls
from aseimd.analysis.blocks import jackknife, origin_block_sums
from aseimd.analysis.fitting import FitWindow, given_window
from aseimd.analysis.msd import cross_msd_fft, msd_fft
from aseimd.analysis.msd_covariance import overlap_trace
from aseimd.errors import AnalysisError

#: Blocks of time origins are at least this many window lengths long.
BLOCK_LENGTH_FACTOR = 8
#: Fewest / most blocks of time origins per run (automatic choice).
MIN_BLOCKS = 5
MAX_BLOCKS = 100
#: Block and analytic errors "disagree" beyond this relative difference (or 3 x the noise of a block SE).
SE_AGREEMENT = 0.35


@dataclass
class Series:
    """One curve to fit: <[a(t+m) - a(t)] . [b(t+m) - b(t)]> per run.

    Attributes
    ----------
    runs : list of (numpy.ndarray, numpy.ndarray or None)
        Per replica ``(a, b)``; a, b shape=(n_frames, ...) in nm; ``b=None`` for an MSD.
    per : float
        Divide the summed products by this (the number of particles for a self MSD, 1 for collective).
    onset_dims : float or None
        N x d for self MSDs that take part in the onset test (None: not tested).
    """

    runs: list
    per: float = 1.0
    onset_dims: float | None = None


@dataclass
class GLSFit:
    """Output of :func:`fit_gls`.

    Attributes
    ----------
    window : FitWindow
    lags : numpy.ndarray, shape=(k,), dtype=int
        Lags of the GLS fit (frames).
    line : aseimd.analysis.gls.LineFit
    onset : aseimd.analysis.gls.Onset or None
        None when the window was given.
    values, stderr : dict of str to float
        Estimator on the whole data; jackknife standard errors.
    per_block : dict of str to numpy.ndarray, shape=(n_blocks,)
    slopes_per_frame : dict of str to float
        GLS slope of each curve (units of the curve per frame).
    intercepts : dict of str to float
    curves : dict of str to numpy.ndarray, shape=(n_lags,)
        Whole-run pooled curves (lags 0..n_lags-1 frames), for plots and CSVs.
    n_blocks : int
        Blocks of time origins in total (over replicas).
    n_frames : list of int
        Frames per replica.
    linearity_p_value : float
        chi² p-value of the straight line over the window used, for the tested self MSDs
        (worst of them); with a given window below the onset threshold, ``window.found`` is False.
    transient : dict or None
        Set when a tested curve turns sub-diffusive after the window (``lag_ps``,
        ``slope_ratio``): the window is a short-time transient, not the long-time regime.
    homogeneity : dict of str to float
        :func:`slope_homogeneity` of each tested self MSD (1: identical particles).
    """

    window: FitWindow
    lags: np.ndarray
    line: gls.LineFit
    onset: gls.Onset | None
    values: dict[str, float]
    stderr: dict[str, float]
    per_block: dict[str, np.ndarray]
    slopes_per_frame: dict[str, float]
    intercepts: dict[str, float]
    curves: dict[str, np.ndarray]
    n_blocks: int
    n_frames: list[int] = field(default_factory=list)
    transient: dict | None = None
    linearity_p_value: float = float("nan")
    homogeneity: dict[str, float] = field(default_factory=dict)


#: Bytes of displacements per chunk of time origins in :func:`slope_homogeneity`.
HOMOGENEITY_CHUNK_BYTES = 8 * 1024**2


def slope_homogeneity(runs: list, lag: int) -> float:
    """h = <b>² / <b²> over the particles' own MSD slopes b_i (1: all alike), for the random-walk variance.

    The random-walk covariance of a particle-averaged MSD is (2 / (N² d)) sum_i b_i² K, i.e. 2 <b>² K /
    (h N d): for particles that diffuse at different rates (Li+ bound to a polymer and free Li+) it is
    1/h times the identical-particle value, so the onset test and the analytic errors use h N particles.
    Each particle's slope comes from its own time-origin-averaged MSD at ``lag`` frames (the longest lag a
    fit window may reach: the long-time regime), whose mean square is corrected for its own random-walk
    noise, E[msd_i(m)²] = b_i² (m² + 2 K(m, m) / d). Clipped to (0, 1].

    Parameters
    ----------
    runs : list of numpy.ndarray, shape=(n_frames, n_particles, d)
        Positions (nm) per replica; every (replica, particle) is one sample.
    lag : int
        Lag in frames (>= 1).
    """
    from aseimd.analysis.msd_covariance import msd_variance_diagonal

    per_particle, corrections = [], []
    for x in runs:
        x = np.asarray(x)
        n, n_particles, d = x.shape
        m = int(min(lag, n - 1))
        if m < 1 or n_particles == 0:
            continue
        # origins every m/8 frames: displacements over m frames from origins that close are nearly the same
        # (the variance of their average is that of all origins to ~1 %, far below what h needs), at 1/(m/8)
        # of the cost
        origins = np.arange(0, n - m, max(1, m // 8))
        total = np.zeros(n_particles)
        chunk = max(1, HOMOGENEITY_CHUNK_BYTES // max(1, 8 * n_particles * d))
        for lo in range(0, origins.size, chunk):
            t = origins[lo:lo + chunk]
            disp = (x[t + m] - x[t]).astype(np.float64).reshape(t.size, n_particles * d)
            total += np.square(disp).sum(axis=0).reshape(n_particles, d).sum(axis=1)
        msd = total / origins.size
        per_particle.append(msd / m)
        corrections.append(np.full(n_particles, 1.0 + 2.0 * float(msd_variance_diagonal(np.array([m]), n)[0])
                                   / (d * m * m)))
    if not per_particle:
        return 1.0
    b = np.concatenate(per_particle)
    b2 = np.mean(b * b / np.concatenate(corrections))
    if not (b2 > 0 and np.isfinite(b2)):
        return 1.0
    return float(min(1.0, max(np.mean(b) ** 2 / b2, 1.0 / b.size)))


def pooled_K(lags: np.ndarray, n_frames: list[int]) -> np.ndarray:
    """Covariance shape of the origin-weighted mean of replica curves (per unit step variance)."""
    lags = np.asarray(lags, dtype=np.int64)
    weights = np.array([[T - m for m in lags] for T in n_frames], dtype=float)  # origins per run and lag
    w = weights / weights.sum(axis=0)
    return sum(np.outer(w[r], w[r]) * overlap_trace(lags, T) for r, T in enumerate(n_frames))


#: Whole-run curves computed during one :func:`aseimd.analysis.engine.run_analyses` call, keyed by the
#: memory they were computed from (cleared before and after each call; empty otherwise).
CURVE_CACHE: dict = {}


def _memory_key(x: np.ndarray) -> tuple:
    return (x.__array_interface__["data"][0], x.shape, x.strides, x.dtype.str)


def whole_curve(series: Series, n_lags: int) -> np.ndarray:
    """Pooled whole-run curve of a series, lags 0..n_lags-1, summed over trailing axes / ``per``."""
    key = (n_lags, series.per) + tuple(
        (_memory_key(a), None if b is None else _memory_key(b)) for a, b in series.runs)
    if key in CURVE_CACHE:
        return CURVE_CACHE[key].copy()
    out = _whole_curve(series, n_lags)
    if _SHARING[0]:
        CURVE_CACHE[key] = out.copy()
    return out


_SHARING = [False]


@contextlib.contextmanager
def sharing_curves():
    """Inside the block, curves of the same (unchanged) arrays are computed once (used by run_analyses)."""
    CURVE_CACHE.clear()
    _SHARING[0] = True
    try:
        yield
    finally:
        _SHARING[0] = False
        CURVE_CACHE.clear()


def _whole_curve(series: Series, n_lags: int) -> np.ndarray:
    total = np.zeros(n_lags)
    weight = np.zeros(n_lags)
    for a, b in series.runs:
        if b is None and a.ndim == 3:
            c = msd_fft(a, max_lag=n_lags - 1).sum(-1) * a.shape[1] / series.per
        else:
            c = cross_msd_fft(a, a if b is None else b, max_lag=n_lags - 1)
            c = c.reshape(n_lags, -1).sum(-1) / series.per
        w = (a.shape[0] - np.arange(n_lags)).astype(float)
        total += c * w
        weight += w
    return total / weight


def max_window_stop(n_frames: list[int], n_blocks: int | None) -> int:
    """Largest window end (frames) that leaves every run enough blocks of origins."""
    blocks = MIN_BLOCKS if n_blocks is None else n_blocks
    return int(min(n_frames) // (BLOCK_LENGTH_FACTOR * blocks))


def fit_gls(
    series: dict[str, Series],
    derive: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
    dt_ps: float,
    *,
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int | None = None,
    span: float = gls.WINDOW_SPAN,
    p_min: float = gls.ONSET_P_VALUE,
    curve_lags: int | None = None,
    tolerance: float = 0.1,
) -> GLSFit:
    """Fit every series by GLS over one window and estimate errors by the origin-block jackknife.

    Parameters
    ----------
    series : dict of str to Series
        All curves (their replicas must have the same count).
    derive : callable
        ``derive({name: slope per frame (...)}) -> {quantity: (...)}``: the
        reported quantities from the slopes, vectorised over leading axes.
    dt_ps : float
        Frame spacing.
    fit_window_ps : (float, float), optional
        Given window; otherwise the onset test.
    n_blocks : int, optional
        Blocks of time origins per run (default: automatic).
    curve_lags : int, optional
        Lags of the returned whole-run curves (default: half the shortest run).
    tolerance : float
        Long-time check: a tested curve whose secant slope at later lags (up to a
        tenth of the run) falls below (1 - tolerance) x the window slope by more
        than 3 standard errors makes the window a transient (``found = False``).

    Returns
    -------
    GLSFit
    """
    first = next(iter(series.values()))
    n_frames = [int(a.shape[0]) for a, _ in first.runs]
    T_min = min(n_frames)
    max_stop = max_window_stop(n_frames, n_blocks)
    if n_blocks is not None and n_blocks < 2:
        raise AnalysisError(f"--blocks must be >= 2 for a standard error, got {n_blocks}")
    shortest = gls.window_stop(1, span) if fit_window_ps is None else gls.MIN_FIT_POINTS - 1
    if max_stop < shortest:
        need = BLOCK_LENGTH_FACTOR * (n_blocks or MIN_BLOCKS) * shortest
        raise AnalysisError(
            f"trajectory of {T_min} frames is too short for the GLS fit with "
            f"{n_blocks or MIN_BLOCKS} blocks of time origins (needs >= {need} frames); "
            "use a longer trajectory, fewer --blocks, or --method ols-blocks"
        )
    n_lags = max(curve_lags or T_min // 2 + 1, max_stop + 1)
    n_lags = min(n_lags, T_min)
    curves = {name: whole_curve(s, n_lags) for name, s in series.items()}
    # particles that diffuse at different rates widen the random-walk variance: the tested self MSDs count
    # h N particles (slope_homogeneity), in the onset test, the linearity record and the long-time check
    homogeneity = {name: slope_homogeneity([a for a, _ in s.runs], max_stop)
                   for name, s in series.items() if s.onset_dims}
    dims = {name: s.onset_dims * homogeneity[name] for name, s in series.items() if s.onset_dims}

    def K_of(lags):
        return pooled_K(lags, n_frames)

    onset = None
    if fit_window_ps is not None:
        window = given_window(*fit_window_ps, dt_ps, max_stop,
                              limit=f"blocks of time origins at least {BLOCK_LENGTH_FACTOR} windows long allow lags up to "
                                    "{max_ps:g} ps")
    else:
        tested = [(curves[name], dims[name]) for name, s in series.items() if s.onset_dims]
        onset = gls.find_onset(tested, K_of, max_stop, span=span, p_min=p_min)
        window = FitWindow(onset.start, onset.stop, automatic=True, found=onset.found)

    lags = gls.window_lags(window.start, window.stop)
    line = gls.line_fit(lags, K=K_of(lags))
    slope_w = line.weights[1]

    def estimator(curves_k: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        slopes = {k: np.tensordot(v, slope_w, axes=(-1, 0)) for k, v in curves_k.items()}
        return derive(slopes)

    blocks_per_run = [
        n_blocks if n_blocks is not None else int(np.clip(T // (BLOCK_LENGTH_FACTOR * window.stop),
                                                          MIN_BLOCKS, MAX_BLOCKS))
        for T in n_frames
    ]
    sums: dict[str, np.ndarray] = {}
    counts = None
    for name, s in series.items():
        parts, cparts = [], []
        for (a, b), nb in zip(s.runs, blocks_per_run, strict=True):
            S, n = origin_block_sums(a, b, lags, nb)
            parts.append(S / s.per)
            cparts.append(n)
        sums[name] = np.concatenate(parts)
        if counts is None:
            counts = np.concatenate(cparts)
    values, stderr, per_block = jackknife(sums, counts, estimator)
    whole = {k: v.sum(axis=0) / counts.sum(axis=0) for k, v in sums.items()}
    coef = {k: line.coefficients(v) for k, v in whole.items()}
    # linearity of the tested curves over the window actually used (given or found), for the record
    p_lin = 1.0
    for name, s in series.items():
        if s.onset_dims and line.lags.size > 2:
            y = curves[name][line.lags]
            b = float(line.coefficients(y)[1])
            p_lin = min(p_lin, gls._chi2_sf(line.chi2(y, 2.0 * b * b / dims[name]), line.lags.size - 2))
    if fit_window_ps is not None and p_lin < p_min:
        window = FitWindow(window.start, window.stop, window.automatic, found=False)
    transient = None
    for name, s in series.items():
        if s.onset_dims:
            transient = transient or _long_time_check(curves[name], float(coef[name][1]), dims[name], K_of,
                                                      window.stop, T_min // 10, tolerance, dt_ps)
    if transient is not None:
        window = FitWindow(window.start, window.stop, window.automatic, found=False)
    return GLSFit(
        window, lags, line, onset, values, stderr, per_block,
        {k: float(c[1]) for k, c in coef.items()}, {k: float(c[0]) for k, c in coef.items()},
        curves, int(counts.shape[0]), n_frames, transient, float(p_lin), homogeneity,
    )


def _long_time_check(curve, slope, n_eff, K_of, start, stop, tolerance, dt_ps) -> dict | None:
    """Secant slopes of ``curve`` on a log grid of lags after the window, against the window slope."""
    from aseimd.analysis.fitting import STENCIL_FACTOR, lag_grid

    if not slope > 0:
        return None
    stop = min(stop, curve.size - 1)
    for m in lag_grid(stop):
        lo, hi = int(round(m / STENCIL_FACTOR)), int(round(m * STENCIL_FACTOR))
        if lo <= start or hi > stop or hi <= lo:
            continue
        secant = (curve[hi] - curve[lo]) / (hi - lo)
        K = K_of(np.array([lo, hi]))
        noise = np.sqrt(max(2.0 * slope**2 / n_eff * (K[0, 0] + K[1, 1] - 2 * K[0, 1]), 0.0)) / (hi - lo)
        if secant < (1.0 - tolerance) * slope - 3.0 * noise:
            return {"lag_ps": float(m * dt_ps), "slope_ratio": float(secant / slope)}
    return None


def se_disagreement(block_se: float, analytic_se: float, n_blocks: int, value: float | None = None
                     ) -> float | None:
    """Ratio block/analytic SE when they disagree beyond noise, else None (also when both vanish next to ``value``)."""
    if not (np.isfinite(block_se) and np.isfinite(analytic_se) and analytic_se > 0):
        return None
    if value is not None and max(block_se, analytic_se) < 1e-6 * abs(value):
        return None  # fixed by a constraint (e.g. t+ of two species in the centre-of-mass frame)
    ratio = block_se / analytic_se
    allowed = max(SE_AGREEMENT, 3.0 / np.sqrt(2.0 * max(n_blocks - 1, 1)))
    return float(ratio) if abs(ratio - 1.0) > allowed else None


def ci95(value: float, se: float, n_blocks: int) -> list[float]:
    """[low, high] with the Student-t factor for n_blocks - 1 degrees of freedom."""
    from aseimd.analysis.blocks import t_quantile_975

    tq = t_quantile_975(n_blocks - 1)
    return [value - tq * se, value + tq * se]
