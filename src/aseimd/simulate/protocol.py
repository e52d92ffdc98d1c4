"""MD protocols: a protocol is a list of small frozen stage configs.

A protocol YAML (see ``workflows/default.yaml``) holds the global settings
(temperature, pressure, timestep, hydrogen mass, cutoff, friction, report
intervals, seed) and an ordered list of stages::

    stages:
      - {type: minimize}
      - {type: nvt, length_ps: 100}
      - {type: npt, length_ps: 1000, coupling: isotropic}
      - {type: production, length_ps: 5000}

Every length or interval is given either in picoseconds (``*_ps``) or in
steps (``*_steps``), never both. Unknown keys are rejected with a message that
names the key and lists the allowed ones. Objects here are frozen; changes
(``--set key=value``) are applied to the plain dictionary before it is parsed
again, so every protocol is validated the same way.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml

from aseimd.errors import SpecError

COUPLINGS = ("isotropic", "anisotropic", "z", "membrane")
"""Pressure couplings: isotropic (MonteCarloBarostat), anisotropic (x, y, z
independent), z (z only, x and y fixed; for interface cells), membrane
(x = y scaled together, z free, zero surface tension)."""

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def _reject_unknown(where: str, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise SpecError(f"unknown key {key!r} in {where}; allowed keys: {', '.join(allowed)}")


def _number(where: str, key: str, value: Any, *, positive: bool = True, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        hint = ""
        if isinstance(value, str):
            try:
                float(value)
                hint = " (text: YAML reads an exponent without a decimal point, e.g. 1e-9, as a string; write 1.0e-9)"
            except ValueError:
                pass
        raise SpecError(f"{where}: {key} must be a finite number, got {value!r}{hint}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        bound = ">= 0" if allow_zero else "> 0"
        raise SpecError(f"{where}: {key} must be {bound}, got {value!r}")
    return float(value)


def _integer(where: str, key: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Duration:
    """A length of simulated time, in picoseconds or in integration steps.

    Parameters
    ----------
    value : float
        The amount (ps when ``unit == "ps"``, a step count when ``unit == "steps"``).
    unit : str
        ``"ps"`` or ``"steps"``.
    """

    value: float
    unit: str

    def to_steps(self, timestep_fs: float) -> int:
        """Number of integration steps for a timestep in fs (ps must be a whole number of steps)."""
        if self.unit == "steps":
            return int(self.value)
        steps = self.value * 1000.0 / timestep_fs
        # an absolute tolerance (float rounding of ps / fs stays far below 1e-6 step up to ~1e9 steps), so that
        # 20000.001 ps at 2 fs is refused like 0.001 ps is, not rounded to 10,000,000 steps
        if abs(steps - round(steps)) > 1e-6:
            raise SpecError(
                f"{self.value} ps is not a whole number of {timestep_fs} fs steps; "
                f"give a multiple of the timestep or use *_steps"
            )
        if round(steps) < 1:
            raise SpecError(f"{self.value} ps is less than one {timestep_fs} fs step; give at least {timestep_fs / 1000.0:g} ps")
        return int(round(steps))

    def to_dict_entry(self, prefix: str) -> dict[str, float | int]:
        """``{prefix_ps: value}`` or ``{prefix_steps: value}``."""
        if self.unit == "steps":
            return {f"{prefix}_steps": int(self.value)}
        return {f"{prefix}_ps": self.value}

    @classmethod
    def from_mapping(
        cls, where: str, data: Mapping[str, Any], prefix: str, default: Duration | None = None
    ) -> Duration:
        """Read ``prefix_ps`` or ``prefix_steps`` (exactly one) from ``data``."""
        ps_key, steps_key = f"{prefix}_ps", f"{prefix}_steps"
        has_ps, has_steps = data.get(ps_key) is not None, data.get(steps_key) is not None
        if has_ps and has_steps:
            raise SpecError(f"{where}: give either {ps_key} or {steps_key}, not both")
        if has_ps:
            return cls(_number(where, ps_key, data[ps_key]), "ps")
        if has_steps:
            return cls(_integer(where, steps_key, data[steps_key]), "steps")
        if default is None:
            raise SpecError(f"{where}: {ps_key} or {steps_key} is required")
        return default


# ----------------------------------------------------------------------------- stages


class _StageDict:
    """``to_dict`` for every stage: ``type``, then the dataclass fields in order (durations as
    ``<field>_ps`` or ``<field>_steps``) — the inverse of each stage's ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            out.update(value.to_dict_entry(f.name) if isinstance(value, Duration) else {f.name: value})
        return out


