"""Force-field assembly: charges, scaling, groups, exclusions, errors, provenance."""

from __future__ import annotations

import hashlib

import numpy as np
import openmm
import pytest
from openmm import app, unit

from aseimd.build.molecule import molecule
from aseimd.errors import ForceFieldError
from aseimd.forcefield import (
    FORCE_GROUPS,
    atom_charge_scales,
    create_system,
    forcefield_files,
    forcefield_provenance,
    load_forcefield,
    residue_templates,
)
from aseimd.species import all_species

#: Whole molecules and ions; polymer residues (head/repeat/tail fragments) are tested as chains in
#: tests/test_polymer.py and tests/test_ff_pdms_nafion.py.
SPECIES = [sp.name for sp in all_species() if sp.kind != "polymer"]


def _charges(system):
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    return np.array([nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                     for i in range(nb.getNumParticles())])


@pytest.mark.parametrize("name", SPECIES)
def test_integral_and_scaled_charge(name):
    m = molecule(name)
    full = _charges(create_system(m.topology, charge_scale=1.0)).sum()
    assert full == pytest.approx(m.species.formal_charge, abs=1e-9)
    scaled = _charges(create_system(m.topology, charge_scale=0.8)).sum()
    expected = 0.8 * m.species.formal_charge if m.species.kind in ("cation", "anion") else 0.0
    assert scaled == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name", SPECIES)
def test_minimises_to_finite_energy(name):
    m = molecule(name, seed=7)
    system = create_system(m.topology)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(m.positions_nm * unit.nanometer)
    ctx.applyConstraints(1e-8)
    openmm.LocalEnergyMinimizer.minimize(ctx, 1e-2, 500)
    e = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert np.isfinite(e) and abs(e) < 1e4


def test_templates_cover_species_with_integral_charge():
    templates = residue_templates()
    for sp in all_species():
        t = templates[sp.residue]
        assert t.filename == sp.forcefield_file
        assert t.net_charge == pytest.approx(sp.formal_charge, abs=1e-9)


def test_scaling_of_14_charge_products():
    """Exceptions inside an ion scale with s**2; the 1-4 scale (0.5) is kept."""
    m = molecule("TFSI")
    def exceptions(s):
        nb = next(f for f in create_system(m.topology, charge_scale=s).getForces()
                  if isinstance(f, openmm.NonbondedForce))
        return np.array([nb.getExceptionParameters(k)[2].value_in_unit(unit.elementary_charge**2)
                         for k in range(nb.getNumExceptions())])
    full, scaled = exceptions(1.0), exceptions(0.7)
    assert np.any(full != 0)
    np.testing.assert_allclose(scaled, 0.49 * full, rtol=1e-12, atol=1e-12)


def test_ionic_atoms_hook_scales_part_of_a_residue(monkeypatch):
    """A residue whose species lists ionic_atoms gets just those atoms scaled (future Li-Nafion sulfonate)."""
    import dataclasses

    from aseimd.forcefield import charges

    top = molecule("DMC").topology
    fake = dataclasses.replace(next(sp for sp in all_species() if sp.name == "DMC"), ionic_atoms=("O1", "C1"))
    original = charges.species_for_residue
    monkeypatch.setattr(charges, "species_for_residue", lambda res: fake if res == "DMC" else original(res))
    scales = atom_charge_scales(top, 0.6)
    names = [a.name for a in top.atoms()]
    assert [names[i] for i in np.flatnonzero(scales != 1.0)] == ["C1", "O1"]
    assert np.all(scales[scales != 1.0] == 0.6)


def test_force_groups_and_mirrored_exclusions():
    m = molecule("PC")
    mod = app.Modeller(m.topology, m.positions_nm * unit.nanometer)
    mod.add(molecule("PF6").topology, (molecule("PF6").positions_nm + 1.0) * unit.nanometer)
    mod.topology.setPeriodicBoxVectors(np.eye(3) * 2.5 * unit.nanometer)
    system = create_system(mod.topology, switch_distance_nm=0.9)
    groups = {type(f).__name__ + ("/" + f.getName() if f.getName() == "LJ14" else ""): f.getForceGroup()
              for f in system.getForces()}
    assert groups["HarmonicBondForce"] == FORCE_GROUPS["bonds"]
    assert groups["HarmonicAngleForce"] == groups["CustomAngleForce"] == FORCE_GROUPS["angles"]
    assert groups["PeriodicTorsionForce"] == FORCE_GROUPS["torsions"]
    assert groups["NonbondedForce"] == FORCE_GROUPS["coulomb"]
    assert groups["CustomNonbondedForce"] == groups["CustomBondForce/LJ14"] == FORCE_GROUPS["lj"]
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    lj = next(f for f in system.getForces() if isinstance(f, openmm.CustomNonbondedForce))
    assert nb.getNonbondedMethod() == openmm.NonbondedForce.PME
    assert lj.getNonbondedMethod() == openmm.CustomNonbondedForce.CutoffPeriodic
    assert lj.getUseLongRangeCorrection() and lj.getUseSwitchingFunction()
    assert lj.getSwitchingDistance().value_in_unit(unit.nanometer) == pytest.approx(0.9)
    pairs_nb = {tuple(sorted(nb.getExceptionParameters(k)[:2])) for k in range(nb.getNumExceptions())}
    pairs_lj = {tuple(sorted(lj.getExclusionParticles(k))) for k in range(lj.getNumExclusions())}
    assert pairs_nb == pairs_lj and len(pairs_nb) > 0
    assert all(nb.getParticleParameters(i)[2].value_in_unit(unit.kilojoule_per_mole) == 0.0
               for i in range(nb.getNumParticles()))


def test_unknown_residue_names_it():
    top = app.Topology()
    res = top.addResidue("XYZ", top.addChain())
    top.addAtom("C1", app.Element.getBySymbol("C"), res)
    with pytest.raises(ForceFieldError, match="'XYZ'"):
        create_system(top)


@pytest.mark.parametrize("kwargs, word", [
    ({"charge_scale": 0.0}, "charge_scale"),
    ({"charge_scale": 1.5}, "charge_scale"),
    ({"constraints": "Bonds"}, "constraints"),
    ({"cutoff_nm": 1.5}, "cutoff_nm"),
    ({"switch_distance_nm": 1.2}, "switch_distance_nm"),
])
def test_bad_options(kwargs, word):
    m = molecule("EC")
    m.topology.setPeriodicBoxVectors(np.eye(3) * 2.5 * unit.nanometer)
    with pytest.raises(ForceFieldError, match=word):
        create_system(m.topology, **kwargs)


def test_provenance_and_loading():
    files = forcefield_files()
    assert {p.name for p in files} >= {"ions.xml", "carbonates.xml"}
    prov = forcefield_provenance()
    for p in files:
        assert prov["files"][p.name] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert prov["openmm_version"] == openmm.__version__
    assert set(prov["sources"]) == {sp.residue for sp in all_species()}
    ff = load_forcefield()
    assert isinstance(ff, app.ForceField)
