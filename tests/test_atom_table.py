"""The PDB atom table and the selection evaluator that spare mdtraj on the DCD + PDB path equal mdtraj exactly.

``aseimd.analysis.atom_table.read_pdb_table`` must give mdtraj's topology (names, residues, residue numbers,
chains, elements, masses) for every PDB it accepts and decline (``None``) the rest; ``selection.select`` must
give mdtraj's indices for every string it accepts and decline the rest, including everything mdtraj rejects,
so that errors stay mdtraj's.
"""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import mdtraj
import numpy as np
import pytest
from synthetic import ions, molecules, write_trajectory

import aseimd.analysis.trajectory as trajectory_mod
from aseimd.analysis.atom_table import ELEMENT_MASSES, AtomTable, read_pdb_table
from aseimd.analysis.selection import select
from aseimd.analysis.trajectory import Trajectory
from aseimd.errors import AnalysisError

DATA = Path(__file__).parent / "data"
FIELDS = ("names", "residue", "residue_names", "residue_seq", "residue_chain", "symbols", "masses")


@pytest.fixture(scope="module")
def quickstart_pdb(tmp_path_factory) -> Path:
    """The quickstart interface cell as ``aseimd build interface quickstart`` wrote it (OpenMM's PDB writer)."""
    path = tmp_path_factory.mktemp("qs") / "system.pdb"
    path.write_bytes(gzip.decompress((DATA / "quickstart_system.pdb.gz").read_bytes()))
    return path


def _same_table(a: AtomTable, b: AtomTable) -> None:
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, tuple):
            assert x == y, field
        else:
            assert x.dtype.kind == y.dtype.kind and np.array_equal(x, y), field


def _mdtraj_table(path: Path) -> AtomTable:
    return AtomTable.from_mdtraj(mdtraj.load_topology(str(path)))


def test_element_masses_are_mdtrajs_to_the_bit():
    for symbol, mass in ELEMENT_MASSES.items():
        element = mdtraj.element.get_by_symbol(symbol)
        assert element.symbol == symbol and element.mass == mass, symbol


#: PDBs written by ``aseimd build`` (see data/README.md) and their atom counts.
BUILT = {"quickstart_system.pdb.gz": 1784, "lipf6_ec_dmc_system.pdb.gz": 918, "litfsi_pc_system.pdb.gz": 1200}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_aseimd_built_cells_read_as_mdtraj_reads_them(name, tmp_path):
    path = tmp_path / name.removesuffix(".gz")
    path.write_bytes(gzip.decompress((DATA / name).read_bytes()))
    light = read_pdb_table(path)
    assert light is not None  # the common case takes the light path
    _same_table(light, _mdtraj_table(path))
    assert light.n_atoms == BUILT[name] and len(set(light.residue_chain)) >= 3  # chains closed by TER records
    top = mdtraj.load_topology(str(path))
    for s in SUPPORTED:
        assert np.array_equal(select(light, s), top.select(s)), s


def test_mdtraj_written_pdb_reads_the_same(tmp_path, rng):
    residues = (ions(5, "LI", "LI", "Li") + ions(5, "PF6", "P", "P", chain=1)
                + molecules(4, "EC", [("O1", "O"), ("C1", "C"), ("H1", "H")], chain=2) + ions(3, "XE", "XE", "Xe"))
    top, _ = write_trajectory(tmp_path, rng.uniform(0, 2, (3, 25, 3)), (2.0, 2.0, 2.0), residues)
    light = read_pdb_table(top)
    assert light is not None
    _same_table(light, _mdtraj_table(top))


def _edit(lines: list[str], k: int, col: int, text: str) -> list[str]:
    out = list(lines)
    out[k] = out[k][:col] + text + out[k][col + len(text):]
    return out