@dataclass(frozen=True)
class Minimize(_StageDict):
    """Local energy minimisation (L-BFGS); takes no MD steps.

    Parameters
    ----------
    name : str
        Stage name (unique in the protocol).
    tolerance_kj_per_mol_nm : float
        Stop when the RMS force falls below this, in kJ/mol/nm.
    max_iterations : int
        Iteration limit; 0 means until converged.
    """

    name: str = "minimize"
    tolerance_kj_per_mol_nm: float = 10.0
    max_iterations: int = 0

    type: ClassVar[str] = "minimize"
    is_md: ClassVar[bool] = False
    _keys: ClassVar[tuple[str, ...]] = ("type", "name", "tolerance_kj_per_mol_nm", "max_iterations")

    @classmethod
    def from_dict(cls, where: str, data: Mapping[str, Any]) -> Minimize:
        _reject_unknown(where, data, cls._keys)
        return cls(
            name=str(data.get("name", cls.name)),
            tolerance_kj_per_mol_nm=_number(
                where, "tolerance_kj_per_mol_nm", data.get("tolerance_kj_per_mol_nm", 10.0)
            ),
            max_iterations=_integer(where, "max_iterations", data.get("max_iterations", 0), minimum=0),
        )


@dataclass(frozen=True)
class NVT(_StageDict):
    """Constant volume and temperature (Langevin middle integrator).

    Parameters
    ----------
    name : str
        Stage name (unique in the protocol).
    length : Duration
        How long the stage runs.
    """

    name: str = "nvt"
    length: Duration = Duration(100.0, "ps")

    type: ClassVar[str] = "nvt"
    is_md: ClassVar[bool] = True
    _keys: ClassVar[tuple[str, ...]] = ("type", "name", "length_ps", "length_steps")

    @classmethod
    def from_dict(cls, where: str, data: Mapping[str, Any]) -> NVT:
        _reject_unknown(where, data, cls._keys)
        return cls(name=str(data.get("name", cls.name)), length=Duration.from_mapping(where, data, "length"))


@dataclass(frozen=True)
class NPT(_StageDict):
    """Constant pressure and temperature: Langevin thermostat + Monte Carlo barostat.

    Parameters
    ----------
    name : str
        Stage name (unique in the protocol).
    length : Duration
        How long the stage runs.
    coupling : str
        One of :data:`COUPLINGS`.
    barostat_interval_steps : int
        Steps between Monte Carlo volume moves.
    """

    name: str = "npt"
    length: Duration = Duration(1000.0, "ps")
    coupling: str = "isotropic"
    barostat_interval_steps: int = 25

    type: ClassVar[str] = "npt"
    is_md: ClassVar[bool] = True
    _keys: ClassVar[tuple[str, ...]] = (
        "type", "name", "length_ps", "length_steps", "coupling", "barostat_interval_steps",
    )

    @classmethod
    def from_dict(cls, where: str, data: Mapping[str, Any]) -> NPT:
        _reject_unknown(where, data, cls._keys)
        coupling = data.get("coupling", "isotropic")
        if coupling not in COUPLINGS:
            raise SpecError(f"{where}: unknown coupling {coupling!r}; allowed: {', '.join(COUPLINGS)}")
        return cls(
            name=str(data.get("name", cls.name)),
            length=Duration.from_mapping(where, data, "length"),
            coupling=coupling,
            barostat_interval_steps=_integer(
                where, "barostat_interval_steps", data.get("barostat_interval_steps", 25)
            ),
        )


