"""Minimum-image unwrapping: wrapped input recovers the true path, unwrapped input is unchanged."""

import numpy as np
import pytest
from synthetic import brownian, wrap

from aseimd.analysis.unwrap import CentreDrift, Unwrapper, make_whole, minimum_image


def _boxes(lengths):
    lengths = np.asarray(lengths, float)
    return np.einsum("fi,ij->fij", lengths, np.eye(3))


def test_wrapped_input_recovers_true_displacements(rng):
    box = np.array([2.0, 2.5, 3.0])
    true = brownian(rng, 200, 30, 1.0, 0.02, box)  # rms step 0.35 nm < L/2
    out = Unwrapper().feed(wrap(true, box), _boxes(np.tile(box, (200, 1))))
    shift = out[0] - true[0]  # a lattice vector per particle (frame 0 is the wrapped image)
    np.testing.assert_allclose(shift / box - np.round(shift / box), 0.0, atol=1e-12)
    np.testing.assert_allclose(out - shift, true, atol=1e-9)


def test_idempotent_on_unwrapped_input(rng):
    box = np.array([3.0, 3.0, 3.0])
    true = brownian(rng, 100, 10, 1.0, 0.05, box) + 7.0  # far outside the box, steps << L/2
    out = Unwrapper().feed(true, _boxes(np.tile(box, (100, 1))))
    np.testing.assert_allclose(out, true, atol=1e-9)


def test_chunked_feeding_equals_one_pass(rng):
    box = np.array([2.0, 2.0, 2.0])
    wrapped = wrap(brownian(rng, 90, 8, 1.0, 0.03, box), box)
    boxes = _boxes(np.tile(box, (90, 1)))
    once = Unwrapper().feed(wrapped, boxes)
    u = Unwrapper()
    parts = [u.feed(wrapped[a:b], boxes[a:b]) for a, b in ((0, 1), (1, 40), (40, 41), (41, 90))]
    np.testing.assert_allclose(np.concatenate(parts), once, atol=1e-12)


def test_per_frame_boxes(rng):
    """A box that breathes (NPT): the jump scheme of von Buelow et al. (2020).

    Every step is the wrapped step reduced to its minimum image in the later
    frame's box, and particles that never cross a face keep their positions.
    """
    n = 150
    lengths = 3.0 + 0.1 * np.sin(np.arange(n) / 10.0)[:, None] * np.ones(3)
    true = brownian(rng, n, 20, 1.0, 0.01, (3.0, 3.0, 3.0))
    wrapped = true - lengths[:, None, :] * np.floor(true / lengths[:, None, :])
    out = Unwrapper().feed(wrapped, _boxes(lengths))
    steps = np.diff(out, axis=0)
    dw = np.diff(wrapped, axis=0) / lengths[1:, None, :]
    np.testing.assert_allclose(steps, (dw - np.round(dw)) * lengths[1:, None, :], atol=1e-12)
    crossed = np.any(np.floor(true / lengths[:, None, :]) != 0, axis=(0, 2))
    assert crossed.any() and not crossed.all()
    np.testing.assert_allclose(out[:, ~crossed], true[:, ~crossed], atol=1e-12)


def test_no_box_passes_through(rng):
    x = rng.normal(size=(5, 3, 3))
    np.testing.assert_array_equal(Unwrapper().feed(x, None), x)


def test_make_whole_joins_a_split_molecule():
    box = np.diag([2.0, 2.0, 2.0])
    xyz = np.array([[1.95, 1.0, 1.0], [0.05, 1.0, 1.0], [0.5, 0.5, 0.5]])  # atoms 0,1 bonded across x
    whole = make_whole(xyz, box, np.array([0, 0, 1]))
    np.testing.assert_allclose(whole[1], [2.05, 1.0, 1.0])
    np.testing.assert_allclose(whole[[0, 2]], xyz[[0, 2]])


def test_minimum_image_orthorhombic():
    box = np.diag([2.0, 3.0, 4.0])[None]
    d = np.array([[[1.2, -1.6, 2.1]]])
    np.testing.assert_allclose(minimum_image(d, box), [[[-0.8, 1.4, -1.9]]])


def test_minimum_image_triclinic_recovers_small_displacements(rng):
    """Triclinic path (what unwrapping needs): a displacement shorter than a quarter of the
    smallest box height, shifted by arbitrary lattice vectors, comes back exactly."""
    box = np.array([[3.0, 0.0, 0.0], [0.8, 2.8, 0.0], [-0.6, 0.7, 3.1]])
    delta = rng.uniform(-0.4, 0.4, size=(2, 40, 3))
    shifts = rng.integers(-3, 4, size=(2, 40, 3)) @ box
    got = minimum_image(delta + shifts, np.broadcast_to(box, (2, 3, 3)))
    np.testing.assert_allclose(got, delta, atol=1e-12)


