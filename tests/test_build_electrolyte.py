"""A tiny real electrolyte build: the system directory, its PDB, System and build.json."""

import json
import math

import numpy as np
import openmm
import pytest
from openmm import unit

from aseimd.build.cell import SYSTEM_FILES, Cell, read_system_dir, system_charge_e, write_system_dir
from aseimd.build.composition import AVOGADRO_PER_MOL, SALT_MOLAR_VOLUME_CM3_PER_MOL
from aseimd.build.electrolyte import PACKING_DENSITY_FRACTION, build_electrolyte
from aseimd.build.molecule import molecule
from aseimd.errors import AseimdError, OutputExistsError, SpecError
from aseimd.species import get_species

RECIPE = "1.0 M LiPF6 in EC:DMC 1:1 v/v"
N_SOLVENT = 30
CUTOFF_NM = 0.7


@pytest.fixture(scope="module")
def cell():
    return build_electrolyte(RECIPE, n_solvent=N_SOLVENT, seed=0)


@pytest.fixture(scope="module")
def system_dir(cell, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "elyte"
    write_system_dir(cell, out, charge_scale=0.8, cutoff_nm=CUTOFF_NM)
    return out


def _min_image_intermolecular_nm(positions_nm, box_nm, residue_of_atom):
    d = positions_nm[:, None, :] - positions_nm[None, :, :]
    d -= box_nm * np.round(d / box_nm)
    r = np.sqrt((d**2).sum(-1))
    return r[residue_of_atom[:, None] != residue_of_atom[None, :]].min()


def test_counts_and_box(cell):
    counts = cell.provenance["counts"]
    assert counts == {"Li": 2, "PF6": 2, "EC": 17, "DMC": 13}
    volume_nm3 = cell.provenance["estimated_volume_nm3"]
    assert np.prod(cell.box_nm) == pytest.approx(volume_nm3 / PACKING_DENSITY_FRACTION, rel=1e-12)
    assert cell.n_atoms == 2 * 1 + 2 * 7 + 17 * 10 + 13 * 12


def test_system_directory_files(system_dir, cell):
    assert sorted(p.name for p in system_dir.iterdir()) == sorted([*SYSTEM_FILES, ".aseimd"])
    assert not list(system_dir.parent.glob(".*partial"))  # staging directory cleaned up
    pdb, system, build = read_system_dir(system_dir)
    assert system.getNumParticles() == pdb.topology.getNumAtoms() == cell.n_atoms == build["n_atoms"]
    box = pdb.topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)
    np.testing.assert_allclose(np.diag(np.array([list(v) for v in box])), cell.box_nm, atol=1e-3)


def test_pdb_residue_and_atom_names(system_dir, cell):
    pdb, _, build = read_system_dir(system_dir)
    residues = list(pdb.topology.residues())
    by_name = {}
    for res in residues:
        by_name[res.name] = by_name.get(res.name, 0) + 1
    expected = {get_species(name).residue: n for name, n in build["counts"].items()}
    assert by_name == expected
    for name in build["counts"]:
        template = [a.name for a in molecule(name).topology.atoms()]
        res = next(r for r in residues if r.name == get_species(name).residue)
        assert [a.name for a in res.atoms()] == template
    # bonds survive the PDB round trip (CONECT records)
    n_bonds = sum(n * molecule(name).topology.getNumBonds() for name, n in build["counts"].items())
    assert pdb.topology.getNumBonds() == n_bonds


def test_charge_neutral_system(system_dir):
    _, system, build = read_system_dir(system_dir)
    assert system_charge_e(system) == pytest.approx(0.0, abs=1e-6)
    assert build["net_charge_e"] == pytest.approx(0.0, abs=1e-6)
    # ions carry the scaled charge
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    assert nb.getParticleParameters(0)[0].value_in_unit(unit.elementary_charge) == pytest.approx(0.8)
    assert nb.getCutoffDistance().value_in_unit(unit.nanometer) == pytest.approx(CUTOFF_NM)


def test_no_overlaps_closer_than_tolerance(system_dir):
    pdb, _, build = read_system_dir(system_dir)
    x = np.array(pdb.positions.value_in_unit(unit.nanometer))
    residue = np.array([a.residue.index for a in pdb.topology.atoms()])
    tol = build["packing"]["tolerance_nm"]
    assert tol == pytest.approx(0.2)
    # Packmol meets its tolerance within its precision; the PDB rounds to 1e-4 nm
    assert _min_image_intermolecular_nm(x, np.array(build["box_nm"]), residue) >= tol - 0.005


def test_energy_is_finite(system_dir):
    pdb, system, _ = read_system_dir(system_dir)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pdb.positions)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert math.isfinite(energy)
    # no atoms on top of each other: the packed box is not absurdly repulsive (< 1e4 kJ/mol per molecule)
    assert energy < 1e4 * pdb.topology.getNumResidues()


