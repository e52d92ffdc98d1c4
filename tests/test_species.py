"""The species table and ``aseimd species``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from aseimd.cli import main
from aseimd.errors import BuildError
from aseimd.species import (
    KINDS,
    SALTS,
    Species,
    all_species,
    get_salt,
    get_species,
    species_for_residue,
)


def test_table_is_consistent():
    names = [sp.name for sp in all_species()]
    residues = [sp.residue for sp in all_species()]
    assert len(set(names)) == len(names) and len(set(residues)) == len(residues)
    for required in ("Li", "PF6", "TFSI", "FSI", "EC", "PC", "DMC", "EMC", "DEC", "FEC"):
        assert required in names
    for sp in all_species():
        assert sp.kind in KINDS and sp.source and sp.forcefield_file.endswith(".xml")
        if sp.kind == "solvent":
            assert sp.density_g_per_cm3 > 0 and sp.density_T_K > 0


@pytest.mark.parametrize("key, name", [("li+", "Li"), ("NTf2", "TFSI"), ("tfs", "TFSI"), (" ec ", "EC"),
                                       ("PF6-", "PF6")])
def test_lookup(key, name):
    assert get_species(key).name == name


def test_unknown_species_lists_allowed():
    with pytest.raises(BuildError, match=r"unknown species 'water'; allowed: Li, PF6"):
        get_species("water")


def test_salts():
    cat, an = get_salt("lipf6")
    assert (cat.name, an.name) == ("Li", "PF6")
    for salt in SALTS:
        c, a = get_salt(salt)
        assert c.formal_charge + a.formal_charge == 0
    with pytest.raises(BuildError, match="LiPF6"):
        get_salt("NaCl")


def test_species_for_residue():
    assert species_for_residue("TFS").name == "TFSI"
    assert species_for_residue("HOH") is None


def test_molar_mass():
    assert get_species("EC").molar_mass_g_per_mol == pytest.approx(88.06, abs=0.01)
    assert get_species("PF6").molar_mass_g_per_mol == pytest.approx(144.96, abs=0.01)


def test_species_validation():
    with pytest.raises(ValueError, match="kind"):
        Species("X", "X", "gas", 0, "C", "x.xml", "none")
    with pytest.raises(ValueError, match="longer than 3"):
        Species("X", "XXXX", "solvent", 0, "C", "x.xml", "none")
    with pytest.raises(ValueError, match="ionic_atoms"):
        Species("X", "X", "anion", -1, "[Cl-]", "x.xml", "none", ionic_atoms=("CL",))


def test_cli_species():
    result = CliRunner().invoke(main, ["species"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:5] == ["name", "residue", "kind", "charge", "file"]
    for sp in all_species():
        row = next(line for line in lines if line.split()[:2] == [sp.name, sp.residue])
        assert f"{sp.formal_charge:+d}" in row and sp.forcefield_file in row and sp.source[:20] in row
    for salt in SALTS:
        assert any(line.split()[:1] == [salt] for line in lines)


def test_cli_species_help():
    result = CliRunner().invoke(main, ["species", "--help"])
    assert result.exit_code == 0 and "salts" in result.output
