"""PDMS and Li-Nafion residue templates (forcefields/pdms.xml, nafion.xml).

Each oligomer is assembled from the residue templates (head + repeats + tail,
joined at the atoms that carry ``<ExternalBond>``), then checked against an
independent description of the same molecule, an RDKit molecule from the
oligomer SMILES: the template graph must be isomorphic to it, and RDKit's 3D
embedding supplies the coordinates.  The ForceField must match every residue,
every bond / angle / proper dihedral of the bond graph must carry a term
(OpenMM silently skips unmatched torsions), the bonded energies must equal an
independent numpy evaluation that reads the XML with ElementTree, and the
oligomer (with its Li+ for Nafion) must be neutral, minimise, and run a few
hundred CPU steps without blowing up.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import numpy as np
import openmm
import pytest
from openmm import app, unit

from aseimd.forcefield import FORCE_GROUPS, create_system, load_forcefield, residue_templates
from aseimd.resources import data_dir

POLY_RESIDUES = ("DMH", "DMR", "DMT", "NFH", "NFR", "NFS", "NFT")

#: Link atoms: (atom bonded to the previous residue, atom bonded to the next residue).
LINKS = {
    "DMH": (None, "O"), "DMR": ("SI", "O"), "DMT": ("SI", None),
    "NFH": (None, "C1"), "NFR": ("C1", "C2"), "NFS": ("C1", "C2"), "NFT": ("C1", None),
}

_SIDE = "C(F)(F)C(F)(C(F)(F)F)OC(F)(F)C(F)(F)S(=O)(=O)[O-]"
OLIGOMERS = {
    # (CH3)3Si-O-[Si(CH3)2-O]3-Si(CH3)3
    "PDMS": (("DMH", "DMR", "DMR", "DMR", "DMT"),
             "C[Si](C)(C)O[Si](C)(C)O[Si](C)(C)O[Si](C)(C)O[Si](C)(C)C"),
    # CF3-(CF2CF2)-[CF2-CF(OR)]-(CF2CF2)-CF3
    "Nafion": (("NFH", "NFR", "NFS", "NFR", "NFT"),
               "FC(F)(F)C(F)(F)C(F)(F)C(F)(F)C(F)(O" + _SIDE + ")C(F)(F)C(F)(F)C(F)(F)F"),
}


# --------------------------------------------------------------- building
def _chain_topology(names, with_li):
    """Topology of a linear chain of residue templates (+ one Li+ residue)."""
    templates = residue_templates()
    top = app.Topology()
    chain = top.addChain()
    prev_atoms = None
    for k, name in enumerate(names):
        t = templates[name]
        res = top.addResidue(name, chain)
        atoms = {a.name: top.addAtom(a.name, app.Element.getBySymbol(a.element), res) for a in t.atoms}
        for a, b in t.bonds:
            top.addBond(atoms[a], atoms[b])
        if prev_atoms is not None:
            top.addBond(prev_atoms[LINKS[names[k - 1]][1]], atoms[LINKS[name][0]])
        prev_atoms = atoms
    if with_li:
        res = top.addResidue("LI", top.addChain())
        top.addAtom("LI", app.Element.getBySymbol("Li"), res)
    return top


def _rdkit_positions(top, smiles, seed=7):
    """Embed ``smiles`` with RDKit and map it onto the topology by graph isomorphism (nm)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    assert AllChem.EmbedMolecule(mol, params) == 0
    AllChem.UFFOptimizeMolecule(mol, maxIters=500)
    query = Chem.RWMol()
    chain_atoms = [a for a in top.atoms() if a.residue.name != "LI"]
    idx = {a.index: query.AddAtom(Chem.Atom(a.element.symbol)) for a in chain_atoms}
    for b in top.bonds():
        query.AddBond(idx[b[0].index], idx[b[1].index], Chem.BondType.SINGLE)
    target = Chem.RWMol(mol)
    for atom in target.GetAtoms():
        atom.SetFormalCharge(0)
    for bond in target.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
    assert query.GetNumAtoms() == target.GetNumAtoms(), "template chain and SMILES differ in atom count"
    assert query.GetNumBonds() == target.GetNumBonds(), "template chain and SMILES differ in bond count"
    match = target.GetSubstructMatch(query.GetMol())
    assert match, "template chain is not the molecule of the SMILES"
    conf = mol.GetConformer()
    xyz = np.zeros((top.getNumAtoms(), 3))
    for a in chain_atoms:
        xyz[a.index] = np.array(conf.GetAtomPosition(match[idx[a.index]])) * 0.1
    return xyz


