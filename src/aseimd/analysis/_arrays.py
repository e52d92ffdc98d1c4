"""Small numpy helpers for the analysis hot path."""

from __future__ import annotations

import numpy as np


def unique(a) -> np.ndarray:
    """Sorted distinct values of ``a`` (flattened), as ``np.unique(a)`` gives them for values without NaN.

    The same sort and neighbour comparison as numpy's; written out because ``np.unique`` imports
    ``numpy.ma`` on first use (~40 ms of a ~1 s ``aseimd analyze diffusion``).
    """
    values = np.sort(np.ravel(np.asarray(a)))
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def intersects(a, b) -> bool:
    """Whether ``a`` and ``b`` share a value (``np.intersect1d(a, b).size > 0`` without its ``np.unique``)."""
    both = np.sort(np.concatenate([unique(a), unique(b)]))
    return bool(both.size > 1 and np.any(both[1:] == both[:-1]))
