"""One pipeline: build -> run -> analyse one spec, idempotent and resumable from files alone.

``aseimd quickstart`` and every campaign job call :func:`run_pipeline`. A job
directory holds::

    system/     system.pdb, system.xml, build.json     (the builder)
    run/        trajectory.dcd, thermo.csv, checkpoint.chk, state.xml, run.json
    analysis/   <analysis>.json + its CSV and PNG       (one set per analysis)

Each step looks at the files first: a system directory with ``build.json`` is
reused, the runner resumes from ``run/checkpoint.chk`` (or does nothing when
``run.json`` says finished), and an analysis whose JSON exists is kept. So the
same call after any interruption -- a kill, a walltime, a requeue onto another
machine -- continues where the files say it stopped, with no state kept
anywhere else. Every file is written atomically (:mod:`aseimd.fileio`), so an
interruption at any moment leaves either the old or the new file.

A spec's system is either a bulk electrolyte (``kind: electrolyte``, a recipe
and a size) or an interface cell (``kind: interface``: ``slab``, ``polymer``,
``electrolyte``, ... as read by ``aseimd.build.spec.load_interface_spec``).

The analyses are called through the small adapter at the end of this module
(``_ANALYSES``): each planner makes the analysis objects of :mod:`aseimd.analysis`
for a spec entry, all of them run over one read of the trajectory
(:func:`aseimd.analysis.run_analyses`), and each writes the same JSON, CSV and
PNG files as the ``aseimd analyze`` command. ``coordination`` with ``layers:
build`` also writes ``coordination_<layer>.json`` (+ ``_rdf.csv``, ``_rdf.png``)
per mobile layer of an interface cell: the Li+ (centre) atoms in that layer's z
range (:func:`layer_windows_nm`), cut-offs from the whole cell's g(r).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aseimd.errors import SpecError

#: Names of the analyses a spec can ask for, in the order they run.
ANALYSES = ("diffusion", "transference", "coordination", "solvent_cn", "profile")
#: System kinds.
SYSTEM_KINDS = ("electrolyte", "interface")
#: Keys of an electrolyte system and their defaults (``None``: not set).
ELECTROLYTE_KEYS: dict[str, Any] = {
    "kind": "electrolyte", "recipe": None, "n_solvent": None, "box_edge_nm": None, "seed": 0,
    "charge_scale": 0.8, "cutoff_nm": 1.0, "packmol_timeout_s": 300.0,
}
#: Top-level keys of an interface system when the interface builder is not installed (when it is,
#: ``aseimd.build.spec.load_interface_spec`` validates the keys and their content).
INTERFACE_KEYS = ("kind", "name", "slab", "polymer", "electrolyte", "cutoff_nm", "charge_scale", "seed", "gap_nm",
                  "lj_long_range_correction", "temperature_K", "packmol_timeout_s")
#: Interface system keys that are build options, not part of the interface spec.
INTERFACE_BUILD_OPTIONS = ("kind", "packmol_timeout_s")
#: Solvent molecules when an electrolyte spec gives neither ``n_solvent`` nor ``box_edge_nm``.
DEFAULT_N_SOLVENT = 500
#: Options each analysis accepts in a spec (``analyses: {diffusion: {com: true}}``).
ANALYSIS_OPTIONS: dict[str, tuple[str, ...]] = {
    "diffusion": ("groups", "com", "dims", "drift", "z_layers", "layer_edges_nm", "method"),
    "transference": ("cation", "anion", "method"),
    "coordination": ("center", "shells", "anion", "residence", "cutoffs_nm", "layers"),
    "solvent_cn": ("residence",),
    "profile": ("groups", "axis", "bin_nm"),
}

Echo = Callable[[str, str], None]


def _quiet(text: str, kind: str = "info") -> None:
    """Default ``echo``: say nothing."""


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys: the text fingerprints are computed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class PipelineSpec:
    """What one pipeline run builds, runs and analyses.

    Parameters
    ----------
    system : dict
        ``{"kind": "electrolyte", "recipe": ..., ...}`` (keys :data:`ELECTROLYTE_KEYS`)
        or ``{"kind": "interface", "slab": ..., "polymer": ..., "electrolyte": ...}``.
    protocol : str or dict
        Shipped protocol name, a YAML path, or a protocol as a mapping
        (``Protocol.to_dict()``; campaign jobs store it resolved).
    overrides : tuple of str
        ``key=value`` protocol settings (as ``aseimd run --set``).
    analyses : dict of str to dict
        Analysis name (:data:`ANALYSES`) to its options (:data:`ANALYSIS_OPTIONS`);
        groups left out are chosen from the species table.
    platform : str
        ``auto``, ``CUDA``, ``OpenCL``, ``CPU`` or ``Reference``.
    threads : int, optional
        CPU platform threads.
    deterministic : bool
        Deterministic forces (bit-exact resume on CPU with one thread).
    """

    system: dict
    protocol: str | dict = "default"
    overrides: tuple[str, ...] = ()
    analyses: dict = field(default_factory=dict)
    platform: str = "auto"
    threads: int | None = None
    deterministic: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "spec") -> PipelineSpec:
        """Validate a mapping (as in ``job.json``); unknown keys raise :class:`SpecError`."""
        allowed = ("system", "protocol", "overrides", "analyses", "platform", "threads", "deterministic")
        _reject_unknown(where, data, allowed)
        if "system" not in data:
            raise SpecError(f"{where}: 'system' is missing")
        overrides = data.get("overrides") or ()
        if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
            raise SpecError(f"{where}: overrides must be a list of 'key=value' strings, got {overrides!r}")
        threads = data.get("threads")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise SpecError(f"{where}: threads must be a positive integer or null, got {threads!r}")
        deterministic = data.get("deterministic", False)
        if not isinstance(deterministic, bool):
            raise SpecError(f"{where}: deterministic must be true or false, got {deterministic!r}")
        protocol = data.get("protocol", "default")
        if not isinstance(protocol, str | dict):
            raise SpecError(f"{where}: protocol must be a name, a path or a mapping, got {protocol!r}")
        return cls(
            system=validate_system(data["system"], f"{where} system"),
            protocol=protocol,
            overrides=tuple(overrides),
            analyses=validate_analyses(data.get("analyses", {}), f"{where} analyses"),
            platform=str(data.get("platform", "auto")),
            threads=threads,
            deterministic=deterministic,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (JSON-ready); ``from_dict(to_dict())`` gives the same spec."""
        return {
            "system": self.system, "protocol": self.protocol, "overrides": list(self.overrides),
            "analyses": self.analyses, "platform": self.platform, "threads": self.threads,
            "deterministic": self.deterministic,
        }

    def fingerprint(self) -> str:
        """SHA-256 of what determines the results (system, protocol, analyses; not the platform)."""
        science = {k: v for k, v in self.to_dict().items() if k in ("system", "protocol", "overrides", "analyses")}
        return hashlib.sha256(canonical_json(science).encode()).hexdigest()


