"""Parameter coverage: every bond, angle and proper torsion of a topology has a term in its System.

OpenMM's ``ForceField.createSystem`` raises for a residue without a template,
but a bonded term whose atom classes match no line of the XML is skipped
silently (for torsions this is by design: "no torsion" is a legal OPLS
choice, but it must be written as an explicit zero term in this family).
:func:`missing_terms` walks the bond graph of the topology and lists every
bond, angle and proper torsion that no force of the System covers.

A bond counts as covered by a ``HarmonicBondForce`` / ``CustomBondForce`` term
(the 1-4 LJ pair force ``"LJ14"`` excluded) or a constraint; an angle by a
``HarmonicAngleForce`` / ``CustomAngleForce`` term or a constraint between its
end atoms (``HAngles``); a proper torsion i-j-k-l by a ``PeriodicTorsionForce``,
``RBTorsionForce`` or ``CustomTorsionForce`` term on those four atoms in either
direction (an explicit zero term counts: it is a decision, not an omission).
"""

from __future__ import annotations

from collections import defaultdict


def _graph_terms(topology):
    """Bonds, angles and proper torsions of the bond graph, as atom-index tuples."""
    nbr: dict[int, set[int]] = defaultdict(set)
    bonds = []
    for b in topology.bonds():
        i, j = b[0].index, b[1].index
        bonds.append((i, j))
        nbr[i].add(j)
        nbr[j].add(i)
    angles = [(i, j, k) for j in nbr for i in nbr[j] for k in nbr[j] if i < k]
    torsions = []
    for j, k in bonds:
        for i in nbr[j] - {k}:
            for m in nbr[k] - {j}:
                if i != m:
                    torsions.append((i, j, k, m))
    return bonds, angles, torsions


def _system_terms(system):
    """Atom tuples that the System's bonded forces and constraints cover (each in canonical order)."""
    import openmm

    bonds, angles, torsions = set(), set(), set()
    for c in range(system.getNumConstraints()):
        i, j, _ = system.getConstraintParameters(c)
        bonds.add((min(i, j), max(i, j)))  # a constraint covers a bond or, with HAngles, an angle's ends
    for force in system.getForces():
        if isinstance(force, openmm.HarmonicBondForce):
            for n in range(force.getNumBonds()):
                i, j = force.getBondParameters(n)[:2]
                bonds.add((min(i, j), max(i, j)))
        elif isinstance(force, openmm.CustomBondForce) and force.getName() != "LJ14":
            for n in range(force.getNumBonds()):
                i, j = force.getBondParameters(n)[:2]
                bonds.add((min(i, j), max(i, j)))
        elif isinstance(force, (openmm.HarmonicAngleForce, openmm.CustomAngleForce)):
            for n in range(force.getNumAngles()):
                i, j, k = force.getAngleParameters(n)[:3]
                angles.add((min(i, k), j, max(i, k)))
        elif isinstance(force, (openmm.PeriodicTorsionForce, openmm.RBTorsionForce, openmm.CustomTorsionForce)):
            for n in range(force.getNumTorsions()):
                t = tuple(force.getTorsionParameters(n)[:4])
                torsions.add(min(t, t[::-1]))
    return bonds, angles, torsions


def missing_terms(topology, system) -> list[str]:
    """Bonded terms of the topology graph that ``system`` does not parametrise.

    Parameters
    ----------
    topology : openmm.app.Topology
        Its bonds define the graph (bonds between residues included).
    system : openmm.System
        Made from ``topology`` (atoms in the same order).

    Returns
    -------
    list of str
        One line per missing term type, e.g. ``"torsion EC:O1-C1-O2-C2"``
        (atoms as ``RESIDUE:ATOM``; identical terms of copies of a molecule are
        listed once), sorted; empty when every bond, angle and proper torsion is
        covered.

    Examples
    --------
    >>> from aseimd.build.molecule import molecule                  # doctest: +SKIP
    >>> from aseimd.forcefield import create_system                 # doctest: +SKIP
    >>> m = molecule("EC")                                          # doctest: +SKIP
    >>> missing_terms(m.topology, create_system(m.topology))        # doctest: +SKIP
    []
    """
    atoms = list(topology.atoms())
    if len(atoms) != system.getNumParticles():
        raise ValueError(f"topology has {len(atoms)} atoms but the system {system.getNumParticles()} particles")

    def label(idx) -> str:
        return "-".join(f"{atoms[i].residue.name}:{atoms[i].name}" for i in idx)

    g_bonds, g_angles, g_torsions = _graph_terms(topology)
    s_bonds, s_angles, s_torsions = _system_terms(system)
    out = set()
    for i, j in g_bonds:
        if (min(i, j), max(i, j)) not in s_bonds:
            out.add(f"bond {label((i, j))}")
    for i, j, k in g_angles:
        if (i, j, k) not in s_angles and (i, k) not in s_bonds:
            out.add(f"angle {label((i, j, k))}")
    for t in g_torsions:
        if min(t, t[::-1]) not in s_torsions:
            out.add(f"torsion {label(t)}")
    return sorted(out)
