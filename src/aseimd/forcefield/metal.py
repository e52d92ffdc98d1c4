"""The frozen Li-metal slab model, applied to a System after the rest of the force field.

Atoms of residues whose species has kind ``"metal"`` (``LIM``, see ``aseimd species``)
are a frozen BCC slab:

* **zero mass**: integrators, the minimiser and the velocity initialiser leave
  them where they are (OpenMM does not move massless particles);
* **zero charge** (template charge 0; checked here);
* **no slab-slab interactions**: the geometric-LJ ``CustomNonbondedForce``
  named ``"LJ"`` (:mod:`aseimd.forcefield.mixing`) gets a per-particle flag
  ``metal`` and its energy is multiplied by ``(1 - metal1*metal2)``, so a
  metal-metal pair contributes exactly zero energy and force while metal-other
  pairs keep the full geometric-rule LJ (UFF Li, ``forcefields/li_metal.xml``);
* **one rigid molecule**: a ``HarmonicBondForce`` named ``"MetalTies"`` with
  force constant 0 chains the slab atoms together. It adds no energy or force;
  it makes OpenMM (``Context.getMolecules``) treat the slab as one molecule, so
  a Monte Carlo barostat with ``scaleMoleculesAsRigid`` (the default) moves the
  slab's centroid only and the lattice stays perfect. The runner's switch to
  the NPT mean volume (:func:`aseimd.simulate.prepare.scale_molecules`) moves
  molecules rigidly the same way.

The isotropic LJ long-range (dispersion) correction assumes a homogeneous
fluid; across a slab it is wrong, so :func:`default_long_range_correction`
turns it off for any topology that contains metal atoms (interface cells use a
longer cut-off instead; see docs/interface.md).

Residue templates are matched by residue name first (:func:`residue_name_matcher`):
the Li metal atom (``LIM``) and the Li+ ion (``LI``) are both a single Li atom
with no bonds, which OpenMM's graph matching alone cannot tell apart.
"""

from __future__ import annotations

import numpy as np

from aseimd.errors import ForceFieldError
from aseimd.species import all_species

#: Name of the zero-force bond force that ties the slab into one molecule.
TIES_FORCE_NAME = "MetalTies"
#: Name of the per-particle flag added to the LJ force.
METAL_FLAG = "metal"


def metal_residue_names() -> frozenset[str]:
    """PDB residue names of every species of kind ``"metal"``."""
    return frozenset(sp.residue for sp in all_species() if sp.kind == "metal")


def metal_atom_indices(topology) -> np.ndarray:
    """Indices of the atoms in metal residues.

    Parameters
    ----------
    topology : openmm.app.Topology

    Returns
    -------
    numpy.ndarray, shape=(n_metal,), dtype=int
        In topology order.
    """
    names = metal_residue_names()
    return np.array([a.index for res in topology.residues() if res.name in names for a in res.atoms()],
                    dtype=int)


def default_long_range_correction(topology) -> bool:
    """Default of the isotropic LJ long-range correction: off for cells with a metal slab, on otherwise."""
    return metal_atom_indices(topology).size == 0


def residue_name_matcher(forcefield, residue, bondedToAtom, ignoreExternalBonds, ignoreExtraParticles):
    """OpenMM template matcher: the template named like the residue, if it matches (else None).

    Registered with ``ForceField.registerTemplateMatcher`` by
    :func:`aseimd.forcefield.load_forcefield`. Residue names are aseimd's
    contract (``aseimd species``), so the named template is the intended one;
    a residue whose atoms do not match it falls back to OpenMM's graph matching.
    """
    from openmm.app.internal import compiled

    template = forcefield._templates.get(residue.name)
    if template is None:
        return None
    match = compiled.matchResidueToTemplate(residue, template, bondedToAtom, ignoreExternalBonds,
                                            ignoreExtraParticles)
    return template if match is not None else None


def _lj_force(system):
    import openmm

    for force in system.getForces():
        if isinstance(force, openmm.CustomNonbondedForce) and force.getName() == "LJ":
            return force
    raise ForceFieldError("no CustomNonbondedForce named 'LJ' in the system; "
                          "apply the metal model after aseimd.forcefield.mixing.use_geometric_lj")


def set_lj_long_range_correction(system, enabled: bool) -> None:
    """Switch the isotropic LJ long-range correction of the ``"LJ"`` force on or off (in place)."""
    _lj_force(system).setUseLongRangeCorrection(bool(enabled))


def apply_frozen_metal(system, topology) -> int:
    """Make the metal atoms of ``topology`` a frozen, rigid, non-self-interacting slab (in place).

    Parameters
    ----------
    system : openmm.System
        From :func:`aseimd.forcefield.create_system` (LJ already in the ``"LJ"``
        custom force).
    topology : openmm.app.Topology

    Returns
    -------
    int
        Number of metal atoms (0: the system is left unchanged).

    Raises
    ------
    ForceFieldError
        A metal atom carries a charge.
    """
    import openmm

    idx = metal_atom_indices(topology)
    if idx.size == 0:
        return 0
    nonbonded = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    for i in idx:
        q = nonbonded.getParticleParameters(int(i))[0].value_in_unit(openmm.unit.elementary_charge)
        if q != 0.0:
            raise ForceFieldError(f"metal atom {int(i)} has charge {q} e; the frozen Li slab must be neutral (0 e)")
        system.setParticleMass(int(i), 0.0)

    lj = _lj_force(system)
    energy, sep, definitions = lj.getEnergyFunction().partition(";")
    lj.setEnergyFunction(f"(1-{METAL_FLAG}1*{METAL_FLAG}2)*({energy}){sep}{definitions}")
    lj.addPerParticleParameter(METAL_FLAG)
    flag = np.zeros(system.getNumParticles())
    flag[idx] = 1.0
    for i in range(lj.getNumParticles()):
        lj.setParticleParameters(i, [*lj.getParticleParameters(i), float(flag[i])])

    ties = openmm.HarmonicBondForce()
    ties.setName(TIES_FORCE_NAME)
    for a, b in zip(idx[:-1], idx[1:]):
        ties.addBond(int(a), int(b), 0.0, 0.0)
    system.addForce(ties)
    return int(idx.size)
