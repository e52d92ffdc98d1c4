"""Build an :class:`openmm.System` for any topology of the aseimd family."""

from __future__ import annotations

import numpy as np

from aseimd.errors import ForceFieldError
from aseimd.forcefield.charges import add_full_charge_pairs, atom_charge_scales, full_charge_groups, scale_charges
from aseimd.forcefield.groups import assign_force_groups
from aseimd.forcefield.loader import load_forcefield, residue_templates
from aseimd.forcefield.metal import apply_frozen_metal, default_long_range_correction, set_lj_long_range_correction
from aseimd.forcefield.mixing import keep_lj_of_new_exceptions, use_geometric_lj
from aseimd.forcefield.neutrality import check_neutrality

CONSTRAINTS = ("None", "HBonds", "AllBonds", "HAngles")


def create_system(topology, *, charge_scale: float = 0.8, cutoff_nm: float = 1.0,
                  constraints: str | None = "HBonds", switch_distance_nm: float | None = None,
                  ewald_error_tolerance: float = 5e-4, forcefield=None,
                  lj_long_range_correction: bool | None = None):
    """Parametrise ``topology`` with the shipped OPLS-AA / CL&P family.

    Parameters
    ----------
    topology : openmm.app.Topology
        Residues named as in :mod:`aseimd.species`.  With periodic box vectors
        the system uses PME and an LJ cutoff with long-range correction;
        without, no cutoff.
    charge_scale : float
        Factor on the charges of ionic atoms between molecules; the electrostatics
        inside an ion stay at full charge (see :mod:`aseimd.forcefield.charges`).
    cutoff_nm : float
        Real-space cutoff in nm (periodic systems), at most half the shortest box edge.
    constraints : {"HBonds", "AllBonds", "HAngles", "None", None}
        Bond constraints.
    switch_distance_nm : float or None
        LJ switching start in nm (periodic systems), below ``cutoff_nm``.
    ewald_error_tolerance : float
        PME accuracy.
    forcefield : openmm.app.ForceField, optional
        Defaults to :func:`load_forcefield`.
    lj_long_range_correction : bool or None
        Isotropic LJ long-range (dispersion) correction (periodic systems). None:
        on for homogeneous cells, off when the topology holds a Li metal slab
        (:func:`aseimd.forcefield.metal.default_long_range_correction`).
        Metal atoms are always made a frozen slab (:mod:`aseimd.forcefield.metal`).

    Returns
    -------
    openmm.System
        Force groups as in :data:`aseimd.forcefield.groups.FORCE_GROUPS`.  In a
        periodic system every bonded force (and the 1-4 exceptions) uses the
        minimum image, so molecules may cross the box (polymer chains do).

    Raises
    ------
    ForceFieldError
        Unknown residue (no template), bad option value, a residue whose net charge
        is not an integer within 1e-6 e, or a periodic box with a net charge
        (:mod:`aseimd.forcefield.neutrality`).
    """
    from openmm import NonbondedForce, app, unit

    const_key = "None" if constraints is None else str(constraints)
    if const_key not in CONSTRAINTS:
        raise ForceFieldError(f"constraints {constraints!r} not allowed; allowed: {', '.join(CONSTRAINTS)}")
    const = {"None": None, "HBonds": app.HBonds, "AllBonds": app.AllBonds, "HAngles": app.HAngles}[const_key]
    ff = load_forcefield() if forcefield is None else forcefield

    unmatched = ff.getUnmatchedResidues(topology)
    if unmatched:
        names = sorted({r.name for r in unmatched})
        known = ", ".join(sorted(residue_templates()))
        raise ForceFieldError(
            f"no force-field template for residue {', '.join(repr(n) for n in names)} "
            f"(or its atoms/bonds differ from the template); templates: {known}"
        )

    box = topology.getPeriodicBoxVectors()
    periodic = box is not None
    kwargs = {"constraints": const, "rigidWater": False, "removeCMMotion": True}
    if periodic:
        edges = [np.linalg.norm(v.value_in_unit(unit.nanometer)) for v in box]
        if not (0.0 < cutoff_nm <= 0.5 * min(edges)):
            raise ForceFieldError(
                f"cutoff_nm {cutoff_nm!r} not allowed for box edges {[round(e, 3) for e in edges]} nm; "
                f"allowed: 0 < cutoff_nm <= {0.5 * min(edges):.3f} (half the shortest edge)"
            )
        if switch_distance_nm is not None and not (0.0 < switch_distance_nm < cutoff_nm):
            raise ForceFieldError(
                f"switch_distance_nm {switch_distance_nm!r} not allowed; allowed: 0 < switch < cutoff_nm={cutoff_nm}"
            )
        if not (0.0 < ewald_error_tolerance < 0.1):
            raise ForceFieldError(f"ewald_error_tolerance {ewald_error_tolerance!r} not allowed; allowed: 0 < tol < 0.1")
        kwargs.update(nonbondedMethod=app.PME, nonbondedCutoff=cutoff_nm * unit.nanometer,
                      ewaldErrorTolerance=ewald_error_tolerance)
    else:
        kwargs.update(nonbondedMethod=app.NoCutoff)

    scales = atom_charge_scales(topology, charge_scale)  # validates charge_scale before the expensive part
    system = ff.createSystem(topology, **kwargs)
    nonbonded = next(f for f in system.getForces() if isinstance(f, NonbondedForce))
    charges_e = np.array([nonbonded.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                          for i in range(nonbonded.getNumParticles())])
    check_neutrality(topology, charges_e, periodic=periodic)
    groups = full_charge_groups(topology, scales)
    scale_charges(nonbonded, scales, groups)
    use_geometric_lj(system, nonbonded, periodic=periodic, cutoff_nm=cutoff_nm,
                     switch_distance_nm=switch_distance_nm if periodic else None)
    n_exceptions = nonbonded.getNumExceptions()
    add_full_charge_pairs(nonbonded, groups, charges_e)  # after the LJ move: full charge, no LJ in them
    keep_lj_of_new_exceptions(system, nonbonded, n_exceptions)  # their LJ as bonds: CPU/GPU need equal exclusions
    apply_frozen_metal(system, topology)
    if periodic:
        lrc = default_long_range_correction(topology) if lj_long_range_correction is None \
            else bool(lj_long_range_correction)
        set_lj_long_range_correction(system, lrc)
        _bonded_forces_periodic(system, nonbonded)
    assign_force_groups(system)
    return system


def _bonded_forces_periodic(system, nonbonded) -> None:
    """Bonded terms and 1-4 exceptions use the minimum image (polymer chains cross the box)."""
    import openmm

    bonded = (openmm.HarmonicBondForce, openmm.HarmonicAngleForce, openmm.PeriodicTorsionForce,
              openmm.RBTorsionForce, openmm.CustomBondForce, openmm.CustomAngleForce,
              openmm.CustomTorsionForce, openmm.CustomCompoundBondForce, openmm.CMAPTorsionForce)
    for force in system.getForces():
        if isinstance(force, bonded):
            force.setUsesPeriodicBoundaryConditions(True)
    nonbonded.setExceptionsUsePeriodicBoundaryConditions(True)