def _place_li(top, xyz):
    """Li+ 0.2 nm beyond the sulfonate O centroid, on the S -> O-centroid line."""
    atoms = list(top.atoms())
    s = next(a.index for a in atoms if a.residue.name == "NFS" and a.name == "S")
    o = [a.index for a in atoms if a.residue.name == "NFS" and a.name in ("O3", "O4", "O5")]
    li = next(a.index for a in atoms if a.residue.name == "LI")
    oc = xyz[o].mean(axis=0)
    u = (oc - xyz[s]) / np.linalg.norm(oc - xyz[s])
    xyz[li] = oc + 0.2 * u
    return xyz


@pytest.fixture(scope="module", params=sorted(OLIGOMERS))
def oligomer(request):
    names, smiles = OLIGOMERS[request.param]
    with_li = request.param == "Nafion"
    top = _chain_topology(names, with_li)
    xyz = _rdkit_positions(top, smiles)
    if with_li:
        xyz = _place_li(top, xyz)
    return request.param, top, xyz


# --------------------------------------------------------------- graph terms
def _graph_terms(top):
    n = top.getNumAtoms()
    nbr = [set() for _ in range(n)]
    bonds = set()
    for a, b in top.bonds():
        i, j = a.index, b.index
        nbr[i].add(j)
        nbr[j].add(i)
        bonds.add((min(i, j), max(i, j)))
    angles = set()
    for j in range(n):
        for i, k in itertools.combinations(sorted(nbr[j]), 2):
            angles.add((i, j, k))
    propers = set()
    for j, k in bonds:
        for i in nbr[j] - {k}:
            for l in nbr[k] - {j}:
                if i != l:
                    q = (i, j, k, l)
                    propers.add(min(q, q[::-1]))
    return bonds, angles, propers


def _system(top, **kw):
    kw.setdefault("charge_scale", 1.0)
    kw.setdefault("constraints", None)
    return create_system(top, **kw)


# --------------------------------------------------------------- tests
def test_templates_have_integral_charge_and_unique_names():
    templates = residue_templates()
    expected = {"DMH": 0, "DMR": 0, "DMT": 0, "NFH": 0, "NFR": 0, "NFS": -1, "NFT": 0}
    for name, q in expected.items():
        t = templates[name]
        assert t.net_charge == pytest.approx(q, abs=1e-9), name
        assert len(name) <= 3
        assert len({a.name for a in t.atoms}) == len(t.atoms)
    files = {templates[n].filename for n in expected}
    assert files == {"pdms.xml", "nafion.xml"}


def test_sulfonate_group_carries_exactly_minus_one():
    """The ionic group C7 F71 F72 S O3 O4 O5 (CL&P CF2-SO3-) sums to -1: scaling it with Li+ stays neutral."""
    t = residue_templates()["NFS"]
    q = {a.name: a.charge for a in t.atoms}
    group = ("C7", "F71", "F72", "S", "O3", "O4", "O5")
    assert sum(q[a] for a in group) == pytest.approx(-1.0, abs=1e-12)
    assert sum(v for k, v in q.items() if k not in group) == pytest.approx(0.0, abs=1e-12)


def test_external_bonds_are_the_link_atoms():
    for path in ("pdms.xml", "nafion.xml"):
        root = ET.parse(data_dir("forcefields") / path).getroot()
        for r in root.iterfind("Residues/Residue"):
            ext = {e.get("atomName") for e in r.iterfind("ExternalBond")}
            assert ext == {a for a in LINKS[r.get("name")] if a}, r.get("name")


