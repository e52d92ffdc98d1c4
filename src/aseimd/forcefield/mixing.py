"""Geometric (OPLS / CL&P) Lennard-Jones mixing in OpenMM.

OpenMM's NonbondedForce combines sigma arithmetically (Lorentz-Berthelot).
OPLS-AA and CL&P use ``sigma_ij = sqrt(sigma_i sigma_j)`` and
``eps_ij = sqrt(eps_i eps_j)``.  :func:`use_geometric_lj` therefore moves all LJ
out of the NonbondedForce (which keeps charges, PME and the scaled 1-4
electrostatics):

* a CustomNonbondedForce with the geometric rule (per-particle parameters
  ``rsig = sqrt(sigma)`` in nm^0.5 and ``reps = sqrt(epsilon)`` in (kJ/mol)^0.5), the same cutoff, the
  long-range dispersion correction (periodic systems) and optional switching,
  excluding every pair the NonbondedForce has an exception for;
* a CustomBondForce named ``"LJ14"`` with the 1-4 pairs,
  ``sigma14 = sqrt(sigma_i sigma_j)``, ``eps14 = f * sqrt(eps_i eps_j)`` where
  ``f`` (0.5 for this family) is taken from the NonbondedForce exception
  OpenMM built from the XML ``lj14scale``.
"""

from __future__ import annotations

import math

LJ_ENERGY = "4*eps*((sig/r)^12 - (sig/r)^6)"
#: Name of the CustomBondForce holding the full-charge ion pairs' LJ when "LJ" is switched (force group lj).
SWITCHED_ION_PAIRS = "LJ_ION_PAIRS"


def use_geometric_lj(system, nonbonded, *, periodic: bool, cutoff_nm: float,
                     switch_distance_nm: float | None = None) -> tuple:
    """Replace the LJ part of ``nonbonded`` by geometric-rule custom forces (in place).

    Parameters
    ----------
    system : openmm.System
    nonbonded : openmm.NonbondedForce
        The system's NonbondedForce, charges already final.
    periodic : bool
        Cutoff with periodic boundaries and long-range correction if true, no cutoff otherwise.
    cutoff_nm : float
        LJ cutoff in nm (periodic only).
    switch_distance_nm : float or None
        Start of the LJ switching function in nm; None for a plain cutoff.

    Returns
    -------
    (openmm.CustomNonbondedForce, openmm.CustomBondForce)
        The two forces added to ``system``.
    """
    import openmm

    # per-particle sqrt(sigma), sqrt(epsilon): the geometric rule becomes two products per pair
    lj = openmm.CustomNonbondedForce(LJ_ENERGY + "; sig=rsig1*rsig2; eps=reps1*reps2")
    lj.setName("LJ")
    lj.addPerParticleParameter("rsig")
    lj.addPerParticleParameter("reps")
    params = []
    for i in range(nonbonded.getNumParticles()):
        q, sig, eps = nonbonded.getParticleParameters(i)
        sig_nm = sig.value_in_unit(openmm.unit.nanometer)
        eps_kj = eps.value_in_unit(openmm.unit.kilojoule_per_mole)
        params.append((sig_nm, eps_kj))
        lj.addParticle([math.sqrt(sig_nm), math.sqrt(eps_kj)])
        nonbonded.setParticleParameters(i, q, 1.0, 0.0)

    lj14 = openmm.CustomBondForce(LJ_ENERGY)
    lj14.setName("LJ14")
    lj14.addPerBondParameter("sig")
    lj14.addPerBondParameter("eps")
    for k in range(nonbonded.getNumExceptions()):
        i, j, qq, sig, eps = nonbonded.getExceptionParameters(k)
        lj.addExclusion(i, j)
        eps_exc = eps.value_in_unit(openmm.unit.kilojoule_per_mole)
        if eps_exc != 0.0:
            (si, ei), (sj, ej) = params[i], params[j]
            eps_geo = math.sqrt(ei * ej)
            scale14 = eps_exc / eps_geo  # lj14scale of the XML, recovered exactly
            lj14.addBond(i, j, [math.sqrt(si * sj), scale14 * eps_geo])
        nonbonded.setExceptionParameters(k, i, j, qq, 1.0, 0.0)

    if periodic:
        lj.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
        lj.setCutoffDistance(cutoff_nm)
        lj.setUseLongRangeCorrection(True)
        if switch_distance_nm is not None:
            lj.setUseSwitchingFunction(True)
            lj.setSwitchingDistance(switch_distance_nm)
    else:
        lj.setNonbondedMethod(openmm.CustomNonbondedForce.NoCutoff)
    nonbonded.setUseDispersionCorrection(False)
    nonbonded.setUseSwitchingFunction(False)
    system.addForce(lj)
    system.addForce(lj14)
    return lj, lj14


