"""Relaxation of grown cells: the soft-core stage (overlaps cannot blow up), its copy of the system, early stops."""

from __future__ import annotations

import numpy as np
import pytest

from aseimd.build import relax as rx
from aseimd.build.polymer import PolymerSpec, grow_chains

FINAL = np.array([2.2, 2.2, 1.6])


@pytest.fixture(scope="module")
def grown():
    """Three PEO 6-mers grown in a layer (not relaxed): topology, positions, start box (x, y, thickness)."""
    g = grow_chains(PolymerSpec("PEO", n_repeat=6), final_box=FINAL, layer=True, n_chains=3, temperature_K=300.0,
                    seed=4)
    assert g.fraction == 0.5
    return g.topology, g.positions_nm, g.start_box_nm


def _overlapped(top, pos, r_nm=0.05):
    """Move the first heavy atom of the last chain to ``r_nm`` from the first heavy atom of chain 0."""
    chains = list(top.chains())
    a = next(x.index for x in chains[0].atoms() if x.element.symbol != "H")
    b_atoms = [x.index for x in chains[-1].atoms()]
    b = next(x.index for x in chains[-1].atoms() if x.element.symbol != "H")
    out = pos.copy()
    out[b_atoms] += pos[a] + np.array([r_nm, 0.0, 0.0]) - pos[b]
    return out, a, b


def _context(system, pos, box):
    import openmm
    from openmm import unit

    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPeriodicBoxVectors(*rx._vectors(box))
    ctx.setPositions(pos * unit.nanometer)
    return ctx


