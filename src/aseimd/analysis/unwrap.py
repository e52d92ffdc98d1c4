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

from aseimd.analysis.pbc import is_orthorhombic, minimum_image

__all__ = ["Unwrapper", "make_whole", "minimum_image"]


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
    delta = minimum_image(xyz - anchor, np.asarray(box_nm, float))
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
        xyz = np.asarray(xyz_nm)
        if box_nm is None or len(xyz) == 0:
            return np.array(xyz, dtype=np.float64)
        box = np.asarray(box_nm, dtype=np.float64)
        if self._last_wrapped is None:
            first = np.asarray(xyz[0], np.float64)
            if self._particle_of_atom is not None:
                first = make_whole(first, box[0], self._particle_of_atom)
            prev_w, prev_u = xyz[0], first
        else:
            prev_w, prev_u = self._last_wrapped, self._last_unwrapped
        # steps in the stored precision (float32 for DCD/XTC), one box when it is constant; sums in float64
        steps = np.empty_like(xyz)
        np.subtract(xyz[0], prev_w, out=steps[0])
        np.subtract(xyz[1:], xyz[:-1], out=steps[1:])
        if np.all(box == box[:1]) and is_orthorhombic(box[0]):  # in place, no temporaries beyond one
            lengths = np.diag(box[0]).astype(steps.dtype)
            q = steps / lengths
            np.rint(q, out=q)
            q *= lengths
            steps -= q
        else:
            steps = minimum_image(steps, box)
        if self._last_wrapped is None:
            steps[0] = 0.0
        out = np.cumsum(steps, axis=0, dtype=np.float64)
        out += prev_u
        self._last_wrapped = np.array(xyz[-1])
        self._last_unwrapped = out[-1].copy()
        return out