def test_constant_box_fast_path_equals_float64_summed_minimum_images(rng):
    """float32 input, constant orthorhombic box, chunked: image counts give the float64 jump-scheme sum."""
    box = np.array([2.0, 2.5, 3.0])
    true = brownian(rng, 400, 25, 1.0, 0.03, box) + 5.0
    wrapped = wrap(true, box).astype(np.float32)
    boxes = _boxes(np.tile(box, (400, 1)))
    u = Unwrapper()
    out = np.concatenate([u.feed(wrapped[a:b], boxes[a:b]) for a, b in ((0, 1), (1, 150), (150, 400))])
    x = wrapped.astype(np.float64)
    steps = np.diff(x, axis=0)
    steps -= box * np.rint(steps / box)
    ref = np.concatenate([x[:1], x[:1] + np.cumsum(steps, axis=0)])
    np.testing.assert_allclose(out, ref, atol=1e-12)


def _image_count_reference(wrapped, box, cuts):
    """The constant-box scheme written out plainly: n(t) = running sum of rint(Δw / L) in float32,
    u = w - L n + (u_prev - w_prev), chunk by chunk, every coordinate through the image counts."""
    lengths = box.astype(wrapped.dtype)
    out, prev_w, prev_u = [], None, None
    for a, b in cuts:
        xyz = wrapped[a:b]
        if prev_w is None:
            prev_w, prev_u = xyz[0], xyz[0].astype(np.float64)
        d = np.concatenate([(xyz[0] - prev_w)[None], np.diff(xyz, axis=0)])
        if a == 0:
            d[0] = 0.0
        n = np.cumsum(np.rint(d / lengths), axis=0)
        u = xyz - n * box.astype(np.float64)
        u += prev_u.astype(np.float64) - prev_w.astype(np.float64)
        out.append(u)
        prev_w, prev_u = xyz[-1], u[-1]
    return np.concatenate(out)


def test_sparse_jump_path_is_bit_identical_to_counting_every_coordinate(rng):
    """Coordinates without a jump in a chunk skip the image counts; the result must not change by one bit,
    on walks with many jumps, few jumps, steps near the 0.49 L screen and exactly at L/2."""
    box = np.array([2.0, 2.5, 3.0])
    fast = brownian(rng, 300, 6, 1.0, 0.3, box)  # jumps in most chunks
    slow = brownian(rng, 300, 40, 1.0, 0.002, box) + 0.999 * box  # sit at the edge: a few jumps
    still = np.repeat(rng.uniform(0, 1, (1, 10, 3)) * box, 300, axis=0)  # never jump
    wrapped = wrap(np.concatenate([fast, slow, still], axis=1), box).astype(np.float32)
    # a coordinate stepping by 0.49-0.5 L (screened in, no jump) and one by exactly L/2 (rint(0.5) = 0)
    wrapped[:, -1, 0] = np.float32(0.0) + (np.arange(300) % 2) * np.float32(0.495 * box[0])
    wrapped[:, -2, 1] = (np.arange(300) % 2) * np.float32(box[1] / 2)
    cuts = ((0, 1), (1, 120), (120, 121), (121, 300))
    u = Unwrapper()
    boxes = _boxes(np.tile(box, (300, 1)))
    got = np.concatenate([u.feed(wrapped[a:b], boxes[a:b]) for a, b in cuts])
    ref = _image_count_reference(wrapped, box, cuts)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref)
    assert np.any(np.abs(np.diff(got[:, :6], axis=0)) < np.abs(np.diff(wrapped[:, :6], axis=0)))  # jumps undone


def test_fortran_ordered_input_unwraps_like_c_ordered(rng):
    """An in-memory selection can arrive in Fortran order; the candidate columns must still be written back
    (a reshape of a non-C array is a copy, which once silently dropped every image jump)."""
    box = np.array([2.0, 2.5, 3.0])
    truth = brownian(rng, 200, 8, 1.0, 0.01, box)  # steps ~0.14 nm: many crossings, none ambiguous
    wrapped = wrap(truth, box).astype(np.float32)
    boxes = _boxes(np.tile(box, (200, 1)))
    ref = Unwrapper().feed(wrapped, boxes)
    got = Unwrapper().feed(np.asfortranarray(wrapped), boxes)
    np.testing.assert_array_equal(got, ref)
    assert np.any(np.abs(np.diff(wrapped, axis=0)) > 0.5 * box.min())  # the input has image jumps
    np.testing.assert_allclose(got - got[0], truth - truth[0], atol=1e-5)


