"""Shell compositions (e.g. Li(EC)3(DMC)1(PF6)0) and the bound fraction of a shell group over several pairs."""

from __future__ import annotations

import numpy as np

from aseimd.analysis.blocks import frame_block, ratio_mean_stderr


class ShellCompositions:
    def __init__(self, center, keys, n_center):
        self.center, self.keys, self.n_center = center, keys, n_center
        self.counts: dict[tuple[int, ...], int] = {}
        self.total = 0

    def update(self, frame, contacts, pair_sizes):
        table = np.zeros((self.n_center, len(self.keys)), dtype=np.int64)
        for col, key in enumerate(self.keys):
            table[:, col] = np.bincount(contacts[key].center, minlength=self.n_center)
        window = contacts[self.keys[0]].window  # the same centre mask for every pair of this centre
        if window is not None:
            table = table[window]
            if not len(table):
                return
        rows, n = np.unique(table, axis=0, return_counts=True)
        for row, c in zip(rows, n, strict=True):
            t = tuple(int(x) for x in row)
            self.counts[t] = self.counts.get(t, 0) + int(c)
        self.total += len(table)

    def result(self) -> dict:
        if self.total == 0:
            return {"center": self.center, "shells": list(self.keys),
                    "definition": "distinct residues of each shell label within its cut-off, per centre atom "
                                  "and frame", "mean_molecules": {k: float("nan") for k in self.keys},
                    "distribution": []}
        dist = []
        for row, c in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            name = self.center + "".join(f"({k}){n}" for k, n in zip(self.keys, row, strict=True))
            dist.append({"composition": name, "counts": dict(zip(self.keys, row, strict=True)),
                         "fraction": c / self.total, "n_observations": c})
        mean = {
            k: sum(row[col] * c for row, c in self.counts.items()) / self.total
            for col, k in enumerate(self.keys)
        }
        return {
            "center": self.center,
            "shells": list(self.keys),
            "definition": "distinct residues of each shell label within its cut-off, per centre atom and frame",
            "mean_molecules": mean,
            "distribution": dist,
        }


class BoundUnion:
    def __init__(self, keys, n_frames, n_blocks, n_residues):
        self.keys, self.n_frames, self.n_blocks, self.n_residues = keys, n_frames, n_blocks, n_residues
        self.bound = np.zeros(n_blocks)
        self.frames = np.zeros(n_blocks)

    def update(self, frame, contacts, pair_sizes):
        res = [contacts[k].residue for k in self.keys]
        b = frame_block(frame, self.n_frames, self.n_blocks)
        self.bound[b] += len(np.unique(np.concatenate(res)))
        self.frames[b] += 1

    def result(self) -> dict:
        mean, err = ratio_mean_stderr(self.bound, self.frames * self.n_residues)
        return {"pairs": list(self.keys), "bound_fraction": mean, "bound_fraction_stderr": err}
