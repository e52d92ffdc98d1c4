"""Campaign spec: a YAML file that expands into many pipeline jobs.

::

    name: compare-polymers
    system:                       # the template every job starts from
      kind: interface             # or electrolyte (recipe, n_solvent, ...)
      slab: {face: "100", layers: 6, lateral_nm: [3.5, 3.5]}
      polymer: {thickness_nm: 2.0, n_repeat: 20}
      electrolyte: {thickness_nm: 4.0}
      cutoff_nm: 1.2
      charge_scale: 0.8
    matrix:                       # the axes; the jobs are their Cartesian product
      polymer: [PEO, PAN, PDMS, LiNafion, null]      # null: bare Li (interface systems only)
      electrolyte: {LiPF6-ECDMC: "1.0 M LiPF6 in EC:DMC 1:1 v/v"}   # or a list of recipes
      temperature_K: [298.15]
      replicas: 3
    seed: 0                       # replica r: system seed = seed + r, protocol seed + r
    protocol: interface           # shipped name, a YAML path (relative to this file) or an inline mapping
    set: ["stages.production.length_ps=20000"]   # protocol overrides for every job
    analyses: [diffusion, transference, coordination, solvent_cn, profile]
    platform: {name: auto, threads: null, deterministic: false}
    executor: slurm               # local | slurm
    resources: {max_parallel: 8, gpus_per_job: 1, time: "24:00:00", partition: gpu, ...}

Every mapping rejects unknown keys with a one-line :class:`~aseimd.errors.SpecError`
that lists the allowed ones. Job names are built from the matrix labels
(``PEO_LiPF6-ECDMC_298.15K_r0``), so they are stable and readable.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aseimd.errors import SpecError
from aseimd.pipeline import PipelineSpec, canonical_json, validate_analyses, validate_interface, validate_system

#: Top-level keys of a campaign file.
CAMPAIGN_KEYS = ("name", "description", "directory", "system", "matrix", "seed", "protocol", "set", "analyses",
                 "platform", "executor", "resources")
#: Matrix axes, in the order they appear in job names.
MATRIX_KEYS = ("polymer", "electrolyte", "temperature_K", "replicas")
#: Executors.
EXECUTORS = ("local", "slurm")
#: Resource options and their defaults.
RESOURCE_DEFAULTS: dict[str, Any] = {
    "max_parallel": 1,          # jobs at once (local) / array throttle %P (slurm)
    "gpus_per_job": 0,          # --gres=gpu:N (slurm); one CUDA_VISIBLE_DEVICES index per job (local)
    "cpus_per_task": 1,
    "mem": None,                # e.g. "4G"
    "time": None,               # Slurm walltime, e.g. "24:00:00"
    "partition": None,
    "account": None,
    "qos": None,
    "extra": [],                # more sbatch options, each one argument, e.g. ["--constraint=a100"]
    "signal_s": 120,            # --signal=B:USR1@N: the backup walltime trigger
    "reserve_s": 300,           # time kept free at the end of an allocation for checkpoint + analysis
    "max_restarts": 50,         # a job restarted more often fails ("too many restarts")
    "max_no_progress": 3,       # consecutive segments without a new checkpoint before it fails
}
PLATFORM_KEYS = ("name", "threads", "deterministic")
#: Labels in job names.
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass(frozen=True)
class Axis:
    """One matrix axis: its key and ``(label, value)`` pairs in order."""

    key: str
    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class JobSpec:
    """One expanded job.

    Attributes
    ----------
    name : str
        Directory name under ``jobs/``, e.g. ``PEO_LiPF6-ECDMC_298.15K_r0``.
    labels : dict of str to str
        Matrix axis to the label of this job's value.
    values : dict of str to Any
        Matrix axis to the value (recipe, polymer name or None, temperature, replica index).
    chemistry : str
        The name without the replica part: jobs with the same chemistry are replicas.
    pipeline : PipelineSpec
        Resolved: the protocol is stored as a mapping, so the job needs no other file.
    seed : int
    """

    name: str
    labels: dict
    values: dict
    chemistry: str
    pipeline: PipelineSpec
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """``job.json`` content."""
        return {"name": self.name, "chemistry": self.chemistry, "labels": self.labels, "values": self.values,
                "seed": self.seed, "spec": self.pipeline.to_dict(), "spec_sha256": self.pipeline.fingerprint()}


@dataclass(frozen=True)
class CampaignSpec:
    """A validated campaign file."""

    name: str
    description: str
    directory: str | None
    system: dict
    axes: tuple[Axis, ...]
    seed: int
    protocol: str | dict
    protocol_set: tuple[str, ...]
    analyses: dict
    platform: dict
    executor: str
    resources: dict
    source: Path | None
    raw: dict

    @classmethod
    def load(cls, path_or_name: str | Path) -> CampaignSpec:
        """Read a campaign YAML file (or a shipped one by name, e.g. ``tiny-campaign``)."""
        path = Path(path_or_name)
        if not path.is_file():
            from aseimd.resources import data_dir

            shipped = data_dir("workflows") / f"{path_or_name}.yaml"
            if path.suffix in (".yaml", ".yml") or not shipped.is_file():
                raise SpecError(f"campaign file {str(path_or_name)!r} does not exist")
            path = shipped
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise SpecError(f"campaign file {str(path)!r} is not valid YAML: {' '.join(str(exc).split())}") from None
        return cls.from_dict(data, source=path)

    @classmethod
    def from_dict(cls, data: Any, source: Path | None = None) -> CampaignSpec:
        """Validate a campaign mapping."""
        if not isinstance(data, Mapping):
            raise SpecError("a campaign file must hold a mapping of keys")
        _reject("campaign", data, CAMPAIGN_KEYS)
        name = data.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SpecError(f"campaign name {name!r} must be letters, digits, '.', '_', '+', '-'")
        system = data.get("system")
        if not isinstance(system, Mapping):
            raise SpecError("campaign: 'system' must be a mapping (kind: electrolyte or interface, ...)")
        kind = system.get("kind", "electrolyte")
        matrix = data.get("matrix")
        axes = _axes({} if matrix is None else matrix, kind)
        executor = data.get("executor", "local")
        if executor not in EXECUTORS:
            raise SpecError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
        resources = _resources(data.get("resources") or {})
        platform = _platform(data.get("platform") or {})
        protocol = data.get("protocol", "default")
        if not isinstance(protocol, str | Mapping):
            raise SpecError(f"campaign: protocol must be a shipped name, a YAML path or a mapping, got {protocol!r}")
        if isinstance(protocol, Mapping):
            protocol = copy.deepcopy(dict(protocol))
        elif source is not None and Path(protocol).suffix in (".yaml", ".yml") and not Path(protocol).is_absolute():
            protocol = str((source.parent / protocol).resolve())
        sets = data.get("set") or []
        if isinstance(sets, str) or not all(isinstance(s, str) for s in sets):
            raise SpecError(f"campaign: 'set' must be a list of 'key=value' strings, got {sets!r}")
        directory = data.get("directory")
        if directory is not None and (not isinstance(directory, str) or not directory.strip()):
            raise SpecError(f"campaign: directory must be a folder path (a string), got {directory!r}")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise SpecError(f"campaign: seed must be a non-negative integer, got {seed!r}")
        return cls(name=name, description=str(data.get("description") or ""), directory=data.get("directory"),
                   system=dict(system), axes=axes, seed=seed, protocol=protocol, protocol_set=tuple(sets),
                   analyses=validate_analyses(data.get("analyses", ["diffusion", "transference", "coordination"]),
                                              "campaign analyses"),
                   platform=platform, executor=executor, resources=resources, source=source,
                   raw=copy.deepcopy(dict(data)))

    def fingerprint(self) -> str:
        """SHA-256 of the campaign file's content (as parsed)."""
        return hashlib.sha256(canonical_json(self.raw).encode()).hexdigest()

    def directory_path(self, override: str | Path | None = None) -> Path:
        """The campaign directory: ``override``, else ``directory:``, else ``./<name>`` (relative to the cwd)."""
        return Path(override or self.directory or self.name)

    def jobs(self) -> list[JobSpec]:
        """Expand the matrix into jobs (Cartesian product in axis order), validating each job's spec."""
        base = _protocol(self.protocol, self.protocol_set)  # bad overrides fail here, once
        jobs, seen = [], {}
        for combo in itertools.product(*[axis.items for axis in self.axes]):
            labels = {axis.key: label for axis, (label, _) in zip(self.axes, combo, strict=True)}
            values = {axis.key: value for axis, (_, value) in zip(self.axes, combo, strict=True)}
            replica = values.get("replicas", 0)
            system = self._system_for(values, self.seed + replica)
            overrides = [f"seed={base.seed + replica}"]
            if "temperature_K" in values:
                overrides.append(f"temperature_K={values['temperature_K']}")
            protocol = _protocol(self.protocol, [*self.protocol_set, *overrides]).to_dict()
            pipeline = PipelineSpec.from_dict({
                "system": system, "protocol": protocol, "analyses": self.analyses,
                "platform": self.platform["name"], "threads": self.platform["threads"],
                "deterministic": self.platform["deterministic"],
            }, where="campaign job")
            parts = [labels[k] for k in MATRIX_KEYS if k in labels and k != "replicas"]
            chemistry = "_".join(parts) or "job"
            name = "_".join([*parts, *([f"r{replica}"] if "replicas" in labels else [])]) or "job"
            if name in seen:
                raise SpecError(f"matrix gives two jobs the name {name!r} ({seen[name]} and {values}); "
                                f"give the electrolytes labels: electrolyte: {{LABEL: RECIPE, ...}}")
            seen[name] = values
            jobs.append(JobSpec(name, labels, values, chemistry, pipeline, self.seed + replica))
        from aseimd.build.recipe import parse_recipe

        for job in jobs:  # a misspelt recipe or interface key fails here, before anything is submitted
            system = job.pipeline.system
            if system["kind"] == "interface":
                validate_interface(system)
                parse_recipe((system.get("electrolyte") or {}).get("recipe") or "")
            else:
                parse_recipe(system["recipe"])
        return jobs

    def _system_for(self, values: Mapping[str, Any], seed: int) -> dict:
        system = copy.deepcopy(self.system)
        kind = system.get("kind", "electrolyte")
        system["seed"] = seed
        if kind == "interface":
            if "polymer" in values:
                name = values["polymer"]
                system["polymer"] = None if name is None else {**(system.get("polymer") or {}), "name": name}
            if "electrolyte" in values:
                system["electrolyte"] = {**(system.get("electrolyte") or {}), "recipe": values["electrolyte"]}
            if "temperature_K" in values:  # the builder's density estimate at the run temperature
                system["temperature_K"] = values["temperature_K"]
        elif "electrolyte" in values:
            system["recipe"] = values["electrolyte"]
        return validate_system(system, "campaign system")


