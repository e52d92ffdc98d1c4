"""Malformed and hostile input across every command: one line, the right exit code, nothing touched.

Each case runs the real CLI (click's CliRunner) in a working directory that
holds a user's files, a built system and a finished run, and asserts

* the exit code (2 bad input, 3 the environment -- see :mod:`aseimd.errors`),
* a single ``Error: ...`` line that names the bad value and what is allowed,
* no Python traceback,
* the working directory, user files included, byte-identical afterwards.

Analyze cases are limited to option parsing and errors that are clean in the
analysis layer already (trajectory checks belong to the analysis engineer).
"""

import errno
import os
import stat

import pytest
import yaml
from click.testing import CliRunner

from aseimd.cli import main
from aseimd.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT
from aseimd.simulate import run_protocol
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.toy import write_toy_system

RECIPE = "1 M LiPF6 in EC:DMC 1:1 v/v"
BUILD = ["build", "electrolyte", RECIPE, "-o", "new", "--n-solvent", "30", "--cutoff-nm", "0.7"]
PROTOCOL = {
    "name": "malformed-test",
    "report": {"thermo_steps": 10, "trajectory_steps": 10, "checkpoint_steps": 50},
    "stages": [{"type": "minimize", "max_iterations": 30}, {"type": "nvt", "length_steps": 20},
               {"type": "npt", "length_steps": 40}, {"type": "production", "length_steps": 40}],
}
RUN = ["run", "system", "-o", "newrun", "--protocol", "p.yaml", "--platform", "Reference", "--quiet"]
TRAJ = ["--top", "system/system.pdb", "--traj", "run/trajectory.dcd"]


def _replace(args, old, new):
    """``args`` with the value after option ``old`` replaced (or the option appended)."""
    args = list(args)
    if old in args:
        args[args.index(old) + 1] = new
    else:
        args += [old, new]
    return args


