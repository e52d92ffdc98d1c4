"""Build every shipped ``systems/`` interface spec at its shipped size and show it minimises and runs.

Usage::

    nice -n 10 env PYTHONPATH=src python benchmarks/interface_specs.py --workdir /tmp/specs
        [--only li-pan-lipf6,li-electrolyte] [--npt-steps 300] [--threads 2] [--json out.json]

For each spec: ``aseimd build interface systems/NAME.yaml -o WORKDIR/NAME`` (timed, the real CLI in a
subprocess), then from the written directory: atoms, net charge of ``system.xml`` (e), the closest
non-bonded pair (not 1-2/1-3 partners, minimum image), bonds spearing rings, and a short run of the
shipped ``workflows/interface.yaml`` with its stages cut down by ``--set`` overrides (minimise at most
``--min-iter`` iterations -> ``--nvt-steps`` NVT -> ``--npt-steps`` z-only NPT with the barostat every
``--baro-every`` steps -> 20 NVT production steps at the NPT mean box).  Reported from ``state.xml`` and
``thermo.csv``: box z before/after, x/y unchanged, the largest change of any Li-Li vector of the slab
(rigid: must stay below 1e-4 nm), finite energies and the last temperature.  A few hundred steps show
that the cell minimises and does not blow up; they are not an equilibration.

Built directories are large (tens of MB each): keep ``--workdir`` outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPECS = ["li-electrolyte", "li-peo-lipf6", "li-pan-lipf6", "li-pdms-lipf6", "li-nafion-lipf6"]


def check_spec(name: str, args, log) -> dict:
    import openmm as mm
    from openmm import unit

    from aseimd.build.cell import read_system_dir, system_charge_e
    from aseimd.build.geometry import closest_nonbonded_pair, speared_rings
    from aseimd.forcefield.metal import metal_atom_indices
    from aseimd.simulate.runner import run_protocol

    out = Path(args.workdir) / name
    res: dict = {"spec": name}
    if out.exists() and args.reuse:
        res["build_s"] = None
        log(f"[{name}] reusing {out}")
    else:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", "from aseimd.cli import main; main()", "build", "interface",
                               str(ROOT / "systems" / f"{name}.yaml"), "-o", str(out)],
                              env=env, capture_output=True, text=True)
        res["build_s"] = time.time() - t0
        if proc.returncode != 0:
            res["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
            log(f"[{name}] build FAILED rc {proc.returncode}: {res['error']}")
            return res
        log(f"[{name}] built in {res['build_s']:.0f} s")
    build = json.loads((out / "build.json").read_text())
    sd = read_system_dir(out)
    pdb, system = sd[0], sd[1]
    top = pdb.topology
    pos0 = np.asarray(pdb.positions.value_in_unit(unit.nanometer))
    box0 = np.asarray(build["box_nm"], dtype=float)
    slab = metal_atom_indices(top)
    pair = closest_nonbonded_pair(top, pos0, box0)
    res.update(atoms=build["n_atoms"], residue_counts=build["residue_counts"], box_nm=box0.tolist(),
               net_charge_e=system_charge_e(system), slab_atoms=int(len(slab)),
               closest_pair_nm=None if pair is None else pair.distance_nm,
               speared_rings=len(speared_rings(top, pos0, box0)),
               layers=[(layer["name"], layer["z_nm"]) for layer in build["layers"]])
    log(f"[{name}] {res['atoms']} atoms, box {box0[0]:.3f} x {box0[1]:.3f} x {box0[2]:.3f} nm, net charge "
        f"{res['net_charge_e']:+.2e} e, closest non-bonded pair {res['closest_pair_nm']:.3f} nm, "
        f"speared rings {res['speared_rings']}")
    if args.no_md:
        return res
    overrides = [f"stages.minimize.max_iterations={args.min_iter}", f"stages.nvt.length_steps={args.nvt_steps}",
                 f"stages.npt.length_steps={args.npt_steps}", f"stages.npt.barostat_interval_steps={args.baro_every}",
                 "stages.production.length_steps=20", "report.thermo_steps=20", "report.trajectory_steps=20",
                 "report.checkpoint_steps=1000"]
    run_dir = Path(args.workdir) / f"{name}-run"
    t0 = time.time()
    rr = run_protocol(out, run_dir, "interface", args.platform, force=run_dir.exists(), progress=False,
                      threads=args.threads, overrides=overrides)
    res["md_s"] = time.time() - t0
    res["md_steps"] = rr.steps_done
    res["ns_per_day"] = rr.ns_per_day
    state = mm.XmlSerializer.deserialize((run_dir / "state.xml").read_text())
    pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    box = np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    lat0 = pos0[slab] - pos0[slab][0]
    lat = pos[slab] - pos[slab][0]
    with open(run_dir / "thermo.csv") as fh:
        rows = list(csv.DictReader(fh))
    last = rows[-1] if rows else {}
    res.update(box_z_before_nm=float(box0[2]), box_z_after_nm=float(box[2]),
               box_xy_unchanged=bool(np.allclose(box[:2], box0[:2], atol=1e-9)),
               slab_max_lattice_change_nm=float(np.abs(lat - lat0).max()) if len(slab) else None,
               positions_finite=bool(np.isfinite(pos).all()), thermo_last=last)
    npt_boxes = [float(r["Box c (nm)"]) for r in rows if r.get("Stage") == "npt"]
    if npt_boxes:
        res["npt_box_z_range_nm"] = [min(npt_boxes), max(npt_boxes)]
    res["potential_finite"] = all(math.isfinite(float(r["Potential Energy (kJ/mol)"])) for r in rows)
    res["temperature_last_K"] = float(last["Temperature (K)"]) if last else None
    log(f"[{name}] MD {rr.steps_done} steps in {res['md_s']:.0f} s ({rr.ns_per_day or math.nan:.2f} ns/day): "
        f"box z {box0[2]:.4f} -> {box[2]:.4f} nm, xy unchanged {res['box_xy_unchanged']}, slab max Li-Li vector "
        f"change {res['slab_max_lattice_change_nm']:.2e} nm, last T {res['temperature_last_K']} K, "
        f"energies finite {res['potential_finite']}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", required=True, help="where the built cells and runs go (outside the repo)")
    ap.add_argument("--only", default=None, help="comma-separated subset of " + ",".join(SPECS))
    ap.add_argument("--reuse", action="store_true", help="use an existing WORKDIR/NAME instead of rebuilding")
    ap.add_argument("--platform", default="CPU")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--min-iter", type=int, default=500)
    ap.add_argument("--nvt-steps", type=int, default=100)
    ap.add_argument("--npt-steps", type=int, default=300)
    ap.add_argument("--baro-every", type=int, default=5)
    ap.add_argument("--no-md", action="store_true", help="build and static checks only, no MD")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    wanted = SPECS if not args.only else args.only.split(",")
    bad = [w for w in wanted if w not in SPECS]
    if bad:
        ap.error(f"unknown spec {bad[0]!r}; allowed: {', '.join(SPECS)}")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    results = []
    for name in wanted:
        results.append(check_spec(name, args, log))
        if args.json:
            tmp = Path(args.json + ".tmp")
            tmp.write_text(json.dumps({"settings": vars(args), "results": results}, indent=1, default=str))
            tmp.replace(args.json)
    print(f"{'spec':16s} {'atoms':>6s} {'build s':>7s} {'charge e':>9s} {'min pair':>8s} {'rings':>5s} "
          f"{'z0 nm':>7s} {'z1 nm':>7s} {'dz nm':>7s} {'slab dmax':>9s} {'MD s':>5s}")
    for r in results:
        if "error" in r:
            print(f"{r['spec']:16s} build failed: {r['error']}")
            continue
        bs = "reused" if r["build_s"] is None else f"{r['build_s']:.0f}"
        if "md_s" not in r:
            print(f"{r['spec']:16s} {r['atoms']:6d} {bs:>7s} {r['net_charge_e']:+9.1e} {r['closest_pair_nm']:8.3f} "
                  f"{r['speared_rings']:5d}  (no MD)")
            continue
        print(f"{r['spec']:16s} {r['atoms']:6d} {bs:>7s} {r['net_charge_e']:+9.1e} {r['closest_pair_nm']:8.3f} "
              f"{r['speared_rings']:5d} {r['box_z_before_nm']:7.3f} {r['box_z_after_nm']:7.3f} "
              f"{r['box_z_after_nm'] - r['box_z_before_nm']:+7.3f} {r['slab_max_lattice_change_nm']:9.1e} "
              f"{r['md_s']:5.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
