"""NPT densities of the carbonate solvents and 1 M LiPF6 EC:DMC against experiment.

For every selected system the script builds a box with aseimd's electrolyte
builder (``aseimd.build.electrolyte.build_electrolyte`` +
``aseimd.build.cell.write_system_dir``), runs minimise -> NVT -> NPT (and, for
a salt solution, a short NVT production at the NPT mean volume for the Li+
solvation shell) with ``aseimd.simulate.runner.run_protocol``, and reads the
density from the run's ``thermo.csv``:

* density = mean of ``Density (g/cm^3)`` over the second half of the NPT stage;
* its standard error from block averaging, with blocks of at least
  ``BLOCK_TAU_FACTOR`` (5) integrated autocorrelation times of the density
  series (Sokal's automatic window, c = 5), and never fewer than
  ``MIN_BLOCKS`` (4) blocks (a warning says when 5 tau could not be met);
* the deviation from the experimental density and a pass/fail flag for the
  3 % goal of issue 2.

For a box with Li+ it also runs ``aseimd.analysis.coordination.coordination``
on the production trajectory with the default electrolyte groups (Li+ centre,
carbonyl O ``O1`` of each carbonate, F of PF6-) and reports the Li+-O(carbonyl)
coordination number per solvent and in total.

Everything lives in ``--workdir`` (``<system>/system`` and ``<system>/run``);
running the same command again reuses built systems and resumes or skips the
runs (``aseimd run`` resumes from its checkpoint), so a killed pass loses at
most one checkpoint interval. Systems run one after another, never in parallel.

Usage::

    python benchmarks/densities.py --workdir dens --json dens.json --markdown dens.md   # GPU defaults
    python benchmarks/densities.py --workdir dens_cpu --n-molecules 100 --nvt-ps 10 --npt-ps 80 \\
        --production-ps 20 --hmr-amu 3 --timestep-fs 4 --platform CPU          # short CPU pass
    python benchmarks/densities.py --quick --workdir /tmp/q                  # plumbing check, seconds
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import platform as _platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK_TAU_FACTOR = 5.0
MIN_BLOCKS = 4
GOAL_PERCENT = 3.0
DENSITY_HEADER = "Density (g/cm^3)"
AVOGADRO_PER_MOL = 6.02214076e23


@dataclass(frozen=True)
class BenchSystem:
    """One benchmark system.

    Parameters
    ----------
    key : str
        Name used on the command line and for the work directories.
    recipe : str
        aseimd electrolyte recipe.
    temperature_K : float
        Simulation temperature in K.
    exp_density_g_per_cm3 : float or None
        Experimental density in g/cm^3 (None: no verified value).
    exp_source : str
        Where the experimental value comes from.
    """

    key: str
    recipe: str
    temperature_K: float
    exp_density_g_per_cm3: float | None
    exp_source: str


# Experimental densities: /work/shared/REFERENCE_DATA.md (K. Xu, Chem. Rev. 104, 4303 (2004), Table 2).
SYSTEMS: dict[str, BenchSystem] = {s.key: s for s in (
    BenchSystem("EC", "EC", 313.15, 1.32, "Xu, Chem. Rev. 104, 4303 (2004), 313 K (EC melts at 309.5 K)"),
    BenchSystem("PC", "PC", 298.15, 1.20, "Xu 2004, 298 K"),
    BenchSystem("DMC", "DMC", 298.15, 1.063, "Xu 2004, 298 K"),
    BenchSystem("EMC", "EMC", 298.15, 1.006, "Xu 2004, 298 K"),
    BenchSystem("DEC", "DEC", 298.15, 0.969, "Xu 2004, 298 K"),
    BenchSystem("LiPF6_EC_DMC", "1.0 M LiPF6 in EC:DMC 1:1 v/v", 298.15, None,
                "no verified value in REFERENCE_DATA.md; compared with aseimd's ideal-mixing volume "
                "model for the box's counts (build.json estimated_density_g_per_cm3; 1.279 g/cm^3 at "
                "the exact 1 M composition, docs/electrolyte_recipes.md) -- an estimate, not experiment"),
)}


# --------------------------------------------------------------------------- statistics


def integrated_autocorrelation_time(x: np.ndarray, c: float = 5.0) -> float:
    """Integrated autocorrelation time of a series, in samples (Sokal's automatic window).

    Parameters
    ----------
    x : np.ndarray, shape (n,), float
        Equally spaced samples.
    c : float
        Window factor: the sum runs to the smallest lag M with M >= c * tau(M).

    Returns
    -------
    float
        tau_int = 1/2 + sum_{t=1}^{M} rho(t) (>= 0.5; 0.5 for uncorrelated data).
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    if n < 2:
        return 0.5
    d = x - x.mean()
    var = float(d @ d) / n
    if var == 0.0:
        return 0.5
    f = np.fft.rfft(d, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (n * var)   # biased estimator, rho(0) = 1
    tau = 0.5
    for m in range(1, n):
        tau += acf[m]
        if m >= c * tau:
            break
    return max(tau, 0.5)


def block_average(x: np.ndarray, dt_ps: float) -> dict:
    """Mean and block-average standard error of a correlated series.

    The block length is ``BLOCK_TAU_FACTOR`` integrated autocorrelation times
    (rounded up, at least one sample), shortened if needed so that at least
    ``MIN_BLOCKS`` blocks fit; samples left over at the start are dropped
    from the blocks (not from the mean).

    Parameters
    ----------
    x : np.ndarray, shape (n,), float
    dt_ps : float
        Sample spacing in ps.

    Returns
    -------
    dict
        ``mean``, ``stderr`` (None if fewer than MIN_BLOCKS samples), ``tau_ps``,
        ``block_ps``, ``n_blocks``, ``n_samples``, ``warnings``.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    out = {"mean": float(x.mean()) if n else math.nan, "stderr": None, "tau_ps": None,
           "block_ps": None, "n_blocks": 0, "n_samples": n, "warnings": []}
    if n < MIN_BLOCKS:
        out["warnings"].append(f"only {n} samples: no standard error")
        return out
    tau = integrated_autocorrelation_time(x)
    block = max(1, math.ceil(BLOCK_TAU_FACTOR * tau))
    if n // block < MIN_BLOCKS:
        block = n // MIN_BLOCKS
        out["warnings"].append(
            f"series of {n * dt_ps:g} ps holds fewer than {MIN_BLOCKS} blocks of {BLOCK_TAU_FACTOR:g} tau "
            f"(tau = {tau * dt_ps:.3g} ps); used {MIN_BLOCKS} blocks of {block * dt_ps:g} ps: the error "
            f"is likely underestimated")
    n_blocks = n // block
    means = x[n - n_blocks * block:].reshape(n_blocks, block).mean(axis=1)
    out.update(stderr=float(means.std(ddof=1) / math.sqrt(n_blocks)), tau_ps=float(tau * dt_ps),
               block_ps=round(float(block * dt_ps), 9), n_blocks=int(n_blocks))
    return out


# --------------------------------------------------------------------------- thermo.csv


def read_stage_column(thermo_csv: Path, stage: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Times (ps) and values of ``column`` for the rows of one stage of ``thermo.csv``."""
    times, values = [], []
    with open(thermo_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Stage"] == stage:
                times.append(float(row["Time (ps)"]))
                values.append(float(row[column]))
    return np.asarray(times), np.asarray(values)


def npt_density(run_dir: Path, stage: str = "npt") -> dict:
    """Density statistics over the second half of the NPT stage of a finished run.

    Returns
    -------
    dict
        :func:`block_average` output (g/cm^3) plus ``window_ps`` [t0, t1],
        ``mean_volume_nm3``, ``drift_over_window_g_per_cm3`` (change of a
        straight-line fit across the window) and ``drift_sigma_g_per_cm3``
        (its expected scatter without drift, 2 sqrt(3) x the block standard
        error of the detrended series); a drift
        beyond 2 sigma adds a warning.
    """
    t, rho = read_stage_column(run_dir / "thermo.csv", stage, DENSITY_HEADER)
    _, vol = read_stage_column(run_dir / "thermo.csv", stage, "Volume (nm^3)")
    if len(t) < 2:
        raise RuntimeError(f"{run_dir}/thermo.csv has {len(t)} rows of stage {stage!r}")
    half = len(t) // 2      # rows are at start + k*interval, k = 1..n: keep k > n/2
    dt = float(t[1] - t[0])
    res = block_average(rho[half:], dt)
    res["window_ps"] = [float(t[half]), float(t[-1])]
    # Equilibration check: change of a straight-line fit across the averaging window, against the
    # scatter that change would have without drift: 2 sqrt(3) x the block-averaged standard error of
    # the mean of the detrended series (variance of an OLS slope over evenly spread independent blocks).
    tw, rw = t[half:], rho[half:]
    coef = np.polyfit(tw, rw, 1)
    res["drift_over_window_g_per_cm3"] = float(coef[0] * (tw[-1] - tw[0]))
    detrended = block_average(rw - np.polyval(coef, tw), dt)["stderr"]
    res["drift_sigma_g_per_cm3"] = None if detrended is None else float(2 * math.sqrt(3) * detrended)
    sigma = res["drift_sigma_g_per_cm3"]
    if sigma is not None and abs(res["drift_over_window_g_per_cm3"]) > 2 * sigma:
        res["warnings"].append(
            f"density drifts by {res['drift_over_window_g_per_cm3']:+.4f} g/cm^3 across the averaging window "
            f"(> 2 sigma = {2 * sigma:.4f}): not equilibrated, lengthen the NPT stage")
    res["mean_volume_nm3"] = float(vol[half:].mean())
    return res


# --------------------------------------------------------------------------- protocol


def make_protocol(system: BenchSystem, args: argparse.Namespace, with_production: bool) -> dict:
    """Protocol dictionary (``aseimd.simulate.protocol.Protocol.from_dict`` format)."""
    stages = [
        {"type": "minimize", "name": "minimize", "tolerance_kj_per_mol_nm": 10.0, "max_iterations": 0},
        {"type": "nvt", "name": "nvt", "length_ps": args.nvt_ps},
        {"type": "npt", "name": "npt", "length_ps": args.npt_ps, "coupling": "isotropic",
         "barostat_interval_steps": 25},
    ]
    if with_production:
        stages.append({"type": "production", "name": "production", "length_ps": args.production_ps,
                       "volume_from": "npt"})
    return {
        "name": f"densities-{system.key}",
        "description": "benchmarks/densities.py: minimise, NVT, NPT (density); production for the Li+ shell",
        "temperature_K": system.temperature_K,
        "pressure_bar": 1.01325,
        "timestep_fs": args.timestep_fs,
        "friction_per_ps": 1.0,
        "hydrogen_mass_amu": args.hmr_amu,
        "cutoff_nm": None,
        "seed": args.seed + 1,
        "max_temperature_K": None,
        "report": {"thermo_ps": args.thermo_ps, "trajectory_ps": args.frame_ps,
                   "checkpoint_ps": args.checkpoint_ps},
        "stages": stages,
    }


# --------------------------------------------------------------------------- one system


def pdb_residue_atoms(pdb: Path) -> dict[str, int]:
    """Number of ATOM/HETATM records of ``pdb`` per residue name."""
    counts: dict[str, int] = {}
    with open(pdb) as fh:
        for line in fh:
            if line.startswith(("ATOM", "HETATM")):
                name = line[17:21].strip()
                counts[name] = counts.get(name, 0) + 1
    return counts


def li_coordination(system_dir: Path, run_dir: Path, n_blocks: int, cutoff_nm: float | None = None) -> dict:
    """Li+-O(carbonyl) (and Li+-F(PF6)) coordination of the production trajectory.

    ``cutoff_nm`` (nm) is used for every shell if given; otherwise each shell's
    cut-off is the first minimum of its g(r).
    """
    from aseimd.analysis.coordination import coordination, default_electrolyte_groups
    from aseimd.analysis.trajectory import Trajectory
    from aseimd.species import get_species

    traj = Trajectory(str(system_dir / "system.pdb"), str(run_dir / "trajectory.dcd"))
    center, shells, anion = default_electrolyte_groups(traj.topology)
    cutoffs = None if cutoff_nm is None else {label: cutoff_nm for label in shells}
    res = coordination(traj, center, shells, anion=anion, n_blocks=n_blocks, cutoffs_nm=cutoffs)

    solvents = [k for k in res.pairs if get_species(k).kind == "solvent"]
    per = {k: res.pairs[k].to_dict() for k in res.pairs}
    total = sum(res.pairs[k].cn_molecules for k in solvents)
    total_err = math.sqrt(sum(res.pairs[k].cn_molecules_stderr ** 2 for k in solvents))
    return {
        "center": center, "shells": shells, "n_frames": res.n_frames, "dt_ps": res.dt_ps,
        "per_shell": per,
        "carbonyl_cn_total": total,
        "carbonyl_cn_total_stderr_uncorrelated_sum": total_err,
        "speciation": res.speciation,
        "warnings": res.warnings,
        "method": "aseimd.analysis.coordination.coordination, default electrolyte groups; cut-off = "
                  + ("first minimum of each g(r)" if cutoff_nm is None else f"{cutoff_nm} nm for every shell")
                  + "; CN = molecules with their carbonyl O within the cut-off; stderr "
                  f"from {n_blocks} time blocks; total stderr adds the per-solvent errors in quadrature "
                  "(ignores their anticorrelation, so it is an upper estimate)",
    }


def check_reusable(system_dir: Path, args: argparse.Namespace) -> None:
    """Refuse to reuse a built system made with other size, seed, charge scale or cut-off."""
    build = json.loads((system_dir / "build.json").read_text())
    have = {"--n-molecules": build.get("sizing", {}).get("n_solvent"), "--seed": build.get("seed"),
            "--charge-scale": build.get("charge_scale"), "--cutoff-nm": build.get("cutoff_nm")}
    want = {"--n-molecules": args.n_molecules, "--seed": args.seed, "--charge-scale": args.charge_scale,
            "--cutoff-nm": args.cutoff_nm}
    for option, value in want.items():
        if have[option] is not None and have[option] != value:
            raise RuntimeError(f"{system_dir} was built with {option} {have[option]}, not {value}; "
                               f"use another --workdir")


def run_system(system: BenchSystem, args: argparse.Namespace, log) -> dict:
    """Build (or reuse), run (or resume) and analyse one system."""
    from aseimd.build.cell import write_system_dir
    from aseimd.build.electrolyte import build_electrolyte
    from aseimd.simulate.protocol import Protocol
    from aseimd.simulate.runner import run_protocol

    root = Path(args.workdir) / system.key
    system_dir, run_dir = root / "system", root / "run"
    t0 = time.time()
    if not (system_dir / "build.json").exists():
        log(f"[{system.key}] building '{system.recipe}' with {args.n_molecules} solvent molecules")
        cell = build_electrolyte(system.recipe, n_solvent=args.n_molecules, seed=args.seed,
                                 cutoff_nm=args.cutoff_nm)  # refused if the equilibrium box is too small
        root.mkdir(parents=True, exist_ok=True)
        write_system_dir(cell, system_dir, charge_scale=args.charge_scale, cutoff_nm=args.cutoff_nm)
    else:
        check_reusable(system_dir, args)
        log(f"[{system.key}] reusing {system_dir}")
    residue_atoms = pdb_residue_atoms(system_dir / "system.pdb")
    n_atoms, n_li = sum(residue_atoms.values()), residue_atoms.get("LI", 0)
    lithium = n_li > 0
    proto = Protocol.from_dict(make_protocol(system, args, with_production=lithium and args.production_ps > 0))
    log(f"[{system.key}] {n_atoms} atoms, T = {system.temperature_K} K; running {run_dir}")
    result = run_protocol(system_dir, run_dir, proto, args.platform, progress=not args.no_progress,
                          threads=args.threads, stream=sys.stderr)
    build = json.loads((system_dir / "build.json").read_text())
    run_info = json.loads((run_dir / "run.json").read_text())
    dens = npt_density(run_dir)
    out = {
        "system": system.key, "recipe": system.recipe, "temperature_K": system.temperature_K,
        "n_atoms": n_atoms, "n_solvent_molecules": build.get("sizing", {}).get("n_solvent"),
        "counts": build.get("counts"),
        "protocol": proto.to_dict(),
        "platform": result.platform, "ns_per_day_last_call": result.ns_per_day,
        "run_status": run_info.get("status"),
        "density_g_per_cm3": dens["mean"], "density_stderr_g_per_cm3": dens["stderr"], "density_stats": dens,
        "exp_density_g_per_cm3": system.exp_density_g_per_cm3, "exp_source": system.exp_source,
        "wall_s_this_call": time.time() - t0,
    }
    if system.exp_density_g_per_cm3 is not None:
        dev = 100.0 * (dens["mean"] / system.exp_density_g_per_cm3 - 1.0)
        out["deviation_percent"] = dev
        out["within_goal"] = abs(dev) <= GOAL_PERCENT
    else:
        est = build.get("estimated_density_g_per_cm3")
        out["model_estimate_g_per_cm3"] = est
        out["deviation_from_model_estimate_percent"] = None if est is None else 100.0 * (dens["mean"] / est - 1)
    if lithium:
        out["molarity_md_mol_per_L"] = n_li / (AVOGADRO_PER_MOL * dens["mean_volume_nm3"] * 1e-24)
        if args.production_ps > 0:
            out["li_coordination"] = li_coordination(system_dir, run_dir, args.cn_blocks, args.cn_cutoff_nm)
    log(f"[{system.key}] density {dens['mean']:.4f} +- {_fmt(dens['stderr'], '.4f')} g/cm^3 "
        f"({time.time() - t0:.0f} s this call)")
    return out


# --------------------------------------------------------------------------- tables


def _fmt(x, spec=".3f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown_tables(results: list[dict], header: str) -> str:
    """Density table and (if any) Li+ coordination table as markdown."""
    lines = [header, "",
             ("| system | T (K) | atoms | NPT ps (mean over) | ρ MD (g/cm³) | ± SE | τ_ρ (ps) | blocks | "
              "ρ exp (g/cm³) | dev. (%) | ≤ 3 % |"),
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['system']} | | | | failed: {r['error']} | | | | | | |")
            continue
        st = r["density_stats"]
        npt = next(s for s in r["protocol"]["stages"] if s["type"] == "npt")
        w = st["window_ps"]
        exp = r["exp_density_g_per_cm3"]
        if exp is not None:
            dev, ok = _fmt(r["deviation_percent"], "+.1f"), ("pass" if r["within_goal"] else "**fail**")
        else:
            dev = f"({_fmt(r.get('deviation_from_model_estimate_percent'), '+.1f')} vs model est.)"
            ok = "n/a"
        lines.append(
            f"| {r['system']} | {r['temperature_K']:.2f} | {r['n_atoms']} | {npt['length_ps']:g} "
            f"({w[0]:g}–{w[1]:g}) | {_fmt(r['density_g_per_cm3'], '.4f')} | {_fmt(st['stderr'], '.4f')} | "
            f"{_fmt(st['tau_ps'], '.2g')} | {st['n_blocks']} × {_fmt(st['block_ps'], 'g')} ps | "
            f"{_fmt(exp, '.3f') if exp is not None else _fmt(r.get('model_estimate_g_per_cm3'), '.3f') + ' (model est.)'}"
            f" | {dev} | {ok} |")
    cn_rows = [r for r in results if "li_coordination" in r]
    if cn_rows:
        lines += ["", "| system | c_MD (mol/L) | frames | shell | cut-off (nm) | r_peak (nm) | CN (molecules) ± SE |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in cn_rows:
            cn = r["li_coordination"]
            for k, p in cn["per_shell"].items():
                lines.append(
                    f"| {r['system']} | {_fmt(r['molarity_md_mol_per_L'], '.2f')} | {cn['n_frames']} | Li–{k} "
                    f"({'O1' if k != 'PF6' else 'F'}) | {_fmt(p['cutoff_nm'], '.3f')} | {_fmt(p['r_peak_nm'], '.3f')} | "
                    f"{_fmt(p['cn_molecules'], '.2f')} ± {_fmt(p['cn_molecules_stderr'], '.2f')} |")
            lines.append(f"| {r['system']} | | | Li–O(carbonyl) total | | | "
                         f"{_fmt(cn['carbonyl_cn_total'], '.2f')} ± "
                         f"{_fmt(cn['carbonyl_cn_total_stderr_uncorrelated_sum'], '.2f')} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", default=None,
                   help=f"comma-separated subset of {', '.join(SYSTEMS)}, run in the given order [all]")
    p.add_argument("--n-molecules", type=int, default=400, help="solvent molecules per box [400]")
    p.add_argument("--nvt-ps", type=float, default=100.0, help="NVT equilibration length [100]")
    p.add_argument("--npt-ps", type=float, default=2000.0,
                   help="NPT length; the density is the mean of its second half [2000]")
    p.add_argument("--production-ps", type=float, default=1000.0,
                   help="NVT production for the Li+ shell of salt boxes (0: none) [1000]")
    p.add_argument("--timestep-fs", type=float, default=2.0, help="timestep [2; 4 with --hmr-amu 3]")
    p.add_argument("--hmr-amu", type=float, default=None, help="hydrogen mass for HMR (default: off)")
    p.add_argument("--thermo-ps", type=float, default=0.2, help="thermo.csv row spacing [0.2]")
    p.add_argument("--frame-ps", type=float, default=1.0, help="production frame spacing [1]")
    p.add_argument("--checkpoint-ps", type=float, default=20.0, help="checkpoint spacing [20]")
    p.add_argument("--platform", default="auto", help="auto, CUDA, OpenCL, CPU, Reference [auto]")
    p.add_argument("--threads", type=int, default=None, help="CPU platform threads")
    p.add_argument("--cutoff-nm", type=float, default=1.0, help="non-bonded cut-off [1.0]")
    p.add_argument("--charge-scale", type=float, default=0.8, help="ion charge scale [0.8]")
    p.add_argument("--seed", type=int, default=1, help="packing / geometry seed [1]")
    p.add_argument("--cn-cutoff-nm", type=float, default=None,
                   help="one Li+-shell cut-off in nm for every shell (default: first minimum of each g(r))")
    p.add_argument("--cn-blocks", type=int, default=5, help="time blocks for the CN standard errors [5]")
    p.add_argument("--workdir", required=True, help="work directory (reused: resumable)")
    p.add_argument("--json", help="write all results to this JSON file (replaced)")
    p.add_argument("--markdown", help="write the tables to this markdown file (replaced)")
    p.add_argument("--label", default=None, help="caption line above the table")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.add_argument("--quick", action="store_true",
                   help="plumbing check in seconds: PC and the LiPF6 box (or --systems), 24 solvent "
                        "molecules, 1.4 ps, cut-off 0.6 nm, CPU platform (numbers meaningless)")
    args = p.parse_args(argv)
    if args.systems is None and not args.quick:
        args.systems = ",".join(SYSTEMS)
    if args.quick:
        args.systems = args.systems or "PC,LiPF6_EC_DMC"
        args.n_molecules, args.nvt_ps, args.npt_ps, args.production_ps = 24, 0.2, 0.8, 0.4
        args.thermo_ps, args.frame_ps, args.checkpoint_ps = 0.02, 0.02, 0.4
        args.cutoff_nm, args.timestep_fs, args.hmr_amu = 0.6, 2.0, None
        args.cn_blocks = 2
        if args.platform == "auto":
            args.platform = "CPU"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    keys = [k.strip() for k in args.systems.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SYSTEMS]
    if unknown:
        print(f"Error: unknown system {unknown[0]!r}; allowed: {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    results, failed = [], False
    for key in keys:
        try:
            results.append(run_system(SYSTEMS[key], args, log))
        except Exception as exc:   # noqa: BLE001 -- one failed system must not lose the others' results
            failed = True
            log(f"[{key}] FAILED: {type(exc).__name__}: {exc}")
            results.append({"system": key, "error": f"{type(exc).__name__}: {exc}"})
        write_outputs(results, args)
    print(markdown_tables(results, caption(args)))
    return 1 if failed else 0


def caption(args: argparse.Namespace) -> str:
    if args.label:
        return args.label
    hmr = f", HMR {args.hmr_amu:g} amu" if args.hmr_amu else ""
    return (f"{args.n_molecules} solvent molecules per box, {args.nvt_ps:g} ps NVT + {args.npt_ps:g} ps NPT "
            f"(+ {args.production_ps:g} ps NVT production for Li+ boxes), {args.timestep_fs:g} fs{hmr}, "
            f"cut-off {args.cutoff_nm:g} nm, ion charges x {args.charge_scale:g}, platform {args.platform}, "
            f"{_platform.node()}")


def write_outputs(results: list[dict], args: argparse.Namespace) -> None:
    """Write the JSON and markdown outputs (replaced after every system)."""
    from aseimd.fileio import atomic_write_json

    if args.json:
        atomic_write_json(args.json, {"settings": {k: v for k, v in vars(args).items()},
                                      "goal_percent": GOAL_PERCENT, "results": results}, force=True)
    if args.markdown:
        Path(args.markdown).write_text(markdown_tables(results, caption(args)))


if __name__ == "__main__":
    sys.exit(main())
