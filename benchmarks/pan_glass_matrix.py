"""PAN glass density over seeds and box sizes: the runs that would close (or not) the PAN density goal.

Usage::

    python benchmarks/pan_glass_matrix.py --outdir pan-matrix [--seeds 1,2,3] [--sizes 5x30,3x50,10x50]
        [--parallel 4] [--platform auto] [--summarise-only] -- [polymer_densities.py options]

Each (size, seed) is one ``benchmarks/polymer_densities.py --only PAN --chains C --units U --seed S`` run
in its own process, ``--parallel`` at a time (small boxes use a GPU poorly, so several share one), its
result in ``OUTDIR/PAN-CxU-sS.json`` and its log beside it.  Options after ``--`` go to every run
(default: the 21-step cycle, ``--equil-ps 200 --prod-ps 1000 --max-wall-min 120``; GPU settings, hours
on a laptop CPU).  A run whose JSON exists is not run again (the matrix resumes), and nothing is
overwritten.  ``--cycle-scales`` adds a third axis, the factor on the cycle's stage lengths (1 = the
published lengths, run name unchanged; 2 = every stage twice as long, ``PAN-CxU-sS-c2``): a slower
preparation is what the liquid-line estimate in docs/validation.md says should densify the glass.

Why seeds: a glass is one frozen realisation of a non-equilibrium preparation, so the spread between
independently built and prepared glasses -- not the block error of one run's production -- is the
error bar of "the model's PAN glass density".  Why sizes: chain ends carry excess free volume (a
5x30 box has 10 ends in ~12.6 nm3) and short chains lower Tg, both of which lower the density of a
short-chain glass; 3x50 has the same atom count with 6 ends, 10x50 is 3.4x larger.

The summary (``OUTDIR/summary.json``, printed as a table) gives per size: the seeds that finished,
the mean density, the seed-to-seed standard deviation and standard error of the mean (n >= 2), the
mean within-run block SE, and the deviation from REFERENCE_DATA.md's 1.18 g/cm3 and from the
1.14-1.15 g/cm3 of the amorphous-PAN sources (docs/polymers.md).  The goal is within 5 % of 1.18.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE_G_CM3 = 1.18                 # REFERENCE_DATA.md, PAN (amorphous), 298 K
AMORPHOUS_SOURCES_G_CM3 = (1.14, 1.15)  # docs/polymers.md: the amorphous-PAN values found when verifying 1.18
GOAL_PCT = 5.0
DEFAULT_RUN_ARGS = ["--glass", "cycle", "--equil-ps", "200", "--prod-ps", "1000", "--max-wall-min", "120"]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"5x30,3x50"`` -> ``[(5, 30), (3, 50)]`` (chains x repeat units); ValueError naming a bad item."""
    out = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"bad size {item!r}: expected CHAINSxUNITS with positive integers, e.g. 5x30")
        out.append((int(parts[0]), int(parts[1])))
    return out


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``; ValueError naming a bad item."""
    out = []
    for item in text.split(","):
        if not item.strip().isdigit():
            raise ValueError(f"bad seed {item!r}: expected a non-negative integer")
        out.append(int(item))
    return out


def parse_cycle_scales(text: str) -> list[float]:
    """``"1,2"`` -> ``[1.0, 2.0]`` (factors on the 21-step cycle's stage lengths); ValueError naming a bad item."""
    out = []
    for item in text.split(","):
        try:
            x = float(item)
        except ValueError:
            x = float("nan")
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"bad cycle scale {item!r}: expected a positive number, e.g. 1 or 2")
        out.append(x)
    return out


def _scale_suffix(cycle_scale: float) -> str:
    """Nothing at the published cycle (the names of the runs made before this axis), ``-c2`` at twice it."""
    return "" if cycle_scale == 1.0 else f"-c{cycle_scale:g}"


