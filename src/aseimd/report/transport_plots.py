"""Figures for transport analyses: MSD curves with their fit windows, collective (Onsager) MSDs."""

from __future__ import annotations

import numpy as np

from aseimd.report.figures import new_figure


def msd_figure(results: dict, layers: dict | None = None):
    """Log-log MSD against time per group, fit window shaded, fitted line dashed.

    Parameters
    ----------
    results : dict of str to aseimd.analysis.diffusion.DiffusionResult
    layers : dict of str to list of LayerResult, optional
        Layer curves are drawn thin.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_figure()
    curves = [(label, res, 1.6) for label, res in results.items()]
    for layer_list in (layers or {}).values():
        curves += [(layer.result.label, layer.result, 0.8) for layer in layer_list]
    for label, res, lw in curves:
        t, msd = res.lag_ps[1:], res.msd_nm2[1:]
        keep = msd > 0
        (line,) = ax.loglog(t[keep], msd[keep], lw=lw,
                            label=f"{label}: D = {res.D_m2_per_s:.3g} ± {res.D_stderr_m2_per_s:.2g} m²/s"
                            + ("" if res.diffusive else " (not diffusive)"))
        w0, w1 = res.window.ps(res.dt_ps)
        ax.axvspan(w0, w1, color=line.get_color(), alpha=0.12, lw=0)
        tw = np.linspace(w0, w1, 50)
        fit = res.intercept_nm2 + res.D_m2_per_s / 1e-6 * 2 * len(res.dims) * tw
        ax.loglog(tw[fit > 0], fit[fit > 0], "--", color="k", lw=1.0)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (nm²)")
    ax.set_title("Mean-squared displacement (shaded: fit window; dashed: fit)")
    ax.legend(fontsize=7)
    return fig


def onsager_figure(result, labels: tuple[str, str]):
    """Collective displacement correlations <ΔX_i·ΔX_j> against time, fit window shaded.

    Parameters
    ----------
    result : aseimd.analysis.transference.TransferenceResult
    labels : (str, str)
        Cation and anion labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = new_figure()
    w0, w1 = result.window.ps(result.dt_ps)
    n_show = max(2, min(result.curves_nm2["pp"].size, 3 * result.window.stop + 1))  # up to 3x the window end
    c = {k: v[:n_show] for k, v in result.curves_nm2.items()}
    t = np.arange(n_show) * result.dt_ps
    cat, an = labels
    ax.plot(t, c["pp"], label=f"<ΔX·ΔX> {cat}-{cat}")
    ax.plot(t, c["mm"], label=f"<ΔX·ΔX> {an}-{an}")
    ax.plot(t, c["pm"], label=f"<ΔX·ΔX> {cat}-{an}")
    ax.plot(t, c["eh"], "k", lw=1.2, label="charge (Einstein-Helfand), e² nm²")
    ax.axvspan(w0, w1, color="0.5", alpha=0.15, lw=0, label="fit window")
    ax.axhline(0.0, color="0.3", lw=0.5)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("collective MSD (nm²)")
    v = result.values
    ax.set_title(f"t+ Onsager {v['t_plus_onsager']:.3f}, t+ NE {v['t_plus_ne']:.3f}", fontsize=9)
    ax.legend(fontsize=7)
    return fig
