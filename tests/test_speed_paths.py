"""The fast paths of issue 10's speed work give the same results as the plain ones.

Lazy CLI (``aseimd analyze`` loads no simulation/build code), block-wise position collection
(independent of chunk and block sizes), the reused DCD read buffer (the same bytes as mdtraj),
the column-wise CSV writer (the same text as cell by cell).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import brownian, ions, molecules, wrap, write_trajectory

import aseimd.analysis.dcd_reader as dcd_reader
import aseimd.analysis.groups as groups_mod
from aseimd.analysis.groups import load_positions, make_group
from aseimd.analysis.trajectory import Trajectory
from aseimd.cli import COMMAND_MODULES, main
from aseimd.fileio import _csv_cell, format_csv

BOX = (2.5, 2.5, 2.5)


@pytest.fixture
def files(tmp_path, rng):
    """30 Li (walking, wrapped) + 20 three-atom solvent molecules (walking, wrapped): 90 atoms, 300 frames."""
    li = brownian(rng, 300, 30, 1.0, 0.01, BOX)
    solvent = brownian(rng, 300, 20, 1.0, 0.004, BOX)
    offsets = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.1, 0.0]])
    solvent_atoms = (solvent[:, :, None, :] + offsets).reshape(300, 60, 3)
    pos = np.concatenate([li, solvent_atoms], axis=1)
    residues = ions(30, "LI", "LI", "Li") + molecules(20, "XSO", [("O", "O"), ("H1", "H"), ("H2", "H")])
    return write_trajectory(tmp_path, wrap(pos, BOX), BOX, residues)


def test_help_lists_every_lazily_registered_command():
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for name in COMMAND_MODULES:
        assert f"  {name} " in r.output, name
    bad = CliRunner().invoke(main, ["no-such-command"])
    assert bad.exit_code == 2 and "allowed: analyze, build, campaign, quickstart, run, species" in bad.output


_PROBE = r"""
import json, sys
which = sys.argv[1]
if which == "mdtraj":
    import mdtraj  # noqa: F401
else:
    from aseimd.cli import main
    main(sys.argv[2:], standalone_mode=False)
