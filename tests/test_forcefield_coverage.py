"""Parameter coverage of every residue template shipped in forcefields/ (OpenMM skips unmatched torsions).

Each residue is built from its own template (atoms, elements, bonds; no
coordinates needed), parametrised with ``create_system`` and checked with
:func:`aseimd.forcefield.missing_terms`.  Templates added later (polymer
residues) are picked up automatically; residues with ``<ExternalBond>`` are
skipped here because they cannot stand alone — their coverage is tested on
built chains.
"""

from __future__ import annotations

import openmm
import pytest
from openmm import app

from aseimd.forcefield import create_system, missing_terms, residue_templates

TEMPLATES = residue_templates()


def topology_from_template(t) -> app.Topology:
    top = app.Topology()
    res = top.addResidue(t.name, top.addChain())
    atoms = {a.name: top.addAtom(a.name, app.Element.getBySymbol(a.element), res) for a in t.atoms}
    for a, b in t.bonds:
        top.addBond(atoms[a], atoms[b])
    return top


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_bonded_term_of_every_template_is_parametrised(name):
    t = TEMPLATES[name]
    if t.external_bonds:
        pytest.skip(f"{name} has external bonds ({', '.join(t.external_bonds)}): covered by built-chain tests")
    top = topology_from_template(t)
    system = create_system(top, constraints=None)
    assert missing_terms(top, system) == []


def test_missing_terms_finds_a_dropped_torsion_angle_and_bond():
    """Negative control: remove terms from a System and the check names them."""
    top = topology_from_template(TEMPLATES["DMC"])
    system = create_system(top, constraints=None)
    for force in system.getForces():
        if isinstance(force, openmm.PeriodicTorsionForce):
            i, j, k, m, *rest = force.getTorsionParameters(0)
            for n in range(force.getNumTorsions()):  # zero is still a term: drop the atoms instead
                a = force.getTorsionParameters(n)
                if a[:4] == [i, j, k, m]:
                    force.setTorsionParameters(n, 0, 0, 0, 0, *a[4:])
        if isinstance(force, openmm.HarmonicAngleForce):
            a = force.getAngleParameters(0)
            force.setAngleParameters(0, 0, 0, 0, *a[3:])
        if isinstance(force, openmm.HarmonicBondForce):
            a = force.getBondParameters(0)
            force.setBondParameters(0, 0, 0, *a[2:])
    missing = missing_terms(top, system)
    kinds = {line.split()[0] for line in missing}
    assert kinds == {"bond", "angle", "torsion"}
    assert all(line.split()[1].startswith("DMC:") for line in missing)


def test_constraints_count_as_covered():
    top = topology_from_template(TEMPLATES["EC"])
    assert missing_terms(top, create_system(top, constraints="HBonds")) == []