def test_forcefield_matches_every_residue(oligomer):
    _, top, _ = oligomer
    ff = load_forcefield()
    assert ff.getUnmatchedResidues(top) == []
    templates, residues = ff.generateTemplatesForUnmatchedResidues(top)
    assert templates == []


def test_every_bonded_term_is_parametrised(oligomer):
    """Coverage: graph bonds / angles / proper dihedrals against the System's terms."""
    _, top, _ = oligomer
    bonds, angles, propers = _graph_terms(top)
    system = _system(top)
    forces = {type(f).__name__: f for f in system.getForces()}
    hb = forces["HarmonicBondForce"]
    got_b = {tuple(sorted(hb.getBondParameters(i)[:2])) for i in range(hb.getNumBonds())}
    assert got_b == bonds and hb.getNumBonds() == len(bonds)
    ha = forces["HarmonicAngleForce"]
    got_a = set()
    for i in range(ha.getNumAngles()):
        a, b, c = ha.getAngleParameters(i)[:3]
        got_a.add((min(a, c), b, max(a, c)))
    assert got_a == angles and ha.getNumAngles() == len(angles)
    pt = forces["PeriodicTorsionForce"]
    got_t = set()
    for i in range(pt.getNumTorsions()):
        q = tuple(pt.getTorsionParameters(i)[:4])
        got_t.add(min(q, q[::-1]))
    missing = propers - got_t
    assert not missing, f"{len(missing)} proper dihedrals without parameters"
    assert got_t == propers  # no impropers in these files


def test_oligomer_is_neutral(oligomer):
    _, top, _ = oligomer
    system = _system(top)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    q = sum(nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge) for i in range(nb.getNumParticles()))
    assert q == pytest.approx(0.0, abs=1e-9)


# --------------------------------------------------------------- numpy reference (bonded terms)
class _Tables:
    """Bond / angle / proper tables of pdms.xml, nafion.xml (and ions.xml for Li+), read with ElementTree."""

    def __init__(self):
        self.type_class, self.atom_type = {}, {}
        self.bonds, self.angles, self.propers = {}, {}, {}
        for path in ("pdms.xml", "nafion.xml", "ions.xml"):
            root = ET.parse(data_dir("forcefields") / path).getroot()
            for t in root.iterfind("AtomTypes/Type"):
                self.type_class[t.get("name")] = t.get("class")
            for r in root.iterfind("Residues/Residue"):
                for a in r.iterfind("Atom"):
                    self.atom_type[(r.get("name"), a.get("name"))] = a.get("type")
            for b in root.iterfind("HarmonicBondForce/Bond"):
                key = (b.get("class1"), b.get("class2"))
                self.bonds[key] = self.bonds[key[::-1]] = (float(b.get("length")), float(b.get("k")))
            for a in root.iterfind("HarmonicAngleForce/Angle"):
                key = (a.get("class1"), a.get("class2"), a.get("class3"))
                self.angles[key] = self.angles[key[::-1]] = (float(a.get("angle")), float(a.get("k")))
            for p in root.iterfind("PeriodicTorsionForce/Proper"):
                key = tuple(p.get(f"class{i}") for i in range(1, 5))
                terms, i = [], 1
                while p.get(f"periodicity{i}") is not None:
                    terms.append((int(p.get(f"periodicity{i}")), float(p.get(f"phase{i}")), float(p.get(f"k{i}"))))
                    i += 1
                self.propers[key] = self.propers[key[::-1]] = terms

    def classes(self, top):
        return [self.type_class[self.atom_type[(a.residue.name, a.name)]] for a in top.atoms()]


def _dihedral(p0, p1, p2, p3):
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    return math.atan2(np.dot(np.cross(b1n, v), w), np.dot(v, w))


