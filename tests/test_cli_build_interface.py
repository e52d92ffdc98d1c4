"""``aseimd build interface`` through click's CliRunner: output, exit 2 on bad input, nothing written."""

import json

import pytest
import yaml
from click.testing import CliRunner

from aseimd.cli import main

TINY = """\
name: cli-tiny
slab: {face: "100", layers: 3, repeats: [6, 6]}
electrolyte: {recipe: "1.0 M LiPF6 in EC:DMC 1:1 v/v", thickness_nm: 1.6}
cutoff_nm: 0.9
"""


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_build_interface_writes_system_dir(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    out = tmp_path / "cell"
    result = _run("build", "interface", str(spec), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".aseimd", "build.json", "system.pdb", "system.xml"]
    build = json.loads((out / "build.json").read_text())
    assert build["builder"] == "interface" and [la["name"] for la in build["layers"]] == ["slab", "electrolyte"]
    assert build["spec"]["slab"]["repeats"] == [6, 6] and build["cutoff_nm"] == 0.9
    assert "slab" in result.output and "electrolyte" in result.output
    again = _run("build", "interface", str(spec), "-o", str(out))
    assert again.exit_code == 2 and "already exists" in again.output


@pytest.mark.parametrize("change, message", [
    ({"cutoff_nmm": 0.9}, "unknown key 'cutoff_nmm' in interface spec"),
    ({"slab": {"face": "100", "layers": 3, "lateral_nm": [1.5, 1.5]}}, "smaller than twice the cut-off"),
    ({"electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 1.0}},
     "electrolyte.thickness_nm must be >= 1.5"),
    ({"electrolyte": {"recipe": "0.05 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": 1.6}},
     "electrolyte layer too thin"),
    # packed it is tall enough for a 1.2 nm cut-off, but at equilibrium it would not be (z-only NPT would fail)
    ({"slab": {"face": "100", "layers": 3, "repeats": [7, 7]}, "cutoff_nm": 1.2},
     "less than twice the cut-off with a 5% margin"),
])
def test_bad_spec_exit_2_nothing_written(tmp_path, change, message):
    data = yaml.safe_load(TINY)
    data.update(change)
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(data))
    out = tmp_path / "cell"
    result = _run("build", "interface", str(spec), "-o", str(out))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_unknown_shipped_spec(tmp_path):
    result = _run("build", "interface", "li-unobtainium", "-o", str(tmp_path / "x"))
    assert result.exit_code == 2 and "li-electrolyte" in result.output
