"""Everything a run writes is an OpenMM reporter (``describeNextReport`` / ``report``).

Each reporter belongs to one stage, which covers the global steps
``start_step < t <= end_step``; it reports at ``t = start_step + k * interval``.
Positions are never wrapped (``periodic: False``), so trajectories stay
continuous when a molecule crosses the box.

Order matters and is kept by the runner: frames and thermo rows are written
and flushed before the checkpoint of the same step, so a checkpoint at step
``s`` always has every frame and row up to ``s`` on disk before it.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

import numpy as np
import openmm as mm
import openmm.unit as unit

from aseimd.fileio import SyncedFile, atomic_write_bytes, atomic_write_text
from aseimd.simulate._faults import crash_point
from aseimd.simulate.dcd import DCDWriter

THERMO_COLUMNS = (
    "Step",
    "Time (ps)",
    "Potential Energy (kJ/mol)",
    "Kinetic Energy (kJ/mol)",
    "Temperature (K)",
    "Volume (nm^3)",
    "Density (g/cm^3)",
    "Box a (nm)",
    "Box b (nm)",
    "Box c (nm)",
    "Stage",
)
"""Header of ``thermo.csv`` (units in the names)."""

CHECKPOINT = "checkpoint.chk"
"""The run's current checkpoint (OpenMM ``Context.createCheckpoint`` bytes)."""
PREVIOUS_CHECKPOINT = "checkpoint.prev.chk"
"""The checkpoint before it, kept as a fall-back if the current one fails verification."""

_AMU_PER_NM3_TO_G_PER_CM3 = 1.66053906660e-3  # 1 amu/nm^3 = 1.6605e-3 g/cm^3
_BOLTZMANN_KJ_PER_MOL_K = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)


def steps_to_next(current: int, start: int, end: int, interval: int) -> int:
    """Steps from ``current`` to the next ``start + k * interval`` (k >= 1) that is <= ``end``.

    Returns a step count beyond ``end - current`` (so OpenMM's Simulation
    ignores it) when no report is left in the stage.
    """
    if current < start:
        return start + interval - current
    k = (current - start) // interval + 1
    target = start + k * interval
    return target - current if target <= end else end - current + interval + 1


def count_reports(step: int, start: int, end: int, interval: int) -> int:
    """How many reports ``start + k * interval <= min(step, end)`` (k >= 1) exist."""
    upto = min(step, end)
    return 0 if upto <= start else (upto - start) // interval


def degrees_of_freedom(system: mm.System) -> int:
    """Kinetic degrees of freedom: 3 per massive particle minus constraints minus 3 for a CM motion remover."""
    dof = sum(3 for i in range(system.getNumParticles()) if system.getParticleMass(i).value_in_unit(unit.dalton) > 0)
    for i in range(system.getNumConstraints()):
        a, b, _ = system.getConstraintParameters(i)
        if system.getParticleMass(a).value_in_unit(unit.dalton) > 0 or \
                system.getParticleMass(b).value_in_unit(unit.dalton) > 0:
            dof -= 1
    if any(isinstance(f, mm.CMMotionRemover) for f in system.getForces()):
        dof -= 3
    return dof


def box_edges_nm(state: mm.State) -> np.ndarray:
    """Orthorhombic box edge lengths (a, b, c) in nm, shape (3,)."""
    vectors = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
    return np.array([vectors[0][0], vectors[1][1], vectors[2][2]], dtype=float)


class _StageReporter:
    """Common stage bookkeeping: reports at ``start + k * interval`` up to ``end``."""

    include: tuple[str, ...] = ()

    def __init__(self, stage: str, start_step: int, end_step: int, interval: int):
        self.stage, self.start_step, self.end_step, self.interval = stage, start_step, end_step, interval

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802 - OpenMM API
        steps = steps_to_next(simulation.currentStep, self.start_step, self.end_step, self.interval)
        return {"steps": steps, "periodic": False, "include": list(self.include)}

    def close(self) -> None:
        """Release files (nothing by default)."""


