"""Self-diffusion coefficients from the Einstein relation, with standard errors.

D = slope(MSD vs t) / (2 d) over a fit window where the MSD grows linearly
(d = number of directions: 3 for xyz, 2 for xy, 1 for z). The MSD is the FFT
MSD over all particles (:mod:`aseimd.analysis.msd`). Two estimators: ``gls``
(default; :mod:`aseimd.analysis.einstein` -- random-walk covariance, onset
window, jackknife over blocks of time origins) and ``ols-blocks`` (the earlier
one; fit window and block error in :mod:`aseimd.analysis.fitting`).
:class:`DiffusionAnalysis` is the analysis object for
:func:`aseimd.analysis.engine.run_analyses`.

Layers (interface cells): the lateral MSD of particles grouped by the layer
their (wrapped) z lies in *at each time origin* -- a conditional MSD
``< |Δr_xy(τ)|² | z(t0) in layer >`` -- evaluated on a logarithmic grid of
lags, vectorised over particles and origins. Particles that leave the layer
during τ still count for the layer they started in, so the window should be
shorter than the residence time in a layer (layers a few nm thick for
ns windows).

Finite-size correction (Yeh & Hummer, J. Phys. Chem. B 108, 15873 (2004)):
D_inf = D_PBC + ξ k_B T / (6 π η L), ξ = 2.837297, for cubic boxes only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aseimd.analysis import fitting
from aseimd.analysis.fitting import FitWindow
from aseimd.analysis.msd import msd_fft
from aseimd.analysis.unwrap import folding_warning
from aseimd.errors import AnalysisError

#: Allowed direction sets and the Cartesian components they use.
DIMS: dict[str, tuple[int, ...]] = {
    "xyz": (0, 1, 2), "xy": (0, 1), "xz": (0, 2), "yz": (1, 2), "x": (0,), "y": (1,), "z": (2,),
}
#: Boltzmann constant in J/K (exact, SI 2019).
KB_J_PER_K = 1.380649e-23
#: Yeh-Hummer constant for a cubic lattice.
YH_XI = 2.837297
#: nm²/ps in m²/s.
NM2_PER_PS_IN_M2_PER_S = 1e-6


def select_components(positions_nm: np.ndarray, comps: tuple[int, ...]) -> np.ndarray:
    """``positions_nm[..., comps]`` without a copy when the components are contiguous."""
    comps = tuple(comps)
    if comps == tuple(range(comps[0], comps[-1] + 1)):
        return positions_nm[..., comps[0]:comps[-1] + 1]
    return positions_nm[..., list(comps)]


def dims_components(dims: str) -> tuple[int, ...]:
    """Cartesian components of a direction set, e.g. ``"xy" -> (0, 1)``."""
    if dims not in DIMS:
        raise AnalysisError(f"dims {dims!r} not allowed; please specify one of {', '.join(DIMS)}")
    return DIMS[dims]


@dataclass
class DiffusionResult:
    """One group's diffusion coefficient.

    Attributes
    ----------
    label, dims : str
    n_particles : int
    dt_ps : float
    msd_nm2 : numpy.ndarray, shape=(n_lags,)
        Whole-run MSD in the chosen directions, lags 0..n_lags-1 frames.
    window : FitWindow
    D_m2_per_s, D_stderr_m2_per_s : float
    D_ci95_m2_per_s : list of float
        [low, high], Student-t over the blocks.
    block_D_m2_per_s : numpy.ndarray, shape=(n_blocks,)
    slope : float
        Log-log slope over the window.
    diffusive : bool
    intercept_nm2 : float
        Intercept of the linear fit (for plotting).
    warnings : list of str
    """

    label: str
    dims: str
    n_particles: int
    dt_ps: float
    msd_nm2: np.ndarray
    window: FitWindow
    D_m2_per_s: float
    D_stderr_m2_per_s: float
    D_ci95_m2_per_s: list[float]
    block_D_m2_per_s: np.ndarray
    slope: float
    diffusive: bool
    intercept_nm2: float
    warnings: list[str] = field(default_factory=list)
    method: str = "ols-blocks"
    D_stderr_analytic_m2_per_s: float | None = None
    onset: dict | None = None
    msd_stderr_nm2: np.ndarray | None = None
    fit_lags: np.ndarray | None = None

    @property
    def lag_ps(self) -> np.ndarray:
        """Lag times of :attr:`msd_nm2`, shape=(n_lags,), in ps."""
        return np.arange(self.msd_nm2.size) * self.dt_ps

    def to_json(self) -> dict:
        """The JSON block for this group."""
        return {
            "D_m2_per_s": self.D_m2_per_s,
            "D_stderr_m2_per_s": self.D_stderr_m2_per_s,
            "D_ci95_m2_per_s": self.D_ci95_m2_per_s,
            "fit_window_ps": self.window.ps(self.dt_ps),
            "fit_window_automatic": self.window.automatic,
            "diffusive": self.diffusive,
            "slope": self.slope,
            "n_particles": self.n_particles,
            "dims": self.dims,
            "block_D_m2_per_s": self.block_D_m2_per_s.tolist(),
            "n_blocks": int(self.block_D_m2_per_s.size),
            "estimator": self.method,
        } | ({} if self.method != "gls" else {
            "D_stderr_analytic_m2_per_s": self.D_stderr_analytic_m2_per_s,
            "stderr_source": "jackknife over blocks of time origins",
            "fit_lags_ps": (np.asarray(self.fit_lags) * self.dt_ps).tolist(),
            "onset": self.onset,
        })


def fit_einstein(
    curve: np.ndarray,
    block_curves: np.ndarray,
    dt_ps: float,
    n_dims: int,
    *,
    max_lag: int,
    fit_window_ps: tuple[float, float] | None = None,
    window: FitWindow | None = None,
    tolerance: float = fitting.SLOPE_TOLERANCE,
):
    """Einstein fit of one curve and its block curves.

    Parameters
    ----------
    curve : numpy.ndarray, shape=(n_lags,)
        Whole-run MSD-like curve (nm²), lags in frames.
    block_curves : numpy.ndarray, shape=(n_blocks, n_block_lags)
        The same curve per time block (n_block_lags > max_lag).
    n_dims : int
        Number of directions in the curve (the 2d of the Einstein relation).
    window : FitWindow, optional
        Use this window (takes precedence over ``fit_window_ps``).

    Returns
    -------
    tuple
        (window, coefficient_nm2_per_ps, block_coefficients_nm2_per_ps, loglog_slope, intercept_nm2)
    """
    if window is None:
        window = (
            fitting.given_window(*fit_window_ps, dt_ps, max_lag)
            if fit_window_ps is not None
            else fitting.choose_window(curve, max_lag, tolerance)
        )
    scale = 1.0 / (2.0 * n_dims * dt_ps)
    slope_per_frame = float(fitting.linear_slope(curve, window))
    t = np.arange(window.start, window.stop + 1)
    intercept = float(np.mean(curve[t]) - slope_per_frame * t.mean())
    blocks = fitting.linear_slope(np.asarray(block_curves).T, window) * scale
    return window, slope_per_frame * scale, np.atleast_1d(blocks), fitting.loglog_slope(curve, window), intercept


def block_msds(positions_nm: np.ndarray, n_blocks: int, max_lag: int, components: tuple[int, ...]) -> np.ndarray:
    """MSD of each consecutive time block (its own origins), summed over ``components``.

    Returns
    -------
    numpy.ndarray, shape=(n_blocks, max_lag + 1), in nm²
    """
    block_len = positions_nm.shape[0] // n_blocks
    sel = select_components(positions_nm, components)
    return np.stack([
        msd_fft(sel[b * block_len:(b + 1) * block_len], max_lag=max_lag).sum(axis=-1) for b in range(n_blocks)
    ])


def self_diffusion(
    positions_nm,
    dt_ps: float,
    *,
    dims: str = "xyz",
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int | None = None,
    tolerance: float = fitting.SLOPE_TOLERANCE,
    label: str = "",
    method: str = "gls",
) -> DiffusionResult:
    """Self-diffusion coefficient of a set of particles.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_frames, n_particles, 3), or a list of them
        Unwrapped, drift-corrected positions in nm; a list holds replicas (pooled, ``gls`` only).
    dt_ps : float
        Time between frames in ps.
    dims : str
        Directions (keys of :data:`DIMS`).
    fit_window_ps : (float, float), optional
        Fit window in ps; automatic if omitted.
    n_blocks : int, optional
        ``gls``: blocks of time origins per run (default automatic, 8-100);
        ``ols-blocks``: independent time slices (default 5).
    method : {"gls", "ols-blocks"}
        Estimator (see docs/analysis_transport.md).

    Returns
    -------
    DiffusionResult
    """
    if method not in METHODS:
        raise AnalysisError(f"method {method!r} not allowed; please specify one of {', '.join(METHODS)}")
    comps = dims_components(dims)
    runs = list(positions_nm) if isinstance(positions_nm, (list, tuple)) else [positions_nm]
    name = f"group {label!r}" if label else "group"
    if method == "gls":
        return _self_diffusion_gls(runs, dt_ps, comps, dims, fit_window_ps, n_blocks, label, name, tolerance)
    if len(runs) != 1:
        raise AnalysisError("replicas are pooled by --method gls only")
    positions_nm = runs[0]
    n_blocks = fitting.DEFAULT_BLOCKS if n_blocks is None else n_blocks
    n_frames = positions_nm.shape[0]
    _, max_lag = fitting.block_bounds(n_frames, n_blocks)
    full = msd_fft(select_components(positions_nm, comps)).sum(axis=-1)
    blocks = block_msds(positions_nm, n_blocks, max_lag, comps)
    return _einstein_result(
        label, name, "MSD", dims, positions_nm.shape[1], dt_ps,
        full[: n_frames // 2 + 1], blocks, max_lag=max_lag, fit_window_ps=fit_window_ps, tolerance=tolerance,
    )


#: Estimators of :func:`self_diffusion`.
METHODS = ("gls", "ols-blocks")


def _self_diffusion_gls(runs, dt_ps, comps, dims, fit_window_ps, n_blocks, label, name, tolerance
                        ) -> DiffusionResult:
    from aseimd.analysis.einstein import Series, ci95, fit_gls, se_disagreement
    from aseimd.analysis.msd_covariance import msd_variance_diagonal

    d = len(comps)
    n_particles = runs[0].shape[1]
    sel = [select_components(r, comps) for r in runs]
    scale = NM2_PER_PS_IN_M2_PER_S / (2.0 * d * dt_ps)
    fit = fit_gls({"msd": Series([(x, None) for x in sel], per=n_particles, onset_dims=n_particles * d)},
                  lambda sl: {"D": sl["msd"] * scale}, dt_ps, fit_window_ps=fit_window_ps, n_blocks=n_blocks,
                  tolerance=tolerance)
    D, se = fit.values["D"], fit.stderr["D"]
    b = fit.slopes_per_frame["msd"]
    h = fit.homogeneity["msd"]  # <b>²/<b²> of the particles' slopes: h N particles count in the variance
    analytic = float(np.sqrt(fit.line.slope_variance * 2.0 * b * b / (h * n_particles * d))) * scale
    curve = fit.curves["msd"]
    lags = np.arange(1, curve.size)
    band = np.r_[0.0, np.sqrt(2.0 * b * b * msd_variance_diagonal(lags, min(fit.n_frames))
                              / (h * n_particles * d * len(runs)))]
    warnings = []
    w = fit.window.ps(dt_ps)
    if fit.transient is not None:
        warnings.append(
            f"{name}: MSD not diffusive: after the window {w[0]:g}-{w[1]:g} ps its slope falls to "
            f"{fit.transient['slope_ratio']:.2f} x the fitted one (at {fit.transient['lag_ps']:g} ps); the window "
            "is a short-time transient and D an apparent value (an upper bound if sub-diffusive) -- run longer"
        )
    elif not fit.window.found:
        warnings.append(
            f"{name}: MSD not diffusive (no window [t0, 4 t0] up to {w[1]:g} ps is a straight line at the "
            f"precision of the data, chi² test); D is an apparent value from {w[0]:g}-{w[1]:g} ps "
            "(an upper bound if sub-diffusive) -- run longer"
        )
    ratio = se_disagreement(se, analytic, fit.n_blocks, D)
    if ratio is not None:
        warnings.append(
            f"{name}: the block standard error of D is {ratio:.2f} x the random-walk (analytic) one; the motion "
            "is not a simple random walk over the fit window (the block error is reported)"
        )
    if fit_window_ps is not None and not fit.window.found:
        warnings.append(
            f"{name}: the MSD is not a straight line over the given window {w[0]:g}-{w[1]:g} ps at the precision "
            f"of the data (chi² p = {fit.linearity_p_value:.2g}); D is an apparent value"
        )
    onset = {"linearity_p_value": fit.linearity_p_value, "slope_homogeneity": h}
    if fit.onset is not None:
        onset |= {"p_value": fit.onset.p_value, "found": fit.onset.found, "windows_tested": fit.onset.n_tested,
                  "onset_ps": fit.onset.start * dt_ps}
    return DiffusionResult(
        label, dims, n_particles, dt_ps, curve, fit.window, D, se, ci95(D, se, fit.n_blocks),
        fit.per_block["D"], fitting.loglog_slope(curve, fit.window), bool(fit.window.found),
        fit.intercepts["msd"], warnings, method="gls", D_stderr_analytic_m2_per_s=analytic, onset=onset,
        msd_stderr_nm2=band, fit_lags=fit.lags,
    )


def _einstein_result(label: str, name: str, what: str, dims: str, n_particles: int, dt_ps: float,
                     curve: np.ndarray, block_curves: np.ndarray, *, max_lag: int,
                     fit_window_ps: tuple[float, float] | None, tolerance: float) -> DiffusionResult:
    """Fit the Einstein relation to an MSD curve and its block curves; D, block SE, 95 % CI, warnings."""
    n_blocks = block_curves.shape[0]
    window, coef, block_coef, slope, intercept = fit_einstein(
        curve, block_curves, dt_ps, len(dims_components(dims)), max_lag=max_lag, fit_window_ps=fit_window_ps,
        tolerance=tolerance,
    )
    D = coef * NM2_PER_PS_IN_M2_PER_S
    block_D = block_coef * NM2_PER_PS_IN_M2_PER_S
    se = fitting.block_stderr(block_D)
    tq = fitting.t_quantile_95(n_blocks)
    diffusive = bool(np.isfinite(slope) and abs(slope - 1.0) < tolerance and window.found)
    warnings = []
    if not diffusive:
        why = "no window with log-log slope within 1 ± %g" % tolerance if not window.found else "the window"
        warnings.append(
            f"{name}: {what} not diffusive ({why}; slope {slope:.2f} over "
            f"{window.ps(dt_ps)[0]:g}-{window.ps(dt_ps)[1]:g} ps); D is an apparent value "
            "(an upper bound if sub-diffusive) -- run longer"
        )
    return DiffusionResult(
        label, dims, n_particles, dt_ps, curve, window, D, se,
        [D - tq * se, D + tq * se], block_D, slope, diffusive, intercept, warnings,
    )


def cubic_box_edge_nm(box_nm: np.ndarray | None, rtol: float = 1e-3) -> float:
    """Mean edge of a cubic box over frames, in nm.

    Raises
    ------
    AnalysisError
        If there is no box or it is not cubic (edges differ by more than ``rtol`` or angles != 90°).
    """
    if box_nm is None:
        raise AnalysisError("the Yeh-Hummer correction needs a periodic box; the trajectory has none")
    box = np.asarray(box_nm, dtype=float)
    edges = np.linalg.norm(box, axis=2)  # (n, 3)
    off = np.abs(box - np.einsum("fii->fi", box)[:, :, None] * np.eye(3)).max()
    mean = edges.mean(axis=0)
    if off > rtol * mean.max() or np.abs(edges - edges.mean(axis=1, keepdims=True)).max() > rtol * mean.max():
        raise AnalysisError(
            "the Yeh-Hummer correction holds for cubic boxes only; this box is "
            f"{mean[0]:.4g} x {mean[1]:.4g} x {mean[2]:.4g} nm"
            + (" (not orthogonal)" if off > rtol * mean.max() else "")
            + "; drop --viscosity-mPa-s"
        )
    return float(edges.mean())


def yeh_hummer_correction_m2_per_s(temperature_K: float, viscosity_Pa_s: float, box_edge_nm: float) -> float:
    """Yeh-Hummer finite-size correction ξ k_B T / (6 π η L) in m²/s.

    Examples
    --------
    >>> round(yeh_hummer_correction_m2_per_s(298.0, 3e-3, 5.0) * 1e11, 3)
    4.129
    """
    if not (temperature_K > 0 and viscosity_Pa_s > 0 and box_edge_nm > 0):
        raise AnalysisError(
            f"Yeh-Hummer needs T > 0, viscosity > 0, L > 0; got {temperature_K} K, "
            f"{viscosity_Pa_s} Pa s, {box_edge_nm} nm"
        )
    return YH_XI * KB_J_PER_K * temperature_K / (6.0 * np.pi * viscosity_Pa_s * box_edge_nm * 1e-9)


@dataclass
class LayerResult:
    """Lateral diffusion of the particles that start a lag in one z layer."""

    z_range_nm: tuple[float, float]
    mean_occupancy: float
    result: DiffusionResult
    #: Share of the (origin, particle) pairs that start in the layer and are in it again at the end of the fit
    #: window (their wrapped z; NaN without a window).
    still_in_layer_at_window_end: float = float("nan")

    def to_json(self) -> dict:
        """The JSON block for this layer (``n_particles`` is the mean number in the layer)."""
        block = self.result.to_json()
        return {"z_range_nm": list(self.z_range_nm), "mean_particles": self.mean_occupancy} | block | {
            "n_particles": self.mean_occupancy, "still_in_layer_at_window_end": self.still_in_layer_at_window_end}


#: Warn when fewer of the particles that start a lag in a layer are in it again at the end of the fit window.
LAYER_STAY_WARN = 0.9


def layer_diffusion(
    positions_nm: np.ndarray,
    box_nm: np.ndarray,
    dt_ps: float,
    edges_nm: np.ndarray,
    *,
    dims: str = "xy",
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int = fitting.DEFAULT_BLOCKS,
    tolerance: float = fitting.SLOPE_TOLERANCE,
    label: str = "",
    origin_chunk_elements: int = 4_000_000,
    skip_empty: bool = False,
) -> list[LayerResult]:
    """Lateral D in z layers, particles assigned by their wrapped z at each time origin.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_frames, n_particles, 3)
    box_nm : numpy.ndarray, shape=(n_frames, 3, 3)
        Box per frame (z is wrapped into [0, box[2, 2]) ).
    edges_nm : numpy.ndarray, shape=(n_layers + 1,)
        Increasing layer boundaries in nm.
    dims : str
        Directions of the MSD (default the lateral ``"xy"``).
    skip_empty : bool
        Leave out a layer in which no particle starts in some time block
        (default: raise :class:`AnalysisError`).

    Returns
    -------
    list of LayerResult
        One per layer, in z order (without the empty ones when ``skip_empty``).
    """
    comps = dims_components(dims)
    edges = np.asarray(edges_nm, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise AnalysisError(f"layer edges must be >= 2 increasing values in nm, got {edges.tolist()}")
    n_frames, n_particles, _ = positions_nm.shape
    block_len, max_lag = fitting.block_bounds(n_frames, n_blocks)
    n_layers = edges.size - 1
    lz = np.asarray(box_nm, float)[:, 2, 2]
    z = positions_nm[:, :, 2] - lz[:, None] * np.floor(positions_nm[:, :, 2] / lz[:, None])
    layer = np.searchsorted(edges, z, side="right") - 1
    layer[(z < edges[0]) | (z >= edges[-1])] = -1
    occupancy = np.stack([(layer == k).sum(axis=1).mean() for k in range(n_layers)])

    grid = fitting.lag_grid(n_frames // 2)
    sums = np.zeros((grid.size, n_layers))
    counts = np.zeros((grid.size, n_layers))
    stays = np.zeros((grid.size, n_layers))  # pairs whose particle is in the same layer again after the lag
    bsums = np.zeros((grid.size, n_blocks, n_layers))
    bcounts = np.zeros((grid.size, n_blocks, n_layers))
    sel = select_components(positions_nm, comps)
    step = max(1, origin_chunk_elements // max(n_particles, 1))
    for g, m in enumerate(grid):  # loop over ~40 lags; vectorised over origins and particles
        for lo in range(0, n_frames - m, step):
            hi = min(lo + step, n_frames - m)
            d2 = ((sel[lo + m:hi + m] - sel[lo:hi]) ** 2).sum(axis=-1)  # (origins, particles)
            lid = layer[lo:hi]
            ok = lid >= 0
            sums[g] += np.bincount(lid[ok], weights=d2[ok], minlength=n_layers)
            counts[g] += np.bincount(lid[ok], minlength=n_layers)
            stays[g] += np.bincount(lid[ok & (layer[lo + m:hi + m] == lid)], minlength=n_layers)
            t0 = np.arange(lo, hi)
            blk = t0 // block_len
            inside = (blk < n_blocks) & (t0 % block_len + m < block_len) & (m <= max_lag)
            okb = ok & inside[:, None]
            key = (np.broadcast_to(blk[:, None], lid.shape)[okb] * n_layers + lid[okb])
            bsums[g] += np.bincount(key, weights=d2[okb], minlength=n_blocks * n_layers).reshape(n_blocks, n_layers)
            bcounts[g] += np.bincount(key, minlength=n_blocks * n_layers).reshape(n_blocks, n_layers)

    all_lags = np.arange(n_frames // 2 + 1)
    out = []
    for k in range(n_layers):
        name = f"{label} layer {edges[k]:g}-{edges[k + 1]:g} nm"
        lo_hi = (float(edges[k]), float(edges[k + 1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            curve_g = sums[:, k] / counts[:, k]
            bcurve_g = bsums[:, :, k] / bcounts[:, :, k]
        if not np.all(np.isfinite(curve_g[grid <= max_lag])) or not np.all(np.isfinite(bcurve_g[grid <= max_lag])):
            if skip_empty:
                continue
            raise AnalysisError(
                f"{name}: no particle starts in this layer in some time block; use fewer or wider layers"
            )
        curve = np.interp(all_lags, np.r_[0, grid], np.r_[0.0, curve_g])
        bgrid = grid <= max_lag
        bcurves = np.stack([
            np.interp(np.arange(max_lag + 1), np.r_[0, grid[bgrid]], np.r_[0.0, bcurve_g[bgrid, b]])
            for b in range(n_blocks)
        ])
        res = _einstein_result(name, name, "lateral MSD", dims, n_particles, dt_ps, curve, bcurves,
                               max_lag=max_lag, fit_window_ps=fit_window_ps, tolerance=tolerance)
        stay = float("nan")
        if res.window.stop is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                stay = float(np.interp(res.window.stop, np.r_[0, grid], np.r_[1.0, stays[:, k] / counts[:, k]]))
            if stay < LAYER_STAY_WARN:
                res.warnings.append(
                    f"{name}: {100 * (1 - stay):.0f} % of the particles that start in the layer are in another "
                    f"by the end of the fit window ({res.window.ps(dt_ps)[1]:g} ps): the layer D mixes in the "
                    "motion of the neighbouring layers (biased towards theirs) -- use wider layers, or read it "
                    "as an average over where they go")
        out.append(LayerResult(lo_hi, float(occupancy[k]), res, stay))
    return out


#: How the ``gls`` estimator works, in words (the JSON ``method`` block).
_GLS_METHOD = {
    "einstein": "D = slope / (2 d) of a generalised least-squares line with the exact random-walk covariance "
                "of MSD points (Bullerjahn et al., J. Chem. Phys. 152, 234113 (2020)), intercept free",
    "fit_window": "automatic: first window [t0, 4 t0] (log grid of t0) where the MSD is a straight line at the "
                  "precision of the data (chi² test against the random-walk covariance, p >= 0.05)",
    "stderr": "delete-one-block jackknife over blocks of time origins (each >= 8 window lengths, 8-100 blocks); "
              "the analytic random-walk error is reported beside it and a warning is given when they disagree",
    "ci95": "Student t with n_blocks - 1 degrees of freedom",
}

#: Top-level keys of the diffusion JSON besides the group labels.
RESERVED_JSON_KEYS = ("meta", "method", "yeh_hummer", "warnings", "replicas")


@dataclass
class DiffusionReport:
    """Everything ``aseimd analyze diffusion`` writes.

    Attributes
    ----------
    results : dict of str to DiffusionResult
    layers : dict of str to list of LayerResult
    yeh_hummer : dict or None
        ``{"correction_m2_per_s", "box_edge_nm", "viscosity_mPa_s", "temperature_K"}``.
    method : dict
    warnings : list of str
    """

    results: dict[str, DiffusionResult]
    layers: dict[str, list[LayerResult]]
    yeh_hummer: dict | None
    method: dict
    warnings: list[str]

    def tables(self) -> dict[str, tuple[list[str], list[np.ndarray]]]:
        """``{"msd": (headers, columns)}``: lag time, each group's MSD and its ±1σ (random-walk) error, layers."""
        first = next(iter(self.results.values()))
        headers, columns = ["Time (ps)"], [first.lag_ps]
        n = first.msd_nm2.size
        for label, res in self.results.items():
            headers.append(f"{label} MSD (nm^2)")
            columns.append(res.msd_nm2[:n])
            for layer in self.layers.get(label, []):
                headers.append(f"{layer.result.label} MSD (nm^2)")
                columns.append(layer.result.msd_nm2[:n])
        for label, res in self.results.items():  # errors after the curves: the earlier columns keep their places
            if res.msd_stderr_nm2 is not None:
                headers.append(f"{label} MSD stderr (nm^2)")
                columns.append(res.msd_stderr_nm2[:n])
        return {"msd": (headers, columns)}

    def estimates(self) -> dict[tuple[str, ...], tuple[float, float]]:
        """``{(label, "D_m2_per_s"): (D, standard error)}`` per group (the replica cross-check,
        :mod:`aseimd.analysis.replicas`)."""
        return {(label, "D_m2_per_s"): (res.D_m2_per_s, res.D_stderr_m2_per_s) for label, res in self.results.items()}

    def to_json(self) -> dict:
        """JSON: one block per label at the top level (the CLI contract:
        ``doc[label]["D_m2_per_s"]``), then ``method``, ``yeh_hummer`` and ``warnings``."""
        groups = {}
        for label, res in self.results.items():
            block = res.to_json()
            if self.yeh_hummer is not None:
                block["D_yh_m2_per_s"] = res.D_m2_per_s + self.yeh_hummer["correction_m2_per_s"]
            if label in self.layers:
                block["layers"] = [layer.to_json() for layer in self.layers[label]]
            groups[label] = block
        out = {**groups, "method": self.method}
        if self.yeh_hummer is not None:
            out["yeh_hummer"] = self.yeh_hummer
        out["warnings"] = self.warnings
        return out