def _protocol(protocol: str | dict, overrides: list[str] | tuple[str, ...]):
    """A :class:`~aseimd.simulate.protocol.Protocol` from a name, a path or an inline mapping."""
    from aseimd.simulate.protocol import Protocol, apply_overrides

    if isinstance(protocol, Mapping):
        return Protocol.from_dict(apply_overrides(protocol, list(overrides)))
    return Protocol.load(protocol, list(overrides))


def _reject(where: str, data: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where} must be a mapping of keys, got {data!r}")
    for key in data:
        if key not in allowed:
            raise SpecError(f"{where}: unknown key {key!r}; allowed: {', '.join(allowed)}")


def slug(text: str) -> str:
    """A readable label from free text: ``"1.0 M LiPF6 in EC:DMC 1:1 v/v"`` -> ``"1.0M-LiPF6-in-EC-DMC-1-1-v-v"``."""
    text = re.sub(r"(\d)\s+(M|m)\b", r"\1\2", text.strip())
    return re.sub(r"[^A-Za-z0-9.+]+", "-", text).strip("-.") or "x"


def _label(where: str, label: Any) -> str:
    label = str(label)
    if not LABEL_RE.match(label):
        raise SpecError(f"{where} label {label!r} must be letters, digits, '.', '+', '-' (no spaces or '_')")
    return label


