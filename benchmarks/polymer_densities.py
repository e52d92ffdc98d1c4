"""NPT densities of polymer melts against ../shared/REFERENCE_DATA.md (goal within 5 %).

Usage: PYTHONPATH=src python benchmarks/polymer_densities.py [--ns 0.1] [--platform CPU] [--only PEO]

Builds each melt with aseimd.build.polymer.build_melt, minimises, runs NVT then
NPT (MonteCarloBarostat, 1 bar) with OpenMM directly and prints the mean
density of the second half of the NPT run next to the reference.  Short runs
(default 0.1 ns) are far from converged for polymers: treat them as smoke
numbers and say how long they were.
"""

from __future__ import annotations

import argparse

import numpy as np

CASES = [  # name, kwargs, T (K), reference (g/cm3), source
    ("PEO", dict(n_repeat=20), None, 353.0, 1.076, "Becht 1967 (1.073-1.080)"),
    ("PDMS", dict(n_repeat=20), None, 298.0, 0.967, "handbook 0.965-0.97 (verify)"),
    ("PAN", dict(n_repeat=20), None, 298.0, 1.18, "amorphous PAN (verify)"),
    ("PEO-LiTFSI", dict(n_repeat=20), ("LiTFSI", 1 / 0.06), 363.0, 1.230, "Villaluenga et al., JES 2018"),
]


def run_case(name, kw, salt, T, ns, platform, seed=0):
    import openmm
    from openmm import unit

    from aseimd.build.polymer import PolymerSpec, build_melt
    from aseimd.forcefield import create_system

    poly = "PEO" if name.startswith("PEO") else name
    cell = build_melt(PolymerSpec(poly, n_chains=8, **kw), temperature_K=T, seed=seed,
                      salt=salt[0] if salt else None, eo_per_li=salt[1] if salt else None)
    system = create_system(cell.topology, cutoff_nm=min(1.0, 0.49 * cell.box_nm[0]))
    system.addForce(openmm.MonteCarloBarostat(1 * unit.bar, T * unit.kelvin, 25))
    integ = openmm.LangevinMiddleIntegrator(T * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picosecond)
    ctx = openmm.Context(system, integ, openmm.Platform.getPlatformByName(platform))
    ctx.setPositions(cell.positions_nm * unit.nanometer)
    openmm.LocalEnergyMinimizer.minimize(ctx, 10.0, 500)
    mass = sum(system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles()))
    n_steps = int(ns * 1000 / 0.002)
    rho = []
    for k in range(50):
        integ.step(max(1, n_steps // 50))
        v = ctx.getState().getPeriodicBoxVolume().value_in_unit(unit.nanometer ** 3)
        rho.append(mass / 6.02214076e23 / (v * 1e-21))
    return cell.n_atoms, float(np.mean(rho[25:])), float(np.std(rho[25:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", type=float, default=0.1)
    ap.add_argument("--platform", default="CPU")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    print(f"NPT {args.ns:g} ns per system (short: not converged for polymers)")
    print(f"{'system':12s} {'T/K':>5s} {'atoms':>6s} {'rho':>7s} {'ref':>6s} {'dev %':>6s}  source")
    for name, kw, salt, T, ref, src in CASES:
        if args.only and name != args.only:
            continue
        n, rho, sd = run_case(name, kw, salt, T, args.ns, args.platform)
        print(f"{name:12s} {T:5.0f} {n:6d} {rho:7.3f} {ref:6.3f} {100 * (rho - ref) / ref:6.1f}  {src}")


if __name__ == "__main__":
    main()