def _energy_forces(ctx):
    from openmm import unit

    st = ctx.getState(getEnergy=True, getForces=True)
    return (st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def _full_and_soft(grown):
    """The grown layer in a box 2.3 nm taller than its start box: (top, pos, box, full system, soft system)."""
    from aseimd.forcefield.system import create_system

    top, pos, start = grown
    box = start + np.array([0.0, 0.0, 2.3])
    top.setPeriodicBoxVectors(rx._vectors(box))
    system = create_system(top, charge_scale=1.0, cutoff_nm=0.9, constraints=None)
    return top, pos, box, system, rx._soft_system(system, 1.0)


def test_soft_core_pair_at_0_05_nm_stays_finite_where_the_full_lj_explodes(grown):
    top, pos, box, system, soft = _full_and_soft(grown)
    bad, a, b = _overlapped(top, pos)
    ctx = _context(soft, bad, box)
    for lam in (rx.SOFT_LAMBDA_START, rx.SOFT_LAMBDA_END):
        ctx.setParameter("lam", lam)
        e, f = _energy_forces(ctx)
        assert np.isfinite(e) and np.all(np.isfinite(f))
        assert np.max(np.abs(f[[a, b]])) < 1e5  # finite at r -> 0: a push, not an explosion
    e_full, f_full = _energy_forces(_context(system, bad, box))
    assert not np.isfinite(e_full) or e_full > 1e10 or np.max(np.abs(f_full)) > 1e10  # r^-12 at 0.05 nm


def test_soft_repulsion_is_zero_beyond_its_minimum_and_finite_at_contact():
    import openmm

    # the expression itself on two particles: zero (and zero force) beyond r_c = (2 - alpha (1 - lam))^(1/6) sigma
    sig, eps = 0.35, 0.3
    for lam in (rx.SOFT_LAMBDA_START, rx.SOFT_LAMBDA_END):
        s0 = rx.SOFT_ALPHA * (1 - lam)
        r_c = (2 - s0) ** (1 / 6) * sig
        sys_ = openmm.System()
        sys_.addParticle(1.0)
        sys_.addParticle(1.0)
        f = openmm.CustomNonbondedForce(rx.SOFT_REPULSION)
        f.addGlobalParameter("lam", lam)
        f.addGlobalParameter("alpha", rx.SOFT_ALPHA)
        f.addPerParticleParameter("rsig")
        f.addPerParticleParameter("reps")
        for _ in range(2):
            f.addParticle([sig ** 0.5, eps ** 0.5])
        sys_.addForce(f)
        box = np.full(3, 5.0)
        for r, want in ((0.0, eps * lam * (4 * (1 / s0 ** 2 - 1 / s0) + 1)), (r_c * 1.01, 0.0), (1.0, 0.0)):
            pos = np.array([[1.0, 1.0, 1.0], [1.0 + r, 1.0, 1.0]])
            e, frc = _energy_forces(_context(sys_, pos, box))
            assert e == pytest.approx(want, rel=1e-6, abs=1e-9)
            if want == 0.0:
                assert np.allclose(frc, 0.0)
        e_in, _ = _energy_forces(_context(sys_, np.array([[1.0, 1, 1], [1.0 + 0.9 * r_c, 1, 1]]), box))
        assert e_in > 0.0  # purely repulsive inside


def test_soft_system_keeps_every_bonded_term_and_drops_charges(grown):
    import openmm

    top, pos, box, system, soft = _full_and_soft(grown)
    kinds = [type(f).__name__ for f in soft.getForces()]
    assert "NonbondedForce" not in kinds and "CMMotionRemover" not in kinds
    for f in system.getForces():
        if isinstance(f, (openmm.HarmonicBondForce, openmm.HarmonicAngleForce, openmm.PeriodicTorsionForce,
                          openmm.CustomAngleForce, openmm.CustomBondForce)):
            twin = next(g for g in soft.getForces() if type(g) is type(f) and g.getName() == f.getName())
            assert twin.usesPeriodicBoundaryConditions() == f.usesPeriodicBoundaryConditions()
            assert twin.getForceGroup() == f.getForceGroup()
    # the new path and the serialisation path give the same energy
    e_new, f_new = _energy_forces(_context(soft, pos, box))
    e_xml, f_xml = _energy_forces(_context(rx._soft_system_by_serialisation(system, 1.0), pos, box))
    assert e_new == pytest.approx(e_xml, rel=1e-9) and np.allclose(f_new, f_xml, atol=1e-6)


def test_relax_removes_a_0_05_nm_overlap(grown):
    from aseimd.build.geometry import min_nonbonded_distance_nm

    top, pos, start = grown
    bad, _a, _b = _overlapped(top, pos)
    stats: dict = {}
    out = rx.relax_cell(top, bad, start_box_nm=start, final_box_nm=FINAL, layer=True, stats=stats)
    assert np.all(np.isfinite(out))
    assert min_nonbonded_distance_nm(top, out, FINAL, (True, True, False)) > 0.1
    assert out[:, 2].min() >= 0.0 and out[:, 2].max() <= FINAL[2]
    assert stats["final_max_force_kj_per_mol_nm"] < rx.FINAL_MAX_FORCE_KJ_PER_MOL_NM


def test_early_stop_criteria_of_the_minimiser_reporter():
    stats: dict = {}
    rep = rx._StopAtForce(100.0, stats)
    x = np.zeros(9)
    assert rep.report(0, x, np.array([0.0, 99.0, -99.0] * 3), {}) is True
    assert rep.report(1, x, np.array([0.0, 101.0, 0.0] * 3), {}) is False
    assert rep.report(2, x, np.array([0.0, -101.0, 0.0] * 3), {}) is False  # |component|
    assert stats["iterations"] == 3
    layer = rx._StopAtForce(100.0, {}, (0.0, 1.0))
    inside, outside = np.array([0, 0, 0.2, 0, 0, 0.9, 0, 0, 0.5]), np.array([0, 0, 0.2, 0, 0, 1.1, 0, 0, 0.5])
    small = np.ones(9)
    assert layer.report(0, inside, small, {}) is True
    assert layer.report(0, outside, small, {}) is False  # small forces, but an atom outside the layer


def test_relax_stops_early_on_a_loose_force_criterion_and_runs_on_with_a_tight_one(grown):
    top, pos, start = grown
    loose: dict = {}
    rx.relax_cell(top, pos, start_box_nm=start, final_box_nm=FINAL, layer=True, stats=loose,
                  soft_max_force=1e12, final_max_force=1e12)
    # every minimisation stops at its first report (OpenMM reports iteration 0 first)
    assert loose["soft_iterations"] == loose["compression_steps"]
    # the final one also waits until every atom is inside the layer (positions, not forces)
    assert loose["final_iterations"] < 30
    tight: dict = {}
    rx.relax_cell(top, pos, start_box_nm=start, final_box_nm=FINAL, layer=True, stats=tight,
                  soft_max_force=1e-6, final_max_force=1e-6, soft_iterations=20, final_iterations=30)
    assert tight["soft_iterations"] > 2 * tight["compression_steps"]
    assert tight["final_iterations"] > loose["final_iterations"]
    assert tight["final_max_force_kj_per_mol_nm"] < loose["final_max_force_kj_per_mol_nm"]


def test_chirality_restraint_is_zero_for_the_built_configuration_and_resists_inversion():
    import openmm

    from aseimd.build.chain_growth import tetra

    c, prev, nxt = np.array([1.0, 1.0, 1.0]), np.array([0.85, 1.0, 1.0]), np.array([1.05, 1.14, 1.0])
    box = np.full(3, 3.0)
    for sign in (1, -1):
        sub = np.array(tetra(tuple(prev), tuple(c), tuple(nxt), 0.109, float(sign)))
        built = int(np.sign(np.linalg.det(np.array([prev - c, nxt - c, sub - c]))))
        system = openmm.System()
        for _ in range(4):
            system.addParticle(12.0)
        rx._add_chirality(system, [(0, 1, 2, 3, built)])
        pos = np.array([c, prev, nxt, sub])
        e_built, _ = _energy_forces(_context(system, pos, box))
        mirror = pos.copy()
        mirror[3, 2] = 2 * c[2] - sub[2]  # substituent reflected through the plane of c, prev, next
        e_mirror, _ = _energy_forces(_context(system, mirror, box))
        assert e_built == pytest.approx(0.0, abs=1e-9)
        assert e_mirror > 0.5 * rx.CHIRAL_K_KJ_PER_MOL  # (|sin| + s_min)^2 > 0.5 at an sp3 centre
        wrapped = pos.copy()
        wrapped[3] -= np.array([3.0, 0.0, 0.0])  # minimum image: a wrapped substituent changes nothing
        assert _energy_forces(_context(system, wrapped, box))[0] == pytest.approx(0.0, abs=1e-9)
