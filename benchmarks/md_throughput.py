"""MD throughput: the aseimd runner against bare OpenMM stepping, same System, same platform, one process.

    python benchmarks/md_throughput.py                         # builds a 1 M LiPF6 EC:DMC box
    python benchmarks/md_throughput.py --system DIR --platform CUDA --steps 20000
    python benchmarks/md_throughput.py --reporting dense       # worst case: report every 100 steps

The runner figure is ``RunResult.ns_per_day`` of a production-only protocol
(stepping plus every reporter: thermo.csv, unwrapped DCD, progress, blow-up
guard, checkpoints and the restart from each checkpoint; not the one-off
Context creation and minimisation). The bare figure is
``LangevinMiddleIntegrator.step(n)`` on a Context of the same System (barostats
stripped, as the runner does), same integrator settings, same platform and
platform properties, started from the runner's final state. Both start from the
same relaxed liquid (minimisation + a short NVT run first). Runs alternate
(runner, bare, runner, bare, ...) and the best of each is compared.
Goal: ratio >= 0.97 with production reporting.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import openmm as mm
import openmm.unit as unit

from aseimd.simulate.platform import select_platform
from aseimd.simulate.prepare import copy_system, read_system_dir, strip_barostats
from aseimd.simulate.protocol import Protocol
from aseimd.simulate.runner import run_protocol

REPORTING = {
    # the default protocol's production reporting (thermo 1 ps, frames 2 ps, checkpoint 100 ps at 2 fs)
    "production": {"thermo_steps": 500, "trajectory_steps": 1000, "checkpoint_steps": 50000},
    # a stress test: everything every 100 steps, a checkpoint (and restart) every 1000
    "dense": {"thermo_steps": 100, "trajectory_steps": 100, "checkpoint_steps": 1000},
}


def _system_dir(args: argparse.Namespace, scratch: Path) -> Path:
    if args.system:
        return Path(args.system)
    try:
        from aseimd.build.cell import write_system_dir
        from aseimd.build.electrolyte import build_electrolyte

        cell = build_electrolyte("1.0 M LiPF6 in EC:DMC 1:1 v/v", n_solvent=args.n_solvent, seed=1)
        return write_system_dir(cell, scratch / "electrolyte", cutoff_nm=args.cutoff_nm)
    except ImportError:  # builder not available: the toy liquid
        from aseimd.simulate.toy import write_toy_system

        return write_toy_system(scratch / "toy", n_lj=1200, n_water=300, box_nm=4.6)


def _protocol(steps: int, reporting: str) -> Protocol:
    return Protocol.from_dict({
        "name": f"throughput-{reporting}",
        "seed": 1,
        "report": REPORTING[reporting],
        "stages": [{"type": "production", "length_steps": steps, "volume_from": "none"}],
    })


def _equilibrated(system_dir: Path, scratch: Path, platform: str, threads: int | None, steps: int) -> Path:
    """Minimise and run ``steps`` of NVT, then write a system directory holding the final positions.

    Both timed runs then start from a relaxed liquid (right after minimisation of a
    freshly packed box the dynamics are not representative of production).
    """
    import shutil

    import openmm.app as app

    warm = Protocol.from_dict({
        "name": "throughput-warm-up", "seed": 2,
        "report": {"thermo_steps": 100, "trajectory_steps": 100, "checkpoint_steps": 100000},
        "stages": [{"type": "minimize", "max_iterations": 1000}, {"type": "nvt", "length_steps": steps}],
    })
    run_protocol(system_dir, scratch / "warm-up", warm, platform, progress=False, threads=threads)
    state = mm.XmlSerializer.deserialize((scratch / "warm-up" / "state.xml").read_text())
    out = scratch / "equilibrated"
    out.mkdir()
    for name in ("system.xml", "build.json"):
        shutil.copy(system_dir / name, out / name)
    inputs = read_system_dir(system_dir)
    topology = inputs.topology
    topology.setPeriodicBoxVectors(state.getPeriodicBoxVectors())
    with open(out / "system.pdb", "w") as fh:
        app.PDBFile.writeFile(topology, state.getPositions(), fh)
    return out


def _bare_ns_per_day(system_dir: Path, run_dir: Path, protocol: Protocol, platform: str,
                     threads: int | None, steps: int) -> float:
    inputs = read_system_dir(system_dir)
    system = copy_system(inputs.system)
    strip_barostats(system)
    choice = select_platform(platform, threads=threads)
    integrator = mm.LangevinMiddleIntegrator(protocol.temperature_K * unit.kelvin,
                                             protocol.friction_per_ps / unit.picosecond,
                                             protocol.timestep_ps * unit.picoseconds)
    integrator.setRandomNumberSeed(7)
    context = mm.Context(system, integrator, choice.platform(), dict(choice.properties))
    context.setState(mm.XmlSerializer.deserialize((run_dir / "state.xml").read_text()))
    integrator.step(min(100, steps))  # warm-up
    context.getState(getEnergy=True)
    t0 = time.perf_counter()
    integrator.step(steps)
    context.getState(getPositions=True)  # wait for the device
    seconds = time.perf_counter() - t0
    return steps * protocol.timestep_ps * 1e-3 / (seconds / 86400.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", help="built system directory (default: build 1 M LiPF6 in EC:DMC)")
    parser.add_argument("--n-solvent", type=int, default=100, help="solvent molecules of the built box")
    parser.add_argument("--cutoff-nm", type=float, default=1.0)
    parser.add_argument("--platform", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--warm-up-steps", type=int, default=2000, help="NVT steps before timing")
    parser.add_argument("--reporting", choices=sorted(REPORTING), default="production")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aseimd-throughput-") as tmp:
        scratch = Path(tmp)
        system_dir = _equilibrated(_system_dir(args, scratch), scratch, args.platform, args.threads, args.warm_up_steps)
        inputs = read_system_dir(system_dir)
        protocol = _protocol(args.steps, args.reporting)
        runner, bare = [], []
        platform_name = "?"
        for i in range(args.repeats):
            run_dir = scratch / f"run{i}"
            result = run_protocol(system_dir, run_dir, protocol, args.platform, progress=False,
                                  threads=args.threads)
            platform_name = result.platform
            runner.append(result.ns_per_day)
            bare.append(_bare_ns_per_day(system_dir, run_dir, protocol, args.platform, args.threads, args.steps))
            print(f"repeat {i + 1}: aseimd runner {runner[-1]:9.3f} ns/day | bare OpenMM {bare[-1]:9.3f} ns/day")
        best_runner, best_bare = max(runner), max(bare)
        print(f"system: {inputs.system.getNumParticles()} atoms ({system_dir.name}); platform {platform_name}; "
              f"{args.steps} steps of {protocol.timestep_fs} fs; "
              f"reporting '{args.reporting}' {REPORTING[args.reporting]}")
        print(f"aseimd runner: {best_runner:.3f} ns/day")
        print(f"bare OpenMM:   {best_bare:.3f} ns/day")
        print(f"ratio runner/bare: {best_runner / best_bare:.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main()