def analyze_diffusion(
    traj,
    selections: dict[str, str],
    *,
    com: bool = False,
    dims: str = "xyz",
    drift: str = "system",
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int | None = None,
    tolerance: float = fitting.SLOPE_TOLERANCE,
    z_layers: int | None = None,
    layer_edges_nm: list[float] | None = None,
    viscosity_mPa_s: float | None = None,
    temperature_K: float | None = None,
    method: str = "gls",
    skip_empty_layers: bool = False,
) -> DiffusionReport:
    """Self-diffusion of labelled groups of a trajectory.

    Parameters
    ----------
    traj : aseimd.analysis.trajectory.Trajectory
    selections : dict of str to str
        ``{label: mdtraj selection}``.
    com : bool
        Particles are residue centres of mass (of the selected atoms).
    dims : str
        Directions, a key of :data:`DIMS`.
    drift : str
        ``"system"`` (whole-system centre of mass, default), ``"none"``,
        ``"group:LABEL"`` (one of ``selections``) or any other mdtraj selection
        used as the reference (e.g. a frozen slab).
    fit_window_ps : (float, float), optional
    n_blocks : int
    z_layers, layer_edges_nm :
        Lateral (xy) D in ``z_layers`` equal layers across the box, or between given edges (nm).
    skip_empty_layers : bool
        Leave out (with a warning) a layer in which no particle of a group starts in some time
        block, instead of raising.
    viscosity_mPa_s, temperature_K : float, optional
        Both given: add the Yeh-Hummer corrected ``D_yh_m2_per_s`` (cubic boxes only).

    Returns
    -------
    DiffusionReport
    """
    from aseimd.analysis.engine import run_analyses

    analysis = DiffusionAnalysis(
        selections, com=com, dims=dims, drift=drift, fit_window_ps=fit_window_ps, n_blocks=n_blocks,
        tolerance=tolerance, z_layers=z_layers, layer_edges_nm=layer_edges_nm, viscosity_mPa_s=viscosity_mPa_s,
        temperature_K=temperature_K, method=method, skip_empty_layers=skip_empty_layers,
    )
    return run_analyses(traj, [analysis])[0]


