"""Scaled ion charges act between molecules; a CL&P ion keeps its own electrostatics at full charge.

TFSI- in vacuum: the CL&P torsions were fitted with full-charge 1-4 and 1-5+
Coulomb, which favours trans (C-S...S-C about 180 deg) over gauche/cis
(about 40 deg).  Scaling the intramolecular pairs by s**2 = 0.64 flips that
order; keeping them at full charge leaves it, and the energy of a lone ion,
unchanged at every charge scale.
"""

from __future__ import annotations

import numpy as np
import openmm
import pytest
from openmm import unit

from aseimd.build.molecule import molecule
from aseimd.forcefield import create_system
from aseimd.forcefield.charges import atom_charge_scales, scale_charges


def _dihedral_deg(x, quad):
    b0, b1, b2 = x[quad[0]] - x[quad[1]], x[quad[2]] - x[quad[1]], x[quad[3]] - x[quad[2]]
    b1 = b1 / np.linalg.norm(b1)
    v, w = b0 - b0.dot(b1) * b1, b2 - b2.dot(b1) * b1
    return float(np.degrees(np.arctan2(np.cross(b1, v).dot(w), v.dot(w))))


def _conformer(system, positions_nm, quad, target_deg):
    """Minimise with a restraint on the C-S...S-C pseudo-dihedral, then without: the nearest local minimum."""
    restraint = openmm.CustomTorsionForce("0.5*kr*(1-cos(theta-t0))")
    restraint.addGlobalParameter("kr", 2000.0)
    restraint.addPerTorsionParameter("t0")
    restraint.addTorsion(*quad, [np.radians(target_deg)])
    system.addForce(restraint)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(positions_nm)
    openmm.LocalEnergyMinimizer.minimize(ctx, 1e-3, 5000)
    ctx.setParameter("kr", 0.0)
    openmm.LocalEnergyMinimizer.minimize(ctx, 1e-4, 5000)
    state = ctx.getState(getEnergy=True, getPositions=True)
    x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole), _dihedral_deg(x, quad)


@pytest.fixture(scope="module")
def tfsi():
    m = molecule("TFSI", seed=0)
    idx = {a.name: a.index for a in m.topology.atoms()}
    return m, [idx["C1"], idx["S1"], idx["S2"], idx["C2"]]


def _gap(system_factory, m, quad):
    e_t, d_t = _conformer(system_factory(), m.positions_nm, quad, 180.0)
    e_g, d_g = _conformer(system_factory(), m.positions_nm, quad, 40.0)
    assert abs(d_t) > 150.0 and 20.0 < abs(d_g) < 80.0, (d_t, d_g)  # really two different conformers
    return e_g - e_t


def test_tfsi_trans_below_gauche_at_any_charge_scale(tfsi):
    m, quad = tfsi
    full = _gap(lambda: create_system(m.topology, charge_scale=1.0, constraints=None), m, quad)
    scaled = _gap(lambda: create_system(m.topology, charge_scale=0.8, constraints=None), m, quad)
    assert full > 2.0  # CL&P: trans lower (3.4 kJ/mol with the il.ff 2019/06/19 parameters)
    assert scaled == pytest.approx(full, abs=1e-3)


def test_scaling_the_ion_interior_would_flip_the_order(tfsi):
    """Negative control: the old model (every intramolecular pair scaled by s**2) makes gauche the minimum."""
    m, quad = tfsi

    def old_model():
        system = create_system(m.topology, charge_scale=1.0, constraints=None)
        nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
        scale_charges(nb, atom_charge_scales(m.topology, 0.8))  # no full-charge groups
        return system

    assert _gap(old_model, m, quad) < 0.0


@pytest.mark.parametrize("name", ["TFSI", "FSI", "PF6"])
def test_lone_ion_energy_independent_of_charge_scale(name):
    m = molecule(name, seed=1)

    def energy(s):
        system = create_system(m.topology, charge_scale=s, constraints=None)
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(m.positions_nm)
        return ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)

    assert energy(0.7) == pytest.approx(energy(1.0), abs=1e-6)
