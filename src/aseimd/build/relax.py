"""Relax a freshly grown cell: soft-core compression to the target size, then the full force field.

Grown chains (and inserted ions) sit in an expanded box or a thicker layer, so
nothing overlaps badly; but the force field's r^-12 wall would still turn the
closest contacts into enormous forces.  The relaxation therefore

1. compresses the box (bulk) or the layer (z only) to its target in
   ``ceil(log(ratio) / log(COMPRESSION_FACTOR))`` equal steps (each at most 20 %
   in length), minimising after each step with every bonded term of the real
   force field and, instead of charges and Lennard-Jones, a purely repulsive
   soft core (:data:`SOFT_REPULSION`: the Beutler et al. form, finite at r = 0,
   cut and shifted at its minimum); its strength ``lam`` is ramped from
   :data:`SOFT_LAMBDA_START` to :data:`SOFT_LAMBDA_END` as the box shrinks;
2. minimises with the full force field (PME, geometric LJ).

Each minimisation stops early once the largest force component is below
:data:`SOFT_MAX_FORCE_KJ_PER_MOL_NM` (soft stages: they only have to remove
overlaps) or :data:`FINAL_MAX_FORCE_KJ_PER_MOL_NM` with every atom inside the
layer (final stage), or after ``soft_iterations`` / ``final_iterations``.

Bonded forces use periodic boundary conditions (chains cross the box).  In a
layer, flat-bottom walls keep every atom in ``[0, thickness]`` and the z edge of
the relaxation box is padded so that the layer does not meet its own image.
Given the stereocentres of the chains, a one-sided restraint on their signed
volume keeps every configuration (atoms can pass through each other under the
soft core); it is part of the relaxation only, not of the written system.
This module uses OpenMM directly (it does not run a protocol).
"""

from __future__ import annotations

import math

import numpy as np

#: Purely repulsive soft-core LJ with strength ``lam``: the Beutler et al. (Chem. Phys. Lett. 222, 529
#: (1994)) soft-core form cut and shifted at its minimum (s = 2), as Weeks-Chandler-Andersen do for plain
#: LJ. Finite at r = 0 for lam < 1; zero, with zero force, from r = (2 - alpha (1 - lam))^(1/6) sigma on.
SOFT_REPULSION = ("step(2-s)*eps*lam*(4*(1/s^2 - 1/s) + 1); s=alpha*(1-lam)+(r/sig)^6; "
                  "sig=rsig1*rsig2; eps=reps1*reps2")
SOFT_ALPHA = 0.5
#: Soft-core strength at the first and the last compression step.
SOFT_LAMBDA_START, SOFT_LAMBDA_END = 0.3, 0.9
#: Smallest length ratio of one compression step.
COMPRESSION_FACTOR = 0.8
#: Most minimiser iterations per compression step and in the final minimisation.
SOFT_ITERATIONS, FINAL_ITERATIONS = 60, 400
#: Early stop of a minimisation: largest force component below this, kJ/mol/nm. The soft stages only
#: have to remove overlaps; the final (full force field) one leaves a cell with no contact harder than
#: this, which the first stage of every shipped protocol (a full minimisation) then takes to a minimum.
SOFT_MAX_FORCE_KJ_PER_MOL_NM = 2000.0
FINAL_MAX_FORCE_KJ_PER_MOL_NM = 1000.0
WALL_K_KJ_PER_NM2 = 2.0e4
#: Chirality restraint (relaxation only): zero while the substituent's improper dihedral keeps
#: |sin| >= CHIRAL_MIN_SIN on the built side, harmonic in sin below (kJ/mol per unit sin^2).
CHIRAL_MIN_SIN = 0.3
CHIRAL_K_KJ_PER_MOL = 2000.0
WALL_MARGIN_NM = 0.05


def _platform():
    import openmm

    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    for name in ("CUDA", "OpenCL", "CPU", "Reference"):
        if name in names:
            try:
                return openmm.Platform.getPlatformByName(name)
            except Exception:  # pragma: no cover - platform present but unusable
                continue
    return openmm.Platform.getPlatformByName("Reference")


