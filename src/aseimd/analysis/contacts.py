"""Streaming first-shell contacts: one sweep over the frames hands each frame's contacts to consumers.

The :class:`ContactEngine` is fed the selected atoms chunk by chunk (by the
shared pass of :func:`aseimd.analysis.engine.stream`, or its own
:meth:`~ContactEngine.sweep`), finds the
minimum-image pairs within a radius per centre-shell pair
(:class:`aseimd.analysis.neighbors.FrameNeighbors`), fills the RDF histograms
and passes :class:`Contacts` to consumers with an ``update(frame, contacts,
pair_sizes)`` method (coordination numbers, shells, speciation, residence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.analysis.groups import Group
from aseimd.analysis.neighbors import FrameNeighbors
from aseimd.analysis.rdf import RDFAccumulator
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError


@dataclass(frozen=True)
class Contacts:
    """One frame's first-shell contacts of one pair.

    ``n_atom_contacts`` (centre atom, shell atom) pairs; the distinct (centre
    atom, shell residue) pairs as sorted codes ``center * n_residues_total +
    residue`` and split into ``center`` (local centre index) and ``residue``
    (topology residue index).
    """

    n_atom_contacts: int
    code: np.ndarray
    center: np.ndarray
    residue: np.ndarray

    @classmethod
    def of(cls, i: np.ndarray, res: np.ndarray, n_residues_total: int) -> Contacts:
        code = np.unique(i.astype(np.int64) * n_residues_total + res)
        return cls(len(i), code, code // n_residues_total, code % n_residues_total)


def first_box(traj: Trajectory) -> np.ndarray:
    """Box vectors (rows, nm) of the first analysed frame (:meth:`Trajectory.first_box_nm`, read once)."""
    box = traj.first_box_nm()
    if box is None:
        raise AnalysisError("trajectory frames carry no unit cell")
    return box


class ContactEngine:
    """Streams frames once per sweep and hands each frame's contacts to the consumers."""

    def __init__(self, traj, groups, pairs, exclude_intramolecular, r_max_nm, bin_nm):
        self.traj = traj
        self.groups = groups
        self.pairs = pairs
        self.r_max_nm = r_max_nm
        self.n_frames = traj.n_frames
        self.exclude_intramolecular = exclude_intramolecular
        self.n_residues_total = traj.topology.n_residues
        used = sorted({p.center for p in pairs} | {p.shell for p in pairs})
        self.union = np.unique(np.concatenate([groups[g].indices for g in used]))
        self.local = {g: np.searchsorted(self.union, groups[g].indices) for g in used}
        self.centers = {p.key: p.center for p in pairs}
        self.pair_sizes = {}
        self.rdfs = {}
        for p in pairs:
            c, s = groups[p.center], groups[p.shell]
            n_excl = self._n_excluded(c, s)
            self.pair_sizes[p.key] = {
                "n_center": len(c.indices), "n_shell": len(s.indices), "n_shell_residues": s.n_residues,
                "shell_residues": s.residues, "center_residues": c.residues,
            }
            n_pairs = len(c.indices) * len(s.indices) - n_excl
            self.rdfs[p.key] = RDFAccumulator(r_max_nm, bin_nm, len(c.indices), n_pairs)

    def shell_residue_count(self, key: str) -> int:
        return self.pair_sizes[key]["n_shell_residues"]

    def _n_excluded(self, c: Group, s: Group) -> int:
        if self.exclude_intramolecular:
            rc, nc = np.unique(c.residues, return_counts=True)
            rs, ns = np.unique(s.residues, return_counts=True)
            _, ic, is_ = np.intersect1d(rc, rs, return_indices=True)
            return int(np.sum(nc[ic] * ns[is_]))
        return int(len(np.intersect1d(c.indices, s.indices)))

    def set_pass(self, histograms: bool, cutoffs: dict | None, consumers: list) -> None:
        """What the next frames fed are for: RDF histograms (to ``r_max``) and/or contacts within ``cutoffs``."""
        self._pairs = [p for p in self.pairs if histograms or (cutoffs and p.key in cutoffs)]
        self._radius = {p.key: (self.r_max_nm if histograms else cutoffs[p.key]) for p in self._pairs}
        self._histograms, self._cutoffs, self._consumers = histograms, cutoffs, consumers

    def sweep(self, histograms: bool, cutoffs: dict | None, consumers: list) -> None:
        """One pass of its own over the frames (:meth:`set_pass`, then :meth:`feed` every chunk)."""
        self.set_pass(histograms, cutoffs, consumers)
        for chunk in self.traj.iter_chunks(self.union):
            self.feed(chunk)

    def feed(self, chunk) -> None:
        """Neighbour search in every frame of ``chunk`` (positions of :attr:`union`), contacts to the consumers."""
        pairs, radius, histograms, cutoffs = self._pairs, self._radius, self._histograms, self._cutoffs
        if chunk.box_nm is None:
            raise AnalysisError("trajectory frames carry no unit cell")
        for f in range(chunk.xyz_nm.shape[0]):
            frame = chunk.start + f
            xyz = chunk.xyz_nm[f].astype(float)
            search = FrameNeighbors(chunk.box_nm[f])
            volume = search.volume_nm3
            contacts = {}
            for p in pairs:
                c, s = self.groups[p.center], self.groups[p.shell]
                try:
                    i, j, d = search.pairs(xyz[self.local[p.center]], xyz[self.local[p.shell]],
                                           radius[p.key], b_key=p.shell)
                except AnalysisError as exc:
                    raise AnalysisError(f"frame {frame}: {exc}") from None
                if self.exclude_intramolecular:
                    keep = c.residues[i] != s.residues[j]
                else:
                    keep = c.indices[i] != s.indices[j]
                i, j, d = i[keep], j[keep], d[keep]
                if histograms:
                    self.rdfs[p.key].add_frame(d, volume)
                if cutoffs and p.key in cutoffs:
                    m = d < cutoffs[p.key]
                    contacts[p.key] = Contacts.of(i[m], s.residues[j[m]], self.n_residues_total)
            for consumer in self._consumers:
                consumer.update(frame, contacts, self.pair_sizes)
