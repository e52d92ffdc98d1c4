"""The cut-off is checked against the expected *equilibrium* box at build time; OpenMM's NPT error is translated."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from aseimd.build.composition import (EQUILIBRIUM_EDGE_MARGIN, check_cutoff_fits, count_molecules,
                                      min_equilibrium_edge_nm, min_n_solvent_for_cutoff)
from aseimd.build.electrolyte import build_electrolyte
from aseimd.cli import main
from aseimd.errors import BuildError, SimulationError, SpecError

RECIPE = "1.0 M LiPF6 in EC:DMC 1:1 v/v"


def test_min_edge_closed_form():
    assert min_equilibrium_edge_nm(1.0) == pytest.approx(2.0 / (1 - EQUILIBRIUM_EDGE_MARGIN))
    assert min_equilibrium_edge_nm(0.9, margin=0.0) == pytest.approx(1.8)


@pytest.mark.parametrize("cutoff_nm", [0.8, 0.9, 1.0, 1.2])
def test_min_n_solvent_is_the_first_that_fits(cutoff_nm):
    n = min_n_solvent_for_cutoff(RECIPE, cutoff_nm)
    need = min_equilibrium_edge_nm(cutoff_nm)
    assert count_molecules(RECIPE, n_solvent=n).volume_nm3 ** (1 / 3) >= need
    assert count_molecules(RECIPE, n_solvent=n - 1).volume_nm3 ** (1 / 3) < need
    check_cutoff_fits(count_molecules(RECIPE, n_solvent=n), cutoff_nm)  # no error


def test_issue_case_60_solvents_1nm_is_refused_with_the_numbers():
    """60 solvents pack into a 2.10 nm box (passes 2 x 1.0 nm) but equilibrate near 1.99 nm: refused."""
    with pytest.raises(BuildError) as err:
        build_electrolyte(RECIPE, n_solvent=60, cutoff_nm=1.0)
    msg = str(err.value)
    edge = count_molecules(RECIPE, n_solvent=60).volume_nm3 ** (1 / 3)
    packed = (count_molecules(RECIPE, n_solvent=60).volume_nm3 / 0.85) ** (1 / 3)
    assert packed > 2.0 > edge  # the old packed-box check would have let it through
    for number in (f"{edge:.3f} nm", f"packed {packed:.3f} nm", f"{min_equilibrium_edge_nm(1.0):.3f} nm",
                   f"n_solvent >= {min_n_solvent_for_cutoff(RECIPE, 1.0)}"):
        assert number in msg
    assert "\n" not in msg


def test_huge_cutoff_does_not_suggest_a_box_above_the_packing_limit():
    """A 50 nm cut-off would need ~10^8 atoms: the message says so instead of suggesting n_solvent."""
    from aseimd.build.composition import n_atoms_of
    from aseimd.build.packing import MAX_PACK_ATOMS

    comp = count_molecules(RECIPE, n_solvent=100)
    # closed form: EC 10, DMC 12, Li 1, PF6 7 atoms per molecule
    counts = comp.species_counts
    assert n_atoms_of(comp) == 10 * counts["EC"] + 12 * counts["DMC"] + counts["Li"] * 1 + counts["PF6"] * 7
    with pytest.raises(BuildError) as err:
        check_cutoff_fits(comp, 50.0)
    msg = str(err.value)
    assert f"{MAX_PACK_ATOMS}-atom packing limit" in msg and "n_solvent >=" not in msg
    assert "use cutoff_nm <=" in msg and "\n" not in msg


def test_bad_cutoff_value():
    with pytest.raises(SpecError, match="cutoff_nm must be a positive number"):
        check_cutoff_fits(count_molecules(RECIPE, n_solvent=100), -1.0)


def test_cli_refuses_before_packing(tmp_path):
    out = tmp_path / "elyte"
    result = CliRunner().invoke(main, ["build", "electrolyte", RECIPE, "-o", str(out), "--n-solvent", "60"])
    assert result.exit_code == 2, result.output
    assert "box too small for cutoff_nm 1" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_build_json_records_the_check(tmp_path):
    out = tmp_path / "elyte"
    result = CliRunner().invoke(main, ["build", "electrolyte", RECIPE, "-o", str(out), "--n-solvent", "30",
                                       "--cutoff-nm", "0.7"])
    assert result.exit_code == 0, result.output
    check = json.loads((out / "build.json").read_text())["cutoff_check"]
    assert check["cutoff_nm"] == 0.7 and check["margin"] == EQUILIBRIUM_EDGE_MARGIN
    assert check["expected_equilibrium_edge_nm"] >= min_equilibrium_edge_nm(0.7)


def test_quickstart_help_says_demonstration():
    result = CliRunner().invoke(main, ["quickstart", "--help"])
    assert result.exit_code == 0
    assert "demonstration" in result.output and "HMR" in result.output


def test_runner_translates_box_smaller_than_twice_the_cutoff(tmp_path):
    """A toy box squeezed at 50 kbar below 2 x cut-off: the message says what it means and how to fix it."""
    from aseimd.simulate.protocol import Protocol
    from aseimd.simulate.runner import run_protocol
    from aseimd.simulate.toy import write_toy_system

    system_dir = write_toy_system(tmp_path / "sys", box_nm=1.81, cutoff_nm=0.9, n_lj=60, n_water=5)
    protocol = Protocol.from_dict({
        "name": "squeeze", "seed": 3, "pressure_bar": 50000.0,
        "report": {"thermo_steps": 20, "trajectory_steps": 20, "checkpoint_steps": 100},
        "stages": [{"type": "minimize", "max_iterations": 100},
                   {"type": "npt", "length_steps": 2000, "barostat_interval_steps": 2}],
    })
    with pytest.raises(SimulationError) as err:
        run_protocol(system_dir, tmp_path / "run", protocol, "Reference", progress=False)
    msg = str(err.value)
    assert msg.startswith("box too small for the cut-off in stage 'npt'")
    assert "more molecules or a shorter --cutoff-nm" in msg and "shorten the timestep" not in msg
