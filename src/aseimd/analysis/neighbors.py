"""Minimum-image pair distances in periodic boxes (orthorhombic and triclinic).

Two implementations that give the same pairs:

* :func:`neighbor_pairs` -- what the analyses call. Orthorhombic boxes use
  :class:`scipy.spatial.cKDTree` with ``boxsize`` (periodic k-d tree, k-nearest
  queries with a distance bound, k doubled until every neighbour is found);
  triclinic boxes use :func:`pair_distances` (vectorised numpy), chunked over
  the first group so that memory stays bounded.
* :func:`pair_distances` -- the full minimum-image distance matrix, vectorised.

Minimum image: :func:`aseimd.analysis.pbc.minimum_image` (the one
implementation, exact in triclinic boxes), re-exported here.

Boxes are given as row vectors ``box[i]`` = lattice vector i, in nm, as mdtraj's
``unitcell_vectors`` and OpenMM's ``getPeriodicBoxVectors`` give them.
"""

from __future__ import annotations

import numpy as np

from aseimd.analysis.pbc import box_volume_nm3, half_min_width, is_orthorhombic, minimum_image
from aseimd.errors import AnalysisError

__all__ = ["box_volume_nm3", "half_min_width", "is_orthorhombic", "minimum_image", "pair_distances",
           "neighbor_pairs", "FrameNeighbors"]

#: Upper bound on (centre atoms x other atoms) evaluated at once by the numpy path.
_MAX_PAIRS_PER_CHUNK = 200_000


def pair_distances(a_nm: np.ndarray, b_nm: np.ndarray, box_nm: np.ndarray) -> np.ndarray:
    """Minimum-image distance matrix between two sets of points (one frame).

    Parameters
    ----------
    a_nm : numpy.ndarray, shape=(n_a, 3)
    b_nm : numpy.ndarray, shape=(n_b, 3)
        Positions in nm.
    box_nm : numpy.ndarray, shape=(3, 3)
        Box vectors as rows, in nm.

    Returns
    -------
    numpy.ndarray, shape=(n_a, n_b), dtype=float64
        Distances in nm.
    """
    a = np.asarray(a_nm, dtype=float)
    b = np.asarray(b_nm, dtype=float)
    out = np.empty((len(a), len(b)))
    step = max(1, _MAX_PAIRS_PER_CHUNK // max(1, len(b)) // (1 if is_orthorhombic(box_nm) else 27))
    for lo in range(0, len(a), step):
        dr = minimum_image(b[None, :, :] - a[lo : lo + step, None, :], box_nm)
        out[lo : lo + step] = np.sqrt(np.einsum("ijk,ijk->ij", dr, dr))
    return out


def neighbor_pairs(
    a_nm: np.ndarray, b_nm: np.ndarray, box_nm: np.ndarray, r_max_nm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i in a, j in b) closer than ``r_max_nm`` under the minimum image.

    Parameters
    ----------
    a_nm : numpy.ndarray, shape=(n_a, 3)
    b_nm : numpy.ndarray, shape=(n_b, 3)
        Positions in nm (wrapped or not).
    box_nm : numpy.ndarray, shape=(3, 3)
        Box vectors as rows, in nm.
    r_max_nm : float
        Search radius in nm; must not exceed :func:`half_min_width`.

    Returns
    -------
    i, j : numpy.ndarray, shape=(n_pairs,), dtype=int64
        Indices into ``a_nm`` and ``b_nm``, sorted by ``i`` then ``j``.
    d : numpy.ndarray, shape=(n_pairs,), dtype=float64
        Distances in nm, strictly below ``r_max_nm``.
    """
    i, j, d = FrameNeighbors(box_nm).pairs(a_nm, b_nm, r_max_nm)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


class FrameNeighbors:
    """Neighbour search within one frame's box: box properties computed once, k-d trees cached.

    Parameters
    ----------
    box_nm : numpy.ndarray, shape=(3, 3)
        Box vectors as rows, in nm.
    """

    def __init__(self, box_nm: np.ndarray) -> None:
        self.box = np.asarray(box_nm, dtype=float)
        self.orthorhombic = is_orthorhombic(self.box)
        self.lengths = np.diag(self.box).copy()
        if self.orthorhombic:
            self.half_width = 0.5 * float(self.lengths.min())
            self.volume_nm3 = float(np.prod(self.lengths))
        else:
            self.half_width = half_min_width(self.box)
            self.volume_nm3 = box_volume_nm3(self.box)
        self._trees: dict = {}

    def pairs(
        self, a_nm: np.ndarray, b_nm: np.ndarray, r_max_nm: float, b_key=None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :func:`neighbor_pairs`, but only sorted by ``i``.

        ``b_key`` names ``b_nm`` so that its k-d tree is reused within this frame.
        """
        if r_max_nm > self.half_width * (1 + 1e-9):
            raise AnalysisError(
                f"search radius {r_max_nm:.4g} nm exceeds half the shortest box width "
                f"({self.half_width:.4g} nm)"
            )
        if len(a_nm) == 0 or len(b_nm) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0)
        a = np.asarray(a_nm, dtype=float)
        if self.orthorhombic:
            tree = self._trees.get(b_key) if b_key is not None else None
            if tree is None:
                tree = self._tree(np.asarray(b_nm, dtype=float))
                if b_key is not None:
                    self._trees[b_key] = tree
            i, j, d = _query_tree(tree, _wrap(a, self.lengths), r_max_nm)
        else:
            i, j, d = _pairs_numpy(a, np.asarray(b_nm, dtype=float), self.box, r_max_nm)
        return i, j, d

    def _tree(self, b: np.ndarray):
        from scipy.spatial import cKDTree

        return cKDTree(_wrap(b, self.lengths), boxsize=self.lengths, balanced_tree=False, compact_nodes=False)


def _wrap(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    x = x - np.floor(x / lengths) * lengths
    # floating point can leave x == L after the subtraction; cKDTree needs [0, L)
    return np.where(x >= lengths, 0.0, x)


def _pairs_kdtree(a, b, lengths, r_max_nm):
    """Periodic k-d tree path for an orthorhombic box with edge ``lengths``."""
    from scipy.spatial import cKDTree

    return _query_tree(cKDTree(_wrap(b, lengths), boxsize=lengths), _wrap(a, lengths), r_max_nm)


def _query_tree(tree, queries, r_max_nm):
    """k-nearest queries with a distance bound; k doubled until no row is full."""
    n_b = tree.n
    expected = n_b / float(np.prod(tree.boxsize)) * 4.0 / 3.0 * np.pi * r_max_nm**3
    k = int(min(n_b, max(8, 2 * expected + 8)))
    while True:
        d, j = tree.query(queries, k=k, distance_upper_bound=r_max_nm)
        d, j = d.reshape(len(queries), k), j.reshape(len(queries), k)
        if k >= n_b or not np.any(np.isfinite(d[:, -1])):
            break
        k = min(n_b, 2 * k)
    keep = d < r_max_nm
    i = np.nonzero(keep)[0]
    return i.astype(np.int64), j[keep].astype(np.int64), d[keep]


def _pairs_numpy(a, b, box, r_max_nm):
    out_i, out_j, out_d = [], [], []
    step = max(1, _MAX_PAIRS_PER_CHUNK // len(b) // 27)
    for lo in range(0, len(a), step):
        d = pair_distances(a[lo : lo + step], b, box)
        ii, jj = np.nonzero(d < r_max_nm)
        out_i.append(ii + lo)
        out_j.append(jj)
        out_d.append(d[ii, jj])
    return (np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64),
            np.concatenate(out_d))
