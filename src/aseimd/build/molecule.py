"""One molecule or ion of the species table, in 3D, named as its force-field template.

The residue template in ``forcefields/*.xml`` is the single source of atom
names, elements and bonds.  Coordinates come from RDKit (ETKDG v3 from the
species SMILES, seeded, then MMFF94 or UFF), mapped onto the template by graph
isomorphism, and are finally relaxed with the aseimd force field itself in
vacuum so that a built molecule sits at a minimum of the model it is simulated
with.  Li+ is a single atom at the origin; PF6- is a regular octahedron (P-F
from the force field) that is then relaxed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseimd.errors import BuildError
from aseimd.species import Species, get_species


@dataclass(frozen=True)
class Molecule:
    """A single molecule ready to be packed.

    Attributes
    ----------
    species : aseimd.species.Species
    topology : openmm.app.Topology
        One chain, one residue named ``species.residue``, atom names exactly as in
        the force-field template, bonds set; no periodic box.
    positions_nm : numpy.ndarray, shape=(n_atoms, 3), dtype=float
        Coordinates in nm, centroid at the origin.
    """

    species: Species
    topology: object
    positions_nm: np.ndarray


def molecule(name: str | Species, seed: int = 0) -> Molecule:
    """Build one molecule of species ``name`` with a low-energy 3D geometry.

    Parameters
    ----------
    name : str or Species
        Species name, alias or residue name (see ``aseimd species``).
    seed : int
        Seed of the RDKit conformer embedding (which of several conformers /
        which enantiomer of PC and FEC); the same seed gives the same geometry.

    Returns
    -------
    Molecule

    Raises
    ------
    BuildError
        Unknown species, or no template / no embeddable geometry for it.
    """
    from aseimd.forcefield.loader import residue_templates

    sp = name if isinstance(name, Species) else get_species(name)
    if sp.kind == "polymer":
        raise BuildError(f"species {sp.name!r} is a polymer residue, not a molecule; build chains with "
                         f"'aseimd build polymer' (aseimd.build.polymer)")
    templates = residue_templates()
    if sp.residue not in templates:
        raise BuildError(f"species {sp.name!r}: no force-field template for residue {sp.residue!r}; "
                         f"templates: {', '.join(sorted(templates))}")
    tmpl = templates[sp.residue]
    topology = _topology(tmpl)
    if len(tmpl.atoms) == 1:
        xyz = np.zeros((1, 3))
    elif sp.residue == "PF6":
        xyz = _octahedron(tmpl)
    else:
        xyz = _rdkit_coordinates(sp, tmpl, seed)
    xyz = _relax(topology, xyz)
    xyz = xyz - xyz.mean(axis=0)
    return Molecule(sp, topology, xyz)


def _topology(tmpl):
    from openmm import app

    top = app.Topology()
    chain = top.addChain()
    res = top.addResidue(tmpl.name, chain)
    atoms = {a.name: top.addAtom(a.name, app.Element.getBySymbol(a.element), res) for a in tmpl.atoms}
    for n1, n2 in tmpl.bonds:
        top.addBond(atoms[n1], atoms[n2])
    return top


def _octahedron(tmpl) -> np.ndarray:
    """P at the origin, F1..F6 on +x, -x, +y, -y, +z, -z at the CL&P P-F length."""
    r_nm = 0.1606
    dirs = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=float)
    names = [a.name for a in tmpl.atoms]
    xyz = np.zeros((len(names), 3))
    for k in range(6):
        xyz[names.index(f"F{k + 1}")] = r_nm * dirs[k]
    return xyz


def _rdkit_coordinates(sp: Species, tmpl, seed: int) -> np.ndarray:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(sp.smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        raise BuildError(f"species {sp.name!r}: RDKit could not embed SMILES {sp.smiles!r} (seed {seed})")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        AllChem.UFFOptimizeMolecule(mol, maxIters=2000)
    match = _match_template(mol, tmpl)
    if match is None:
        raise BuildError(f"species {sp.name!r}: SMILES {sp.smiles!r} does not match the atoms and bonds "
                         f"of force-field template {tmpl.name!r} ({tmpl.filename})")
    conf = mol.GetConformer()
    return np.array([list(conf.GetAtomPosition(i)) for i in match]) * 0.1  # Angstrom -> nm


def _match_template(mol, tmpl) -> tuple[int, ...] | None:
    """Map template atoms (in order) to RDKit atom indices by element and connectivity."""
    from rdkit import Chem

    query = Chem.RWMol()
    index = {}
    for a in tmpl.atoms:
        index[a.name] = query.AddAtom(Chem.Atom(a.element))
    for n1, n2 in tmpl.bonds:
        query.AddBond(index[n1], index[n2], Chem.BondType.SINGLE)
    target = Chem.RWMol(mol)
    for atom in target.GetAtoms():
        atom.SetFormalCharge(0)
        atom.SetIsAromatic(False)
    for bond in target.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    if query.GetNumAtoms() != target.GetNumAtoms() or query.GetNumBonds() != target.GetNumBonds():
        return None
    match = target.GetSubstructMatch(query.GetMol(), useChirality=False)
    return tuple(match) if match else None


def _relax(topology, xyz: np.ndarray) -> np.ndarray:
    """Minimise in vacuum with the aseimd force field (Reference platform, deterministic)."""
    import openmm
    from openmm import unit

    from aseimd.forcefield.system import create_system

    if topology.getNumAtoms() == 1:
        return xyz
    system = create_system(topology, charge_scale=1.0, constraints=None)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(xyz * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(context, 1e-3, 2000)
    out = context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return np.asarray(out, dtype=float)