class DiffusionAnalysis:
    """Self-diffusion of labelled groups: the analysis object of :func:`aseimd.analysis.engine.run_analyses`.

    Life cycle: ``prepare(traj)`` checks the options against the trajectory and
    returns the groups and the drift reference it needs; the engine reads the
    frames once for all analyses; ``conclude(positions, traj)`` does the fits
    and returns a :class:`DiffusionReport` (``to_json()``, ``tables()``).
    Parameters as in :func:`analyze_diffusion`.
    """

    name = "diffusion"

    def __init__(self, selections: dict[str, str], *, com: bool = False, dims: str = "xyz", drift: str = "system",
                 fit_window_ps: tuple[float, float] | None = None, n_blocks: int | None = None,
                 tolerance: float = fitting.SLOPE_TOLERANCE, z_layers: int | None = None,
                 layer_edges_nm: list[float] | None = None, viscosity_mPa_s: float | None = None,
                 temperature_K: float | None = None, method: str = "gls", skip_empty_layers: bool = False) -> None:
        dims_components(dims)
        if not selections:
            raise AnalysisError("give at least one --group LABEL=SELECTION")
        reserved = sorted(set(selections) & set(RESERVED_JSON_KEYS))
        if reserved:
            raise AnalysisError(f"group label {reserved[0]!r} is reserved (JSON keys "
                                f"{', '.join(RESERVED_JSON_KEYS)}); choose another label")
        if viscosity_mPa_s is not None and temperature_K is None:
            raise AnalysisError("the Yeh-Hummer correction needs --temperature-K as well as --viscosity-mPa-s")
        if z_layers is not None and layer_edges_nm is not None:
            raise AnalysisError("give either --z-layers or --layer-edges-nm, not both")
        if z_layers is not None and z_layers < 1:
            raise AnalysisError(f"--z-layers must be >= 1, got {z_layers}")
        if method not in METHODS:
            raise AnalysisError(f"--method {method!r} not allowed; please specify one of {', '.join(METHODS)}")
        self.selections = dict(selections)
        self.com, self.dims, self.drift = com, dims, drift
        self.fit_window_ps, self.n_blocks, self.tolerance = fit_window_ps, n_blocks, tolerance
        self.z_layers, self.layer_edges_nm = z_layers, layer_edges_nm
        self.skip_empty_layers = skip_empty_layers
        self.viscosity_mPa_s, self.temperature_K, self.method = viscosity_mPa_s, temperature_K, method
        self.groups: list = []
        self.reference = None

    def prepare(self, traj):
        """Check the options against ``traj``; return ``(groups, drift)`` for the engine."""
        from aseimd.analysis.groups import make_group

        n_blocks, fit_window_ps = self.n_blocks, self.fit_window_ps
        want_layers = self.z_layers is not None or self.layer_edges_nm is not None
        if self.method == "ols-blocks" or want_layers:
            ols_blocks = fitting.DEFAULT_BLOCKS if n_blocks is None else n_blocks
            fitting.block_bounds(traj.n_frames, ols_blocks)
            if fit_window_ps is not None:
                fitting.given_window(*fit_window_ps, traj.dt_ps, fitting.block_bounds(traj.n_frames, ols_blocks)[1])
        if (want_layers or self.viscosity_mPa_s is not None) and not traj.has_box:
            raise AnalysisError("layers and the Yeh-Hummer correction need a periodic box; the trajectory has none")
        groups = [make_group(traj, label, sel, com=self.com) for label, sel in self.selections.items()]
        drift = self.drift
        if drift in ("system", "none"):
            ref = drift
        elif drift.startswith("group:"):
            name = drift.split(":", 1)[1]
            if name not in self.selections:
                raise AnalysisError(f"--drift {drift!r}: no group labelled {name!r}; labels: "
                                    f"{', '.join(self.selections)}")
            ref = next(g for g in groups if g.label == name)
        else:
            try:
                ref = make_group(traj, "--drift", drift, com=False)
            except AnalysisError as exc:
                raise AnalysisError(f"{exc}; --drift takes system, none, group:LABEL or a selection") from None
        self.groups, self.reference = groups, ref
        return groups, ref

    def replica_estimates(self, pos, traj, pooled: DiffusionReport) -> dict[tuple[str, ...], tuple[float, float]]:
        """D of one replica's positions over each group's pooled fit window (keys of :meth:`DiffusionReport.estimates`)."""
        out = {}
        for g in self.groups:
            res = self_diffusion(pos.of(g.label), traj.dt_ps, dims=self.dims,
                                 fit_window_ps=pooled.results[g.label].window.ps(traj.dt_ps), n_blocks=self.n_blocks,
                                 tolerance=self.tolerance, label=g.label, method=self.method)
            out[(g.label, "D_m2_per_s")] = (res.D_m2_per_s, res.D_stderr_m2_per_s)
        return out

    def conclude(self, pos, traj) -> DiffusionReport:
        """Fits from the particle positions (:class:`aseimd.analysis.groups.ParticlePositions`)."""
        groups = self.groups
        dims, fit_window_ps, n_blocks, tolerance = self.dims, self.fit_window_ps, self.n_blocks, self.tolerance
        method, com = self.method, self.com
        viscosity_mPa_s, temperature_K = self.viscosity_mPa_s, self.temperature_K
        z_layers, layer_edges_nm = self.z_layers, self.layer_edges_nm
        want_layers = z_layers is not None or layer_edges_nm is not None
        yh = None
        if viscosity_mPa_s is not None:
            edge = cubic_box_edge_nm(pos.box_nm)
            corr = yeh_hummer_correction_m2_per_s(temperature_K, viscosity_mPa_s * 1e-3, edge)
            yh = {"correction_m2_per_s": corr, "box_edge_nm": edge, "viscosity_mPa_s": viscosity_mPa_s,
                  "temperature_K": temperature_K, "xi": YH_XI}

        results, layers, warnings = {}, {}, []
        for g in groups:
            res = self_diffusion(
                pos.of(g.label), traj.dt_ps, dims=dims, fit_window_ps=fit_window_ps, n_blocks=n_blocks,
                tolerance=tolerance, label=g.label, method=method,
            )
            folded = folding_warning(pos.of(g.label), pos.box_nm, g.label)
            if folded is not None:
                res.warnings.insert(0, folded)
            results[g.label] = res
            warnings += res.warnings
            if want_layers:
                if layer_edges_nm is not None:
                    edges = np.asarray(layer_edges_nm, float)
                else:
                    edges = np.linspace(0.0, float(pos.box_nm[:, 2, 2].max()), z_layers + 1)
                layers[g.label] = layer_diffusion(
                    pos.of(g.label), pos.box_nm, traj.dt_ps, edges, dims="xy", fit_window_ps=fit_window_ps,
                    n_blocks=fitting.DEFAULT_BLOCKS if n_blocks is None else n_blocks, tolerance=tolerance,
                    label=g.label, skip_empty=self.skip_empty_layers,
                )
                kept = {layer.z_range_nm for layer in layers[g.label]}
                for lo, hi in zip(edges[:-1], edges[1:]):
                    if (float(lo), float(hi)) not in kept:
                        warnings.append(f"{g.label} layer {lo:g}-{hi:g} nm: no {g.label} starts in it in every time "
                                        "block; no D for this layer (too few particles or too short a run)")
                for layer in layers[g.label]:
                    warnings += layer.result.warnings

        method = {
            "msd": "FFT mean-squared displacement over all time origins, averaged over particles",
            "particles": "residue centres of mass of the selected atoms" if com else "atoms",
            "unwrapping": "minimum-image steps between consecutive frames (idempotent on unwrapped input)"
            if traj.has_box else "none (no unit cell in the trajectory)",
            "drift_removed": pos.drift,
            "dims": dims,
            "estimator": method,
            "slope_tolerance": tolerance,
        } | (_GLS_METHOD if method == "gls" else {
            "einstein": f"D = slope / (2 * {len(dims_components(dims))}) of a least-squares line over the fit window",
            "fit_window": "given" if fit_window_ps is not None else (
                f"automatic: longest run of lags with |d ln MSD / d ln t - 1| < {tolerance} "
                f"(half-decade stencil), lags <= half a block"),
            "stderr": f"block averaging: std of D over {n_blocks or 5} independent consecutive time blocks / "
                      f"sqrt({n_blocks or 5})",
            "ci95": f"Student t with {(n_blocks or 5) - 1} degrees of freedom",
            "n_blocks": n_blocks or 5,
        })
        if method == "gls" and fit_window_ps is not None:
            method["fit_window"] = "given"
        if want_layers:
            method["layers"] = ("lateral (xy) MSD of particles whose wrapped z lies in the layer at the time "
                                "origin, on a logarithmic lag grid")
        return DiffusionReport(results, layers, yh, method, warnings)
