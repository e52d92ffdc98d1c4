"""aseimd analyze transference through click: known answers, outputs, one-line errors."""

import json

import mdtraj
import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import brownian, correlated_pairs, ions, write_trajectory

from aseimd.cli import main

BOX = (4.0, 4.0, 4.0)
N = 50


@pytest.fixture
def pair_files(tmp_path, rng):
    """Correlated Li/PF6 pairs plus one Xe 'solvent' per pair that cancels their momentum:
    the system centre of mass is fixed, so the lab frame is the centre-of-mass frame."""
    cat, an = correlated_pairs(rng, N, 2000, 1.0, 0.01, 0.005, 0.015, BOX)
    m = {s: mdtraj.element.get_by_symbol(s).mass for s in ("Li", "P", "Xe")}
    sol = -(m["Li"] * cat + m["P"] * an) / m["Xe"]
    sol += rng.uniform(0, 4, (N, 3)) - sol[0]
    spec = ions(N, "LI", "LI", "Li") + ions(N, "PF6", "P", "P") + ions(N, "SLV", "XE", "Xe")
    return write_trajectory(tmp_path, np.concatenate([cat, an, sol], axis=1), BOX, spec, fmt="xtc", dt_ps=2.0)


def _run(*args):
    return CliRunner().invoke(main, ["analyze", "transference", *map(str, args)])


def test_transference_known_answer(tmp_path, pair_files):
    top, traj = pair_files
    out = tmp_path / "t.json"
    r = _run("--top", top, "--traj", traj, "--cation", "Li=resname LI", "--anion", "PF6=resname PF6",
             "--temperature-K", 300, "--fit-window-ps", 2, 10, "--blocks", 10, "--json", out)
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    for key in ("t_plus_onsager", "t_plus_onsager_stderr", "t_plus_ne", "t_plus_ne_stderr", "sigma_ne_S_per_m",
                "sigma_ne_stderr_S_per_m", "sigma_eh_S_per_m", "sigma_eh_stderr_S_per_m", "L_ij",
                "D_plus_m2_per_s", "D_minus_m2_per_s", "fit_window_ps", "warnings", "meta", "method"):
        assert key in d, key
    assert d["meta"]["dt_source"] == "file time axis"
    assert abs(d["t_plus_onsager"] - 0.25) < 5 * d["t_plus_onsager_stderr"]
    assert abs(d["t_plus_ne"] - 0.375) < 5 * d["t_plus_ne_stderr"]
    assert d["fit_window_ps"] == [2.0, 10.0]
    assert d["L_ij"]["units"] == "1/(J m s)" and len(d["L_ij"]["stderr"]) == 2
    assert d["cation"]["charge_e"] == 1 and d["anion"]["charge_e"] == -1
    assert d["cation"]["charge_source"].startswith("species table")
    assert (tmp_path / "t_msd.csv").read_text().startswith("Time (ps),Li self MSD (nm^2)")
    assert (tmp_path / "t_msd.png").stat().st_size > 1000


def test_scaled_charges_by_option(tmp_path, pair_files):
    top, traj = pair_files
    args = ["--top", top, "--traj", traj, "--cation", "Li=resname LI", "--anion", "PF6=resname PF6",
            "--temperature-K", 300, "--fit-window-ps", 2, 10]
    assert _run(*args, "--json", tmp_path / "a.json").exit_code == 0
    r = _run(*args, "--cation-charge", 0.8, "--anion-charge", -0.8, "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert b["sigma_eh_S_per_m"] == pytest.approx(0.64 * a["sigma_eh_S_per_m"], rel=1e-9)
    assert b["t_plus_onsager"] == pytest.approx(a["t_plus_onsager"], rel=1e-9)
    assert b["anion"]["charge_source"] == "--anion-charge"


@pytest.mark.parametrize("cat,an,extra,message", [
    ("Li=resname LI", "Li=resname PF6", [], "used twice"),
    ("Li=resname LI", "X=resname SLV", [], "pass --anion-charge"),
    ("Li=resname XX", "PF6=resname PF6", [], "matches no atoms"),
    ("Li=resname LI", "PF6=resname PF6", ["--fit-window-ps", "2", "900"], "fit window ends at 900"),
    ("Li=resname LI", "PF6=resname PF6", ["--blocks", "400"], "too short"),
])
def test_bad_input(tmp_path, pair_files, cat, an, extra, message):
    top, traj = pair_files
    r = _run("--top", top, "--traj", traj, "--cation", cat, "--anion", an, "--temperature-K", 300, *extra,
             "--json", tmp_path / "t.json")
    assert r.exit_code == 2 and message in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("Error:")]) == 1
    assert not any((tmp_path / n).exists() for n in ("t.json", "t_msd.csv", "t_msd.png"))


def test_trajectory_without_box(tmp_path, rng):
    top, traj = write_trajectory(tmp_path, brownian(rng, 100, 4, 1.0, 0.01), None,
                                 ions(2, "LI", "LI", "Li") + ions(2, "PF6", "P", "P"))
    r = _run("--top", top, "--traj", traj, "--cation", "Li=resname LI", "--anion", "PF6=resname PF6",
             "--temperature-K", 300, "--json", tmp_path / "t.json")
    assert r.exit_code == 2 and "no unit cell" in r.output