def _reject_unknown(where: str, data: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise SpecError(f"{where} must be a mapping of keys, got {data!r}")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")


def validate_system(data: Any, where: str = "system") -> dict:
    """Check a system mapping and fill in defaults.

    Raises
    ------
    SpecError
        Unknown kind or key, a missing recipe, both sizes; for interfaces whatever
        ``load_interface_spec`` rejects (when the interface builder is installed).
    """
    if not isinstance(data, Mapping):
        raise SpecError(f"{where} must be a mapping, got {data!r}")
    kind = data.get("kind", "electrolyte")
    if kind not in SYSTEM_KINDS:
        raise SpecError(f"{where}: kind {kind!r} not allowed; allowed: {', '.join(SYSTEM_KINDS)}")
    if kind == "interface":
        if not _interface_builder():
            _reject_unknown(where, data, INTERFACE_KEYS)
        for key in ("slab", "electrolyte"):
            if key not in data:
                raise SpecError(f"{where}: interface systems need {key!r}")
        out = {"kind": "interface", **{k: v for k, v in data.items() if k != "kind"}}
        validate_interface(out)
        return out
    _reject_unknown(where, data, tuple(ELECTROLYTE_KEYS))
    out = ELECTROLYTE_KEYS | dict(data)
    out["kind"] = "electrolyte"
    if not isinstance(out["recipe"], str) or not out["recipe"].strip():
        raise SpecError(f"{where}: 'recipe' must be a recipe string such as '1.0 M LiPF6 in EC:DMC 1:1 v/v'")
    if out["n_solvent"] is not None and out["box_edge_nm"] is not None:
        raise SpecError(f"{where}: give n_solvent or box_edge_nm, not both")
    if out["n_solvent"] is None and out["box_edge_nm"] is None:
        out["n_solvent"] = DEFAULT_N_SOLVENT
    _preflight_electrolyte(out, where)
    return out


def _preflight_electrolyte(system: dict, where: str) -> None:
    """What the electrolyte builder checks before it packs (:func:`aseimd.build.composition.plan_electrolyte`),
    plus the charge scale and Packmol's time limit, at validation: a campaign with a bad value fails before
    anything is submitted."""
    from aseimd.build.composition import plan_electrolyte
    from aseimd.errors import BuildError

    scale, timeout = system["charge_scale"], system["packmol_timeout_s"]
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale <= 1:
        raise SpecError(f"{where}: charge_scale must be in (0, 1], got {scale!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise SpecError(f"{where}: packmol_timeout_s must be a positive number of seconds, got {timeout!r}")
    try:
        plan_electrolyte(system["recipe"], n_solvent=system["n_solvent"], box_edge_nm=system["box_edge_nm"],
                         seed=system["seed"], cutoff_nm=system["cutoff_nm"])
    except (SpecError, BuildError) as exc:
        raise SpecError(f"{where}: {exc}") from None


def validate_analyses(data: Any, where: str = "analyses") -> dict:
    """``[name, ...]`` or ``{name: {options}}`` -> ``{name: {options}}`` in :data:`ANALYSES` order."""
    if data is None:
        return {}
    if isinstance(data, list | tuple):
        data = {name: {} for name in data}
    if not isinstance(data, Mapping):
        raise SpecError(f"{where} must be a list of names or a mapping, got {data!r}")
    out = {}
    for name, options in data.items():
        if name not in ANALYSES:
            raise SpecError(f"{where}: unknown analysis {name!r}; allowed: {', '.join(ANALYSES)}")
        options = {} if options is None else options
        _reject_unknown(f"{where} {name}", options, ANALYSIS_OPTIONS[name])
        if name == "transference":
            for key in ("cation", "anion"):
                try:
                    _pair(options.get(key), None)
                except SpecError as exc:
                    raise SpecError(f"{where} transference: {exc}") from None
        out[name] = dict(options)
    return {name: out[name] for name in ANALYSES if name in out}


# ---------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class PipelineResult:
    """What :func:`run_pipeline` did.

    Attributes
    ----------
    job_dir : pathlib.Path
    built : bool
        This call built the system (``False``: reused).
    run : aseimd.simulate.runner.RunResult
    analyses : dict of str to pathlib.Path
        Analysis name to its JSON (computed now or kept).
    computed : tuple of str
        Analyses computed by this call.
    """

    job_dir: Path
    built: bool
    run: Any
    analyses: dict[str, Path]
    computed: tuple[str, ...]


def job_paths(job_dir: str | Path) -> tuple[Path, Path, Path]:
    """``(system_dir, run_dir, analysis_dir)`` of a job directory."""
    job_dir = Path(job_dir)
    return job_dir / "system", job_dir / "run", job_dir / "analysis"


def run_pipeline(spec: PipelineSpec, job_dir: str | Path, *, force: bool = False, progress: bool = True,
                 echo: Echo = _quiet, stream: TextIO | None = None,
                 on_stage: Callable[[str], None] | None = None,
                 titles: Mapping[str, str] | None = None) -> PipelineResult:
    """Build, run and analyse ``spec`` in ``job_dir``; every step skips what its files say is done.

    Parameters
    ----------
    spec : PipelineSpec
    job_dir : str or pathlib.Path
        Gets ``system/``, ``run/`` and ``analysis/``.
    force : bool
        Rebuild, rerun and reanalyse (replacing only what aseimd wrote).
    progress : bool
        The runner's progress line (to ``stream``).
    echo : callable(text, kind)
        Receives the lines a person reads; ``kind`` is ``"step"``, ``"info"`` or ``"warning"``.
    stream : file-like, optional
        The runner's progress and notes (default stderr).
    on_stage : callable(str), optional
        Called with ``"build"``, ``"run"``, ``"analyse"`` as each step starts.
    titles : dict of str to str, optional
        Analysis name to the text of its step line (default :data:`ANALYSIS_TITLES`).

    Returns
    -------
    PipelineResult
    """
    system_dir, run_dir, analysis_dir = job_paths(job_dir)
    n_steps = 2 + len(spec.analyses)
    stage = on_stage or (lambda name: None)

    stage("build")
    echo(f"[1/{n_steps}] build {describe_system(spec.system)} -> {system_dir}", "step")
    built = build_system(spec.system, system_dir, force=force, echo=echo)

    stage("run")
    echo(f"[2/{n_steps}] run protocol {protocol_label(spec.protocol)!r} on platform {spec.platform} -> {run_dir}",
         "step")
    result = run_system(spec, system_dir, run_dir, force=force, progress=progress, stream=stream)
    if result.status == "already finished":
        echo(f"run in {result.run_dir} already finished ({result.steps_done} steps); nothing to do", "info")
    else:
        rate = f", {result.ns_per_day:.2f} ns/day" if result.ns_per_day else ""
        resumed = f" (resumed from step {result.resumed_from_step})" if result.resumed_from_step is not None else ""
        echo(f"finished {result.steps_done} steps on {result.platform}{resumed}{rate}; "
             f"{result.n_frames} frames in {result.run_dir}/trajectory.dcd", "info")

    stage("analyse")
    temperature_K = run_temperature_K(run_dir)
    analysis_dir.mkdir(parents=True, exist_ok=True)
    outputs, computed = {}, []
    pending = [name for name in spec.analyses
               if force or not (analysis_dir / f"{name}.json").is_file()]
    plans: dict[str, tuple] = {}
    if pending:  # every analysis prepared (options checked) first, then one read of the trajectory for all
        from aseimd.analysis.engine import run_analyses

        t = _trajectory(system_dir, run_dir)
        for name in pending:
            lines: list = []
            analyses, write = _ANALYSES[name](t, system_dir, run_dir, analysis_dir / f"{name}.json",
                                              spec.analyses[name], temperature_K,
                                              lambda text, kind, lines=lines: lines.append((text, kind)))
            plans[name] = (analyses, write, lines)
        # One read for every analysis: the position collector unwraps atoms elementwise, so transport
        # analyses sharing it get bit for bit what `aseimd analyze` writes for each alone (tested)
        results = run_analyses(t, [a for n in pending for a in plans[n][0]])
        for n in pending:
            analyses, write, lines = plans[n]
            plans[n] = (results[:len(analyses)], write, lines)
            results = results[len(analyses):]
    for k, (name, options) in enumerate(spec.analyses.items(), start=3):
        json_path = analysis_dir / f"{name}.json"
        echo(f"[{k}/{n_steps}] {(titles or ANALYSIS_TITLES).get(name, ANALYSIS_TITLES[name])} -> {json_path}", "step")
        outputs[name] = json_path
        if name not in plans:
            echo(f"  {json_path} exists; kept (--force recomputes)", "info")
            continue
        own, write, lines = plans[name]
        for text, kind in lines:
            echo(text, kind)
        write(own, echo)
        computed.append(name)
    return PipelineResult(Path(job_dir), built, result, outputs, tuple(computed))


def describe_system(system: Mapping) -> str:
    """A short human description of a system spec."""
    if system["kind"] == "electrolyte":
        size = (f"{system['n_solvent']} solvent molecules" if system.get("n_solvent") is not None
                else f"{system['box_edge_nm']} nm box")
        return f"{system['recipe']!r} ({size})"
    polymer = system.get("polymer")
    coat = "bare Li" if not polymer else f"{polymer.get('name')} on Li"
    return f"interface {coat} | {(system.get('electrolyte') or {}).get('recipe')!r}"


def protocol_label(protocol: str | Mapping) -> str:
    """The protocol's name (a mapping's ``name``, or the name/path given)."""
    return str(protocol.get("name", "custom")) if isinstance(protocol, Mapping) else str(protocol)


def build_system(system: Mapping, system_dir: Path, *, force: bool = False, echo: Echo = _quiet) -> bool:
    """Build the system unless ``system_dir/build.json`` exists; returns whether it built.

    An existing system directory is reused only if it was built from this spec
    (``build.json``'s recipe and seed for electrolytes, its resolved ``spec`` for
    interfaces); otherwise :class:`SpecError`.
    """
    system_dir = Path(system_dir)
    if (system_dir / "build.json").is_file() and not force:
        _check_same_system(system, system_dir)
        echo(f"  {system_dir} exists; reusing it (--force rebuilds)", "info")
        return False
    from aseimd.fileio import check_new_output

    check_new_output(system_dir, force=force)
    if system["kind"] == "electrolyte":
        from aseimd.build.cell import write_system_dir
        from aseimd.build.electrolyte import build_electrolyte

        cell = build_electrolyte(system["recipe"], n_solvent=system["n_solvent"], box_edge_nm=system["box_edge_nm"],
                                 seed=system["seed"], packmol_timeout_s=system["packmol_timeout_s"])
        write_system_dir(cell, system_dir, charge_scale=system["charge_scale"], force=force,
                         cutoff_nm=system["cutoff_nm"])
        for line in electrolyte_summary(cell, system_dir):
            echo(line, "info")
    else:
        cell = _write_interface(system, system_dir, force)
        echo(f"Built {describe_system(system)} -> {system_dir} ({cell.n_atoms} atoms, box "
             f"{' x '.join(f'{b:.3f}' for b in cell.box_nm)} nm)", "info")
    return True


def _check_same_system(system: Mapping, system_dir: Path) -> None:
    info = json.loads((system_dir / "build.json").read_text())
    if system["kind"] == "interface":
        if not _interface_builder():
            return
        from aseimd.build.spec import load_interface_spec

        wanted = json.loads(canonical_json(load_interface_spec(_interface_mapping(system)).to_dict()))
        if info.get("builder") != "interface" or json.loads(canonical_json(info.get("spec"))) != wanted:
            raise SpecError(f"{str(system_dir)!r} holds a different system (not this interface spec); "
                            f"use another directory or pass --force")
        return
    recorded = ((info.get("recipe") or {}).get("requested"), info.get("seed"))
    if info.get("builder") != "electrolyte" or recorded != (system["recipe"], system["seed"]):
        raise SpecError(
            f"{str(system_dir)!r} holds a different system (recipe {recorded[0]!r}, seed {recorded[1]!r}); "
            f"use another directory or pass --force"
        )


def electrolyte_summary(cell, system_dir: Path) -> list[str]:
    """The lines ``aseimd build electrolyte`` prints about a built cell."""
    p = cell.provenance
    lines = [f"Built {p['recipe']['canonical']} -> {system_dir}",
             "  molecules: " + ", ".join(f"{name} {n}" for name, n in p["counts"].items())
             + f" ({cell.n_atoms} atoms)"]
    for s in p["salts"]:
        lines.append(f"  {s['salt']}: {s['requested']:g} {s['unit']} requested, "
                     f"{s['achieved']:.3f} {s['unit']} achieved ({s['ion_pairs']} ion pairs)")
    for a in p["additives"]:
        lines.append(f"  {a['species']}: {a['requested']:g} {a['unit']} requested, {a['achieved']:.2f} achieved")
    lines.append(f"  box: {cell.box_nm[0]:.3f} nm cube, packed at {100 * p['packing']['density_fraction']:.0f} % "
                 f"of the estimated density {p['estimated_density_g_per_cm3']:.3f} g/cm3 "
                 f"(expect ~{p['estimated_box_edge_nm']:.2f} nm after NPT)")
    return lines


def _interface_builder() -> bool:
    """Whether the interface builder (``aseimd.build.interface``, ``aseimd.build.spec``) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("aseimd.build.interface", "aseimd.build.spec"))


def _interface_mapping(system: Mapping) -> dict:
    return {k: v for k, v in system.items() if k not in INTERFACE_BUILD_OPTIONS}


def _write_interface(system: Mapping, system_dir: Path, force: bool):
    """Adapter to the interface builder: build the cell and write the system directory; returns the cell."""
    if not _interface_builder():
        raise SpecError("interface systems need aseimd.build.interface, which this installation lacks; "
                        "use kind: electrolyte")
    from aseimd.build.interface import write_interface_dir

    cell, _ = write_interface_dir(_interface_mapping(system), system_dir, force=force,
                                  packmol_timeout_s=float(system.get("packmol_timeout_s", 600.0)))
    return cell


def interface_system(source: str | Path | Mapping) -> dict:
    """An interface system mapping (``kind: interface``) from a ``systems/`` name, a YAML path or a mapping.

    The spec is loaded and validated by ``aseimd.build.spec.load_interface_spec``
    and returned with its defaults resolved (what goes into ``build.json``).

    Raises
    ------
    SpecError
        No interface builder installed; a missing file; a bad spec.
    """
    if not _interface_builder():
        raise SpecError("interface systems need aseimd.build.interface, which this installation lacks")
    from aseimd.build.spec import load_interface_spec

    data = source if isinstance(source, Mapping) else str(source)
    return {"kind": "interface", **load_interface_spec(data).to_dict()}


def validate_interface(system: Mapping) -> None:
    """Validate an interface system with the interface builder's own loader, when it is installed."""
    if _interface_builder():
        from aseimd.build.spec import load_interface_spec

        load_interface_spec(_interface_mapping(system))


def load_protocol(spec: PipelineSpec):
    """The :class:`~aseimd.simulate.protocol.Protocol` of a spec (overrides applied)."""
    from aseimd.simulate.protocol import Protocol

    if isinstance(spec.protocol, Mapping):
        from aseimd.simulate.protocol import apply_overrides

        return Protocol.from_dict(apply_overrides(spec.protocol, spec.overrides))
    return Protocol.load(spec.protocol, spec.overrides)


def run_system(spec: PipelineSpec, system_dir: Path, run_dir: Path, *, force: bool = False, progress: bool = True,
               stream: TextIO | None = None):
    """Run (or resume, or find finished) the protocol of ``spec``; returns the runner's ``RunResult``."""
    from aseimd.simulate.runner import run_protocol

    protocol = load_protocol(spec) if isinstance(spec.protocol, Mapping) else spec.protocol
    overrides = () if isinstance(spec.protocol, Mapping) else spec.overrides
    return run_protocol(system_dir, run_dir, protocol, spec.platform, force=force, progress=progress,
                        threads=spec.threads, deterministic=spec.deterministic, overrides=overrides,
                        stream=stream if stream is not None else sys.stderr)


def run_temperature_K(run_dir: Path) -> float:
    """The protocol temperature recorded in ``run.json``, in K."""
    info = json.loads((Path(run_dir) / "run.json").read_text())
    return float(info["protocol"]["temperature_K"])


def run_progress(run_dir: Path) -> tuple[int, int, str | None]:
    """``(steps_done, total_steps, status)`` from ``run.json``; ``(0, 0, None)`` before the run starts."""
    path = Path(run_dir) / "run.json"
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0, 0, None
    return int(info.get("steps_done") or 0), int(info.get("total_steps") or 0), info.get("status")


# ---------------------------------------------------------------------------- analysis adapter
#
# Each planner below makes the analysis objects of aseimd.analysis for one spec
# entry and a writer of the files the `aseimd analyze` command writes (same JSON
# documents, CSV columns and plots); run_pipeline runs every planned analysis
# over one read of the trajectory.

ANALYSIS_TITLES = {
    "diffusion": "self-diffusion (residue centres of mass)",
    "transference": "transference numbers and conductivity (Onsager and Nernst-Einstein)",
    "coordination": "Li+ coordination by carbonyl O and the anion",
    "solvent_cn": "solvent-CN coordination (nitrile-carbonate binding, Li+ shell)",
    "profile": "number and charge density profiles along z",
}


def _trajectory(system_dir: Path, run_dir: Path):
    from aseimd.analysis.trajectory import Trajectory

    return Trajectory(str(system_dir / "system.pdb"), str(run_dir / "trajectory.dcd"))


def _siblings(json_path: Path, curve: str, exts=(".csv", ".png")) -> list[Path]:
    return [json_path.with_name(f"{json_path.stem}_{curve}{ext}") for ext in exts]


def _residues_present(traj) -> list:
    """Species of the residues in the topology, in species-table order."""
    from aseimd.species import all_species

    present = set(traj.atoms.residue_names)  # the light atom table: no mdtraj topology is loaded for this
    return [sp for sp in all_species() if sp.residue in present]


def default_diffusion_groups(traj) -> dict[str, str]:
    """Every ion and solvent species present: ``{name: "resname RES"}``."""
    return {sp.name: f"resname {sp.residue}" for sp in _residues_present(traj) if sp.kind in ("cation", "anion",
                                                                                            "solvent")}


def default_ion_pair(traj) -> tuple[tuple[str, str], tuple[str, str]]:
    """``((cation label, selection), (anion label, selection))``: Li+ and the first anion present."""
    species = _residues_present(traj)
    cations = [sp for sp in species if sp.kind == "cation"]
    anions = [sp for sp in species if sp.kind == "anion"]
    if not cations or not anions:
        from aseimd.errors import AnalysisError

        raise AnalysisError("transference needs a cation and an anion residue of the species table; "
                            "give analyses.transference.cation/anion as [LABEL, SELECTION]")
    return ((cations[0].name, f"resname {cations[0].residue}"), (anions[0].name, f"resname {anions[0].residue}"))


def _pair(value, default) -> tuple[str, str]:
    if value is None:
        return default
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), str(value[1])
    raise SpecError(f"transference cation/anion must be [LABEL, SELECTION], got {value!r}")


def _echo_warnings(warnings, echo: Echo, prefix: str = "Warning: ") -> None:
    for warning in warnings:
        echo(f"{prefix}{warning}", "warning")


def build_layer_edges_nm(system_dir: Path, run_dir: Path) -> tuple[list[float], list[str]]:
    """Layer edges along z of an interface cell, from the ``layers`` block of ``build.json``.

    One layer per mobile layer of the stack (every layer after the slab): its
    edges are the midpoints of the gaps between neighbouring layers (the last
    one: midway to the slab's periodic image). The built z values are scaled by
    ``c(production box) / c(built box)`` (from ``run.json``; the z-only barostat
    scales molecule centres the same way), an approximation when the layers
    relax unevenly.

    Returns
    -------
    edges_nm : list of float, length n_layers + 1, nm
    names : list of str, length n_layers
        ``build.json`` layer names (e.g. ``polymer_bottom``, ``electrolyte``).

    Raises
    ------
    AnalysisError
        ``build.json`` has no ``layers`` block with at least two layers.
    """
    from aseimd.errors import AnalysisError

    build = json.loads((Path(system_dir) / "build.json").read_text())
    layers = build.get("layers") or []
    if len(layers) < 2 or "box_nm" not in build:
        raise AnalysisError(f"layer_edges_nm: build: {system_dir}/build.json has no layers block of an interface "
                            "cell; give the edges in nm or z_layers")
    c_built = float(build["box_nm"][2])
    try:
        box = json.loads((Path(run_dir) / "run.json").read_text()).get("production_box_nm")
    except (FileNotFoundError, json.JSONDecodeError):
        box = None
    c_run = float(box[2]) if box else c_built  # production_box_nm: [a, b, c] edges
    scale = c_run / c_built
    z = [(float(layer["z_nm"][0]), float(layer["z_nm"][1])) for layer in layers]
    starts = [lo for lo, _ in z[1:]] + [z[0][0] + c_built]
    edges = [0.5 * (hi + nxt) * scale for (_, hi), nxt in zip(z, starts)]
    return edges, [str(layer["name"]) for layer in layers[1:]]


def layer_windows_nm(system_dir: Path, run_dir: Path) -> dict[str, tuple[float, float]]:
    """``{layer name: (z_lo_nm, z_hi_nm)}`` of the mobile layers of an interface cell (:func:`build_layer_edges_nm`)."""
    from aseimd.errors import AnalysisError

    path = Path(system_dir) / "build.json"
    if not path.is_file():
        raise AnalysisError(f"--layer needs {path} (the build.json of an interface cell next to the topology)")
    try:
        edges, names = build_layer_edges_nm(system_dir, run_dir)
    except AnalysisError:
        raise AnalysisError(f"{path} has no layers block of an interface cell; give --z-range-nm LO HI") from None
    return {name: (lo, hi) for name, lo, hi in zip(names, edges[:-1], edges[1:])}


def layer_window_nm(system_dir: Path, run_dir: Path, name: str) -> tuple[float, float]:
    """The z range in nm of layer ``name`` (one-line AnalysisError listing the valid names if unknown)."""
    from aseimd.errors import AnalysisError

    windows = layer_windows_nm(system_dir, run_dir)
    if name not in windows:
        raise AnalysisError(f"unknown layer {name!r}; layers of {Path(system_dir) / 'build.json'}: "
                            f"{', '.join(windows)}")
    return windows[name]


def _diffusion(t, system_dir, run_dir, json_path, options, temperature_K, echo):
    from aseimd.analysis.diffusion import DiffusionAnalysis

    groups = dict(options.get("groups") or default_diffusion_groups(t))
    edges, names = options.get("layer_edges_nm"), {}
    if edges == "build":
        edges, layer_names = build_layer_edges_nm(system_dir, run_dir)
        names = {(lo, hi): name for name, lo, hi in zip(layer_names, edges[:-1], edges[1:])}
        echo("layers (build.json, scaled to the production box): " + "; ".join(
            f"{name} {lo:.2f}-{hi:.2f} nm" for (lo, hi), name in names.items()), "info")
    analysis = DiffusionAnalysis(groups, com=bool(options.get("com", True)), dims=options.get("dims", "xyz"),
                                 drift=options.get("drift", "system"), z_layers=options.get("z_layers"),
                                 layer_edges_nm=edges, skip_empty_layers=bool(names),
                                 method=options.get("method", "gls"))

    def write(results, echo) -> None:
        from aseimd.fileio import atomic_write_csv, atomic_write_json
        from aseimd.report.figures import save_figure
        from aseimd.report.transport_plots import msd_figure

        report, = results
        csv, png = _siblings(json_path, "msd")
        headers, columns = report.tables()["msd"]
        save_figure(msd_figure(report.results, report.layers), png, force=True)
        atomic_write_csv(csv, headers, columns, force=True)
        atomic_write_json(json_path, {"meta": t.meta()} | report.to_json(), force=True)
        _echo_warnings(report.warnings, echo)
        for label, res in report.results.items():
            lo, hi = res.window.ps(res.dt_ps)
            echo(f"{label}: D = {res.D_m2_per_s:.4g} ± {res.D_stderr_m2_per_s:.2g} m^2/s "
                 f"(window {lo:g}-{hi:g} ps, slope {res.slope:.2f}, diffusive: {str(res.diffusive).lower()})", "info")
            for layer in report.layers.get(label, []):
                z0, z1 = layer.z_range_nm
                where = names.get((z0, z1), "layer")
                echo(f"  {where} z {z0:.2f}-{z1:.2f} nm ({layer.mean_occupancy:.1f} {label} on average): lateral "
                     f"D = {layer.result.D_m2_per_s:.4g} ± {layer.result.D_stderr_m2_per_s:.2g} m^2/s "
                     f"(diffusive: {str(layer.result.diffusive).lower()})", "info")
        echo(f"Wrote {json_path}, {csv.name}, {png.name}", "info")

    return [analysis], write


def _transference(t, system_dir, run_dir, json_path, options, temperature_K, echo):
    from aseimd.analysis.transference import TransferenceAnalysis

    default_cat, default_an = default_ion_pair(t) if not (options.get("cation") and options.get("anion")) else (
        None, None)
    cat, an = _pair(options.get("cation"), default_cat), _pair(options.get("anion"), default_an)
    analysis = TransferenceAnalysis(cat, an, temperature_K=temperature_K, method=options.get("method", "gls"))

    def write(results, echo) -> None:
        from aseimd.fileio import atomic_write_csv, atomic_write_json
        from aseimd.report.figures import save_figure
        from aseimd.report.transport_plots import onsager_figure

        report, = results
        res = report.result
        headers, columns = report.tables()["msd"]
        csv, png = _siblings(json_path, "msd")
        save_figure(onsager_figure(res, (cat[0], an[0])), png, force=True)
        atomic_write_csv(csv, headers, columns, force=True)
        atomic_write_json(json_path, {"meta": t.meta()} | report.to_json(), force=True)
        _echo_warnings(report.warnings, echo)
        v, s = res.values, res.stderr
        echo(f"t+ (Onsager) = {v['t_plus_onsager']:.3f} ± {s['t_plus_onsager']:.3f}; "
             f"t+ (NE) = {v['t_plus_ne']:.3f} ± {s['t_plus_ne']:.3f}", "info")
        echo(f"sigma_EH = {v['sigma_eh']:.4g} ± {s['sigma_eh']:.2g} S/m; "
             f"sigma_NE = {v['sigma_ne']:.4g} ± {s['sigma_ne']:.2g} S/m", "info")
        echo(f"Wrote {json_path}, {csv.name}, {png.name}", "info")

    return [analysis], write


def _write_coordination(result, t, mode: str, json_path: Path, residence: bool, echo: Echo) -> None:
    from aseimd.analysis.coordination_results import coordination_document
    from aseimd.fileio import atomic_write_csv, atomic_write_json
    from aseimd.report.structure_plots import plot_rdfs, plot_residence

    csv, png = _siblings(json_path, "rdf")
    tables = result.tables()
    headers, columns = tables.get("rdf") or result.rdf_table()
    atomic_write_csv(csv, headers, columns, force=True)
    plot_rdfs(result, png, force=True)
    if residence:
        rcsv, rpng = _siblings(json_path, "residence")
        headers, columns = tables.get("residence") or result.residence_table()
        atomic_write_csv(rcsv, headers, columns, force=True)
        plot_residence(result, rpng, force=True)
    atomic_write_json(json_path, coordination_document(result, t, mode), force=True)
    for key, p in result.pairs.items():
        if p.cutoff_nm is None:
            echo(f"{key}: no cut-off (see warnings)", "info")
        else:
            echo(f"{key}: cn {p.cn:.3f} +- {p.cn_stderr:.3f} atoms, {p.cn_molecules:.3f} molecules "
                 f"within {p.cutoff_nm:.3f} nm ({p.cutoff_note})", "info")
    if result.solvent_cn:
        s = result.solvent_cn
        echo(f"carbonate bound to nitrile: {s['carbonate_bound_fraction']:.3f}, "
             f"nitrile-carbonyl CN {s['nitrile_carbonyl_cn']:.3f}", "info")
    _echo_warnings(result.warnings, echo, prefix="warning: ")
    echo("wrote " + ", ".join([str(json_path), csv.name, png.name]), "info")


def layer_coordination_table(whole, layers: Mapping[str, Any]) -> list[str]:
    """Lines comparing Li+ coordination per shell label: whole cell and each layer, with (centre, frame) pairs."""
    keys = list(whole.pairs)
    width = max(len(k) for k in keys)
    lines = [f"{'':<{width}}  " + "  ".join(f"{name:>22}" for name in ["whole cell", *layers])]
    pairs_cell = whole.n_frames * next(iter(whole.pairs.values())).n_center_atoms
    counts = [f"{pairs_cell} pairs", *(f"{r.window['n_center_frames']} pairs" for r in layers.values())]
    lines.append(f"{'':<{width}}  " + "  ".join(f"{c:>22}" for c in counts))
    for key in keys:
        cells = []
        for r in [whole, *layers.values()]:
            p = r.pairs[key]
            cells.append("no cut-off" if p.cutoff_nm is None else
                         ("no Li+" if not math.isfinite(p.cn) else f"{p.cn:.2f} ± {p.cn_stderr:.2f}"))
        lines.append(f"{key:<{width}}  " + "  ".join(f"{c:>22}" for c in cells))
    return lines


def _coordination(t, system_dir, run_dir, json_path, options, temperature_K, echo):
    from aseimd.analysis.coordination import CoordinationAnalysis, default_electrolyte_groups

    center, shells, anion = dict(options.get("center") or {}), dict(options.get("shells") or {}), options.get("anion")
    if not center or not shells:
        d_center, d_shells, d_anion = default_electrolyte_groups(t.topology)
        if not shells and anion is None:
            anion = d_anion
        center, shells = center or d_center, shells or d_shells
        echo("groups: " + "; ".join(f"{k}={v}" for k, v in {**center, **shells}.items()), "info")
    residence = bool(options.get("residence", False))
    whole = CoordinationAnalysis(center, shells, anion=anion, residence=residence,
                                 cutoffs_nm=dict(options.get("cutoffs_nm") or {}) or None)
    analyses, windows = [whole], {}
    if options.get("layers"):
        if options["layers"] != "build":
            raise SpecError(f"coordination layers must be 'build' (the layers of build.json), "
                            f"got {options['layers']!r}")
        windows = layer_windows_nm(system_dir, run_dir)
        echo("coordination per layer (centre Li+ in the layer, cut-offs from the whole cell): " + "; ".join(
            f"{name} {lo:.2f}-{hi:.2f} nm" for name, (lo, hi) in windows.items()), "info")
        for name, z in windows.items():
            analyses.append(CoordinationAnalysis(center, shells, anion=anion, z_range_nm=z, window_label=name,
                                                 cutoffs_nm=dict(options.get("cutoffs_nm") or {}) or None,
                                                 cutoffs_like=whole))

    def write(results, echo) -> None:
        _write_coordination(results[0], t, "default", json_path, residence, echo)
        for name, result in zip(windows, results[1:]):
            path = json_path.with_name(f"{json_path.stem}_{name}.json")
            _write_coordination(result, t, "default", path, False, lambda text, kind: None)
        if windows:
            echo(f"Li+ coordination number (atoms within the cut-off per Li+; ± block error) by layer; "
                 f"'pairs' = (Li+, frame) pairs counted:", "info")
            for line in layer_coordination_table(results[0], dict(zip(windows, results[1:]))):
                echo("  " + line, "info")
            for name, result in zip(windows, results[1:]):
                _echo_warnings(result.warnings, echo, prefix=f"warning ({name}): ")
            echo("wrote " + ", ".join(f"{json_path.stem}_{name}.json" for name in windows)
                 + " (with their _rdf.csv, _rdf.png)", "info")

    return analyses, write


def _solvent_cn(t, system_dir, run_dir, json_path, options, temperature_K, echo):
    from aseimd.analysis.solvent_cn import SolventCNAnalysis

    residence = bool(options.get("residence", False))

    def write(results, echo) -> None:
        _write_coordination(results[0], t, "solvent-cn", json_path, residence, echo)

    return [SolventCNAnalysis(residence=residence)], write


def _profile(t, system_dir, run_dir, json_path, options, temperature_K, echo):
    from aseimd.analysis.profile import ProfileAnalysis, system_xml_charges

    groups = dict(options.get("groups") or {sp.name: f"resname {sp.residue}" for sp in _residues_present(t)})
    xml = system_dir / "system.xml"
    charges = system_xml_charges(str(xml), t.n_atoms)
    analysis = ProfileAnalysis(groups, charges_e=charges, charge_source=str(xml), axis=options.get("axis", "z"),
                               bin_nm=options.get("bin_nm"))

    def write(results, echo) -> None:
        from aseimd.analysis.profile import profiles_document
        from aseimd.fileio import atomic_write_csv, atomic_write_json
        from aseimd.report.profile_plots import plot_profiles

        result, = results
        csv, png = _siblings(json_path, "density")
        headers, columns = result.tables()["density"]
        atomic_write_csv(csv, headers, columns, force=True)
        plot_profiles(result, png, force=True)
        atomic_write_json(json_path, profiles_document(result, t), force=True)
        _echo_warnings(result.warnings, echo, prefix="warning: ")
        echo(f"wrote {json_path}, {csv.name}, {png.name}", "info")

    return [analysis], write


#: Analysis name -> planner ``(trajectory, system_dir, run_dir, json_path, options, temperature_K, echo)``
#: returning ``(analysis objects, write(results, echo))``: every analysis of a job is prepared first, the
#: trajectory is read once for all of them (:func:`aseimd.analysis.run_analyses`), then each writes its files.
_ANALYSES: dict[str, Callable[..., Any]] = {
    "diffusion": _diffusion, "transference": _transference, "coordination": _coordination,
    "solvent_cn": _solvent_cn, "profile": _profile,
}
