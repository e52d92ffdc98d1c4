"""``aseimd quickstart``: the embedded default, end to end, in minutes on a laptop CPU.

It chains the same commands a user would type — ``build electrolyte``, ``run``,
``analyze diffusion``, ``analyze transference``, ``analyze coordination`` — on a
small 1 M LiPF6 EC/DMC box, so what it prints and writes is exactly what those
commands produce. Running it again resumes the run and keeps finished outputs.
"""

from __future__ import annotations

from pathlib import Path

import click

#: The embedded default system.
QUICKSTART_RECIPE = "1.0 M LiPF6 in EC:DMC 1:1 v/v"
QUICKSTART_N_SOLVENT = 80
QUICKSTART_CUTOFF_NM = 0.9
#: Smallest box whose expected equilibrium edge holds the 0.9 nm cut-off with the build-time margin
#: (= aseimd.build.composition.min_n_solvent_for_cutoff(QUICKSTART_RECIPE, QUICKSTART_CUTOFF_NM); tested).
QUICKSTART_MIN_N_SOLVENT = 53
QUICKSTART_TEMPERATURE_K = 298.15


@click.command("quickstart")
@click.option("-o", "--output", "out_dir", default="aseimd-quickstart", show_default=True,
              type=click.Path(file_okay=False), help="Directory for system/, run/ and analysis/.")
@click.option("--platform", default="auto", show_default=True,
              help="auto (CUDA > OpenCL > CPU) or CUDA|OpenCL|CPU|Reference.")
@click.option("--n-solvent", type=click.IntRange(min=QUICKSTART_MIN_N_SOLVENT), default=QUICKSTART_N_SOLVENT, show_default=True,
              help="Solvent molecules in the box (bigger = slower).")
@click.option("--force", is_flag=True, help="Start over: rebuild, rerun and reanalyse.")
@click.option("--quiet", is_flag=True, help="No progress line while running.")
@click.pass_context
def quickstart(ctx: click.Context, out_dir: str, platform: str, n_solvent: int, force: bool, quiet: bool) -> None:
    """Build a small 1 M LiPF6 in EC:DMC 1:1 v/v box, run a short protocol, analyse it.

    \b
    OUT/system    system.pdb, system.xml, build.json      (aseimd build electrolyte)
    OUT/run       trajectory.dcd, thermo.csv, run.json     (aseimd run --protocol quickstart)
    OUT/analysis  diffusion, transference, coordination    (aseimd analyze ...; JSON, CSV, PNG)

    The run is tens of ps with a 0.9 nm cut-off and 4 fs steps with hydrogen mass
    repartitioning (HMR alters the dynamics): its transport numbers are a
    demonstration of the machinery, not results.
    Interrupted? Run the same command again: the run resumes from its checkpoint.
    """
    from aseimd.cli.analyze_structure import coordination
    from aseimd.cli.analyze_transport import diffusion, transference
    from aseimd.cli.build import electrolyte
    from aseimd.cli.run import run

    out = Path(out_dir)
    system_dir, run_dir, analysis_dir = out / "system", out / "run", out / "analysis"

    _step(1, f"build {QUICKSTART_RECIPE!r} ({n_solvent} solvent molecules) -> {system_dir}")
    if (system_dir / "build.json").is_file() and not force:
        click.echo(f"  {system_dir} exists; reusing it (--force rebuilds)")
    else:
        ctx.invoke(electrolyte, recipe=QUICKSTART_RECIPE, out_dir=str(system_dir), n_solvent=n_solvent,
                   cutoff_nm=QUICKSTART_CUTOFF_NM, seed=0, force=force)

    _step(2, f"run protocol 'quickstart' on platform {platform} -> {run_dir}")
    ctx.invoke(run, system_dir=str(system_dir), run_dir=str(run_dir), protocol="quickstart",
               platform=platform, force=force, quiet=quiet)

    top, traj = str(system_dir / "system.pdb"), str(run_dir / "trajectory.dcd")
    analysis_dir.mkdir(parents=True, exist_ok=True)
    analyses = [
        ("Li+, PF6-, EC, DMC self-diffusion (residue centres of mass)", "diffusion.json", diffusion,
         {"groups": ("Li=resname LI", "PF6=resname PF6", "EC=resname EC", "DMC=resname DMC"), "com": True}),
        ("transference numbers and conductivity (Onsager and Nernst-Einstein)", "transference.json",
         transference, {"cation": ("Li=resname LI",), "anion": ("PF6=resname PF6",),
                        "temperature_K": QUICKSTART_TEMPERATURE_K}),
        ("Li+ coordination by carbonyl O and PF6- F", "coordination.json", coordination, {}),
    ]
    for k, (what, name, command, options) in enumerate(analyses, start=3):
        json_path = analysis_dir / name
        _step(k, f"{what} -> {json_path}")
        if json_path.is_file() and not force:
            click.echo(f"  {json_path} exists; kept (--force recomputes)")
            continue
        ctx.invoke(command, top=top, traj=traj, json_path=str(json_path), force=force, **options)

    click.echo(
        f"\nDone. Open {analysis_dir}/*.png, or read the JSON files. This was a short demonstration run "
        f"({QUICKSTART_CUTOFF_NM} nm cut-off, 4 fs with hydrogen mass repartitioning, which alters the dynamics): "
        "its diffusion coefficients, conductivity and transference numbers are a demonstration, not results; "
        "the warnings above say which numbers are not converged. For real work: "
        "aseimd build electrolyte RECIPE -o DIR, then aseimd run DIR -o RUNDIR (default protocol)."
    )


def _step(k: int, text: str) -> None:
    click.secho(f"[{k}/5] {text}", bold=True)


COMMANDS: list[click.Command] = [quickstart]
