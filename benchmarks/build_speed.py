"""Chain-growth speed (atoms/s) at DP 60, next to RadonPy's random walk (~6 atoms/s, issue 8 anchor).

Usage: PYTHONPATH=src python benchmarks/build_speed.py [--chains 6] [--dp 60]

Prints atoms/s of aseimd's self-avoiding growth (no relaxation) for PEO and PAN
chains in a bulk box at 50 % of the melt density (the density it grows at).
With ``--radonpy`` RadonPy's random walk (``radonpy.core.poly.polymerize_rw``)
is timed on one PEO chain of the same DP, if it is importable (it installs from
PyPI as ``radonpy-pypi``; it is not a dependency of aseimd); otherwise the anchor
is printed as quoted, not measured.

``--interface`` also times ``aseimd.build.interface.build_interface`` on a ~20k-
and a ~50k-atom Li(100) | PEO | 1 M LiPF6 EC:DMC | PEO cell (goal, issue 8:
under 60 s for 50k atoms on a 2-core machine), with wall time, CPU time of the
process and its Packmol children, and the load average (the build machine is
shared, so wall time alone says little).
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


def radonpy_rate(dp: int) -> float | None:
    """Atoms/s of RadonPy's ``poly.polymerize_rw`` for one PEO chain (None if RadonPy is missing)."""
    try:
        from radonpy.core import poly, utils
    except ImportError:
        return None
    mol = utils.mol_from_smiles("*CCO*")
    t0 = time.perf_counter()
    chain = poly.polymerize_rw(mol, dp, tacticity="atactic")
    return chain.GetNumAtoms() / (time.perf_counter() - t0)


#: Interface cells timed with --interface: (label, lateral nm, PEO layer nm, electrolyte nm).
INTERFACE_CELLS = (("~20k atoms", 5.0, 2.0, 4.0), ("~50k atoms", 7.0, 2.5, 5.0))
INTERFACE_GOAL_S = 60.0


def interface_build(lateral_nm: float, polymer_nm: float, electrolyte_nm: float) -> tuple[int, float, float]:
    """Build one interface cell; return (atoms, wall s, CPU s of this process and its children)."""
    import resource

    from aseimd.build.interface import build_interface

    spec = {"slab": {"face": "100", "layers": 6, "lateral_nm": [lateral_nm, lateral_nm]},
            "polymer": {"name": "PEO", "thickness_nm": polymer_nm, "n_repeat": 20},
            "electrolyte": {"recipe": "1.0 M LiPF6 in EC:DMC 1:1 v/v", "thickness_nm": electrolyte_nm},
            "cutoff_nm": 1.2, "seed": 0}

    def cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    c0, t0 = cpu(), time.perf_counter()
    cell = build_interface(spec)
    return cell.n_atoms, time.perf_counter() - t0, cpu() - c0


def interface_table() -> None:
    import os

    import aseimd.build.interface  # noqa: F401  (imports are not part of the build time)

    print(f"\ninterface cells (goal: 50k atoms < {INTERFACE_GOAL_S:g} s on 2 cores); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'cell':12s} {'atoms':>7s} {'wall s':>8s} {'CPU s':>8s} {'goal':>6s}")
    for label, lateral, poly, elyte in INTERFACE_CELLS:
        n, wall, cpu_s = interface_build(lateral, poly, elyte)
        goal = "" if n < 40000 else ("met" if wall < INTERFACE_GOAL_S else "missed")
        print(f"{label:12s} {n:7d} {wall:8.1f} {cpu_s:8.1f} {goal:>6s}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=6)
    ap.add_argument("--dp", type=int, default=60)
    ap.add_argument("--interface", action="store_true", help="also time the 20k / 50k interface cells")
    ap.add_argument("--radonpy", action="store_true", help="also time RadonPy's random walk (slow: ~1-2 min)")
    args = ap.parse_args()
    radon_rate = radonpy_rate(args.dp) if args.radonpy else None
    if radon_rate is None:
        print(f"RadonPy: not timed (pass --radonpy with radonpy importable); quoted anchor "
              f"{RADONPY_QUOTED_ATOMS_PER_S:g} atoms/s at DP 60, goal >= 100x")
    else:
        print(f"RadonPy polymerize_rw, one PEO chain DP {args.dp}: {radon_rate:.1f} atoms/s (measured)")
    anchor = radon_rate or RADONPY_QUOTED_ATOMS_PER_S
    print(f"{'polymer':8s} {'atoms':>7s} {'atoms/s':>9s} {'x RadonPy':>10s}")
    for name in ("PEO", "PAN"):
        n, rate = growth_rate(name, args.dp, args.chains)
        print(f"{name:8s} {n:7d} {rate:9.0f} {rate / anchor:10.0f}")
    if args.interface:
        interface_table()


if __name__ == "__main__":
    main()
