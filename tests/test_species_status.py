"""Literature vs derived parameter sets: in the species table, `aseimd species` and build.json."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from aseimd.cli import main
from aseimd.forcefield import forcefield_provenance
from aseimd.species import PARAMETER_STATUSES, all_species, get_species

#: Which sets are published (read in their source) and which aseimd derived (forcefields/README.md).
EXPECTED = {"Li": "literature", "PF6": "literature", "TFSI": "literature", "FSI": "literature",
            "EC": "literature", "PC": "literature",
            "DMC": "derived", "EMC": "derived", "DEC": "derived", "FEC": "derived",
            # polymer residues: OPLS-AA ethers / nitriles; PDMS is CVFF used with the family's 1-4 scaling;
            # the Nafion side-chain unit has derived perfluoroether terms, its CF2/CF3 units are W&J 2001
            "PEH": "literature", "PEO": "literature", "PET": "literature",
            "PAH": "literature", "PAN": "literature", "PAT": "literature",
            "DMH": "derived", "DMR": "derived", "DMT": "derived",
            "NFH": "literature", "NFR": "literature", "NFS": "derived", "NFT": "literature",
            "LiMetal": "literature"}  # UFF Li (Rappe et al. 1992), not fitted to Li surfaces


def test_status_per_species():
    assert {sp.name: sp.parameter_status for sp in all_species()} == EXPECTED
    for sp in all_species():
        assert sp.parameter_status in PARAMETER_STATUSES
        if sp.parameter_status == "derived":
            assert sp.parameter_label.startswith("derived (rule: ") and sp.derivation_rule in sp.parameter_label
        else:
            assert sp.parameter_label == "literature"


def test_pc_types_not_attributed_to_jorgensen_1996():
    for name in ("EC", "PC", "DMC"):
        src = get_species(name).source
        assert "Silva" in src and "THEOCHEM 806, 23 (2007)" in src
        assert "opls_771-779 (Jorgensen" not in src


def test_inconsistent_status_is_refused():
    sp = get_species("EC")
    with pytest.raises(ValueError, match="derivation_rule"):
        dataclasses.replace(sp, parameter_status="derived")
    with pytest.raises(ValueError, match="parameter_status"):
        dataclasses.replace(sp, parameter_status="guessed")


def test_cli_species_shows_status_and_rules():
    result = CliRunner().invoke(main, ["species"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "parameters" in lines[0]
    for sp in all_species():
        row = next(line for line in lines if line.split()[:2] == [sp.name, sp.residue])
        assert f" {sp.parameter_status} " in row
        if sp.parameter_status == "derived":
            assert f"  {sp.name}: derived (rule: " in result.output


def test_provenance_sources_carry_status():
    sources = forcefield_provenance()["sources"]
    for sp in all_species():
        assert sources[sp.residue] == {"citation": sp.source, "parameter_status": sp.parameter_label}
