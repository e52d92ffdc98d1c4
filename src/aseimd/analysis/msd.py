"""Mean-squared displacements and displacement cross-correlations by FFT.

For a time series x(t), t = 0 .. T-1, the time-origin-averaged quantity

    C_xy(m) = 1/(T-m) * sum_{t=0}^{T-m-1} [x(t+m) - x(t)] * [y(t+m) - y(t)]

splits into  S(m) - A_xy(m),  where S(m) collects x(t)y(t) at the two ends
(prefix sums, O(T)) and A_xy(m) = sum_t x(t+m) y(t) + x(t) y(t+m) is a
cross-correlation computed with zero-padded FFTs in O(T log T). With x = y
this is the usual FFT mean-squared displacement (Kneller et al., Comput. Phys.
Commun. 91, 191 (1995); Calandrini et al., Collection SFN 12, 201 (2011)).

Every function here works on all particles at once (the FFT runs along the
time axis of an (n_frames, n_particles, n_dims) array); particles are only
split into cache-sized blocks (one reused, zero-padded buffer).
"""

from __future__ import annotations

import numpy as np
from numpy import fft as _fft  # numpy's pocketfft: as fast as scipy's here, and no 0.5 s scipy.fft import

#: Bytes of zero-padded float64 input per block of particles (cache-sized: many small batches of
#: 1-D transforms run ~4x faster than one huge batch; at least one particle per block).
FFT_BLOCK_BYTES = 1024**2
#: Bytes of the staging buffer that several FFT blocks are copied into at once. The positions arrive
#: frame-major (n_frames, n_particles, d); copying one FFT block's few columns at a time reads a whole
#: cache line per frame for a few bytes of it, so the columns of many blocks are transposed together,
#: tile by tile along time (:data:`TRANSPOSE_TILE_FRAMES`), and then transformed block by block.
STAGE_BYTES = 16 * 1024**2
#: Frames per tile of the staged transposing copy.
TRANSPOSE_TILE_FRAMES = 512


