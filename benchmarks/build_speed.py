"""Chain-growth speed (atoms/s) at DP 60, next to RadonPy's random walk (~6 atoms/s, issue 8 anchor).

Usage: PYTHONPATH=src python benchmarks/build_speed.py [--chains 6] [--dp 60]

Prints atoms/s of aseimd's self-avoiding growth (no relaxation) for PEO and PAN
chains in a bulk box at 50 % of the melt density (the density it grows at).
RadonPy is timed only if it is importable (``import radonpy``); otherwise the
anchor is printed as quoted, not measured.  Interface-cell (20k/50k atoms)
timing belongs to the interface builder.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

RADONPY_QUOTED_ATOMS_PER_S = 6.0


def growth_rate(name: str, dp: int, chains: int, seed: int = 0) -> tuple[int, float]:
    from aseimd.build.chain_growth import ChainGrower, GrowthRegion, blueprint
    from aseimd.build.ffgeometry import ff_geometry
    from aseimd.build.polymer import PolymerSpec, chain_sequence, tacticity_signs
    from aseimd.forcefield.loader import residue_templates

    spec = PolymerSpec(name, n_repeat=dp)
    rng = np.random.default_rng(seed)
    bps = [blueprint(chain_sequence(spec, rng), residue_templates(), ff_geometry(), 300.0) for _ in range(chains)]
    n = sum(b.n_atoms for b in bps)
    mass = sum(sum(12.0 if e == "C" else 1.0 if e == "H" else 15.0 for e in b.elements) for b in bps)
    edge = (mass / 6.022e23 / (0.5 * spec.polymer.density_g_per_cm3) * 1e21) ** (1 / 3)
    grower = ChainGrower(GrowthRegion(np.full(3, edge), True), n, rng)
    t0 = time.perf_counter()
    off = 0
    for b in bps:
        grower.grow(b, off, tacticity_signs("atactic", len(b.stereocentres), rng))
        off += b.n_atoms
    return n, n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=6)
    ap.add_argument("--dp", type=int, default=60)
    args = ap.parse_args()
    try:
        import radonpy  # noqa: F401
        radon = "installed, but not timed by this script"
    except ImportError:
        radon = "not installed (pip could not provide it here); quoted figure used"
    print(f"RadonPy: {radon}; anchor {RADONPY_QUOTED_ATOMS_PER_S:g} atoms/s at DP 60, goal >= 100x")
    print(f"{'polymer':8s} {'atoms':>7s} {'atoms/s':>9s} {'x RadonPy':>10s}")
    for name in ("PEO", "PAN"):
        n, rate = growth_rate(name, args.dp, args.chains)
        print(f"{name:8s} {n:7d} {rate:9.0f} {rate / RADONPY_QUOTED_ATOMS_PER_S:10.0f}")


if __name__ == "__main__":
    main()
