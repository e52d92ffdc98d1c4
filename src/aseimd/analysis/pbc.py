"""Periodic boxes: the one minimum-image function, box widths and volumes (orthorhombic and triclinic).

Boxes are row vectors ``box[i]`` = lattice vector i, in nm, as mdtraj's
``unitcell_vectors`` and OpenMM's ``getPeriodicBoxVectors`` give them.

Minimum image in a triclinic box: the separation is reduced in fractional
coordinates (``s - round(s)``) and then the 27 neighbouring lattice images are
checked, which finds the true shortest image for boxes in OpenMM's reduced
form (fractional rounding alone is not the minimum image in a skewed cell).
A distance below ``half_min_width(box)`` is always the true minimum-image
distance. Orthorhombic boxes take per-axis rounding in the input's precision
(float32 positions stay float32: this is the unwrapping fast path).
"""

from __future__ import annotations

import itertools

import numpy as np

from aseimd.errors import AnalysisError

_IMAGE_SHIFTS = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)


def is_orthorhombic(box_nm: np.ndarray, rtol: float = 1e-6) -> bool:
    """Whether the off-diagonal elements of a box (shape=(3, 3)) or of every box (shape=(n, 3, 3)) vanish."""
    box = np.asarray(box_nm, dtype=float)
    diag = np.diagonal(box, axis1=-2, axis2=-1)
    off = box - diag[..., :, None] * np.eye(3)
    return bool(np.all(np.abs(off) <= rtol * np.max(np.abs(diag))))


def box_volume_nm3(box_nm: np.ndarray) -> float:
    """Volume of the cell, in nm^3."""
    return float(abs(np.linalg.det(np.asarray(box_nm, dtype=float))))


def half_min_width(box_nm: np.ndarray) -> float:
    """Half the shortest perpendicular width of the cell (shape=(3, 3)), in nm; 0 for a flat cell.

    Distances up to this value are unambiguous under the minimum-image convention.
    """
    return float(half_min_widths(np.asarray(box_nm, dtype=float)[None])[0])


def half_min_widths(boxes_nm: np.ndarray) -> np.ndarray:
    """:func:`half_min_width` of every cell of ``boxes_nm`` (shape=(n, 3, 3)), shape=(n,); 0 for a flat cell."""
    b = np.asarray(boxes_nm, dtype=float)
    vol = np.abs(np.linalg.det(b))
    faces = np.stack([np.linalg.norm(np.cross(b[:, (i + 1) % 3], b[:, (i + 2) % 3]), axis=-1) for i in range(3)])
    with np.errstate(divide="ignore", invalid="ignore"):
        widths = np.where(faces > 0, vol / faces, 0.0)
    return 0.5 * widths.min(axis=0)


def _check_volume(box: np.ndarray) -> None:
    if np.any(np.abs(np.linalg.det(box)) < 1e-12):
        raise AnalysisError("the trajectory has a box of zero volume in some frame")


def minimum_image(dr_nm: np.ndarray, box_nm: np.ndarray) -> np.ndarray:
    """The shortest periodic image of separation vectors.

    Parameters
    ----------
    dr_nm : numpy.ndarray, shape=(..., 3) or (n_frames, ..., 3)
        Separation vectors in nm (float32 is kept for orthorhombic boxes).
    box_nm : numpy.ndarray, shape=(3, 3) or (n_frames, 3, 3)
        One box for all vectors, or one box per frame (the first axis of ``dr_nm``).

    Returns
    -------
    numpy.ndarray, same shape as ``dr_nm``
        Minimum-image vectors in nm (exact for triclinic boxes in reduced form).

    Examples
    --------
    >>> box = np.array([[2.0, 0, 0], [1.0, 2.0, 0], [0, 0, 2.0]])  # skewed: b = (1, 2, 0)
    >>> minimum_image(np.array([1.4, 1.6, 0.0]), box).round(6).tolist()  # rounding alone gives (1.4, -0.4)
    [0.4, -0.4, 0.0]
    """
    box = np.asarray(box_nm, dtype=float)
    dr = np.asarray(dr_nm)
    if not np.issubdtype(dr.dtype, np.floating):
        dr = dr.astype(float)
    if box.ndim == 3 and (len(box) == 1 or np.all(box == box[:1])):
        box = box[0]
    _check_volume(box)
    if box.ndim == 2:
        if is_orthorhombic(box):
            lengths = np.diag(box).astype(dr.dtype)
            return dr - lengths * np.round(dr / lengths)
        frac = dr.astype(float) @ np.linalg.inv(box)
        red = (frac - np.round(frac)) @ box
        cand = red[..., None, :] + _IMAGE_SHIFTS @ box
        best = np.argmin(np.einsum("...ij,...ij->...i", cand, cand), axis=-1)
        return np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    if box.shape[0] != dr.shape[0]:
        raise ValueError(f"{box.shape[0]} boxes for {dr.shape[0]} frames")
    expand = (slice(None),) + (None,) * (dr.ndim - 2)
    if is_orthorhombic(box):
        lengths = np.diagonal(box, axis1=1, axis2=2)[expand].astype(dr.dtype)
        return dr - lengths * np.round(dr / lengths)
    inv = np.linalg.inv(box)
    frac = np.einsum("f...i,fij->f...j", dr.astype(float), inv)
    red = np.einsum("f...i,fij->f...j", frac - np.round(frac), box)
    shifts = np.einsum("si,fij->fsj", _IMAGE_SHIFTS, box)[expand]  # (n, 1.., 27, 3)
    cand = red[..., None, :] + shifts
    best = np.argmin(np.einsum("...ij,...ij->...i", cand, cand), axis=-1)
    return np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
