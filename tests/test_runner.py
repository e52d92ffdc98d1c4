"""The runner (aseimd.simulate.runner / prepare): stage chaining, NPT-mean production box, HMR, blow-ups."""

import json

import mdtraj
import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest
import yaml

from aseimd.errors import SimulationError, SpecError
from aseimd.simulate.prepare import apply_hmr, read_system_dir, scale_molecules, set_cutoff, target_box
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.reporters import read_thermo
from aseimd.simulate.runner import run_protocol
from aseimd.simulate.toy import toy_system, write_toy_system

TINY = {
    "name": "tiny",
    "seed": 11,
    "report": {"thermo_steps": 20, "trajectory_steps": 20, "checkpoint_steps": 100},
    "stages": [
        {"type": "minimize", "max_iterations": 200},
        {"type": "nvt", "length_steps": 100},
        {"type": "npt", "length_steps": 300, "barostat_interval_steps": 5},
        {"type": "production", "length_steps": 200},
    ],
}


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_toy_system(tmp_path_factory.mktemp("toy") / "system")


@pytest.fixture(scope="module")
def finished_run(toy_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run") / "run"
    result = run_protocol(toy_dir, run_dir, Protocol.from_dict(TINY), "Reference", progress=False)
    return result, run_dir


def test_stages_chain_and_production_uses_npt_mean_volume(finished_run):
    result, run_dir = finished_run
    assert result.status == "finished" and result.steps_done == 600 and result.n_frames == 10
    rows = read_thermo(run_dir / "thermo.csv")
    steps = [int(r["Step"]) for r in rows]
    assert steps == list(range(20, 601, 20))  # every row once, across all stages
    stage = {int(r["Step"]): r["Stage"] for r in rows}
    assert stage[100] == "nvt" and stage[120] == "npt" and stage[400] == "npt" and stage[420] == "production"
    vol = {int(r["Step"]): float(r["Volume (nm^3)"]) for r in rows}
    assert all(vol[s] == pytest.approx(2.3**3, rel=1e-12) for s in range(20, 101, 20))  # NVT: built box
    npt = [vol[s] for s in range(120, 401, 20)]
    assert len(set(npt)) > 2  # the barostat moved the box
    second_half = [vol[s] for s in range(260, 401, 20)]  # steps > 100 + 300 / 2
    production = [vol[s] for s in range(420, 601, 20)]
    assert np.ptp(production) == 0.0  # no barostat in production
    assert production[0] == pytest.approx(np.mean(second_half), rel=1e-9)
    info = json.loads((run_dir / "run.json").read_text())
    assert np.prod(info["production_box_nm"]) == pytest.approx(np.mean(second_half), rel=1e-9)


def test_run_json_and_trajectory_agree(finished_run, toy_dir):
    result, run_dir = finished_run
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["steps_done"] == info["total_steps"] == 600
    assert info["trajectory"] == {
        "file": "trajectory.dcd", "dt_ps": pytest.approx(0.04), "n_frames": 10, "stage": "production",
        "first_frame_step": 420, "unwrapped": True,
    }
    assert [s["steps_done"] for s in info["stages"]] == [None, 100, 300, 200]
    assert info["platform"]["name"] == "Reference" and info["platform"]["context"]["name"] == "Reference"
    assert info["versions"]["openmm"] == mm.Platform.getOpenMMVersion()
    assert info["protocol"] == Protocol.from_dict(TINY).to_dict()
    traj = mdtraj.load_dcd(str(run_dir / "trajectory.dcd"), top=str(toy_dir / "system.pdb"))
    assert traj.n_frames == info["trajectory"]["n_frames"]
    np.testing.assert_allclose(traj.unitcell_lengths, [info["production_box_nm"]] * 10, rtol=1e-6)
    # unwrapped: atoms may leave the box, but nothing jumps by a box length between frames
    step = np.abs(np.diff(traj.xyz, axis=0)).max()
    assert step < 0.5 * min(info["production_box_nm"])


def test_rerun_of_finished_run_does_nothing(finished_run, toy_dir):
    _, run_dir = finished_run
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    again = run_protocol(toy_dir, run_dir, Protocol.from_dict(TINY), "auto", progress=False)
    assert again.status == "already finished"
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_different_protocol_or_system_is_refused(finished_run, toy_dir, tmp_path):
    _, run_dir = finished_run
    other = dict(TINY, seed=12)
    with pytest.raises(SimulationError, match="different protocol"):
        run_protocol(toy_dir, run_dir, Protocol.from_dict(other), "Reference", progress=False)
    other_system = write_toy_system(tmp_path / "other", seed=5)
    with pytest.raises(SimulationError, match="different system"):
        run_protocol(other_system, run_dir, Protocol.from_dict(TINY), "Reference", progress=False)


def test_hmr_conserves_mass_and_sets_hydrogen_mass():
    topology, _, system = toy_system(n_lj=5, n_water=4, box_nm=2.0)
    system.setParticleMass(5 + 3 * 3, 0.0)  # freeze the last water's O: its H keep their mass
    before = np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())])
    changed = apply_hmr(system, topology, 3.0)
    after = np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())])
    assert changed == 6
    assert after.sum() == pytest.approx(before.sum(), rel=1e-12)
    for w in range(3):
        o = 5 + 3 * w
        assert after[o + 1] == after[o + 2] == 3.0
        assert after[o] == pytest.approx(15.9994 - 2 * (3.0 - 1.008))
    assert after[-3] == 0.0 and after[-2] == after[-1] == pytest.approx(1.008)
    np.testing.assert_array_equal(after[:5], before[:5])  # argon untouched
    with pytest.raises(SpecError, match="would leave atom"):
        apply_hmr(toy_system(n_lj=1, n_water=1)[2], toy_system(n_lj=1, n_water=1)[0], 9.0)


