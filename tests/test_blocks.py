"""Block sums over time origins against the slow obvious loop."""

import numpy as np
import pytest

from aseimd.analysis import blocks


def _brute(a, b, lags, n_blocks):
    """Per origin and lag, in float64 from the float32 displacements (as the fast code defines it)."""
    a = np.asarray(a)
    b = a if b is None else np.asarray(b)
    n = a.shape[0]
    edges = blocks.block_edges(n, n_blocks)
    sums = np.zeros((n_blocks, len(lags)))
    counts = np.zeros((n_blocks, len(lags)))
    for j, m in enumerate(lags):
        for t in range(n - m):
            blk = int(np.searchsorted(edges, t, side="right") - 1)
            da = (a[t + m] - a[t]).astype(np.float64)
            db = (b[t + m] - b[t]).astype(np.float64)
            sums[blk, j] += float(np.sum(da * db))
            counts[blk, j] += 1
    return sums, counts


# the smallest chunk is 64 frames: lags up to 40 go through the copied chunks (several of them in 301
# frames at 64 or 4096 bytes, one at 1 MiB); lags up to 299 reach past a small chunk (the uncopied views)
@pytest.mark.parametrize("lags", [[1, 2, 5, 40], [1, 2, 5, 90, 299]])
@pytest.mark.parametrize("chunk_bytes", [64, 4096, 1024**2])
@pytest.mark.parametrize("cross", [False, True])
def test_origin_block_sums_match_the_loop(monkeypatch, chunk_bytes, cross, lags):
    rng = np.random.default_rng(7)
    full = (rng.standard_normal((301, 11, 3)).cumsum(axis=0) + 5.0).astype(np.float32)
    a = full[:, 2:9]  # a strided view, as the collector hands over one group of a larger array
    b = (full[:, 1:8] * np.float32(0.5)) if cross else None
    lags = np.array(lags)
    monkeypatch.setattr(blocks, "ORIGIN_CHUNK_BYTES", chunk_bytes)
    s, c = blocks.origin_block_sums(a, b, lags, 7)
    s_ref, c_ref = _brute(a, b, lags, 7)
    np.testing.assert_array_equal(c, c_ref)
    np.testing.assert_allclose(s, s_ref, rtol=1e-10, atol=1e-9 * np.abs(s_ref).max())


def test_origin_block_sums_do_not_depend_on_contiguity():
    rng = np.random.default_rng(3)
    full = rng.standard_normal((500, 20, 3)).astype(np.float32).cumsum(axis=0)
    view = full[:, ::2]
    lags = np.arange(1, 6)
    s1, c1 = blocks.origin_block_sums(view, None, lags, 10)
    s2, c2 = blocks.origin_block_sums(np.ascontiguousarray(view), None, lags, 10)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(c1, c2)