def _numpy_bonded(top, xyz, tables):
    cls = tables.classes(top)
    bonds, angles, propers = _graph_terms(top)
    eb = 0.0
    for i, j in bonds:
        r0, k = tables.bonds[(cls[i], cls[j])]
        eb += 0.5 * k * (np.linalg.norm(xyz[i] - xyz[j]) - r0) ** 2
    ea = 0.0
    for i, j, k_ in angles:
        t0, k = tables.angles[(cls[i], cls[j], cls[k_])]
        u, v = xyz[i] - xyz[j], xyz[k_] - xyz[j]
        th = math.acos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))
        ea += 0.5 * k * (th - t0) ** 2
    et = 0.0
    for q in propers:
        phi = _dihedral(*(xyz[a] for a in q))
        for n, ph, k in tables.propers[tuple(cls[a] for a in q)]:
            et += k * (1 + math.cos(n * phi - ph))
    return eb, ea, et


def _group_energy(context, group):
    return context.getState(getEnergy=True, groups={FORCE_GROUPS[group]}).getPotentialEnergy().value_in_unit(
        unit.kilojoule_per_mole)


def test_bonded_energies_match_numpy(oligomer):
    _, top, xyz = oligomer
    rng = np.random.default_rng(3)
    xyz = xyz + rng.normal(scale=0.004, size=xyz.shape)  # off the minimum: every term contributes
    system = _system(top)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(xyz * unit.nanometer)
    eb, ea, et = _numpy_bonded(top, xyz, _Tables())
    assert eb > 1.0 and ea > 1.0 and abs(et) > 1.0
    assert _group_energy(ctx, "bonds") == pytest.approx(eb, rel=1e-6)
    assert _group_energy(ctx, "angles") == pytest.approx(ea, rel=1e-6)
    assert _group_energy(ctx, "torsions") == pytest.approx(et, rel=1e-6)


def test_minimise_and_run(oligomer):
    name, top, xyz = oligomer
    system = create_system(top, charge_scale=1.0, constraints="HBonds")
    integ = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 5 / unit.picosecond, 0.001 * unit.picosecond)
    integ.setRandomNumberSeed(11)
    ctx = openmm.Context(system, integ, openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(xyz * unit.nanometer)
    e0 = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    openmm.LocalEnergyMinimizer.minimize(ctx, 1.0, 2000)
    e1 = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert e1 <= e0
    ctx.setVelocitiesToTemperature(300 * unit.kelvin, 5)
    integ.step(300)
    st = ctx.getState(getEnergy=True, getPositions=True)
    e2 = st.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    pos = st.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert np.all(np.isfinite(pos)) and math.isfinite(e2)
    # no blow-up: potential stays within a few kT per atom of the minimum, bonds stay bonds
    n = top.getNumAtoms()
    assert e2 - e1 < 10 * 2.494 * n, (name, e1, e2)
    for a, b in top.bonds():
        assert np.linalg.norm(pos[a.index] - pos[b.index]) < 0.25
    if name == "Nafion":
        li = next(a.index for a in top.atoms() if a.residue.name == "LI")
        s = next(a.index for a in top.atoms() if a.name == "S")
        assert np.linalg.norm(pos[li] - pos[s]) < 0.6  # the Li+ stays at its sulfonate in vacuum


def test_every_parameter_line_carries_its_citation():
    """Each type, bond, angle, torsion and LJ line of the two files has a source comment on it."""
    keys = ("<Type name=", "<Bond class1=", "<Angle class1=", "<Proper class1=", '<Atom type="')
    for path in ("pdms.xml", "nafion.xml"):
        text = (data_dir("forcefields") / path).read_text()
        lines = [ln for ln in text.splitlines() if any(k in ln for k in keys)]
        assert len(lines) > 20, path
        for ln in lines:
            assert "<!--" in ln and len(ln.split("<!--", 1)[1].strip()) > 10, f"{path}: uncited line {ln.strip()}"
        for ln in lines:
            if "derived" in ln:
                assert "derived (rule:" in ln, f"{path}: derived value without its rule: {ln.strip()}"
