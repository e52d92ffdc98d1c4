"""A built :class:`~aseimd.build.cell.Cell` to and from other tools: ASE, pymatgen, PDB, mmCIF.

This is the one place where aseimd meets ASE's and pymatgen's units (Å): every
conversion goes through :data:`ANGSTROM_PER_NM` here (the slab builder uses
:func:`atoms_to_nm` too).

Residue information travels with the structure so that a round trip gives the
same topology back:

ASE ``Atoms``
    ``symbols`` (elements), ``positions`` (Å), ``cell`` (Å, orthorhombic),
    ``pbc = True``; per-atom arrays ``atom_names``, ``residue_names``,
    ``residue_numbers`` (0-based residue index), ``chain_numbers``; optional
    ``initial_charges`` (e, from a System); ``info["aseimd_bonds"]``: the
    bonds, shape (n_bonds, 2), and ``info["aseimd_provenance"]``.
pymatgen ``Structure``
    species, Cartesian coordinates and lattice in Å (coordinates are not
    wrapped into the cell); site properties ``atom_name``, ``residue_name``,
    ``residue_number``, ``chain_number`` and optionally ``charge``;
    ``properties["aseimd_bonds"]``.
PDB / mmCIF
    Written by OpenMM (``PDBFile`` / ``PDBxFile``) with the box and bonds
    (CONECT / struct_conn), atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from aseimd.errors import SpecError

#: Å per nm: the only unit conversion between aseimd (nm) and ASE / pymatgen (Å).
ANGSTROM_PER_NM = 10.0


def atoms_to_nm(values_A) -> np.ndarray:
    """Convert lengths from Å (ASE, pymatgen) to nm (aseimd, OpenMM)."""
    return np.asarray(values_A, dtype=float) / ANGSTROM_PER_NM


def nm_to_angstrom(values_nm) -> np.ndarray:
    """Convert lengths from nm (aseimd, OpenMM) to Å (ASE, pymatgen)."""
    return np.asarray(values_nm, dtype=float) * ANGSTROM_PER_NM


def _topology_arrays(topology) -> dict[str, np.ndarray]:
    atoms = list(topology.atoms())
    return {
        "symbols": np.array([a.element.symbol if a.element is not None else "X" for a in atoms]),
        "atom_names": np.array([a.name for a in atoms]),
        "residue_names": np.array([a.residue.name for a in atoms]),
        "residue_numbers": np.array([a.residue.index for a in atoms], dtype=int),
        "chain_numbers": np.array([a.residue.chain.index for a in atoms], dtype=int),
        "bonds": np.array([(b[0].index, b[1].index) for b in topology.bonds()], dtype=int).reshape(-1, 2),
    }


def _charges_e(system) -> np.ndarray:
    import openmm

    nb = next((f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)), None)
    if nb is None:
        raise SpecError("the System has no NonbondedForce to read charges from")
    return np.array([nb.getParticleParameters(i)[0].value_in_unit(openmm.unit.elementary_charge)
                     for i in range(nb.getNumParticles())])


def _topology_from_arrays(symbols, atom_names, residue_names, residue_numbers, chain_numbers, bonds,
                          where: str = "structure"):
    from openmm import app

    rnums = np.asarray(residue_numbers, dtype=np.int64)
    starts = np.r_[True, rnums[1:] != rnums[:-1]] if rnums.size else np.zeros(0, bool)
    if np.unique(rnums[starts]).size != int(starts.sum()):
        raise SpecError(f"the atoms of a residue in the {where} are not together (it was reordered without the "
                        f"aseimd_index that to_ase/to_pymatgen write, or merged); residues cannot be rebuilt")
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    if bonds.size and (bonds.min() < 0 or bonds.max() >= rnums.size):
        raise SpecError(f"the {where} carries bonds to atoms it does not have (atoms were deleted since it was "
                        f"written); convert the unedited structure")
    top = app.Topology()
    chains: dict[int, object] = {}
    residues: dict[int, object] = {}
    atoms = []
    for sym, name, rname, rnum, cnum in zip(symbols, atom_names, residue_names, residue_numbers, chain_numbers):
        cnum, rnum = int(cnum), int(rnum)
        if cnum not in chains:
            chains[cnum] = top.addChain()
        if rnum not in residues:
            residues[rnum] = top.addResidue(str(rname), chains[cnum])
        element = None if sym == "X" else app.Element.getBySymbol(str(sym))
        atoms.append(top.addAtom(str(name), element, residues[rnum]))
    for i, j in bonds:
        top.addBond(atoms[int(i)], atoms[int(j)])
    return top


def _original_order(index, n_bonded_atoms: int | None, where: str) -> np.ndarray | None:
    """The permutation that puts atoms back in the order aseimd wrote them (from their ``aseimd_index``).

    ``None`` when no index travelled with the atoms. A structure that lost atoms or has some twice (deleted,
    repeated, merged) cannot keep aseimd's residues and bonds: refused with what to do instead.
    """
    if index is None:
        return None
    index = np.asarray(index, dtype=np.int64)
    n = index.size
    if np.unique(index).size != n or (n and (index.min() != 0 or index.max() != n - 1)) or (
            n_bonded_atoms is not None and n_bonded_atoms != n):
        raise SpecError(f"the {where} no longer holds each of the atoms aseimd wrote exactly once (atoms were "
                        f"deleted, repeated or added), so its residues and bonds cannot be rebuilt; convert the "
                        f"unedited structure, or delete the aseimd arrays (aseimd_index, residue_numbers, ...) "
                        f"to convert it as plain atoms")
    return np.argsort(index, kind="stable")


def to_ase(cell, system=None):
    """Convert a cell to an ASE ``Atoms`` (Å), carrying residues, bonds and charges.

    Parameters
    ----------
    cell : aseimd.build.cell.Cell
    system : openmm.System, optional
        If given, its NonbondedForce charges (e, scaled as built) go to ``initial_charges``.

    Returns
    -------
    ase.Atoms
    """
    from ase import Atoms

    arr = _topology_arrays(cell.topology)
    atoms = Atoms(symbols=list(arr["symbols"]), positions=nm_to_angstrom(cell.positions_nm),
                  cell=np.diag(nm_to_angstrom(cell.box_nm)), pbc=True)
    for key in ("atom_names", "residue_names", "residue_numbers", "chain_numbers"):
        atoms.set_array(key, arr[key])
    atoms.set_array("aseimd_index", np.arange(len(atoms)))  # travels with each atom through sorts and edits
    if system is not None:
        atoms.set_initial_charges(_charges_e(system))
    atoms.info["aseimd_bonds"] = arr["bonds"]
    atoms.info["aseimd_n_atoms"] = len(atoms)
    atoms.info["aseimd_provenance"] = dict(cell.provenance)
    return atoms


def from_ase(atoms):
    """Convert an ASE ``Atoms`` made by :func:`to_ase` (or any orthorhombic periodic one) to a Cell.

    Atoms without aseimd arrays become one residue each, named by their element.

    Raises
    ------
    SpecError
        If the ASE cell is not orthorhombic.
    """
    from aseimd.build.cell import Cell

    cellpar = np.asarray(atoms.cell.array, dtype=float)
    if not np.allclose(cellpar, np.diag(np.diag(cellpar)), atol=1e-8) or np.any(np.diag(cellpar) <= 0):
        raise SpecError("only orthorhombic periodic cells can be converted (ASE cell has off-diagonal "
                        "or zero vectors)")
    n_written = atoms.info.get("aseimd_n_atoms")
    order = _original_order(atoms.arrays.get("aseimd_index"), n_written, "ASE Atoms")
    if order is not None:  # sorted or reordered since to_ase: back to aseimd's order, where the bonds point
        atoms = atoms[order]
    n = len(atoms)
    symbols = np.array(atoms.get_chemical_symbols())
    names = atoms.arrays.get("atom_names", symbols)
    rnames = atoms.arrays.get("residue_names", np.array([s.upper()[:3] for s in symbols]))
    rnums = atoms.arrays.get("residue_numbers", np.arange(n))
    cnums = atoms.arrays.get("chain_numbers", np.zeros(n, dtype=int))
    bonds = atoms.info.get("aseimd_bonds", np.zeros((0, 2), dtype=int))
    top = _topology_from_arrays(symbols, names, rnames, rnums, cnums, bonds, "ASE Atoms")
    return Cell(topology=top, positions_nm=atoms_to_nm(atoms.positions), box_nm=atoms_to_nm(np.diag(cellpar)),
                provenance=dict(atoms.info.get("aseimd_provenance", {})))


def to_pymatgen(cell, system=None):
    """Convert a cell to a pymatgen ``Structure`` (Å), residues and charges as site properties.

    Parameters
    ----------
    cell : aseimd.build.cell.Cell
    system : openmm.System, optional
        If given, its charges (e) go to the site property ``charge``.

    Returns
    -------
    pymatgen.core.Structure
    """
    from pymatgen.core import Lattice, Structure

    arr = _topology_arrays(cell.topology)
    props = {"atom_name": list(arr["atom_names"]), "residue_name": list(arr["residue_names"]),
             "residue_number": [int(x) for x in arr["residue_numbers"]],
             "chain_number": [int(x) for x in arr["chain_numbers"]],
             "aseimd_index": list(range(len(arr["symbols"])))}
    if system is not None:
        props["charge"] = [float(q) for q in _charges_e(system)]
    lattice = Lattice(np.diag(nm_to_angstrom(cell.box_nm)))
    structure = Structure(lattice, list(arr["symbols"]), nm_to_angstrom(cell.positions_nm),
                          coords_are_cartesian=True, site_properties=props, to_unit_cell=False,
                          properties={"aseimd_bonds": arr["bonds"].tolist(), "aseimd_n_atoms": len(arr["symbols"])})
    return structure


def from_pymatgen(structure):
    """Convert a pymatgen ``Structure`` made by :func:`to_pymatgen` (orthorhombic lattice) to a Cell."""
    from aseimd.build.cell import Cell

    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.allclose(matrix, np.diag(np.diag(matrix)), atol=1e-8):
        raise SpecError("only orthorhombic lattices can be converted (pymatgen lattice is not diagonal)")
    order = _original_order(structure.site_properties.get("aseimd_index"),
                            (getattr(structure, "properties", None) or {}).get("aseimd_n_atoms"), "pymatgen Structure")
    if order is not None:  # sorted or reordered since to_pymatgen: back to aseimd's order
        structure = structure.copy()
        sites = [structure[int(i)] for i in order]
        structure = type(structure).from_sites(sites, properties=getattr(structure, "properties", None))
    n = len(structure)
    symbols = np.array([site.specie.symbol for site in structure])
    props = structure.site_properties
    top = _topology_from_arrays(
        symbols, props.get("atom_name", symbols),
        props.get("residue_name", [s.upper()[:3] for s in symbols]),
        props.get("residue_number", range(n)), props.get("chain_number", [0] * n),
        (getattr(structure, "properties", None) or {}).get("aseimd_bonds", np.zeros((0, 2), dtype=int)),
        "pymatgen Structure")
    return Cell(topology=top, positions_nm=atoms_to_nm(structure.cart_coords), box_nm=atoms_to_nm(np.diag(matrix)))


def write_pdb(cell, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the cell as PDB (box in CRYST1, bonds in CONECT), atomically."""
    return _write(cell, path, "pdb", force)


def write_mmcif(cell, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the cell as PDBx/mmCIF (box, bonds in struct_conn), atomically."""
    return _write(cell, path, "cif", force)


def _write(cell, path, kind: str, force: bool) -> Path:
    import io

    from openmm import app, unit

    from aseimd.fileio import atomic_write_text, check_new_output

    path = check_new_output(path, force=force)
    buf = io.StringIO()
    writer = app.PDBFile if kind == "pdb" else app.PDBxFile
    writer.writeFile(cell.topology, cell.positions_nm * unit.nanometer, buf, keepIds=False)
    return atomic_write_text(path, buf.getvalue())
