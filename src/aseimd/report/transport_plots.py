"""Figures for transport analyses: MSD curves with error bands, slope-1 guide and fit window; Onsager curves.

Every curve is drawn with its ±1σ band where the analysis gives one (the
random-walk error of the ``gls`` estimator, see docs/analysis_transport.md),
the fit window is shaded and the fitted line dashed; on log-log MSD axes a
slope-1 guide (dotted) shows where the motion is diffusive. The
Einstein-Helfand (charge) curve is in e² nm², so it gets its own axis.
"""

from __future__ import annotations

import numpy as np

from aseimd.report.figures import new_figure

#: Fixed margins (figure fractions) of the two figures: constrained layout would measure every label
#: once more before drawing; these fit the labels drawn here (checked by eye at the default size).
MSD_MARGINS = {"left": 0.11, "right": 0.98, "bottom": 0.135, "top": 0.92}
ONSAGER_MARGINS = {"left": 0.11, "right": 0.87, "bottom": 0.12, "top": 0.93}


def _log_sample(n: int, points: int = 400) -> np.ndarray:
    """Indices 1..n-1 spaced logarithmically (plots of 10^4 lags stay light)."""
    if n <= points:
        return np.arange(1, n)
    return np.unique(np.round(np.geomspace(1, n - 1, points)).astype(int))


def _plain_log_labels(ax) -> None:
    """Decade ticks labelled as plain numbers (0.1, 1, 10, 1e+04): matplotlib's default 10^n labels go
    through its mathtext parser, whose first use costs more than drawing the rest of the figure."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())


def msd_figure(results: dict, layers: dict | None = None):
    """Log-log MSD against time per group: ±1σ band, fit window shaded, fit dashed, slope-1 guide dotted.

    Parameters
    ----------
    results : dict of str to aseimd.analysis.diffusion.DiffusionResult
    layers : dict of str to list of LayerResult, optional
        Layer curves are drawn thin.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_figure(margins=MSD_MARGINS)
    curves = [(label, res, 1.6) for label, res in results.items()]
    for layer_list in (layers or {}).values():
        curves += [(layer.result.label, layer.result, 0.8) for layer in layer_list]
    for label, res, lw in curves:
        idx = _log_sample(res.msd_nm2.size)
        t, msd = res.lag_ps[idx], res.msd_nm2[idx]
        keep = msd > 0
        (line,) = ax.loglog(t[keep], msd[keep], lw=lw,
                            label=f"{label}: D = {res.D_m2_per_s:.3g} ± {res.D_stderr_m2_per_s:.2g} m²/s"
                            + ("" if res.diffusive else " (not diffusive)"))
        if res.msd_stderr_nm2 is not None:
            err = res.msd_stderr_nm2[idx]
            lo = np.maximum(msd - err, msd * 1e-3)
            ax.fill_between(t[keep], lo[keep], (msd + err)[keep], color=line.get_color(), alpha=0.25, lw=0)
        w0, w1 = res.window.ps(res.dt_ps)
        ax.axvspan(w0, w1, color=line.get_color(), alpha=0.12, lw=0)
        tw = np.linspace(w0, w1, 50)
        fit = res.intercept_nm2 + res.D_m2_per_s / 1e-6 * 2 * len(res.dims) * tw
        ax.loglog(tw[fit > 0], fit[fit > 0], "--", color="k", lw=1.0)
        # slope-1 guide, a factor 2 below the fitted line at the window's end, over two decades either side
        anchor = 0.5 * (res.intercept_nm2 + res.D_m2_per_s / 1e-6 * 2 * len(res.dims) * w1)
        if anchor > 0:
            tg = np.geomspace(max(t[0], w1 / 100), min(t[-1], w1 * 100), 20)
            ax.loglog(tg, anchor * tg / w1, ":", color=line.get_color(), lw=0.9)
    ax.plot([], [], ":", color="0.3", label="slope 1 (diffusive), x 1/2")
    ax.fill_between([], [], [], color="0.5", alpha=0.25, label="±1σ (random-walk model)")
    _plain_log_labels(ax)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (nm²)")
    # y given: matplotlib then skips placing the title by the tick-label boxes (a third of the drawing time)
    ax.set_title("Mean-squared displacement (shaded: fit window; dashed: fit)", y=1.0)
    ax.legend(fontsize=7)
    return fig


def onsager_figure(result, labels: tuple[str, str]):
    """Collective displacement correlations <ΔX_i·ΔX_j> (nm², left) and the charge curve (e² nm², right).

    Parameters
    ----------
    result : aseimd.analysis.transference.TransferenceResult
    labels : (str, str)
        Cation and anion labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_figure(margins=ONSAGER_MARGINS, figsize=(6.5, 4.2))
    w0, w1 = result.window.ps(result.dt_ps)
    n_show = max(2, min(result.curves_nm2["pp"].size, 3 * result.window.stop + 1))  # up to 3x the window end
    c = {k: v[:n_show] for k, v in result.curves_nm2.items()}
    e = {k: v[:n_show] for k, v in (result.curves_stderr_nm2 or {}).items()}
    t = np.arange(n_show) * result.dt_ps
    cat, an = labels
    for key, text in (("pp", f"{cat}-{cat}"), ("mm", f"{an}-{an}"), ("pm", f"{cat}-{an}")):
        (line,) = ax.plot(t, c[key], label=f"<ΔX·ΔX> {text}")
        if key in e:
            ax.fill_between(t, c[key] - e[key], c[key] + e[key], color=line.get_color(), alpha=0.25, lw=0)
    ax.axvspan(w0, w1, color="0.5", alpha=0.15, lw=0, label="fit window")
    ax.axhline(0.0, color="0.3", lw=0.5)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("collective MSD (nm²)")
    ax2 = ax.twinx()
    ax2.plot(t, c["eh"], "k", lw=1.2, label="charge (Einstein-Helfand)")
    if "eh" in e:
        ax2.fill_between(t, c["eh"] - e["eh"], c["eh"] + e["eh"], color="k", alpha=0.15, lw=0)
    ax2.set_ylabel("charge MSD Σ z_i z_j <ΔX_i·ΔX_j> (e² nm²)")
    v, s = result.values, result.stderr
    ax.set_title(f"t+ Onsager {v['t_plus_onsager']:.3f} ± {s['t_plus_onsager']:.3f}, "
                 f"t+ NE {v['t_plus_ne']:.3f} ± {s['t_plus_ne']:.3f} (bands: ±1σ)", fontsize=9, y=1.0)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    return fig
