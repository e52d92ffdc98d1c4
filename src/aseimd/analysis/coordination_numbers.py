"""Coordination numbers per pair (atoms, molecules, bound fraction of the shell), block-averaged."""

from __future__ import annotations

import numpy as np

from aseimd.analysis.blocks import frame_block, ratio_mean_stderr
from aseimd.analysis.coordination_results import PairResult


class CNCounter:
    def __init__(self, key, n_frames, n_blocks, sizes):
        self.key, self.n_frames, self.n_blocks = key, n_frames, n_blocks
        self.atoms = np.zeros(n_blocks)
        self.mols = np.zeros(n_blocks)
        self.bound = np.zeros(n_blocks)
        self.frames = np.zeros(n_blocks)
        self.center_frames = np.zeros(n_blocks)  # (centre atom, frame) pairs counted: in the z window if one
        self.sizes = sizes

    def update(self, frame, contacts, pair_sizes):
        c = contacts[self.key]
        b = frame_block(frame, self.n_frames, self.n_blocks)
        self.atoms[b] += c.n_atom_contacts
        self.mols[b] += len(c.code)
        self.bound[b] += len(np.unique(c.residue))
        self.frames[b] += 1
        self.center_frames[b] += c.n_centers

    def fill(self, pr: PairResult) -> None:
        nr = self.sizes["n_shell_residues"]
        pr.cn, pr.cn_stderr = ratio_mean_stderr(self.atoms, self.center_frames)
        pr.cn_molecules, pr.cn_molecules_stderr = ratio_mean_stderr(self.mols, self.center_frames)
        pr.shell_bound_fraction, pr.shell_bound_fraction_stderr = ratio_mean_stderr(
            self.bound, self.frames * nr
        )
