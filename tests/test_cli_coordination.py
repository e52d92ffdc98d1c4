"""``aseimd analyze coordination`` through click's CliRunner: outputs, overwrite refusal, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import ions, write_trajectory
from test_coordination import shells_trajectory
from test_solvent_cn import CUTOFFS, build_cell

from aseimd.cli import main

LI_O = ("--center", "Li=resname LI", "--shell", "O=element O", "--shell", "DMC=resname DMC")


def invoke(*args):
    return CliRunner().invoke(main, ["analyze", "coordination", *map(str, args)])


@pytest.fixture
def shells(tmp_path, rng):
    return shells_trajectory(tmp_path, rng, n_frames=6)


def outputs(tmp_path, stem="cn"):
    return [tmp_path / f"{stem}{s}" for s in (".json", "_rdf.csv", "_rdf.png", "_residence.csv", "_residence.png")]


def test_writes_json_csv_png(tmp_path, shells):
    top, traj = shells
    out = tmp_path / "cn.json"
    r = invoke("--top", top, "--traj", traj, *LI_O, "--cutoff-nm", "DMC=0.45", "--anion", "DMC",
               "--residence", "--json", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    o, dmc = doc["O"], doc["DMC"]
    assert (o["cn"], o["cn_molecules"], o["cutoff_source"]) == (6.0, 6.0, "auto")
    assert 0.2 < o["cutoff_nm"] < 0.4 and o["r_peak_nm"] == pytest.approx(0.2, abs=0.005)
    assert (dmc["cn"], dmc["cutoff_nm"], dmc["cutoff_source"]) == (8.0, 0.45, "given")
    assert doc["speciation"]["AGG"] == 1.0  # 8 "anions" around each Li
    assert doc["compositions"]["distribution"][0] == {
        "composition": "Li(O)6(DMC)8", "counts": {"O": 6, "DMC": 8}, "fraction": 1.0, "n_observations": 12}
    assert {"residence", "method", "meta", "warnings", "groups"} <= doc.keys()
    assert doc["meta"]["frames"]["n_frames"] == 6 and doc["meta"]["dt_ps"] == 1.0
    assert doc["meta"]["trajectory_warnings"] == []
    csv = (tmp_path / "cn_rdf.csv").read_text().splitlines()
    assert csv[0] == "r (nm),g(r) O,n(r) O,g(r) DMC,n(r) DMC"
    assert len(csv) == 1 + 200  # r_max 1.0 nm / 0.005 nm
    assert (tmp_path / "cn_rdf.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "cn_residence.csv").read_text().startswith("Time (ps),C(t) O,C(t) DMC")
    assert "cn 6.000" in r.output
    fm = o["first_minimum"]  # how the auto cut-off was chosen (an addition to the pair block)
    assert fm["method"] == "significance" and fm["r_min_nm"] == o["cutoff_nm"]
    assert fm["depth_sigma"] >= fm["z_sigma_required"] == 4.0 and fm["rise_sigma"] >= 4.0
    assert f"(auto, dip {min(fm['depth_sigma'], fm['rise_sigma']):.1f} sigma)" in r.output
    assert "4 combined sigma" in doc["method"]["cutoff"]

    # no silent overwrite of any output (checked before anything is written); --force replaces
    out.unlink()
    r = invoke("--top", top, "--traj", traj, *LI_O, "--residence", "--json", out)
    assert r.exit_code == 2 and "cn_rdf.csv" in r.output and "--force" in r.output
    assert not out.exists()
    r = invoke("--top", top, "--traj", traj, *LI_O, "--cutoff-nm", "DMC=0.45", "--json", out, "--force")
    assert r.exit_code == 0, r.output


def test_solvent_cn_mode(tmp_path):
    b, _ = build_cell()
    top, traj = b.write(tmp_path)
    cut = [a for k, v in CUTOFFS.items() for a in ("--cutoff-nm", f"{k}={v}")]
    out = tmp_path / "scn.json"
    r = invoke("--top", top, "--traj", traj, "--dt-ps", "1", "--mode", "solvent-cn", *cut, "--json", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["mode"] == "solvent-cn"
    assert doc["solvent_cn"]["carbonate_bound_fraction"] == pytest.approx(1 / 3)
    assert doc["O_carbonyl"]["cn"] == pytest.approx(1.0)
    header = (tmp_path / "scn_rdf.csv").read_text().splitlines()[0]
    assert "g(r) N_nitrile-C_carbonyl" in header and "n(r) anion" in header


def test_cutoff_rule_option(tmp_path, shells):
    top, traj = shells
    out = tmp_path / "cn.json"
    r = invoke("--top", top, "--traj", traj, *LI_O, "--cutoff-rule", "prominence", "--json", out)
    assert r.exit_code == 0, r.output
    o = json.loads(out.read_text())["O"]
    assert o["first_minimum"]["method"] == "prominence" and 0.2 < o["cutoff_nm"] < 0.4
    r = invoke("--top", top, "--traj", traj, *LI_O, "--cutoff-rule", "sharpest", "--json", tmp_path / "x.json")
    assert r.exit_code == 2 and "significance" in r.output and "prominence" in r.output
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--center", "Li=resname XX", "--shell", "O=element O"), "matches no atoms"),
        (("--center", "Li=resname LI", "--shell", "O=element O", "--shell", "O=resname EC"), "used twice"),
        (("--center", "Li=resname LI", "--shell", "Li=element O"), "used for the centre and a shell"),
        (("--center", "Li=resname LI", "--shell", "O=element O", "--cutoff-nm", "EC=0.3"), "unknown shell 'EC'"),
        (("--center", "Li=resname LI", "--shell", "O=element O", "--cutoff-nm", "O=abc"), "not a number"),
        (("--center", "Li=resname LI", "--shell", "O=element O", "--rmax-nm", "2"), "half the shortest box"),
        (("--center", "Li", "--shell", "O=element O"), "is not LABEL=SELECTION"),
        (("--mode", "solvent-cn", "--anion", "PF6"), "--anion applies to --mode default"),
        (("--mode", "solvent-cn", "--exclude-intramolecular"), "--exclude-intramolecular applies to --mode default"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, shells, args, message):
    top, traj = shells
    r = invoke("--top", top, "--traj", traj, *args, "--json", tmp_path / "cn.json")
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert not any(p.exists() for p in outputs(tmp_path))


def test_topology_trajectory_mismatch(tmp_path, shells):
    _, traj = shells
    other, _ = write_trajectory(tmp_path, np.zeros((1, 3, 3)), [3.0] * 3, ions(3, "LI", "LI", "Li"), name="small")
    r = invoke("--top", other, "--traj", traj, *LI_O, "--json", tmp_path / "cn.json")
    assert r.exit_code == 2 and "does not match topology" in r.output
    assert not any(p.exists() for p in outputs(tmp_path))


def test_default_groups_from_the_species_table(tmp_path, shells):
    top, traj = shells
    out = tmp_path / "cn.json"
    r = invoke("--top", top, "--traj", traj, "--cutoff-nm", "EC=0.3", "--cutoff-nm", "DMC=0.45", "--json", out)
    assert r.exit_code == 0, r.output
    assert "Li=resname LI; EC=resname EC and name O1; DMC=resname DMC and name O1" in r.output
    doc = json.loads(out.read_text())
    from aseimd.analysis.coordination import RESERVED_JSON_KEYS

    assert [k for k in doc if k not in RESERVED_JSON_KEYS] == ["EC", "DMC"]
    assert (doc["EC"]["cn"], doc["DMC"]["cn"]) == (6.0, 8.0)
    assert "speciation" not in doc  # no anion species in this topology


def test_default_groups_need_li(tmp_path):
    top, traj = write_trajectory(tmp_path, np.zeros((1, 2, 3)), [3.0] * 3, ions(2, "NA", "NA", "Na"))
    r = invoke("--top", top, "--traj", traj, "--json", tmp_path / "cn.json")
    assert r.exit_code == 2 and "no Li+ (residue LI)" in r.output


def test_residence_without_any_cutoff_still_writes_every_output(tmp_path, shells):
    top, traj = shells
    out = tmp_path / "cn.json"
    r = invoke("--top", top, "--traj", traj, "--center", "Li=resname LI", "--shell", "EC=resname EC",
               "--residence", "--json", out)
    assert r.exit_code == 0, r.output
    assert all(p.exists() for p in outputs(tmp_path))
    assert (tmp_path / "cn_residence.csv").read_text().splitlines()[0] == "Time (ps)"
    doc = json.loads(out.read_text())
    assert doc["EC"]["cn"] is None and any("no first minimum" in w for w in doc["warnings"])


def test_exclude_intramolecular_from_the_command_line(tmp_path):
    """P-F around two PF6: without the option a P counts its own 6 F, with it only the other molecule's."""
    from synthetic import molecules
    from test_coordination import OCTAHEDRON

    pf6 = [("P", "P")] + [(f"F{i}", "F") for i in range(1, 7)]
    centres = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0]])
    xyz = np.concatenate([np.vstack([c, c + 0.16 * OCTAHEDRON]) for c in centres])[None].repeat(2, axis=0)
    top, traj = write_trajectory(tmp_path, xyz, [3.0] * 3, molecules(2, "PF6", pf6))
    cn = {}
    for extra in ((), ("--exclude-intramolecular",)):
        out = tmp_path / f"cn{len(extra)}.json"
        r = invoke("--top", top, "--traj", traj, "--center", "P=name P", "--shell", "F=element F",
                   "--cutoff-nm", "F=0.45", "--json", out, *extra)
        assert r.exit_code == 0, r.output
        cn[len(extra)] = json.loads(out.read_text())["F"]["cn"]
    assert cn == {0: 7.0, 1: 1.0}
