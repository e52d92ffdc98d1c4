"""Run a protocol on a built system directory, resumably.

How exact resume works
----------------------
* The step count inside ``checkpoint.chk`` is the single source of truth. A
  stage covers the steps ``start < t <= end``; a checkpoint at step ``s``
  belongs to the MD stage with ``start <= s < end`` (a checkpoint at a stage
  boundary is written by the *next* stage after its set-up: velocities drawn,
  barostat added, box switched to the NPT mean), and ``s == total`` means done.
* Frames and thermo rows are at steps fixed by the protocol, so on resume
  ``trajectory.dcd`` and ``thermo.csv`` are cut back to what step ``s``
  implies (:mod:`aseimd.simulate.checkpoint`).
* After writing a checkpoint the runner continues from that checkpoint in a
  fresh Context, exactly as a resumed run would. An uninterrupted run and a
  killed-and-resumed one therefore execute the same operations; on a platform
  whose restart from a checkpoint is deterministic (Reference; CPU with one
  thread and deterministic forces) the files are byte-identical. It also
  makes the Monte Carlo barostat (whose random state OpenMM does not
  checkpoint) restart from a seed derived from (seed, stage, step).
* The production box comes from the NPT rows of ``thermo.csv`` (truncated
  consistently), so it is the same whether or not the run was interrupted.
* Checkpoints are verified before they are trusted: ``run.json`` records the
  size and sha256 of the last two (the previous one is kept as
  ``checkpoint.prev.chk``); a resume uses the newest file that matches a
  record, falls back to the previous one, or stops -- never loads an
  unverified checkpoint (:mod:`aseimd.simulate.checkpoint`).
* ``run.json`` is written only once the protocol, the system and an OpenMM
  Context of the first stage have been checked; a run that fails records
  ``"status": "failed"`` and the reason, and one that failed before any MD
  progress was checkpointed is started over by the next call, with any settings.
"""

from __future__ import annotations

import hashlib
import json
import platform as _pyplatform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import openmm as mm
import openmm.app as app
import openmm.unit as unit

