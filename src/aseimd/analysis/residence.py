"""Continuous residence time correlation functions of (centre atom, shell residue) contacts, streamed."""

from __future__ import annotations

import numpy as np

from aseimd.analysis.coordination_results import ResidenceResult
from aseimd.errors import AnalysisError


class ResidenceTracker:
    """Run lengths of uninterrupted (centre atom, shell residue) contacts, streamed."""

    def __init__(self, key, n_frames):
        self.key, self.n_frames = key, n_frames
        self.codes = np.zeros(0, dtype=np.int64)
        self.starts = np.zeros(0, dtype=np.int64)
        self.run_hist = np.zeros(n_frames + 1, dtype=np.int64)
        self.bound_per_frame = np.zeros(n_frames, dtype=np.int64)
        self.last_frame = -1

    def update(self, frame, contacts, pair_sizes):
        if frame != self.last_frame + 1:
            raise AnalysisError(f"internal: residence frames out of order ({frame} after {self.last_frame})")
        self.last_frame = frame
        now = contacts[self.key].code
        self.bound_per_frame[frame] = len(now)
        alive = np.isin(self.codes, now, assume_unique=True)
        ended = frame - self.starts[~alive]
        np.add.at(self.run_hist, ended, 1)
        new = np.setdiff1d(now, self.codes, assume_unique=True)
        codes = np.concatenate([self.codes[alive], new])
        starts = np.concatenate([self.starts[alive], np.full(len(new), frame, dtype=np.int64)])
        order = np.argsort(codes, kind="stable")
        self.codes, self.starts = codes[order], starts[order]

    def result(self, dt_ps: float | None) -> ResidenceResult:
        t_total = self.n_frames
        hist = self.run_hist.copy()
        np.add.at(hist, t_total - self.starts, 1)  # runs still open at the end
        lengths = np.arange(len(hist))
        # numerator(t) = sum_L n_L max(L - t, 0) = S1(t) - t S0(t) over L > t
        s0 = np.cumsum((hist)[::-1])[::-1]  # sum_{L >= t} n_L
        s1 = np.cumsum((hist * lengths)[::-1])[::-1]
        lags = np.arange(t_total)
        num = s1[lags + 1] - lags * s0[lags + 1]  # sum_{L > t} n_L (L - t)
        den = np.cumsum(self.bound_per_frame)[::-1][: t_total]  # sum_{s <= T-1-t} h(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
        dt = float(dt_ps) if dt_ps else 1.0
        times = lags * dt
        finite = np.isfinite(c)
        zero = np.nonzero(finite & (c <= 0))[0]
        decayed = bool(len(zero))
        if not finite.any():
            tau = float("nan")
        else:
            end = int(zero[0]) if decayed else int(np.nonzero(finite)[0][-1])
            # trapezoid rule on the uniform lag grid
            tau = dt * float(np.sum(c[: end + 1]) - 0.5 * (c[0] + c[end])) if end > 0 else float("nan")
        return ResidenceResult(self.key, lags, times, c, tau, decayed, int(hist[1:].sum()))
