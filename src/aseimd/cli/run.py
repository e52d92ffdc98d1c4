"""CLI commands: run (thin layer; logic lives in :mod:`aseimd.simulate`)."""

from __future__ import annotations

import click

from aseimd.simulate.platform import PLATFORM_NAMES


@click.command("run")
@click.argument("system_dir", type=click.Path(path_type=str))
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(path_type=str),
              help="Run directory (running the same command again resumes it).")
@click.option("--protocol", default="default", show_default=True,
              help="Shipped protocol name (see workflows/) or a protocol YAML path.")
@click.option("--platform", default="auto", show_default=True,
              help=f"auto (CUDA > OpenCL > CPU) or one of {', '.join(PLATFORM_NAMES)}.")
@click.option("--force", is_flag=True,
              help="Replace an existing aseimd run in RUN_DIR and start over (never a folder with other files).")
@click.option("--threads", type=int, default=None, help="CPU platform threads.")
@click.option("--deterministic", is_flag=True,
              help="Deterministic force summation on CPU/CUDA (bit-exact resume there; slightly slower).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change a protocol setting, e.g. --set temperature_K=330 --set stages.production.length_ps=2000.")
@click.option("--quiet", is_flag=True, help="No progress line.")
def run(system_dir, run_dir, protocol, platform, force, threads, deterministic, overrides, quiet):
    """Run an MD protocol on a built system directory (minimize -> NVT -> NPT -> production).

    \b
    Writes RUN_DIR/trajectory.dcd (production frames, unwrapped), thermo.csv,
    checkpoint.chk, state.xml and run.json. Killed? Run the same command again
    to resume from the last checkpoint.
    """
    from aseimd.simulate.runner import run_protocol

    result = run_protocol(system_dir, run_dir, protocol, platform, force=force, progress=not quiet,
                          threads=threads, deterministic=deterministic, overrides=overrides)
    if result.status == "already finished":
        click.echo(f"run in {result.run_dir} already finished ({result.steps_done} steps); nothing to do")
        return
    rate = f", {result.ns_per_day:.2f} ns/day" if result.ns_per_day else ""
    resumed = f" (resumed from step {result.resumed_from_step})" if result.resumed_from_step is not None else ""
    click.echo(f"finished {result.steps_done} steps on {result.platform}{resumed}{rate}; "
               f"{result.n_frames} frames in {result.run_dir}/trajectory.dcd")


COMMANDS: list[click.Command] = [run]
