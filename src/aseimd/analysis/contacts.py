"""Streaming first-shell contacts: one sweep over the frames hands each frame's contacts to consumers.

The :class:`ContactEngine` is fed the selected atoms chunk by chunk (by the
shared pass of :func:`aseimd.analysis.engine.stream`, or its own
:meth:`~ContactEngine.sweep`), finds the
minimum-image pairs within a radius per centre-shell pair
(:class:`aseimd.analysis.neighbors.FrameNeighbors`), fills the RDF histograms
and passes :class:`Contacts` to consumers with an ``update(frame, contacts,
pair_sizes)`` method (coordination numbers, shells, speciation, residence).

With a z window (:class:`ZWindow`) only the centre atoms inside the window in a
frame count in that frame (their contacts, their RDF pairs); the shell atoms
are taken from the whole cell.
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
    #: Centre atoms counted in this frame (all of them, or those in the z window).
    n_centers: int | None = None
    #: Boolean mask over the local centre indices (in the window), or None (every centre counts).
    window: np.ndarray | None = None
    #: Shell residues of the distinct (centre, residue) contacts of the centres OUTSIDE the window
    #: (empty without a window): who else binds a shell residue (ion-pair speciation's sharing test).
    outside_residue: np.ndarray | None = None

    @classmethod
    def of(cls, i: np.ndarray, res: np.ndarray, n_residues_total: int, n_centers: int | None = None,
           window: np.ndarray | None = None) -> Contacts:
        """Contacts of centre atoms ``i`` with shell residues ``res``; with ``window`` only centres in it count."""
        if window is None:
            code = np.unique(i.astype(np.int64) * n_residues_total + res)
            return cls(len(i), code, code // n_residues_total, code % n_residues_total, n_centers, None,
                       np.zeros(0, dtype=np.int64))
        inside = window[i]
        code = np.unique(i[inside].astype(np.int64) * n_residues_total + res[inside])
        out = np.unique(i[~inside].astype(np.int64) * n_residues_total + res[~inside])
        return cls(int(np.count_nonzero(inside)), code, code // n_residues_total, code % n_residues_total,
                   int(np.count_nonzero(window)), window, out % n_residues_total)


@dataclass(frozen=True)
class ZWindow:
    """A slab of space ``z_lo_nm <= z < z_hi_nm`` for the centre atoms, z wrapped into the box.

    Periodic wrapping: the box must have its first two vectors in the xy plane
    (a_z = b_z = 0, OpenMM's reduced form, so lattice translations along a and b
    do not change z); a centre's z is wrapped along the third vector,
    z_w = z - floor(z / c_z) c_z, into [0, c_z), in every frame with that frame's
    box. The window is fixed in nm (not scaled with c_z); it must lie within
    [0, c_z] of every frame.
    """

    z_lo_nm: float
    z_hi_nm: float
    label: str | None = None

    def __post_init__(self) -> None:
        lo, hi = float(self.z_lo_nm), float(self.z_hi_nm)
        if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
            raise AnalysisError(f"z window {lo:g}-{hi:g} nm: need z_lo < z_hi (nm)")
        if lo < 0:
            raise AnalysisError(f"z window {lo:g}-{hi:g} nm: z_lo must be >= 0 nm (z is wrapped into [0, c_z))")

    def check_box(self, box_nm: np.ndarray, where: str = "") -> float:
        """c_z of ``box_nm`` after checking that the window fits in it and a, b lie in the xy plane."""
        box = np.asarray(box_nm, dtype=float)
        if abs(box[0, 2]) > 1e-9 or abs(box[1, 2]) > 1e-9:
            raise AnalysisError(f"{where}z window needs box vectors a and b in the xy plane (a_z = b_z = 0), "
                                f"got a_z = {box[0, 2]:g}, b_z = {box[1, 2]:g} nm")
        cz = float(box[2, 2])
        if self.z_hi_nm > cz * (1 + 1e-9):
            raise AnalysisError(f"{where}z window {self.z_lo_nm:g}-{self.z_hi_nm:g} nm lies outside the box "
                                f"(c_z = {cz:.4f} nm); use 0 <= z_lo < z_hi <= {cz:.4f}")
        return cz

    def mask(self, z_nm: np.ndarray, box_nm: np.ndarray, where: str = "") -> np.ndarray:
        """Which of the z values (nm), wrapped into the box, lie in [z_lo, z_hi)."""
        cz = self.check_box(box_nm, where)
        z = np.asarray(z_nm, dtype=float)
        zw = z - np.floor(z / cz) * cz
        return (zw >= self.z_lo_nm) & (zw < self.z_hi_nm)

    def to_dict(self) -> dict:
        out = {"z_range_nm": [float(self.z_lo_nm), float(self.z_hi_nm)]}
        if self.label is not None:
            out["layer"] = self.label
        return out


def first_box(traj: Trajectory) -> np.ndarray:
    """Box vectors (rows, nm) of the first analysed frame (:meth:`Trajectory.first_box_nm`, read once)."""
    box = traj.first_box_nm()
    if box is None:
        raise AnalysisError("trajectory frames carry no unit cell")
    return box


class ContactEngine:
    """Streams frames once per sweep and hands each frame's contacts to the consumers."""

    def __init__(self, traj, groups, pairs, exclude_intramolecular, r_max_nm, bin_nm, window: ZWindow | None = None):
        self.traj = traj
        self.window = window
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
            self.rdfs[p.key] = RDFAccumulator(r_max_nm, bin_nm, len(c.indices), n_pairs, n_frames=self.n_frames)
        #: Excluded (centre, shell) pairs per centre atom (their sum is the per-frame exclusion of the whole group).
        self.excluded_per_center = {p.key: self._excluded_per_center(groups[p.center], groups[p.shell])
                                    for p in pairs}
        #: Centre-atom frames counted, summed over the frames fed (the window's pair count).
        self.center_frames = {c: 0 for c in {p.center for p in pairs}}
        self.frames_fed = 0

    def shell_residue_count(self, key: str) -> int:
        return self.pair_sizes[key]["n_shell_residues"]

    def _n_excluded(self, c: Group, s: Group) -> int:
        if self.exclude_intramolecular:
            rc, nc = np.unique(c.residues, return_counts=True)
            rs, ns = np.unique(s.residues, return_counts=True)
            _, ic, is_ = np.intersect1d(rc, rs, return_indices=True)
            return int(np.sum(nc[ic] * ns[is_]))
        return int(len(np.intersect1d(c.indices, s.indices)))

    def _excluded_per_center(self, c: Group, s: Group) -> np.ndarray:
        if self.exclude_intramolecular:
            rs, ns = np.unique(s.residues, return_counts=True)
            k = np.searchsorted(rs, c.residues)
            hit = (k < len(rs)) & (rs[np.minimum(k, len(rs) - 1)] == c.residues)
            return np.where(hit, ns[np.minimum(k, len(rs) - 1)], 0).astype(np.int64)
        return np.isin(c.indices, s.indices).astype(np.int64)

    def set_pass(self, histograms: bool, cutoffs: dict | None, consumers: list) -> None:
        """What the next frames fed are for: RDF histograms (to ``r_max``) and/or contacts within ``cutoffs``."""
        self._pairs = [p for p in self.pairs if histograms or (cutoffs and p.key in cutoffs)]
        self._radius = {p.key: (self.r_max_nm if histograms else cutoffs[p.key]) for p in self._pairs}
        self._histograms, self._cutoffs, self._consumers = histograms, cutoffs, consumers
        self.center_frames = {c: 0 for c in self.center_frames}
        self.frames_fed = 0

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
            masks = {}
            if self.window is not None:
                for center in self.center_frames:
                    masks[center] = self.window.mask(xyz[self.local[center], 2], chunk.box_nm[f], f"frame {frame}: ")
            for center in self.center_frames:
                self.center_frames[center] += (int(np.count_nonzero(masks[center])) if masks
                                               else len(self.groups[center].indices))
            self.frames_fed += 1
            for p in pairs:
                c, s = self.groups[p.center], self.groups[p.shell]
                win = masks.get(p.center)
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
                    if win is None:
                        self.rdfs[p.key].add_frame(d, volume)
                    else:
                        n_in = int(np.count_nonzero(win))
                        n_pairs = n_in * len(s.indices) - int(self.excluded_per_center[p.key][win].sum())
                        self.rdfs[p.key].add_frame(d[win[i]], volume, n_pairs, n_in)
                if cutoffs and p.key in cutoffs:
                    m = d < cutoffs[p.key]
                    contacts[p.key] = Contacts.of(i[m], s.residues[j[m]], self.n_residues_total,
                                                  len(c.indices) if win is None else None, win)
            for consumer in self._consumers:
                consumer.update(frame, contacts, self.pair_sizes)