@dataclass(frozen=True)
class Production(_StageDict):
    """NVT production at the mean volume of the second half of an NPT stage.

    Only production frames go to ``trajectory.dcd`` (unwrapped). No barostat
    acts: Monte Carlo volume moves would corrupt unwrapped displacements.

    Parameters
    ----------
    name : str
        Stage name (unique in the protocol).
    length : Duration
        How long the stage runs.
    volume_from : str or None
        Name of the NPT stage whose second-half mean box is used; ``None``
        means the last NPT stage before this one; ``"none"`` keeps the box
        as it is.
    """

    name: str = "production"
    length: Duration = Duration(5000.0, "ps")
    volume_from: str | None = None

    type: ClassVar[str] = "production"
    is_md: ClassVar[bool] = True
    _keys: ClassVar[tuple[str, ...]] = ("type", "name", "length_ps", "length_steps", "volume_from")

    @classmethod
    def from_dict(cls, where: str, data: Mapping[str, Any]) -> Production:
        _reject_unknown(where, data, cls._keys)
        volume_from = data.get("volume_from")
        return cls(
            name=str(data.get("name", cls.name)),
            length=Duration.from_mapping(where, data, "length"),
            volume_from=None if volume_from is None else str(volume_from),
        )


Stage = Minimize | NVT | NPT | Production
STAGE_TYPES: dict[str, type] = {cls.type: cls for cls in (Minimize, NVT, NPT, Production)}


@dataclass(frozen=True)
class ScheduledStage:
    """A stage placed on the global step axis: MD steps ``start_step < t <= end_step``."""

    index: int
    stage: Stage
    start_step: int
    end_step: int

    @property
    def n_steps(self) -> int:
        return self.end_step - self.start_step


# ----------------------------------------------------------------------------- protocol

_PROTOCOL_KEYS = (
    "name", "description", "temperature_K", "pressure_bar", "timestep_fs", "friction_per_ps",
    "hydrogen_mass_amu", "cutoff_nm", "seed", "max_temperature_K", "report", "stages",
)
_REPORT_KEYS = (
    "thermo_ps", "thermo_steps", "trajectory_ps", "trajectory_steps",
    "checkpoint_ps", "checkpoint_steps",
)


