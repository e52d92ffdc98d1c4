"""CSV columns and a PNG plot of density profiles (:class:`aseimd.analysis.profile.Profiles`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aseimd.report.figures import new_figure, save_figure


def profile_csv_columns(result) -> tuple[list[str], list[np.ndarray]]:
    """Headers (with units) and columns of the profile CSV (``result.tables()["density"]``)."""
    return result.tables()["density"]

def plot_profiles(result, path: str | os.PathLike, force: bool = False) -> Path:
    """Number density (top) and charge density (bottom) against position, one line per group.

    The shaded band is +- one standard error.
    """
    fig, ax = new_figure(figsize=(6.5, 6.0))
    fig.delaxes(ax)
    ax_n, ax_q = fig.subplots(2, 1, sharex=True)
    z = result.bin_centers_nm
    for label, g in result.groups.items():
        (line,) = ax_n.plot(z, g.number_density_per_nm3, label=label, lw=1.2)
        _band(ax_n, z, g.number_density_per_nm3, g.number_density_stderr_per_nm3, line.get_color())
        if np.isfinite(g.charge_density_e_per_nm3).any():
            ax_q.plot(z, g.charge_density_e_per_nm3, label=label, lw=1.2, color=line.get_color())
            _band(ax_q, z, g.charge_density_e_per_nm3, g.charge_density_stderr_e_per_nm3, line.get_color())
    ax_q.axhline(0.0, color="0.5", lw=0.6)
    ax_n.set_ylabel("number density (nm$^{-3}$)")
    ax_q.set_ylabel("charge density (e nm$^{-3}$)")
    ax_q.set_xlabel(f"{result.axis} (nm)")
    ax_n.set_xlim(0.0, result.height_mean_nm)
    ax_n.legend(fontsize="small", ncols=min(4, len(result.groups)))
    ax_n.set_title(f"{result.n_frames} frames, bin {result.bin_width_nm:.3f} nm, charges: {result.charge_source}",
                   fontsize="small")
    return save_figure(fig, path, force=force)


def _band(ax, x, y, err, color) -> None:
    if np.isfinite(err).any():
        ax.fill_between(x, y - err, y + err, color=color, alpha=0.25, lw=0)
