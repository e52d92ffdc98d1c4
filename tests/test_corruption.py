"""Damaged run and system files: the run resumes exactly from the last *verified* checkpoint, or stops cleanly.

``run.json`` records the size and sha256 of the last two checkpoints; the
previous one is kept as ``checkpoint.prev.chk``. Each test damages one file of a
run directory (truncated or garbled at several offsets) and runs again: either
the run resumes from the previous good checkpoint and its final
``trajectory.dcd`` and ``thermo.csv`` are byte-identical to an uninterrupted run
(Reference platform), or it stops with a one-line error and changes nothing.
It never continues from a damaged state.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from aseimd.errors import SimulationError, SpecError
from aseimd.simulate import run_protocol
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.toy import write_toy_system

PROTOCOL = {
    "name": "corruption-test",
    "seed": 11,
    "report": {"thermo_steps": 10, "trajectory_steps": 10, "checkpoint_steps": 50},
    "stages": [
        {"type": "minimize", "max_iterations": 50},
        {"type": "nvt", "length_steps": 50},
        {"type": "npt", "length_steps": 100, "barostat_interval_steps": 10},
        {"type": "production", "length_steps": 150},
    ],
}
OUTPUTS = ("trajectory.dcd", "thermo.csv")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _run(system, run_dir, **kwargs):
    stream = io.StringIO()
    result = run_protocol(system, run_dir, Protocol.from_dict(PROTOCOL), "Reference", stream=stream, **kwargs)
    return result, stream.getvalue()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    folder = write_toy_system(root / "system", n_lj=60, n_water=8, box_nm=1.9, cutoff_nm=0.8)
    build = json.loads((folder / "build.json").read_text())  # record digests, as aseimd's builders do
    build["files"] = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("system.pdb", "system.xml")}
    (folder / "build.json").write_text(json.dumps(build))
    return folder


@pytest.fixture(scope="module")
def finished(system, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result, _ = _run(system, run_dir)
    assert result.status == "finished" and result.n_frames == 15
    return run_dir, _snapshot(run_dir)


@pytest.fixture
def copy(finished, tmp_path):
    run_dir, _ = finished
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    return target


def _truncate(path, offset):
    data = path.read_bytes()
    path.write_bytes(data[: offset if offset >= 0 else len(data) + offset])


def _garble(path, offset):
    data = bytearray(path.read_bytes())
    at = offset if offset >= 0 else len(data) + offset
    data[at: at + 8] = bytes((b ^ 0x5A) for b in data[at: at + 8])
    path.write_bytes(bytes(data))


def test_run_json_records_checkpoint_size_and_sha256(finished):
    run_dir, files = finished
    info = json.loads(files["run.json"])
    newest, previous = info["checkpoints"]
    assert newest["step"] == 300 and previous["step"] == 250
    assert newest["size_bytes"] == len(files["checkpoint.chk"])
    assert newest["sha256"] == hashlib.sha256(files["checkpoint.chk"]).hexdigest()
    assert previous["sha256"] == hashlib.sha256(files["checkpoint.prev.chk"]).hexdigest()
    assert newest["state_xml_sha256"] == hashlib.sha256(files["state.xml"]).hexdigest()
    assert json.loads(files[".aseimd"])["kind"] == "run"


@pytest.mark.parametrize("damage, offset", [
    (_truncate, 0), (_truncate, 100), (_truncate, 19000 // 10), (_truncate, -1),
    (_garble, 40), (_garble, 3000), (_garble, -16),
])
def test_damaged_checkpoint_falls_back_to_the_previous_one_exactly(finished, copy, damage, offset):
    _, reference = finished
    damage(copy / "checkpoint.chk", offset)
    result, notes = _run(_system_of(copy), copy)
    assert result.status == "finished" and result.resumed_from_step == 250
    assert "checkpoint.chk" in notes and "matches no checkpoint recorded in run.json" in notes
    for name in OUTPUTS:
        assert (copy / name).read_bytes() == reference[name], f"{name} differs from the uninterrupted run"
    # both files hold good checkpoints again, and the record says which
    info = json.loads((copy / "run.json").read_text())
    assert info["status"] == "finished"
    assert (copy / "checkpoint.chk").read_bytes() == reference["checkpoint.chk"]


def _system_of(run_dir):
    return json.loads((run_dir / "run.json").read_text())["system_dir"]


@pytest.mark.parametrize("damage, offset", [(_truncate, 50), (_garble, 200)])
def test_both_checkpoints_damaged_stops_cleanly(copy, damage, offset):
    damage(copy / "checkpoint.chk", offset)
    damage(copy / "checkpoint.prev.chk", offset)
    before = _snapshot(copy)
    with pytest.raises(SimulationError, match="no verified checkpoint.*refusing to resume.*--force"):
        _run(_system_of(copy), copy)
    assert _snapshot(copy) == before


def test_missing_previous_and_damaged_current_stops_cleanly(copy):
    (copy / "checkpoint.prev.chk").unlink()
    _truncate(copy / "checkpoint.chk", 19000 // 10)
    before = _snapshot(copy)
    with pytest.raises(SimulationError, match="no verified checkpoint"):
        _run(_system_of(copy), copy)
    assert _snapshot(copy) == before


@pytest.mark.parametrize("damage, offset", [(_truncate, 0), (_truncate, 300), (_garble, 500), (_garble, -30)])
def test_damaged_state_xml_is_rewritten_from_the_verified_checkpoint(finished, copy, damage, offset):
    _, reference = finished
    damage(copy / "state.xml", offset)
    result, notes = _run(_system_of(copy), copy)
    assert result.status == "already finished"
    assert "state.xml" in notes and "rewritten from the verified checkpoint" in notes
    assert (copy / "state.xml").read_bytes() == reference["state.xml"]
    for name in OUTPUTS:
        assert (copy / name).read_bytes() == reference[name]
    info, was = json.loads((copy / "run.json").read_text()), json.loads(reference["run.json"])
    assert info["status"] == "finished" and info["sessions"] == was["sessions"]
    assert info["production_box_nm"] == was["production_box_nm"] and info["checkpoints"] == was["checkpoints"]


def test_damaged_previous_checkpoint_of_a_finished_run_is_harmless(finished, copy):
    _garble(copy / "checkpoint.prev.chk", 100)
    before = _snapshot(copy)
    result, _ = _run(_system_of(copy), copy)
    assert result.status == "already finished"  # the final checkpoint verifies; nothing is redone or rewritten
    assert _snapshot(copy) == before


@pytest.mark.parametrize("name, damage, offset", [
    ("system.xml", _truncate, 0), ("system.xml", _truncate, 2000), ("system.xml", _truncate, -40),
    ("system.xml", _garble, 1500), ("system.pdb", _truncate, 500), ("system.pdb", _garble, 300),
])
def test_damaged_system_files_stop_cleanly(system, copy, tmp_path, name, damage, offset):
    damaged = tmp_path / "system"
    shutil.copytree(system, damaged)
    damage(damaged / name, offset)
    before = _snapshot(copy)
    with pytest.raises(SpecError, match=name) as info:
        _run(damaged, copy)
    assert "\n" not in str(info.value) and "rebuild" in str(info.value)
    assert _snapshot(copy) == before
    fresh = tmp_path / "fresh"
    with pytest.raises(SpecError, match=name):
        _run(damaged, fresh)
    assert not fresh.exists()


def test_truncated_system_xml_without_recorded_digest_is_a_clean_error(system, tmp_path):
    damaged = tmp_path / "system"
    shutil.copytree(system, damaged)
    (damaged / "build.json").write_text("{}")
    _truncate(damaged / "system.xml", 3000)
    with pytest.raises(SpecError, match="system.xml .* cannot be read: truncated"):
        _run(damaged, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage, offset", [(_truncate, 400), (_truncate, -10), (_garble, 0)])
def test_damaged_trajectory_of_a_finished_run_stops_cleanly(copy, damage, offset):
    damage(copy / "trajectory.dcd", offset)
    before = _snapshot(copy)
    with pytest.raises(SimulationError, match="trajectory.dcd"):
        _run(_system_of(copy), copy)
    assert _snapshot(copy) == before


def test_garbled_run_json_stops_cleanly(system, copy):
    _truncate(copy / "run.json", 200)
    before = _snapshot(copy)
    with pytest.raises(SimulationError, match="run.json.*not valid JSON"):
        _run(system, copy)
    assert _snapshot(copy) == before


# -- a real kill in the middle of production, then a damaged checkpoint -------------------------------------

def _command(system, protocol, run_dir):
    return [sys.executable, "-c", "from aseimd.cli import main; main()", "run", str(system), "-o", str(run_dir),
            "--protocol", str(protocol), "--platform", "Reference", "--quiet"]


def _killed_run(system, tmp_path, protocol_dict, crash):
    """Write the protocol, run it in a child that SIGKILLs itself at ``crash``; (protocol, run dir, clean env)."""
    protocol = tmp_path / "p.yaml"
    protocol.write_text(yaml.safe_dump(protocol_dict))
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "ASEIMD_TEST_CRASH"}
    killed = subprocess.run(_command(system, protocol, run_dir), env={**env, "ASEIMD_TEST_CRASH": crash},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return protocol, run_dir, env


@pytest.mark.parametrize("damage, offset, target", [
    (_truncate, 1900, "checkpoint.chk"),
    (_truncate, 500, "trajectory.dcd"),
])
def test_killed_run_with_damaged_file_resumes_exactly_or_stops(system, finished, tmp_path, damage, offset, target):
    _, reference = finished
    protocol, run_dir, env = _killed_run(system, tmp_path, PROTOCOL, "after-frame@9")
    damage(run_dir / target, offset)
    before = _snapshot(run_dir)
    resumed = subprocess.run(_command(system, protocol, run_dir), env=env, capture_output=True, text=True,
                             timeout=300)
    if target == "trajectory.dcd":  # frames the checkpoint needs are gone: stop, touch nothing
        assert resumed.returncode == 2 and len(resumed.stderr.strip().splitlines()) == 1, resumed.stderr
        assert "Traceback" not in resumed.stderr and "trajectory.dcd" in resumed.stderr
        assert _snapshot(run_dir) == before
        return
    assert resumed.returncode == 0, resumed.stderr
    for name in OUTPUTS:
        assert (run_dir / name).read_bytes() == reference[name], f"{name} differs from the uninterrupted run"


def test_damaged_checkpoint_falls_back_exactly_on_deterministic_cpu(system, tmp_path):
    """Same fall-back on CPU with one thread and deterministic forces: byte-identical to uninterrupted."""
    def run(run_dir):
        return run_protocol(system, run_dir, Protocol.from_dict(PROTOCOL), "CPU", threads=1, deterministic=True,
                            stream=io.StringIO())

    full = tmp_path / "full"
    run(full)
    reference = _snapshot(full)
    damaged = tmp_path / "damaged"
    shutil.copytree(full, damaged)
    _truncate(damaged / "checkpoint.chk", 1900)
    result = run(damaged)
    assert result.status == "finished" and result.resumed_from_step == 250
    for name in OUTPUTS:
        assert (damaged / name).read_bytes() == reference[name], f"{name} differs from the uninterrupted run"


# -- thermo.csv: the production box comes from it, so it is verified, not trusted ------------------------------

LONG_NPT = {**PROTOCOL, "name": "thermo-check", "stages": [
    {"type": "minimize", "max_iterations": 50},
    {"type": "nvt", "length_steps": 50},
    {"type": "npt", "length_steps": 200, "barostat_interval_steps": 10},  # steps 50-250, second half > 150
    {"type": "production", "length_steps": 50},
]}


def _bump_first_decimal(text):
    i = text.index(".") + 1
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]


def _edit_row(path, step, edit):
    lines = path.read_text().split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith(f"{step},"))
    lines[i] = edit(lines[i])
    path.write_text("\n".join(lines))


@pytest.mark.parametrize("edit", [
    lambda row: row[: -len("npt")] + "np",                              # a garbled stage label
    lambda row: "1x0" + row[3:],                                         # a garbled step
    lambda row: ",".join(row.split(",")[:8] + [_bump_first_decimal(row.split(",")[8])] + row.split(",")[9:]),
    # ^ one digit of one box edge changed (1.898... -> 1.998...)
    lambda row: row[: row.rindex(",")],                                  # the stage cell cut off
])
def test_damaged_npt_rows_stop_before_they_set_the_production_box(system, tmp_path, edit):
    """Killed in the second half of NPT, one kept row of that half damaged: the resume stops (exit 2, run.json
    'failed', one line) instead of averaging a wrong box or crashing; an intact copy resumes."""
    protocol, run_dir, env = _killed_run(system, tmp_path, LONG_NPT, "before-checkpoint@6")
    assert json.loads((run_dir / "run.json").read_text())["checkpoints"][0]["step"] == 200
    intact = tmp_path / "intact"
    shutil.copytree(run_dir, intact)
    _edit_row(run_dir / "thermo.csv", 180, edit)  # kept by the checkpoint at step 200, inside the mean
    resumed = subprocess.run(_command(system, protocol, run_dir), env=env, capture_output=True, text=True, timeout=300)
    lines = resumed.stderr.strip().splitlines()
    assert resumed.returncode == 2 and len(lines) == 1 and "thermo.csv' line" in lines[0], resumed.stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    ok = subprocess.run(_command(system, protocol, intact), env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("damage", ["cut", "delete"])
def test_finished_run_with_damaged_thermo_stops_cleanly(copy, damage):
    path = copy / "thermo.csv"
    if damage == "cut":
        _truncate(path, 700)
    else:
        path.unlink()
    before = _snapshot(copy)
    with pytest.raises(SimulationError, match="thermo.csv"):
        _run(_system_of(copy), copy)
    assert _snapshot(copy) == before


def test_a_folder_that_is_not_a_run_keeps_every_file(system, tmp_path):
    """Files named like aseimd's temporaries in a foreign folder are not 'cleaned up' before the refusal."""
    from aseimd.errors import OutputExistsError

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("important")
    (folder / ".run.json.backup.tmp").write_text("mine too")
    with pytest.raises(OutputExistsError, match="not an aseimd run directory"):
        _run(system, folder)
    assert sorted(p.name for p in folder.iterdir()) == [".run.json.backup.tmp", "thesis.tex"]


def test_an_internal_error_is_recorded_as_failed(system, tmp_path, monkeypatch):
    """A bug (not an aseimd error) mid-run: run.json must not keep saying 'running'."""
    from aseimd.simulate import runner

    def boom(*args, **kwargs):
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr(runner._Run, "_md_stage", boom)
    with pytest.raises(ZeroDivisionError):
        _run(system, tmp_path / "run")
    doc = json.loads((tmp_path / "run" / "run.json").read_text())
    assert doc["status"] == "failed" and doc["error"].startswith("internal error: ZeroDivisionError")
