"""Saving matplotlib figures safely (headless backend, atomic write)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from aseimd.fileio import atomic_write_bytes, check_new_output


def new_figure(margins: dict | None = None, **kwargs):
    """A new (figure, axes) pair, rendered by Agg (no pyplot, no GUI backend).

    ``margins`` (``left``, ``right``, ``bottom``, ``top`` as figure fractions) gives a fixed layout
    (``Figure.subplots_adjust``): it skips constrained layout's extra measuring pass over every text
    artist (about as long as drawing the figure once), for plots whose labels are known to fit.
    Without it the layout is constrained. Other keywords go to :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    if margins is not None:
        fig = Figure(**({"figsize": (6.0, 4.0)} | kwargs))
        fig.subplots_adjust(**margins)
    else:
        fig = Figure(**({"figsize": (6.0, 4.0), "layout": "constrained"} | kwargs))
    return fig, fig.add_subplot()


def save_figure(fig, path: str | os.PathLike, force: bool = True, dpi: int = 120) -> Path:
    """Render ``fig`` to PNG and write it to ``path`` atomically."""
    check_new_output(path, force=force)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches itself to fig: savefig renders with Agg, whatever matplotlib's backend
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
