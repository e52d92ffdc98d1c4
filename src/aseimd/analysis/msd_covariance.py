"""Covariance of time-averaged mean-squared displacements of a random walk (the GLS weight model).

For a walk sampled at frames t = 0 .. T-1 with independent Gaussian steps
xi_k (one direction, variance s² per frame), the time-averaged MSD at lag m,

    M(m) = 1/(T-m) sum_{t=0}^{T-m-1} [x(t+m) - x(t)]²  =  xi^T A_m xi,
    A_m  = 1/(T-m) sum_t v_t v_t^T,   v_t = indicator of the steps t .. t+m-1,

is a quadratic form in the steps, so for Gaussian steps exactly

    Cov[M(m), M(n)] = 2 s⁴ K(m, n),   K(m, n) = tr(A_m A_n)
                    = sum_delta c(delta) o(delta)² / ((T-m)(T-n)),

where o(delta) is the number of steps two displacement windows of lengths m
and n share when their origins differ by delta, and c(delta) is the number of
origin pairs with that offset. This is the finite-length covariance of
Bullerjahn, von Bülow & Hummer, J. Chem. Phys. 152, 234113 (2020), evaluated
exactly for the discrete walk (no continuum or long-trajectory approximation);
kinisi (McCluskey et al., J. Chem. Theory Comput. 2024) uses the approximation
Cov(m, n) ~ Var(m) N(m)/N(n) (n >= m) built from the same random-walk picture.

The same matrix K carries every displacement correlation of jointly Gaussian
walks with white steps: for C_ab(m) = <Δa(m) Δb(m)>_t (a, b any walks with
per-frame step covariances sigma_ab),

    Cov[C_ab(m), C_cd(n)] = K(m, n) (sigma_ac sigma_bd + sigma_ad sigma_bc),

which covers the self MSD (a = b = c = d, averaged over N independent
particles: divide by N), the collective (Onsager) curves <ΔX+ ΔX+>,
<ΔX- ΔX->, <ΔX+ ΔX-> and their cross-covariances. Because every curve shares
the *shape* K, one set of GLS weights serves all of them (identical
regressors and a common covariance shape: equation-by-equation GLS is the
efficient joint estimator), and only the scale depends on the unknown
coefficients.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=256)
def _overlap_trace_cached(lags: tuple[int, ...], n_frames: int) -> np.ndarray:
    lags_a = np.asarray(lags, dtype=np.int64)
    k = lags_a.size
    m = lags_a[:, None, None]
    n = lags_a[None, :, None]
    width = int(2 * lags_a.max())
    # delta runs over -(n-1) .. (m-1); shift to a common grid j = delta + max_lag
    j = np.arange(width, dtype=np.int64)[None, None, :]
    delta = j - int(lags_a.max()) + 1
    overlap = np.minimum(m, delta + n) - np.maximum(0, delta)
    count = np.minimum(n_frames - m - 1, n_frames - n - 1 - delta) - np.maximum(0, -delta) + 1
    ok = (overlap > 0) & (count > 0)
    terms = np.where(ok, count.astype(float) * overlap.astype(float) ** 2, 0.0)
    norm = (n_frames - lags_a[:, None]).astype(float) * (n_frames - lags_a[None, :]).astype(float)
    K = terms.sum(axis=-1) / norm
    K = 0.5 * (K + K.T)
    K.setflags(write=False)
    assert K.shape == (k, k)
    return K


def overlap_trace(lags: np.ndarray, n_frames: int) -> np.ndarray:
    """The covariance shape K(m, n) = tr(A_m A_n) of time-averaged MSDs at the given lags.

    Parameters
    ----------
    lags : numpy.ndarray, shape=(k,), dtype=int
        Lags in frames, each in [1, n_frames - 1].
    n_frames : int
        Frames in the trajectory (T).

    Returns
    -------
    numpy.ndarray, shape=(k, k), dtype=float64
        In frames² (the covariance of MSD points of a 1-D walk with per-frame
        step variance s² is ``2 s⁴ K``). Read-only (cached).

    Examples
    --------
    Lag 1 of a walk of T frames averages T-1 independent squared steps:

    >>> float(overlap_trace(np.array([1]), 11)[0, 0])
    0.1
    """
    lags = tuple(int(v) for v in np.asarray(lags).ravel())
    if not lags or min(lags) < 1 or max(lags) >= n_frames:
        raise ValueError(f"lags must lie in [1, {n_frames - 1}], got {list(lags)}")
    return _overlap_trace_cached(lags, int(n_frames))


def msd_variance_diagonal(lags: np.ndarray, n_frames: int) -> np.ndarray:
    """K(m, m) for many lags (for error bands), shape=(k,), in frames².

    Closed form for 2 m <= T: with A = sum_{k<m} k², B = sum_{k<m} k³,
    K(m, m) = [(T - m) m² + 2 ((T - 2m) A + B)] / (T - m)²; longer lags by the explicit sum.

    Examples
    --------
    >>> bool(np.allclose(msd_variance_diagonal(np.array([1, 5, 30]), 61),
    ...                  np.diag(overlap_trace(np.array([1, 5, 30]), 61))))
    True
    """
    lags = np.asarray(lags, dtype=np.int64)
    m = lags.astype(float)
    T = float(n_frames)
    A = (m - 1) * m * (2 * m - 1) / 6.0
    B = ((m - 1) * m / 2.0) ** 2
    out = ((T - m) * m**2 + 2.0 * ((T - 2 * m) * A + B)) / (T - m) ** 2
    for i in np.flatnonzero(2 * lags > n_frames):
        mi = int(lags[i])
        delta = np.arange(-(mi - 1), mi)
        overlap = (mi - np.abs(delta)).astype(float)
        count = np.maximum(0, n_frames - mi - np.abs(delta)).astype(float)
        out[i] = np.dot(count, overlap**2) / float(n_frames - mi) ** 2
    return out
