"""Geometry checks for built cells: a cell list, close contacts, rings speared by bonds.

Everything here works on plain arrays (positions in nm, an orthorhombic box in
nm, an ``openmm.app.Topology`` for bonds) and never builds an all-pairs
distance matrix: :class:`CellList` bins atoms into cells at least as wide as
the search radius and compares each atom only with the atoms of its own and
the 26 neighbouring cells (minimum image on the periodic axes).

* :func:`min_nonbonded_distance_nm` -- the closest pair of atoms that are not
  1-2 or 1-3 partners (what a build must keep above ~0.1 nm).
* :func:`speared_rings` -- every bond that passes through the face of a ring
  (5/6-membered carbonate rings of EC, PC, FEC, or any other ring): the
  entanglement that minimisation cannot undo and that no packing tool checks.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class CellList:
    """Atoms binned into cells for neighbour searches (no all-pairs matrix).

    Parameters
    ----------
    positions_nm : numpy.ndarray, shape=(n_atoms, 3), dtype=float
        Positions in nm (need not lie inside the box on periodic axes).
    box_nm : sequence of 3 float
        Orthorhombic box edges in nm.
    cutoff_nm : float
        Largest search radius the list will be asked for, in nm (cell width >= cutoff).
    periodic : sequence of 3 bool
        Minimum image on each axis; a non-periodic axis spans the atoms' extent.
    """

    def __init__(self, positions_nm, box_nm, cutoff_nm: float, periodic: Sequence[bool] = (True, True, True)):
        pos = np.asarray(positions_nm, dtype=float).reshape(-1, 3)
        box = np.asarray(box_nm, dtype=float)
        if cutoff_nm <= 0:
            raise ValueError(f"cutoff_nm must be positive, got {cutoff_nm!r}")
        self.positions_nm = pos
        self.box_nm = box
        self.cutoff_nm = float(cutoff_nm)
        self.periodic = np.asarray(periodic, dtype=bool)
        n = len(pos)
        lo = np.where(self.periodic, 0.0, pos.min(axis=0) if n else 0.0)
        span = np.where(self.periodic, box, (pos.max(axis=0) - lo if n else 0.0) + 1e-9)
        self.n_cells = np.maximum(1, np.floor(span / self.cutoff_nm).astype(int))
        frac = np.where(self.periodic, np.mod(pos, box), pos - lo) / span
        cell = np.minimum((frac * self.n_cells).astype(int), self.n_cells - 1)
        self._cell = np.clip(cell, 0, self.n_cells - 1)
        flat = self._flat(self._cell)
        self._order = np.argsort(flat, kind="stable")
        sorted_flat = flat[self._order]
        n_total = int(np.prod(self.n_cells))
        self._start = np.searchsorted(sorted_flat, np.arange(n_total))
        self._count = np.searchsorted(sorted_flat, np.arange(n_total), side="right") - self._start

    def _flat(self, cell: np.ndarray) -> np.ndarray:
        nx, ny, nz = self.n_cells
        return (cell[:, 0] * ny + cell[:, 1]) * nz + cell[:, 2]

    def _offsets(self) -> np.ndarray:
        per_axis = []
        for n, per in zip(self.n_cells, self.periodic):
            if per:
                per_axis.append(sorted({(-1) % n, 0, 1 % n}) if n < 3 else [-1, 0, 1])
            else:
                per_axis.append([-1, 0, 1])
        return np.array([(a, b, c) for a in per_axis[0] for b in per_axis[1] for c in per_axis[2]])

    def pairs(self, cutoff_nm: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs closer than ``cutoff_nm``.

        Returns
        -------
        i, j : numpy.ndarray, shape=(n_pairs,), dtype=int
            Atom indices with ``i < j``.
        d_nm : numpy.ndarray, shape=(n_pairs,), dtype=float
            Minimum-image distances in nm.
        """
        r = self.cutoff_nm if cutoff_nm is None else float(cutoff_nm)
        if r > self.cutoff_nm + 1e-12:
            raise ValueError(f"cutoff_nm {r} exceeds the cell list's {self.cutoff_nm}")
        n = len(self.positions_nm)
        out_i, out_j, out_d = [], [], []
        if n < 2:
            e = np.zeros(0, dtype=int)
            return e, e, np.zeros(0)
        atoms = np.arange(n)
        for off in self._offsets():
            nb = self._cell + off
            ok = np.ones(n, dtype=bool)
            for ax in range(3):
                if self.periodic[ax]:
                    nb[:, ax] %= self.n_cells[ax]
                else:
                    ok &= (nb[:, ax] >= 0) & (nb[:, ax] < self.n_cells[ax])
            src = atoms[ok]
            flat = self._flat(nb[ok])
            cnt = self._count[flat]
            if cnt.sum() == 0:
                continue
            i = np.repeat(src, cnt)
            first = np.repeat(self._start[flat], cnt)
            within = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            j = self._order[first + within]
            keep = i < j
            i, j = i[keep], j[keep]
            d = self.positions_nm[j] - self.positions_nm[i]
            d = np.where(self.periodic, d - self.box_nm * np.round(d / self.box_nm), d)
            dist = np.sqrt(np.einsum("ij,ij->i", d, d))
            close = dist < r
            out_i.append(i[close]), out_j.append(j[close]), out_d.append(dist[close])
        i = np.concatenate(out_i) if out_i else np.zeros(0, dtype=int)
        j = np.concatenate(out_j) if out_j else np.zeros(0, dtype=int)
        d = np.concatenate(out_d) if out_d else np.zeros(0)
        if np.any(self.n_cells[self.periodic] < 3):  # the same cell pair can be reached twice
            key, first = np.unique(i.astype(np.int64) * n + j, return_index=True)
            i, j, d = i[first], j[first], d[first]
        return i, j, d