from aseimd import __version__
from aseimd.errors import AseimdError, OutputExistsError, SimulationError, SpecError
from aseimd.fileio import (
    MARKER,
    atomic_write_json,
    atomic_write_text,
    check_output_location,
    make_dir,
    read_marker,
    replace_problem,
    write_marker,
)
from aseimd.simulate._faults import crash_point
from aseimd.simulate.checkpoint import (
    CHECKPOINT,
    KEPT_CHECKPOINTS,
    RUN_DIR_KIND,
    RUN_FILES,
    VerifiedCheckpoint,
    check_thermo,
    checkpoint_files,
    checkpoint_record,
    clean_temporaries,
    expected_frames,
    remove_run_files,
    restore_checkpoint,
    truncate_outputs,
    verified_checkpoint,
)
from aseimd.simulate.platform import PlatformChoice, context_platform_info, select_platform
from aseimd.simulate.prepare import (
    SystemInput,
    apply_hmr,
    check_cutoff_fits,
    copy_system,
    make_barostat,
    make_constraints_contiguous,
    read_system_dir,
    scale_molecules,
    set_cutoff,
    strip_barostats,
    target_box,
)
from aseimd.simulate.protocol import NPT, Minimize, Production, Protocol, ScheduledStage, apply_overrides
from aseimd.simulate.reporters import (
    BlowUp,
    BlowupGuard,
    CheckpointReporter,
    MinimizationProgress,
    ProgressReporter,
    ThermoReporter,
    TrajectoryReporter,
    box_edges_nm,
    degrees_of_freedom,
)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_protocol` did.

    Parameters
    ----------
    run_dir : pathlib.Path
    status : str
        ``"finished"`` (this call completed the run) or ``"already finished"``.
    steps_done, total_steps : int
    platform : str
        OpenMM platform name.
    n_frames : int
        Frames in ``trajectory.dcd``.
    resumed_from_step : int or None
        Checkpoint step this call resumed from (``None``: started fresh).
    ns_per_day : float or None
        MD throughput of this call (``None`` if it ran no MD).
    """

    run_dir: Path
    status: str
    steps_done: int
    total_steps: int
    platform: str
    n_frames: int
    resumed_from_step: int | None
    ns_per_day: float | None


@dataclass
class _Handover:
    """State passed from one stage to the next (plain arrays, nm and nm/ps)."""

    positions_nm: np.ndarray
    velocities_nm_per_ps: np.ndarray | None
    box_nm: np.ndarray  # (3, 3) box vectors
    step: int


@dataclass(frozen=True)
class _Resume:
    """Where a resumed stage starts: the checkpoint bytes and their step."""

    step: int
    data: bytes


def derive_seed(master: int, *parts: Any) -> int:
    """A reproducible seed in [1, 2**31 - 1] from the master seed and labels."""
    digest = hashlib.sha256(":".join(str(p) for p in (master, *parts)).encode()).hexdigest()
    return int(digest[:8], 16) % (2**31 - 2) + 1


def run_protocol(
    system_dir: str | Path,
    run_dir: str | Path,
    protocol: str | Path | Protocol = "default",
    platform: str = "auto",
    *,
    force: bool = False,
    progress: bool = True,
    threads: int | None = None,
    deterministic: bool = False,
    overrides: tuple[str, ...] | list[str] = (),
    stream: TextIO | None = None,
) -> RunResult:
    """Run (or resume) ``protocol`` on the built system in ``system_dir``, writing ``run_dir``.

    Parameters
    ----------
    system_dir : str or pathlib.Path
        Directory with ``system.pdb``, ``system.xml``, ``build.json``.
    run_dir : str or pathlib.Path
        Output directory. If it holds a run of the same protocol and system,
        the run resumes from its last checkpoint; a finished run is left alone.
    protocol : str, pathlib.Path or Protocol
        Shipped protocol name (``default``, ``quickstart``), a YAML path, or a Protocol.
    platform : str
        ``auto``, ``CUDA``, ``OpenCL``, ``CPU`` or ``Reference``.
    force : bool
        Replace an existing run in ``run_dir`` and start over -- only if
        ``run_dir`` is an aseimd run directory holding nothing but its own files
        (:func:`aseimd.fileio.replace_problem`); anything else is refused.
    progress : bool
        Print a progress line to ``stream`` (default stderr).
    threads : int, optional
        CPU platform threads.
    deterministic : bool
        Ask CPU/CUDA for deterministic forces (needed there for bit-exact resume).
    overrides : sequence of str
        ``key=value`` protocol settings (see :func:`~aseimd.simulate.protocol.apply_overrides`).
    stream : file-like, optional
        Where progress and notes go (default ``sys.stderr``).

    Returns
    -------
    RunResult

    Raises
    ------
    SpecError, OutputExistsError
        Bad input, or ``run_dir`` holds something aseimd did not write.
    SimulationError
        Mismatched run directory, no verified checkpoint, damaged run files, or
        a blow-up (the last good checkpoint is kept).
    EnvironmentProblem
        Permission denied, disk full (exit code 3 in the CLI).
    """
    if str(run_dir).strip() == "":
        raise SpecError("the run directory (-o) is empty; give a name, e.g. -o run1")
    if isinstance(protocol, Protocol):
        proto = Protocol.from_dict(apply_overrides(protocol.to_dict(), overrides)) if overrides else protocol
    else:
        proto = Protocol.load(protocol, overrides)
    inputs = read_system_dir(system_dir)
    if str(platform).lower() != "auto":
        # an unknown or unavailable platform fails here, before --force removes anything
        select_platform(platform, threads=threads, deterministic=deterministic)
    run_dir = Path(run_dir)
    fresh = not run_dir.exists()
    try:
        job = _Run(proto, inputs, run_dir, platform, force, progress, threads, deterministic,
                   stream if stream is not None else sys.stderr)
    except BaseException:
        if fresh and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()  # bad input leaves nothing behind
        raise
    return job.execute()


class _Run:
    def __init__(self, protocol: Protocol, inputs: SystemInput, run_dir: Path, platform: str, force: bool,
                 progress: bool, threads: int | None, deterministic: bool, stream: TextIO):
        self.p, self.inp, self.run_dir, self.stream = protocol, inputs, run_dir, stream
        self.progress = progress
        self.sessions: list = []
        self.npt_systems: dict[str, tuple[mm.System, mm.Force]] = {}
        self.platform_info: dict[str, Any] = {}
        if force and run_dir.exists():
            # validate the new run completely before --force removes the old one
            self.choice = select_platform(platform, threads=threads, deterministic=deterministic)
            self.base, self.modifications = self._base_system()
            self._probe()
        self.previous = self._prepare_directory(force)
        requested = platform
        previous = self.previous or {}
        records = previous.get("checkpoints")
        #: True for a run.json written before checkpoints were recorded (nothing to verify against)
        self.legacy = bool(previous) and not isinstance(records, list)
        self.checkpoints: list[dict] = list(records) if isinstance(records, list) else []
        self.verified: VerifiedCheckpoint | None = None
        needs_checkpoint = previous.get("status") == "finished" or bool(previous.get("steps_done"))
        if self.legacy:
            has_checkpoint = (run_dir / CHECKPOINT).exists()
            if needs_checkpoint and not has_checkpoint:
                raise SimulationError(
                    f"{str(run_dir / CHECKPOINT)!r} is missing although run.json records "
                    f"{previous.get('steps_done')} steps done; cannot resume: pass --force to start over"
                )
        else:
            if self.checkpoints:
                # raises (the run stops) when no file matches a record: never resume from an unverified state
                self.verified = verified_checkpoint(run_dir, self.checkpoints)
            elif needs_checkpoint:
                raise SimulationError(f"run.json in {str(run_dir)!r} records {previous.get('steps_done')} steps "
                                      f"done but no checkpoint; cannot resume: pass --force to start over")
            has_checkpoint = self.verified is not None
        self.finished_before = bool(
            previous.get("status") == "finished" and previous.get("steps_done") == protocol.total_steps
            and has_checkpoint and (self.legacy or self.verified.step == protocol.total_steps)
        )
        recorded = previous.get("checkpoint_platform") if has_checkpoint else None
        if recorded and not self.finished_before:
            if str(platform).lower() == "auto":
                requested = recorded
            elif str(platform).lower() != recorded.lower():
                select_platform(platform, threads=threads)  # an unknown/unusable name is reported as such
                raise SimulationError(
                    f"run in {str(run_dir)!r} was checkpointed on platform {recorded!r} and checkpoints are "
                    f"platform-specific; resume with --platform {recorded} (or auto), or pass --force"
                )
            # resume with the recorded platform properties unless told otherwise (exactness needs them)
            props = (previous.get("platform") or {}).get("properties") or {}
            if threads is None and "Threads" in props:
                threads = int(props["Threads"])
            deterministic = deterministic or props.get("DeterministicForces") == "true"
        elif recorded and str(platform).lower() == "auto":
            requested = recorded
        self.choice: PlatformChoice = select_platform(requested, threads=threads, deterministic=deterministic)
        self.base, self.modifications = self._base_system()
        if not has_checkpoint and not force:
            self._probe()  # a set-up OpenMM refuses (cutoff vs box, ...) fails before run.json is written
        self.n_atoms = self.base.getNumParticles()
        self.dof = degrees_of_freedom(self.base)
        self.masses = np.array([self.base.getParticleMass(i).value_in_unit(unit.dalton)
                                for i in range(self.n_atoms)])
        self.total_mass = float(self.masses.sum())
        self.md_seconds = 0.0
        self.md_steps = 0
        self.production_box: list[float] | None = None
        self.status = "running"
        self.error: str | None = None

    # ------------------------------------------------------------------ set-up

    def _prepare_directory(self, force: bool) -> dict | None:
        run_dir = self.run_dir
        if force or not (run_dir / "run.json").is_file():  # resuming in place (-o . inside the run) is fine
            check_output_location(run_dir)  # empty path, a file, a link, '.', a parent of '.', no permission
        if force and run_dir.exists():
            remove_run_files(run_dir)  # only an aseimd run directory holding nothing else; refuses otherwise
        make_dir(run_dir)
        clean_temporaries(run_dir)
        run_json = run_dir / "run.json"
        if not run_json.exists():
            if any(p.name != MARKER for p in run_dir.iterdir()):
                problem = replace_problem(run_dir, RUN_DIR_KIND, RUN_FILES, "run.json")
                if problem is not None:
                    raise OutputExistsError(
                        f"output {str(run_dir)!r} exists and is not an aseimd run directory: {problem}; "
                        f"choose another -o"
                    )
                raise OutputExistsError(f"output {str(run_dir)!r} holds aseimd run files but no run.json; "
                                        f"cannot resume: pass --force to start over")
            return None
        try:
            previous = json.loads(run_json.read_text())
        except (ValueError, UnicodeDecodeError):
            raise SimulationError(f"{str(run_json)!r} is not valid JSON (damaged); cannot resume: "
                                  f"pass --force to start over") from None
        if not isinstance(previous, dict):
            raise SimulationError(f"{str(run_json)!r} is not an aseimd run.json; pass --force to start over")
        if previous.get("status") == "failed" and not previous.get("steps_done"):
            # nothing worth keeping (failed before any MD step was checkpointed): start over, new settings allowed
            self._note(f"the previous run in {str(run_dir)!r} failed before any MD progress was kept "
                       f"({previous.get('error') or 'no reason recorded'}); starting over")
            remove_run_files(run_dir)
            return None
        if previous.get("protocol_sha256") != self.p.fingerprint():
            raise SimulationError(
                f"{str(run_dir)!r} holds a run of a different protocol ({previous.get('protocol', {}).get('name')!r}, "
                f"other settings); refusing to mix runs: choose another -o or pass --force"
            )
        recorded_system = previous.get("system_sha256")
        if isinstance(recorded_system, dict) and set(recorded_system) == set(self.inp.sha256) \
                and str(Path(previous.get("system_dir", "")).resolve()) == str(self.inp.directory):
            changed = [name for name, digest in self.inp.sha256.items() if recorded_system[name] != digest]
            if changed:
                raise SimulationError(
                    f"{', '.join(changed)} in {str(self.inp.directory)!r} differ from the files this run started "
                    f"from (sha256 in run.json): changed or damaged since; restore them, or pass --force to "
                    f"start over with the new files"
                )
        if recorded_system != self.inp.sha256:
            raise SimulationError(
                f"{str(run_dir)!r} holds a run of a different system (was {previous.get('system_dir')!r}); "
                f"refusing to mix runs: choose another -o or pass --force"
            )
        return previous

    def _base_system(self) -> tuple[mm.System, dict[str, Any]]:
        system = copy_system(self.inp.system)
        mods: dict[str, Any] = {"removed_forces": strip_barostats(system)}
        if self.p.cutoff_nm is not None:
            check_cutoff_fits(self.p.cutoff_nm, self.inp.box_vectors_nm)
            mods["cutoff_forces_changed"] = set_cutoff(system, self.p.cutoff_nm)
        if self.p.hydrogen_mass_amu is not None:
            mods["hmr_hydrogens"] = apply_hmr(system, self.inp.topology, self.p.hydrogen_mass_amu)
        return system, mods

    def _probe(self) -> None:
        """Create (and drop) a Context of the first stage: OpenMM's set-up checks run before anything is written."""
        probe = self._simulation(self.p.schedule[0], 0)
        del probe

    def _system_for(self, item: ScheduledStage, step: int) -> mm.System:
        stage = item.stage
        if not isinstance(stage, NPT):
            return self.base
        if stage.name not in self.npt_systems:
            system = copy_system(self.base)
            barostat = make_barostat(stage.coupling, self.p.pressure_bar, self.p.temperature_K,
                                     stage.barostat_interval_steps, 1)
            system.addForce(barostat)
            # keep a handle on the System's own copy of the force
            self.npt_systems[stage.name] = (system, system.getForce(system.getNumForces() - 1))
        system, barostat = self.npt_systems[stage.name]
        barostat.setRandomNumberSeed(derive_seed(self.p.seed, "barostat", stage.name, step))
        return system

    def _simulation(self, item: ScheduledStage, step: int) -> app.Simulation:
        integrator = mm.LangevinMiddleIntegrator(
            self.p.temperature_K * unit.kelvin, self.p.friction_per_ps / unit.picosecond,
            self.p.timestep_ps * unit.picoseconds,
        )
        integrator.setRandomNumberSeed(derive_seed(self.p.seed, "integrator", item.stage.name, step))
        try:
            sim = app.Simulation(self.inp.topology, self._system_for(item, step), integrator,
                                 self.choice.platform(), dict(self.choice.properties))
        except Exception as exc:  # OpenMM reports bad set-ups (cutoff vs box, ...) as plain exceptions
            raise SimulationError(
                f"cannot create an OpenMM context for stage {item.stage.name!r} on {self.choice.name}: "
                f"{' '.join(str(exc).split())}"
            ) from None
        if not self.platform_info:
            self.platform_info = context_platform_info(sim.context)
        return sim

    # ------------------------------------------------------------------ run.json

    def _run_json(self, step: int) -> dict[str, Any]:
        p = self.p
        stages = []
        for item in p.schedule:
            done = max(0, min(step, item.end_step) - item.start_step) if item.stage.is_md else None
            stages.append({
                "name": item.stage.name, "type": item.stage.type, "start_step": item.start_step,
                "end_step": item.end_step, "steps": item.n_steps,
                "steps_done": done if item.stage.is_md else None,
                "done": (step >= item.end_step and self._checkpoint_exists()) if not item.stage.is_md
                else step >= item.end_step,
            })
        production = p.production
        traj = None
        if production is not None:
            traj = {
                "file": "trajectory.dcd",
                "dt_ps": p.trajectory_steps * p.timestep_ps,
                "n_frames": expected_frames(p, step),
                "stage": production.stage.name,
                "first_frame_step": production.start_step + p.trajectory_steps,
                "unwrapped": True,
            }
        import mdtraj

        return {
            "aseimd_version": __version__,
            "status": self.status,
            "error": self.error,
            "system_dir": str(self.inp.directory),
            "system_sha256": self.inp.sha256,
            "protocol_sha256": p.fingerprint(),
            "protocol": p.to_dict(),
            "platform": {**self.choice.to_dict(), **({"context": self.platform_info} if self.platform_info else {})},
            "checkpoint_platform": self.choice.name,
            "versions": {
                "aseimd": __version__, "openmm": mm.Platform.getOpenMMVersion(), "python": sys.version.split()[0],
                "numpy": np.__version__, "mdtraj": mdtraj.__version__, "host": _pyplatform.node(),
            },
            "seeds": {
                "master": p.seed,
                "rule": "stage seeds = derive_seed(master, kind, stage, step) (sha256); "
                        "velocities at the first MD stage after a minimisation or start",
            },
            "timestep_ps": p.timestep_ps,
            "total_steps": p.total_steps,
            "steps_done": step,
            "stages": stages,
            "system_changes": self.modifications,
            "n_atoms": self.n_atoms,
            "degrees_of_freedom": self.dof,
            "total_mass_amu": self.total_mass,
            "production_box_nm": self.production_box,
            "thermo": {"file": "thermo.csv", "dt_ps": p.thermo_steps * p.timestep_ps},
            "trajectory": traj,
            "checkpoints": self.checkpoints,
            "sessions": self.sessions,
        }

    def _checkpoint_exists(self) -> bool:
        return (self.run_dir / "checkpoint.chk").exists()

    def _write_run_json(self, step: int) -> None:
        crash_point("before-run-json")
        if read_marker(self.run_dir) is None:
            write_marker(self.run_dir, RUN_DIR_KIND, RUN_FILES)
        atomic_write_json(self.run_dir / "run.json", self._run_json(step), force=True)

    def _checkpointed(self, step: int, data: bytes, state_xml: str) -> None:
        """A checkpoint is in place: record its size and sha256 (the newest first) and update run.json."""
        self.checkpoints = [checkpoint_record(data, step, state_xml)] + self.checkpoints[: KEPT_CHECKPOINTS - 1]
        self._write_run_json(step)

    def _record_failure(self, message: str) -> None:
        """run.json says ``failed`` and why, at the step of the last verified checkpoint."""
        self.status, self.error = "failed", message
        last = self.checkpoints[0]["step"] if self.checkpoints else 0
        atomic_write_json(self.run_dir / "run.json", self._run_json(last), force=True)

    # ------------------------------------------------------------------ driver

    def execute(self) -> RunResult:
        p = self.p
        if self.finished_before:
            self._check_finished_trajectory()
            check_thermo(self.run_dir / "thermo.csv", p, p.total_steps)
            if self.verified is not None and not self._state_xml_matches(self.verified.record):
                previous = self.previous or {}
                self.sessions = list(previous.get("sessions", []))
                self.status, self.production_box = "finished", previous.get("production_box_nm")
                self._find_checkpoint()  # loads the verified checkpoint and rewrites state.xml from it
                self._write_run_json(p.total_steps)
            return self._result("already finished", p.total_steps, None)
        self.sessions = list((self.previous or {}).get("sessions", []))
        resume_step, checkpoint = self._find_checkpoint()
        self.sessions.append({
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed_from_step": resume_step,
            "platform": self.choice.name,
        })
        if resume_step is not None and resume_step >= p.total_steps:
            truncate_outputs(self.run_dir, p, self.n_atoms, resume_step)
            self.status = "finished"
            self.production_box = (self.previous or {}).get("production_box_nm")
            already = (self.previous or {}).get("status") == "finished"
            if not already:
                self._write_run_json(resume_step)
            return self._result("already finished" if already else "finished", resume_step, resume_step)
        if resume_step is None:
            for name in ("thermo.csv", "trajectory.dcd", "state.xml", *(f.name for f in checkpoint_files(self.run_dir))):
                (self.run_dir / name).unlink(missing_ok=True)  # aseimd's own files, none of them recorded
            start_index = 0
            whole, _ = make_constraints_contiguous(self.inp.system, self.inp.positions_nm,
                                                   self.inp.box_vectors_nm)  # constraints act on raw coordinates
            entry: Any = _Handover(whole, None, self.inp.box_vectors_nm, 0)
        else:
            truncate_outputs(self.run_dir, p, self.n_atoms, resume_step)
            item = p.stage_at(resume_step)
            start_index = item.index
            entry = _Resume(resume_step, checkpoint)
            self._note(f"resuming {self.run_dir} from the checkpoint at step {resume_step} (stage {item.stage.name!r})")
            self.production_box = (self.previous or {}).get("production_box_nm")
        self._write_run_json(resume_step or 0)

        step = resume_step or 0
        try:
            for item in p.schedule[start_index:]:
                if isinstance(item.stage, Minimize):
                    entry = self._minimize(item, entry)
                else:
                    entry = self._md_stage(item, entry)
                step = item.end_step
        except AseimdError as exc:
            if self.status != "failed":  # a blow-up is recorded where it happens
                self._record_failure(" ".join(str(exc).split()))
            raise
        except Exception as exc:  # an internal error: run.json must not keep saying "running"
            self._record_failure(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}")
            raise
        self.status = "finished"
        self._write_run_json(step)
        return self._result("finished", step, resume_step)

    def _result(self, status: str, step: int, resumed: int | None) -> RunResult:
        rate = None
        if self.md_seconds > 0:
            rate = self.md_steps * self.p.timestep_ps * 1e-3 / (self.md_seconds / 86400.0)
        return RunResult(self.run_dir, status, step, self.p.total_steps, self.choice.name,
                         expected_frames(self.p, step), resumed, rate)

    def _note(self, text: str) -> None:
        if self.progress:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _find_checkpoint(self) -> tuple[int | None, bytes | None]:
        """The verified checkpoint to resume from (step, bytes); ``(None, None)`` to start fresh."""
        path = self.run_dir / CHECKPOINT
        if self.legacy:
            if not path.exists():
                return None, None
            data, record = path.read_bytes(), None
            self._note(f"note: {str(path)!r} is not verified (run.json from an older aseimd records no size or "
                       f"sha256); the next checkpoints will be")
        elif self.verified is None:
            return None, None
        else:
            data, record = self.verified.data, self.verified.record
            for reason in self.verified.rejected:
                self._note(f"note: {reason}")
            if self.verified.rejected:
                if self.verified.path.name != CHECKPOINT:
                    self._note(f"resuming from the previous verified checkpoint ({self.verified.path.name}, step "
                               f"{self.verified.step})")
                restore_checkpoint(self.run_dir, self.verified)  # a damaged file is never kept as the fall-back
                self.checkpoints = [record]
        item = self.p.stage_at(record["step"]) if record is not None else None
        probe = self._simulation(item if item is not None else self.p.schedule[-1], 0)
        try:
            probe.context.loadCheckpoint(data)
        except Exception as exc:
            raise SimulationError(
                f"cannot load {str(path)!r} on platform {self.choice.name}: {' '.join(str(exc).split())}; "
                f"pass --force to start over"
            ) from None
        step = probe.context.getStepCount()
        if step > self.p.total_steps or step < 0:
            raise SimulationError(f"checkpoint step {step} is outside this protocol (0..{self.p.total_steps})")
        if record is not None and step != record["step"]:
            raise SimulationError(f"checkpoint holds step {step} but run.json records step {record['step']}; "
                                  f"cannot resume safely: pass --force to start over")
        if record is not None:
            self._check_state_xml(probe.context, record)
        del probe
        return step, data

    def _check_finished_trajectory(self) -> None:
        """A finished run's ``trajectory.dcd`` must hold every frame it wrote (else: damaged, stop)."""
        from aseimd.simulate.dcd import dcd_frame_count

        want = expected_frames(self.p, self.p.total_steps)
        path = self.run_dir / "trajectory.dcd"
        if want == 0:
            return
        have = dcd_frame_count(path, self.inp.system.getNumParticles()) if path.is_file() else 0
        if have != want:
            raise SimulationError(f"{str(path)!r} holds {have} complete frames but the finished run wrote {want}: "
                                  f"it was damaged or cut; pass --force to run again")

    def _state_xml_matches(self, record: dict) -> bool:
        """Whether ``state.xml`` is the one recorded with this checkpoint (``True`` if none is recorded)."""
        want = record.get("state_xml_sha256")
        path = self.run_dir / "state.xml"
        if want is None:
            return True
        return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == want

    def _check_state_xml(self, context: mm.Context, record: dict) -> None:
        """Rewrite ``state.xml`` from the verified checkpoint when it does not match its record."""
        if self._state_xml_matches(record):
            return
        path = self.run_dir / "state.xml"
        state = context.getState(getPositions=True, getVelocities=True, getParameters=True, getEnergy=True)
        xml = mm.XmlSerializer.serialize(state)
        atomic_write_text(path, xml)
        record["state_xml_sha256"] = hashlib.sha256(xml.encode("utf-8")).hexdigest()
        self._note(f"note: {str(path)!r} was missing or did not match run.json (damaged); rewritten from the "
                   f"verified checkpoint at step {record['step']}")

    # ------------------------------------------------------------------ stages

    def _minimize(self, item: ScheduledStage, entry: _Handover) -> _Handover:
        stage = item.stage
        sim = self._simulation(item, entry.step)
        sim.context.setPeriodicBoxVectors(*entry.box_nm)
        sim.context.setPositions(entry.positions_nm)
        self._note(f"{stage.name}: minimising {self.n_atoms} atoms (tolerance {stage.tolerance_kj_per_mol_nm} "
                   f"kJ/mol/nm)")
        reporter = MinimizationProgress(stage.name, self.stream) if self.progress else None
        try:
            sim.minimizeEnergy(tolerance=stage.tolerance_kj_per_mol_nm * unit.kilojoule_per_mole / unit.nanometer,
                               maxIterations=stage.max_iterations, reporter=reporter)
        except Exception as exc:
            reason = " ".join(str(exc).split())
            raise SimulationError(f"minimisation failed in stage {stage.name!r}: {reason}") from None
        finally:
            if reporter is not None:
                reporter.close()  # end the progress line: an error message never overwrites it
        state = sim.context.getState(getPositions=True, getEnergy=True)
        energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        if not np.isfinite(energy):
            raise SimulationError(f"minimisation in stage {stage.name!r} ended at a non-finite energy ({energy})")
        done = f" after {reporter.iterations} iterations, {reporter.line().rsplit('elapsed ', 1)[1]}" \
            if reporter is not None else ""
        self._note(f"{stage.name}: potential energy {energy:.6g} kJ/mol{done}")
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        return _Handover(np.array(positions), None, entry.box_nm, entry.step)

    def _reporters(self, item: ScheduledStage) -> tuple[list, CheckpointReporter, ProgressReporter | None]:
        p, stage = self.p, item.stage
        thermo = ThermoReporter(self.run_dir / "thermo.csv", stage.name, item.start_step, item.end_step,
                                p.thermo_steps, p.timestep_ps, self.dof, self.total_mass)
        guard = BlowupGuard(stage.name, item.start_step, item.end_step, p.thermo_steps, self.dof,
                            self.n_atoms, p.blowup_temperature_K)
        writers: list = [thermo]
        traj = None
        if isinstance(stage, Production):
            traj = TrajectoryReporter(self.run_dir / "trajectory.dcd", self.n_atoms, stage.name, item.start_step,
                                      item.end_step, p.trajectory_steps, p.timestep_ps)
            writers.append(traj)

        def before(step: int, state: mm.State) -> None:
            guard.check(step, state)
            for writer in writers:
                writer.sync()

        def after(step: int, data: bytes, state_xml: str) -> None:
            self._checkpointed(step, data, state_xml)

        checkpoint = CheckpointReporter(self.run_dir, stage.name, item.start_step, item.end_step,
                                        p.checkpoint_steps, before, after)
        progress = None
        reporters: list = ([traj] if traj else []) + [thermo, guard]
        if self.progress:
            progress = ProgressReporter(stage.name, item.start_step, item.end_step, p.thermo_steps,
                                        p.total_steps, p.timestep_ps, self.stream)
            reporters.append(progress)
        reporters.append(checkpoint)  # last: everything of this step is on disk before the checkpoint
        return reporters, checkpoint, progress

    def _enter(self, item: ScheduledStage, entry: _Handover, checkpoint: CheckpointReporter) -> app.Simulation:
        """Set up a stage from the previous stage's state and write its stage-start checkpoint."""
        p, stage = self.p, item.stage
        sim = self._simulation(item, item.start_step)
        context = sim.context
        box, positions = np.array(entry.box_nm, dtype=float), entry.positions_nm
        if isinstance(stage, Production):
            source = p.npt_source(stage)
            if source is not None:
                old = np.diag(box).copy()
                new = self._npt_mean_box(source, old)
                context.setPeriodicBoxVectors(*np.diag(new))
                positions = scale_molecules(positions, [list(m) for m in context.getMolecules()], self.masses, old, new)
                box = np.diag(new)
                self._note(f"{stage.name}: box set to the {source.stage.name!r} mean "
                           f"{new[0]:.4f} x {new[1]:.4f} x {new[2]:.4f} nm (volume {np.prod(new):.4f} nm^3)")
            self.production_box = [float(x) for x in np.diag(box)]
            crash_point("volume-switch")
        context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        context.setTime(item.start_step * p.timestep_ps)
        context.setStepCount(item.start_step)
        if entry.velocities_nm_per_ps is None:
            context.setVelocitiesToTemperature(p.temperature_K * unit.kelvin,
                                               derive_seed(p.seed, "velocities", stage.name))
        else:
            context.setVelocities(entry.velocities_nm_per_ps)
        state = context.getState(getEnergy=True)
        data = checkpoint.write(context, item.start_step, state)
        return self._restart(item, item.start_step, data)

    def _restart(self, item: ScheduledStage, step: int, data: bytes) -> app.Simulation:
        sim = self._simulation(item, step)
        sim.context.loadCheckpoint(data)
        return sim

    def _npt_mean_box(self, source: ScheduledStage, current_nm: np.ndarray) -> np.ndarray:
        half = source.start_step + source.n_steps // 2
        # every row up to the end of the source stage is verified first: this mean sets the production box
        rows = [r for r in check_thermo(self.run_dir / "thermo.csv", self.p, source.end_step)
                if r["stage"] == source.stage.name and r["step"] > half]
        if not rows:
            raise SimulationError(f"no thermo rows in the second half of stage {source.stage.name!r}")
        samples = np.array([[r["a"], r["b"], r["c"]] for r in rows])
        return target_box(samples, source.stage.coupling, current_nm)

    def _md_stage(self, item: ScheduledStage, entry: _Handover | _Resume) -> _Handover:
        reporters, checkpoint, progress = self._reporters(item)
        sim = None
        try:
            if isinstance(entry, _Resume):
                sim = self._restart(item, entry.step, entry.data)  # same seeds as the run that wrote it
                checkpoint.last_step, checkpoint.last_bytes = entry.step, entry.data
                if isinstance(item.stage, Production):
                    self.production_box = [float(x) for x in box_edges_nm(sim.context.getState())]
            else:
                sim = self._enter(item, entry, checkpoint)
            sim.reporters.extend(reporters)
            if progress is not None:
                progress.start(sim.currentStep)
            while sim.currentStep < item.end_step:
                start_step, t0 = sim.currentStep, time.perf_counter()
                target = min(item.end_step,
                             item.start_step + ((sim.currentStep - item.start_step) // self.p.checkpoint_steps + 1)
                             * self.p.checkpoint_steps)
                try:
                    sim.step(target - sim.currentStep)
                except mm.OpenMMException as exc:
                    self._fail(item.stage.name, sim.currentStep, " ".join(str(exc).split()).rstrip("."), checkpoint)
                self.md_steps += sim.currentStep - start_step
                if sim.currentStep < item.end_step:  # a checkpoint was just written: continue from it
                    sim = self._restart(item, sim.currentStep, checkpoint.last_bytes)
                    sim.reporters.extend(reporters)
                self.md_seconds += time.perf_counter() - t0  # stepping, reporting and restarts
            state = sim.context.getState(getPositions=True, getVelocities=True)
            out = _Handover(
                np.array(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)),
                np.array(state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)),
                np.array(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)),
                item.end_step,
            )
            if item.end_step == self.p.total_steps:  # the final checkpoint marks the run as done
                checkpoint.write(sim.context, item.end_step, sim.context.getState(getEnergy=True))
            if progress is not None:
                progress.finish()
            return out
        except BlowUp as exc:  # from the guard, in stepping or before any checkpoint
            self._fail(exc.stage, exc.step, exc.reason, checkpoint)
            raise  # not reached: _fail raises SimulationError
        finally:
            for reporter in reporters:
                reporter.close()
            del sim

    def _fail(self, stage: str, step: int, reason: str, checkpoint: CheckpointReporter) -> None:
        last = checkpoint.last_step
        where = f"checkpoint at step {last}" if last is not None else "the previous checkpoint"
        what, hint = "blow-up", "check the system or shorten the timestep"
        if "less than twice the nonbonded cutoff" in reason:  # OpenMM's barostat check, not an instability
            what, hint = "box too small for the cut-off", (
                "the barostat shrank the box below twice the cut-off: rebuild with more molecules or a "
                "shorter --cutoff-nm (aseimd build checks the expected equilibrium box)")
        message = (f"{what} in stage {stage!r} at step {step}: {reason}; the last good {where} is kept in "
                   f"{str(self.run_dir / 'checkpoint.chk')!r} ({hint})")
        self._record_failure(message)
        raise SimulationError(message)


def load_run_info(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run.json`` of a run directory."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise SpecError(f"{str(run_dir)!r} is not an aseimd run directory (no run.json)")
    return json.loads(path.read_text())
