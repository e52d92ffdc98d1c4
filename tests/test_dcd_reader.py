"""The byte-offset DCD reader against mdtraj's decoder on the same files."""

import numpy as np
import openmm.app as app
import openmm.unit as u
import pytest

from aseimd.analysis.dcd_reader import open_dcd
from aseimd.analysis.trajectory import Trajectory


def _topology(n_atoms):
    top = app.Topology()
    chain = top.addChain()
    for _ in range(n_atoms):
        res = top.addResidue("AR", chain)
        top.addAtom("AR", app.Element.getBySymbol("Ar"), res)
    return top


def _write_openmm_dcd(tmp_path, rng, n_atoms=7, n_frames=11, triclinic=False):
    top = _topology(n_atoms)
    box = np.diag([2.0, 2.5, 3.0])
    if triclinic:
        box[1, 0], box[2, 0], box[2, 1] = 0.6, -0.4, 0.5
    top.setPeriodicBoxVectors(box * u.nanometer)
    pos = rng.uniform(0, 2, size=(n_frames, n_atoms, 3))
    with open(tmp_path / "t.pdb", "w") as fh:
        app.PDBFile.writeFile(top, pos[0] * u.nanometer, fh)
    with open(tmp_path / "t.dcd", "wb") as fh:
        dcd = app.DCDFile(fh, top, 0.002 * u.picoseconds, interval=50)
        for k in range(n_frames):
            dcd.writeModel(pos[k] * u.nanometer, periodicBoxVectors=box * (1 + 0.01 * k) * u.nanometer)
    return tmp_path / "t.pdb", tmp_path / "t.dcd"


@pytest.mark.parametrize("triclinic", [False, True])
def test_offset_reader_matches_mdtraj(tmp_path, rng, triclinic):
    import mdtraj

    top, traj = _write_openmm_dcd(tmp_path, rng, triclinic=triclinic)
    ref = mdtraj.load(str(traj), top=str(top))
    dcd = open_dcd(traj)
    assert dcd is not None and dcd.n_frames == ref.n_frames and dcd.n_atoms == ref.n_atoms
    frames, atoms = np.array([1, 4, 5, 10]), np.array([6, 0, 3])
    xyz, box = dcd.read(frames, atoms)
    np.testing.assert_array_equal(xyz, ref.xyz[frames][:, atoms])
    np.testing.assert_allclose(box, ref.unitcell_vectors[frames], atol=2e-6)


def test_trajectory_chunks_equal_mdtraj_path(tmp_path, rng):
    """Trajectory.iter_chunks (byte-offset path) gives what mdtraj.iterload gives, for any range/stride/chunk."""
    import mdtraj

    top, traj = _write_openmm_dcd(tmp_path, rng, n_frames=23)
    t = Trajectory(top, traj, start=2, stop=21, stride=3, chunk_frames=2)
    atoms = np.array([5, 1])
    got = np.concatenate([c.xyz_nm for c in t.iter_chunks(atoms)])
    starts = [c.start for c in t.iter_chunks(atoms)]
    ref = mdtraj.load(str(traj), top=str(top)).xyz[2:21:3][:, atoms]  # order as given, like iterload
    np.testing.assert_array_equal(got, ref)
    assert starts == list(range(0, t.n_frames, 2))


def test_mdtraj_written_dcd(tmp_path, rng):
    import mdtraj

    top = mdtraj.Topology.from_openmm(_topology(4))
    xyz = rng.uniform(0, 2, size=(6, 4, 3)).astype(np.float32)
    t = mdtraj.Trajectory(xyz, top, unitcell_lengths=np.full((6, 3), 2.0), unitcell_angles=np.full((6, 3), 90.0))
    t.save_dcd(str(tmp_path / "m.dcd"))
    xyz_m, box = open_dcd(tmp_path / "m.dcd").read(np.arange(6), np.arange(4))
    np.testing.assert_allclose(xyz_m, xyz, atol=1e-6)
    np.testing.assert_allclose(box, np.broadcast_to(np.eye(3) * 2.0, (6, 3, 3)), atol=1e-6)


def test_not_a_dcd_falls_back(tmp_path):
    (tmp_path / "x.dcd").write_bytes(b"\0" * 200)
    assert open_dcd(tmp_path / "x.dcd") is None


def test_box_vectors_equal_mdtrajs_to_the_bit():
    """The numpy unit-cell conversion (no mdtraj import on the DCD path) is mdtraj's, float32 rounding included."""
    import warnings

    from mdtraj.utils import lengths_and_angles_to_box_vectors

    from aseimd.analysis.dcd_reader import _angle_deg, _box_vectors_nm

    rng = np.random.default_rng(7)
    n = 3000
    a, b, c = rng.uniform(5.0, 120.0, (3, n))
    angles = rng.uniform(55.0, 125.0, (3, n))
    angles[:, :1000] = 90.0  # orthorhombic: off-diagonal round-off cleaned
    angles[0, 1000:1500] = 60.0
    for stored in (angles, np.cos(np.radians(angles))):  # degrees (old writers) or cosines (CHARMM, OpenMM)
        mine = _box_vectors_nm(a, b, c, *stored)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            va, vb, vc = lengths_and_angles_to_box_vectors(a * 0.1, b * 0.1, c * 0.1,
                                                           *(_angle_deg(x) for x in stored))
        ref = np.stack([va, vb, vc], axis=1)
        ref[np.abs(ref) < 1e-9] = 0.0
        np.testing.assert_array_equal(mine, ref.astype(np.float32).astype(np.float64))
        assert np.all(mine[:1000][:, [0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1]] == 0.0)
