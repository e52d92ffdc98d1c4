"""``--force`` replaces only what aseimd wrote: user files in the target are never removed.

aseimd marks every directory it writes with ``.aseimd`` (kind + files). ``build
--force`` and ``run --force`` replace only a directory of their own kind that
holds nothing but aseimd's files; everything else -- user files, nested folders,
``.``, ``..``, ``""``, a parent of the working directory, a symbolic link,
another kind of aseimd directory -- is refused with one line, and the tree is
byte-identical afterwards.
"""

import json
import os
import stat

import pytest
import yaml
from click.testing import CliRunner

from aseimd.cli import main
from aseimd.errors import OutputExistsError
from aseimd.fileio import MARKER, atomic_write_text, replace_problem, staged_directory, write_marker
from aseimd.simulate.toy import write_toy_system

RECIPE = "1 M LiPF6 in EC:DMC 1:1 v/v"
SMALL = ["--n-solvent", "30", "--cutoff-nm", "0.7"]
PROTOCOL = {
    "name": "force-test",
    "report": {"thermo_steps": 10, "trajectory_steps": 10, "checkpoint_steps": 20},
    "stages": [{"type": "minimize", "max_iterations": 20}, {"type": "nvt", "length_steps": 20},
               {"type": "production", "length_steps": 20, "volume_from": "none"}],
}


def tree(root):
    """Every path under ``root`` with its bytes (files) or None (folders), and its mode."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            data = open(path, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[rel] = (stat.S_IMODE(st.st_mode), data)
    return out


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def assert_one_line_refusal(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    assert "pass --force" not in result.output  # --force was given, or would not help
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory with a user's files in it."""
    root = tmp_path / "home" / "work"
    (root / "paper" / "figures").mkdir(parents=True)
    (root / "paper" / "thesis.tex").write_text("\\chapter{Results}\n")
    (root / "paper" / "figures" / "fig1.svg").write_text("<svg/>")
    (root / "notes.txt").write_text("do not lose")
    monkeypatch.chdir(root)
    return root


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("force")
    system = write_toy_system(root / "system", n_lj=60, n_water=8, box_nm=1.9, cutoff_nm=0.8)
    protocol = root / "p.yaml"
    protocol.write_text(yaml.safe_dump(PROTOCOL))
    return system, protocol


@pytest.mark.parametrize("target", ["paper", ".", "..", "", "paper/..", os.sep])
def test_build_force_refuses_user_folders_and_the_working_directory(work, target):
    before = tree(work.parent)
    result = cli("build", "electrolyte", RECIPE, "-o", target, *SMALL, "--force")
    assert_one_line_refusal(result)
    assert tree(work.parent) == before


@pytest.mark.parametrize("target", ["paper", ".", "..", "", os.sep])
def test_run_force_refuses_user_folders_and_the_working_directory(work, toy, target):
    system, protocol = toy
    before = tree(work.parent)
    result = cli("run", system, "-o", target, "--protocol", protocol, "--platform", "Reference", "--quiet",
                 "--force")
    assert_one_line_refusal(result)
    assert tree(work.parent) == before


def test_build_force_replaces_its_own_directory_but_not_one_a_user_added_to(work):
    assert cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL).exit_code == 0
    marker = json.loads((work / "elyte" / MARKER).read_text())
    assert marker["kind"] == "system" and marker["files"] == ["build.json", "system.pdb", "system.xml"]
    result = cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL, "--seed", "3", "--force")
    assert result.exit_code == 0, result.output
    assert json.loads((work / "elyte" / "build.json").read_text())["seed"] == 3
    (work / "elyte" / "analysis-notes.md").write_text("my notes")
    (work / "elyte" / "sub").mkdir()
    before = tree(work)
    result = cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL, "--force")
    assert_one_line_refusal(result, "refusing to replace", "analysis-notes.md", "sub/")
    assert tree(work) == before


def test_run_force_replaces_its_own_run_but_not_user_files_or_a_system_directory(work, toy):
    system, protocol = toy
    args = ["--protocol", protocol, "--platform", "Reference", "--quiet"]
    assert cli("run", system, "-o", "run1", *args).exit_code == 0
    assert json.loads((work / "run1" / MARKER).read_text())["kind"] == "run"
    result = cli("run", system, "-o", "run1", *args, "--force", "--set", "seed=4")
    assert result.exit_code == 0, result.output
    (work / "run1" / "diffusion.json").write_text("{}")  # a user's analysis kept next to the run
    before = tree(work)
    result = cli("run", system, "-o", "run1", *args, "--force")
    assert_one_line_refusal(result, "refusing to replace", "diffusion.json")
    assert tree(work) == before
    # a system directory is aseimd's, but not a run: neither command replaces the other's kind
    assert cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL).exit_code == 0
    before = tree(work)
    assert_one_line_refusal(cli("run", system, "-o", "elyte", *args, "--force"), "system directory")
    (work / "run1" / "diffusion.json").unlink()
    before = tree(work)
    assert_one_line_refusal(cli("build", "electrolyte", RECIPE, "-o", "run1", *SMALL, "--force"), "run directory")
    assert tree(work) == before