def _variants(lines: list[str]) -> dict[str, list[str]]:
    """PDB variants the light reader must either read as mdtraj does or decline."""
    first = next(k for k, ln in enumerate(lines) if ln.startswith(("ATOM", "HETATM")))
    second = first + 1
    atoms = [ln for ln in lines if ln.startswith(("ATOM", "HETATM"))]
    return {
        "alt location": _edit(lines, second, 16, "A"),
        "no element": [ln[:76] if k == second else ln for k, ln in enumerate(lines)],
        "unknown element": _edit(lines, second, 76, "Qq"),
        "element in upper case": _edit(lines, second, 76, "LI"),
        "4-character residue name": _edit(lines, second, 17, "LIMX"),
        "renamed residue (WAT)": _edit(lines, second, 17, "WAT"),
        "hybrid-36 serial": _edit(lines, second, 6, "A0000"),
        "residue number overflow": _edit(lines, second, 22, "****"),
        "negative residue number": _edit(lines, second, 22, "  -1"),
        "insertion code": _edit(lines, second, 26, "B"),
        "two models": ["MODEL        1"] + atoms + ["ENDMDL", "MODEL        2"] + atoms + ["ENDMDL", "END"],
        "one model": ["MODEL        1"] + atoms + ["ENDMDL", "END"],
        "atoms after END": atoms[:5] + ["END"] + atoms[5:10],
        "TER inside a chain": atoms[:3] + ["TER"] + atoms[3:20] + ["END"],
        "no TER, one chain id": [ln[:21] + "A" + ln[22:] for ln in atoms[:40]] + ["END"],
        "bad coordinate": _edit(lines, second, 30, "   x.000"),
        "bad cell": ["CRYST1   abc"] + atoms[:10],
        "short line": [ln[:60] if k == second else ln for k, ln in enumerate(lines)],
    }


def test_pdb_variants_are_read_as_mdtraj_does_or_declined(quickstart_pdb, tmp_path):
    lines = quickstart_pdb.read_text().splitlines()
    read = {}
    for name, variant in _variants(lines).items():
        path = tmp_path / f"{name.replace(' ', '_')}.pdb"
        path.write_text("\n".join(variant) + "\n")
        light = read_pdb_table(path)
        read[name] = light is not None
        if light is not None:
            _same_table(light, _mdtraj_table(path))
    assert not read["alt location"] and not read["no element"] and not read["renamed residue (WAT)"]
    assert not read["two models"] and not read["atoms after END"] and not read["hybrid-36 serial"]
    assert read["one model"] and read["TER inside a chain"] and read["insertion code"]
    assert read["element in upper case"] and read["no TER, one chain id"]


#: Selections aseimd's defaults, docs and benchmarks use, and the rest of the subset: the light path must take them.
SUPPORTED = [
    "resname LI", "resname PF6", "resname EC and name O1", "resname DMC and name O1",
    "resname PEH PEO PET and element O", "(resname PF6 and element F) or (resname TFS and element O)",
    "resname LI or (resname PF6 and name P)", "resname PF6 and name P", "resname TFS and element O",
    "resname LIM", "all", "everything", "not resname LIM", "resname LI or resname PF6", "index 0 to 9", "index 5",
    "index 1 2 3", "index 1783", "resid 0 to 3", "resi 4", "resSeq 1 to 5", "residue 3", "residue 3 4 9",
    "chainid 1", "chainid 0 1 and not element H", "element Li", "symbol C and resname EC", "type O", "! resname LI",
    "resname LI && name LI", "resname LI || resname PF6", "not not resname LI", "!!resname LI",
    "not (resname EC or resname DMC) and element O", "resname EC and not name O1 and element O", "name LI",
    "resn DMC", "resname LI PF6 TFS", "(resname LI)", "(resname LI) or (resname PF6 and name P)",
    "resname LI and name LI or resname PF6", "not resname LI and resname PF6", "resname LI or resname PF6 and name P",
    "resname EC and(name O1)", "   resname LI   ", "resname PEO and index 200 to 300 and not element H",
    "resname LI or resname PF6 && name P || resname TFS and element N", "not ! resname LI", "index 0 to 0",
    "index 9 to 3", "resname NOPE", "name O1 O2 O3 and resname EC DMC", "chainid 0 to 5 and element Li",
]
#: mdtraj syntax outside the subset: must go to mdtraj (None), which answers it.
UNSUPPORTED = [
    "mass > 2", "mass 6 to 7", "index", "index a", "index 1 to", "index to 5", "resname 'LI'", 'resname "LI"',
    "name =~ 'O.*'", "water", "protein",
    "resname LI and mass < 10", "name", "resname", "index 007", "resname True", "resname LI to PF6",
    "not(resname LI)", "! not resname LI", "resname 1", "index 1.5", "index < 5", "index eq 5", "resname LI and name",
    "segname A", "resname LI name LI", "resname LI name", "backbone", "RESNAME LI", "resname LI AND name LI",
    "((resname LI) or (resname PF6 and name P))",  # nesting mdtraj 1.11 may not parse (RecursionError): its answer
]
#: Not selections at all: mdtraj rejects them, so must the light path (by declining).
INVALID = ["resname LI and", "foo bar", "(resname LI", "resname LI)", "", "and", "name O1 or or name O2",
           "resname LI and and resname PF6", "not", "()", "resname LI ) (", "x y z w",
           "resname LI or", "resname LI or not"]