def group_key(chains: int, units: int, cycle_scale: float = 1.0) -> str:
    """Summary key: ``5x30`` at the published cycle, ``5x30-c2`` at twice its stage lengths."""
    return f"{chains}x{units}{_scale_suffix(cycle_scale)}"


def run_name(chains: int, units: int, seed: int, cycle_scale: float = 1.0) -> str:
    return f"PAN-{chains}x{units}-s{seed}{_scale_suffix(cycle_scale)}"


def read_result(path: Path) -> dict | None:
    """The PAN result of one finished run's JSON (polymer_densities.py format), or None."""
    if not path.exists():
        return None
    try:
        res = [r for r in json.loads(path.read_text())["results"] if r["system"] == "PAN"]
    except (OSError, ValueError, KeyError):
        return None
    return res[0] if res else None


def summarise(results: list[dict]) -> dict:
    """Seed statistics of one size's finished runs.

    Parameters
    ----------
    results : list of dict
        polymer_densities.py PAN results (``density``, ``stderr``, ``seed`` added by the caller).

    Returns
    -------
    dict
        ``n``, ``seeds``, ``mean``, ``sd`` and ``sem`` (None for n < 2), ``mean_block_se``, ``dev_pct``
        (against 1.18), ``dev_amorphous_pct`` (against 1.14 and 1.15), ``within_goal`` (|dev| <= 5 %;
        judged on the mean, with the SEM printed beside it).
    """
    rho = [r["density"] for r in results if r.get("density") is not None]
    n = len(rho)
    if n == 0:
        return {"n": 0, "seeds": [], "mean": None}
    mean = sum(rho) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in rho) / (n - 1)) if n >= 2 else None
    block = [r["stderr"] for r in results if r.get("stderr") is not None]
    dev = 100.0 * (mean - REFERENCE_G_CM3) / REFERENCE_G_CM3
    return {"n": n, "seeds": [r["seed"] for r in results if r.get("density") is not None],
            "densities": rho, "mean": mean, "sd": sd, "sem": sd / math.sqrt(n) if sd is not None else None,
            "mean_block_se": sum(block) / len(block) if block else None, "dev_pct": dev,
            "dev_amorphous_pct": [100.0 * (mean - a) / a for a in AMORPHOUS_SOURCES_G_CM3],
            "within_goal": abs(dev) <= GOAL_PCT,
            "atoms": results[0].get("atoms"), "production_ns": [r.get("production_ns") for r in results],
            "protocol": sorted({r.get("protocol", "") for r in results})}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        k = argv.index("--")
        argv, extra = argv[:k], argv[k + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", required=True, help="one JSON and one log per run, and summary.json")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--sizes", default="5x30,3x50,10x50", help="CHAINSxUNITS, comma-separated")
    ap.add_argument("--cycle-scales", default="1",
                    help="factors on the 21-step cycle's stage lengths, comma-separated (1 = published)")
    ap.add_argument("--parallel", type=int, default=1, help="runs at a time")
    ap.add_argument("--platform", default="auto")
    ap.add_argument("--summarise-only", action="store_true", help="run nothing; summarise the JSONs in OUTDIR")
    args = ap.parse_args(argv)
    try:
        sizes, seeds = parse_sizes(args.sizes), parse_seeds(args.seeds)
        scales = parse_cycle_scales(args.cycle_scales)
    except ValueError as exc:
        ap.error(str(exc))
    if args.parallel < 1:
        ap.error(f"--parallel must be a positive integer, got {args.parallel}")
    for opt in ("--only", "--chains", "--units", "--seed", "--json", "--platform", "--cycle-scale"):
        if any(a == opt or a.startswith(opt + "=") for a in extra):
            ap.error(f"{opt} after '--' is set by this script; allowed there: the other polymer_densities.py options")
    run_args = extra or DEFAULT_RUN_ARGS
    glass_ap = argparse.ArgumentParser(add_help=False)
    glass_ap.add_argument("--glass", default="cycle")  # polymer_densities.py's default preparation
    glass = glass_ap.parse_known_args(run_args)[0].glass
    if scales != [1.0] and glass != "cycle":
        ap.error(f"--cycle-scales {args.cycle_scales} needs the cycle, not '--glass {glass}' after '--'")
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)

    todo = [(c, u, s, x) for c, u in sizes for x in scales for s in seeds
            if not args.summarise_only and read_result(out / (run_name(c, u, s, x) + ".json")) is None]
    running: list[tuple[str, subprocess.Popen, object]] = []
    failed = []
    t0 = time.time()

    def reap(block: bool) -> None:
        while running and (block or any(p.poll() is not None for _, p, _ in running)):
            for item in list(running):
                name, p, fh = item
                if p.poll() is not None:
                    fh.close()
                    running.remove(item)
                    print(f"[{time.time() - t0:7.0f} s] {name} finished, rc {p.returncode}", flush=True)
                    if p.returncode != 0:
                        failed.append(name)
            if block and running:
                time.sleep(2.0)
            else:
                break

    for c, u, s, x in todo:
        while len(running) >= args.parallel:
            time.sleep(2.0)
            reap(block=False)
        name = run_name(c, u, s, x)
        log = out / (name + ".log")
        if log.exists():  # a run that died before its JSON: keep its log, start a numbered one
            k = 1
            while (out / f"{name}.log.{k}").exists():
                k += 1
            log.rename(out / f"{name}.log.{k}")
        cmd = [sys.executable, str(HERE / "polymer_densities.py"), "--only", "PAN", "--chains", str(c),
               "--units", str(u), "--seed", str(s), "--platform", args.platform, "--cycle-scale", f"{x:g}",
               "--json", str(out / (name + ".json"))] + run_args
        fh = open(log, "w")
        print(f"[{time.time() - t0:7.0f} s] start {name}: {' '.join(cmd[2:])}", flush=True)
        running.append((name, subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT), fh))
    while running:
        time.sleep(2.0)
        reap(block=False)

    table = {}
    for c, u in sizes:
        for x in scales:
            res = []
            for s in seeds:
                r = read_result(out / (run_name(c, u, s, x) + ".json"))
                if r is not None:
                    res.append(dict(r, seed=s))
            table[group_key(c, u, x)] = dict(summarise(res), cycle_scale=x)
    summary = {"reference_g_cm3": REFERENCE_G_CM3, "amorphous_sources_g_cm3": list(AMORPHOUS_SOURCES_G_CM3),
               "goal_pct": GOAL_PCT, "cycle_scales": scales,
               # a summary of runs made elsewhere does not know their settings (each run's JSON has them)
               "run_args": None if args.summarise_only else run_args, "sizes": table, "failed": failed,
               "error_bar": "seed-to-seed SD and SEM (independent builds and glass preparations)"}
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out / "summary.json")

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    print(f"{'size':>9s} {'atoms':>6s} {'n':>2s} {'mean':>7s} {'SD':>7s} {'SEM':>7s} {'blockSE':>7s} "
          f"{'dev 1.18':>8s} {'dev 1.14/1.15':>13s}  goal (5 %)")
    for key, t in table.items():
        if not t["n"]:
            print(f"{key:>9s}  no finished run")
            continue
        am = "/".join(f"{d:+.1f}" for d in t["dev_amorphous_pct"])
        print(f"{key:>9s} {f(t['atoms'], 'd'):>6s} {t['n']:2d} {t['mean']:7.4f} {f(t['sd'], '7.4f'):>7s} "
              f"{f(t['sem'], '7.4f'):>7s} {f(t['mean_block_se'], '7.4f'):>7s} {t['dev_pct']:+8.1f} {am:>13s}  "
              f"{'met' if t['within_goal'] else 'missed'}{'' if t['n'] >= 2 else ' (one seed: no seed spread)'}")
    if failed:
        print("failed runs (see their logs): " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
