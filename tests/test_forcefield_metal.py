"""The frozen Li-metal model: masses, charges, no slab-slab LJ, metal-other LJ against numpy."""

import numpy as np
import openmm as mm
import pytest
from openmm import app, unit

from aseimd.build.cell import Cell
from aseimd.build.interface import _append_topology
from aseimd.build.molecule import molecule
from aseimd.build.slab import build_li_slab
from aseimd.forcefield import FORCE_GROUPS, create_system
from aseimd.forcefield.metal import TIES_FORCE_NAME, metal_atom_indices

# (sigma nm, epsilon kJ/mol) as cited in forcefields/li_metal.xml and ions.xml
LJ = {"LIM": (2.451 / 2 ** (1 / 6) / 10, 0.025 * 4.184), "LI": (0.2126, 0.07648),
      "P": (0.374, 0.8368), "F": (0.312, 0.2552)}


def _slab_with_ions():
    slab = build_li_slab("100", layers=3, repeats=(6, 6))
    top = app.Topology()
    _append_topology(top, slab.topology)
    pos = [slab.positions_nm]
    for name, xyz in (("Li", [1.0, 1.0, 0.62]), ("PF6", [0.3, 0.4, 0.75])):
        m = molecule(name)
        _append_topology(top, m.topology)
        pos.append(m.positions_nm + np.array(xyz))
    return Cell(top, np.concatenate(pos), np.array([slab.box_nm[0], slab.box_nm[1], 3.0]))


def _energy(system, cell, group):
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(cell.positions_nm)
    return ctx.getState(getEnergy=True, groups={group}).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def test_frozen_metal_masses_charges_ties():
    cell = _slab_with_ions()
    system = create_system(cell.topology, cutoff_nm=1.0)
    idx = metal_atom_indices(cell.topology)
    assert idx.tolist() == list(range(108))
    assert all(system.getParticleMass(int(i)).value_in_unit(unit.dalton) == 0.0 for i in idx)
    assert system.getParticleMass(108).value_in_unit(unit.dalton) == pytest.approx(6.941)  # the Li+ ion moves
    nb = next(f for f in system.getForces() if isinstance(f, mm.NonbondedForce))
    q = np.array([nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                  for i in range(system.getNumParticles())])
    assert np.all(q[idx] == 0.0)
    assert q[108] == pytest.approx(0.8)  # residue LI matched the ion template, not Li metal
    ties = next(f for f in system.getForces() if f.getName() == TIES_FORCE_NAME)
    assert ties.getNumBonds() == 107
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    molecules = [sorted(m) for m in ctx.getMolecules()]
    assert list(range(108)) in molecules  # the slab is one molecule


def test_metal_lj_against_numpy():
    cell = _slab_with_ions()
    cutoff = 1.0
    system = create_system(cell.topology, cutoff_nm=cutoff)
    got = _energy(system, cell, FORCE_GROUPS["lj"])
    names = [a.residue.name if a.residue.name in ("LIM", "LI") else a.element.symbol for a in cell.topology.atoms()]
    sig = np.array([LJ[n][0] for n in names])
    eps = np.array([LJ[n][1] for n in names])
    resid = np.array([a.residue.index for a in cell.topology.atoms()])
    metal = np.array([n == "LIM" for n in names])
    expected = 0.0
    n = len(names)
    for i in range(n):
        for j in range(i + 1, n):
            if (metal[i] and metal[j]) or (resid[i] == resid[j] and not metal[i]):
                continue  # slab-slab pairs removed; PF6 intramolecular pairs are all 1-2 / 1-3 exclusions
            d = cell.positions_nm[i] - cell.positions_nm[j]
            d -= cell.box_nm * np.round(d / cell.box_nm)
            r = np.linalg.norm(d)
            if r < cutoff:
                s, e = np.sqrt(sig[i] * sig[j]), np.sqrt(eps[i] * eps[j])
                expected += 4 * e * ((s / r) ** 12 - (s / r) ** 6)
    assert expected < 0.0 and got == pytest.approx(expected, rel=1e-6)


def test_slab_alone_has_no_self_interaction_and_no_tail_correction():
    slab = build_li_slab("100", layers=3, repeats=(6, 6))
    slab = Cell(slab.topology, slab.positions_nm, np.array([slab.box_nm[0], slab.box_nm[1], 3.0]))
    system = create_system(slab.topology, cutoff_nm=1.0)
    assert _energy(system, slab, FORCE_GROUPS["lj"]) == 0.0
    lj = next(f for f in system.getForces() if f.getName() == "LJ")
    assert not lj.getUseLongRangeCorrection()  # default off with a metal slab
    assert next(f for f in create_system(slab.topology, cutoff_nm=1.0, lj_long_range_correction=True)
                .getForces() if f.getName() == "LJ").getUseLongRangeCorrection()


def test_bulk_keeps_the_tail_correction():
    m = molecule("EC")
    top = app.Topology()
    _append_topology(top, m.topology)
    cell = Cell(top, m.positions_nm + 1.5, np.array([3.0, 3.0, 3.0]))
    system = create_system(cell.topology, cutoff_nm=1.0)
    assert next(f for f in system.getForces() if f.getName() == "LJ").getUseLongRangeCorrection()
    assert not any(f.getName() == TIES_FORCE_NAME for f in system.getForces())
