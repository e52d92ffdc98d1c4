"""PNG plots of coordination results (:class:`aseimd.analysis.coordination.CoordinationResult`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aseimd.report.figures import new_figure, save_figure


def plot_rdfs(result, path: str | os.PathLike, force: bool = False) -> Path:
    """g(r) of every pair (top) and the running coordination number n(r) (bottom).

    The cut-off of each pair is a dashed vertical line in the pair's colour,
    labelled with its source (auto = first minimum, given).
    """
    fig, ax = new_figure(figsize=(6.5, 6.0))
    fig.delaxes(ax)
    ax_g, ax_n = fig.subplots(2, 1, sharex=True)
    for key, p in result.pairs.items():
        r = p.rdf.r_nm
        name = f"{p.center}–{p.shell}" if key == p.shell else key
        cut = "no cut-off" if p.cutoff_nm is None else f"cut-off {p.cutoff_nm:.3f} nm, {p.cutoff_note}"
        (line,) = ax_g.plot(r, p.rdf.g, lw=1.2, label=f"{name} ({cut})")
        ax_n.plot(r, p.rdf.n, lw=1.2, color=line.get_color())
        if p.cutoff_nm is not None:
            for a in (ax_g, ax_n):
                a.axvline(p.cutoff_nm, color=line.get_color(), ls="--", lw=0.9)
    ax_g.axhline(1.0, color="0.6", lw=0.6)
    top = max((np.nanmax(p.rdf.g) for p in result.pairs.values()), default=1.0)
    ax_g.set_ylim(0.0, 1.05 * max(top, 1.5))
    ax_g.set_ylabel("g(r)")
    ax_n.set_ylabel("n(r) (atoms within r)")
    ax_n.set_xlabel("r (nm)")
    ax_n.set_xlim(0.0, result.r_max_nm)
    ax_g.legend(fontsize=8, frameon=False)
    title = "radial distribution functions; dashed: cut-offs"
    window = getattr(result, "window", None)
    if window:
        lo, hi = window["z_range_nm"]
        where = f"{window['layer']}, " if window.get("layer") else ""
        title += (f"\n{window['center']} in {where}z {lo:.2f}-{hi:.2f} nm "
                  f"({window['mean_centers_in_window']:.1f} on average, {window['n_center_frames']} pairs)")
    ax_g.set_title(title, fontsize=9)
    return save_figure(fig, path, force=force)


def plot_residence(result, path: str | os.PathLike, force: bool = False) -> Path:
    """Continuous residence time correlation functions C(t), one line per pair, tau in the legend."""
    fig, ax = new_figure()
    for key, r in result.residence.items():
        ok = np.isfinite(r.c_t)
        tau = "n/a" if not np.isfinite(r.tau_ps) else f"{r.tau_ps:.3g} ps"
        ax.plot(r.times_ps[ok], r.c_t[ok], lw=1.2, label=f"{key} (tau {tau})")
    ax.set_xlabel("Time (ps)")
    ax.set_ylabel("C(t), continuous")
    ax.set_ylim(-0.02, 1.02)
    if result.residence:
        ax.legend(fontsize=8, frameon=False)
    else:
        ax.set_title("no pair with a cut-off: no residence times", fontsize=9)
    return save_figure(fig, path, force=force)