def _soft_system(system, max_cutoff_nm: float):
    """Copy of ``system`` with charges and LJ replaced by the soft-core repulsion (global ``lam``).

    A new System with the same particles, box and constraints; every bonded force
    (and the 1-4 LJ pairs) deep-copied; the ``LJ`` CustomNonbondedForce deep-copied
    with its energy replaced by :data:`SOFT_REPULSION` (same per-particle
    ``rsig`` / ``reps`` and exclusions); no NonbondedForce (no charges), no
    centre-of-mass remover.  The repulsion ends at ``2^(1/6) sigma_ij``, so its
    cut-off is ``2^(1/6)`` times the largest pair sigma (a few tenths of a nm): far
    fewer pairs than the full force field's.
    """
    import copy

    import openmm

    n = system.getNumParticles()
    if any(system.isVirtualSite(i) for i in range(n)):  # not in aseimd's families; keep them exactly
        return _soft_system_by_serialisation(system, max_cutoff_nm)
    soft = openmm.System()
    for i in range(n):
        soft.addParticle(system.getParticleMass(i))
    soft.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    for k in range(system.getNumConstraints()):
        soft.addConstraint(*system.getConstraintParameters(k))
    for f in system.getForces():
        if isinstance(f, (openmm.NonbondedForce, openmm.CMMotionRemover)):
            continue
        if isinstance(f, openmm.CustomNonbondedForce) and f.getName() == "LJ":
            soft.addForce(_soft_lj(copy.deepcopy(f), max_cutoff_nm))
        else:
            soft.addForce(copy.deepcopy(f))
    return soft


def _soft_lj(sc, max_cutoff_nm: float):
    """Turn a copy of the ``LJ`` force (per-particle rsig, reps) into the soft-core repulsion."""
    import openmm

    names = [sc.getPerParticleParameterName(i) for i in range(sc.getNumPerParticleParameters())]
    if names != ["rsig", "reps"] or sc.getNumGlobalParameters() or sc.getNumInteractionGroups():
        raise ValueError(f"unexpected LJ force layout {names}: relax.py expects per-particle rsig, reps")
    sc.setName("softLJ")
    sc.setEnergyFunction(SOFT_REPULSION)
    sc.addGlobalParameter("lam", SOFT_LAMBDA_START)
    sc.addGlobalParameter("alpha", SOFT_ALPHA)
    sc.setUseLongRangeCorrection(False)
    sc.setUseSwitchingFunction(False)
    rsig_max = 0.0
    for i in range(sc.getNumParticles()):
        rsig, reps = sc.getParticleParameters(i)
        if reps > 0:
            rsig_max = max(rsig_max, rsig)
    sc.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    sc.setCutoffDistance(min(max_cutoff_nm, 2.0 ** (1.0 / 6.0) * rsig_max * rsig_max + 1e-3))
    return sc


def _soft_system_by_serialisation(system, max_cutoff_nm: float):
    """:func:`_soft_system` through an XML round trip (keeps virtual sites; slower)."""
    import copy

    import openmm

    soft = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    lj = None
    for k in reversed(range(soft.getNumForces())):
        f = soft.getForce(k)
        if isinstance(f, openmm.CustomNonbondedForce) and f.getName() == "LJ":
            lj = copy.deepcopy(f)
        if isinstance(f, (openmm.NonbondedForce, openmm.CMMotionRemover)) or (
                isinstance(f, openmm.CustomNonbondedForce) and f.getName() == "LJ"):
            soft.removeForce(k)
    soft.addForce(_soft_lj(lj, max_cutoff_nm))
    return soft


def _cheap_electrostatics(system) -> None:
    """Reaction-field electrostatics and no LJ tail correction for the final relaxation (in place).

    The final stage only has to leave no hard contact under the full force field; the
    long-range part of PME and the isotropic dispersion tail change forces at contacts
    by little, and cost a PME grid per evaluation and a slow tail integral at context
    creation.  The written system keeps PME (and the spec's tail correction); the first
    stage of every protocol minimises with it.
    """
    import openmm

    for f in system.getForces():
        if isinstance(f, openmm.NonbondedForce) and f.getNonbondedMethod() == openmm.NonbondedForce.PME:
            f.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
            f.setUseDispersionCorrection(False)
        elif isinstance(f, openmm.CustomNonbondedForce):
            f.setUseLongRangeCorrection(False)


