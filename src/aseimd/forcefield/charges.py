"""Ion charge scaling (electronic-continuum-style scaled charges, default 0.8).

Which atoms are scaled is decided per residue from the species table:

* residues of kind ``cation`` or ``anion`` (Li+, PF6-, TFSI-, FSI-): every atom;
* any other residue whose species lists ``ionic_atoms`` (e.g. the sulfonate group
  of a future Li-Nafion repeat unit): just those atoms;
* everything else (solvents, neutral polymers, Li metal): unscaled.

Scaling multiplies particle charges by ``s_i`` and every exception charge
product by ``s_i * s_j`` (so 1-4 pairs inside an ion scale by ``s**2``).
"""

from __future__ import annotations

import numpy as np

from aseimd.errors import ForceFieldError
from aseimd.species import species_for_residue


def atom_charge_scales(topology, charge_scale: float) -> np.ndarray:
    """Per-atom charge scale factors.

    Parameters
    ----------
    topology : openmm.app.Topology
    charge_scale : float
        Factor applied to ionic atoms, 0 < charge_scale <= 1.

    Returns
    -------
    numpy.ndarray, shape=(n_atoms,), dtype=float
        ``charge_scale`` for ionic atoms, 1.0 elsewhere.
    """
    if not (0.0 < charge_scale <= 1.0):
        raise ForceFieldError(f"charge_scale {charge_scale!r} out of range; allowed: 0 < charge_scale <= 1")
    scales = np.ones(topology.getNumAtoms())
    for residue in topology.residues():
        sp = species_for_residue(residue.name)
        if sp is None:
            continue
        for atom in residue.atoms():
            if sp.kind in ("cation", "anion") or atom.name in sp.ionic_atoms:
                scales[atom.index] = charge_scale
    return scales


def scale_charges(nonbonded, scales: np.ndarray) -> None:
    """Multiply charges of a NonbondedForce by per-atom ``scales`` (in place).

    Parameters
    ----------
    nonbonded : openmm.NonbondedForce
    scales : numpy.ndarray, shape=(n_particles,)
    """
    if np.all(scales == 1.0):
        return
    for i in range(nonbonded.getNumParticles()):
        if scales[i] != 1.0:
            q, sig, eps = nonbonded.getParticleParameters(i)
            nonbonded.setParticleParameters(i, q * scales[i], sig, eps)
    for k in range(nonbonded.getNumExceptions()):
        i, j, qq, sig, eps = nonbonded.getExceptionParameters(k)
        f = scales[i] * scales[j]
        if f != 1.0:
            nonbonded.setExceptionParameters(k, i, j, qq * f, sig, eps)