class ThermoReporter(SyncedFile, _StageReporter):
    """Append one row per report to ``thermo.csv`` (header written once, units in names).

    Parameters
    ----------
    path : pathlib.Path
    stage : str
    start_step, end_step, interval : int
    timestep_ps : float
    dof : int
        Kinetic degrees of freedom (for the temperature).
    total_mass_amu : float
        Sum of the particle masses (for the density).
    """

    include = ("energy",)

    def __init__(self, path: Path, stage: str, start_step: int, end_step: int, interval: int,
                 timestep_ps: float, dof: int, total_mass_amu: float):
        super().__init__(stage, start_step, end_step, interval)
        self.path, self.timestep_ps, self.dof, self.total_mass_amu = Path(path), timestep_ps, dof, total_mass_amu
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        if new:
            self._csv.writerow(THERMO_COLUMNS)
            self._file.flush()
        self.last_row: dict[str, float] | None = None

    def values(self, step: int, state: mm.State) -> dict[str, float]:
        """The numbers of one row (floats, SI-free OpenMM units)."""
        pe = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        ke = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        edges = box_edges_nm(state)
        volume = float(np.prod(edges))
        return {
            "step": step,
            "time_ps": step * self.timestep_ps,
            "potential_kj_per_mol": pe,
            "kinetic_kj_per_mol": ke,
            "temperature_K": 2.0 * ke / (self.dof * _BOLTZMANN_KJ_PER_MOL_K) if self.dof > 0 else 0.0,
            "volume_nm3": volume,
            "density_g_per_cm3": self.total_mass_amu / volume * _AMU_PER_NM3_TO_G_PER_CM3,
            "a": edges[0], "b": edges[1], "c": edges[2],
        }

    def report(self, simulation: Any, state: mm.State) -> None:
        v = self.values(simulation.currentStep, state)
        self.last_row = v
        self._csv.writerow([
            v["step"], f"{v['time_ps']:.6f}", f"{v['potential_kj_per_mol']:.10g}", f"{v['kinetic_kj_per_mol']:.10g}",
            f"{v['temperature_K']:.10g}", f"{v['volume_nm3']:.12g}", f"{v['density_g_per_cm3']:.10g}",
            f"{v['a']:.12g}", f"{v['b']:.12g}", f"{v['c']:.12g}", self.stage,
        ])
        self._file.flush()


class BlowupGuard(_StageReporter):
    """Stop a run whose energy or temperature is not finite or explodes.

    Raises :class:`BlowUp` (the runner turns it into a
    :class:`~aseimd.errors.SimulationError` naming stage and step). Checks at
    the thermo interval and is also called on every checkpoint, so a bad
    state is never checkpointed.
    """

    include = ("energy",)

    def __init__(self, stage: str, start_step: int, end_step: int, interval: int, dof: int,
                 n_particles: int, max_temperature_K: float):
        super().__init__(stage, start_step, end_step, interval)
        self.dof, self.n_particles, self.max_temperature_K = dof, n_particles, max_temperature_K

    def check(self, step: int, state: mm.State) -> None:
        pe = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        ke = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        temperature = 2.0 * ke / (self.dof * _BOLTZMANN_KJ_PER_MOL_K) if self.dof > 0 else 0.0
        if not (math.isfinite(pe) and math.isfinite(ke)):
            raise BlowUp(self.stage, step, f"non-finite energy (potential {pe}, kinetic {ke} kJ/mol)")
        if temperature > self.max_temperature_K:
            raise BlowUp(self.stage, step, f"temperature {temperature:.4g} K exceeds {self.max_temperature_K:.0f} K")
        if pe > 1.0e3 * self.n_particles:
            raise BlowUp(self.stage, step, f"potential energy {pe:.4g} kJ/mol exceeds +1000 kJ/mol per particle")

    def report(self, simulation: Any, state: mm.State) -> None:
        self.check(simulation.currentStep, state)


class BlowUp(Exception):
    """Raised inside the MD loop by :class:`BlowupGuard`."""

    def __init__(self, stage: str, step: int, reason: str):
        super().__init__(f"{reason} in stage {stage!r} at step {step}")
        self.stage, self.step, self.reason = stage, step, reason


