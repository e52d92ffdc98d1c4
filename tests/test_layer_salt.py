"""Li salt in polymer layers (build/layer_salt.py): spec validation, a small salted PEO layer, and the
full-charge ion pairs excluded from the LJ force (CPU refused TFSI at charge_scale < 1 before)."""

from __future__ import annotations

import numpy as np
import openmm as mm
import pytest
from openmm import unit

from aseimd.build.spec import load_interface_spec
from aseimd.errors import SpecError

BASE = {"slab": {"face": "100", "layers": 3, "lateral_nm": [2.1, 2.1]},
        "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 2.4}, "cutoff_nm": 1.0}


def _spec(polymer):
    return load_interface_spec({**BASE, "polymer": polymer})


@pytest.mark.parametrize("polymer, match", [
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiXYZ"}, "polymer.salt 'LiXYZ' unknown"),
    ({"name": "PEO", "thickness_nm": 1.0, "eo_per_li": 16}, "eo_per_li given without polymer.salt"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "eo_per_li": 0.5}, "eo_per_li 0.5 impossible"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "eo_per_li": -3}, "impossible"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "an_per_li": 8}, "an_per_li does not apply to PEO"),
    ({"name": "PAN", "thickness_nm": 1.0, "salt": "LiPF6"}, "needs polymer.an_per_li"),
    ({"name": "PDMS", "thickness_nm": 1.0, "salt": "LiPF6"}, "not allowed for PDMS"),
    ({"name": "LiNafion", "thickness_nm": 1.0, "salt": "LiPF6"}, "not allowed for LiNafion"),
    ({"name": "PEO", "thickness_nm": 1.0, "salt": "LiTFSI", "eo_per_Li": 16}, "unknown key 'eo_per_Li'"),
])
def test_bad_salt_options_are_one_line_spec_errors(polymer, match):
    with pytest.raises(SpecError, match=match) as exc:
        _spec(polymer)
    assert "\n" not in str(exc.value)


def test_salt_defaults_to_eo_li_16_in_peo():
    s = _spec({"name": "PEO", "thickness_nm": 1.0, "salt": "litfsi"}).polymer.layer_salt()
    assert (s.salt, s.ratio, s.host.ratio_key) == ("LiTFSI", 16.0, "eo_per_li")


def test_salted_peo_layer_is_neutral_clean_and_runs():
    from aseimd.build.geometry import min_nonbonded_distance_nm, speared_rings
    from aseimd.build.layer_salt import build_salted_layer, validate_layer_salt
    from aseimd.build.polymer import PolymerSpec
    from aseimd.forcefield.system import create_system

    salt = validate_layer_salt("PEO", "LiTFSI", {"eo_per_li": 16})
    cell = build_salted_layer(PolymerSpec("PEO", n_repeat=8), salt, box_xy_nm=(2.106, 2.106), thickness_nm=1.0,
                              seed=11)
    res = [r.name for r in cell.topology.residues()]
    n_eo = sum(1 for a in cell.topology.atoms() if a.element.symbol == "O" and a.residue.name in ("PEH", "PEO", "PET"))
    n_li, n_tfsi = res.count("LI"), res.count("TFS")
    assert n_li == n_tfsi == round(n_eo / 16) >= 1
    assert cell.provenance["salt"]["ion_pairs"] == n_li
    assert cell.provenance["salt"]["ratio_achieved"] == pytest.approx(n_eo / n_li)
    periodic = (True, True, False)
    assert min_nonbonded_distance_nm(cell.topology, cell.positions_nm, cell.box_nm, periodic) >= 0.1
    assert speared_rings(cell.topology, cell.positions_nm, cell.box_nm, periodic) == []
    ions = [a.index for a in cell.topology.atoms() if a.residue.name in ("LI", "TFS")]
    z = cell.positions_nm[ions, 2]
    assert z.min() >= 0.0 and z.max() <= 1.0
    # neutral; minimise and a few hundred steps in a padded periodic box, on CPU at the default charge scale
    top = cell.topology
    box = np.array([cell.box_nm[0], cell.box_nm[1], 3.2])
    top.setPeriodicBoxVectors(np.diag(box) * unit.nanometer)
    system = create_system(top, charge_scale=0.8, cutoff_nm=1.0, constraints="HBonds")
    integ = mm.LangevinMiddleIntegrator(298.15, 1.0, 0.001)
    ctx = mm.Context(system, integ, mm.Platform.getPlatformByName("CPU"))
    ctx.setPositions(cell.positions_nm + np.array([0, 0, 1.1]))
    mm.LocalEnergyMinimizer.minimize(ctx, 10.0, 500)
    integ.step(300)
    state = ctx.getState(getEnergy=True, getPositions=True)
    assert np.isfinite(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
    assert np.all(np.isfinite(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)))


def test_tfsi_at_scaled_charge_runs_on_cpu_with_the_same_energy(monkeypatch):
    """Full-charge 1-5+ pairs of TFSI are excluded from the LJ force too (energy unchanged, CPU accepts it)."""
    import aseimd.forcefield.system as fsys
    from aseimd.build.cell import topology_from_molecules
    from aseimd.build.molecule import molecule

    m, li = molecule("TFSI"), molecule("Li")
    top = topology_from_molecules([(m, 1), (li, 1)])
    top.setPeriodicBoxVectors(np.eye(3) * 3.0 * unit.nanometer)
    pos = np.concatenate([m.positions_nm, [[1.0, 1.0, 1.0]]]) + 1.5

    def energy(system, platform):
        ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName(platform))
        ctx.setPositions(pos)
        return ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    fixed = fsys.create_system(top, charge_scale=0.8, cutoff_nm=1.0)
    monkeypatch.setattr(fsys, "keep_lj_of_new_exceptions", lambda *a: 0)
    old = fsys.create_system(top, charge_scale=0.8, cutoff_nm=1.0)  # the previous construction (Reference only)
    e_old = energy(old, "Reference")
    assert energy(fixed, "Reference") == pytest.approx(e_old, rel=1e-9, abs=1e-6)
    assert energy(fixed, "CPU") == pytest.approx(e_old, rel=1e-5)
