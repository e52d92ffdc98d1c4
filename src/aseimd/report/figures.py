"""Saving matplotlib figures safely (headless backend, atomic write)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from aseimd.fileio import atomic_write_bytes, check_new_output


def new_figure(**kwargs):
    """A new (figure, axes) pair on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(**({"figsize": (6.0, 4.0), "layout": "constrained"} | kwargs))
    return fig, fig.add_subplot()


def save_figure(fig, path: str | os.PathLike, force: bool = True, dpi: int = 120) -> Path:
    """Render ``fig`` to PNG and write it to ``path`` atomically."""
    check_new_output(path, force=force)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