def keep_lj_of_new_exceptions(system, nonbonded, first: int) -> int:
    """Exclude exceptions ``first..`` of ``nonbonded`` from the LJ force too, their full LJ kept as bonds (in place).

    Exceptions added to ``nonbonded`` after :func:`use_geometric_lj` (the full-charge
    1-5+ pairs inside a scaled ion, :func:`aseimd.forcefield.charges.add_full_charge_pairs`)
    are not excluded from the ``"LJ"`` CustomNonbondedForce. The Reference platform
    accepts that, but the CPU, CUDA and OpenCL platforms require every nonbonded force
    to exclude the same pairs ("All Forces must have identical exclusions"). Each such
    pair is therefore excluded from ``"LJ"`` and gets its unscaled geometric LJ,
    ``sqrt(sigma_i sigma_j)``, ``sqrt(eps_i eps_j)``, in the ``"LJ14"`` CustomBondForce, or,
    when ``"LJ"`` uses a switching function, in a CustomBondForce :data:`SWITCHED_ION_PAIRS`
    with the same switch: the energy is unchanged as long as the pair stays within the
    cut-off (pairs of one ion are, by far), and the long-range correction does not see
    exclusions.

    Parameters
    ----------
    system : openmm.System
        With the forces of :func:`use_geometric_lj`.
    nonbonded : openmm.NonbondedForce
    first : int
        Number of exceptions ``nonbonded`` had before the new ones were added.

    Returns
    -------
    int
        Pairs moved.
    """
    import openmm

    if nonbonded.getNumExceptions() <= first:
        return 0
    lj = next(f for f in system.getForces() if isinstance(f, openmm.CustomNonbondedForce) and f.getName() == "LJ")
    lj14 = next(f for f in system.getForces() if isinstance(f, openmm.CustomBondForce) and f.getName() == "LJ14")
    target = lj14
    if lj.getUseSwitchingFunction():  # the pairs keep the switch they had in "LJ" (a plain bond has none)
        rs, rc = lj.getSwitchingDistance(), lj.getCutoffDistance()
        rs = rs.value_in_unit(openmm.unit.nanometer) if hasattr(rs, "value_in_unit") else float(rs)
        rc = rc.value_in_unit(openmm.unit.nanometer) if hasattr(rc, "value_in_unit") else float(rc)
        target = openmm.CustomBondForce(
            f"{LJ_ENERGY}*sw; sw=select(step(r-{rc!r}), 0, select(step(r-{rs!r}), 1-6*x^5+15*x^4-10*x^3, 1)); "
            f"x=(r-{rs!r})/{rc - rs!r}")
        target.setName(SWITCHED_ION_PAIRS)
        target.addPerBondParameter("sig")
        target.addPerBondParameter("eps")
        target.setUsesPeriodicBoundaryConditions(lj14.usesPeriodicBoundaryConditions())
    moved = 0
    for k in range(first, nonbonded.getNumExceptions()):
        i, j = nonbonded.getExceptionParameters(k)[:2]
        (rsi, rei), (rsj, rej) = lj.getParticleParameters(i), lj.getParticleParameters(j)
        lj.addExclusion(i, j)
        if rei * rej != 0.0:
            target.addBond(i, j, [rsi * rsj, rei * rej])
        moved += 1
    if target is not lj14 and target.getNumBonds():
        system.addForce(target)
    return moved
