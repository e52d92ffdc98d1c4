"""Failed runs leave a clear state; minimisation shows progress; errors never overwrite a progress line."""

import io
import json

import pytest

from aseimd.errors import SimulationError, SpecError
from aseimd.simulate import run_protocol
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.reporters import MinimizationProgress, ProgressReporter
from aseimd.simulate.toy import write_toy_system

PROTOCOL = {
    "name": "failed-test",
    "report": {"thermo_steps": 10, "trajectory_steps": 10, "checkpoint_steps": 20},
    "stages": [{"type": "minimize", "max_iterations": 30}, {"type": "nvt", "length_steps": 40},
               {"type": "production", "length_steps": 20, "volume_from": "none"}],
}


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    return write_toy_system(tmp_path_factory.mktemp("failed") / "system", n_lj=60, n_water=8, box_nm=1.9,
                            cutoff_nm=0.8)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def _run(system, run_dir, *overrides, stream=None):
    return run_protocol(system, run_dir, Protocol.from_dict(PROTOCOL), "Reference", overrides=overrides,
                        stream=stream if stream is not None else io.StringIO())


def test_failed_first_stage_records_why_and_restarts_with_other_settings(system, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(SimulationError, match="blow-up in stage 'nvt'") as info:
        _run(system, run_dir, "timestep_fs=50")
    recorded = json.loads((run_dir / "run.json").read_text())
    assert recorded["status"] == "failed" and recorded["error"] == str(info.value)
    assert recorded["steps_done"] == 0
    notes = io.StringIO()
    result = _run(system, run_dir, "timestep_fs=2", stream=notes)  # other settings, no hand-deleting
    assert result.status == "finished" and result.steps_done == 60
    assert "failed before any MD progress was kept" in notes.getvalue()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_a_failure_after_progress_keeps_the_run_and_refuses_to_mix(system, tmp_path):
    run_dir = tmp_path / "run"
    _run(system, run_dir, "seed=3")
    info = json.loads((run_dir / "run.json").read_text())
    info["status"], info["error"] = "failed", "blow-up (made up)"
    (run_dir / "run.json").write_text(json.dumps(info))
    with pytest.raises(SimulationError, match="different protocol"):
        _run(system, run_dir, "seed=4")
    assert json.loads((run_dir / "run.json").read_text())["error"] == "blow-up (made up)"


def test_run_json_is_not_written_before_the_protocol_is_validated(system, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(SpecError, match="cutoff_nm 3 is more than half"):
        _run(system, run_dir, "cutoff_nm=3")
    assert not run_dir.exists()
    existing = tmp_path / "empty"
    existing.mkdir()
    with pytest.raises(SpecError):
        _run(system, existing, "cutoff_nm=3")
    assert list(existing.iterdir()) == []


def test_minimisation_reports_energy_iterations_and_time(system, tmp_path):
    stream = FakeTerminal()
    _run(system, tmp_path / "run", stream=stream)
    text = stream.getvalue()
    assert "minimize: minimising 84 atoms" in text
    assert "minimize: potential energy" in text and "iterations" in text


def test_minimisation_progress_line():
    stream = FakeTerminal()
    reporter = MinimizationProgress("minimize", stream, min_interval_s=0.0)
    assert reporter.report(0, [], [], {"system energy": -1234.5}) is False
    assert reporter.report(1, [], [], {"system energy": -2345.25}) is False
    line = stream.getvalue().split("\r")[-2]
    assert "2 iterations" in line and "energy -2345.25 kJ/mol" in line and "elapsed 0:00:00" in line
    reporter.close()
    assert stream.getvalue().endswith("\r\n")  # the line is ended: an error printed next starts on its own line
    reporter.close()
    assert stream.getvalue().endswith("\r\n") and not stream.getvalue().endswith("\n\n")


def test_an_error_never_overwrites_the_md_progress_line(system, tmp_path):
    stream = FakeTerminal()
    with pytest.raises(SimulationError):
        _run(system, tmp_path / "run", "timestep_fs=50", stream=stream)
    assert stream.getvalue().endswith("\n")
    reporter = ProgressReporter("nvt", 0, 100, 10, 100, 0.002, stream=FakeTerminal())
    reporter.close()
    assert reporter.stream.getvalue() == ""  # nothing pending: nothing written
