"""Per-force-group energies against an independent numpy evaluation.

The reference below reads the parameter tables straight from forcefields/*.xml
with ElementTree (never through OpenMM), types atoms by *atom name* in the
residue template, enumerates bonds/angles/torsions/1-4 pairs from the bond
graph and evaluates OPLS/CL&P energies: harmonic bonds and angles (plus the
PF6- nearest-well angle), OPLS Fourier torsions, Coulomb and geometric LJ
with 1-4 pairs scaled 0.5, ion charges scaled.  Periodic boxes: LJ with
minimum image + the long-range correction, Coulomb by a converged numpy Ewald
sum compared with OpenMM's PME.
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET

import numpy as np
import openmm
import pytest
from openmm import app, unit

from aseimd.build.molecule import molecule
from aseimd.forcefield import FORCE_GROUPS, create_system
from aseimd.resources import data_dir
from aseimd.species import all_species

COULOMB = 138.935458  # kJ mol^-1 nm e^-2 (OpenMM's ONE_4PI_EPS0)
ION_RESIDUES = {sp.residue for sp in all_species() if sp.kind in ("cation", "anion")}


# ----------------------------------------------------------------- XML tables
class Tables:
    """Parameter tables of every forcefields/*.xml, read with ElementTree."""

    def __init__(self):
        self.type_class, self.residues, self.lj = {}, {}, {}
        self.bonds, self.angles, self.wells, self.propers, self.impropers = {}, {}, {}, [], []
        self.scale14 = set()
        for path in sorted(data_dir("forcefields").glob("*.xml")):
            root = ET.parse(path).getroot()
            for t in root.iterfind("AtomTypes/Type"):
                self.type_class[t.get("name")] = t.get("class")
            for r in root.iterfind("Residues/Residue"):
                atoms = {a.get("name"): (a.get("type"), float(a.get("charge"))) for a in r.iterfind("Atom")}
                self.residues[r.get("name")] = atoms
            for b in root.iterfind("HarmonicBondForce/Bond"):
                key = (b.get("class1"), b.get("class2"))
                val = (float(b.get("length")), float(b.get("k")))
                self.bonds[key] = self.bonds[key[::-1]] = val
            for a in root.iterfind("HarmonicAngleForce/Angle"):
                key = (a.get("class1"), a.get("class2"), a.get("class3"))
                self.angles[key] = self.angles[key[::-1]] = (float(a.get("angle")), float(a.get("k")))
            for a in root.iterfind("CustomAngleForce/Angle"):
                key = (a.get("class1"), a.get("class2"), a.get("class3"))
                val = (float(a.get("k_pf6")), float(a.get("theta_cis")), float(a.get("theta_trans")))
                self.wells[key] = self.wells[key[::-1]] = val
            for p in root.iterfind("PeriodicTorsionForce/Proper"):
                self.propers.append((tuple(p.get(f"class{i}") for i in range(1, 5)), _terms(p)))
            for p in root.iterfind("PeriodicTorsionForce/Improper"):
                self.impropers.append((tuple(p.get(f"class{i}") for i in range(1, 5)), _terms(p)))
            for nb in root.iterfind("NonbondedForce"):
                self.scale14.add((float(nb.get("coulomb14scale")), float(nb.get("lj14scale"))))
                for a in nb.iterfind("Atom"):
                    self.lj[a.get("type")] = (float(a.get("sigma")), float(a.get("epsilon")))
        assert self.scale14 == {(0.5, 0.5)}

    def proper(self, classes):
        for key, terms in self.propers:
            if key == classes or key == classes[::-1]:
                return terms
        return None


def _terms(el):
    out, i = [], 1
    while el.get(f"periodicity{i}") is not None:
        out.append((int(el.get(f"periodicity{i}")), float(el.get(f"phase{i}")), float(el.get(f"k{i}"))))
        i += 1
    return out


@pytest.fixture(scope="module")
def tables():
    return Tables()


# ----------------------------------------------------------------- geometry
def _dihedral(p0, p1, p2, p3):
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    m1 = np.cross(n1, b1 / np.linalg.norm(b1))
    return math.atan2(np.dot(m1, n2), np.dot(n1, n2))


def _angle(p0, p1, p2):
    u, v = p0 - p1, p2 - p1
    return math.acos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1.0, 1.0))


def reference_energies(tables, topology, xyz, charge_scale, box_nm=None, cutoff_nm=1.0, mixing="geometric",
                      switch_nm=None):
    """Independent energies per group name, kJ/mol (``mixing="lorentz-berthelot"`` for the negative control)."""
    mix = (lambda a, b: np.sqrt(a * b)) if mixing == "geometric" else (lambda a, b: 0.5 * (a + b))
    atoms = list(topology.atoms())
    n = len(atoms)
    typ = [tables.residues[a.residue.name][a.name][0] for a in atoms]
    cls = [tables.type_class[t] for t in typ]
    q_full = np.array([tables.residues[a.residue.name][a.name][1] for a in atoms])
    ionic = np.array([a.residue.name in ION_RESIDUES for a in atoms])
    q = q_full * np.where(ionic, charge_scale, 1.0)
    res_index = np.array([a.residue.index for a in atoms])

    def same_ion(i, j):  # electrostatics inside one ion stay at full charge
        return bool(ionic[i] and ionic[j] and res_index[i] == res_index[j])

    def qq(i, j):
        return q_full[i] * q_full[j] if same_ion(i, j) else q[i] * q[j]
    sig = np.array([tables.lj[t][0] for t in typ])
    eps = np.array([tables.lj[t][1] for t in typ])
    nbr = [set() for _ in range(n)]
    bonds = [(b[0].index, b[1].index) for b in topology.bonds()]
    for i, j in bonds:
        nbr[i].add(j)
        nbr[j].add(i)
    E = dict.fromkeys(("bonds", "angles", "torsions", "coulomb", "lj"), 0.0)
    for i, j in bonds:
        r0, k = tables.bonds[(cls[i], cls[j])]
        E["bonds"] += 0.5 * k * (np.linalg.norm(xyz[i] - xyz[j]) - r0) ** 2
    for j in range(n):
        for i, k in itertools.combinations(sorted(nbr[j]), 2):
            th = _angle(xyz[i], xyz[j], xyz[k])
            key = (cls[i], cls[j], cls[k])
            if key in tables.angles:
                th0, kk = tables.angles[key]
                E["angles"] += 0.5 * kk * (th - th0) ** 2
            else:
                kk, tc, tt = tables.wells[key]
                E["angles"] += 0.5 * kk * min((th - tc) ** 2, (th - tt) ** 2)
    missing = []
    for j, k in bonds:
        for i in nbr[j] - {k}:
            for m in nbr[k] - {j}:
                if i == m:
                    continue
                terms = tables.proper((cls[i], cls[j], cls[k], cls[m]))
                if terms is None:
                    missing.append((cls[i], cls[j], cls[k], cls[m]))
                    continue
                phi = _dihedral(xyz[i], xyz[j], xyz[k], xyz[m])
                E["torsions"] += sum(kk * (1 + math.cos(per * phi - ph)) for per, ph, kk in terms)
    for c in range(n):
        if len(nbr[c]) != 3:
            continue
        for key, terms in tables.impropers:
            if key[0] != cls[c]:
                continue
            for a, b, d in itertools.permutations(sorted(nbr[c])):
                if (cls[a], cls[b], cls[d]) == key[1:]:
                    phi = _dihedral(xyz[a], xyz[b], xyz[c], xyz[d])  # carbonyl C third, as in OPLS
                    E["torsions"] += sum(kk * (1 + math.cos(per * phi - ph)) for per, ph, kk in terms)
                    break
    # topological distance classes for exclusions and 1-4
    excl, pair14 = set(), set()
    for i in range(n):
        d1 = nbr[i]
        d2 = set().union(*(nbr[j] for j in d1)) - {i} if d1 else set()
        d3 = set().union(*(nbr[j] for j in d2)) - {i} - d1 - d2 if d2 else set()
        excl |= {(min(i, j), max(i, j)) for j in d1 | d2}
        pair14 |= {(min(i, j), max(i, j)) for j in d3}
    pair14 -= excl
    for i, j in pair14:
        r = np.linalg.norm(xyz[i] - xyz[j])
        s, e = mix(sig[i], sig[j]), 0.5 * math.sqrt(eps[i] * eps[j])
        E["lj"] += 4 * e * ((s / r) ** 12 - (s / r) ** 6)
        E["coulomb"] += 0.5 * COULOMB * qq(i, j) / r
    skip = excl | pair14
    iu, ju = np.triu_indices(n, 1)
    keep = np.array([(i, j) not in skip for i, j in zip(iu, ju)], dtype=bool)
    iu, ju = iu[keep], ju[keep]
    # 1-5+ pairs inside one ion: plain Coulomb at full charge, never in the Ewald sum (no image, no cutoff)
    intra = {(int(i), int(j)) for i, j in zip(iu, ju) if same_ion(i, j)}
    for i, j in intra:
        E["coulomb"] += COULOMB * q_full[i] * q_full[j] / np.linalg.norm(xyz[i] - xyz[j])
    S, EPS = mix(sig[iu], sig[ju]), np.sqrt(eps[iu] * eps[ju])
    d = xyz[iu] - xyz[ju]
    if box_nm is None:
        r = np.linalg.norm(d, axis=1)
        E["lj"] += np.sum(4 * EPS * ((S / r) ** 12 - (S / r) ** 6))
        inter = np.array([(int(i), int(j)) not in intra for i, j in zip(iu, ju)], dtype=bool)
        E["coulomb"] += np.sum((COULOMB * q[iu] * q[ju] / r)[inter])
    else:
        d -= box_nm * np.round(d / box_nm)
        r = np.linalg.norm(d, axis=1)
        inside = r < cutoff_nm
        sw = np.ones_like(r) if switch_nm is None else _switch(r, switch_nm, cutoff_nm)
        E["lj"] += np.sum((sw * 4 * EPS * ((S / r) ** 12 - (S / r) ** 6))[inside])
        E["lj"] += _lj_long_range(sig, eps, cutoff_nm, float(np.prod(box_nm)), switch_nm)
        E["coulomb"] += _ewald(q, xyz, np.asarray(box_nm, float), excl | intra, pair14)
    E["missing_torsions"] = missing
    return E


def _switch(r, rs, rc):
    """OpenMM's switching function 1 - 6x^5 + 15x^4 - 10x^3, x = (r - rs)/(rc - rs), clipped to [0, 1]."""
    x = np.clip((r - rs) / (rc - rs), 0.0, 1.0)
    return 1 - 6 * x**5 + 15 * x**4 - 10 * x**3


def _lj_long_range(sig, eps, rc, volume, rs=None):
    """Dispersion correction averaged over parameter classes, as OpenMM's CustomNonbondedForce.

    With switching, the correction also restores the part of U removed between rs and rc.
    """
    from scipy.integrate import quad

    params = list(zip(sig, eps))
    classes = sorted(set(params))
    count = {c: params.count(c) for c in classes}
    total = weight = 0.0
    for a, b in itertools.combinations_with_replacement(classes, 2):
        w = count[a] * (count[a] + 1) / 2 if a == b else count[a] * count[b]
        s, e = math.sqrt(a[0] * b[0]), math.sqrt(a[1] * b[1])
        total += w * 16 * math.pi * e * (s**12 / (9 * rc**9) - s**6 / (3 * rc**3))
        if rs is not None:
            def lost(r, s=s, e=e):
                return 4 * math.pi * r * r * 4 * e * ((s / r) ** 12 - (s / r) ** 6) * (1 - _switch(r, rs, rc))
            total += w * quad(lost, rs, rc, epsabs=1e-13, epsrel=1e-11)[0]
        weight += w
    n = len(params)
    return n * n * total / weight / (2 * volume)


def _ewald(q, xyz, box, excl, pair14, alpha=4.0, kmax=18):
    """Converged Ewald sum (orthorhombic box) with exclusions removed and 1-4 pairs handled separately."""
    from scipy.special import erf, erfc

    n = len(q)
    e_real = 0.0
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3))) * box
    skip = excl | pair14
    for i in range(n):
        for j in range(i, n):
            d = xyz[i] - xyz[j]
            d -= box * np.round(d / box)
            for s in shifts:
                if i == j and not s.any():
                    continue
                if (i, j) in skip and not s.any():
                    continue
                r = np.linalg.norm(d + s)
                f = 0.5 if i == j else 1.0
                e_real += f * COULOMB * q[i] * q[j] * erfc(alpha * r) / r
    m = np.array(list(itertools.product(range(-kmax, kmax + 1), repeat=3)))
    m = m[np.any(m != 0, axis=1)]
    k = 2 * np.pi * m / box
    k2 = np.sum(k * k, axis=1)
    sk = np.exp(1j * (k @ xyz.T)) @ q
    vol = float(np.prod(box))
    e_recip = COULOMB / (2 * vol) * np.sum(4 * np.pi / k2 * np.exp(-k2 / (4 * alpha**2)) * np.abs(sk) ** 2)
    e_self = -COULOMB * alpha / math.sqrt(math.pi) * np.sum(q * q)
    e_corr = 0.0
    for i, j in skip:
        d = xyz[i] - xyz[j]
        d -= box * np.round(d / box)
        r = np.linalg.norm(d)
        e_corr -= COULOMB * q[i] * q[j] * erf(alpha * r) / r
    return e_real + e_recip + e_self + e_corr


# ----------------------------------------------------------------- OpenMM side
def openmm_energies(system, xyz, box_nm=None):
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    if box_nm is not None:
        ctx.setPeriodicBoxVectors(*(np.diag(box_nm) * unit.nanometer))
    ctx.setPositions(xyz * unit.nanometer)
    out = {}
    for name, g in FORCE_GROUPS.items():
        e = ctx.getState(getEnergy=True, groups={g}).getPotentialEnergy()
        out[name] = e.value_in_unit(unit.kilojoule_per_mole)
    return out


def assert_groups_match(ours, ref, rtol=1e-5, atol=1e-4, groups=("bonds", "angles", "torsions", "coulomb", "lj")):
    for g in groups:
        assert ours[g] == pytest.approx(ref[g], rel=rtol, abs=atol), f"group {g}: openmm {ours[g]} vs numpy {ref[g]}"


def _distorted(xyz, rng, amp_nm=0.01):
    return xyz + rng.normal(scale=amp_nm, size=xyz.shape)


def _combine(mols, offsets_nm, box_nm=None):
    mod = app.Modeller(app.Topology(), [])
    for m, off in zip(mols, offsets_nm):
        mod.add(m.topology, (m.positions_nm + off) * unit.nanometer)
    if box_nm is not None:
        mod.topology.setPeriodicBoxVectors(np.diag(box_nm) * unit.nanometer)
    return mod.topology, np.asarray(mod.getPositions().value_in_unit(unit.nanometer))


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("name", [sp.name for sp in all_species() if sp.kind != "polymer"])
def test_single_molecule_vacuum_groups(tables, name, rng):
    """Every species, distorted off its minimum so that every term contributes, NoCutoff."""
    m = molecule(name, seed=3)
    xyz = _distorted(m.positions_nm, rng)
    system = create_system(m.topology, charge_scale=0.8, constraints=None)
    ref = reference_energies(tables, m.topology, xyz, 0.8)
    assert ref["missing_torsions"] == [], f"{name}: torsions without parameters {ref['missing_torsions']}"
    ours = openmm_energies(system, xyz)
    assert_groups_match(ours, ref)
    assert ours["other"] == 0.0
    if m.topology.getNumAtoms() > 2:
        assert abs(ref["bonds"]) > 1.0 and abs(ref["angles"]) > 1.0  # the comparison is not vacuous


def test_cluster_vacuum_intermolecular(tables, rng):
    """Li+, PF6-, TFSI-, FSI- and solvents close together: scaled intermolecular Coulomb and geometric LJ."""
    names = ["Li", "PF6", "EC", "DMC", "Li", "TFSI", "FSI", "Li", "FEC", "PC", "EMC", "DEC"]
    mols = [molecule(n, seed=i) for i, n in enumerate(names)]
    offsets = [np.array(o) * 0.55 for o in itertools.product((0, 1, 2), (0, 1), (0, 1))][: len(mols)]
    top, xyz = _combine(mols, offsets)
    xyz = _distorted(xyz, rng, 0.005)
    system = create_system(top, charge_scale=0.75, constraints=None)
    ref = reference_energies(tables, top, xyz, 0.75)
    ours = openmm_energies(system, xyz)
    assert_groups_match(ours, ref)
    assert abs(ref["coulomb"]) > 100.0 and abs(ref["lj"]) > 1.0


def test_periodic_box_pme_and_lj_cutoff(tables, rng):
    """Small periodic LiPF6/EC/DMC box: LJ (min image, cutoff, long-range correction) and PME vs numpy Ewald."""
    names = ["Li", "PF6", "EC", "EC", "DMC", "Li", "PF6", "DMC"]
    mols = [molecule(n, seed=i) for i, n in enumerate(names)]
    box = np.array([2.2, 2.3, 2.4])
    offsets = [rng.uniform(0, 1, 3) * box for _ in mols]
    top, xyz = _combine(mols, offsets, box)
    system = create_system(top, charge_scale=0.8, cutoff_nm=1.0, constraints=None, ewald_error_tolerance=1e-6)
    ref = reference_energies(tables, top, xyz, 0.8, box_nm=box, cutoff_nm=1.0)
    ours = openmm_energies(system, xyz, box)
    assert_groups_match(ours, ref, groups=("bonds", "angles", "torsions", "lj"))
    assert ours["coulomb"] == pytest.approx(ref["coulomb"], rel=2e-4, abs=0.05)


def test_periodic_scaled_ions_keep_full_intramolecular_coulomb(tables, rng):
    """PME with TFSI-/FSI-: inside each ion the 1-5+ pairs are exceptions at full charge.

    An exception's chargeProd replaces the direct-space pair and OpenMM removes
    that pair's reciprocal-space part; the numpy side instead excludes the pair
    from a converged Ewald sum and adds plain full-charge Coulomb.  The negative
    control (every intramolecular pair scaled by s**2, the old model) differs.
    """
    names = ["Li", "TFSI", "EC", "Li", "FSI", "DMC"]
    mols = [molecule(n, seed=i) for i, n in enumerate(names)]
    box = np.array([2.1, 2.2, 2.3])
    top, xyz = _combine(mols, [rng.uniform(0, 1, 3) * box for _ in mols], box)
    system = create_system(top, charge_scale=0.8, cutoff_nm=1.0, constraints=None, ewald_error_tolerance=1e-6)
    ref = reference_energies(tables, top, xyz, 0.8, box_nm=box, cutoff_nm=1.0)
    ours = openmm_energies(system, xyz, box)
    assert ours["coulomb"] == pytest.approx(ref["coulomb"], rel=2e-4, abs=0.05)
    assert_groups_match(ours, ref, groups=("bonds", "angles", "torsions", "lj"))
    # negative control: the same ions with all their intramolecular pairs scaled (s**2 = 0.64)
    from aseimd.forcefield.charges import atom_charge_scales, scale_charges

    old = create_system(top, charge_scale=1.0, cutoff_nm=1.0, constraints=None, ewald_error_tolerance=1e-6)
    nb = next(f for f in old.getForces() if isinstance(f, openmm.NonbondedForce))
    scale_charges(nb, atom_charge_scales(top, 0.8))
    e_old = openmm_energies(old, xyz, box)["coulomb"]
    assert abs(e_old - ours["coulomb"]) > 10.0


def test_periodic_lj_with_switching(tables, rng):
    """LJ switched between 0.8 and 1.0 nm, long-range correction including the switched-off part."""
    mols = [molecule(n, seed=i) for i, n in enumerate(["DEC", "FEC", "TFSI", "Li", "PC", "EMC"])]
    box = np.array([2.1, 2.1, 2.2])
    top, xyz = _combine(mols, [rng.uniform(0, 1, 3) * box for _ in mols], box)
    system = create_system(top, cutoff_nm=1.0, switch_distance_nm=0.8, constraints=None)
    ref = reference_energies(tables, top, xyz, 0.8, box_nm=box, cutoff_nm=1.0, switch_nm=0.8)
    ours = openmm_energies(system, xyz, box)
    assert_groups_match(ours, ref, groups=("lj",))
    plain = reference_energies(tables, top, xyz, 0.8, box_nm=box, cutoff_nm=1.0)
    assert abs(plain["lj"] - ref["lj"]) > 1e-3  # the switch changes the energy, so the check can fail


def test_geometric_differs_from_lorentz_berthelot(tables):
    """Li+ next to the EC carbonyl O: the system uses geometric sigma; plain OpenMM (LB) would not."""
    li, ec = molecule("Li"), molecule("EC")
    names = [a.name for a in ec.topology.atoms()]
    o1, c1 = ec.positions_nm[names.index("O1")], ec.positions_nm[names.index("C1")]
    u = (o1 - c1) / np.linalg.norm(o1 - c1)
    top, xyz = _combine([ec, li], [np.zeros(3), o1 + 0.20 * u])
    ours = openmm_energies(create_system(top, charge_scale=1.0, constraints=None), xyz)
    ref = reference_energies(tables, top, xyz, 1.0)
    assert ours["lj"] == pytest.approx(ref["lj"], rel=1e-6)
    # the same pair with Lorentz-Berthelot sigma: clearly different
    s_li, e_li = tables.lj["aseimd-Li"]
    s_o, e_o = tables.lj["carb-O"]
    r = 0.20
    geo = 4 * math.sqrt(e_li * e_o) * ((math.sqrt(s_li * s_o) / r) ** 12 - (math.sqrt(s_li * s_o) / r) ** 6)
    lb = 4 * math.sqrt(e_li * e_o) * ((0.5 * (s_li + s_o) / r) ** 12 - (0.5 * (s_li + s_o) / r) ** 6)
    assert abs(lb - geo) > 0.1 * abs(geo)
    # OpenMM's stock NonbondedForce (LB) gives a different LJ+Coulomb total than ours
    # (li_metal.xml left out: its LIM template is graph-identical to Li+ and needs aseimd's name matcher)
    ff = app.ForceField(*(str(p) for p in sorted(data_dir("forcefields").glob("*.xml")) if p.name != "li_metal.xml"))
    stock = ff.createSystem(top, nonbondedMethod=app.NoCutoff, constraints=None)
    for f in stock.getForces():
        f.setForceGroup(3 if isinstance(f, openmm.NonbondedForce) else 0)
    e_stock = openmm_energies(stock, xyz)["coulomb"]  # group 3 = Coulomb + LB LJ here
    ref_lb = reference_energies(tables, top, xyz, 1.0, mixing="lorentz-berthelot")
    assert e_stock == pytest.approx(ref_lb["coulomb"] + ref_lb["lj"], rel=1e-6)
    assert abs(e_stock - (ours["coulomb"] + ours["lj"])) > 1.0


@pytest.mark.parametrize("switch_nm", [0.3, 0.5])
def test_switched_lj_inside_a_scaled_ion_does_not_depend_on_the_charge_scale(tables, switch_nm):
    """The full-charge 1-5+ pairs inside TFSI- (up to 0.77 nm apart) are moved out of the switched "LJ" force
    when ions are scaled: they must keep the switch (a plain bond would not), so the LJ energy of a geometry
    is the independent reference's, whatever the charge scale."""
    mols = [molecule("TFSI", seed=1), molecule("Li", seed=1)]
    box = np.array([4.0, 4.0, 4.0])
    top, xyz = _combine(mols, [np.full(3, 2.0), np.array([0.5, 3.5, 3.5])], box)
    ref = reference_energies(tables, top, xyz, 0.8, box_nm=box, cutoff_nm=1.0, switch_nm=switch_nm)
    energies = {}
    for scale in (1.0, 0.8):
        system = create_system(top, charge_scale=scale, cutoff_nm=1.0, switch_distance_nm=switch_nm,
                               constraints=None)
        energies[scale] = openmm_energies(system, xyz, box)["lj"]
    assert energies[0.8] == pytest.approx(energies[1.0], abs=1e-6)
    assert energies[0.8] == pytest.approx(ref["lj"], abs=1e-5)
