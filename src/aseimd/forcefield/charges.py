"""Ion charge scaling (electronic-continuum-style scaled charges, default 0.8).

Which atoms are scaled is decided per residue from the species table:

* residues of kind ``cation`` or ``anion`` (Li+, PF6-, TFSI-, FSI-): every atom;
* any other residue whose species lists ``ionic_atoms`` (e.g. the sulfonate group
  of a future Li-Nafion repeat unit): just those atoms;
* everything else (solvents, neutral polymers, Li metal): unscaled.

The scaling stands in for electronic polarisation of the *surroundings*, so it
acts between molecules only.  The torsions of CL&P ions were fitted with their
intramolecular 1-4 and 1-5+ Coulomb at full charge, and scaling those too
changes the conformer order (TFSI-: trans/gauche).  Therefore:

* particle charges are ``s_i q_i`` (every pair between different residues, and
  PME reciprocal space, sees scaled charges);
* pairs of two scaled atoms **in the same residue** keep their full
  ``q_i q_j``: their 1-4 exception keeps ``0.5 q_i q_j`` and every 1-5+ pair gets
  a ``NonbondedForce`` exception with ``chargeProd = q_i q_j``.  OpenMM computes
  an exception as plain Coulomb in direct space and removes the reciprocal-space
  part of that pair, so the pair energy is exactly ``q_i q_j / (4 pi eps0 r)``;
* other exceptions (a scaled atom with an unscaled one) scale by ``s_i s_j``.

A lone ion in vacuum therefore has the same energy at every charge scale.
"""

from __future__ import annotations

import itertools

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


def full_charge_groups(topology, scales: np.ndarray) -> list[list[int]]:
    """Atoms whose mutual electrostatics stay at full charge: the scaled atoms of each residue.

    Parameters
    ----------
    topology : openmm.app.Topology
    scales : numpy.ndarray, shape=(n_atoms,)
        From :func:`atom_charge_scales`.

    Returns
    -------
    list of list of int
        One list of atom indices per residue with at least two scaled atoms.
    """
    groups = []
    for residue in topology.residues():
        idx = [a.index for a in residue.atoms() if scales[a.index] != 1.0]
        if len(idx) > 1:
            groups.append(idx)
    return groups


def scale_charges(nonbonded, scales: np.ndarray, groups: list[list[int]] = ()) -> None:
    """Multiply charges of a NonbondedForce by per-atom ``scales`` (in place).

    Exceptions between two atoms of one group of ``groups`` keep their full charge
    product; every other exception is multiplied by ``s_i * s_j``.

    Parameters
    ----------
    nonbonded : openmm.NonbondedForce
    scales : numpy.ndarray, shape=(n_particles,)
    groups : list of list of int
        From :func:`full_charge_groups`.
    """
    if np.all(scales == 1.0):
        return
    group_of = {i: g for g, idx in enumerate(groups) for i in idx}
    for i in range(nonbonded.getNumParticles()):
        if scales[i] != 1.0:
            q, sig, eps = nonbonded.getParticleParameters(i)
            nonbonded.setParticleParameters(i, q * scales[i], sig, eps)
    for k in range(nonbonded.getNumExceptions()):
        i, j, qq, sig, eps = nonbonded.getExceptionParameters(k)
        if i in group_of and group_of[i] == group_of.get(j):
            continue
        f = scales[i] * scales[j]
        if f != 1.0:
            nonbonded.setExceptionParameters(k, i, j, qq * f, sig, eps)


def add_full_charge_pairs(nonbonded, groups: list[list[int]], charges_e: np.ndarray) -> int:
    """Give every pair of a group that has no exception yet one with its full charge product (in place).

    Call this after the LJ has been moved out of ``nonbonded`` (the new exceptions
    carry no LJ, ``sigma = 1``, ``epsilon = 0``); then
    :func:`aseimd.forcefield.mixing.keep_lj_of_new_exceptions` excludes the pairs from the
    CustomNonbondedForce too and carries their LJ as bonds.

    Parameters
    ----------
    nonbonded : openmm.NonbondedForce
    groups : list of list of int
        From :func:`full_charge_groups`.
    charges_e : numpy.ndarray, shape=(n_particles,)
        Unscaled charges in e.

    Returns
    -------
    int
        Number of exceptions added.
    """
    if not groups:
        return 0
    existing = set()
    for k in range(nonbonded.getNumExceptions()):
        i, j = nonbonded.getExceptionParameters(k)[:2]
        existing.add((min(i, j), max(i, j)))
    added = 0
    for idx in groups:
        for i, j in itertools.combinations(sorted(idx), 2):
            if (i, j) not in existing:
                nonbonded.addException(i, j, float(charges_e[i] * charges_e[j]), 1.0, 0.0)
                added += 1
    return added