def test_force_refuses_a_symbolic_link_and_a_file(work):
    assert cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL).exit_code == 0
    os.symlink(work / "elyte", work / "link")
    before = tree(work)
    assert_one_line_refusal(cli("build", "electrolyte", RECIPE, "-o", "link", *SMALL, "--force"), "symbolic link")
    assert_one_line_refusal(cli("build", "electrolyte", RECIPE, "-o", "notes.txt", *SMALL, "--force"), "file")
    assert tree(work) == before


def test_files_added_while_building_are_never_lost(work, monkeypatch):
    """The target is checked again right before the swap."""
    assert cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL).exit_code == 0
    import aseimd.forcefield

    real = aseimd.forcefield.create_system

    def slow_user(*args, **kwargs):
        (work / "elyte" / "added-meanwhile.txt").write_text("typed during the build")
        return real(*args, **kwargs)

    monkeypatch.setattr(aseimd.forcefield, "create_system", slow_user)
    result = cli("build", "electrolyte", RECIPE, "-o", "elyte", *SMALL, "--force")
    assert result.exit_code == 2 and "added-meanwhile.txt" in result.output
    assert (work / "elyte" / "added-meanwhile.txt").read_text() == "typed during the build"
    assert not [p for p in work.iterdir() if p.name.startswith(".elyte")]  # no staging leftovers


def test_replace_problem_rules(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    assert replace_problem(d, "system", ["a.txt"]) is None  # empty: nothing to lose
    (d / "a.txt").write_text("x")
    assert "no .aseimd marker" in replace_problem(d, "system", ["a.txt"])
    write_marker(d, "system", ["a.txt"])
    assert replace_problem(d, "system", ["a.txt"]) is None
    assert "not a run directory" in replace_problem(d, "run", ["a.txt"])
    (d / ".a.txt.x1.tmp").write_text("")  # aseimd's own temporaries do not count
    assert replace_problem(d, "system", ["a.txt"]) is None
    (d / "b.txt").write_text("user")
    assert "b.txt" in replace_problem(d, "system", ["a.txt"])
    legacy = tmp_path / "legacy"  # written before markers existed: build.json names the aseimd version
    legacy.mkdir()
    (legacy / "build.json").write_text(json.dumps({"aseimd_version": "0.1.0"}))
    assert replace_problem(legacy, "system", ["build.json"], legacy_json="build.json") is None
    (legacy / "build.json").write_text(json.dumps({"made_by": "me"}))
    assert replace_problem(legacy, "system", ["build.json"], legacy_json="build.json") is not None


def test_staged_directory_with_force_keeps_user_files(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    (d / "mine.dat").write_bytes(b"\x00\x01")
    with pytest.raises(OutputExistsError, match="mine.dat"):
        with staged_directory(d, force=True, kind="system", files=["x"]) as tmp:
            (tmp / "x").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (d / "mine.dat").read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                        (0o002, 0o664, 0o775)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
        with staged_directory(tmp_path / "dir", kind="system", files=["a"]) as tmp:
            (tmp / "a").write_text("a")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == dir_mode
    assert stat.S_IMODE((tmp_path / "dir" / MARKER).stat().st_mode) == file_mode


def test_built_and_run_outputs_follow_the_umask(work, toy):
    system, protocol = toy
    old = os.umask(0o022)
    try:
        assert cli("run", system, "-o", "run1", "--protocol", protocol, "--platform", "Reference",
                   "--quiet").exit_code == 0
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (work / "run1").iterdir()}
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((work / "run1").stat().st_mode) == 0o755


def test_a_run_can_be_resumed_from_inside_its_directory_but_not_forced(work, toy, monkeypatch):
    system, protocol = toy
    args = ["--protocol", protocol, "--platform", "Reference", "--quiet"]
    assert cli("run", system, "-o", "run1", *args).exit_code == 0
    monkeypatch.chdir(work / "run1")
    result = cli("run", system, "-o", ".", *args)
    assert result.exit_code == 0 and "already finished" in result.output
    before = tree(work)
    assert_one_line_refusal(cli("run", system, "-o", ".", *args, "--force"), "current folder")
    assert tree(work) == before
