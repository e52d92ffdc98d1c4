"""aseimd.build.molecule: every species in 3D, named as its force-field template."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aseimd.build.molecule import Molecule, molecule
from aseimd.errors import BuildError
from aseimd.forcefield import residue_templates
from aseimd.species import all_species, get_species

SPECIES = [sp.name for sp in all_species() if sp.kind != "polymer"]  # polymer residues: test_polymer.py

#: (species, atom name, element, names of its bonded neighbours) for the atoms analysis selects.
KEY_ATOMS = [
    ("EC", "O1", "O", {"C1"}), ("EC", "C1", "C", {"O1", "O2", "O3"}), ("EC", "O2", "O", {"C1", "C2"}),
    ("PC", "O1", "O", {"C1"}), ("PC", "C4", "C", {"C3", "H41", "H42", "H43"}),
    ("FEC", "O1", "O", {"C1"}), ("FEC", "F3", "F", {"C3"}),
    ("DMC", "O1", "O", {"C1"}), ("DMC", "O3", "O", {"C1", "C3"}),
    ("EMC", "O1", "O", {"C1"}), ("EMC", "C4", "C", {"C3", "H41", "H42", "H43"}),
    ("DEC", "O1", "O", {"C1"}), ("DEC", "C5", "C", {"C3", "H51", "H52", "H53"}),
    ("TFSI", "N", "N", {"S1", "S2"}), ("TFSI", "O1", "O", {"S1"}), ("TFSI", "F1", "F", {"C1"}),
    ("FSI", "N", "N", {"S1", "S2"}), ("FSI", "F1", "F", {"S1"}),
    ("PF6", "P", "P", {"F1", "F2", "F3", "F4", "F5", "F6"}), ("Li", "LI", "Li", set()),
]


@pytest.mark.parametrize("name", SPECIES)
def test_builds_named_as_template(name):
    m = molecule(name, seed=0)
    assert isinstance(m, Molecule) and m.species == get_species(name)
    residues = list(m.topology.residues())
    assert len(residues) == 1 and residues[0].name == m.species.residue
    assert m.topology.getPeriodicBoxVectors() is None
    tmpl = residue_templates()[m.species.residue]
    assert [a.name for a in m.topology.atoms()] == [a.name for a in tmpl.atoms]
    assert [a.element.symbol for a in m.topology.atoms()] == [a.element for a in tmpl.atoms]
    bonds = {frozenset((b[0].name, b[1].name)) for b in m.topology.bonds()}
    assert bonds == {frozenset(b) for b in tmpl.bonds}
    assert m.positions_nm.shape == (m.topology.getNumAtoms(), 3)
    np.testing.assert_allclose(m.positions_nm.mean(axis=0), 0.0, atol=1e-9)
    for b in m.topology.bonds():
        d = np.linalg.norm(m.positions_nm[b[0].index] - m.positions_nm[b[1].index])
        assert 0.09 < d < 0.19, f"{name} bond {b[0].name}-{b[1].name} = {d:.3f} nm"
    # no two non-bonded atoms closer than 0.2 nm, no overlapping atoms
    n = m.topology.getNumAtoms()
    if n > 1:
        d = np.linalg.norm(m.positions_nm[:, None] - m.positions_nm[None], axis=-1)[np.triu_indices(n, 1)]
        assert d.min() > 0.09


@pytest.mark.parametrize("species, atom, element, neighbours", KEY_ATOMS)
def test_key_atom_names(species, atom, element, neighbours):
    m = molecule(species)
    atoms = {a.name: a for a in m.topology.atoms()}
    assert atoms[atom].element.symbol == element
    bonded = {b[1].name for b in m.topology.bonds() if b[0].name == atom} | \
             {b[0].name for b in m.topology.bonds() if b[1].name == atom}
    assert bonded == neighbours


def test_seed_is_deterministic_and_matters():
    a, b, c = molecule("DEC", seed=5), molecule("DEC", seed=5), molecule("DEC", seed=6)
    np.testing.assert_array_equal(a.positions_nm, b.positions_nm)
    assert not np.allclose(a.positions_nm, c.positions_nm, atol=1e-3)


def test_pf6_is_octahedral():
    m = molecule("PF6")
    names = [a.name for a in m.topology.atoms()]
    p = m.positions_nm[names.index("P")]
    f = m.positions_nm[[names.index(f"F{i}") for i in range(1, 7)]] - p
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 0.1606, atol=2e-4)
    angles = sorted(np.degrees(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))
                    for u, v in itertools.combinations(f, 2))
    np.testing.assert_allclose(angles[:12], 90.0, atol=0.5)
    np.testing.assert_allclose(angles[12:], 180.0, atol=0.5)


def test_li_is_one_atom_at_origin():
    m = molecule("Li+")
    assert m.topology.getNumAtoms() == 1
    np.testing.assert_array_equal(m.positions_nm, np.zeros((1, 3)))


def test_carbonates_are_planar_at_the_carbonyl():
    for name in ("EC", "PC", "DMC", "EMC", "DEC", "FEC"):
        m = molecule(name)
        names = [a.name for a in m.topology.atoms()]
        x = m.positions_nm[[names.index(n) for n in ("C1", "O1", "O2", "O3")]]
        normal = np.cross(x[2] - x[1], x[3] - x[1])
        assert abs(np.dot(x[0] - x[1], normal / np.linalg.norm(normal))) < 0.005


def test_unknown_species():
    with pytest.raises(BuildError, match="'XYZ'.*allowed"):
        molecule("XYZ")