class TrajectoryReporter(_StageReporter):
    """Append unwrapped frames (``enforcePeriodicBox=False``) to a DCD file."""

    include = ("positions",)

    def __init__(self, path: Path, n_atoms: int, stage: str, start_step: int, end_step: int, interval: int,
                 timestep_ps: float):
        super().__init__(stage, start_step, end_step, interval)
        self.writer = DCDWriter(path, n_atoms, start_step + interval, interval, timestep_ps)

    def report(self, simulation: Any, state: mm.State) -> None:
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        self.writer.write(positions, box_edges_nm(state))
        crash_point("after-frame")

    def sync(self) -> None:
        self.writer.sync()

    def close(self) -> None:
        self.writer.close()


class ProgressReporter(_StageReporter):
    """A terminal progress line: stage, % done, ns/day, ETA (carriage return on a TTY).

    Off a terminal a line is printed at most every ``min_interval_s`` seconds.
    """

    def __init__(self, stage: str, start_step: int, end_step: int, interval: int, total_steps: int,
                 timestep_ps: float, stream: TextIO | None = None, min_interval_s: float = 10.0):
        super().__init__(stage, start_step, end_step, interval)
        self.total_steps, self.timestep_ps = total_steps, timestep_ps
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval_s = 0.0 if self.tty else min_interval_s
        self._t0: float | None = None
        self._step0 = 0
        self._last_print = -math.inf
        self._pending = False

    def report(self, simulation: Any, state: mm.State) -> None:
        now, step = time.perf_counter(), simulation.currentStep
        if self._t0 is None:
            self._t0, self._step0 = now, step
            return
        if now - self._last_print < self.min_interval_s and step < self.end_step:
            return
        self._last_print = now
        self.stream.write(self.line(step, now) + ("\r" if self.tty else "\n"))
        self.stream.flush()
        self._pending = self.tty

    def start(self, step: int) -> None:
        """Start the clock (call when MD of this stage starts in this process)."""
        self._t0, self._step0 = time.perf_counter(), step

    def ns_per_day(self, step: int, now: float) -> float:
        if self._t0 is None or now <= self._t0 or step <= self._step0:
            return float("nan")
        return (step - self._step0) * self.timestep_ps * 1e-3 / ((now - self._t0) / 86400.0)

    def line(self, step: int, now: float) -> str:
        done = 100.0 * (step - self.start_step) / max(self.end_step - self.start_step, 1)
        rate = self.ns_per_day(step, now)
        steps_per_s = (step - self._step0) / (now - self._t0) if self._t0 and now > self._t0 else 0.0
        eta = (self.total_steps - step) / steps_per_s if steps_per_s > 0 else float("nan")
        return (f"{self.stage:>12s} {done:5.1f}% | step {step}/{self.total_steps} | "
                f"{rate:8.2f} ns/day | ETA {_format_seconds(eta)}")

    def finish(self) -> None:
        """End the progress line (on a terminal the last line stays visible)."""
        if self.tty and self._pending:
            self.stream.write("\n")
            self.stream.flush()
        self._pending = False

    def close(self) -> None:
        """End a pending progress line, so an error message never overwrites it."""
        self.finish()


