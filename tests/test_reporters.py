"""Reporters (aseimd.simulate.reporters) and the DCD writer."""

import struct

import mdtraj
import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit
import pytest

from aseimd.simulate.dcd import DCDWriter, dcd_frame_count, truncate_dcd
from aseimd.simulate.reporters import (
    THERMO_COLUMNS,
    BlowUp,
    BlowupGuard,
    ThermoReporter,
    TrajectoryReporter,
    count_reports,
    degrees_of_freedom,
    read_thermo,
    steps_to_next,
)
from aseimd.simulate.toy import toy_system


def _one_atom_topology(box_nm):
    top = app.Topology()
    res = top.addResidue("AR", top.addChain())
    top.addAtom("AR", app.Element.getBySymbol("Ar"), res)
    top.setPeriodicBoxVectors(np.eye(3) * box_nm * unit.nanometer)
    return top


def test_report_schedule_helpers():
    # stage covering steps 100 < t <= 160, interval 25: reports at 125 and 150
    assert steps_to_next(100, 100, 160, 25) == 25
    assert steps_to_next(125, 100, 160, 25) == 25
    assert steps_to_next(150, 100, 160, 25) > 10  # nothing left within the stage
    assert count_reports(99, 100, 160, 25) == 0
    assert count_reports(149, 100, 160, 25) == 1
    assert count_reports(10_000, 100, 160, 25) == 2


def test_unwrapped_trajectory_crosses_the_box(tmp_path):
    """A free particle at constant velocity: x(t) = x0 + v t, continuing past the box edge."""
    box, v, dt = 2.0, 3.0, 0.01  # nm, nm/ps, ps
    system = mm.System()
    system.addParticle(39.948)
    system.setDefaultPeriodicBoxVectors(*(mm.Vec3(*r) for r in np.eye(3) * box))
    nb = mm.NonbondedForce()
    nb.setNonbondedMethod(mm.NonbondedForce.CutoffPeriodic)
    nb.setCutoffDistance(0.9)
    nb.addParticle(0.0, 0.3, 0.0)
    system.addForce(nb)
    reference = mm.Platform.getPlatformByName("Reference")
    sim = app.Simulation(_one_atom_topology(box), system, mm.VerletIntegrator(dt), reference)
    x0 = np.array([[1.5, 1.0, 1.0]])
    sim.context.setPositions(x0)
    sim.context.setVelocities([mm.Vec3(v, 0, 0)])
    path = tmp_path / "t.dcd"
    reporter = TrajectoryReporter(path, 1, "production", 0, 100, 10, dt)
    sim.reporters.append(reporter)
    sim.step(100)
    reporter.close()
    traj = mdtraj.load_dcd(str(path), top=mdtraj.Topology.from_openmm(_one_atom_topology(box)))
    assert traj.n_frames == 10
    t = dt * 10 * np.arange(1, 11)
    np.testing.assert_allclose(traj.xyz[:, 0, 0], x0[0, 0] + v * t, rtol=0, atol=2e-5)
    assert traj.xyz[-1, 0, 0] > 2 * box  # crossed the box twice without being wrapped
    np.testing.assert_allclose(traj.unitcell_lengths, box, atol=1e-6)