CASES = [
    # --- top level ---------------------------------------------------------------------------------------------
    ("no-such-option", ["--bogus"], 2, ["--bogus", "aseimd --help"]),
    ("misspelt-command", ["bild"], 2, ["'bild'", "Did you mean 'build'? Allowed: ", "quickstart"]),
    ("species-extra-arg", ["species", "PEO"], 2, ["PEO", "aseimd species --help"]),
    ("species-bad-option", ["species", "--json"], 2, ["--json", "aseimd species --help"]),
    # --- build electrolyte: recipe ---------------------------------------------------------------------------------
    ("unknown-salt", _replace(BUILD, "electrolyte", "electrolyte")[:2] + ["1 M LiXX in EC", "-o", "new"], 2,
     ["'LiXX'"]),
    ("unknown-solvent", ["build", "electrolyte", "1 M LiPF6 in EC:FOO 1:1 v/v", "-o", "new"], 2, ["'FOO'"]),
    ("zero-concentration", ["build", "electrolyte", "0 M LiPF6 in EC:DMC 1:1 v/v", "-o", "new"], 2, ["got 0"]),
    ("negative-concentration", ["build", "electrolyte", "-o", "new", "--", "-0.5 M LiPF6 in EC"], 2, ["-0.5"]),
    ("bad-ratio", ["build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1:2 v/v", "-o", "new"], 2, ["'1:1:2'"]),
    ("bad-basis", ["build", "electrolyte", "1 M LiPF6 in EC:DMC 1:1 q/q", "-o", "new"], 2, ["'q/q'"]),
    ("impossible-molarity", ["build", "electrolyte", "20 M LiPF6 in EC", "-o", "new"], 2, ["20 M LiPF6"]),
    ("too-dilute", ["build", "electrolyte", "0.01 M LiPF6 in EC", "-o", "new", "--n-solvent", "20"], 2,
     ["too small for one LiPF6 ion pair"]),
    ("empty-recipe", ["build", "electrolyte", "", "-o", "new"], 2, []),
    ("missing-recipe", ["build", "electrolyte", "-o", "new"], 2, ["Missing argument 'RECIPE'"]),
    ("missing-output", ["build", "electrolyte", RECIPE], 2, ["Missing option '-o'"]),
    ("unknown-builder", ["build", "crystal", "-o", "new"], 2, ["'crystal'", "allowed: electrolyte"]),
    # --- build electrolyte: options ---------------------------------------------------------------------------------
    ("n-solvent-text", _replace(BUILD, "--n-solvent", "abc"), 2, ["--n-solvent", "'abc' is not a valid integer"]),
    ("n-solvent-float", _replace(BUILD, "--n-solvent", "1.5"), 2, ["'1.5' is not a valid integer"]),
    ("n-solvent-zero", _replace(BUILD, "--n-solvent", "0"), 2, ["n_solvent", "positive integer", "got 0"]),
    ("n-solvent-negative", _replace(BUILD, "--n-solvent", "-5"), 2, ["got -5"]),
    ("n-solvent-huge", _replace(BUILD, "--n-solvent", "100000000"), 2, ["packing limit", "1000000 atoms"]),
    ("box-and-n-solvent", BUILD + ["--box-edge-nm", "3"], 2, ["got both"]),
    ("box-negative", BUILD[:5] + ["--box-edge-nm", "-1"], 2, ["box_edge_nm", "positive", "-1"]),
    ("box-nan", BUILD[:5] + ["--box-edge-nm", "nan"], 2, ["box_edge_nm", "nan"]),
    ("box-text", BUILD[:5] + ["--box-edge-nm", "big"], 2, ["'big' is not a valid float"]),
    ("box-huge", BUILD[:5] + ["--box-edge-nm", "1000"], 2, ["packing limit"]),
    ("seed-text", BUILD + ["--seed", "abc"], 2, ["--seed", "'abc' is not a valid integer"]),
    ("seed-negative", BUILD + ["--seed", "-1"], 2, ["seed", "non-negative", "-1"]),
    ("charge-scale-big", BUILD + ["--charge-scale", "5"], 2, ["--charge-scale", "5.0", "0<x<=1"]),
    ("charge-scale-negative", BUILD + ["--charge-scale", "-1"], 2, ["--charge-scale", "0<x<=1"]),
    ("charge-scale-nan", BUILD + ["--charge-scale", "nan"], 2, ["charge_scale nan", "allowed"]),
    ("cutoff-zero", _replace(BUILD, "--cutoff-nm", "0"), 2, ["--cutoff-nm", "0.0", "x>0"]),
    ("cutoff-negative", _replace(BUILD, "--cutoff-nm", "-1"), 2, ["--cutoff-nm", "x>0"]),
    ("cutoff-longer-than-box", _replace(BUILD, "--cutoff-nm", "50"), 2,
     ["cutoff_nm 50", "2 x cutoff"]),
    ("timeout-zero", BUILD + ["--packmol-timeout-s", "0"], 2, ["--packmol-timeout-s", "x>0"]),
    ("timeout-nan", BUILD + ["--packmol-timeout-s", "nan"], 2, ["timeout", "positive", "nan"]),
    # --- build: where the output goes --------------------------------------------------------------------------------
    ("out-empty", _replace(BUILD, "-o", ""), 2, ["empty"]),
    ("out-is-a-file", _replace(BUILD, "-o", "notes.txt"), 2, ["'notes.txt'", "is a file"]),
    ("out-under-a-file", _replace(BUILD, "-o", "notes.txt/sub"), 2, ["'notes.txt'", "not a folder"]),
    ("out-user-folder", _replace(BUILD, "-o", "paper"), 2, ["'paper'", "already exists", "thesis.tex"]),
    ("out-user-folder-force", _replace(BUILD, "-o", "paper") + ["--force"], 2,
     ["refusing to replace", "thesis.tex"]),
    ("out-dot", _replace(BUILD, "-o", "."), 2, ["'.'", "current folder"]),
    ("out-dotdot-force", _replace(BUILD, "-o", "..") + ["--force"], 2, ["'..'", "current folder"]),
    ("out-run-dir-force", _replace(BUILD, "-o", "run") + ["--force"], 2, ["run directory, not a system directory"]),
    ("out-proc", _replace(BUILD, "-o", "/proc/aseimd-test"), 2, ["/proc"]),
    # --- run --------------------------------------------------------------------------------------------------------
    ("system-missing", _replace(RUN, "run", "run")[:1] + ["nothing"] + RUN[2:], 2, ["'nothing'", "does not exist"]),
    ("system-not-a-system", ["run", "paper"] + RUN[2:], 2, ["'paper'", "not a system directory", "system.pdb"]),
    ("system-is-a-run", ["run", "run"] + RUN[2:], 2, ["not a system directory"]),
    ("protocol-unknown", _replace(RUN, "--protocol", "nope"), 2, ["'nope'", "shipped: default"]),
    ("protocol-not-yaml-mapping", _replace(RUN, "--protocol", "notes.txt"), 2, ["'notes.txt'", "mapping"]),
    ("platform-unknown", _replace(RUN, "--platform", "Metal"), 2,
     ["'Metal'", "allowed: auto, CUDA, OpenCL, CPU, Reference"]),
    ("set-unknown-key", RUN + ["--set", "temprature_K=300"], 2, ["'temprature_K'"]),
    ("set-no-equals", RUN + ["--set", "noequals"], 2, ["'noequals'", "key=value"]),
    ("set-not-a-number", RUN + ["--set", "temperature_K=abc"], 2, ["temperature_K", "'abc'", "finite number"]),
    ("set-negative-timestep", RUN + ["--set", "timestep_fs=-2"], 2, ["timestep_fs", "> 0", "-2"]),
    ("set-bad-coupling", RUN + ["--set", "stages.npt.coupling=xy"], 2, ["unknown coupling 'xy'"]),
    ("set-stage-length-text", RUN + ["--set", "stages.production.length_ps=abc"], 2, ["length_ps", "'abc'"]),
    ("set-cutoff-too-long", RUN + ["--set", "cutoff_nm=3"], 2, ["cutoff_nm 3", "allowed: cutoff_nm <= 0.950"]),
    ("threads-zero", RUN + ["--threads", "0"], 2, ["threads", "positive integer", "got 0"]),
    ("threads-text", RUN + ["--threads", "many"], 2, ["--threads", "'many' is not a valid integer"]),
    ("run-out-empty", _replace(RUN, "-o", ""), 2, ["empty"]),
    ("run-out-is-a-file", _replace(RUN, "-o", "notes.txt"), 2, ["'notes.txt'", "is a file"]),
    ("run-out-user-folder", _replace(RUN, "-o", "paper"), 2, ["'paper'", "not an aseimd run directory"]),
    ("run-out-user-folder-force", _replace(RUN, "-o", "paper") + ["--force"], 2,
     ["refusing to replace", "thesis.tex"]),
    ("run-out-system-force", _replace(RUN, "-o", "system") + ["--force"], 2, ["refusing to replace", "system.pdb"]),
    ("run-out-dot", _replace(RUN, "-o", "."), 2, ["current folder"]),
    ("run-missing-output", RUN[:2], 2, ["Missing option '-o'"]),
    ("run-other-protocol", _replace(RUN, "-o", "run") + ["--set", "temperature_K=310"], 2, ["different protocol"]),
    # --- analyze (option parsing and errors the analysis layer already reports cleanly) -----------------------------
    ("analyze-unknown", ["analyze", "viscosity"], 2, ["'viscosity'", "allowed: ", "diffusion"]),
    ("diffusion-missing-top", ["analyze", "diffusion", "--traj", "run/trajectory.dcd", "--group", "A=all"], 2,
     ["Missing option '--top'"]),
    ("diffusion-bad-group", ["analyze", "diffusion", *TRAJ, "--group", "nolabel", "--json", "d.json"], 2,
     ["'nolabel'", "LABEL=SELECTION"]),
    ("diffusion-stride-zero", ["analyze", "diffusion", *TRAJ, "--group", "A=all", "--stride", "0"], 2,
     ["--stride", "x>=1"]),
    ("diffusion-start-negative", ["analyze", "diffusion", *TRAJ, "--group", "A=all", "--start", "-1"], 2,
     ["--start", "x>=0"]),
    ("diffusion-bad-dims", ["analyze", "diffusion", *TRAJ, "--group", "A=all", "--dims", "w"], 2,
     ["'w'", "xyz"]),
    ("transference-no-temperature", ["analyze", "transference", *TRAJ, "--cation", "A=resname AR", "--anion",
                                     "B=resname WAT"], 2, ["--temperature-K"]),
    ("coordination-stride-text", ["analyze", "coordination", *TRAJ, "--stride", "x"], 2,
     ["--stride", "'x' is not a valid integer"]),
    ("profile-bad-axis", ["analyze", "profile", *TRAJ, "--group", "A=all", "--axis", "w"], 2, ["'w'", "'x', 'y', 'z'"]),
    ("diffusion-json-exists", ["analyze", "diffusion", *TRAJ, "--group", "A=all", "--json", "notes.txt"], 2,
     ["'notes.txt'", "already exists", "--force"]),
    # --- quickstart -------------------------------------------------------------------------------------------------
    ("quickstart-unknown-system", ["quickstart", "--system", "nope"], 2,
     ["interface spec 'nope' not found", "li-peo-lipf6", "quickstart"]),
    ("quickstart-bad-system", ["quickstart", "--system", "p.yaml"], 2, ["unknown key 'report' in interface spec"]),
    ("quickstart-bad-option", ["quickstart", "--recipe", "x"], 2, ["--recipe", "aseimd quickstart --help"]),
]


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            data = open(path, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(path, root)] = (stat.S_IMODE(st.st_mode), data)
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("malformed") / "work"
    (root / "paper").mkdir(parents=True)
    (root / "paper" / "thesis.tex").write_text("\\chapter{Results}\n")
    (root / "notes.txt").write_text("do not lose\n")
    write_toy_system(root / "system", n_lj=60, n_water=8, box_nm=1.9, cutoff_nm=0.8)
    (root / "p.yaml").write_text(yaml.safe_dump(PROTOCOL))
    run_protocol(root / "system", root / "run", Protocol.from_dict(PROTOCOL), "Reference", progress=False)
    return root


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("name, args, code, fragments", CASES, ids=[c[0] for c in CASES])
def test_malformed_input(workdir, monkeypatch, name, args, code, fragments):
    monkeypatch.chdir(workdir)
    before = tree(workdir)
    result = CliRunner().invoke(main, args, prog_name="aseimd")
    text = result.output
    print(text)
    assert result.exit_code == code, text
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert lines[0].startswith("Error: ") and "Traceback" not in text
    assert "np.float64" not in text
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert tree(workdir) == before, "the working directory changed"