def _add_chirality(system, stereocentres) -> None:
    """Keep each stereocentre's configuration: a one-sided restraint on its improper dihedral.

    ``stereocentres`` rows are ``(centre, prev, next, substituent, sign)`` with ``sign`` the sign of
    det[prev - c, next - c, substituent - c] (:func:`aseimd.build.chain_growth.stereo_signs_measured`).
    That sign is minus the sign of the dihedral prev-c-next-substituent, so the restraint is
    ``k (min(0, -sign sin(phi) - s_min))^2``: zero near the built configuration (|sin(phi)| ~ 0.8 at
    an sp3 centre), harmonic in sin(phi) as the substituent approaches the plane.  Periodic
    (minimum image), so wrapped positions are fine.
    """
    import openmm

    f = openmm.CustomCompoundBondForce(4, "kchi*min(0, -sgn*sin(dihedral(p2, p1, p3, p4)) - smin)^2")
    f.setName("chirality")
    f.addGlobalParameter("kchi", CHIRAL_K_KJ_PER_MOL)
    f.addGlobalParameter("smin", CHIRAL_MIN_SIN)
    f.addPerBondParameter("sgn")
    f.setUsesPeriodicBoundaryConditions(True)
    for c, a, b, x, sign in np.asarray(stereocentres, dtype=np.int64).reshape(-1, 5):
        f.addBond([int(c), int(a), int(b), int(x)], [float(sign)])
    system.addForce(f)


def _add_walls(system, z_hi_nm: float):
    import openmm

    wall = openmm.CustomExternalForce("kw*(min(0, z - zlo)^2 + max(0, z - zhi)^2)")
    wall.setName("layer_walls")
    wall.addGlobalParameter("kw", WALL_K_KJ_PER_NM2)
    wall.addGlobalParameter("zlo", WALL_MARGIN_NM)
    wall.addGlobalParameter("zhi", z_hi_nm - WALL_MARGIN_NM)
    for i in range(system.getNumParticles()):
        wall.addParticle(i, [])
    system.addForce(wall)


class _StopAtForce:
    """Minimisation reporter factory: stop once the largest force component is below ``max_force``."""

    def __new__(cls, max_force_kj_per_mol_nm: float, stats: dict, z_range=None):
        import openmm

        class Reporter(openmm.MinimizationReporter):
            def report(self, iteration, x, grad, args):
                stats["iterations"] = stats.get("iterations", 0) + 1
                g = np.asarray(grad)
                if not g.size or float(np.max(np.abs(g))) >= max_force_kj_per_mol_nm:
                    return False
                if z_range is not None:
                    z = np.asarray(x)[2::3]
                    return bool(z.min() >= z_range[0] and z.max() <= z_range[1])
                return True

        return Reporter()


