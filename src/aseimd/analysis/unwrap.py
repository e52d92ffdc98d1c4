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

__all__ = ["CentreDrift", "Unwrapper", "folding_warning", "make_whole", "minimum_image"]

#: Warn when the steps folded back by the minimum image would carry more than this share of the
#: frame-to-frame step variance (for Gaussian steps; D is biased low by about that share).
FOLDED_VARIANCE_WARN = 1e-3
#: Frame pairs sampled for :func:`folding_warning` (a spread, not a count of rare events, is estimated).
FOLDING_SAMPLE_PAIRS = 1000


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


def _steps(x: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """Steps between consecutive frames of ``x`` in its own precision; the first against ``prev`` (0 if None)."""
    steps = np.empty(x.shape, x.dtype)
    if prev is None:
        steps[0] = 0.0
    else:
        np.subtract(x[0], prev, out=steps[0])
    np.subtract(x[1:], x[:-1], out=steps[1:])
    return steps


class _ImageJumps:
    """Image jumps rint(Δw / L) in one orthorhombic box, for the coordinates that can have any.

    A coordinate whose steps all stay within 0.49 L of zero has no image jump in the chunk
    (|Δw / L| <= 0.49 (1 + 2^-23) < 0.5, so rint gives 0 for every frame). ``steps`` has shape
    (n_frames, n_atoms, 3), ``lengths`` the three box lengths in the steps' precision. Returns the
    flat indices (into ``steps.reshape(n_frames, -1)``) of the other coordinates ("candidates"), their
    box lengths, and their jumps per frame (n_frames, n_candidates) in the steps' precision. The limits
    are kept as one row per coordinate (remade when the box or the atom count changes): compared
    against a (3,) broadcast the comparison would run in inner loops of 3 elements.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._limit = self._neg_limit = np.zeros(0)

    def __call__(self, steps: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        flat = steps.reshape(steps.shape[0], -1)
        key = (flat.shape[1], lengths.dtype.str, lengths.tobytes())
        if key != self._key:
            self._key = key
            self._limit = np.tile(np.float32(0.49) * lengths, flat.shape[1] // lengths.size)
            self._neg_limit = -self._limit
        reach = flat.max(axis=0) > self._limit
        reach |= flat.min(axis=0) < self._neg_limit
        cand = np.flatnonzero(reach)
        cand_len = lengths[cand % 3]
        jumps = flat[:, cand]
        jumps /= cand_len
        np.rint(jumps, out=jumps)
        return cand, cand_len, jumps


class _OrthorhombicCheck:
    """``is_orthorhombic`` of a box, remembered for the last box seen (one box per block, usually the same)."""

    def __init__(self) -> None:
        self._box: np.ndarray | None = None
        self._result = False

    def __call__(self, box: np.ndarray) -> bool:
        if self._box is None or not np.array_equal(box, self._box):
            self._box, self._result = np.array(box), bool(is_orthorhombic(box))
        return self._result


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
        self._orthorhombic = _OrthorhombicCheck()
        self._image_jumps = _ImageJumps()

    def start(self, wrapped_nm: np.ndarray, unwrapped_nm: np.ndarray) -> None:
        """Continue from a given first frame: its positions as stored and the unwrapped positions to start at.

        For a first frame made whole with more atoms than this unwrapper follows (the residues of the whole
        system, when only some of their atoms are kept): the first chunk fed must then begin with that frame,
        and every later frame comes out exactly as from an unwrapper of all those atoms.
        """
        if self._last_wrapped is not None:
            raise ValueError("start() must come before the first feed()")
        self._last_wrapped = np.array(wrapped_nm)
        self._last_unwrapped = np.array(unwrapped_nm, dtype=np.float64)

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
        if np.all(box == box[:1]) and self._orthorhombic(box[0]):
            out = self._feed_constant_orthorhombic(xyz, np.diag(box[0]), prev_w, prev_u)
        else:
            # steps in the stored precision (float32 for DCD/XTC), the minimum image in each frame's box
            steps = minimum_image(_steps(xyz, None if self._last_wrapped is None else prev_w), box)
            out = np.cumsum(steps, axis=0, dtype=np.float64)
            out += prev_u
        self._last_wrapped = np.array(xyz[-1])
        self._last_unwrapped = out[-1].copy()
        return out

    def _feed_constant_orthorhombic(self, xyz: np.ndarray, lengths_nm: np.ndarray, prev_w: np.ndarray,
                                    prev_u: np.ndarray) -> np.ndarray:
        """The same jump scheme for one constant orthorhombic box, by integer image counts.

        With one box the unwrapped path is u(t) = w(t) - L n(t) + (u_prev - w_prev),
        where n(t) is the running sum of the image jumps rint(Δw / L) of the
        minimum-image steps (computed in the stored precision, exactly as the
        general path does). The jump counts are small integers, exact in
        float32, so nothing accumulates round-off over the run: the result equals
        the summed minimum-image steps to the rounding of one float64 operation
        (the general path sums float32 steps, ~1e-6 nm over 10^4 frames).
        """
        # C order throughout: the candidate columns are written back through reshape views, which must not
        # be copies (an in-memory selection such as mdtraj's xyz[:, idx] can arrive in Fortran order)
        xyz = np.ascontiguousarray(xyz)
        offset = np.asarray(prev_u, np.float64) - np.asarray(prev_w, np.float64)
        lengths = lengths_nm.astype(xyz.dtype)
        steps = _steps(xyz, None if self._last_wrapped is None else prev_w)
        # Image jumps are rare: a coordinate whose steps all stay within 0.49 L of zero has no jump in this
        # chunk (:class:`_ImageJumps`), and its unwrapped path is w(t) + (u_prev - w_prev), the same
        # float64 operations the full scheme does with n(t) = 0. Only the other coordinates ("candidates")
        # go through the image counts below.
        n_frames = xyz.shape[0]
        cand, flat_len, jumps = self._image_jumps(steps, lengths)
        out = np.empty(xyz.shape, np.float64)
        np.add(xyz, offset, out=out)
        if cand.size == 0:
            return out
        flat_xyz = xyz.reshape(n_frames, -1)
        # image counts n(t): a running sum over frames (small integers: exact in float32)
        np.cumsum(jumps, axis=0, out=jumps)
        sub = np.multiply(jumps, flat_len.astype(np.float64))
        np.subtract(flat_xyz[:, cand], sub, out=sub)
        sub += np.broadcast_to(offset, xyz.shape[1:]).reshape(-1)[cand]
        out.reshape(n_frames, -1)[:, cand] = sub
        return out


class CentreDrift:
    """Streamed displacement of the mass-weighted centre of many atoms since the first frame, from wrapped frames.

    The centre of the unwrapped positions (what :class:`Unwrapper` gives, with residues made whole in
    the first frame or not: that shifts atoms by constant lattice vectors, which cancel) moves between
    two frames by sum_i w_i s_i, with s_i the minimum-image step of atom i. So the drift needs the
    steps of every atom, not their unwrapped positions (for a system centre of mass, every atom of
    the system, most of them never analysed). In one constant orthorhombic box the steps are the
    raw differences less L times the image jumps rint(Δx / L) (computed as the unwrapper computes
    them, in the stored precision), and

        drift(t) = drift(t0) + W(t) - W(t0) - sum_i w_i L n_i(t),

    W(t) = sum_i w_i x_i(t) over the stored positions and n_i(t) the jumps of atom i after frame t0
    (the last frame of the previous chunk): one float64 weighted sum per frame plus the few
    coordinates that cross a face in the chunk (found as in :meth:`Unwrapper.feed`). Any other box
    (changing, or triclinic) sums the minimum-image steps: drift(t) = drift(t0) + sum_t' sum_i w_i s_i(t').
    Without a box the stored positions are taken as unwrapped. All sums are float64; the result
    equals the weighted mean of the unwrapped positions less its first frame to float64 rounding.

    Parameters
    ----------
    weights : numpy.ndarray, shape=(n_atoms,)
        Weight of each atom (mass fractions, summing to 1, for a centre of mass).

    Examples
    --------
    >>> import numpy as np
    >>> box = np.diag([2.0, 2.0, 2.0])[None].repeat(3, axis=0)
    >>> wrapped = np.array([[[1.9, 0, 0], [1.0, 0, 0]], [[0.1, 0, 0], [1.0, 0, 0]], [[0.3, 0, 0], [1.0, 0, 0]]])
    >>> CentreDrift(np.array([0.5, 0.5])).feed(wrapped, box)[:, 0].round(6).tolist()
    [0.0, 0.1, 0.2]
    """

    def __init__(self, weights: np.ndarray) -> None:
        self._w = np.asarray(weights, dtype=np.float64)
        self._last_wrapped: np.ndarray | None = None
        self._last_sum: np.ndarray | None = None  # W of the last frame fed
        self._last_drift = np.zeros(3)
        self._orthorhombic = _OrthorhombicCheck()
        self._image_jumps = _ImageJumps()

    def feed(self, xyz_nm: np.ndarray, box_nm: np.ndarray | None) -> np.ndarray:
        """Drift (nm, float64, shape=(n_frames, 3)) of the next chunk of frames (n_frames, n_atoms, 3), in order."""
        x = np.ascontiguousarray(xyz_nm)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, 3))
        if x.shape[1] != self._w.size:
            raise ValueError(f"expected {self._w.size} atoms per frame, got {x.shape[1]}")
        first = self._last_wrapped is None
        if box_nm is None:
            W = self._w @ x.astype(np.float64)
            base = W[0] if first else self._last_sum
            drift = self._last_drift + (W - base)
            self._remember(x, W[-1], drift[-1])
            return drift
        box = np.asarray(box_nm, dtype=np.float64)
        steps = _steps(x, self._last_wrapped)
        if np.all(box == box[:1]) and self._orthorhombic(box[0]):
            W = self._w @ x.astype(np.float64)
            drift = W - (W[0] if first else self._last_sum)
            drift += self._last_drift
            cand, cand_len, jumps = self._image_jumps(steps, np.diag(box[0]).astype(x.dtype))
            if cand.size:
                # sum_i w_i L n_i per frame and direction: each candidate column's weight times its box length,
                # gathered into its direction by a (n_cand, 3) indicator
                per_column = self._w[cand // 3] * cand_len.astype(np.float64)
                indicator = (cand % 3)[:, None] == np.arange(3)[None, :]
                jump_sum = (jumps * per_column) @ indicator
                drift -= np.cumsum(jump_sum, axis=0)
            self._remember(x, W[-1], drift[-1])
            return drift
        steps = minimum_image(steps, box)
        drift = np.cumsum(self._w @ steps.astype(np.float64), axis=0)
        drift += self._last_drift
        self._remember(x, self._w @ x[-1].astype(np.float64), drift[-1])
        return drift

    def _remember(self, x: np.ndarray, last_sum: np.ndarray, last_drift: np.ndarray) -> None:
        self._last_wrapped = np.array(x[-1])
        self._last_sum = np.array(last_sum, dtype=np.float64)
        self._last_drift = np.array(last_drift, dtype=np.float64)


def folding_warning(xyz_nm: np.ndarray, box_nm: np.ndarray | None, label: str) -> str | None:
    """A warning when frames are so far apart that minimum-image unwrapping folds true displacements.

    Unwrapping takes each frame-to-frame step to its minimum image, which is the true step only while it is
    shorter than half the box. For steps with a Gaussian spread sigma (in box fractions, per box vector), the
    folded ones carry a share 2 (z phi(z) + Q(z)) of the step variance, z = 1 / (2 sigma): 6e-7 at sigma = 0.1,
    1e-3 at 0.128, 1 % at 0.15, 10 % at 0.2 -- and the MSD (so D) is biased low by up to that share (a folded
    step still adds (L - |s|)²), with no other sign. This estimates sigma from the unwrapped steps of up to :data:`FOLDING_SAMPLE_PAIRS` frame
    pairs in the mean box and returns the warning when the share exceeds :data:`FOLDED_VARIANCE_WARN`.
    Files that are already unwrapped are folded the same way (the step alone cannot tell a jump through a
    face from a long step), so the remedy is frames closer together.

    Parameters
    ----------
    xyz_nm : numpy.ndarray, shape=(n_frames, n_particles, 3), or a list of them (replicas)
        Unwrapped positions (nm).
    box_nm : numpy.ndarray, shape=(n_frames, 3, 3), or None
        Boxes of every frame (of every replica).
    label : str
        The group, for the message.
    """
    import math

    runs = list(xyz_nm) if isinstance(xyz_nm, list | tuple) else [xyz_nm]  # replicas: a list of arrays
    runs = [np.asarray(x) for x in runs if np.asarray(x).shape[0] >= 2 and np.asarray(x).shape[1] > 0]
    if box_nm is None or not runs:
        return None
    parts = []
    for x in runs:
        n = x.shape[0]
        # distinct frames: k <= n - 1 points over [0, n - 2] are >= 1 apart (no np.unique: it imports numpy.ma)
        t = np.linspace(0, n - 2, min(n - 1, max(2, FOLDING_SAMPLE_PAIRS // len(runs)))).astype(np.int64)
        parts.append((x[t + 1].astype(np.float64) - x[t]).reshape(-1, 3))
    steps = np.concatenate(parts)
    box = np.asarray(box_nm, dtype=np.float64).mean(axis=0)
    frac = steps @ np.linalg.inv(box)  # steps in fractions of the box vectors (rows of box)
    sigma = np.sqrt(np.einsum("ij,ij->j", frac, frac) / frac.shape[0])  # (axis=0 means run 3-wide inner loops)
    worst = int(np.argmax(sigma))
    s = float(sigma[worst])
    if not s > 0:
        return None
    z = 0.5 / s
    share = 2.0 * (z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi) + 0.5 * math.erfc(z / math.sqrt(2.0)))
    if share <= FOLDED_VARIANCE_WARN:
        return None
    return (f"{label}: frame-to-frame steps spread over {s:.2f} of box vector {'abc'[worst]} (rms); unwrapping by "
            f"the minimum image folds steps longer than half the box, which carry ~{100 * share:.2g} % of the step "
            f"variance: D and the transport coefficients are biased low by up to about that much -- use frames "
            f"closer together (a smaller --stride or a shorter trajectory interval)")