@dataclass(frozen=True)
class Protocol:
    """A full MD protocol: global settings plus an ordered tuple of stages.

    Parameters
    ----------
    name : str
        Protocol name (recorded in ``run.json``).
    stages : tuple of Stage
        Minimize / NVT / NPT / Production configs, run in order.
    temperature_K : float
        Thermostat (and barostat) temperature in K.
    pressure_bar : float
        Barostat pressure in bar.
    timestep_fs : float
        Integration timestep in fs.
    friction_per_ps : float
        Langevin friction coefficient in 1/ps.
    hydrogen_mass_amu : float or None
        Hydrogen mass repartitioning: every H bonded to a heavy atom gets this
        mass (amu), taken from its partner. ``None`` leaves masses alone.
    cutoff_nm : float or None
        Non-bonded cutoff in nm for every cutoff-based force; ``None`` keeps
        the cutoff stored in ``system.xml``.
    seed : int
        Master seed (>= 1); stage seeds are derived from it.
    max_temperature_K : float or None
        A state hotter than this is a blow-up; ``None`` means 3 x temperature_K.
    thermo_interval, trajectory_interval, checkpoint_interval : Duration
        Spacing of ``thermo.csv`` rows, production frames and checkpoints.
    description : str
        Free text.
    """

    name: str
    stages: tuple[Stage, ...]
    temperature_K: float = 298.15
    pressure_bar: float = 1.01325
    timestep_fs: float = 2.0
    friction_per_ps: float = 1.0
    hydrogen_mass_amu: float | None = None
    cutoff_nm: float | None = None
    seed: int = 2026
    max_temperature_K: float | None = None
    thermo_interval: Duration = Duration(1.0, "ps")
    trajectory_interval: Duration = Duration(1.0, "ps")
    checkpoint_interval: Duration = Duration(100.0, "ps")
    description: str = ""
    _schedule: tuple[ScheduledStage, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"protocol {self.name!r}"
        if not self.stages:
            raise SpecError(f"{where}: stages must list at least one stage")
        names = [s.name for s in self.stages]
        for name in names:
            if not _NAME_RE.match(name):
                raise SpecError(f"{where}: stage name {name!r} may only use letters, digits, '_', '-', '.'")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"{where}: stage names must be unique; repeated: {', '.join(dupes)}")
        if not any(s.is_md for s in self.stages):
            raise SpecError(f"{where}: needs at least one MD stage (nvt, npt or production)")
        if not self.stages[-1].is_md:
            raise SpecError(f"{where}: the last stage must be an MD stage, not {self.stages[-1].type!r}")
        productions = [s for s in self.stages if isinstance(s, Production)]
        if len(productions) > 1:
            raise SpecError(f"{where}: at most one production stage; found {len(productions)}")
        for value, key in ((self.temperature_K, "temperature_K"), (self.timestep_fs, "timestep_fs"),
                           (self.friction_per_ps, "friction_per_ps"), (self.pressure_bar, "pressure_bar")):
            _number(where, key, value)
        if self.hydrogen_mass_amu is not None:
            _number(where, "hydrogen_mass_amu", self.hydrogen_mass_amu)
        if self.cutoff_nm is not None:
            _number(where, "cutoff_nm", self.cutoff_nm)
        if self.max_temperature_K is not None and self.max_temperature_K <= self.temperature_K:
            raise SpecError(f"{where}: max_temperature_K must exceed temperature_K, got {self.max_temperature_K}")
        _integer(where, "seed", self.seed)

        schedule, step = [], 0
        for index, stage in enumerate(self.stages):
            n = stage.length.to_steps(self.timestep_fs) if stage.is_md else 0
            schedule.append(ScheduledStage(index, stage, step, step + n))
            step += n
        object.__setattr__(self, "_schedule", tuple(schedule))

        thermo = self.thermo_steps
        _ = (self.trajectory_steps, self.checkpoint_steps)  # raises unless whole numbers of steps
        for item in schedule:
            stage = item.stage
            if isinstance(stage, Production):
                source = self.npt_source(stage)
                if source is not None and thermo > source.n_steps // 2:
                    raise SpecError(
                        f"{where}: the second half of stage {source.stage.name!r} "
                        f"({source.n_steps // 2} steps) holds no thermo row; make "
                        f"report.thermo shorter than half that stage"
                    )

    # -- derived quantities -------------------------------------------------

    @property
    def schedule(self) -> tuple[ScheduledStage, ...]:
        """Stages on the global step axis, in order."""
        return self._schedule

    @property
    def total_steps(self) -> int:
        """Number of MD steps of the whole protocol."""
        return self._schedule[-1].end_step

    @property
    def timestep_ps(self) -> float:
        return self.timestep_fs / 1000.0

    @property
    def thermo_steps(self) -> int:
        return self.thermo_interval.to_steps(self.timestep_fs)

    @property
    def trajectory_steps(self) -> int:
        return self.trajectory_interval.to_steps(self.timestep_fs)

    @property
    def checkpoint_steps(self) -> int:
        return self.checkpoint_interval.to_steps(self.timestep_fs)

    @property
    def blowup_temperature_K(self) -> float:
        return self.max_temperature_K if self.max_temperature_K is not None else 3.0 * self.temperature_K

    @property
    def production(self) -> ScheduledStage | None:
        """The scheduled production stage, if any."""
        for item in self._schedule:
            if isinstance(item.stage, Production):
                return item
        return None

    def npt_source(self, production: Production) -> ScheduledStage | None:
        """The NPT stage whose mean box the production stage adopts (``None``: keep the box)."""
        index = [s.name for s in self.stages].index(production.name)
        earlier = [item for item in self._schedule[:index] if isinstance(item.stage, NPT)]
        if production.volume_from == "none":
            return None
        if production.volume_from is None:
            if not earlier:
                raise SpecError(
                    f"protocol {self.name!r}: production stage {production.name!r} needs an earlier "
                    f"npt stage for its volume (or volume_from: none)"
                )
            return earlier[-1]
        for item in earlier:
            if item.stage.name == production.volume_from:
                return item
        allowed = [item.stage.name for item in earlier] + ["none"]
        raise SpecError(
            f"protocol {self.name!r}: volume_from {production.volume_from!r} is not an earlier npt "
            f"stage; allowed: {', '.join(allowed)}"
        )

    def stage_at(self, step: int) -> ScheduledStage | None:
        """The MD stage that runs step ``step + 1`` (``None`` when ``step`` is the end)."""
        for item in self._schedule:
            if item.stage.is_md and item.start_step <= step < item.end_step:
                return item
        return None

    # -- (de)serialisation --------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary that :meth:`from_dict` reads back to an equal protocol."""
        report: dict[str, Any] = {}
        report.update(self.thermo_interval.to_dict_entry("thermo"))
        report.update(self.trajectory_interval.to_dict_entry("trajectory"))
        report.update(self.checkpoint_interval.to_dict_entry("checkpoint"))
        return {
            "name": self.name,
            "description": self.description,
            "temperature_K": self.temperature_K,
            "pressure_bar": self.pressure_bar,
            "timestep_fs": self.timestep_fs,
            "friction_per_ps": self.friction_per_ps,
            "hydrogen_mass_amu": self.hydrogen_mass_amu,
            "cutoff_nm": self.cutoff_nm,
            "seed": self.seed,
            "max_temperature_K": self.max_temperature_K,
            "report": report,
            "stages": [stage.to_dict() for stage in self.stages],
        }

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON form (what identifies a run's protocol)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> Protocol:
        """Parse and validate a protocol dictionary (as read from YAML)."""
        if not isinstance(data, Mapping):
            raise SpecError(f"a protocol must be a mapping of keys, got {type(data).__name__}")
        where = f"protocol {data.get('name', name)!r}"
        _reject_unknown(where, data, _PROTOCOL_KEYS)
        report = {} if data.get("report") is None else data["report"]
        if not isinstance(report, Mapping):
            raise SpecError(f"{where}: report must be a mapping; allowed keys: {', '.join(_REPORT_KEYS)}")
        _reject_unknown(f"{where} report", report, _REPORT_KEYS)
        raw_stages = data.get("stages")
        if not isinstance(raw_stages, list) or not raw_stages:
            raise SpecError(f"{where}: stages must be a non-empty list")
        stages = []
        for i, raw in enumerate(raw_stages):
            if not isinstance(raw, Mapping) or "type" not in raw:
                raise SpecError(f"{where} stage {i + 1}: needs a type; allowed: {', '.join(STAGE_TYPES)}")
            kind = raw["type"]
            if kind not in STAGE_TYPES:
                raise SpecError(f"{where} stage {i + 1}: unknown type {kind!r}; allowed: {', '.join(STAGE_TYPES)}")
            stages.append(STAGE_TYPES[kind].from_dict(f"{where} stage {i + 1} ({kind})", raw))

        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else _number(where, key, value)

        defaults = cls.__dataclass_fields__
        return cls(
            name=str(data.get("name", name or "protocol")),
            description=str(data.get("description", "") or ""),
            stages=tuple(stages),
            temperature_K=_number(where, "temperature_K", data.get("temperature_K", defaults["temperature_K"].default)),
            pressure_bar=_number(where, "pressure_bar", data.get("pressure_bar", defaults["pressure_bar"].default)),
            timestep_fs=_number(where, "timestep_fs", data.get("timestep_fs", defaults["timestep_fs"].default)),
            friction_per_ps=_number(
                where, "friction_per_ps", data.get("friction_per_ps", defaults["friction_per_ps"].default)
            ),
            hydrogen_mass_amu=opt("hydrogen_mass_amu"),
            cutoff_nm=opt("cutoff_nm"),
            seed=_integer(where, "seed", data.get("seed", defaults["seed"].default)),
            max_temperature_K=opt("max_temperature_K"),
            thermo_interval=Duration.from_mapping(f"{where} report", report, "thermo", Duration(1.0, "ps")),
            trajectory_interval=Duration.from_mapping(f"{where} report", report, "trajectory", Duration(1.0, "ps")),
            checkpoint_interval=Duration.from_mapping(
                f"{where} report", report, "checkpoint", Duration(100.0, "ps")
            ),
        )

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Protocol:
        """Read a protocol YAML file, apply ``key=value`` overrides, validate."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SpecError(f"protocol file {str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise SpecError(f"protocol file {str(path)!r} must hold a mapping of keys")
        return cls.from_dict(apply_overrides(data, overrides), name=path.stem)

    @classmethod
    def load(cls, name_or_path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Protocol:
        """A shipped protocol by name (``default``, ``quickstart``, ...) or a YAML path."""
        candidate = Path(name_or_path)
        if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
            if not candidate.is_file():
                raise SpecError(f"protocol file {str(candidate)!r} does not exist")
            return cls.from_yaml(candidate, overrides)
        shipped = shipped_protocols()
        if str(name_or_path) not in shipped:
            raise SpecError(
                f"unknown protocol {str(name_or_path)!r}; shipped: {', '.join(sorted(shipped))} "
                f"(or give a path to a YAML file)"
            )
        return cls.from_yaml(shipped[str(name_or_path)], overrides)

    @classmethod
    def default(cls) -> Protocol:
        """``workflows/default.yaml``: minimize -> NVT -> NPT -> NVT production."""
        return cls.load("default")

    @classmethod
    def quickstart(cls) -> Protocol:
        """``workflows/quickstart.yaml``: a few minutes on a laptop CPU for a few hundred atoms."""
        return cls.load("quickstart")


def shipped_protocols() -> dict[str, Path]:
    """Protocol YAMLs shipped in ``workflows/`` (files with a top-level ``stages`` list)."""
    from aseimd.resources import data_dir

    found = {}
    for path in sorted(data_dir("workflows").glob("*.y*ml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and isinstance(data.get("stages"), list):
            found[path.stem] = path
    return found


def apply_overrides(data: Mapping[str, Any], overrides: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Return a copy of a protocol dictionary with ``key=value`` settings applied.

    Keys are dotted paths: ``temperature_K=300``, ``report.thermo_ps=2``,
    ``stages.npt.length_ps=500`` (a stage is addressed by its name). Values
    are parsed as YAML scalars. Setting ``x_ps`` removes a ``x_steps`` entry
    and vice versa.

    Examples
    --------
    >>> apply_overrides({"temperature_K": 298.15}, ["temperature_K=330"])
    {'temperature_K': 330}
    """
    import copy

    result = copy.deepcopy(dict(data))
    for item in overrides:
        if "=" not in item:
            raise SpecError(f"override {item!r} must look like key=value, e.g. temperature_K=300")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        target: Any = result
        for depth, part in enumerate(parts[:-1]):
            if depth == 0 and part == "stages":
                continue
            if depth == 1 and parts[0] == "stages":
                stages = result.get("stages") or []
                match = [s for s in stages if isinstance(s, dict) and s.get("name", s.get("type")) == part]
                if not match:
                    names = [s.get("name", s.get("type")) for s in stages if isinstance(s, dict)]
                    raise SpecError(f"override {item!r}: no stage named {part!r}; stages: {', '.join(names)}")
                target = match[0]
                continue
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise SpecError(f"override {item!r}: {part!r} is not a mapping")
        leaf = parts[-1]
        for a, b in (("_ps", "_steps"), ("_steps", "_ps")):
            if leaf.endswith(a):
                target.pop(leaf[: -len(a)] + b, None)
        target[leaf] = value
    return result