def _axes(matrix: Any, kind: str) -> tuple[Axis, ...]:
    if not isinstance(matrix, Mapping):
        raise SpecError(f"campaign matrix must be a mapping of axes ({', '.join(MATRIX_KEYS)}), got {matrix!r}")
    for key in matrix:
        if key not in MATRIX_KEYS:
            raise SpecError(f"unknown matrix key {key!r}; allowed: {', '.join(MATRIX_KEYS)}")
    axes = []
    for key in MATRIX_KEYS:
        if key not in matrix:
            continue
        value = matrix[key]
        if key == "replicas":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"matrix replicas must be a positive integer, got {value!r}")
            axes.append(Axis(key, tuple((f"r{r}", r) for r in range(value))))
            continue
        if key == "polymer" and kind != "interface":
            raise SpecError("matrix key 'polymer' needs system kind: interface (a bulk electrolyte has no coating)")
        if isinstance(value, Mapping):
            items = tuple((_label(f"matrix {key}", k), v) for k, v in value.items())
        elif isinstance(value, list):
            items = tuple((_auto_label(key, v), v) for v in value)
        else:
            raise SpecError(f"matrix {key} must be a list or a mapping of LABEL: value, got {value!r}")
        if not items:
            raise SpecError(f"matrix {key} is empty")
        for label, v in items:
            _check_value(key, v)
        if len({label for label, _ in items}) != len(items):
            raise SpecError(f"matrix {key} has repeated values/labels: {[label for label, _ in items]}")
        axes.append(Axis(key, items))
    return tuple(axes)


