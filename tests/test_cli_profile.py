"""``aseimd analyze profile`` through click's CliRunner: outputs, overwrite refusal, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from aseimd.cli import main
from test_profile import LI, OCT, PF6, make_topology, write_traj


@pytest.fixture
def ions(tmp_path):
    """4 Li+ on z = 0.55 nm and 2 PF6- centred at z = 1.55 nm in a 2 x 2 x 3 nm box, 4 frames."""
    li = [(0.4 * i, 0.3, 0.55) for i in range(4)]
    pf6 = []
    for i in range(2):
        c = np.array([0.3 + 0.9 * i, 1.2, 1.55])
        pf6 += [tuple(c)] + [tuple(c + np.array(o)) for o in OCT]
    top = make_topology([LI] * 4 + [PF6] * 2)
    return write_traj(tmp_path, top, np.array([li + pf6] * 4), [2.0, 2.0, 3.0])


def invoke(*args):
    return CliRunner().invoke(main, ["analyze", "profile", *map(str, args)])


def test_profile_writes_json_csv_png(tmp_path, ions):
    pdb, dcd = ions
    out = tmp_path / "prof.json"
    r = invoke("--top", pdb, "--traj", dcd, "--group", "Li=resname LI", "--group", "PF6=resname PF6",
               "--bin-nm", "0.1", "--blocks", "2", "--dt-ps", "2", "--json", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["axis"] == "z" and doc["n_bins"] == 30
    assert len(doc["bin_centers_nm"]) == 30
    li = doc["groups"]["Li"]
    assert li["n_atoms"] == 4 and li["total_charge_e"] == 1 * 4
    assert li["number_density_per_nm3"][5] == pytest.approx(4 / (2 * 2 * 0.1), rel=1e-5)
    assert doc["groups"]["PF6"]["integral_charge_e"] == pytest.approx(-2, rel=1e-6)
    assert doc["charge_source"] == "formal"
    assert doc["meta"]["frames"]["n_frames"] == 4
    assert (doc["meta"]["dt_ps"], doc["meta"]["dt_source"]) == (2.0, "--dt-ps")
    assert {"method", "warnings", "box_mean_nm"} <= doc.keys()
    csv = (tmp_path / "prof_density.csv").read_text().splitlines()
    assert csv[0].startswith("z (nm),Li number density (nm^-3)")
    assert len(csv) == 31
    assert (tmp_path / "prof_density.png").read_bytes()[:4] == b"\x89PNG"

    # no silent overwrite of any output; --force replaces
    (tmp_path / "prof.json").unlink()
    r = invoke("--top", pdb, "--traj", dcd, "--group", "Li=resname LI", "--json", out)
    assert r.exit_code == 2 and "prof_density.csv" in r.output and "--force" in r.output
    assert not out.exists()
    r = invoke("--top", pdb, "--traj", dcd, "--group", "Li=resname LI", "--json", out, "--force")
    assert r.exit_code == 0, r.output


def test_profile_with_system_xml_charges(tmp_path, ions):
    import openmm

    pdb, dcd = ions
    system = openmm.System()
    nb = openmm.NonbondedForce()
    for q in [0.8] * 4 + ([1.0] + [-0.3] * 6) * 2:  # scaled charges: Li +0.8, PF6 -0.8
        system.addParticle(1.0)
        nb.addParticle(q, 0.3, 0.1)
    system.addForce(nb)
    xml = tmp_path / "system.xml"
    xml.write_text(openmm.XmlSerializer.serialize(system))
    out = tmp_path / "p.json"
    r = invoke("--top", pdb, "--traj", dcd, "--group", "all=all", "--n-bins", "30", "--system-xml", xml,
               "--blocks", "2", "--json", out)
    assert r.exit_code == 0, r.output
    g = json.loads(out.read_text())["groups"]["all"]
    assert g["total_charge_e"] == pytest.approx(0.8 * 4 - 0.8 * 2)
    # P carries +1.0 at z = 1.55 (bin 15) together with 4 equatorial F (-0.3 each): 2 * (1.0 - 1.2)
    assert g["charge_density_e_per_nm3"][15] == pytest.approx(2 * (1.0 - 1.2) / 0.4, rel=1e-5)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--group", "X=resname NOPE"], "matches no atoms"),
        (["--group", "Li=resname LI", "--group", "Li=all"], "used twice"),
        (["--group", "Li resname LI"], "is not LABEL=SELECTION"),
        (["--group", "Li=resname LI", "--bin-nm", "0.1", "--n-bins", "4"], "not both"),
        (["--group", "Li=resname LI", "--bin-nm", "0"], "bin width must be > 0"),
        (["--group", "Li=resname LI", "--n-bins", "0"], "number of bins must be >= 1"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, ions, extra, message):
    pdb, dcd = ions
    r = invoke("--top", pdb, "--traj", dcd, *extra, "--json", tmp_path / "o.json")
    assert r.exit_code == 2
    assert message in r.output
    assert r.output.strip().startswith("Error:") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o.json").exists()


def test_mismatched_topology_and_missing_box(tmp_path, ions):
    _, dcd = ions
    other = make_topology([LI] * 3)
    pdb3, _ = write_traj(tmp_path, other, np.zeros((1, 3, 3)), [2.0, 2.0, 2.0], name="three")
    r = invoke("--top", pdb3, "--traj", dcd, "--group", "a=all", "--json", tmp_path / "o.json")
    assert r.exit_code == 2 and "does not match topology" in r.output

    import mdtraj

    nobox = mdtraj.Trajectory(np.zeros((2, 3, 3), np.float32), other)
    nobox.save_xtc(str(tmp_path / "nobox.xtc"))
    r = invoke("--top", pdb3, "--traj", tmp_path / "nobox.xtc", "--dt-ps", "1", "--group", "a=all",
               "--json", tmp_path / "o.json")
    assert r.exit_code == 2 and "no unit cell" in r.output

    pdb, dcd = ions
    r = invoke("--top", pdb, "--traj", dcd, "--group", "a=all", "--system-xml", tmp_path / "missing.xml",
               "--json", tmp_path / "o.json")
    assert r.exit_code == 2 and "does not exist" in r.output


def test_profile_needs_no_time_step(tmp_path):
    import mdtraj

    top = make_topology([LI] * 2)
    t = mdtraj.Trajectory(np.full((3, 2, 3), 0.5, np.float32), top, unitcell_lengths=[[2.0, 2.0, 2.0]] * 3,
                          unitcell_angles=[[90.0] * 3] * 3)
    t[0].save_pdb(str(tmp_path / "a.pdb"))
    t.save_dcd(str(tmp_path / "t.dcd"))  # mdtraj's DCD header records no time step
    r = invoke("--top", tmp_path / "a.pdb", "--traj", tmp_path / "t.dcd", "--group", "Li=all", "--n-bins", "4",
               "--blocks", "3", "--json", tmp_path / "o.json")
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "o.json").read_text())
    assert doc["meta"]["dt_ps"] is None and "unknown" in doc["meta"]["dt_source"]
    assert doc["groups"]["Li"]["number_density_per_nm3"][1] == pytest.approx(2 / (2 * 2 * 0.5), rel=1e-4)
