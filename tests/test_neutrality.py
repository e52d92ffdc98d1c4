"""create_system refuses non-integral residues and charged periodic boxes; every shipped species and salt is neutral."""

from __future__ import annotations

import shutil

import numpy as np
import openmm
import pytest
from click.testing import CliRunner
from openmm import app, unit

from aseimd.build.cell import system_charge_e
from aseimd.build.molecule import molecule
from aseimd.cli import main
from aseimd.errors import ForceFieldError
from aseimd.forcefield import check_neutrality, create_system
from aseimd.resources import data_dir
from aseimd.species import SALTS, all_species, get_salt


def _broken_forcefield_dir(tmp_path):
    """A copy of forcefields/ in which EC's carbonyl C carries +0.87 e instead of +0.86 e (net +0.01 e)."""
    folder = tmp_path / "ff"
    shutil.copytree(data_dir("forcefields"), folder)
    path = folder / "carbonates.xml"
    text = path.read_text()
    old = '<Residue name="EC">\n   <Atom name="C1" type="carb-Cr" charge="0.8600"/>'
    assert old in text
    path.write_text(text.replace(old, old.replace("0.8600", "0.8700")))
    return folder


def _box(names, edge_nm=3.0):
    mod = app.Modeller(app.Topology(), [])
    for k, name in enumerate(names):
        m = molecule(name, seed=k)
        mod.add(m.topology, (m.positions_nm + 0.7 * k) * unit.nanometer)
    mod.topology.setPeriodicBoxVectors(np.eye(3) * edge_nm * unit.nanometer)
    return mod.topology


def test_non_integral_residue_is_refused_naming_it(tmp_path):
    folder = _broken_forcefield_dir(tmp_path)
    ff = app.ForceField(*(str(p) for p in sorted(folder.glob("*.xml"))))
    top = molecule("EC").topology
    with pytest.raises(ForceFieldError, match=r"residue 'EC' \(index 0, chain 0\) has net charge \+0\.010000 e"):
        create_system(top, forcefield=ff)


def test_non_integral_residue_cli_exit_2(tmp_path, monkeypatch):
    """Through the CLI: exit 2, one line naming the residue, nothing written."""
    from aseimd.forcefield import loader

    folder = _broken_forcefield_dir(tmp_path)
    monkeypatch.setattr(loader, "data_dir", lambda name: folder)
    out = tmp_path / "elyte"
    result = CliRunner().invoke(main, ["build", "electrolyte", "1 M LiPF6 in EC", "-o", str(out),
                                       "--n-solvent", "40", "--cutoff-nm", "0.7"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert "residue 'EC'" in result.output and "not an integer" in result.output
    assert not out.exists()


def test_tolerance_is_1e6_e():
    top = app.Topology()
    res = top.addResidue("XYZ", top.addChain())
    top.addAtom("A", app.Element.getBySymbol("C"), res)
    check_neutrality(top, np.array([1.0 + 5e-7]), periodic=False)
    with pytest.raises(ForceFieldError, match="'XYZ'"):
        check_neutrality(top, np.array([1.0 + 2e-6]), periodic=False)


def test_charged_periodic_box_is_refused_but_a_lone_ion_in_vacuum_is_not():
    with pytest.raises(ForceFieldError, match=r"periodic box has net charge -1 e .*1 PF6 \(-1 e\)"):
        create_system(_box(["PF6", "EC"]))
    create_system(molecule("PF6").topology)  # vacuum: a charged molecule is fine


@pytest.mark.parametrize("salt", sorted(SALTS))
def test_every_salt_with_every_solvent_builds_neutral(salt):
    cation, anion = get_salt(salt)
    solvents = [sp.name for sp in all_species() if sp.kind == "solvent"]
    top = _box([cation.name, anion.name, *solvents], edge_nm=4.0)
    system = create_system(top, charge_scale=0.8, cutoff_nm=1.0)
    assert system_charge_e(system) == pytest.approx(0.0, abs=1e-9)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    q = [nb.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge) for i in range(top.getNumAtoms())]
    per_res = [sum(q[a.index] for a in r.atoms()) for r in top.residues()]
    assert per_res[:2] == pytest.approx([0.8, -0.8], abs=1e-9)  # scaled ions
    assert per_res[2:] == pytest.approx([0.0] * len(solvents), abs=1e-9)