def bond_array(topology) -> np.ndarray:
    """Bonds of a topology as an array of atom indices, shape=(n_bonds, 2), dtype=int."""
    b = [(bd.atom1.index, bd.atom2.index) for bd in topology.bonds()]
    return np.array(b, dtype=np.int64).reshape(-1, 2)


def _excluded_keys(bonds: np.ndarray, n_atoms: int, max_separation: int) -> np.ndarray:
    """Sorted keys ``i * n + j`` (i < j) of pairs at most ``max_separation`` bonds apart."""
    from scipy import sparse

    if len(bonds) == 0 or max_separation < 1:
        return np.zeros(0, dtype=np.int64)
    a = sparse.coo_matrix((np.ones(2 * len(bonds)), (np.r_[bonds[:, 0], bonds[:, 1]],
                                                     np.r_[bonds[:, 1], bonds[:, 0]])),
                          shape=(n_atoms, n_atoms)).tocsr()
    a.data[:] = 1.0
    reach = a.copy()
    power = a
    for _ in range(max_separation - 1):
        power = (power @ a).tocsr()
        power.data[:] = 1.0
        reach = reach + power
    coo = reach.tocoo()
    keep = coo.row < coo.col
    return np.unique(coo.row[keep].astype(np.int64) * n_atoms + coo.col[keep])


class ClosePair(NamedTuple):
    """The closest non-bonded pair: atom indices and distance in nm."""

    i: int
    j: int
    distance_nm: float


def closest_nonbonded_pair(topology, positions_nm, box_nm, periodic=(True, True, True), *,
                           max_bond_separation: int = 2, search_nm: float = 0.5) -> ClosePair | None:
    """The closest pair of atoms not within ``max_bond_separation`` bonds of each other.

    Parameters
    ----------
    topology : openmm.app.Topology
    positions_nm : numpy.ndarray, shape=(n_atoms, 3)
        Positions in nm.
    box_nm : sequence of 3 float
        Orthorhombic box edges in nm.
    periodic : sequence of 3 bool
        Minimum image per axis (a polymer layer alone: ``(True, True, False)``).
    max_bond_separation : int
        Pairs up to this many bonds apart are skipped (2: 1-2 and 1-3 pairs, which the
        force field excludes).
    search_nm : float
        Search radius in nm.

    Returns
    -------
    ClosePair or None
        None if no non-bonded pair is closer than ``search_nm``.
    """
    pos = np.asarray(positions_nm, dtype=float)
    i, j, d = CellList(pos, box_nm, search_nm, periodic).pairs()
    excl = _excluded_keys(bond_array(topology), len(pos), max_bond_separation)
    if len(excl) and len(i):
        keys = i.astype(np.int64) * len(pos) + j
        pos_in = np.searchsorted(excl, keys)
        hit = (pos_in < len(excl)) & (excl[np.minimum(pos_in, len(excl) - 1)] == keys)
        i, j, d = i[~hit], j[~hit], d[~hit]
    if len(d) == 0:
        return None
    k = int(np.argmin(d))
    return ClosePair(int(i[k]), int(j[k]), float(d[k]))


def min_nonbonded_distance_nm(topology, positions_nm, box_nm, periodic=(True, True, True), *,
                              max_bond_separation: int = 2, search_nm: float = 0.5) -> float:
    """Smallest distance between atoms that are not 1-2 or 1-3 partners, in nm.

    Same parameters as :func:`closest_nonbonded_pair`.  Returns ``inf`` when no
    such pair is closer than ``search_nm``.
    """
    pair = closest_nonbonded_pair(topology, positions_nm, box_nm, periodic,
                                  max_bond_separation=max_bond_separation, search_nm=search_nm)
    return float("inf") if pair is None else pair.distance_nm