def _mdtraj_select(top, selection):
    try:
        return top.select(selection)
    except Exception:
        return None


def test_selections_give_mdtrajs_indices(quickstart_pdb):
    table = read_pdb_table(quickstart_pdb)
    top = mdtraj.load_topology(str(quickstart_pdb))
    for s in SUPPORTED:
        light = select(table, s)
        assert light is not None, f"{s!r} should take the light path"
        assert np.array_equal(light, top.select(s)), s
    for s in UNSUPPORTED + INVALID:
        light = select(table, s)
        assert light is None, f"{s!r} should go to mdtraj"
    assert select(table, "((resname LI))") is None  # two levels: mdtraj's
    for s in INVALID:
        assert _mdtraj_select(top, s) is None, f"{s!r} is accepted by mdtraj"


def test_combined_selections_agree_with_mdtraj(quickstart_pdb):
    """Every pairing of atoms by two terms with and / or / not, parenthesised or not, as mdtraj evaluates it."""
    table = read_pdb_table(quickstart_pdb)
    top = mdtraj.load_topology(str(quickstart_pdb))
    terms = ["resname LI", "element O", "name O1 C1", "index 100 to 900", "chainid 3 to 40", "not resname EC",
             "resSeq 2 to 4", "symbol H"]
    n_light = 0
    for a, b in itertools.combinations(terms, 2):
        for form in ("{a} and {b}", "not {a} or {b}", "not ({a} or {b})", "{a} or {b} and {a}",
                     "({a} or {b}) and not {b}", "! {a} || {b} && {a}"):
            s = form.format(a=a, b=b)
            light = select(table, s)
            ref = _mdtraj_select(top, s)
            if light is not None:
                n_light += 1
                assert ref is not None and np.array_equal(light, ref), s
    assert n_light >= 160  # all but "! not ...", which mdtraj does not parse


def test_trajectory_selects_without_mdtraj_and_errors_stay_mdtrajs(quickstart_pdb, tmp_path, monkeypatch, rng):
    xyz = rng.uniform(0, 2, (4, 1784, 3))
    top = mdtraj.load_topology(str(quickstart_pdb))
    dcd = tmp_path / "t.dcd"
    mdtraj.Trajectory(xyz, top, unitcell_lengths=np.full((4, 3), 2.1), unitcell_angles=np.full((4, 3), 90.0)).save_dcd(
        str(dcd))
    light = Trajectory(quickstart_pdb, dcd, dt_ps=1.0)
    assert light._topology is None  # not loaded: the PDB was read without mdtraj
    monkeypatch.setattr(trajectory_mod, "read_pdb_table", lambda path: None)
    heavy = Trajectory(quickstart_pdb, dcd, dt_ps=1.0)
    assert heavy._topology is not None
    for s in SUPPORTED[:12] + UNSUPPORTED[:3]:
        try:
            expected = heavy.select(s, "g")
        except AnalysisError as exc:
            with pytest.raises(AnalysisError) as got:
                light.select(s, "g")
            assert str(got.value) == str(exc)
            continue
        assert np.array_equal(light.select(s, "g"), expected), s
        assert np.array_equal(light.masses(expected), heavy.masses(expected))
    for s in INVALID[:6] + ["resname NOPE"]:
        with pytest.raises(AnalysisError) as a:
            heavy.select(s, "g")
        with pytest.raises(AnalysisError) as b:
            light.select(s, "g")
        assert str(a.value) == str(b.value) and "\n" not in str(b.value)
    assert light.atoms.n_atoms == heavy.n_atoms == 1784
    _same_table(light.atoms, heavy.atoms)
    assert light.topology.n_atoms == 1784  # loaded on demand for the analyses that want the mdtraj object
