"""The stacked interface cell (bare-Li control): geometry, neutrality, MD, and the rigid slab under z-only NPT."""

import json

import numpy as np
import openmm as mm
import pytest
from openmm import unit

from aseimd.build.cell import read_system_dir, system_charge_e
from aseimd.build.interface import build_interface, write_interface_dir
from aseimd.build.spec import load_interface_spec
from aseimd.forcefield import create_system
from aseimd.forcefield.metal import metal_atom_indices

TINY = {
    "name": "tiny-bare",
    "slab": {"face": "100", "layers": 3, "repeats": [6, 6]},      # 2.106 nm lateral
    "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 2.0},
    "cutoff_nm": 0.9,
    "seed": 3,
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("iface") / "sys"
    cell, _ = write_interface_dir(TINY, out)
    return cell, out


def _min_nonbonded_nm(cell):
    geometry = pytest.importorskip("aseimd.build.geometry")
    return geometry.min_nonbonded_distance_nm(cell.topology, cell.positions_nm, cell.box_nm)


def test_layers_are_stacked_in_order_without_overlap(tiny_dir):
    cell, out = tiny_dir
    layers = cell.provenance["layers"]
    assert [layer["name"] for layer in layers] == ["slab", "electrolyte"]
    z = cell.positions_nm[:, 2]
    for layer in layers:
        a, b = layer["atoms"]
        lo, hi = layer["z_nm"]
        assert z[a:b].min() == pytest.approx(lo) and z[a:b].max() == pytest.approx(hi)
    gap = TINY.get("gap_nm", 0.25)
    assert layers[1]["z_nm"][0] - layers[0]["z_nm"][1] == pytest.approx(gap)
    assert cell.box_nm[2] - layers[-1]["z_nm"][1] == pytest.approx(gap)  # gap to the slab's periodic image
    np.testing.assert_allclose(cell.box_nm[:2], 6 * 0.351)  # commensurate with the Li lattice
    build = json.loads((out / "build.json").read_text())
    assert build["layers"] == layers and build["spec"]["name"] == "tiny-bare"
    assert build["system_options"] == {"cutoff_nm": 0.9, "lj_long_range_correction": False}
    assert build["net_charge_e"] == pytest.approx(0.0, abs=1e-9)
    counts = build["electrolyte"]["counts"]
    assert counts["Li"] == counts["PF6"] >= 1
    # the electrolyte counts fill lateral area x thickness at the estimated density
    assert build["electrolyte"]["estimated_volume_nm3"] == pytest.approx(2.106 ** 2 * 2.0, rel=0.05)


def test_no_close_contacts_and_no_speared_rings(tiny_dir):
    cell, _ = tiny_dir
    assert _min_nonbonded_nm(cell) > 0.1
    geometry = pytest.importorskip("aseimd.build.geometry")
    assert geometry.speared_rings(cell.topology, cell.positions_nm, cell.box_nm) == []


def _context(system, cell, barostat=None):
    system = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
    if barostat is not None:
        system.addForce(barostat)
    integrator = mm.LangevinMiddleIntegrator(298.15 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(7)
    ctx = mm.Context(system, integrator, mm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    ctx.setPeriodicBoxVectors(*np.diag(cell.box_nm))
    ctx.setPositions(cell.positions_nm)
    return ctx, integrator


def _z_barostat(rigid):
    b = mm.MonteCarloAnisotropicBarostat(mm.Vec3(1, 1, 1), 298.15, False, False, True, 2)
    b.setRandomNumberSeed(11)
    b.setScaleMoleculesAsRigid(rigid)
    return b


@pytest.fixture(scope="module")
def minimised(tiny_dir):
    _, out = tiny_dir
    pdb, system, _ = read_system_dir(out)
    cell, _ = tiny_dir
    ctx, _ = _context(system, cell)
    mm.LocalEnergyMinimizer.minimize(ctx, 50.0, 150)
    state = ctx.getState(getPositions=True, getEnergy=True)
    return system, state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)


def test_minimises_and_runs_without_blowup(tiny_dir, minimised):
    cell, _ = tiny_dir
    system, pos = minimised
    slab = metal_atom_indices(cell.topology)
    np.testing.assert_array_equal(pos[slab], cell.positions_nm[slab])  # massless: the minimiser leaves it
    ctx, integrator = _context(system, cell)
    ctx.setPositions(pos)
    ctx.setVelocitiesToTemperature(298.15 * unit.kelvin, 5)
    integrator.step(300)
    state = ctx.getState(getEnergy=True, getPositions=True)
    n_dof = 3 * (system.getNumParticles() - len(slab)) - system.getNumConstraints() - 3
    temperature = 2 * state.getKineticEnergy() / (n_dof * unit.MOLAR_GAS_CONSTANT_R)
    assert np.isfinite(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    assert 150 < temperature.value_in_unit(unit.kelvin) < 600
    np.testing.assert_array_equal(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[slab],
                                  cell.positions_nm[slab])


def _lattice_vectors(pos, slab):
    return pos[slab] - pos[slab][0]


@pytest.mark.parametrize("rigid", [True, False])
def test_slab_stays_a_perfect_lattice_under_z_npt(tiny_dir, minimised, rigid):
    cell, _ = tiny_dir
    system, pos = minimised
    slab = metal_atom_indices(cell.topology)
    ctx, integrator = _context(system, cell, _z_barostat(rigid))
    ctx.setPositions(pos)
    ctx.setVelocitiesToTemperature(298.15 * unit.kelvin, 5)
    integrator.step(200)
    state = ctx.getState(getPositions=True)
    box = np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    new = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert abs(box[2] - cell.box_nm[2]) > 1e-3  # the barostat changed the box length
    np.testing.assert_array_equal(box[:2], cell.box_nm[:2])  # z only
    change = np.abs(_lattice_vectors(new, slab) - _lattice_vectors(pos, slab)).max()
    if rigid:
        assert change < 1e-4  # every Li-Li vector unchanged
    else:
        assert change > 1e-4  # control: scaling atoms independently distorts the slab (the test can fail)


def test_runner_keeps_the_slab_rigid_through_npt_and_the_volume_switch(tiny_dir, tmp_path):
    from aseimd.simulate.runner import run_protocol

    cell, out = tiny_dir
    slab = metal_atom_indices(cell.topology)
    overrides = ["stages.nvt.length_steps=20", "stages.npt.length_steps=100", "stages.npt.barostat_interval_steps=2",
                 "stages.production.length_steps=20", "report.thermo_steps=10", "report.trajectory_steps=10",
                 "report.checkpoint_steps=50", "stages.minimize.max_iterations=100"]
    run_protocol(out, tmp_path / "run", "interface", "CPU", progress=False, overrides=overrides)
    state = mm.XmlSerializer.deserialize((tmp_path / "run" / "state.xml").read_text())
    pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    box = np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    assert abs(box[2] - cell.box_nm[2]) > 1e-4
    change = np.abs(_lattice_vectors(pos, slab) - _lattice_vectors(cell.positions_nm, slab)).max()
    assert change < 1e-4


def test_spec_seed_reproduces_the_cell():
    a = build_interface(TINY)
    b = build_interface(load_interface_spec(TINY))
    np.testing.assert_array_equal(a.positions_nm, b.positions_nm)
    assert system_charge_e(create_system(a.topology, cutoff_nm=0.9)) == pytest.approx(0.0, abs=1e-9)


def test_thick_electrolyte_is_packed_as_clean_sublayers(monkeypatch):
    from scipy.spatial import cKDTree

    import aseimd.build.interface as interface

    monkeypatch.setattr(interface, "SUBLAYER_ATOMS", 400)
    spec = dict(TINY, electrolyte={"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 3.2})
    cell = build_interface(spec)
    assert cell.provenance["electrolyte"]["packing"]["sublayers"] == 2
    counts = cell.provenance["electrolyte"]["counts"]
    assert counts["Li"] == counts["PF6"]
    names = [r.name for r in cell.topology.residues()]
    assert names.index("PF6") > names.index("LI") and names.index("EC") > names.index("PF6")  # ions first
    # no two atoms of different molecules closer than Packmol's 0.2 nm tolerance, seams included
    a, b = cell.provenance["layers"][1]["atoms"]
    residue = np.array([atom.residue.index for atom in cell.topology.atoms()])[a:b]
    pos = cell.positions_nm[a:b].copy()
    pos[:, :2] %= cell.box_nm[:2]
    tree = cKDTree(pos, boxsize=[cell.box_nm[0], cell.box_nm[1], 1e6])
    pairs = tree.query_pairs(0.19, output_type="ndarray")
    assert not np.any(residue[pairs[:, 0]] != residue[pairs[:, 1]])


def test_parallel_layer_builds_give_the_stacked_cell_and_raise_errors():
    from aseimd.build.geometry import min_nonbonded_distance_nm
    from aseimd.errors import BuildError

    spec = dict(TINY, polymer={"name": "PDMS", "thickness_nm": 1.0, "n_repeat": 4})
    cell = build_interface(spec, parallel=True)  # three worker processes (the serial path: test_systems_specs)
    layers = cell.provenance["layers"]
    assert [la["name"] for la in layers] == ["slab", "polymer_bottom", "electrolyte", "polymer_top"]
    names = [r.name for r in cell.topology.residues()]
    a, b = layers[1]["atoms"]
    atoms = list(cell.topology.atoms())
    assert {atoms[i].residue.name for i in range(a, b)} == {"DMH", "DMR", "DMT"}
    assert names.count("DMH") == names.count("DMT") >= 2  # chains in both polymer layers
    assert min_nonbonded_distance_nm(cell.topology, cell.positions_nm, cell.box_nm) > 0.1
    bad = dict(spec, electrolyte={"recipe": "0.05 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 1.6})
    with pytest.raises(BuildError, match="electrolyte layer too thin"):  # raised in a worker, re-raised here
        build_interface(bad, parallel=True)