def find_rings(topology, max_size: int = 8) -> list[tuple[int, ...]]:
    """Smallest rings of the bond graph with at most ``max_size`` atoms.

    Returns
    -------
    list of tuple of int
        Each ring's atom indices in ring order.
    """
    import networkx as nx
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    bonds = bond_array(topology)
    n = topology.getNumAtoms()
    if len(bonds) == 0:
        return []
    adj = sparse.coo_matrix((np.ones(len(bonds)), (bonds[:, 0], bonds[:, 1])), shape=(n, n))
    n_comp, label = connected_components(adj, directed=False)
    edges_per = np.bincount(label[bonds[:, 0]], minlength=n_comp)
    atoms_per = np.bincount(label, minlength=n_comp)
    cyclic = np.flatnonzero(edges_per >= atoms_per)
    rings = []
    for comp in cyclic:
        members = set(np.flatnonzero(label == comp).tolist())
        g = nx.Graph()
        g.add_edges_from((int(a), int(b)) for a, b in bonds if int(a) in members)
        for cycle in nx.minimum_cycle_basis(g):
            if len(cycle) <= max_size:
                ordered = _ring_order(g, cycle)
                rings.append(tuple(ordered))
    return rings


def _ring_order(g, cycle) -> list[int]:
    cyc = set(cycle)
    start = min(cyc)
    order, prev = [start], None
    while len(order) < len(cyc):
        cur = order[-1]
        nxt = next(n for n in g.neighbors(cur) if n in cyc and n != prev and n not in order[-2:-1])
        if nxt in order:
            break
        prev = cur
        order.append(nxt)
    return order


class SpearedRing(NamedTuple):
    """A bond (atom indices) passing through the face of a ring (atom indices)."""

    ring: tuple[int, ...]
    bond: tuple[int, int]


def speared_rings(topology, positions_nm, box_nm, periodic=(True, True, True)) -> list[SpearedRing]:
    """Every bond that passes through the face of a ring.

    A ring's face is the fan of triangles from its centroid to its edges
    (rings of at most 8 atoms, e.g. the 5-membered carbonate ring of EC, PC,
    FEC).  A bond spears the ring when the segment between its two atoms
    crosses one of those triangles; bonds sharing an atom with the ring are not
    tested.  Candidate bonds come from a cell list around the ring centroids.

    Parameters
    ----------
    topology : openmm.app.Topology
    positions_nm : numpy.ndarray, shape=(n_atoms, 3)
        Positions in nm.
    box_nm : sequence of 3 float
        Orthorhombic box edges in nm.
    periodic : sequence of 3 bool

    Returns
    -------
    list of SpearedRing
        Empty when no bond spears a ring.
    """
    pos = np.asarray(positions_nm, dtype=float)
    box = np.asarray(box_nm, dtype=float)
    per = np.asarray(periodic, dtype=bool)
    rings = find_rings(topology)
    if not rings:
        return []
    bonds = bond_array(topology)

    def mi(v):
        return np.where(per, v - box * np.round(v / box), v)

    centroids, radii, verts = [], [], []
    for ring in rings:
        r0 = pos[ring[0]]
        v = r0 + mi(pos[list(ring)] - r0)
        c = v.mean(axis=0)
        centroids.append(c)
        verts.append(v)
        radii.append(np.max(np.linalg.norm(v - c, axis=1)))
    centroids = np.array(centroids)
    max_bond = float(np.max(np.linalg.norm(mi(pos[bonds[:, 1]] - pos[bonds[:, 0]]), axis=1))) if len(bonds) else 0.0
    search = float(max(radii)) + max_bond + 1e-6
    n = len(pos)
    allpos = np.vstack([pos, centroids])
    i, j, _ = CellList(allpos, box, search, per).pairs()
    # pairs (atom, centroid): i < j, so centroids are always j
    sel = (j >= n) & (i < n)
    ring_of, atom = j[sel] - n, i[sel]
    bonds_of_atom: dict[int, list[int]] = {}
    for k, (a, b) in enumerate(bonds):
        bonds_of_atom.setdefault(int(a), []).append(k)
        bonds_of_atom.setdefault(int(b), []).append(k)
    candidates = set()
    for rk, at in zip(ring_of.tolist(), atom.tolist()):
        for bk in bonds_of_atom.get(at, ()):
            candidates.add((rk, bk))
    hits = []
    for rk, bk in sorted(candidates):
        ring = rings[rk]
        a, b = (int(x) for x in bonds[bk])
        if a in ring or b in ring:
            continue
        c = centroids[rk]
        p = c + mi(pos[a] - c)
        q = p + mi(pos[b] - pos[a])
        v = verts[rk]
        tri = np.stack([np.repeat(c[None], len(v), 0), v, np.roll(v, -1, axis=0)], axis=1)
        if _segment_hits_triangles(p, q, tri):
            hits.append(SpearedRing(tuple(ring), (a, b)))
    return hits


def _segment_hits_triangles(p: np.ndarray, q: np.ndarray, tri: np.ndarray, eps: float = 1e-12) -> bool:
    """Möller-Trumbore test of segment p-q against triangles, shape=(n, 3 vertices, 3)."""
    d = q - p
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    h = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(det) > eps
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = p - tri[:, 0]
    u = inv * np.einsum("ij,ij->i", s, h)
    qv = np.cross(s, e1)
    v = inv * (qv @ d)
    t = inv * np.einsum("ij,ij->i", e2, qv)
    return bool(np.any(ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t >= 0) & (t <= 1)))
