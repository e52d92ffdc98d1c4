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


#: Frames per chunk of :func:`particle_sum` (a float64 copy of a chunk stays in cache).
SUM_CHUNK_FRAMES = 512


def particle_sum(x: np.ndarray) -> np.ndarray:
    """Sum over the particle axis of ``x`` (n_frames, n_particles, d) in float64, shape=(n_frames, d).

    The particles are added by a pairwise tree (halves added as whole contiguous slices), chunk by
    chunk of frames. ``x.sum(axis=1, dtype=np.float64)`` adds them one by one in an inner loop of
    length d, an order of magnitude slower for d = 3. For float32 input the two agree to the last bit
    except where a partial sum is not exact in float64 (coordinates spanning more than 2^29 in
    magnitude, e.g. one within ~1e-6 nm of zero among others ~10^2 nm), and then to a float64 rounding.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(30, dtype=np.float32).reshape(2, 5, 3)
    >>> particle_sum(x).tolist()
    [[30.0, 35.0, 40.0], [105.0, 110.0, 115.0]]
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"expected shape (n_frames, n_particles, d), got {x.shape}")
    n_frames, n_particles, d = x.shape
    out = np.zeros((n_frames, d))
    if n_particles == 0:
        return out
    for lo in range(0, n_frames, SUM_CHUNK_FRAMES):
        y = x[lo:lo + SUM_CHUNK_FRAMES].astype(np.float64)
        while y.shape[1] > 1:
            half = y.shape[1] // 2
            z = y[:, :half] + y[:, half:2 * half]
            if y.shape[1] % 2:
                z[:, 0] += y[:, -1]
            y = z
        out[lo:lo + SUM_CHUNK_FRAMES] = y[:, 0]
    return out
