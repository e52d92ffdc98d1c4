"""Unwrapping periodic trajectories by minimum-image displacements between consecutive frames.

Every position stream that goes into a mean-squared displacement passes
through :class:`Unwrapper`. The displacement of each atom between two
consecutive frames is reduced to its minimum image in the box of the later
frame and added to the previous unwrapped position (the "jump" scheme for
boxes that change from frame to frame; see von Bülow, Bullerjahn & Hummer,
J. Chem. Phys. 153, 021101 (2020)).

The operation is idempotent on trajectories that are already unwrapped (as
``aseimd run`` writes them), as long as no atom moves by half a box length
or more along a box vector between two stored frames: then the minimum image
of a true displacement is the displacement itself. At the frame spacings used
for transport (<= 10 ps; a Li+ ion moves ~0.3 nm in that time in a liquid)
this holds by orders of magnitude for boxes of a few nm. Input without unit
cell information is passed through unchanged.
"""

from __future__ import annotations

import numpy as np

from aseimd.errors import AnalysisError


def minimum_image(delta_nm: np.ndarray, box_nm: np.ndarray) -> np.ndarray:
    """Reduce displacement vectors to their minimum image.

    Parameters
    ----------
    delta_nm : numpy.ndarray, shape=(n_frames, n_atoms, 3), dtype=float64
        Displacements in nm.
    box_nm : numpy.ndarray, shape=(n_frames, 3, 3)
        Box vectors (rows) in nm, one box per frame.

    Returns
    -------
    numpy.ndarray, shape=(n_frames, n_atoms, 3), dtype=float64
        ``delta_nm`` minus the lattice vector nearest to it in fractional
        coordinates (exact minimum image for orthorhombic boxes).
    """
    box = np.asarray(box_nm, dtype=np.float64)
    if np.any(np.abs(np.linalg.det(box)) < 1e-12):
        raise AnalysisError("the trajectory has a box of zero volume in some frame; cannot unwrap")
    diag = np.diagonal(box, axis1=1, axis2=2)  # (n, 3)
    if np.all(box == diag[:, :, None] * np.eye(3)):  # orthorhombic: per-axis rounding, no matrix products
        edges = diag[:, None, :]
        return delta_nm - edges * np.round(delta_nm / edges)
    inv = np.linalg.inv(box)  # (n, 3, 3): fractional = cartesian @ inv
    frac = delta_nm @ inv
    frac -= np.round(frac)
    return frac @ box


def make_whole(xyz_nm: np.ndarray, box_nm: np.ndarray, particle_of_atom: np.ndarray) -> np.ndarray:
    """Put every particle's atoms in the periodic image nearest to the particle's first atom.

    Parameters
    ----------
    xyz_nm : numpy.ndarray, shape=(n_atoms, 3)
        One frame of positions in nm.
    box_nm : numpy.ndarray, shape=(3, 3)
        Box vectors (rows) in nm.
    particle_of_atom : numpy.ndarray, shape=(n_atoms,), dtype=int
        Particle id (0..n_particles-1) of each atom; atoms of one particle contiguous.

    Returns
    -------
    numpy.ndarray, shape=(n_atoms, 3), dtype=float64
        Positions with each particle whole (valid for particles smaller than half the box).
    """
    xyz = np.asarray(xyz_nm, dtype=np.float64)
    first = np.r_[0, np.flatnonzero(np.diff(particle_of_atom)) + 1]
    anchor = np.repeat(xyz[first], np.diff(np.r_[first, len(xyz)]), axis=0)
    delta = minimum_image((xyz - anchor)[None], np.asarray(box_nm, float)[None])[0]
    return anchor + delta


class Unwrapper:
    """Streamed unwrapping: feed chunks of wrapped frames in order, get unwrapped positions back.

    Parameters
    ----------
    particle_of_atom : numpy.ndarray, shape=(n_atoms,), dtype=int, optional
        If given, the first frame is made whole per particle (:func:`make_whole`)
        so that centres of mass of molecules split across the box are correct.

    Examples
    --------
    >>> import numpy as np
    >>> box = np.diag([2.0, 2.0, 2.0])[None].repeat(3, axis=0)
    >>> wrapped = np.array([[[1.9, 0, 0]], [[0.1, 0, 0]], [[0.3, 0, 0]]])
    >>> Unwrapper().feed(wrapped, box)[:, 0, 0].round(6).tolist()
    [1.9, 2.1, 2.3]
    """

    def __init__(self, particle_of_atom: np.ndarray | None = None) -> None:
        self._particle_of_atom = particle_of_atom
        self._last_wrapped: np.ndarray | None = None
        self._last_unwrapped: np.ndarray | None = None

    def feed(self, xyz_nm: np.ndarray, box_nm: np.ndarray | None) -> np.ndarray:
        """Unwrap the next chunk of frames.

        Parameters
        ----------
        xyz_nm : numpy.ndarray, shape=(n_frames, n_atoms, 3)
            Positions as stored, in nm.
        box_nm : numpy.ndarray, shape=(n_frames, 3, 3), or None
            Box vectors per frame in nm; ``None`` passes positions through.

        Returns
        -------
        numpy.ndarray, shape=(n_frames, n_atoms, 3), dtype=float64
            Unwrapped positions in nm, continuous with the previous chunk.
        """
        xyz = np.asarray(xyz_nm, dtype=np.float64)
        if box_nm is None or len(xyz) == 0:
            return xyz.copy()
        box = np.asarray(box_nm, dtype=np.float64)
        if self._last_wrapped is None:
            first = xyz[0] if self._particle_of_atom is None else make_whole(xyz[0], box[0], self._particle_of_atom)
            prev_w, prev_u = xyz[0], first
            steps = np.zeros_like(xyz)
            steps[1:] = minimum_image(np.diff(xyz, axis=0), box[1:])
            out = prev_u + np.cumsum(steps, axis=0)
        else:
            prev_w, prev_u = self._last_wrapped, self._last_unwrapped
            deltas = np.diff(np.concatenate([prev_w[None], xyz]), axis=0)
            out = prev_u + np.cumsum(minimum_image(deltas, box), axis=0)
        self._last_wrapped = xyz[-1].copy()
        self._last_unwrapped = out[-1].copy()
        return out