class MinimizationProgress(mm.MinimizationReporter):
    """Progress of an energy minimisation: iteration, potential energy, elapsed time.

    An OpenMM ``MinimizationReporter`` (``Simulation.minimizeEnergy(reporter=...)``).
    On a terminal the line is rewritten in place (at most every
    ``min_interval_s``, default 0.5 s there); elsewhere a line is printed at
    most every 10 s. :meth:`close` ends the line, so an error printed after it
    never overwrites it.

    Parameters
    ----------
    stage : str
    stream : file-like, optional
        Default ``sys.stderr``.
    min_interval_s : float, optional
    """

    def __init__(self, stage: str, stream: TextIO | None = None, min_interval_s: float | None = None):
        super().__init__()
        self.stage = stage
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval_s = (0.5 if self.tty else 10.0) if min_interval_s is None else min_interval_s
        self.t0 = time.perf_counter()
        self.iterations = 0
        self.energy_kj_per_mol = float("nan")
        self._last_print = self.t0
        self._pending = False

    def report(self, iteration, x, grad, args):  # noqa: D102 - OpenMM API
        self.iterations += 1
        try:
            self.energy_kj_per_mol = float(args["system energy"])
        except (KeyError, TypeError, IndexError):
            self.energy_kj_per_mol = float("nan")
        now = time.perf_counter()
        if now - self._last_print >= self.min_interval_s:
            self._last_print = now
            self._write(self.line(now))
        return False

    def line(self, now: float | None = None) -> str:
        """The progress text: stage, iterations, potential energy in kJ/mol, elapsed time."""
        now = time.perf_counter() if now is None else now
        return (f"{self.stage:>12s} minimising | {self.iterations} iterations | "
                f"energy {self.energy_kj_per_mol:.6g} kJ/mol | elapsed {_format_seconds(now - self.t0)}")

    def _write(self, text: str) -> None:
        self.stream.write(text + ("\r" if self.tty else "\n"))
        self.stream.flush()
        self._pending = self.tty

    def close(self) -> None:
        """End a pending progress line."""
        if self._pending:
            self.stream.write("\n")
            self.stream.flush()
        self._pending = False


def _format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class CheckpointReporter(_StageReporter):
    """Write ``checkpoint.chk`` and ``state.xml`` atomically (temporary file + ``os.replace``).

    Reports at ``start + k * interval`` strictly before the stage end (a
    checkpoint at a stage boundary is written by the next stage, after its
    set-up, so a step count identifies the stage unambiguously). Before
    writing, it makes every other writer flush to disk (``sync``) and lets the
    guard check the state.

    Parameters
    ----------
    run_dir : pathlib.Path
    stage, start_step, end_step, interval
    before : callable(step, state) -> None
        Called first (guard check, flushing other files).
    after : callable(step, checkpoint_bytes, state_xml) -> None
        Called once the checkpoint and ``state.xml`` are in place (``run.json``
        update with their size and sha256).
    """

    include = ("energy",)

    def __init__(self, run_dir: Path, stage: str, start_step: int, end_step: int, interval: int,
                 before: Callable[[int, mm.State], None], after: Callable[[int, bytes, str], None]):
        super().__init__(stage, start_step, end_step, interval)
        self.run_dir, self.before, self.after = Path(run_dir), before, after
        self.last_step: int | None = None
        self.last_bytes: bytes | None = None

    def describeNextReport(self, simulation: Any) -> dict[str, Any]:  # noqa: N802 - OpenMM API
        steps = steps_to_next(simulation.currentStep, self.start_step, self.end_step - 1, self.interval)
        return {"steps": steps, "periodic": False, "include": list(self.include)}

    def report(self, simulation: Any, state: mm.State) -> None:
        self.write(simulation.context, simulation.currentStep, state)

    def write(self, context: mm.Context, step: int, state: mm.State) -> bytes:
        """Write the checkpoint of ``context`` (at ``step``) and ``state.xml``; return the checkpoint bytes."""
        self.before(step, state)
        crash_point("before-checkpoint")
        data = context.createCheckpoint()
        # the checkpoint it replaces stays as checkpoint.prev.chk (the fall-back if this one fails verification)
        atomic_write_bytes(self.run_dir / CHECKPOINT, data, keep_previous=self.run_dir / PREVIOUS_CHECKPOINT)
        crash_point("after-checkpoint")
        full = context.getState(getPositions=True, getVelocities=True, getParameters=True, getEnergy=True)
        xml = mm.XmlSerializer.serialize(full)
        atomic_write_text(self.run_dir / "state.xml", xml)
        self.last_step, self.last_bytes = step, data
        self.after(step, data, xml)
        return data


def read_thermo(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``thermo.csv`` as dictionaries keyed by the header."""
    text = Path(path).read_text()
    return list(csv.DictReader(io.StringIO(text)))