def relax_cell(topology, positions_nm: np.ndarray, *, start_box_nm, final_box_nm, layer: bool,
               cutoff_nm: float = 0.9, soft_iterations: int = SOFT_ITERATIONS,
               final_iterations: int = FINAL_ITERATIONS, compression_factor: float = COMPRESSION_FACTOR,
               soft_max_force: float = SOFT_MAX_FORCE_KJ_PER_MOL_NM,
               final_max_force: float = FINAL_MAX_FORCE_KJ_PER_MOL_NM, stats: dict | None = None,
               stereocentres=None) -> np.ndarray:
    """Compress and minimise a grown cell.

    Parameters
    ----------
    topology : openmm.app.Topology
        Residues named as in the species table.
    positions_nm : numpy.ndarray, shape=(n_atoms, 3)
        Grown positions in nm, inside ``start_box_nm`` (layer: 0 <= z <= start thickness).
    start_box_nm, final_box_nm : sequence of 3 float
        Box (bulk) or (x, y, thickness) (layer) at the start and at the end, nm.
    layer : bool
        Compress z only and keep atoms between walls at 0 and the current thickness.
    cutoff_nm : float
        Non-bonded cutoff of the final minimisation, nm (reduced to fit small boxes).
    soft_iterations, final_iterations : int
        Most minimiser iterations per compression step and for the final minimisation.
    compression_factor : float
        Smallest length ratio of one compression step (0 < f < 1).
    soft_max_force, final_max_force : float
        A minimisation stops early once the largest force component (kJ/mol/nm)
        is below this (soft-core stages, final stage).
    stereocentres : array-like, shape=(n, 5), optional
        ``(centre, prev, next, substituent, sign)`` of each stereocentre whose configuration
        must survive the relaxation (the soft core lets atoms pass through each other).
    stats : dict, optional
        Filled with ``compression_steps``, ``soft_iterations``, ``final_iterations``,
        ``final_max_force_kj_per_mol_nm``.

    Returns
    -------
    numpy.ndarray, shape=(n_atoms, 3)
        Relaxed positions in nm (unwrapped).
    """
    import openmm
    from openmm import unit

    from aseimd.forcefield.system import create_system

    start = np.asarray(start_box_nm, dtype=float)
    final = np.asarray(final_box_nm, dtype=float)
    pad = 2.0 * cutoff_nm + 0.5 if layer else 0.0

    def box_for(b):
        return np.array([b[0], b[1], b[2] + pad]) if layer else b

    rc = min(cutoff_nm, 0.49 * float(np.min(box_for(final))))
    topology.setPeriodicBoxVectors(_vectors(box_for(start)))
    system = create_system(topology, charge_scale=1.0, cutoff_nm=rc, constraints=None)
    _cheap_electrostatics(system)
    soft = _soft_system(system, 0.49 * float(np.min(box_for(final))))
    if stereocentres is not None and len(stereocentres):
        _add_chirality(soft, stereocentres)
        _add_chirality(system, stereocentres)
    if layer:
        _add_walls(soft, float(start[2]))
        _add_walls(system, float(final[2]))
    platform = _platform()
    ctx = openmm.Context(soft, openmm.VerletIntegrator(0.001), platform)
    pos = np.array(positions_nm, dtype=float)
    ratio = final / start
    lo = float(np.min(ratio))
    n_steps = max(1, int(math.ceil(math.log(lo) / math.log(compression_factor) - 1e-9))) if lo < 0.999 else 1
    soft_stats: dict = {}
    for k in range(1, n_steps + 1):
        f = ratio ** (k / n_steps)
        prev = ratio ** ((k - 1) / n_steps)
        cur_box = start * f
        if layer:
            pos[:, 2] *= f[2] / prev[2]
            ctx.setParameter("zhi", float(cur_box[2]) - WALL_MARGIN_NM)
        else:
            pos *= f / prev
        ctx.setPeriodicBoxVectors(*_vectors(box_for(cur_box)))
        ctx.setPositions(pos * unit.nanometer)
        ctx.setParameter("lam", SOFT_LAMBDA_START + (SOFT_LAMBDA_END - SOFT_LAMBDA_START) * k / n_steps)
        openmm.LocalEnergyMinimizer.minimize(ctx, 1e-3, soft_iterations, _StopAtForce(soft_max_force, soft_stats))
        pos = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    del ctx
    topology.setPeriodicBoxVectors(_vectors(box_for(final)))
    full = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)
    full.setPeriodicBoxVectors(*_vectors(box_for(final)))
    full.setPositions(pos * unit.nanometer)
    final_stats: dict = {}
    openmm.LocalEnergyMinimizer.minimize(full, 1e-3, final_iterations, _StopAtForce(final_max_force, final_stats, (0.0, float(final[2])) if layer else None))
    state = full.getState(getPositions=True, getForces=True)
    out = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    if stats is not None:
        forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
        stats.update({"compression_steps": n_steps, "soft_iterations": soft_stats.get("iterations", 0),
                      "final_iterations": final_stats.get("iterations", 0),
                      "final_max_force_kj_per_mol_nm": round(float(np.max(np.abs(forces))), 1)})
    return np.asarray(out, dtype=float)


def _vectors(b):
    import openmm
    from openmm import unit

    return (openmm.Vec3(float(b[0]), 0, 0), openmm.Vec3(0, float(b[1]), 0), openmm.Vec3(0, 0, float(b[2]))) * unit.nanometer