def test_cutoff_override():
    _, _, system = toy_system(n_lj=5, n_water=1, box_nm=2.0)
    assert set_cutoff(system, 0.85) == 1
    nb = [f for f in system.getForces() if isinstance(f, mm.NonbondedForce)][0]
    assert nb.getCutoffDistance().value_in_unit(unit.nanometer) == pytest.approx(0.85)
    nb.setNonbondedMethod(mm.NonbondedForce.NoCutoff)
    with pytest.raises(SpecError, match="no cutoff-based"):
        set_cutoff(system, 0.9)


@pytest.mark.parametrize("coupling", ["isotropic", "z", "anisotropic", "membrane"])
def test_target_box_has_the_mean_volume(coupling):
    rng = np.random.default_rng(4)
    samples = 3.0 + rng.normal(scale=0.02, size=(50, 3))
    if coupling == "isotropic":
        samples = np.repeat(samples[:, :1], 3, axis=1) * [1.0, 1.0, 2.0]
    if coupling == "z":
        samples[:, :2] = 3.0
    current = samples[-1]
    box = target_box(samples, coupling, current)
    assert np.prod(box) == pytest.approx(np.mean(np.prod(samples, axis=1)), rel=1e-12)
    if coupling == "isotropic":
        assert box / box[0] == pytest.approx(current / current[0])  # shape kept
    if coupling == "z":
        assert box[:2] == pytest.approx([3.0, 3.0])


def test_scale_molecules_keeps_internal_geometry():
    pos = np.array([[1.0, 1.0, 1.0], [1.1, 1.0, 1.0], [2.0, 0.5, 0.2]])
    masses = np.array([16.0, 1.0, 40.0])
    new = scale_molecules(pos, [[0, 1], [2]], masses, np.array([3.0, 3.0, 3.0]), np.array([3.3, 3.0, 2.7]))
    assert np.linalg.norm(new[1] - new[0]) == pytest.approx(0.1)
    com = (16 * pos[0] + pos[1]) / 17
    np.testing.assert_allclose((16 * new[0] + new[1]) / 17, com * [1.1, 1.0, 0.9])
    np.testing.assert_allclose(new[2], pos[2] * [1.1, 1.0, 0.9])


def test_blow_up_names_stage_and_step_and_keeps_checkpoint(tmp_path):
    """A constant push on every argon atom (a non-equilibrium drive) heats the system without bound."""
    system_dir = write_toy_system(tmp_path / "driven")
    system = mm.XmlSerializer.deserialize((system_dir / "system.xml").read_text())
    push = mm.CustomExternalForce("-f*x")
    push.addPerParticleParameter("f")
    for i in range(150):
        push.addParticle(i, [60.0])  # kJ/mol/nm along +x
    system.addForce(push)
    (system_dir / "system.xml").write_text(mm.XmlSerializer.serialize(system))
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data["stages"][1]["length_steps"] = 2000
    data["report"]["checkpoint_steps"] = 50
    run_dir = tmp_path / "run"
    with pytest.raises(SimulationError) as err:
        run_protocol(system_dir, run_dir, Protocol.from_dict(data), "Reference", progress=False)
    message = str(err.value)
    assert "blow-up in stage 'nvt' at step" in message and "temperature" in message
    step = int(message.split("at step ")[1].split(":")[0])
    assert 50 < step < 2000
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and info["error"] == message
    last_good = (step - 1) // 50 * 50
    assert f"checkpoint at step {last_good} is kept" in message
    assert info["steps_done"] == last_good
    assert (run_dir / "checkpoint.chk").exists()
    rows = read_thermo(run_dir / "thermo.csv")
    assert max(float(r["Temperature (K)"]) for r in rows) > 3 * 298.15


def test_read_system_dir_errors(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        read_system_dir(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "system.pdb").write_text("END\n")
    with pytest.raises(SpecError, match="missing system.xml, build.json"):
        read_system_dir(tmp_path / "half")


def test_real_electrolyte_end_to_end(tmp_path):
    """Builder -> runner on a ~10-molecule 1 M LiPF6 EC:DMC box (short cutoff for the small box)."""
    electrolyte = pytest.importorskip("aseimd.build.electrolyte")
    from aseimd.build.cell import write_system_dir

    cell = electrolyte.build_electrolyte("1.0 M LiPF6 in EC:DMC 1:1 v/v", n_solvent=10, seed=3)
    system_dir = write_system_dir(cell, tmp_path / "elyte", cutoff_nm=0.55)
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data["hydrogen_mass_amu"] = 1.5
    result = run_protocol(system_dir, tmp_path / "run", Protocol.from_dict(data), "CPU", progress=False)
    assert result.status == "finished" and result.n_frames == 10
    rows = read_thermo(tmp_path / "run" / "thermo.csv")
    assert len(rows) == 30
    energies = np.array([float(r["Potential Energy (kJ/mol)"]) for r in rows])
    temperatures = np.array([float(r["Temperature (K)"]) for r in rows])
    assert np.all(np.isfinite(energies)) and np.all(temperatures < 600)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    n_h = sum(1 for a in cell.topology.atoms() if a.element.symbol == "H")
    assert info["system_changes"]["hmr_hydrogens"] == n_h > 0
    assert info["total_mass_amu"] == pytest.approx(sum(a.element.mass.value_in_unit(unit.dalton)
                                                       for a in cell.topology.atoms()), rel=1e-4)
