"""aseimd analyze diffusion through click: outputs, no overwrite, one-line errors (exit 2)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import brownian, ions, wrap, write_trajectory

from aseimd.cli import main

BOX = (3.0, 3.0, 3.0)


@pytest.fixture
def li_files(tmp_path, rng):
    pos = brownian(rng, 400, 30, 1.0, 0.01, BOX)
    return write_trajectory(tmp_path, pos, BOX, ions(30, "LI", "LI", "Li") + []), pos


def _run(*args):
    return CliRunner().invoke(main, ["analyze", "diffusion", *map(str, args)])


def _outputs(tmp_path):
    return [tmp_path / "d.json", tmp_path / "d_msd.csv", tmp_path / "d_msd.png"]


def test_diffusion_writes_json_csv_png(tmp_path, li_files):
    (top, traj), _ = li_files
    out = tmp_path / "d.json"
    r = _run("--top", top, "--traj", traj, "--group", "Li=resname LI", "--group", "Li_xy=resname LI",
             "--json", out)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    li = data["Li"]
    for key in ("D_m2_per_s", "D_stderr_m2_per_s", "fit_window_ps", "diffusive", "slope", "n_particles", "dims"):
        assert key in li
    assert li["n_particles"] == 30 and li["dims"] == "xyz" and li["diffusive"] is True
    assert abs(li["D_m2_per_s"] - 1e-8) < 5 * li["D_stderr_m2_per_s"]
    assert data["meta"]["dt_ps"] == 1.0 and data["meta"]["dt_source"].endswith("run.json")
    assert data["meta"]["frames"]["n_frames"] == 400
    assert "stderr" in data["method"] and data["warnings"] == []
    header = (tmp_path / "d_msd.csv").read_text().splitlines()[0]
    assert header == "Time (ps),Li MSD (nm^2),Li_xy MSD (nm^2),Li MSD stderr (nm^2),Li_xy MSD stderr (nm^2)"
    assert (tmp_path / "d_msd.png").read_bytes()[:4] == b"\x89PNG"
    assert "D = " in r.output


def test_wrapped_input_same_d_via_cli(tmp_path, rng):
    pos = brownian(rng, 300, 20, 1.0, 0.01, BOX)
    d = {}
    for name, xyz in (("u", pos), ("w", wrap(pos, BOX))):
        (tmp_path / name).mkdir()
        top, traj = write_trajectory(tmp_path / name, xyz, BOX, ions(20, "LI", "LI", "Li"))
        r = _run("--top", top, "--traj", traj, "--group", "Li=all", "--json", tmp_path / name / "d.json")
        assert r.exit_code == 0, r.output
        d[name] = json.loads((tmp_path / name / "d.json").read_text())["Li"]["D_m2_per_s"]
    assert d["w"] == pytest.approx(d["u"], rel=1e-5)


def test_yeh_hummer_and_layers(tmp_path, li_files):
    (top, traj), _ = li_files
    out = tmp_path / "d.json"
    r = _run("--top", top, "--traj", traj, "--group", "Li=resname LI", "--viscosity-mPa-s", 3.0,
             "--temperature-K", 298.0, "--z-layers", 2, "--json", out)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    li = data["Li"]
    corr = 2.837297 * 1.380649e-23 * 298.0 / (6 * np.pi * 3e-3 * 3.0e-9)
    assert li["D_yh_m2_per_s"] == pytest.approx(li["D_m2_per_s"] + corr, rel=1e-5)
    assert [layer["z_range_nm"] for layer in li["layers"]] == [[0.0, 1.5], [1.5, 3.0]]
    assert all(layer["dims"] == "xy" for layer in li["layers"])


def test_refuses_to_overwrite(tmp_path, li_files):
    (top, traj), _ = li_files
    csv = tmp_path / "d_msd.csv"
    csv.write_text("precious")
    r = _run("--top", top, "--traj", traj, "--group", "Li=all", "--json", tmp_path / "d.json")
    assert r.exit_code == 2 and "already exists" in r.output
    assert csv.read_text() == "precious" and not (tmp_path / "d.json").exists()
    r = _run("--top", top, "--traj", traj, "--group", "Li=all", "--json", tmp_path / "d.json", "--force")
    assert r.exit_code == 0, r.output
    assert csv.read_text().startswith("Time (ps)")


@pytest.mark.parametrize("extra,message", [
    (["--group", "Li=resname XX"], "matches no atoms"),
    (["--group", "Li=resname LI", "--group", "Li=all"], "used twice"),
    (["--group", "Li=resname LI", "--fit-window-ps", "5", "300"], "fit window ends at 300"),
    (["--group", "Li=resname LI", "--viscosity-mPa-s", "1"], "--temperature-K"),
    (["--group", "Li=resname LI", "--drift", "group:PF6"], "no group labelled"),
    (["--group", "Li"], "not LABEL=SELECTION"),
    (["--group", "meta=resname LI"], "group label 'meta' is reserved"),
    (["--group", "Li=resname LI", "--dt-ps", "inf"], "--dt-ps must be a finite number > 0, got inf"),
    (["--group", "Li=resname LI", "--dt-ps", "nan"], "--dt-ps must be a finite number > 0"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, li_files, extra, message):
    (top, traj), _ = li_files
    r = _run("--top", top, "--traj", traj, *extra, "--json", tmp_path / "d.json")
    assert r.exit_code == 2
    assert message in r.output
    assert len([line for line in r.output.splitlines() if line.startswith("Error:")]) == 1
    assert "Traceback" not in r.output
    assert not any(p.exists() for p in _outputs(tmp_path))


def test_topology_not_matching_trajectory(tmp_path, rng):
    top, _ = write_trajectory(tmp_path, brownian(rng, 20, 5, 1.0, 0.01), BOX, ions(5, "LI"), name="five")
    _, traj = write_trajectory(tmp_path, brownian(rng, 20, 7, 1.0, 0.01), BOX, ions(7, "LI"), name="seven")
    r = _run("--top", top, "--traj", traj, "--group", "Li=all", "--json", tmp_path / "d.json")
    assert r.exit_code == 2 and "does not match topology" in r.output
    assert not any(p.exists() for p in _outputs(tmp_path))


def test_non_cubic_box_refused_for_yeh_hummer(tmp_path, rng):
    box = (3.0, 3.0, 6.0)
    top, traj = write_trajectory(tmp_path, brownian(rng, 100, 5, 1.0, 0.01, box), box, ions(5, "LI"))
    r = _run("--top", top, "--traj", traj, "--group", "Li=all", "--viscosity-mPa-s", "1",
             "--temperature-K", "300", "--json", tmp_path / "d.json")
    assert r.exit_code == 2 and "cubic boxes only" in r.output
    assert not any(p.exists() for p in _outputs(tmp_path))


def test_frames_too_far_apart_for_unwrapping_are_warned(tmp_path, rng):
    """Steps of rms 0.22 box (D 0.01 nm²/ps, 3 nm box, every 25th ps frame kept): the minimum image folds
    the long ones and D comes out ~12 % low. Nothing else shows it, so the JSON and the terminal warn;
    every frame (1 ps apart, rms 0.06 box) gives the true D and no warning."""
    pos = brownian(rng, 4000, 20, 1.0, 0.01, BOX)
    top, traj = write_trajectory(tmp_path, pos, BOX, ions(20, "LI", "LI", "Li"))
    docs = {}
    for stride in (1, 25):
        out = tmp_path / f"s{stride}" / "d.json"
        r = _run("--top", top, "--traj", traj, "--group", "Li=resname LI", "--drift", "none", "--stride", stride,
                 "--json", out, "--no-plot")
        assert r.exit_code == 0, r.output
        docs[stride] = json.loads(out.read_text())
    folded = [w for w in docs[25]["warnings"] if "unwrapping by the minimum image folds" in w]
    assert len(folded) == 1 and "box vector" in folded[0]
    assert not any("minimum image folds" in w for w in docs[1]["warnings"])
    assert docs[25]["Li"]["D_m2_per_s"] < 0.95e-8 < docs[1]["Li"]["D_m2_per_s"]  # the bias the warning names


def test_folding_share_follows_the_gaussian_tail():
    from aseimd.analysis.unwrap import folding_warning

    box = np.tile(np.diag(BOX), (500, 1, 1))
    steps = np.random.default_rng(3).normal(size=(500, 50, 3))
    assert folding_warning(np.cumsum(steps * 0.1 * 3.0, axis=0), box, "A") is None  # share 6e-7
    got = folding_warning(np.cumsum(steps * 0.2 * 3.0, axis=0), box, "A")
    assert got is not None and "spread over 0.20" in got and "~10 %" in got


def test_force_no_plot_removes_the_plot_of_an_earlier_run(tmp_path, li_files):
    (top, traj), _ = li_files
    args = ("--top", top, "--traj", traj, "--group", "Li=resname LI", "--json", tmp_path / "d.json")
    assert _run(*args).exit_code == 0 and (tmp_path / "d_msd.png").exists()
    r = _run(*args, "--force", "--no-plot")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "d_msd.png").exists() and "Removed d_msd.png" in r.output
