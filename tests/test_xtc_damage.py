"""Damaged XTC / TRR files: what mdtraj does with them, and what the user is told.

mdtraj indexes a cut XTC up to the last frame header it finds and raises
"XTC read error" when it decodes the torn frame (``mdtraj.load`` of the whole
file fails). aseimd decodes the last indexed frame when it opens the file,
analyses the complete frames and says which frame is torn; a file with no
complete frame, the wrong bytes or the wrong atom count is refused with one
line and exit code 2, nothing written.
"""

import json

import mdtraj
import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import ions, write_trajectory

from aseimd.analysis.trajectory import Trajectory
from aseimd.cli import main
from aseimd.errors import AnalysisError

N_ATOMS, N_FRAMES, DT_PS = 16, 300, 2.0
BOX = (3.0, 3.0, 3.0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One XTC and one TRR of Brownian Li (same positions), with their topology."""
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("xdr")
    xyz = np.cumsum(rng.normal(scale=0.05, size=(N_FRAMES, N_ATOMS, 3)), axis=0) + rng.uniform(0, 3, (N_ATOMS, 3))
    spec = ions(N_ATOMS, "LI", "LI", "Li")
    top, xtc = write_trajectory(root, xyz, BOX, spec, fmt="xtc", dt_ps=DT_PS)
    _, trr = write_trajectory(root, xyz, BOX, spec, fmt="trr", dt_ps=DT_PS)
    return root, top, {"xtc": xtc, "trr": trr}


def _frame_offsets(path):
    with mdtraj.open(str(path)) as fh:
        return np.asarray(fh.offsets, dtype=np.int64)


def _cut(root, path, n_bytes, name):
    out = root / f"{name}{path.suffix}"
    out.write_bytes(path.read_bytes()[:n_bytes])
    return out


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_mdtraj_itself_fails_on_a_cut_xtc(files):
    """The behaviour the checks are built on (if mdtraj learns to stop at the torn frame, revisit them)."""
    root, top, paths = files
    offsets = _frame_offsets(paths["xtc"])
    cut = _cut(root, paths["xtc"], (int(offsets[-1]) + paths["xtc"].stat().st_size) // 2, "mdtraj_probe")
    with mdtraj.open(str(cut)) as fh:
        assert len(fh) in (N_FRAMES - 1, N_FRAMES)  # the torn frame is indexed or not, by where the cut is
    with pytest.raises(RuntimeError, match="XTC read error"):
        mdtraj.load(str(cut), top=str(top))


@pytest.mark.parametrize("fmt", ["xtc", "trr"])
@pytest.mark.parametrize("where", ["last-frame-middle", "last-frame-header", "after-frame-200", "one-byte-on"])
def test_cut_file_is_analysed_on_its_complete_frames(files, tmp_path, fmt, where):
    root, top, paths = files
    path = paths[fmt]
    offsets = _frame_offsets(path)
    size = path.stat().st_size
    n_bytes, complete = {
        "last-frame-middle": ((int(offsets[-1]) + size) // 2, N_FRAMES - 1),
        "last-frame-header": (int(offsets[-1]) + 10, N_FRAMES - 1),
        "after-frame-200": (int(offsets[200]) + 37, 200),
        "one-byte-on": (int(offsets[200]) + 1, 200),
    }[where]
    cut = _cut(tmp_path, path, n_bytes, f"cut_{where}")
    traj = Trajectory(top, cut)
    assert traj.n_frames == complete
    message = (f"trajectory {str(cut)!r} is truncated inside frame {complete + 1}; "
               f"analysing its {complete} complete frames")
    assert traj.warnings == [message]
    # the complete frames are exactly the frames of the whole file
    whole = Trajectory(top, path, stop=complete)
    got = np.concatenate([c.xyz_nm for c in traj.iter_chunks(np.arange(N_ATOMS), chunk_frames=64)])
    want = np.concatenate([c.xyz_nm for c in whole.iter_chunks(np.arange(N_ATOMS), chunk_frames=64)])
    np.testing.assert_array_equal(got, want)
    # ... and a stride that ends next to the torn frame reads no further
    strided = Trajectory(top, cut, stride=7)
    assert sum(c.xyz_nm.shape[0] for c in strided.iter_chunks([0], chunk_frames=5)) == len(range(0, complete, 7))
    # through the CLI: the same D as the intact file cut to those frames, the warning in output and JSON
    out = tmp_path / "d.json"
    r = _cli("analyze", "diffusion", "--top", top, "--traj", cut, "--group", "Li=resname LI", "--json", out)
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["meta"]["trajectory_warnings"] == [message]
    assert message in doc["warnings"] and message in r.output
    assert doc["meta"]["frames"]["n_frames"] == complete and doc["meta"]["dt_ps"] == DT_PS
    ref = tmp_path / "ref.json"
    assert _cli("analyze", "diffusion", "--top", top, "--traj", path, "--stop", complete, "--group", "Li=resname LI",
                "--json", ref).exit_code == 0
    assert doc["Li"]["D_m2_per_s"] == json.loads(ref.read_text())["Li"]["D_m2_per_s"]


def _wrong_atoms(root, tmp_path, fmt):
    rng = np.random.default_rng(3)
    _, path = write_trajectory(tmp_path, rng.uniform(0, 3, (5, N_ATOMS + 2, 3)), BOX,
                               ions(N_ATOMS + 2, "LI", "LI", "Li"), fmt=fmt, dt_ps=DT_PS, name="more")
    return path


@pytest.mark.parametrize("fmt", ["xtc", "trr"])
@pytest.mark.parametrize("case, message", [
    ("empty", "is empty (0 bytes)"),
    ("junk", "file (no {KIND} frame header); give a DCD, XTC, TRR"),
    ("dcd-bytes", "file (no {KIND} frame header)"),
    ("first-header", "holds no complete frame (truncated inside frame 1)"),
    ("first-frame", "holds no complete frame (truncated inside frame 1)"),
    ("atoms", f"{N_ATOMS + 2} atoms per frame, the topology has {N_ATOMS}"),
])
def test_unusable_file_is_refused_in_one_line_nothing_written(files, tmp_path, fmt, case, message):
    root, top, paths = files
    path = paths[fmt]
    offsets = _frame_offsets(path)
    bad = tmp_path / f"bad.{fmt}"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "junk":
        bad.write_bytes(b"not a trajectory at all\n" * 40)
    elif case == "dcd-bytes":
        bad.write_bytes(b"\x54\x00\x00\x00CORD" + b"\x00" * 400)
    elif case == "first-header":
        bad.write_bytes(path.read_bytes()[:12])
    elif case == "first-frame":
        bad.write_bytes(path.read_bytes()[:int(offsets[1]) - 5])
    else:
        bad = _wrong_atoms(root, tmp_path, fmt)
    message = message.replace("{KIND}", fmt.upper())
    with pytest.raises(AnalysisError, match=None) as err:
        Trajectory(top, bad)
    assert message in str(err.value)
    out = tmp_path / "out"
    out.mkdir()
    r = _cli("analyze", "diffusion", "--top", top, "--traj", bad, "--group", "Li=resname LI",
             "--json", out / "d.json")
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and r.output.startswith("Error: ") and message in r.output
    assert "Traceback" not in r.output and "xdrfile" not in r.output
    assert list(out.iterdir()) == []


def test_probing_a_damaged_file_prints_nothing(files, tmp_path, capfd):
    root, top, paths = files
    offsets = _frame_offsets(paths["xtc"])
    cut = _cut(tmp_path, paths["xtc"], int(offsets[-1]) + 30, "quiet")
    capfd.readouterr()
    Trajectory(top, cut)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_a_cut_xtc_of_few_atoms_is_refused_with_the_fix(tmp_path):
    """Up to 9 atoms an XTC frame stores plain floats (56 + 12 n bytes) and mdtraj indexes the file by its size
    alone (it cannot open a cut one): refused, saying how many bytes to keep."""
    rng = np.random.default_rng(5)
    top, xtc = write_trajectory(tmp_path, rng.uniform(0, 3, (40, 4, 3)), BOX, ions(4, "LI", "LI", "Li"), fmt="xtc",
                                dt_ps=DT_PS)
    offsets = _frame_offsets(xtc)
    assert np.all(np.diff(offsets) == 56 + 12 * 4)
    assert Trajectory(top, xtc).warnings == []
    cut = _cut(tmp_path, xtc, int(offsets[30]) + 3, "small_cut")
    with pytest.raises(AnalysisError, match=r"truncated inside frame 31 and mdtraj cannot read a cut XTC of 4 atoms"
                                            rf".*cutting it to {30 * 104} bytes"):
        Trajectory(top, cut)
    fixed = _cut(tmp_path, cut, 30 * 104, "small_fixed")
    assert Trajectory(top, fixed).n_frames == 30


@pytest.mark.parametrize("stride", [1, 7])
@pytest.mark.parametrize("fmt", ["xtc", "trr"])
def test_strided_reads_of_selected_atoms_match_mdtraj_whole_frames(files, fmt, stride):
    """Strided frames of a few atoms (read frame by frame: mdtraj's stride + atom_indices corrupts memory)
    are mdtraj's own whole-file frames, positions and boxes."""
    root, top, paths = files
    ref = mdtraj.load(str(paths[fmt]), top=str(top))
    atoms = np.array([1, 5, 6, 13])
    traj = Trajectory(top, paths[fmt], start=3, stop=250, stride=stride)
    chunks = list(traj.iter_chunks(atoms, chunk_frames=9))
    assert [c.start for c in chunks] == list(range(0, traj.n_frames, 9))
    np.testing.assert_array_equal(np.concatenate([c.xyz_nm for c in chunks]), ref.xyz[3:250:stride][:, atoms])
    np.testing.assert_allclose(np.concatenate([c.box_nm for c in chunks]), ref.unitcell_vectors[3:250:stride],
                               rtol=1e-6)


@pytest.mark.filterwarnings("ignore::UserWarning")  # mdtraj: netCDF4 missing, scipy's reader used
@pytest.mark.parametrize("case, message", [
    ("empty", "is empty (0 bytes)"),
    ("half", "(damaged, cut short, or not a .nc file; mdtraj: "),
    ("header", "(damaged, cut short, or not a .nc file; mdtraj: "),
    ("atoms", "does not match topology"),
])
def test_other_formats_cut_or_mismatched_are_refused_in_one_line(tmp_path, case, message):
    """A NetCDF cut short cannot be read at all by mdtraj's (scipy) reader: refused, saying what it may be."""
    rng = np.random.default_rng(8)
    top, nc = write_trajectory(tmp_path, rng.uniform(0, 3, (50, N_ATOMS, 3)), BOX, ions(N_ATOMS, "LI", "LI", "Li"),
                               fmt="nc", dt_ps=DT_PS)
    bad = tmp_path / "bad.nc"
    data = nc.read_bytes()
    if case == "atoms":
        _, bad = write_trajectory(tmp_path, rng.uniform(0, 3, (5, 4, 3)), BOX, ions(4, "LI", "LI", "Li"), fmt="nc",
                                  dt_ps=DT_PS, name="four")
    else:
        bad.write_bytes({"empty": b"", "half": data[:len(data) // 2], "header": data[:100]}[case])
    out = tmp_path / "out"
    out.mkdir()
    r = _cli("analyze", "diffusion", "--top", top, "--traj", bad, "--group", "Li=resname LI", "--json", out / "d.json")
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in r.output
    assert list(out.iterdir()) == []
