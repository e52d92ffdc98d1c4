"""Onsager transport coefficients, transference numbers and ionic conductivity.

Onsager coefficients (Fong et al., Macromolecules 53, 9503 (2020)) from
collective displacements in the centre-of-mass frame of the whole system:

    L_ij = lim 1/(2 d V k_B T) d/dt < ΔX_i(t) · ΔX_j(t) >,   X_i = Σ_{a in i} r_a - N_i R_com

with X_i the summed position of all ions of species i (FFT cross-correlation,
:func:`aseimd.analysis.msd.cross_msd_fft`), V the mean box volume and d the
number of directions. In SI, L_ij is in 1/(J m s) (per ion, not per mole).

From them, for charges z+ and z- (general, not only ±1):

    sigma_EH = e² (z+² L++ + z-² L-- + 2 z+ z- L+-)                  (Einstein-Helfand)
    t+ (Onsager) = (z+² L++ + z+ z- L+-) / (z+² L++ + z-² L-- + 2 z+ z- L+-)

and from the self-diffusion coefficients D± of the same ions (no correlations):

    sigma_NE = e² / (V k_B T) (N+ z+² D+ + N- z-² D-)                 (Nernst-Einstein)
    t_NE = N+ z+² D+ / (N+ z+² D+ + N- z-² D-)

which is D+ / (D+ + D-) for a 1:1 salt (N+ = N-, z+ = -z-).

Charges: formal charges (the species table, by residue name) unless given.
Scaled charges used in the simulation (e.g. 0.8 e) describe electronic
screening in the force field; they are not the charge an ion carries through
an electrode, so sigma uses formal charges by default. Pass scaled values
explicitly to get the "scaled-charge" conductivity (sigma scales with the
square of a common factor; t+ does not change).

Estimators (``method``): ``"gls"`` (default) fits every curve with one set of
generalised least-squares weights built from the exact random-walk covariance
of displacement correlations, over a window from the objective onset of
diffusion of the ion self MSDs (:mod:`aseimd.analysis.einstein`), with
jackknife errors over many blocks of time origins and the analytic error as
a cross-check; ``"ols-blocks"`` is the earlier estimator (least squares over
the overlap of the self-diffusive windows, block jackknife over 5 time
slices). Cross terms converge slowly: the warnings speak about what the user
reads -- t+ (Onsager) when its standard error exceeds 0.05, sigma_EH when its
relative error exceeds 0.2 -- and about a self MSD that is not diffusive in
the window (docs/analysis_transport.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aseimd.analysis import fitting
from aseimd.analysis._arrays import intersects, particle_sum, unique
from aseimd.analysis.diffusion import (
    KB_J_PER_K,
    NM2_PER_PS_IN_M2_PER_S,
    block_msds,
    dims_components,
    select_components,
)
from aseimd.analysis.fitting import FitWindow
from aseimd.analysis.msd import cross_msd_fft, msd_fft
from aseimd.analysis.unwrap import folding_warning
from aseimd.errors import AnalysisError

#: Elementary charge in C (exact, SI 2019).
E_CHARGE_C = 1.602176634e-19
#: Warn when the relative standard error of L+- exceeds this.
CROSS_TERM_MAX_REL_SE = 0.5
#: Warn when the Einstein-Helfand log-log slope in the window is farther than this from 1.
EH_SLOPE_TOLERANCE = 0.3


@dataclass
class TransferenceResult:
    """Onsager coefficients, transference numbers and conductivities with standard errors.

    Attributes
    ----------
    values, stderr : dict of str to float
        Keys ``D_plus``, ``D_minus`` (m²/s), ``L_pp``, ``L_mm``, ``L_pm`` (1/(J m s)),
        ``t_plus_onsager``, ``t_plus_ne``, ``sigma_ne``, ``sigma_eh`` (S/m).
    window : FitWindow
    dt_ps : float
    curves_nm2 : dict of str to numpy.ndarray, shape=(n_lags,)
        Whole-run curves: ``self_plus``, ``self_minus`` (per-ion MSD), ``pp``, ``mm``,
        ``pm`` (collective, nm²), ``eh`` (Σ z_i z_j <ΔX_i ΔX_j>, e² nm²).
    slopes : dict of str to float
        Log-log slopes in the window of ``self_plus``, ``self_minus``, ``eh``.
    diffusive : bool
    warnings : list of str
    """

    values: dict[str, float]
    stderr: dict[str, float]
    window: FitWindow
    dt_ps: float
    curves_nm2: dict[str, np.ndarray]
    slopes: dict[str, float]
    diffusive: bool
    n_plus: int
    n_minus: int
    z_plus: float
    z_minus: float
    volume_nm3: float
    temperature_K: float
    dims: str
    n_blocks: int
    warnings: list[str] = field(default_factory=list)
    method: str = "gls"
    stderr_analytic: dict[str, float] = field(default_factory=dict)
    per_block: dict[str, np.ndarray] = field(default_factory=dict)
    fit_lags: np.ndarray | None = None
    onset: dict | None = None
    curves_stderr_nm2: dict[str, np.ndarray] = field(default_factory=dict)
    intercepts_nm2: dict[str, float] = field(default_factory=dict)

    @property
    def lag_ps(self) -> np.ndarray:
        """Lag times of :attr:`curves_nm2`, shape=(n_lags,), in ps."""
        return np.arange(self.curves_nm2["pp"].size) * self.dt_ps

    def to_json(self) -> dict:
        """The result block of the transference JSON."""
        v, s = self.values, self.stderr
        extra = {"estimator": self.method}
        if self.method == "gls":
            extra |= {
                "stderr_source": "jackknife over blocks of time origins",
                "stderr_analytic": self.stderr_analytic,
                "fit_lags_ps": (np.asarray(self.fit_lags) * self.dt_ps).tolist(),
                "onset": self.onset,
            }
        return extra | {
            "t_plus_onsager": v["t_plus_onsager"], "t_plus_onsager_stderr": s["t_plus_onsager"],
            "t_plus_ne": v["t_plus_ne"], "t_plus_ne_stderr": s["t_plus_ne"],
            "sigma_ne_S_per_m": v["sigma_ne"], "sigma_ne_stderr_S_per_m": s["sigma_ne"],
            "sigma_eh_S_per_m": v["sigma_eh"], "sigma_eh_stderr_S_per_m": s["sigma_eh"],
            "L_ij": {
                "units": "1/(J m s)",
                "order": ["+", "-"],
                "value": [[v["L_pp"], v["L_pm"]], [v["L_pm"], v["L_mm"]]],
                "stderr": [[s["L_pp"], s["L_pm"]], [s["L_pm"], s["L_mm"]]],
                "L_pp": v["L_pp"], "L_mm": v["L_mm"], "L_pm": v["L_pm"],
            },
            "D_plus_m2_per_s": v["D_plus"], "D_plus_stderr_m2_per_s": s["D_plus"],
            "D_minus_m2_per_s": v["D_minus"], "D_minus_stderr_m2_per_s": s["D_minus"],
            "fit_window_ps": self.window.ps(self.dt_ps),
            "fit_window_automatic": self.window.automatic,
            "diffusive": self.diffusive,
            "slopes": self.slopes,
            "n_cations": self.n_plus, "n_anions": self.n_minus,
            "z_plus": self.z_plus, "z_minus": self.z_minus,
            "volume_nm3": self.volume_nm3, "temperature_K": self.temperature_K,
            "dims": self.dims, "n_blocks": self.n_blocks,
        }


def onsager_transport(
    cations_nm,
    anions_nm,
    dt_ps: float,
    volume_nm3: float,
    temperature_K: float,
    z_plus: float,
    z_minus: float,
    *,
    dims: str = "xyz",
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int | None = None,
    tolerance: float = fitting.SLOPE_TOLERANCE,
    method: str = "gls",
) -> TransferenceResult:
    """Onsager coefficients, t+ and conductivity from ion positions.

    Parameters
    ----------
    cations_nm, anions_nm : numpy.ndarray, shape=(n_frames, n_ions, 3), or lists of them
        Unwrapped positions in nm in the centre-of-mass frame of the system; a
        list holds replicas (independent runs of the same system), which are pooled.
    dt_ps : float
        Time between frames.
    volume_nm3 : float
        Mean box volume.
    temperature_K : float
    z_plus, z_minus : float
        Charges in e (formal by default; see the module docstring).
    dims, fit_window_ps, tolerance :
        As in :func:`aseimd.analysis.diffusion.self_diffusion`.
    n_blocks : int, optional
        Blocks (``ols-blocks``: time slices, default 5; ``gls``: blocks of time
        origins per run, default automatic).
    method : {"gls", "ols-blocks"}
        The estimator (see docs/analysis_transport.md).

    Returns
    -------
    TransferenceResult
    """
    if method not in METHODS:
        raise AnalysisError(f"method {method!r} not allowed; please specify one of {', '.join(METHODS)}")
    if method == "ols-blocks":
        if isinstance(cations_nm, (list, tuple)):
            if len(cations_nm) != 1:
                raise AnalysisError("replicas are pooled by --method gls only")
            cations_nm, anions_nm = cations_nm[0], anions_nm[0]
        return _onsager_ols(cations_nm, anions_nm, dt_ps, volume_nm3, temperature_K, z_plus, z_minus,
                            dims=dims, fit_window_ps=fit_window_ps,
                            n_blocks=fitting.DEFAULT_BLOCKS if n_blocks is None else n_blocks,
                            tolerance=tolerance)
    return _onsager_gls(cations_nm, anions_nm, dt_ps, volume_nm3, temperature_K, z_plus, z_minus,
                        dims=dims, fit_window_ps=fit_window_ps, n_blocks=n_blocks, tolerance=tolerance)


_GLS_METHOD = {
    "fit": "one set of generalised least-squares weights for every curve (self, collective, cross), with the exact "
           "random-walk covariance of displacement correlations (Bullerjahn et al., J. Chem. Phys. 152, 234113 "
           "(2020), extended to collective and cross terms), intercept free",
    "fit_window": "automatic: first window [t0, 4 t0] where both ion self MSDs are straight lines at the precision "
                  "of the data (chi² test against the random-walk covariance, p >= 0.05)",
    "stderr": "delete-one-block jackknife of every reported number over blocks of time origins (each >= 8 window "
              "lengths; 8-100 per run; replicas pooled); stderr_analytic is the random-walk error, a warning "
              "is given when they disagree",
}

#: Estimators of ``onsager_transport`` and ``self_diffusion``.
METHODS = ("gls", "ols-blocks")
#: Warn when the standard error of t+ (Onsager) exceeds this (absolute).
T_PLUS_MAX_SE = 0.05
#: Warn when the relative standard error of sigma_EH exceeds this.
SIGMA_MAX_REL_SE = 0.2


def _onsager_gls(cations_nm, anions_nm, dt_ps, volume_nm3, temperature_K, z_plus, z_minus, *,
                 dims, fit_window_ps, n_blocks, tolerance=fitting.SLOPE_TOLERANCE) -> TransferenceResult:
    from aseimd.analysis.einstein import Series, fit_gls, se_disagreement
    from aseimd.analysis.msd_covariance import msd_variance_diagonal

    comps = dims_components(dims)
    d = len(comps)
    _check_physical(temperature_K, volume_nm3, z_plus, z_minus)
    cats = list(cations_nm) if isinstance(cations_nm, (list, tuple)) else [cations_nm]
    ans = list(anions_nm) if isinstance(anions_nm, (list, tuple)) else [anions_nm]
    if len(cats) != len(ans) or not cats:
        raise AnalysisError("give the same number (>= 1) of cation and anion replicas")
    n_p, n_m = cats[0].shape[1], ans[0].shape[1]
    cat = [select_components(c, comps) for c in cats]
    an = [select_components(a, comps) for a in ans]
    Xp = [particle_sum(c) for c in cat]  # summed ion positions (n_frames, d), float64
    Xm = [particle_sum(a) for a in an]
    series = {
        "self_plus": Series([(c, None) for c in cat], per=n_p, onset_dims=n_p * d),
        "self_minus": Series([(a, None) for a in an], per=n_m, onset_dims=n_m * d),
        "pp": Series([(x, None) for x in Xp]),
        "mm": Series([(x, None) for x in Xm]),
        "pm": Series([(x, y) for x, y in zip(Xp, Xm, strict=True)]),
    }
    kT = KB_J_PER_K * temperature_K
    volume_m3 = volume_nm3 * 1e-27
    rate = NM2_PER_PS_IN_M2_PER_S / (2 * d * dt_ps)
    to_L = 1.0 / (volume_m3 * kT)
    args = (n_p, n_m, z_plus, z_minus, volume_m3, kT)

    def derive(sl):
        coef = {"D_plus": sl["self_plus"] * rate, "D_minus": sl["self_minus"] * rate,
                "L_pp": sl["pp"] * rate * to_L, "L_mm": sl["mm"] * rate * to_L, "L_pm": sl["pm"] * rate * to_L}
        return coef | _derived(*(coef[k] for k in _COEFS), *args)

    fit = fit_gls(series, derive, dt_ps, fit_window_ps=fit_window_ps, n_blocks=n_blocks, tolerance=tolerance)
    values, stderr = fit.values, fit.stderr
    c = fit.curves
    c["eh"] = z_plus**2 * c["pp"] + z_minus**2 * c["mm"] + 2 * z_plus * z_minus * c["pm"]

    # analytic (random-walk) standard errors: Cov(slope_ab, slope_cd) = v d (s_ac s_bd + s_ad s_bc), s = slope/d
    v = fit.line.slope_variance
    b = fit.slopes_per_frame
    s = {"pp": b["pp"] / d, "mm": b["mm"] / d, "pm": b["pm"] / d}
    sig = {("p", "p"): s["pp"], ("m", "m"): s["mm"], ("p", "m"): s["pm"], ("m", "p"): s["pm"]}
    keys = (("p", "p"), ("m", "m"), ("p", "m"))
    cov = np.array([[v * d * (sig[(a, c_)] * sig[(b_, d_)] + sig[(a, d_)] * sig[(b_, c_)])
                     for (c_, d_) in keys] for (a, b_) in keys])
    num = z_plus**2 * b["pp"] + z_plus * z_minus * b["pm"]
    den = z_plus**2 * b["pp"] + z_minus**2 * b["mm"] + 2 * z_plus * z_minus * b["pm"]
    g_t = np.array([z_plus**2 * (den - num), -num * z_minus**2,
                    z_plus * z_minus * den - 2 * z_plus * z_minus * num]) / den**2
    g_s = np.array([z_plus**2, z_minus**2, 2 * z_plus * z_minus]) * E_CHARGE_C**2 * rate * to_L
    h = fit.homogeneity  # particles diffusing at different rates count as h N in the random-walk variance
    var_self = {k: v * 2.0 * b[k] ** 2 / (h[k] * n * d) for k, n in (("self_plus", n_p), ("self_minus", n_m))}
    dp, dm = b["self_plus"], b["self_minus"]
    ne_p, ne_m = n_p * z_plus**2 * dp, n_m * z_minus**2 * dm
    g_ne = np.array([ne_m * n_p * z_plus**2, -ne_p * n_m * z_minus**2]) / (ne_p + ne_m) ** 2
    analytic = {
        "D_plus": float(np.sqrt(var_self["self_plus"])) * rate,
        "D_minus": float(np.sqrt(var_self["self_minus"])) * rate,
        "L_pp": float(np.sqrt(cov[0, 0])) * rate * to_L,
        "L_mm": float(np.sqrt(cov[1, 1])) * rate * to_L,
        "L_pm": float(np.sqrt(cov[2, 2])) * rate * to_L,
        "t_plus_onsager": float(np.sqrt(max(g_t @ cov @ g_t, 0.0))),
        "sigma_eh": float(np.sqrt(max(g_s @ cov @ g_s, 0.0))),
        "t_plus_ne": float(np.sqrt(g_ne[0] ** 2 * var_self["self_plus"] + g_ne[1] ** 2 * var_self["self_minus"])),
        "sigma_ne": float(E_CHARGE_C**2 / (volume_m3 * kT) * rate * np.sqrt(
            (n_p * z_plus**2) ** 2 * var_self["self_plus"] + (n_m * z_minus**2) ** 2 * var_self["self_minus"])),
    }

    window = fit.window
    w = window.ps(dt_ps)
    slopes = {"self_plus": fitting.loglog_slope(c["self_plus"], window),
              "self_minus": fitting.loglog_slope(c["self_minus"], window),
              "eh": fitting.loglog_slope(c["eh"], window)}
    warnings: list[str] = []
    diffusive = bool(window.found)
    if fit.transient is not None:
        warnings.append(
            f"ion self MSD not diffusive: after the window {w[0]:g}-{w[1]:g} ps its slope falls to "
            f"{fit.transient['slope_ratio']:.2f} x the fitted one (at {fit.transient['lag_ps']:g} ps); all "
            "coefficients are apparent values from a short-time transient -- run longer"
        )
    elif not window.found:
        warnings.append(
            "no window [t0, 4 t0] where the ion self MSDs are straight lines at the precision of the data "
            f"(chi² test, p >= 0.05) up to {w[1]:g} ps; all coefficients are apparent values from "
            f"{w[0]:g}-{w[1]:g} ps -- run longer"
        )
    t_se, t_val = stderr["t_plus_onsager"], values["t_plus_onsager"]
    if not t_se <= T_PLUS_MAX_SE:
        warnings.append(
            f"t+ (Onsager) = {t_val:.3f} ± {t_se:.3f} is not converged (standard error > {T_PLUS_MAX_SE}); "
            "distinct-ion correlations converge slowly -- run longer or pool replicas"
        )
    rel = stderr["sigma_eh"] / abs(values["sigma_eh"]) if values["sigma_eh"] else np.inf
    if not rel <= SIGMA_MAX_REL_SE:
        warnings.append(
            f"sigma_EH = {values['sigma_eh']:.3g} ± {stderr['sigma_eh']:.2g} S/m is not converged "
            f"(relative standard error {rel:.2f} > {SIGMA_MAX_REL_SE}) -- run longer or pool replicas"
        )
    for key, name in (("t_plus_onsager", "t+ (Onsager)"), ("sigma_eh", "sigma_EH"), ("D_plus", "D+"),
                      ("D_minus", "D-")):
        ratio = se_disagreement(stderr[key], analytic[key], fit.n_blocks, values[key])
        if ratio is not None:
            warnings.append(
                f"{name}: the block standard error is {ratio:.2f} x the random-walk (analytic) one; the motion "
                "is not a simple random walk over the fit window (the block error is reported)"
            )
    n_lags = c["pp"].size
    grid = np.arange(1, n_lags)
    Kd = msd_variance_diagonal(grid, min(fit.n_frames)) / len(fit.n_frames)
    bands = {}
    for key, n in (("self_plus", n_p * d), ("self_minus", n_m * d)):
        bands[key] = np.r_[0.0, np.sqrt(2.0 * b[key] ** 2 * Kd / n)]
    for key, pair in (("pp", (("p", "p"), ("p", "p"))), ("mm", (("m", "m"), ("m", "m"))),
                      ("pm", (("p", "m"), ("p", "m")))):
        (a_, b_), (c_, d_) = pair
        bands[key] = np.r_[0.0, np.sqrt(np.maximum(Kd * d * (sig[(a_, c_)] * sig[(b_, d_)] + sig[(a_, d_)] * sig[(b_, c_)]), 0))]
    gs = np.array([z_plus**2, z_minus**2, 2 * z_plus * z_minus])
    cov_unit = np.array([[d * (sig[(a, c_)] * sig[(b_, d_)] + sig[(a, d_)] * sig[(b_, c_)])
                          for (c_, d_) in keys] for (a, b_) in keys])
    bands["eh"] = np.r_[0.0, np.sqrt(np.maximum(Kd * (gs @ cov_unit @ gs), 0))]
    if fit_window_ps is not None and not window.found:
        warnings.append(
            f"the ion self MSDs are not straight lines over the given window {w[0]:g}-{w[1]:g} ps at the "
            f"precision of the data (chi² p = {fit.linearity_p_value:.2g}); all coefficients are apparent values"
        )
    onset = {"linearity_p_value": fit.linearity_p_value, "slope_homogeneity_plus": h["self_plus"],
             "slope_homogeneity_minus": h["self_minus"]}
    if fit.onset is not None:
        onset |= {"test": "chi2 of the GLS line against the random-walk covariance, first window passing",
                  "p_value": fit.onset.p_value, "found": fit.onset.found, "windows_tested": fit.onset.n_tested,
                  "onset_ps": fit.onset.start * dt_ps, "span": 4.0}
    return TransferenceResult(
        {k: float(v_) for k, v_ in values.items()}, stderr, window, dt_ps, c, slopes, diffusive, n_p, n_m,
        float(z_plus), float(z_minus), float(volume_nm3), float(temperature_K), dims, fit.n_blocks, warnings,
        method="gls", stderr_analytic=analytic, per_block=fit.per_block, fit_lags=fit.lags, onset=onset,
        curves_stderr_nm2=bands, intercepts_nm2=fit.intercepts,
    )


def _check_physical(temperature_K, volume_nm3, z_plus, z_minus) -> None:
    if not temperature_K > 0:
        raise AnalysisError(f"--temperature-K must be > 0, got {temperature_K:g}")
    if not volume_nm3 > 0:
        raise AnalysisError(f"box volume must be > 0 nm^3, got {volume_nm3:g}")
    if not (z_plus > 0 and z_minus < 0):
        raise AnalysisError(
            f"cation charge must be > 0 and anion charge < 0, got {z_plus:g} and {z_minus:g}"
        )


def _derived(D_p, D_m, L_pp, L_mm, L_pm, n_p, n_m, z_p, z_m, volume_m3, kT) -> dict[str, np.ndarray]:
    """Transference numbers and conductivities from coefficients (arrays broadcast)."""
    ne_p = n_p * z_p**2 * D_p
    ne_m = n_m * z_m**2 * D_m
    num = z_p**2 * L_pp + z_p * z_m * L_pm
    den = z_p**2 * L_pp + z_m**2 * L_mm + 2 * z_p * z_m * L_pm
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "t_plus_onsager": num / den,
            "t_plus_ne": ne_p / (ne_p + ne_m),
            "sigma_ne": E_CHARGE_C**2 / (volume_m3 * kT) * (ne_p + ne_m),
            "sigma_eh": E_CHARGE_C**2 * den,
        }


def _onsager_ols(
    cations_nm: np.ndarray,
    anions_nm: np.ndarray,
    dt_ps: float,
    volume_nm3: float,
    temperature_K: float,
    z_plus: float,
    z_minus: float,
    *,
    dims: str = "xyz",
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int = fitting.DEFAULT_BLOCKS,
    tolerance: float = fitting.SLOPE_TOLERANCE,
) -> TransferenceResult:
    """Onsager coefficients, t+ and conductivity from ion positions.

    Parameters
    ----------
    cations_nm, anions_nm : numpy.ndarray, shape=(n_frames, n_ions, 3)
        Unwrapped positions in nm in the centre-of-mass frame of the system.
    dt_ps : float
        Time between frames.
    volume_nm3 : float
        Mean box volume.
    temperature_K : float
    z_plus, z_minus : float
        Charges in e (formal by default; see the module docstring).
    dims, fit_window_ps, n_blocks, tolerance :
        As in :func:`aseimd.analysis.diffusion.self_diffusion`.

    Returns
    -------
    TransferenceResult
    """
    comps = dims_components(dims)
    d = len(comps)
    _check_physical(temperature_K, volume_nm3, z_plus, z_minus)
    n_frames = cations_nm.shape[0]
    block_len, max_lag = fitting.block_bounds(n_frames, n_blocks)
    n_p, n_m = cations_nm.shape[1], anions_nm.shape[1]

    # whole-run curves, summed over the chosen directions
    cat, an = select_components(cations_nm, comps), select_components(anions_nm, comps)
    self_p, self_m = msd_fft(cat).sum(-1), msd_fft(an).sum(-1)
    Xp, Xm = cat.sum(axis=1), an.sum(axis=1)  # (n_frames, d)
    pp, mm, pm = (cross_msd_fft(a, b).sum(-1) for a, b in ((Xp, Xp), (Xm, Xm), (Xp, Xm)))
    eh = z_plus**2 * pp + z_minus**2 * mm + 2 * z_plus * z_minus * pm

    # per-block curves (lags 0..max_lag)
    bself_p = block_msds(cations_nm, n_blocks, max_lag, comps)
    bself_m = block_msds(anions_nm, n_blocks, max_lag, comps)

    def blocks_cross(a, b):
        return np.stack([
            cross_msd_fft(a[k * block_len:(k + 1) * block_len], b[k * block_len:(k + 1) * block_len],
                          max_lag=max_lag).sum(-1)
            for k in range(n_blocks)
        ])

    bpp, bmm, bpm = blocks_cross(Xp, Xp), blocks_cross(Xm, Xm), blocks_cross(Xp, Xm)

    warnings: list[str] = []
    if fit_window_ps is not None:
        window = fitting.given_window(*fit_window_ps, dt_ps, max_lag)
    else:
        window = _common_window(self_p, self_m, max_lag, tolerance, warnings)

    kT = KB_J_PER_K * temperature_K
    volume_m3 = volume_nm3 * 1e-27
    rate = NM2_PER_PS_IN_M2_PER_S / (2 * d * dt_ps)  # nm²/frame -> m²/s, divided by 2d

    def slope(curve):
        return float(fitting.linear_slope(curve, window)) * rate

    def bslope(curves):
        return fitting.linear_slope(curves.T, window) * rate

    to_L = 1.0 / (volume_m3 * kT)
    full = {"D_plus": slope(self_p), "D_minus": slope(self_m),
            "L_pp": slope(pp) * to_L, "L_mm": slope(mm) * to_L, "L_pm": slope(pm) * to_L}
    blocks = {"D_plus": bslope(bself_p), "D_minus": bslope(bself_m),
              "L_pp": bslope(bpp) * to_L, "L_mm": bslope(bmm) * to_L, "L_pm": bslope(bpm) * to_L}
    args = (n_p, n_m, z_plus, z_minus, volume_m3, kT)
    values = full | {k: float(v) for k, v in _derived(*(full[k] for k in _COEFS), *args).items()}
    # block jackknife: leave one block out, recompute everything from the mean of the rest
    loo = {k: (v.sum() - v) / (n_blocks - 1) for k, v in blocks.items()}
    loo |= _derived(*(loo[k] for k in _COEFS), *args)
    stderr = {k: fitting.jackknife_stderr(v) for k, v in loo.items()}

    slopes = {
        "self_plus": fitting.loglog_slope(self_p, window),
        "self_minus": fitting.loglog_slope(self_m, window),
        "eh": fitting.loglog_slope(eh, window),
    }
    diffusive = bool(window.found and all(
        np.isfinite(slopes[k]) and abs(slopes[k] - 1) < tolerance for k in ("self_plus", "self_minus")
    ))
    w = window.ps(dt_ps)
    for key, name in (("self_plus", "cation"), ("self_minus", "anion")):
        if not (np.isfinite(slopes[key]) and abs(slopes[key] - 1) < tolerance):
            warnings.append(
                f"{name} self MSD not diffusive in the fit window {w[0]:g}-{w[1]:g} ps "
                f"(log-log slope {slopes[key]:.2f}); all coefficients are apparent values -- run longer"
            )
    if not (np.isfinite(slopes["eh"]) and abs(slopes["eh"] - 1) < EH_SLOPE_TOLERANCE):
        warnings.append(
            f"Einstein-Helfand (collective charge) MSD has log-log slope {slopes['eh']:.2f} in the fit "
            "window; sigma_EH and t+ (Onsager) are not converged"
        )
    rel = stderr["L_pm"] / abs(values["L_pm"]) if values["L_pm"] != 0 else np.inf
    if not rel <= CROSS_TERM_MAX_REL_SE:
        warnings.append(
            f"cross term L+- not converged: relative standard error {rel:.2f} > {CROSS_TERM_MAX_REL_SE} "
            "(distinct-ion correlations converge slowly; t+ (Onsager) is uncertain -- run longer or average "
            "replicas)"
        )
    curves = {"self_plus": self_p, "self_minus": self_m, "pp": pp, "mm": mm, "pm": pm, "eh": eh}
    curves = {k: v[: n_frames // 2 + 1] for k, v in curves.items()}
    return TransferenceResult(
        values, stderr, window, dt_ps, curves, slopes, diffusive, n_p, n_m, float(z_plus), float(z_minus),
        float(volume_nm3), float(temperature_K), dims, n_blocks, warnings, method="ols-blocks",
    )


_COEFS = ("D_plus", "D_minus", "L_pp", "L_mm", "L_pm")


def _common_window(self_p, self_m, max_lag: int, tolerance: float, warnings: list[str]) -> FitWindow:
    """Overlap of the automatic windows of the two self MSDs (or the later one if they do not overlap)."""
    wp = fitting.choose_window(self_p, max_lag, tolerance)
    wm = fitting.choose_window(self_m, max_lag, tolerance)
    found = wp.found and wm.found
    start, stop = max(wp.start, wm.start), min(wp.stop, wm.stop)
    if found and stop >= fitting.MIN_WINDOW_RATIO * start:
        return FitWindow(start, stop, automatic=True, found=True)
    if found:
        later = wp if wp.start >= wm.start else wm
        warnings.append("cation and anion MSDs are diffusive over non-overlapping lags; using the later window")
        return later
    return wp if not wp.found else wm


def volume_nm3(box_nm: np.ndarray | None) -> float:
    """Mean box volume over frames in nm³; a box is required."""
    if box_nm is None:
        raise AnalysisError(
            "conductivity and Onsager coefficients need the box volume; the trajectory has no unit cell"
        )
    return float(np.abs(np.linalg.det(np.asarray(box_nm, float))).mean())


def group_charge(group, given: float | None, option: str) -> tuple[float, str]:
    """The charge of a group's ions: ``given``, else the common formal charge of its residues.

    Raises
    ------
    AnalysisError
        If the residues have no known formal charge or different ones.
    """
    if given is not None:
        return float(given), option
    charges = group.formal_charges
    if np.any(~np.isfinite(charges)):
        unknown = sorted({r for r, c in zip(group.particle_residues, charges, strict=True) if not np.isfinite(c)})
        raise AnalysisError(
            f"group {group.label!r}: no formal charge known for residue(s) {', '.join(unknown)} "
            f"(not in the species table); pass {option}"
        )
    values = unique(charges)
    if values.size != 1:
        raise AnalysisError(
            f"group {group.label!r} mixes ions of charges {', '.join(f'{v:g}' for v in values.tolist())}; "
            f"select one kind or pass {option}"
        )
    if values[0] == 0:
        names = ", ".join(sorted(set(group.particle_residues)))
        raise AnalysisError(
            f"group {group.label!r}: residue {names} is neutral (formal charge 0 in the species table), "
            f"not an {'anion' if 'anion' in option else 'cation'}; select the ions, or pass {option} Q "
            "to treat it as charged"
        )
    return float(values[0]), "species table (formal charge by residue name)"


@dataclass
class TransferenceReport:
    """What ``aseimd analyze transference`` writes."""

    result: TransferenceResult
    labels: tuple[str, str]
    charge_source: dict[str, str]
    method: dict
    warnings: list[str]

    def tables(self) -> dict[str, tuple[list[str], list[np.ndarray]]]:
        """``{"msd": (headers, columns)}``: lag time, self, collective and charge MSDs (and their ±1σ errors)."""
        res, (cat, an) = self.result, self.labels
        c, e = res.curves_nm2, res.curves_stderr_nm2
        names = [("self_plus", f"{cat} self MSD", "nm^2"), ("self_minus", f"{an} self MSD", "nm^2"),
                 ("pp", f"{cat}-{cat} collective MSD", "nm^2"), ("mm", f"{an}-{an} collective MSD", "nm^2"),
                 ("pm", f"{cat}-{an} collective MSD", "nm^2"), ("eh", "charge MSD", "e^2 nm^2")]
        n = c["pp"].size
        headers, columns = ["Time (ps)"], [res.dt_ps * np.arange(n)]
        for key, title, unit in names:
            headers.append(f"{title} ({unit})")
            columns.append(c[key][:n])
        for key, title, unit in names:
            if key in e:
                headers.append(f"{title} stderr ({unit})")
                columns.append(e[key][:n])
        return {"msd": (headers, columns)}

    def estimates(self) -> dict[tuple[str, ...], tuple[float, float]]:
        """``{(json key,): (value, standard error)}`` of t+, sigma and D± (the replica cross-check,
        :mod:`aseimd.analysis.replicas`)."""
        return _estimates(self.result)

    def to_json(self) -> dict:
        """Result keys at the top level, then ``cation``/``anion`` labels, ``method``, ``warnings``."""
        return self.result.to_json() | {
            "cation": {"label": self.labels[0], "charge_e": self.result.z_plus,
                       "charge_source": self.charge_source["cation"]},
            "anion": {"label": self.labels[1], "charge_e": self.result.z_minus,
                      "charge_source": self.charge_source["anion"]},
            "method": self.method,
            "warnings": self.warnings,
        }


#: Quantities of the replica cross-check: JSON key -> key of ``TransferenceResult.values``.
_ESTIMATE_KEYS = {"t_plus_onsager": "t_plus_onsager", "t_plus_ne": "t_plus_ne", "sigma_eh_S_per_m": "sigma_eh",
                  "sigma_ne_S_per_m": "sigma_ne", "D_plus_m2_per_s": "D_plus", "D_minus_m2_per_s": "D_minus"}


def _estimates(res: TransferenceResult) -> dict[tuple[str, ...], tuple[float, float]]:
    return {(key,): (float(res.values[v]), float(res.stderr[v])) for key, v in _ESTIMATE_KEYS.items()}


def analyze_transference(
    traj,
    cation: tuple[str, str],
    anion: tuple[str, str],
    *,
    temperature_K: float,
    cation_charge: float | None = None,
    anion_charge: float | None = None,
    dims: str = "xyz",
    fit_window_ps: tuple[float, float] | None = None,
    n_blocks: int | None = None,
    tolerance: float = fitting.SLOPE_TOLERANCE,
    method: str = "gls",
) -> TransferenceReport:
    """Transference numbers and conductivity of a trajectory.

    Parameters
    ----------
    traj : aseimd.analysis.trajectory.Trajectory
    cation, anion : (str, str)
        ``(label, mdtraj selection)``; each selected residue's selected atoms form one ion
        (its centre of mass), so a polymer-bound anion (e.g. the sulfonate atoms of Li-Nafion
        side chains) works.
    temperature_K : float
    cation_charge, anion_charge : float, optional
        Override the formal charges from the species table.

    Returns
    -------
    TransferenceReport
    """
    from aseimd.analysis.engine import run_analyses

    analysis = TransferenceAnalysis(cation, anion, temperature_K=temperature_K, cation_charge=cation_charge,
                                    anion_charge=anion_charge, dims=dims, fit_window_ps=fit_window_ps,
                                    n_blocks=n_blocks, tolerance=tolerance, method=method)
    return run_analyses(traj, [analysis])[0]


class TransferenceAnalysis:
    """Onsager transport of one cation and one anion group, for :func:`aseimd.analysis.engine.run_analyses`.

    Life cycle as :class:`aseimd.analysis.diffusion.DiffusionAnalysis`: ``prepare(traj)`` returns the
    two ion groups (residue centres of mass) and the drift reference (the whole system), ``conclude``
    returns a :class:`TransferenceReport`. Parameters as in :func:`analyze_transference`.
    """

    name = "transference"

    def __init__(self, cation: tuple[str, str], anion: tuple[str, str], *, temperature_K: float,
                 cation_charge: float | None = None, anion_charge: float | None = None, dims: str = "xyz",
                 fit_window_ps: tuple[float, float] | None = None, n_blocks: int | None = None,
                 tolerance: float = fitting.SLOPE_TOLERANCE, method: str = "gls") -> None:
        self.cation, self.anion = tuple(cation), tuple(anion)
        self.temperature_K, self.cation_charge, self.anion_charge = temperature_K, cation_charge, anion_charge
        self.dims, self.fit_window_ps, self.n_blocks = dims, fit_window_ps, n_blocks
        self.tolerance, self.method = tolerance, method
        dims_components(dims)
        if method not in METHODS:
            raise AnalysisError(f"--method {method!r} not allowed; please specify one of {', '.join(METHODS)}")

    def prepare(self, traj):
        """Check the options against ``traj``; return ``(groups, "system")`` for the engine."""
        from aseimd.analysis.groups import make_group

        cation, anion, method = self.cation, self.anion, self.method
        n_blocks, fit_window_ps = self.n_blocks, self.fit_window_ps
        if cation[0] == anion[0]:
            raise AnalysisError(f"label {cation[0]!r} is used twice; cation and anion labels must differ")
        if not traj.has_box:
            raise AnalysisError(
                "conductivity and Onsager coefficients need the box volume; the trajectory has no unit cell"
            )
        if method == "ols-blocks":
            fitting.block_bounds(traj.n_frames, fitting.DEFAULT_BLOCKS if n_blocks is None else n_blocks)
        gp = make_group(traj, cation[0], cation[1], com=True)
        gm = make_group(traj, anion[0], anion[1], com=True)
        if intersects(gp.atom_indices, gm.atom_indices):
            raise AnalysisError(f"cation {cation[0]!r} and anion {anion[0]!r} selections share atoms")
        z_p, src_p = group_charge(gp, self.cation_charge, "--cation-charge")
        z_m, src_m = group_charge(gm, self.anion_charge, "--anion-charge")
        if fit_window_ps is not None and method == "ols-blocks":
            nb = fitting.DEFAULT_BLOCKS if n_blocks is None else n_blocks
            fitting.given_window(*fit_window_ps, traj.dt_ps, fitting.block_bounds(traj.n_frames, nb)[1])
        self._state = (gp, gm, z_p, z_m, src_p, src_m)
        return [gp, gm], "system"

    def replica_estimates(self, pos, traj, pooled: TransferenceReport) -> dict[tuple[str, ...], tuple[float, float]]:
        """t+, sigma and D± of one replica's positions over the pooled fit window (keys of
        :meth:`TransferenceReport.estimates`)."""
        gp, gm, z_p, z_m = self._state[:4]
        res = onsager_transport(
            pos.of(gp.label), pos.of(gm.label), traj.dt_ps, volume_nm3(pos.box_nm), self.temperature_K, z_p, z_m,
            dims=self.dims, fit_window_ps=pooled.result.window.ps(traj.dt_ps), n_blocks=self.n_blocks,
            tolerance=self.tolerance, method=self.method,
        )
        return _estimates(res)

    def conclude(self, pos, traj) -> TransferenceReport:
        """Fits from the particle positions (:class:`aseimd.analysis.groups.ParticlePositions`)."""
        gp, gm, z_p, z_m, src_p, src_m = self._state
        temperature_K, dims, fit_window_ps = self.temperature_K, self.dims, self.fit_window_ps
        n_blocks, tolerance, method = self.n_blocks, self.tolerance, self.method
        res = onsager_transport(
            pos.of(gp.label), pos.of(gm.label), traj.dt_ps, volume_nm3(pos.box_nm), temperature_K, z_p, z_m,
            dims=dims, fit_window_ps=fit_window_ps, n_blocks=n_blocks, tolerance=tolerance, method=method,
        )
        estimator = method
        method = {
            "frame": "centre of mass of the whole system (all atoms, mass-weighted) subtracted from every ion",
            "ions": "residue centres of mass of the selected atoms (one ion per selected residue)",
            "onsager": "L_ij = slope of <dX_i . dX_j> / (2 d V kB T), X_i = summed ion positions, FFT correlations",
            "t_plus_onsager": "(z+^2 L++ + z+ z- L+-) / (z+^2 L++ + z-^2 L-- + 2 z+ z- L+-)",
            "t_plus_ne": "N+ z+^2 D+ / (N+ z+^2 D+ + N- z-^2 D-)  (= D+/(D+ + D-) for a 1:1 salt)",
            "sigma_eh": "e^2 (z+^2 L++ + z-^2 L-- + 2 z+ z- L+-)",
            "sigma_ne": "e^2 / (V kB T) (N+ z+^2 D+ + N- z-^2 D-)",
            "charges": "formal charges unless given (scaled simulation charges do not enter unless passed)",
            "estimator": estimator,
            "n_blocks": res.n_blocks,
        } | (_GLS_METHOD if estimator == "gls" else {
            "fit_window": "automatic: overlap of the diffusive windows of the cation and anion self MSDs",
            "stderr": f"block jackknife over {res.n_blocks} independent consecutive time slices",
        })
        if fit_window_ps is not None:
            method["fit_window"] = "given"
        folded = [w for g in (gp, gm) if (w := folding_warning(pos.of(g.label), pos.box_nm, g.label)) is not None]
        return TransferenceReport(
            res, (gp.label, gm.label), {"cation": src_p, "anion": src_m}, method, folded + list(res.warnings)
        )
