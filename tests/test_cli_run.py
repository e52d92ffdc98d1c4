"""`aseimd run` through click's CliRunner: exit codes and one-line messages."""

import pytest
import yaml
from click.testing import CliRunner

from aseimd.cli import main
from aseimd.simulate.toy import write_toy_system

PROTOCOL = {
    "name": "cli-test",
    "report": {"thermo_steps": 10, "trajectory_steps": 10, "checkpoint_steps": 50},
    "stages": [
        {"type": "minimize", "max_iterations": 50},
        {"type": "nvt", "length_steps": 20},
        {"type": "npt", "length_steps": 40},
        {"type": "production", "length_steps": 30},
    ],
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    system = write_toy_system(root / "system", n_lj=60, n_water=8, box_nm=1.9, cutoff_nm=0.8)
    protocol = root / "p.yaml"
    protocol.write_text(yaml.safe_dump(PROTOCOL))
    return root, system, protocol


def _invoke(*args):
    return CliRunner().invoke(main, ["run", *map(str, args)])


def test_help():
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0
    for option in ("--protocol", "--platform", "--force", "--set", "resume"):
        assert option in result.output


def test_run_then_finished_then_force(inputs, tmp_path):
    _, system, protocol = inputs
    out = tmp_path / "run"
    result = _invoke(system, "-o", out, "--protocol", protocol, "--platform", "Reference", "--quiet")
    assert result.exit_code == 0, result.output
    assert "finished 90 steps on Reference" in result.output and "3 frames" in result.output
    result = _invoke(system, "-o", out, "--protocol", protocol, "--quiet")
    assert result.exit_code == 0 and "already finished" in result.output
    result = _invoke(system, "-o", out, "--protocol", protocol, "--platform", "Reference", "--quiet", "--force",
                     "--set", "seed=3")
    assert result.exit_code == 0 and "finished 90 steps" in result.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--protocol", "nope"], "unknown protocol 'nope'; shipped: default, interface, quickstart"),
        (["--platform", "Metal"], "unknown platform 'Metal'; allowed: auto, CUDA, OpenCL, CPU, Reference"),
        (["--set", "temprature_K=300"], "unknown key 'temprature_K'"),
        (["--set", "stages.npt.coupling=xy"], "unknown coupling 'xy'"),
    ],
)
def test_bad_input_exits_2_with_one_line(inputs, tmp_path, args, fragment):
    _, system, protocol = inputs
    extra = [] if args[0] == "--protocol" else ["--protocol", protocol]
    result = _invoke(system, "-o", tmp_path / "run", *extra, *args, "--quiet")
    assert result.exit_code == 2
    assert fragment in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "run.json").exists()


def test_missing_system_dir(tmp_path):
    result = _invoke(tmp_path / "nothing", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_foreign_output_directory_is_not_clobbered(inputs, tmp_path):
    _, system, protocol = inputs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    result = _invoke(system, "-o", out, "--protocol", protocol, "--platform", "Reference", "--quiet")
    assert result.exit_code == 2 and "not an aseimd run directory" in result.output and "--force" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_mismatched_run_directory(inputs, tmp_path):
    _, system, protocol = inputs
    out = tmp_path / "run"
    assert _invoke(system, "-o", out, "--protocol", protocol, "--platform", "Reference", "--quiet").exit_code == 0
    result = _invoke(system, "-o", out, "--protocol", protocol, "--set", "temperature_K=310", "--quiet")
    assert result.exit_code == 2 and "different protocol" in result.output
    result = _invoke(system, "-o", out, "--protocol", protocol, "--platform", "CPU", "--set", "seed=9", "--quiet")
    assert result.exit_code == 2


def test_missing_checkpoint_is_not_silently_restarted(inputs, tmp_path):
    _, system, protocol = inputs
    out = tmp_path / "run"
    assert _invoke(system, "-o", out, "--protocol", protocol, "--platform", "Reference", "--quiet").exit_code == 0
    (out / "checkpoint.chk").unlink()
    before = (out / "trajectory.dcd").read_bytes()
    result = _invoke(system, "-o", out, "--protocol", protocol, "--quiet")
    assert result.exit_code == 2 and "checkpoint.chk" in result.output and "--force" in result.output
    assert (out / "trajectory.dcd").read_bytes() == before


def _unavailable_platforms():
    import openmm

    have = {openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())}
    return ["Metal"] + [name for name in ("CUDA", "OpenCL") if name not in have][:1]


@pytest.mark.parametrize("platform", _unavailable_platforms())
def test_bad_platform_leaves_nothing_and_force_clobbers_nothing(inputs, tmp_path, platform):
    _, system, protocol = inputs
    out = tmp_path / "fresh"
    result = _invoke(system, "-o", out, "--protocol", protocol, "--platform", platform)
    assert result.exit_code == 2 and not out.exists()
    done = tmp_path / "done"
    assert _invoke(system, "-o", done, "--protocol", protocol, "--platform", "Reference", "--quiet").exit_code == 0
    before = {p.name: p.read_bytes() for p in done.iterdir()}
    result = _invoke(system, "-o", done, "--protocol", protocol, "--platform", platform, "--force")
    assert result.exit_code == 2
    assert {p.name: p.read_bytes() for p in done.iterdir()} == before
