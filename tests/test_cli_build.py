"""``aseimd build electrolyte`` through click's CliRunner: exit codes, messages, nothing clobbered."""

import json

import pytest
from click.testing import CliRunner

from aseimd.cli import main

SMALL = ["--n-solvent", "30", "--cutoff-nm", "0.7"]


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_build_group_lists_electrolyte():
    result = _run("build", "--help")
    assert result.exit_code == 0
    assert "electrolyte" in result.output


def test_electrolyte_help():
    result = _run("build", "electrolyte", "--help")
    assert result.exit_code == 0
    for option in ("--n-solvent", "--box-edge-nm", "--seed", "--charge-scale", "--cutoff-nm", "--force"):
        assert option in result.output


def test_build_electrolyte_writes_system_dir(tmp_path):
    out = tmp_path / "elyte"
    result = _run("build", "electrolyte", "1.0 M LiPF6 in EC:DMC 1:1 v/v", "-o", str(out), *SMALL,
                  "--seed", "2", "--charge-scale", "0.7")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".aseimd", "build.json", "system.pdb", "system.xml"]
    build = json.loads((out / "build.json").read_text())
    assert build["seed"] == 2 and build["charge_scale"] == 0.7
    assert build["counts"] == {"Li": 2, "PF6": 2, "EC": 17, "DMC": 13}
    assert "Li 2, PF6 2, EC 17, DMC 13" in result.output
    assert "LiPF6: 1 mol/L requested" in result.output
    assert "nm cube" in result.output


def test_box_edge_sizing(tmp_path):
    out = tmp_path / "elyte"
    result = _run("build", "electrolyte", "1.2 m LiTFSI in PC", "-o", str(out), "--box-edge-nm", "1.8",
                  "--cutoff-nm", "0.8")
    assert result.exit_code == 0, result.output
    build = json.loads((out / "build.json").read_text())
    assert build["sizing"] == {"box_edge_nm": 1.8}
    assert build["estimated_box_edge_nm"] == pytest.approx(1.8, rel=0.05)


@pytest.mark.parametrize("recipe, extra, fragment", [
    ("1 M LiXX in EC:DMC 1:1 v/v", [], "'LiXX'"),
    ("1 M LiPF6 in EC:FOO 1:1 v/v", [], "'FOO'"),
    ("0 M LiPF6 in EC:DMC 1:1 v/v", [], "got 0"),
    ("-0.5 M LiPF6 in EC:DMC 1:1 v/v", [], "got -0.5"),
    ("1 M LiPF6 in EC:DMC 1:1:2 v/v", [], "'1:1:2'"),
    ("1 M LiPF6 in EC:DMC 1:1 q/q", [], "'q/q'"),
    ("20 M LiPF6 in EC", [], "20 M LiPF6"),
    ("0.01 M LiPF6 in EC", ["--n-solvent", "20"], "too small for one LiPF6 ion pair"),
    ("1 M LiPF6 in EC", ["--n-solvent", "30", "--box-edge-nm", "3"], "got both"),
])
def test_bad_input_exit_2_and_nothing_written(tmp_path, recipe, extra, fragment):
    out = tmp_path / "elyte"
    result = _run("build", "electrolyte", "-o", str(out), *extra, "--", recipe)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force_and_force_spares_user_files(tmp_path):
    out = tmp_path / "elyte"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _run("build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1 v/v", "-o", str(out), *SMALL)
    assert result.exit_code == 2
    assert "already exists" in result.output and "pass --force" not in result.output  # --force would not help
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    result = _run("build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1 v/v", "-o", str(out), *SMALL, "--force")
    assert result.exit_code == 2 and "refusing to replace" in result.output and "keep.txt" in result.output
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    built = tmp_path / "built"
    assert _run("build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1 v/v", "-o", str(built), *SMALL).exit_code == 0
    result = _run("build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1 v/v", "-o", str(built), *SMALL)
    assert result.exit_code == 2 and "pass --force" in result.output
    result = _run("build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1 v/v", "-o", str(built), *SMALL, "--force",
                  "--seed", "4")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in built.iterdir()) == [".aseimd", "build.json", "system.pdb", "system.xml"]



@pytest.mark.parametrize("extra, fragment", [
    (["--salt", "LiTFSI", "--eo-per-li", "1000"], "fewer than one LiTFSI pair at eo_per_li 1000"),
    (["--temperature-K", "-5"], "temperature_K -5.0 not allowed"),
    (["--temperature-K", "0"], "temperature_K 0.0 not allowed"),
])
def test_polymer_bad_input_exit_2_and_nothing_written(tmp_path, extra, fragment):
    out = tmp_path / "melt"
    r = CliRunner().invoke(main, ["build", "polymer", "PEO", "--n-chains", "2", "--n-repeat", "6",
                                  "--cutoff-nm", "0.5", "-o", str(out), *extra])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and not out.exists()