def test_dcd_truncate_then_append(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.uniform(0, 3, size=(6, 4, 3))
    path = tmp_path / "x.dcd"
    w = DCDWriter(path, 4, 10, 10, 0.002)
    for f in frames[:5]:
        w.write(f, np.array([3.0, 3.0, 3.0]))
    w.close()
    with open(path, "ab") as fh:  # a half-written frame, as after a kill
        fh.write(b"\x00" * 37)
    assert dcd_frame_count(path, 4) == 5
    truncate_dcd(path, 4, 3)
    w = DCDWriter(path, 4, 10, 10, 0.002)
    assert w.n_frames == 3
    w.write(frames[5], np.array([3.0, 3.0, 3.0]))
    w.close()
    with open(path, "rb") as fh:
        assert struct.unpack("<i", fh.read(12)[8:12])[0] == 4  # header frame count fixed
    top = mdtraj.Topology()
    chain = top.add_chain()
    for _ in range(4):
        top.add_atom("X", mdtraj.element.argon, top.add_residue("X", chain))
    xyz = mdtraj.load_dcd(str(path), top=top).xyz
    np.testing.assert_allclose(xyz, frames[[0, 1, 2, 5]], atol=1e-5)
    with pytest.raises(Exception, match="holds 4 complete frames but the checkpoint needs 7"):
        truncate_dcd(path, 4, 7)


def test_thermo_header_units_and_values(tmp_path):
    topology, positions, system = toy_system(n_lj=40, n_water=6, box_nm=1.9, cutoff_nm=0.8)
    dof = degrees_of_freedom(system)
    n = system.getNumParticles()
    assert dof == 3 * n - 2 * 6  # two O-H constraints per water, no CM motion remover
    integrator = mm.LangevinMiddleIntegrator(300, 1, 0.001)
    integrator.setRandomNumberSeed(3)
    sim = app.Simulation(topology, system, integrator, mm.Platform.getPlatformByName("Reference"))
    sim.context.setPositions(positions)
    sim.minimizeEnergy(maxIterations=50)
    sim.context.setVelocitiesToTemperature(300, 5)
    mass = 40 * 39.948 + 6 * (15.9994 + 2 * 1.008)
    thermo = ThermoReporter(tmp_path / "thermo.csv", "nvt", 0, 30, 10, 0.001, dof, mass)
    sim.reporters.append(thermo)
    sim.step(30)
    thermo.close()
    assert (tmp_path / "thermo.csv").read_text().splitlines()[0].split(",") == list(THERMO_COLUMNS)
    rows = read_thermo(tmp_path / "thermo.csv")
    assert [int(r["Step"]) for r in rows] == [10, 20, 30]
    assert [r["Stage"] for r in rows] == ["nvt"] * 3
    last = sim.context.getState(getEnergy=True)
    ke = last.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
    r = rows[-1]
    assert float(r["Time (ps)"]) == pytest.approx(0.030)
    assert float(r["Kinetic Energy (kJ/mol)"]) == pytest.approx(ke, rel=1e-9)
    assert float(r["Temperature (K)"]) == pytest.approx(2 * ke / (dof * 0.00831446261815324), rel=1e-8)
    assert float(r["Volume (nm^3)"]) == pytest.approx(1.9**3, rel=1e-12)
    # density in g/cm^3: mass (amu -> g) over volume (nm^3 -> cm^3)
    expected = mass * 1.66053906660e-24 / (1.9**3 * 1e-21)
    assert float(r["Density (g/cm^3)"]) == pytest.approx(expected, rel=1e-9)


def test_blowup_guard_names_stage_and_step():
    class FakeState:
        def __init__(self, pe, ke):
            self.pe, self.ke = pe, ke

        def getPotentialEnergy(self):  # noqa: N802
            return self.pe * unit.kilojoule_per_mole

        def getKineticEnergy(self):  # noqa: N802
            return self.ke * unit.kilojoule_per_mole

    guard = BlowupGuard("npt", 0, 100, 10, dof=300, n_particles=100, max_temperature_K=900.0)
    guard.check(10, FakeState(-1000.0, 0.5 * 300 * 0.0083144626 * 300))  # 300 K: fine
    with pytest.raises(BlowUp, match="non-finite energy .* in stage 'npt' at step 20"):
        guard.check(20, FakeState(float("nan"), 100.0))
    with pytest.raises(BlowUp, match="temperature 1200 K exceeds 900 K in stage 'npt' at step 30"):
        guard.check(30, FakeState(-1000.0, 0.5 * 300 * 0.00831446261815324 * 1200))
    with pytest.raises(BlowUp, match="potential energy"):
        guard.check(40, FakeState(5e5, 100.0))


def test_dcd_writer_and_thermo_reporter_sync_to_disk_and_close_once(tmp_path, monkeypatch):
    """Both file-owning writers (one shared implementation, aseimd.fileio.SyncedFile): ``sync`` flushes and
    fsyncs their own file, ``close`` closes it and may be called again."""
    import os

    import aseimd.fileio as fileio

    synced, real_fsync = [], os.fsync

    def fsync(fd):
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(fileio.os, "fsync", fsync)
    w = DCDWriter(tmp_path / "x.dcd", 2, 10, 10, 0.002)
    w.write(np.zeros((2, 3)), np.array([3.0, 3.0, 3.0]))
    thermo = ThermoReporter(tmp_path / "thermo.csv", "nvt", 0, 30, 10, 0.001, 6, 80.0)
    thermo._csv.writerow(["unflushed"])  # a row still in Python's buffer
    for writer in (w, thermo):
        synced.clear()
        writer.sync()
        assert synced == [writer._file.fileno()]
    assert dcd_frame_count(tmp_path / "x.dcd", 2) == 1
    assert (tmp_path / "thermo.csv").read_text().splitlines()[-1] == "unflushed"  # on disk after sync
    for writer in (w, thermo):
        writer.close()
        assert writer._file.closed
        writer.close()  # again: nothing happens
