"""Relax a freshly grown cell: soft-core start, compression to the target size, full minimisation.

Grown chains (and inserted ions) sit in an expanded box or a thicker layer, so
nothing overlaps badly; but the force field's r^-12 wall would still turn the
closest contacts into enormous forces.  The relaxation therefore

1. minimises with every bonded term of the real force field and a *soft-core*
   Lennard-Jones (finite at r = 0, no charges), while the box (bulk) or the
   layer (z only) is shrunk to its target in steps of at most 10 % with a
   minimisation after each, the soft-core strength ramped up as it goes;
2. minimises with the full force field (PME, geometric LJ).

Bonded forces use periodic boundary conditions (chains cross the box).  In a
layer, flat-bottom walls keep every atom in ``[0, thickness]`` and the z edge of
the relaxation box is padded so that the layer does not meet its own image.
This module uses OpenMM directly (it does not run a protocol).
"""

from __future__ import annotations

import math

import numpy as np

#: Soft-core LJ (Beutler et al. form) with strength ``lam``; finite at r = 0 for lam < 1.
SOFT_LJ = ("4*eps*lam*(1/(alpha*(1-lam)+x)^2 - 1/(alpha*(1-lam)+x)); x=(r/sig)^6; "
           "sig=rsig1*rsig2; eps=reps1*reps2")
WALL_K_KJ_PER_NM2 = 2.0e4
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


def _soft_system(system, periodic_z_pad: bool):
    """Copy of ``system`` with charges and LJ replaced by soft-core LJ (global ``lam``)."""
    import openmm

    soft = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    lj = next(f for f in system.getForces() if isinstance(f, openmm.CustomNonbondedForce) and f.getName() == "LJ")
    for k in reversed(range(soft.getNumForces())):
        f = soft.getForce(k)
        if isinstance(f, (openmm.NonbondedForce, openmm.CMMotionRemover)) or (
                isinstance(f, openmm.CustomNonbondedForce) and f.getName() == "LJ"):
            soft.removeForce(k)
    sc = openmm.CustomNonbondedForce(SOFT_LJ)
    sc.setName("softLJ")
    sc.addGlobalParameter("lam", 0.3)
    sc.addGlobalParameter("alpha", 0.5)
    sc.addPerParticleParameter("rsig")
    sc.addPerParticleParameter("reps")
    for i in range(lj.getNumParticles()):
        sc.addParticle(lj.getParticleParameters(i))
    for k in range(lj.getNumExclusions()):
        sc.addExclusion(*lj.getExclusionParticles(k))
    sc.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    sc.setCutoffDistance(min(0.9, lj.getCutoffDistance().value_in_unit(openmm.unit.nanometer)))
    soft.addForce(sc)
    return soft


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


def relax_cell(topology, positions_nm: np.ndarray, *, start_box_nm, final_box_nm, layer: bool,
               cutoff_nm: float = 0.9, soft_iterations: int = 60, final_iterations: int = 300) -> np.ndarray:
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
        Non-bonded cutoff of the relaxation, nm (reduced to fit small boxes).
    soft_iterations, final_iterations : int
        Minimiser iterations per compression step and for the final minimisation.

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
    soft = _soft_system(system, layer)
    if layer:
        _add_walls(soft, float(start[2]))
        _add_walls(system, float(final[2]))
    platform = _platform()
    ctx = openmm.Context(soft, openmm.VerletIntegrator(0.001), platform)
    pos = np.array(positions_nm, dtype=float)
    ratio = final / start
    n_steps = max(1, int(math.ceil(math.log(float(np.min(ratio))) / math.log(0.9)))) if np.any(ratio < 0.999) else 1
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
        ctx.setParameter("lam", 0.3 + 0.6 * k / n_steps)
        openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, soft_iterations)
        pos = ctx.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    del ctx
    topology.setPeriodicBoxVectors(_vectors(box_for(final)))
    full = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)
    full.setPeriodicBoxVectors(*_vectors(box_for(final)))
    full.setPositions(pos * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(full, 10.0, final_iterations)
    out = full.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return np.asarray(out, dtype=float)


def _vectors(b):
    import openmm
    from openmm import unit

    return (openmm.Vec3(float(b[0]), 0, 0), openmm.Vec3(0, float(b[1]), 0), openmm.Vec3(0, 0, float(b[2]))) * unit.nanometer
