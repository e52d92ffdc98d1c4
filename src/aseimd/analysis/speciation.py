"""Ion-pair speciation: SSIP / CIP / AGG fractions of the cations and the free-anion fraction."""

from __future__ import annotations

import numpy as np

from aseimd.analysis.blocks import frame_block, ratio_mean_stderr


class IonPairSpeciation:
    def __init__(self, key, n_frames, n_blocks, n_cations):
        self.key, self.n_frames, self.n_blocks, self.n_cations = key, n_frames, n_blocks, n_cations
        self.sums = np.zeros((3, n_blocks))
        self.free_anions = np.zeros(n_blocks)
        self.frames = np.zeros(n_blocks)
        self.cation_frames = np.zeros(n_blocks)  # (cation, frame) pairs counted (in the z window if one)
        self.n_anions = None
        self.anion_res = None

    def update(self, frame, contacts, pair_sizes):
        if self.anion_res is None:
            self.anion_res = np.unique(pair_sizes[self.key]["shell_residues"])
            self.n_anions = len(self.anion_res)
        c = contacts[self.key]
        ci = c.center
        a = np.searchsorted(self.anion_res, c.residue)
        per_cation = np.bincount(ci, minlength=self.n_cations)
        # cations outside a z window do not count, but they still share anions with those inside
        per_anion = np.bincount(a, minlength=self.n_anions)
        if len(c.outside_residue):
            per_anion = per_anion + np.bincount(np.searchsorted(self.anion_res, c.outside_residue),
                                                minlength=self.n_anions)
        single = per_cation[ci] == 1
        cip_cations = ci[single & (per_anion[a] == 1)]
        n_counted = self.n_cations if c.window is None else c.n_centers
        n_ssip = n_counted - int(np.count_nonzero(per_cation))
        n_cip = len(cip_cations)
        b = frame_block(frame, self.n_frames, self.n_blocks)
        self.sums[:, b] += (n_ssip, n_cip, n_counted - n_ssip - n_cip)
        self.cation_frames[b] += n_counted
        self.free_anions[b] += np.count_nonzero(per_anion == 0)
        self.frames[b] += 1

    def result(self) -> dict:
        out: dict = {"anion_pair": self.key}
        for row, name in enumerate(("SSIP", "CIP", "AGG")):
            out[name], out[f"{name}_stderr"] = ratio_mean_stderr(self.sums[row], self.cation_frames)
        out["free_anion_fraction"], out["free_anion_fraction_stderr"] = ratio_mean_stderr(
            self.free_anions, self.frames * (self.n_anions or 0)
        )
        out["definitions"] = {
            "SSIP": "no anion residue in the cation's first shell",
            "CIP": "exactly one anion residue in the first shell, and that anion is in no other "
                   "cation's first shell",
            "AGG": "two or more anion residues in the first shell, or one anion shared with another cation",
            "free_anion_fraction": "anion residues in no cation's first shell",
        }
        return out
