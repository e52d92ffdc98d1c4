"""NPT densities of polymer melts against ../shared/REFERENCE_DATA.md (goal within 5 %).

Usage::

    PYTHONPATH=src python benchmarks/polymer_densities.py [--only PEO,PAN] [--platform auto]
        [--equil-ps 300] [--prod-ps 600] [--max-wall-min 20] [--cycle-scale 1.0] [--json out.json]

Systems (temperatures as in REFERENCE_DATA.md): PEO melt 353 K, PDMS 298 K,
amorphous PAN 298 K, PEO + LiTFSI (r = Li/EO = 0.06) 363 K; and MGN, the PAN dimer
(2-methylglutaronitrile, a liquid) at 298 K, a check of the PAN parameters free of glass preparation.  Each box is built
with ``aseimd.build.polymer.build_melt`` (~1.5-1.8k atoms) at a fixed start
density chosen 5-12 % *below* experiment (``START_DENSITY``; not computed from
the reference), so the barostat has to compress it and a result near
experiment is not an echo of the start.

Protocol (OpenMM directly, HMR 3 amu + 4 fs, Langevin middle 1/ps, isotropic
Monte Carlo barostat every 25 steps, PME, LJ cut-off 1.0 nm with long-range
correction, X-H constrained, shipped force field untouched):

* melts (PEO, PDMS, PEO-LiTFSI): minimise -> 10 ps NVT -> NPT 1 bar:
  ``--equil-ps`` discarded, then ``--prod-ps`` production;
* PAN (glassy: Tg ~ 370 K > 298 K, a plain NPT run from a loose start never
  reaches the glass density): the 21-step compression/relaxation cycle of
  Larsen, Lin, Hart & Colina, Macromolecules 44, 6944 (2011) (also Abbott,
  Hart & Colina, Theor. Chem. Acc. 132, 1334 (2013)): three (NVT Tmax, NVT
  Tfinal, NPT Tfinal at P_i) triplets with P_i = 0.02, 0.6, 1.0, 0.5, 0.1,
  0.01 Pmax, two more NVT steps, and the final NPT at 1 bar (step 21);
  Tmax = 600 K, Pmax = 5e4 bar; lengths (ps) 50/50/50, 50/100/50, 50/100/50,
  50/100/5, 5/10/5, 5/10/5, 5/10 (``CYCLE_21``).  Read from two
  implementations, not the paper (not readable here): the pressure sequence
  from pysimm ``apps/equilibrate.py`` (``p_steps`` default), the stage
  lengths from the OpenMM ``twentyonestep-protocol`` package (both cite
  Larsen et al. 2011).  ``--cycle-scale``
  multiplies every stage length of steps 1-20 (1.0 = the published cycle).
  Step 21 is the 1-bar NPT run: ``--equil-ps`` discarded + ``--prod-ps``.

Statistics: density sampled every 0.4 ps; mean and block standard error of
the production window (blocks of 5 integrated autocorrelation times,
``densities.block_average``); drift = mean(second half) - mean(first half),
with SE_drift = sqrt(SE_1^2 + SE_2^2) from each half's block SE.  A system is
printed "NOT CONVERGED" when |drift| > SE_drift (a deliberately strict 1-sigma
test: a converged run fails it about a third of the time, an unconverged one
almost always).  ``--max-wall-min`` caps each system: production stops early
(and says so) when the cap would be exceeded.  With ``--json OUT`` the density series so far is also
written to ``OUT.SYSTEM.partial`` every 20 ps of samples and after every stage, so a killed run keeps
its data.

Finite size: ~1.6k-atom boxes (2.4-2.8 nm edges, 7-10 chains of 20-30 units)
are small; chain ends are a larger fraction than in the long-chain
experiments, which lowers the density of a short-chain melt (the
experimental PEO value is for long chains).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from densities import block_average  # noqa: E402  (same block SE as the liquid benchmark)

SAMPLE_STEPS = 100          # density sample every 100 steps (0.4 ps at 4 fs)
BAROSTAT_EVERY = 25
PARTIAL_EVERY = 50          # write the series so far every 50 samples (20 ps) and after every stage
TIMESTEP_FS = 4.0
HMR_AMU = 3.0
CUTOFF_NM = 1.0
FRICTION_PER_PS = 1.0

# Larsen et al. 2011 21-step cycle, steps 1-20: (T "max"|"final", P as a fraction of Pmax or None = NVT, ps).
# Step 21 (NPT, Tfinal, 1 bar; 800 ps in the schedule) is this benchmark's equilibration + production.
CYCLE_21 = [
    ("max", None, 50), ("final", None, 50), ("final", 0.02, 50),      # md1-3
    ("max", None, 50), ("final", None, 100), ("final", 0.6, 50),      # md4-6
    ("max", None, 50), ("final", None, 100), ("final", 1.0, 50),      # md7-9
    ("max", None, 50), ("final", None, 100), ("final", 0.5, 5),       # md10-12
    ("max", None, 5), ("final", None, 10), ("final", 0.1, 5),         # md13-15
    ("max", None, 5), ("final", None, 10), ("final", 0.01, 5),        # md16-18
    ("max", None, 5), ("final", None, 10),                            # md19-20
]


@dataclass
class Case:
    name: str
    polymer: str
    n_repeat: int
    n_chains: int
    temperature_K: float
    reference: tuple[float, float]       # experimental range (g/cm3), REFERENCE_DATA.md
    source: str
    start_density: float                 # fixed start, below experiment
    salt: str | None = None
    eo_per_li: float | None = None
    anneal: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ref_mid(self) -> float:
        return 0.5 * (self.reference[0] + self.reference[1])


CASES = [
    Case("PEO", "PEO", 20, 8, 353.0, (1.073, 1.080), "Becht 1967 (REFERENCE_DATA.md)", 1.00),
    Case("PDMS", "PDMS", 20, 5, 298.0, (0.965, 0.970), "handbook (REFERENCE_DATA.md: verify)", 0.90),
    Case("PAN", "PAN", 30, 5, 298.0, (1.18, 1.18), "amorphous PAN (REFERENCE_DATA.md: verify)", 1.05,
         anneal=True),
    Case("PEO-LiTFSI", "PEO", 20, 8, 363.0, (1.230, 1.230), "Villaluenga et al., JES 2018", 1.15,
         salt="LiTFSI", eo_per_li=1 / 0.06),
    # Diagnostic for PAN (not a polymer): a PAN chain of two units is PAH + PAT =
    # CH3-CH(CN)-CH2-CH2-CN, 2-methylglutaronitrile, a room-temperature liquid.  Its density tests the
    # shipped PAN residues and parameters on a liquid that equilibrates in ~100 ps, free of the glass
    # preparation question.  Experiment 0.95 g/cm3 at 25 C (PubChem / supplier data as compiled at
    # grokipedia.com/page/2_methylglutaronitrile: a secondary source).
    Case("MGN", "PAN", 2, 80, 298.0, (0.95, 0.95), "2-methylglutaronitrile, 0.95 at 25 C (secondary source)",
         0.85),
]


def pick_platform(name: str):
    import openmm

    if name != "auto":
        return openmm.Platform.getPlatformByName(name)
    for cand in ("CUDA", "OpenCL", "CPU"):
        try:
            return openmm.Platform.getPlatformByName(cand)
        except Exception:  # noqa: BLE001  (platform not installed)
            continue
    return openmm.Platform.getPlatformByName("Reference")


def density_g_cm3(ctx, mass_da: float) -> float:
    from openmm import unit

    v = ctx.getState().getPeriodicBoxVolume().value_in_unit(unit.nanometer ** 3)
    return mass_da / 6.02214076e23 / (v * 1e-21)


def drift_test(x: np.ndarray, dt_ps: float) -> dict:
    """Second-half minus first-half mean of a density series, with its standard error.

    Parameters
    ----------
    x : np.ndarray, shape (n,), float
        Density samples (g/cm3).
    dt_ps : float
        Sample spacing (ps).

    Returns
    -------
    dict
        ``drift``, ``se`` (None when a half has too few samples), ``converged``
        (|drift| <= se; False when se is None).
    """
    h = len(x) // 2
    a, b = block_average(x[:h], dt_ps), block_average(x[h:2 * h], dt_ps)
    drift = float(b["mean"] - a["mean"])
    if a["stderr"] is None or b["stderr"] is None:
        return {"drift": drift, "se": None, "converged": False}
    se = math.hypot(a["stderr"], b["stderr"])
    return {"drift": drift, "se": se, "converged": bool(abs(drift) <= se)}


def one_four_pairs(topology) -> set[tuple[int, int]]:
    """Atom pairs exactly three bonds apart (not also 1-2 or 1-3), from the topology's bonds.

    Returns
    -------
    set of (int, int)
        Index pairs with i < j.
    """
    nbr: dict[int, set[int]] = {}
    for b in topology.bonds():
        i, j = b[0].index, b[1].index
        nbr.setdefault(i, set()).add(j)
        nbr.setdefault(j, set()).add(i)
    out = set()
    for i in nbr:
        first = nbr[i]
        second = {k for j in first for k in nbr[j]} - {i}
        third = {m for k in second for j in nbr[k] for m in [j]} - first - second - {i}
        out.update((min(i, m), max(i, m)) for m in third)
    return out


def rescale_14(system, topology, scale14: float, shipped: float = 0.5) -> int:
    """Diagnostic only: change the 1-4 Coulomb and LJ scale of every 1-4 pair from ``shipped`` to ``scale14``.

    Multiplies the 1-4 exception charge products of the NonbondedForce and the
    epsilons of the ``LJ14`` CustomBondForce by ``scale14 / shipped``.

    Returns
    -------
    int
        Number of 1-4 pairs changed (Coulomb and LJ each).
    """
    import openmm

    f = scale14 / shipped
    pairs = one_four_pairs(topology)
    n = 0
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            for k in range(force.getNumExceptions()):
                i, j, qq, sig, eps = force.getExceptionParameters(k)
                if (min(i, j), max(i, j)) in pairs:
                    force.setExceptionParameters(k, i, j, qq * f, sig, eps * f)
                    n += 1
        elif isinstance(force, openmm.CustomBondForce) and force.getName() == "LJ14":
            for k in range(force.getNumBonds()):
                i, j, (sig, eps) = force.getBondParameters(k)
                if (min(i, j), max(i, j)) in pairs:
                    force.setBondParameters(k, i, j, [sig, eps * f])
    return n


def run_case(case: Case, args, log) -> dict:
    import openmm
    from openmm import unit

    from aseimd.build.polymer import PolymerSpec, build_melt
    from aseimd.forcefield import create_system
    from aseimd.simulate.prepare import apply_hmr, make_constraints_contiguous

    t0 = time.time()
    cap_s = args.max_wall_min * 60.0
    cell = build_melt(PolymerSpec(case.polymer, n_repeat=case.n_repeat, n_chains=case.n_chains),
                      density_g_per_cm3=case.start_density, temperature_K=case.temperature_K,
                      seed=args.seed, salt=case.salt, eo_per_li=case.eo_per_li)
    system = create_system(cell.topology, cutoff_nm=CUTOFF_NM)
    if args.scale14 is not None:
        n14 = rescale_14(system, cell.topology, args.scale14)
        log(f"[{case.name}] DIAGNOSTIC: 1-4 Coulomb/LJ scale {args.scale14:g} instead of the shipped 0.5 "
            f"({n14} pairs): not the shipped force field")
    n_h = apply_hmr(system, cell.topology, HMR_AMU)
    mass = sum(system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles()))
    baro = openmm.MonteCarloBarostat(1.0 * unit.bar, case.temperature_K * unit.kelvin, BAROSTAT_EVERY)
    baro.setFrequency(0)  # off until an NPT stage
    system.addForce(baro)
    integ = openmm.LangevinMiddleIntegrator(case.temperature_K * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                            TIMESTEP_FS * unit.femtosecond)
    platform = pick_platform(args.platform)
    ctx = openmm.Context(system, integ, platform)
    ctx.setPeriodicBoxVectors(*cell.topology.getPeriodicBoxVectors())
    box = np.array([v.value_in_unit(unit.nanometer) for v in cell.topology.getPeriodicBoxVectors()])
    pos, _ = make_constraints_contiguous(system, np.asarray(cell.positions_nm), box)
    ctx.setPositions(pos * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 2000)
    ctx.setVelocitiesToTemperature(case.temperature_K * unit.kelvin, args.seed + 1)
    build_s = time.time() - t0
    log(f"[{case.name}] {cell.n_atoms} atoms ({n_h} H repartitioned), built+minimised in {build_s:.0f} s, "
        f"start {density_g_cm3(ctx, mass):.3f} g/cm3, platform {platform.getName()}")

    series = []   # (stage, t_ps, rho)
    sim_ps = [0.0]
    stopped = [False]   # a stage stopped at the wall cap

    def save_partial(name):
        """The density series so far (``JSON.NAME.partial``): a killed or capped run leaves its data behind."""
        if not args.json:
            return
        part = Path(args.json + f".{case.name}.partial")
        tmp = part.with_name(part.name + ".tmp")
        tmp.write_text(json.dumps({"system": case.name, "partial": True, "last_stage": name,
                                   "series": [[s_, round(t_, 3), round(r_, 5)] for s_, t_, r_ in series]}))
        tmp.replace(part)

    def stage(name, T, p_bar, ps, deadline_s=None):
        """Run ``ps`` of one stage; with ``deadline_s`` (seconds since t0) stop at the first sample past it."""
        integ.setTemperature(T * unit.kelvin)
        if p_bar is None:
            baro.setFrequency(0)
        else:
            baro.setFrequency(BAROSTAT_EVERY)
            ctx.setParameter(openmm.MonteCarloBarostat.Pressure(), p_bar)
            ctx.setParameter(openmm.MonteCarloBarostat.Temperature(), T)
        n = max(1, int(round(ps * 1000.0 / TIMESTEP_FS / SAMPLE_STEPS)))
        t_stage0 = sim_ps[0]
        for _ in range(n):
            integ.step(SAMPLE_STEPS)
            sim_ps[0] += SAMPLE_STEPS * TIMESTEP_FS / 1000.0
            series.append((name, sim_ps[0], density_g_cm3(ctx, mass)))
            if len(series) % PARTIAL_EVERY == 0:
                save_partial(name)
            if deadline_s is not None and time.time() - t0 > deadline_s:
                stopped[0] = True
                break
        save_partial(name)
        log(f"[{case.name}] {name:>6s} T {T:5.0f} K  P {'-' if p_bar is None else f'{p_bar:g}':>7s} bar  "
            f"{sim_ps[0] - t_stage0:6.1f} ps  rho {series[-1][2]:.4f}  ({time.time() - t0:.0f} s)")

    T = case.temperature_K
    stage("nvt", T, None, 10.0)
    quench = case.anneal and args.glass == "quench"
    if quench:
        # alternative glass preparation: a 1-bar melt at --quench-from-K, then NPT cooling in 10 K steps
        # at --quench-K-per-ps down to T (a plain MD quench; no published schedule is followed)
        stage("melt", args.quench_from_K, 1.0, args.quench_hold_ps)
        t_k = args.quench_from_K
        while t_k - 10.0 > T:
            t_k -= 10.0
            stage(f"q{t_k:.0f}", t_k, 1.0, 10.0 / args.quench_K_per_ps)
    elif case.anneal:
        for k, (tk, pf, ps) in enumerate(CYCLE_21, start=1):
            stage(f"md{k}", args.tmax_K if tk == "max" else T, None if pf is None else pf * args.pmax_bar,
                  ps * args.cycle_scale)
    t_eq0 = time.time()
    stage("equil", T, 1.0, args.equil_ps)
    # production: as long as asked, or until the wall cap (rate measured over the equilibration)
    rate_s_per_ps = (time.time() - t_eq0) / max(args.equil_ps, 1e-9)
    left_s = cap_s - (time.time() - t0)
    prod_ps = args.prod_ps
    capped = False
    if rate_s_per_ps * prod_ps > left_s:
        prod_ps = max(0.0, left_s / rate_s_per_ps)
        capped = True
    prod_ps = math.floor(prod_ps / (SAMPLE_STEPS * TIMESTEP_FS / 1000.0)) * SAMPLE_STEPS * TIMESTEP_FS / 1000.0
    if prod_ps > 0:
        # the rate can drop under load: the wall cap is also enforced sample by sample
        stage("prod", T, 1.0, prod_ps, deadline_s=cap_s)
        capped = capped or stopped[0]
    x = np.array([r for s, _, r in series if s == "prod"])
    dt = SAMPLE_STEPS * TIMESTEP_FS / 1000.0
    res = {"system": case.name, "temperature_K": T, "atoms": cell.n_atoms, "chains": case.n_chains,
           "n_repeat": case.n_repeat, "start_density": case.start_density,
           "reference": list(case.reference), "source": case.source, "simulated_ns": sim_ps[0] / 1000.0,
           "production_ns": len(x) * dt / 1000.0, "production_capped": capped,
           "wall_s": time.time() - t0, "scale14": args.scale14 if args.scale14 is not None else 0.5, "platform": platform.getName(),
           "protocol": (("1-bar quench from %g K (%g ps hold), %g K/ps in 10 K steps + NPT"
                         % (args.quench_from_K, args.quench_hold_ps, args.quench_K_per_ps)) if quench else
                        ("21-step cycle x%g (Tmax %g K, Pmax %g bar) + NPT" % (args.cycle_scale, args.tmax_K,
                                                                               args.pmax_bar)))
           if case.anneal else "NVT 10 ps + NPT"}
    if case.salt:
        res["salt"] = {"salt": case.salt, "r_li_per_eo": cell.provenance.get("salt", {}).get("r_li_per_eo")}
    if len(x) >= 8:
        ba = block_average(x, dt)
        dr = drift_test(x, dt)
        res.update(density=ba["mean"], stderr=ba["stderr"], tau_ps=ba["tau_ps"], n_blocks=ba["n_blocks"],
                   warnings=ba["warnings"], drift=dr["drift"], drift_se=dr["se"], converged=dr["converged"],
                   deviation_pct=100.0 * (ba["mean"] - case.ref_mid) / case.ref_mid)
    else:
        res.update(density=None, converged=False, warnings=["no production samples (wall cap)"])
    res["series"] = [[s, round(t, 3), round(r, 5)] for s, t, r in series]
    return res


def fmt_row(r: dict) -> str:
    if r.get("density") is None:
        return f"{r['system']:11s} {r['temperature_K']:5.0f} {r['atoms']:6d}   no production data"
    se = r["stderr"] if r["stderr"] is not None else math.nan
    dse = r["drift_se"] if r["drift_se"] is not None else math.nan
    lo, hi = r["reference"]
    ref = f"{lo:.3f}" if lo == hi else f"{lo:.3f}-{hi:.3f}"
    conv = "yes" if r["converged"] else "NOT CONVERGED"
    return (f"{r['system']:11s} {r['temperature_K']:5.0f} {r['atoms']:6d} {r['simulated_ns']:6.3f} "
            f"{r['production_ns']:6.3f} {r['density']:7.4f} {se:7.4f} {r['drift']:+8.4f} {dse:7.4f} "
            f"{ref:>11s} {r['deviation_pct']:+6.1f}  {conv}{' (capped)' if r['production_capped'] else ''}")


HEADER = (f"{'system':11s} {'T/K':>5s} {'atoms':>6s} {'ns':>6s} {'prodns':>6s} {'rho':>7s} {'SE':>7s} "
          f"{'drift':>8s} {'SEdrft':>7s} {'experiment':>11s} {'dev %':>6s}  converged")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(c.name for c in CASES))
    ap.add_argument("--platform", default="auto", help="auto (CUDA > OpenCL > CPU), or a platform name")
    ap.add_argument("--equil-ps", type=float, default=300.0, help="1-bar NPT discarded before production")
    ap.add_argument("--prod-ps", type=float, default=600.0, help="1-bar NPT production (averaged)")
    ap.add_argument("--max-wall-min", type=float, default=20.0, help="wall-clock cap per system")
    ap.add_argument("--cycle-scale", type=float, default=1.0, help="factor on the 21-step cycle stage lengths")
    ap.add_argument("--tmax-K", type=float, default=600.0)
    ap.add_argument("--pmax-bar", type=float, default=5.0e4)
    ap.add_argument("--glass", choices=("cycle", "quench"), default="cycle",
                    help="glass preparation for PAN: the 21-step cycle (default) or a 1-bar NPT quench from a melt")
    ap.add_argument("--quench-from-K", type=float, default=500.0, help="quench: melt temperature")
    ap.add_argument("--quench-hold-ps", type=float, default=100.0, help="quench: 1-bar NPT time at the melt temperature")
    ap.add_argument("--quench-K-per-ps", type=float, default=1.0, help="quench: cooling rate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chains", type=int, default=None,
                    help="number of chains instead of each selected system's default (a finite-size / chain-end test)")
    ap.add_argument("--units", type=int, default=None,
                    help="repeat units per chain instead of each selected system's default")
    ap.add_argument("--scale14", type=float, default=None,
                    help="diagnostic: 1-4 Coulomb and LJ scale instead of the shipped 0.5 (not the shipped force field)")
    ap.add_argument("--json", default=None, help="write all results (incl. density series) here")
    args = ap.parse_args(argv)
    names = [c.name for c in CASES]
    wanted = names if not args.only else args.only.split(",")
    bad = [w for w in wanted if w not in names]
    if bad:
        ap.error(f"unknown system {bad[0]!r}; allowed: {', '.join(names)}")
    for opt, val in (("--chains", args.chains), ("--units", args.units)):
        if val is not None and val < 1:
            ap.error(f"{opt} must be a positive integer, got {val}")

    def log(msg):
        print(msg, flush=True)

    results = []
    prior = []
    if args.json and Path(args.json).exists():
        prior = [r for r in json.loads(Path(args.json).read_text())["results"] if r["system"] not in wanted]
    for case in CASES:
        if case.name not in wanted:
            continue
        case = replace(case, n_chains=args.chains or case.n_chains, n_repeat=args.units or case.n_repeat)
        results.append(run_case(case, args, log))
        if args.json:
            out = {"settings": {k: v for k, v in vars(args).items() if k != "json"},
                   "results": sorted(prior + results, key=lambda r: names.index(r["system"]))}
            tmp = Path(args.json + ".tmp")
            tmp.write_text(json.dumps(out, indent=1))
            tmp.replace(args.json)
    print(f"HMR {HMR_AMU:g} amu + {TIMESTEP_FS:g} fs, cut-off {CUTOFF_NM:g} nm, equil {args.equil_ps:g} ps, "
          f"production up to {args.prod_ps:g} ps, cap {args.max_wall_min:g} min/system")
    print(HEADER)
    for r in results:
        print(fmt_row(r))
        for w in r.get("warnings", []):
            print(f"  warning: {w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