def test_build_json_contents(system_dir, cell):
    build = json.loads((system_dir / "build.json").read_text())
    assert build["recipe"] == {"requested": RECIPE, "canonical": "1 M LiPF6 in EC:DMC 1:1 v/v"}
    assert build["seed"] == 0 and build["charge_scale"] == 0.8
    assert build["system_options"] == {"cutoff_nm": CUTOFF_NM}
    assert set(build["forcefield"]["files"]) >= {"carbonates.xml", "ions.xml"}
    assert all(len(h) == 64 for h in build["forcefield"]["files"].values())
    assert build["forcefield"]["openmm_version"] == openmm.__version__
    for key in ("aseimd_version", "created_utc", "estimated_density_g_per_cm3", "box_nm", "packing"):
        assert key in build
    salt = build["salts"][0]
    assert salt["salt"] == "LiPF6" and salt["requested"] == 1.0 and salt["unit"] == "mol/L"
    # achieved molarity recomputed independently from the residues in the PDB
    pdb, _, _ = read_system_dir(system_dir)
    n = {}
    for res in pdb.topology.residues():
        n[res.name] = n.get(res.name, 0) + 1

    def vm(name):
        sp = get_species(name)
        return sp.molar_mass_g_per_mol / sp.density_g_per_cm3

    v_cm3 = (n["EC"] * vm("EC") + n["DMC"] * vm("DMC")
             + n["LI"] * SALT_MOLAR_VOLUME_CM3_PER_MOL["LiPF6"]) / AVOGADRO_PER_MOL
    assert salt["achieved"] == pytest.approx(n["LI"] / AVOGADRO_PER_MOL / (v_cm3 / 1000), rel=1e-9)


def test_seed_reproducibility(cell):
    again = build_electrolyte(RECIPE, n_solvent=N_SOLVENT, seed=0)
    np.testing.assert_array_equal(again.positions_nm, cell.positions_nm)
    other = build_electrolyte(RECIPE, n_solvent=N_SOLVENT, seed=1)
    assert np.abs(other.positions_nm - cell.positions_nm).max() > 0.1


def test_existing_directory_is_not_clobbered(cell, tmp_path):
    out = tmp_path / "elyte"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError):
        write_system_dir(cell, out, cutoff_nm=CUTOFF_NM)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(OutputExistsError, match="keep.txt"):  # --force replaces only what aseimd wrote
        write_system_dir(cell, out, cutoff_nm=CUTOFF_NM, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    mine = tmp_path / "mine"
    write_system_dir(cell, mine, cutoff_nm=CUTOFF_NM)
    write_system_dir(cell, mine, cutoff_nm=CUTOFF_NM, force=True)
    assert sorted(p.name for p in mine.iterdir()) == sorted([*SYSTEM_FILES, ".aseimd"])


def test_bad_system_options_leave_nothing_behind(cell, tmp_path):
    out = tmp_path / "elyte"
    with pytest.raises(AseimdError, match="cutoff_nm 1.2"):
        write_system_dir(cell, out, cutoff_nm=1.2)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing_behind(cell, tmp_path, monkeypatch):
    import aseimd.forcefield

    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(aseimd.forcefield, "forcefield_provenance", broken)
    out = tmp_path / "elyte"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_system_dir(cell, out, cutoff_nm=CUTOFF_NM)
    assert list(tmp_path.iterdir()) == []


def test_read_system_dir_names_missing_files(tmp_path):
    with pytest.raises(SpecError, match="missing system.pdb, system.xml, build.json"):
        read_system_dir(tmp_path)


def test_cell_checks_shapes():
    top = molecule("EC").topology
    with pytest.raises(ValueError, match="positions_nm"):
        Cell(top, np.zeros((3, 3)), np.ones(3))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"seed": -1}, "seed"),
    ({"packing_density_fraction": 1.5}, "packing_density_fraction"),
])
def test_bad_build_options(kwargs, fragment):
    with pytest.raises(SpecError, match=fragment):
        build_electrolyte(RECIPE, n_solvent=N_SOLVENT, **kwargs)


def _stereo_signs(cell, resname):
    """Sign of the signed volume at each residue's stereocentre (the C with three heavy neighbours and one H)."""
    bonded = {}
    for a, b in cell.topology.bonds():
        bonded.setdefault(a.index, []).append(b)
        bonded.setdefault(b.index, []).append(a)
    signs = []
    for res in cell.topology.residues():
        if res.name != resname:
            continue
        for atom in res.atoms():
            nbrs = bonded.get(atom.index, [])
            heavy = sorted(n.index for n in nbrs if n.element.symbol != "H")
            if atom.element.symbol == "C" and len(nbrs) == 4 and len(heavy) == 3:
                x = cell.positions_nm
                signs.append(np.sign(np.linalg.det(x[heavy] - x[atom.index])))
    return np.array(signs)


def test_chiral_solvent_is_racemic():
    """PC has one stereocentre; a PC box holds both enantiomers in equal numbers (up to one)."""
    pc = build_electrolyte("PC", n_solvent=9, seed=4)
    signs = _stereo_signs(pc, "PC")
    assert len(signs) == 9
    assert sorted([int((signs > 0).sum()), int((signs < 0).sum())]) == [4, 5]
    assert pc.provenance["racemic_species"] == ["PC"]
    dmc = build_electrolyte("DMC", n_solvent=4, seed=4)
    assert dmc.provenance["racemic_species"] == []