def fft_length(n: int) -> int:
    """Smallest length >= n of the form 2^a, 3 * 2^a or 5 * 2^a (fast radix-2-heavy transforms).

    Examples
    --------
    >>> [fft_length(n) for n in (40000, 1000, 7)]
    [40960, 1024, 8]
    """
    best = 1 << max(0, (n - 1).bit_length())
    for f in (3, 5):
        k = max(0, ((n + f - 1) // f - 1).bit_length())
        best = min(best, f << k)
    return best


def _end_sums(p: np.ndarray, n_lags: int) -> np.ndarray:
    """sum_{t=0}^{T-m-1} [p(t+m) + p(t)] for m = 0 .. n_lags-1 via prefix sums, shape=(n_lags, ...)."""
    n = p.shape[0]
    prefix = np.concatenate([np.zeros((1,) + p.shape[1:]), np.cumsum(p, axis=0)])  # P(k) = sum_{t<k}
    m = np.arange(n_lags)
    return prefix[n] - prefix[m] + prefix[n - m]


def _correlation(x: np.ndarray, y: np.ndarray, n_lags: int) -> np.ndarray:
    """sum_t x(t+m) y(t) + x(t) y(t+m) for m < n_lags, by zero-padded FFTs along axis 0."""
    n = x.shape[0]
    nfft = fft_length(n + n_lags)  # linear (not circular) correlation for lags < n_lags
    fx = _fft.rfft(x, n=nfft, axis=0)
    fy = _fft.rfft(y, n=nfft, axis=0)
    return _fft.irfft(2.0 * (fx * fy.conj()).real, n=nfft, axis=0)[:n_lags]


def _check_lags(n_frames: int, max_lag: int | None) -> int:
    if n_frames < 2:
        raise ValueError(f"need at least 2 frames for a displacement, got {n_frames}")
    if max_lag is None:
        return n_frames
    if not 0 <= max_lag < n_frames:
        raise ValueError(f"max_lag must be in [0, {n_frames - 1}], got {max_lag}")
    return max_lag + 1


def msd_fft(positions_nm: np.ndarray, *, max_lag: int | None = None, per_particle: bool = False) -> np.ndarray:
    """Mean-squared displacement per Cartesian component, averaged over time origins.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_frames, n_particles, n_dims)
        Unwrapped positions in nm (any float dtype; computed in float64).
    max_lag : int, optional
        Largest lag (in frames) to return; default ``n_frames - 1``.
    per_particle : bool
        Return one curve per particle instead of the particle average.

    Returns
    -------
    numpy.ndarray, shape=(n_lags, n_dims) or (n_lags, n_particles, n_dims), dtype=float64
        MSD in nm² per component; sum over the last axis for the MSD in
        several directions. ``n_lags = max_lag + 1``; entry 0 is lag 0.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(5.0)[:, None, None] * np.array([1.0, 2.0, 0.0])  # v = (1, 2, 0) per frame
    >>> msd_fft(x).sum(axis=-1).tolist()
    [0.0, 5.0, 20.0, 45.0, 80.0]
    """
    x = np.asarray(positions_nm)
    if x.ndim != 3:
        raise ValueError(f"positions must have shape (n_frames, n_particles, n_dims), got {x.shape}")
    n_frames, n_particles, n_dims = x.shape
    n_lags = _check_lags(n_frames, max_lag)
    norm = (n_frames - np.arange(n_lags)).astype(np.float64)
    nfft = fft_length(n_frames + n_lags)  # linear (not circular) correlation for lags < n_lags
    # whole particles per block, sized so that one block's zero-padded float64 series stay in cache
    per_block = max(1, int(FFT_BLOCK_BYTES // (nfft * 8 * n_dims))) * n_dims
    n_series = n_particles * n_dims
    per_block = min(per_block, n_series)
    flat = x.reshape(n_frames, n_series)  # series s = particle s // n_dims, direction s % n_dims
    # the staging buffer holds whole FFT blocks; time runs along the last, contiguous axis and the tail of
    # every row stays zero (the padding)
    per_stage = min(n_series, max(1, STAGE_BYTES // (nfft * 8 * per_block)) * per_block)
    stage = np.zeros((per_stage, nfft))
    if per_particle:
        out = np.empty((n_lags, n_particles, n_dims))
    else:  # FFTs are linear: sum the power spectra over particles, then one inverse transform per component
        power = np.zeros((n_dims, nfft // 2 + 1))
        squares = np.zeros((n_frames, n_dims))
    for lo in range(0, n_series, per_block):
        hi = min(lo + per_block, n_series)
        s0 = lo % per_stage
        if s0 == 0:  # transpose the next stage's columns in time tiles, converting to float64
            s_hi = min(lo + per_stage, n_series)
            for t0 in range(0, n_frames, TRANSPOSE_TILE_FRAMES):
                t1 = min(t0 + TRANSPOSE_TILE_FRAMES, n_frames)
                stage[: s_hi - lo, t0:t1] = flat[t0:t1, lo:s_hi].T
        b = stage[s0: s0 + hi - lo]
        head = b[:, :n_frames]
        head -= head.mean(axis=-1, keepdims=True)  # the MSD is shift invariant; small numbers keep the FFT precise
        sq = np.einsum("pdt,pdt->td", head.reshape(-1, n_dims, n_frames), head.reshape(-1, n_dims, n_frames))
        fx = _fft.rfft(b, axis=-1)
        spec = fx.real * fx.real
        spec += fx.imag * fx.imag
        if per_particle:
            corr = _fft.irfft(spec, n=nfft, axis=-1)[:, :n_lags]  # (series, lags)
            p0, p1 = lo // n_dims, hi // n_dims
            sq_p = np.moveaxis(head.reshape(-1, n_dims, n_frames) ** 2, -1, 0)  # (frames, p, d)
            out[:, p0:p1] = (_end_sums(sq_p, n_lags)
                             - 2.0 * corr.T.reshape(n_lags, p1 - p0, n_dims)) / norm[:, None, None]
        else:
            power += spec.reshape(-1, n_dims, spec.shape[-1]).sum(axis=0)
            squares += sq
    if not per_particle:
        corr = _fft.irfft(power, n=nfft, axis=-1)[:, :n_lags].T
        out = (_end_sums(squares, n_lags) - 2.0 * corr) / norm[:, None] / n_particles
    out[0] = 0.0
    return out


def cross_msd_fft(x_nm: np.ndarray, y_nm: np.ndarray, *, max_lag: int | None = None) -> np.ndarray:
    """Time-origin average of the product of displacements of two series, per component.

    C(m) = < [x(t+m) - x(t)] [y(t+m) - y(t)] >_t, used for the collective
    (Onsager) displacement correlations; ``cross_msd_fft(x, x)`` equals the MSD.

    Parameters
    ----------
    x_nm, y_nm : numpy.ndarray, shape=(n_frames, ...) (same shape)
        Time series (e.g. summed positions of all ions of a species, shape
        (n_frames, 3)), in nm.
    max_lag : int, optional
        Largest lag in frames; default ``n_frames - 1``.

    Returns
    -------
    numpy.ndarray, shape=(n_lags, ...), dtype=float64
        In nm² (units of x times units of y).
    """
    x = np.asarray(x_nm, dtype=np.float64)
    y = np.asarray(y_nm, dtype=np.float64)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)  # shift invariant; keeps the FFT precise
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
    n_lags = _check_lags(x.shape[0], max_lag)
    norm = (x.shape[0] - np.arange(n_lags)).astype(np.float64).reshape((-1,) + (1,) * (x.ndim - 1))
    out = (_end_sums(x * y, n_lags) - _correlation(x, y, n_lags)) / norm
    out[0] = 0.0
    return out


def msd_direct(positions_nm: np.ndarray, *, max_lag: int | None = None) -> np.ndarray:
    """Reference O(T²) MSD per component, averaged over particles and time origins.

    Slow and obvious; used to test :func:`msd_fft`.

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_frames, n_particles, n_dims)

    Returns
    -------
    numpy.ndarray, shape=(n_lags, n_dims), dtype=float64
    """
    x = np.asarray(positions_nm, dtype=np.float64)
    n_lags = _check_lags(x.shape[0], max_lag)
    out = np.zeros((n_lags, x.shape[2]))
    for m in range(1, n_lags):
        d = x[m:] - x[:-m]
        out[m] = (d**2).mean(axis=(0, 1))
    return out