def _auto_label(key: str, value: Any) -> str:
    if key == "polymer":
        return "bare" if value is None else _label("matrix polymer", value)
    if key == "temperature_K":
        return f"{value:g}K" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
    return slug(str(value))


def _check_value(key: str, value: Any) -> None:
    if key == "temperature_K":
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise SpecError(f"matrix temperature_K value {value!r} must be a positive number (K)")
    elif key == "electrolyte":
        if not isinstance(value, str) or not value.strip():
            raise SpecError(f"matrix electrolyte value {value!r} must be a recipe string")
    elif key == "polymer" and value is not None and not isinstance(value, str):
        raise SpecError(f"matrix polymer value {value!r} must be a polymer name or null (bare Li)")


def _resources(data: Any) -> dict:
    _reject("campaign resources", data, tuple(RESOURCE_DEFAULTS))
    out = RESOURCE_DEFAULTS | dict(data)
    for key in ("max_parallel", "cpus_per_task", "max_restarts", "max_no_progress"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise SpecError(f"resources {key} must be a positive integer, got {out[key]!r}")
    for key in ("gpus_per_job", "signal_s", "reserve_s"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 0:
            raise SpecError(f"resources {key} must be a non-negative integer, got {out[key]!r}")
    for key in ("mem", "time", "partition", "account", "qos"):
        if out[key] is not None:
            out[key] = _option_value(key, out[key])
    extra = out["extra"]
    if isinstance(extra, str) or not isinstance(extra, list):
        raise SpecError(f"resources extra must be a list of sbatch options (one per item), got {extra!r}")
    out["extra"] = [_option_value("extra", e) for e in extra]
    for e in out["extra"]:
        if not e.startswith("--"):
            raise SpecError(f"resources extra item {e!r} must be a long sbatch option such as '--qos=high'")
    if out["time"] is not None:
        limit_s = slurm_time_limit_s(out["time"])
        if limit_s is not None and out["reserve_s"] >= limit_s:
            raise SpecError(f"resources reserve_s {out['reserve_s']} must be shorter than the walltime "
                            f"{out['time']!r} ({limit_s:g} s): every session would stop before it starts")
    return out


#: sbatch ``--time`` forms: minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes,
#: days-hours:minutes:seconds (``man sbatch``).
_SLURM_TIME_RE = re.compile(r"^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$")


def slurm_time_limit_s(text: str) -> float | None:
    """Seconds of an sbatch ``--time`` value (``None`` for ``UNLIMITED``/``INFINITE``).

    Raises
    ------
    SpecError
        Not one of sbatch's forms.

    Examples
    --------
    >>> [slurm_time_limit_s(t) for t in ("90", "90:30", "24:00:00", "1-12", "2-00:30:00")]
    [5400.0, 5430.0, 86400.0, 129600.0, 174600.0]
    """
    t = str(text).strip()
    if t.upper() in ("UNLIMITED", "INFINITE"):
        return None
    m = _SLURM_TIME_RE.match(t)
    if m is None:
        raise SpecError(f"resources time {text!r} is not a Slurm time limit; allowed forms: MM, MM:SS, HH:MM:SS, "
                        f"D-HH, D-HH:MM, D-HH:MM:SS (e.g. '24:00:00')")
    d, dh, dm, ds, a, b, c = (int(x) if x is not None else None for x in m.groups())
    if d is not None:
        return float(((d * 24 + dh) * 60 + (dm or 0)) * 60 + (ds or 0))
    if c is not None:  # hours:minutes:seconds
        return float((a * 60 + b) * 60 + c)
    return float(a * 60 + (b or 0))  # minutes[:seconds]


def _option_value(key: str, value: Any) -> str:
    """A resource value as one argument: any text but no control characters (no newlines)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f"resources {key} must be a string, got {value!r}")
    text = str(value)
    if not text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise SpecError(f"resources {key} {text!r} must be non-empty and hold no control characters or newlines")
    return text


def _platform(data: Any) -> dict:
    if isinstance(data, str):
        data = {"name": data}
    _reject("campaign platform", data, PLATFORM_KEYS)
    out = {"name": "auto", "threads": None, "deterministic": False} | dict(data)
    if not isinstance(out["deterministic"], bool):
        raise SpecError(f"campaign platform deterministic must be true or false, got {out['deterministic']!r}")
    from aseimd.simulate.platform import PLATFORM_NAMES

    allowed = ("auto", *PLATFORM_NAMES)
    if out["name"] not in allowed:
        raise SpecError(f"campaign platform name {out['name']!r} not allowed; allowed: {', '.join(allowed)}")
    return out