def _centre_of_unwrapped(wrapped, boxes, w, particle_of_atom=None):
    """The slow, obvious drift: unwrap every atom, take the weighted mean, less its first frame."""
    u = Unwrapper(particle_of_atom).feed(wrapped, boxes)
    c = np.einsum("fai,a->fi", u, w)
    return c - c[0]


@pytest.mark.parametrize("box_kind", ["constant", "breathing", "triclinic", "none"])
def test_centre_drift_from_steps_equals_the_centre_of_unwrapped_atoms(rng, box_kind):
    n, n_atoms = 240, 50
    if box_kind == "triclinic":
        box = np.array([[3.0, 0.0, 0.0], [1.0, 2.8, 0.0], [0.5, 0.7, 2.6]])
        boxes = np.repeat(box[None], n, axis=0)
        true = brownian(rng, n, n_atoms, 1.0, 0.02, (3.0, 3.0, 3.0))
        frac = true @ np.linalg.inv(box)
        wrapped = (frac - np.floor(frac)) @ box
    else:
        lengths = np.full((n, 3), 2.5)
        if box_kind == "breathing":
            lengths = 2.5 + 0.08 * np.sin(np.arange(n) / 9.0)[:, None] * np.array([1.0, 0.7, 1.3])
        boxes = _boxes(lengths)
        true = brownian(rng, n, n_atoms, 1.0, 0.02, (2.5, 2.5, 2.5))
        wrapped = true - lengths[:, None, :] * np.floor(true / lengths[:, None, :])
    if box_kind == "none":
        wrapped, boxes = true, None
    wrapped = wrapped.astype(np.float32)  # as stored in DCD/XTC
    w = rng.uniform(1.0, 30.0, n_atoms)
    w /= w.sum()
    expected = _centre_of_unwrapped(wrapped, boxes, w)
    if box_kind != "none":
        assert np.abs(np.diff(wrapped, axis=0)).max() > 1.0  # atoms do cross faces
    for cuts in ((0, n), (0, 1, 2, 77, 78, 200, n), (0, 5, 150, n)):  # chunking does not matter
        tracker = CentreDrift(w)
        got = np.concatenate([tracker.feed(wrapped[a:b], None if boxes is None else boxes[a:b])
                              for a, b in zip(cuts[:-1], cuts[1:])])
        # a one-frame chunk of a breathing box has one box: the exact image-count path, where the changing-box
        # path sums float32 minimum-image steps (the unwrapper does the same per chunk, ~1e-9 nm here)
        atol = 1e-8 if box_kind == "breathing" and len(cuts) > 2 else 1e-12
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    assert np.abs(expected).max() > 1e-3


def test_centre_drift_ignores_first_frame_whole_making(rng):
    # a three-atom molecule split across a face in frame 0: making it whole shifts atoms by lattice vectors,
    # which moves the centre by a constant and leaves its drift unchanged
    box = np.array([2.0, 2.0, 2.0])
    centres = brownian(rng, 60, 4, 1.0, 0.01, box)
    offsets = np.array([[0.0, 0.0, 0.0], [0.12, 0.0, 0.0], [0.0, 0.12, 0.0]])
    atoms = (centres[:, :, None, :] + offsets).reshape(60, 12, 3)
    atoms[:, :3] += np.array([1.95, 0.0, 0.0]) - atoms[0, 0]  # molecule 0 straddles x = L in frame 0
    wrapped = wrap(atoms, box).astype(np.float32)
    boxes = _boxes(np.tile(box, (60, 1)))
    w = np.full(12, 1 / 12)
    whole_made = _centre_of_unwrapped(wrapped, boxes, w, np.repeat(np.arange(4), 3))
    np.testing.assert_allclose(CentreDrift(w).feed(wrapped, boxes), whole_made, rtol=0, atol=1e-12)


def test_unwrapper_start_continues_like_an_unwrapper_of_more_atoms(rng):
    box = np.array([2.0, 2.2, 2.4])
    wrapped = wrap(brownian(rng, 80, 9, 1.0, 0.03, box), box).astype(np.float32)
    boxes = _boxes(np.tile(box, (80, 1)))
    particle = np.repeat(np.arange(3), 3)
    everything = Unwrapper(particle).feed(wrapped, boxes)
    keep = np.array([1, 4, 5, 8])  # some atoms of each residue
    part = Unwrapper()
    part.start(wrapped[0, keep], make_whole(wrapped[0], boxes[0], particle)[keep])
    assert np.array_equal(part.feed(wrapped[:, keep], boxes), everything[:, keep])
    with pytest.raises(ValueError, match="before the first feed"):
        part.start(wrapped[0, keep], everything[0, keep])