def test_packmol_missing_is_an_environment_error(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("ASEIMD_PACKMOL", str(workdir / "no-packmol-here"))
    before = tree(workdir)
    result = CliRunner().invoke(main, BUILD)
    assert result.exit_code == EXIT_ENVIRONMENT, result.output
    assert result.output.count("\n") == 1 and "ASEIMD_PACKMOL" in result.output
    assert tree(workdir) == before


@pytest.mark.parametrize("err, code, fragment", [
    (errno.ENOSPC, EXIT_ENVIRONMENT, "No space left on device"),
    (errno.EACCES, EXIT_ENVIRONMENT, "Permission denied"),
    (errno.EROFS, EXIT_ENVIRONMENT, "Read-only file system"),
    (errno.ENOENT, EXIT_BAD_INPUT, "No such file or directory"),
])
def test_os_errors_while_writing_are_one_line_with_their_exit_code(workdir, monkeypatch, err, code, fragment):
    """A disk that fills up (or turns read-only) during a run: one line, exit 3, the path named."""
    import aseimd.fileio

    monkeypatch.chdir(workdir)
    real = os.fsync

    def failing_fsync(fd):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(aseimd.fileio.os, "fsync", failing_fsync)
    result = CliRunner().invoke(main, RUN)
    monkeypatch.setattr(aseimd.fileio.os, "fsync", real)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot write") and fragment in lines[0], result.output
    assert "Traceback" not in result.output


def test_internal_errors_are_one_line_too(workdir, monkeypatch):
    import aseimd.simulate.runner

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.chdir(workdir)
    monkeypatch.setattr(aseimd.simulate.runner, "run_protocol", broken)
    result = CliRunner().invoke(main, RUN)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: internal error (KeyError: 'boom'); rerun with 'aseimd --traceback ...' and report it"]
    result = CliRunner().invoke(main, ["--traceback", *RUN])
    assert isinstance(result.exception, KeyError)
