"""Every shipped systems/ spec builds at a small size, is clean and neutral, keeps its layer order, minimises
and runs a few hundred CPU steps without blowing up."""

import numpy as np
import openmm as mm
import pytest
import yaml
from openmm import unit

from aseimd.build.cell import system_charge_e
from aseimd.build.geometry import min_nonbonded_distance_nm, speared_rings
from aseimd.build.interface import build_interface
from aseimd.forcefield import create_system
from aseimd.forcefield.metal import metal_atom_indices
from aseimd.resources import data_dir
from aseimd.species import get_species

#: quickstart is li-peo-lipf6 at a small size already; shrunk like the others it would repeat that case.
SPECS = sorted(p.stem for p in data_dir("systems").glob("*.yaml") if p.stem != "quickstart")
#: Small chain lengths for the test-size layers.
SMALL_DP = {"PEO": 6, "PAN": 6, "PDMS": 6, "LiNafion": 2}


def _small(name):
    data = yaml.safe_load((data_dir("systems") / f"{name}.yaml").read_text())
    data["slab"] = {"face": data["slab"]["face"], "layers": 3, "repeats": [6, 6]}  # 2.106 nm lateral
    data["cutoff_nm"] = 0.9
    data["electrolyte"]["thickness_nm"] = 1.6
    if data.get("polymer"):
        data["polymer"].update(thickness_nm=1.0, n_repeat=SMALL_DP[data["polymer"]["name"]])
    return data


@pytest.mark.parametrize("name", SPECS)
def test_shipped_spec_builds_small_clean_and_runs(name):
    data = _small(name)
    cell = build_interface(data)
    pos, box = cell.positions_nm, cell.box_nm
    # layer order along z: slab, (polymer), electrolyte, (polymer); each layer's atoms inside its range
    layers = cell.provenance["layers"]
    expected = ["slab", "electrolyte"] if data.get("polymer") is None else \
        ["slab", "polymer_bottom", "electrolyte", "polymer_top"]
    assert [la["name"] for la in layers] == expected
    kinds = [get_species(a.residue.name).kind for a in cell.topology.atoms()]
    for lower, upper in zip(layers, layers[1:]):
        assert lower["z_nm"][1] < upper["z_nm"][0]
    for la in layers:
        a, b = la["atoms"]
        assert la["z_nm"][0] - 1e-9 <= pos[a:b, 2].min() and pos[a:b, 2].max() <= la["z_nm"][1] + 1e-9
        layer_kinds = set(kinds[a:b])
        if la["name"] == "slab":
            assert layer_kinds == {"metal"}
        elif la["name"] == "electrolyte":
            assert layer_kinds <= {"cation", "anion", "solvent"}
        else:
            allowed = {"polymer", "cation", "anion"} if data["polymer"].get("salt") else {"polymer", "cation"}
            assert "polymer" in layer_kinds and layer_kinds <= allowed
    assert box[2] > layers[-1]["z_nm"][1]
    # clean: no non-bonded pair closer than 0.1 nm, no bond through a ring (EC rings next to the layers)
    assert min_nonbonded_distance_nm(cell.topology, pos, box) > 0.1
    assert speared_rings(cell.topology, pos, box) == []
    system = create_system(cell.topology, cutoff_nm=0.9)
    assert system_charge_e(system) == pytest.approx(0.0, abs=1e-6)
    integrator = mm.LangevinMiddleIntegrator(298.15 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    integrator.setRandomNumberSeed(3)
    ctx = mm.Context(system, integrator, mm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    ctx.setPeriodicBoxVectors(*np.diag(box))
    ctx.setPositions(pos)
    e_start = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    mm.LocalEnergyMinimizer.minimize(ctx, 50.0, 150)
    e_min = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert e_min < e_start
    ctx.setVelocitiesToTemperature(298.15 * unit.kelvin, 3)
    integrator.step(200)
    state = ctx.getState(getEnergy=True, getPositions=True)
    n_dof = 3 * (system.getNumParticles() - len(metal_atom_indices(cell.topology))) - system.getNumConstraints() - 3
    temperature_K = (2 * state.getKineticEnergy() / (n_dof * unit.MOLAR_GAS_CONSTANT_R)).value_in_unit(unit.kelvin)
    assert np.isfinite(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    assert 150.0 < temperature_K < 600.0  # no blow-up
