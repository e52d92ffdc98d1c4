"""Packmol wrapper: tolerance holds across periodic boundaries, rigid copies, seeds, failures."""

import numpy as np
import pytest

from aseimd.build.packing import PackItem, pack_box, packmol_executable, packmol_version
from aseimd.errors import EXIT_ENVIRONMENT, BuildError, EnvironmentProblem, SpecError

# Two small rigid molecules made here (nm): a bent triatomic and a zig-zag 5-atom chain.
TRIATOMIC = PackItem(("O", "H", "H"), np.array([[0.0, 0.0, 0.0], [0.0957, 0.0, 0.0], [-0.024, 0.0927, 0.0]]), 0)
CHAIN = PackItem(("C",) * 5, np.array([[0.125 * i, 0.05 * (i % 2), 0.0] for i in range(5)]), 0)


def _items(n_tri, n_chain):
    return [PackItem(TRIATOMIC.elements, TRIATOMIC.positions_nm, n_tri),
            PackItem(CHAIN.elements, CHAIN.positions_nm, n_chain)]


def _molecule_index(items):
    return np.concatenate([np.repeat(np.arange(it.count) + 1000 * k, len(it.elements))
                           for k, it in enumerate(items)])


def _min_image_intermolecular(x, box, mol):
    d = x[:, None, :] - x[None, :, :]
    d -= box * np.round(d / box)
    r = np.sqrt((d**2).sum(-1))
    return r[mol[:, None] != mol[None, :]].min()


def test_packmol_is_found():
    exe = packmol_executable()
    assert exe.is_file()
    assert packmol_version(str(exe)) >= (20, 15)  # the PyPI binary supports pbc


def test_pack_box_periodic_tolerance_and_rigidity():
    items = _items(40, 12)
    box = np.array([1.6, 1.6, 1.6])
    x = pack_box(items, box, seed=3, tolerance_nm=0.2)
    assert x.shape == (40 * 3 + 12 * 5, 3)
    mol = _molecule_index(items)
    # Packmol's criterion is met within its own precision (a few 1e-3 nm)
    assert _min_image_intermolecular(x, box, mol) >= 0.2 - 0.005
    # centres inside the box (molecules whole, not wrapped atom by atom)
    start = 0
    for it in items:
        n = len(it.elements)
        ref = np.linalg.norm(it.positions_nm[:, None] - it.positions_nm[None], axis=-1)
        for _ in range(it.count):
            copy = x[start:start + n]
            np.testing.assert_allclose(np.linalg.norm(copy[:, None] - copy[None], axis=-1), ref, atol=2e-5)
            assert np.all(copy.mean(axis=0) > -0.01) and np.all(copy.mean(axis=0) < box + 0.01)
            start += n


def test_pack_box_uses_the_whole_periodic_box():
    """Atoms reach both faces of the box and still keep the tolerance to their periodic images.

    A non-periodic packing keeps atoms ``tolerance/2`` away from every face instead.
    """
    items = _items(60, 0)
    box = np.array([1.3, 1.3, 1.3])
    x = pack_box(items, box, seed=0)
    mol = _molecule_index(items)
    assert _min_image_intermolecular(x, box, mol) >= 0.2 - 0.005
    assert np.all(x.min(axis=0) < 0.05) and np.all(x.max(axis=0) > box - 0.05)


def test_seed_reproducibility():
    items = _items(20, 5)
    box = [1.4, 1.4, 1.4]
    a = pack_box(items, box, seed=7)
    b = pack_box(items, box, seed=7)
    c = pack_box(items, box, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1


def test_imperfect_packing_is_a_clear_error():
    items = _items(200, 0)  # far too many for this box
    with pytest.raises(BuildError) as info:
        pack_box(items, [1.0, 1.0, 1.0], seed=0, nloop=3, timeout_s=60)
    msg = str(info.value)
    assert "could not pack 200 molecules" in msg and "Last output:" in msg


def test_timeout_is_a_clear_error():
    items = _items(400, 0)
    with pytest.raises(BuildError) as info:
        pack_box(items, [1.0, 1.0, 1.0], seed=0, timeout_s=1, nloop=100000)
    msg = str(info.value)
    assert "timed out after 1 s" in msg and "Last output:" in msg


def test_bad_arguments():
    with pytest.raises(SpecError, match="box_nm"):
        pack_box(_items(1, 0), [1.0, -1.0, 1.0])
    with pytest.raises(SpecError, match="seed"):
        pack_box(_items(1, 0), [1.0, 1.0, 1.0], seed=-2)
    with pytest.raises(ValueError, match="shape"):
        PackItem(("C", "C"), np.zeros((3, 3)), 1)
    assert pack_box(_items(0, 0), [1.0, 1.0, 1.0]).shape == (0, 3)


def test_env_override_must_be_executable(monkeypatch, tmp_path):
    monkeypatch.setenv("ASEIMD_PACKMOL", str(tmp_path / "nope"))
    with pytest.raises(EnvironmentProblem, match="nope") as info:  # the machine, not the input: exit code 3
        packmol_executable()
    assert info.value.exit_code == EXIT_ENVIRONMENT
