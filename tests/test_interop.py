"""ASE / pymatgen round trips and PDB / mmCIF output of a built cell."""

import numpy as np
import pytest
from openmm import app, unit

from aseimd.build.cell import Cell
from aseimd.build.interface import _append_topology
from aseimd.build.interop import (ANGSTROM_PER_NM, from_ase, from_pymatgen, to_ase, to_pymatgen, write_mmcif,
                                  write_pdb)
from aseimd.build.molecule import molecule
from aseimd.build.slab import build_li_slab
from aseimd.errors import OutputExistsError
from aseimd.forcefield import create_system


@pytest.fixture(scope="module")
def cell():
    slab = build_li_slab("110", layers=3, repeats=(6, 8))
    top = app.Topology()
    _append_topology(top, slab.topology)
    pos = [slab.positions_nm]
    for name, xyz in (("EC", [1.0, 1.0, 1.0]), ("Li", [0.5, 0.5, 1.6]), ("PF6", [1.5, 1.2, 1.9])):
        m = molecule(name)
        _append_topology(top, m.topology)
        pos.append(m.positions_nm + np.array(xyz))
    return Cell(top, np.concatenate(pos), np.array([slab.box_nm[0], slab.box_nm[1], 3.0]),
                provenance={"builder": "test"})


def _same_topology(a, b):
    assert [(x.name, x.element.symbol, x.residue.name, x.residue.index) for x in a.atoms()] == \
        [(x.name, x.element.symbol, x.residue.name, x.residue.index) for x in b.atoms()]
    assert sorted((x.index, y.index) for x, y in a.bonds()) == sorted((x.index, y.index) for x, y in b.bonds())


def test_ase_round_trip(cell):
    system = create_system(cell.topology, cutoff_nm=0.9)
    atoms = to_ase(cell, system)
    np.testing.assert_allclose(atoms.positions, cell.positions_nm * 10.0)   # Å
    np.testing.assert_allclose(atoms.cell.lengths(), cell.box_nm * 10.0)
    assert atoms.get_chemical_symbols()[0] == "Li" and list(atoms.pbc) == [True] * 3
    assert atoms.get_initial_charges().sum() == pytest.approx(0.0, abs=1e-9)
    assert atoms.get_initial_charges()[list(atoms.arrays["residue_names"]).index("LI")] == pytest.approx(0.8)
    back = from_ase(atoms)
    np.testing.assert_allclose(back.positions_nm, cell.positions_nm, atol=1e-12)
    np.testing.assert_allclose(back.box_nm, cell.box_nm, atol=1e-12)
    _same_topology(back.topology, cell.topology)
    assert back.provenance == {"builder": "test"}


def test_pymatgen_round_trip(cell):
    system = create_system(cell.topology, cutoff_nm=0.9)
    structure = to_pymatgen(cell, system)
    assert len(structure) == cell.n_atoms
    np.testing.assert_allclose(structure.lattice.abc, cell.box_nm * ANGSTROM_PER_NM)
    np.testing.assert_allclose(structure.cart_coords, cell.positions_nm * ANGSTROM_PER_NM, atol=1e-9)
    assert structure.site_properties["residue_name"][0] == "LIM"
    assert sum(structure.site_properties["charge"]) == pytest.approx(0.0, abs=1e-9)
    back = from_pymatgen(structure)
    np.testing.assert_allclose(back.positions_nm, cell.positions_nm, atol=1e-9)
    np.testing.assert_allclose(back.box_nm, cell.box_nm, atol=1e-12)
    _same_topology(back.topology, cell.topology)


@pytest.mark.parametrize("writer, reader, name", [(write_pdb, app.PDBFile, "c.pdb"),
                                                  (write_mmcif, app.PDBxFile, "c.cif")])
def test_pdb_and_mmcif(cell, tmp_path, writer, reader, name):
    path = writer(cell, tmp_path / name)
    read = reader(str(path))
    assert read.topology.getNumAtoms() == cell.n_atoms
    assert read.topology.getNumBonds() == cell.topology.getNumBonds()
    box = np.diag(read.topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer))
    np.testing.assert_allclose(box, cell.box_nm, atol=1e-3)
    np.testing.assert_allclose(read.getPositions(asNumpy=True).value_in_unit(unit.nanometer), cell.positions_nm,
                               atol=6e-4)
    with pytest.raises(OutputExistsError):
        writer(cell, path)


def test_sorted_structures_come_back_in_aseimd_order(cell):
    """ase.build.sort / Structure.get_sorted_structure reorder atoms: the per-atom aseimd_index restores the
    order the residues and bonds refer to (before, residues came out split and bonds pointed at other atoms)."""
    from ase.build import sort

    back = from_ase(sort(to_ase(cell)))
    np.testing.assert_allclose(back.positions_nm, cell.positions_nm, atol=1e-12)
    _same_topology(back.topology, cell.topology)
    back = from_pymatgen(to_pymatgen(cell).get_sorted_structure())
    np.testing.assert_allclose(back.positions_nm, cell.positions_nm, atol=1e-9)
    _same_topology(back.topology, cell.topology)


def test_edited_structures_are_refused_with_one_line(cell):
    from aseimd.errors import SpecError

    atoms = to_ase(cell)
    for edited in (atoms.repeat((2, 1, 1)), atoms[:-3], atoms[[i for i in range(len(atoms)) if i != 5]]):
        with pytest.raises(SpecError, match="exactly once") as err:
            from_ase(edited)
        assert "\n" not in str(err.value)
    structure = to_pymatgen(cell)
    structure.remove_sites([0])
    with pytest.raises(SpecError, match="exactly once"):
        from_pymatgen(structure)
    plain = to_ase(cell)
    del plain.arrays["aseimd_index"]
    with pytest.raises(SpecError, match="not together"):
        from_ase(sort_by_symbol(plain))


def sort_by_symbol(atoms):
    from ase.build import sort

    return sort(atoms)