print(json.dumps(sorted(sys.modules)))
"""


def _modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True)
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_analyze_imports_no_simulation_build_or_campaign_code(files, tmp_path):
    top, traj = files
    loaded = _modules("cli", "analyze", "diffusion", "--top", str(top), "--traj", str(traj),
                      "--group", "Li=resname LI", "--json", str(tmp_path / "d.json"))
    assert (tmp_path / "d_msd.png").exists()  # it ran to the end
    heavy = [m for m in loaded if m.split(".")[:2] in (["aseimd", "simulate"], ["aseimd", "build"],
                                                       ["aseimd", "forcefield"], ["aseimd", "campaign"])]
    assert not heavy
    assert not any(m.startswith("openmm.app") for m in loaded)
    # DCD + PDB with a common selection: the topology, the selection and the unit cells without mdtraj
    # (0.2-0.4 s of imports; aseimd.analysis.atom_table / selection / dcd_reader), hence no OpenMM either
    assert not any(m == "mdtraj" or m.startswith("mdtraj.") for m in loaded)
    assert not any(m == "openmm" or m.startswith("openmm.") for m in loaded)


def test_run_directory_default_groups_need_no_mdtraj_topology(tmp_path):
    # the pipeline's default groups (every ion and solvent species present) come from the light atom table
    from synthetic import brownian as walk

    pos = walk(np.random.default_rng(3), 20, 4, 1.0, 0.01, BOX)
    top, traj = write_trajectory(tmp_path, wrap(pos, BOX), BOX,
                                 ions(2, "LI", "LI", "Li") + ions(2, "XE", "XE", "Xe"))
    probe = ("import json, sys; from aseimd.analysis.trajectory import Trajectory; "
             "from aseimd.pipeline import default_diffusion_groups; "
             f"g = default_diffusion_groups(Trajectory({str(top)!r}, {str(traj)!r})); "
             "print(json.dumps([g, 'mdtraj' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    groups, mdtraj_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert groups == {"Li": "resname LI"} and not mdtraj_loaded


def test_unique_and_intersects_are_numpys(rng):
    from aseimd.analysis._arrays import intersects, unique

    for _ in range(300):
        a, b = rng.integers(0, 60, rng.integers(0, 40)), rng.integers(0, 60, rng.integers(0, 40))
        assert np.array_equal(unique(a), np.unique(a)) and unique(a).dtype == np.unique(a).dtype
        assert intersects(a, b) == bool(np.intersect1d(a, b).size)
        f = rng.normal(size=25).round(1)
        assert np.array_equal(unique(f), np.unique(f))


@pytest.mark.parametrize("n_particles", [0, 1, 2, 3, 7, 300])
def test_particle_sum_is_the_float64_sum_over_particles(rng, monkeypatch, n_particles):
    import aseimd.analysis._arrays as arrays

    monkeypatch.setattr(arrays, "SUM_CHUNK_FRAMES", 64)  # several chunks and a ragged last one
    x = rng.uniform(-6.0, 6.0, (300, n_particles, 3)).astype(np.float32)
    got = arrays.particle_sum(x)
    assert got.shape == (300, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, x.sum(axis=1, dtype=np.float64), rtol=0, atol=1e-12)
    # exact sums (multiples of 2^-10 of modest size): every order gives the same bits
    exact = (np.round(x * 1024) / 1024).astype(np.float32)
    assert np.array_equal(arrays.particle_sum(exact), exact.sum(axis=1, dtype=np.float64))
    with pytest.raises(ValueError, match="n_frames, n_particles, d"):
        arrays.particle_sum(x[0])


def test_selection_outside_the_light_subset_goes_to_mdtraj(files, tmp_path):
    top, traj = files
    light = tmp_path / "light.json"
    loaded = _modules("cli", "analyze", "diffusion", "--top", str(top), "--traj", str(traj),
                      "--group", "Li=resname LI", "--json", str(light), "--no-plot")
    assert "mdtraj" not in loaded
    assert "numpy.ma" not in loaded  # np.unique imports it (~40 ms): aseimd.analysis._arrays.unique instead
    heavy = tmp_path / "heavy.json"
    loaded = _modules("cli", "analyze", "diffusion", "--top", str(top), "--traj", str(traj),
                      "--group", "Li=resname LI and mass > 6", "--json", str(heavy), "--no-plot")
    assert "mdtraj" in loaded  # mass comparisons are mdtraj's
    a, b = json.loads(light.read_text()), json.loads(heavy.read_text())
    assert a["Li"] == b["Li"]
    assert (tmp_path / "light_msd.csv").read_text() == (tmp_path / "heavy_msd.csv").read_text()
    bad = CliRunner().invoke(main, ["analyze", "diffusion", "--top", str(top), "--traj", str(traj),
                                    "--group", "Li=resname LI and", "--json", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1 and "is invalid" in bad.output
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.parametrize("drift", ["system", "none"])
@pytest.mark.parametrize("with_solvent", [False, True])  # the solvent unselected (drift from the others) or not
def test_positions_do_not_depend_on_chunk_or_block_size(files, monkeypatch, drift, with_solvent):
    top, traj = files

    def positions(chunk_frames, block_bytes):
        monkeypatch.setattr(groups_mod, "BLOCK_BYTES", block_bytes)
        t = Trajectory(top, traj, chunk_frames=chunk_frames)
        gs = [make_group(t, "Li", "resname LI", com=False)]
        if with_solvent:
            gs.append(make_group(t, "XSO", "resname XSO", com=True))
        return load_positions(t, gs, drift=drift)

    ref = positions(1000, 1 << 30)  # one chunk, one block: the plain path
    for chunk_frames, block_bytes in ((7, 1 << 30), (1000, 12 * 90 * 5), (64, 12 * 90 * 3), (300, 1)):
        p = positions(chunk_frames, block_bytes)
        np.testing.assert_allclose(p.xyz_nm, ref.xyz_nm, rtol=0, atol=2e-6)
        np.testing.assert_allclose(p.drift_nm, ref.drift_nm, rtol=0, atol=1e-9)
    if drift == "system":  # the drift is the mass-weighted mean of every unwrapped atom, frame by frame
        t = Trajectory(top, traj)
        every = make_group(t, "all", "all", com=False)
        whole = load_positions(t, [every], drift="none").xyz_nm.astype(np.float64)
        m = t.masses(np.arange(t.topology.n_atoms))
        com = np.einsum("fai,a->fi", whole, m / m.sum())
        np.testing.assert_allclose(ref.drift_nm, com - com[0], rtol=0, atol=2e-6)
        assert np.abs(ref.drift_nm).max() > 1e-3  # not trivially zero


def test_system_drift_unwraps_only_the_selected_atoms_as_if_all_were(files):
    """drift=system reads every atom but unwraps only the groups' atoms, residues made whole over all atoms.

    One atom of each three-atom solvent molecule (a partial residue) and the Li ions: their positions
    equal those of the same atoms in an unwrap of every atom, less the centre of mass of all of them.
    """
    top, traj = files
    t = Trajectory(top, traj)
    gs = [make_group(t, "Li", "resname LI", com=False), make_group(t, "H1", "resname XSO and name H1", com=False)]
    got = load_positions(t, gs, drift="system")
    every = load_positions(t, [make_group(t, "all", "all", com=False)], drift="none").xyz_nm.astype(np.float64)
    m = t.masses(np.arange(t.topology.n_atoms))
    com = np.einsum("fai,a->fi", every, m / m.sum())
    for g in gs:
        want = every[:, g.atom_indices] - (com - com[0])[:, None, :]
        np.testing.assert_allclose(got.of(g.label), want, rtol=0, atol=2e-6)


def test_reused_read_buffer_gives_mdtraj_coordinates(files, monkeypatch):
    import mdtraj

    top, traj = files
    monkeypatch.setattr(dcd_reader, "DENSE_READ_BYTES", 3 * 1000)  # several refills of the buffer per read
    d = dcd_reader.open_dcd(traj)
    atoms = np.arange(90)
    xyz, box = d.read(np.arange(d.n_frames), atoms)
    ref = mdtraj.load(str(traj), top=str(top))
    np.testing.assert_array_equal(xyz, ref.xyz)
    np.testing.assert_allclose(box[:, 0, 0], ref.unitcell_lengths[:, 0], rtol=1e-6)


def test_csv_columns_format_like_cells():
    cols = [np.arange(5.0) * 0.1, np.float32([0.1, 2, 3, np.nan, np.inf]), np.arange(5),
            np.array(["a", "b", "c", "d", "e"]), np.array([1.5, "x", 2, None, True], dtype=object),
            np.array([True, False, True, True, False])]
    cell_by_cell = [",".join("abcdef")] + [",".join(_csv_cell(v) for v in row) for row in zip(*cols)]
    assert format_csv(list("abcdef"), cols) == "\n".join(cell_by_cell) + "\n"


def test_no_plot_writes_json_and_csv_only_and_skips_matplotlib(files, tmp_path):
    top, traj = files
    out = tmp_path / "np.json"
    loaded = _modules("cli", "analyze", "diffusion", "--top", str(top), "--traj", str(traj),
                      "--group", "Li=resname LI", "--json", str(out), "--no-plot")
    assert out.exists() and (tmp_path / "np_msd.csv").exists() and not (tmp_path / "np_msd.png").exists()
    assert "matplotlib" not in loaded
    with_plot = CliRunner().invoke(main, ["analyze", "diffusion", "--top", str(top), "--traj", str(traj),
                                          "--group", "Li=resname LI", "--json", str(tmp_path / "p.json")])
    assert with_plot.exit_code == 0, with_plot.output
    assert json.loads(out.read_text())["Li"] == json.loads((tmp_path / "p.json").read_text())["Li"]
    assert (tmp_path / "np_msd.csv").read_text() == (tmp_path / "p_msd.csv").read_text()


def test_fixed_layout_figures_keep_their_content(files, tmp_path):
    from aseimd.analysis import DiffusionAnalysis, TransferenceAnalysis, run_analyses
    from aseimd.report.figures import save_figure
    from aseimd.report.transport_plots import msd_figure, onsager_figure

    top, traj = files
    d, t = run_analyses((top, traj), [DiffusionAnalysis({"Li": "resname LI"}),
                                      TransferenceAnalysis(("Li", "resname LI"), ("X", "resname XSO"),
                                                           temperature_K=300.0, anion_charge=-1.0)])
    fig = msd_figure(d.results)
    (ax,) = fig.axes
    assert fig.get_layout_engine() is None  # fixed margins, no constrained-layout pass
    assert ax.get_xscale() == ax.get_yscale() == "log"
    styles = [line.get_linestyle() for line in ax.get_lines()]
    assert "--" in styles and ":" in styles  # the fit and the slope-1 guide
    assert len(ax.collections) >= 2 and ax.patches  # the ±1σ band (and its legend entry), the shaded window
    assert ax.xaxis.get_major_formatter()(100.0, 0) == "100"  # plain labels, no mathtext
    save_figure(fig, tmp_path / "m.png")
    fig = onsager_figure(t.result, ("Li", "X"))
    assert len(fig.axes) == 2 and "e² nm²" in fig.axes[1].get_ylabel()  # the charge curve on its own axis
    save_figure(fig, tmp_path / "o.png")
    assert (tmp_path / "m.png").stat().st_size > 10_000 and (tmp_path / "o.png").stat().st_size > 10_000


_ENV_PROBE = r"""
import os
import aseimd.cli  # sets the process-wide defaults before numpy is imported
import numpy
threads = None
try:
    import threadpoolctl
    threads = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
except ImportError:
    pass
print(os.environ["OPENBLAS_NUM_THREADS"], os.environ["NUMPY_MADVISE_HUGEPAGE"], threads)
"""


@pytest.mark.parametrize("user", [None, "2"])
def test_cli_pins_openblas_to_one_thread_unless_the_user_chose(user):
    """The CLI process starts OpenBLAS with one thread (no idle workers spinning), keeping a user's setting."""
    import ast
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "NUMPY_MADVISE_HUGEPAGE")}
    if user is not None:
        env["OPENBLAS_NUM_THREADS"] = user
    out = subprocess.run([sys.executable, "-c", _ENV_PROBE], capture_output=True, text=True, check=True,
                         env=env).stdout.split(maxsplit=2)
    want = user or "1"
    assert out[:2] == [want, "0"]
    threads = ast.literal_eval(out[2])
    if threads:  # numpy built on OpenBLAS and threadpoolctl present: the pool really has that many threads
        assert threads == [min(int(want), os.cpu_count())]
