"""Force groups of every System made by :func:`aseimd.forcefield.create_system`.

Energies per group come from ``context.getState(getEnergy=True, groups={g})``.

====  ==========  ===========================================================
group name        forces
====  ==========  ===========================================================
0     bonds       HarmonicBondForce
1     angles      HarmonicAngleForce, CustomAngleForce (PF6- cis/trans wells)
2     torsions    PeriodicTorsionForce (proper and improper)
3     coulomb     NonbondedForce: charges (PME direct + reciprocal, or no
                  cutoff), scaled 1-4 electrostatics; no LJ left in it
4     lj          CustomNonbondedForce (geometric LJ, cutoff, long-range
                  correction) and CustomBondForce (scaled 1-4 LJ)
5     other       CMMotionRemover and anything not listed above
====  ==========  ===========================================================
"""

FORCE_GROUPS: dict[str, int] = {
    "bonds": 0,
    "angles": 1,
    "torsions": 2,
    "coulomb": 3,
    "lj": 4,
    "other": 5,
}

_BY_CLASS = {
    "HarmonicBondForce": "bonds",
    "HarmonicAngleForce": "angles",
    "CustomAngleForce": "angles",
    "PeriodicTorsionForce": "torsions",
    "RBTorsionForce": "torsions",
    "NonbondedForce": "coulomb",
    "CustomNonbondedForce": "lj",
}


def assign_force_groups(system) -> None:
    """Put each force of ``system`` in its group of :data:`FORCE_GROUPS` (in place).

    The 1-4 LJ ``CustomBondForce`` is recognised by its name ``"LJ14"`` (and the switched ion pairs by
    ``"LJ_ION_PAIRS"``).
    """
    for force in system.getForces():
        cls = type(force).__name__
        if force.getName() in ("LJ14", "LJ_ION_PAIRS"):  # mixing.SWITCHED_ION_PAIRS
            key = "lj"
        else:
            key = _BY_CLASS.get(cls, "other")
        force.setForceGroup(FORCE_GROUPS[key])
