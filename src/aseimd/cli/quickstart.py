"""``aseimd quickstart``: the embedded default, end to end, in minutes on a laptop CPU.

A thin wrapper over :func:`aseimd.pipeline.run_pipeline` (the same pipeline
every campaign job runs): build a small 1 M LiPF6 EC/DMC box, run the
``quickstart`` protocol, analyse diffusion, transference and Li+ coordination.
It writes what ``aseimd build electrolyte``, ``aseimd run`` and ``aseimd
analyze ...`` write. Running it again resumes the run and keeps finished outputs.
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
QUICKSTART_TEMPERATURE_K = 298.15  # the temperature of workflows/quickstart.yaml
QUICKSTART_TITLES = {
    "diffusion": "Li+, PF6-, EC, DMC self-diffusion (residue centres of mass)",
    "transference": "transference numbers and conductivity (Onsager and Nernst-Einstein)",
    "coordination": "Li+ coordination by carbonyl O and PF6- F",
}


def quickstart_spec(platform: str, n_solvent: int):
    """The :class:`~aseimd.pipeline.PipelineSpec` of the quickstart."""
    from aseimd.pipeline import PipelineSpec

    return PipelineSpec.from_dict({
        "system": {"kind": "electrolyte", "recipe": QUICKSTART_RECIPE, "n_solvent": n_solvent,
                   "cutoff_nm": QUICKSTART_CUTOFF_NM, "seed": 0},
        "protocol": "quickstart",
        "analyses": {
            "diffusion": {"groups": {"Li": "resname LI", "PF6": "resname PF6", "EC": "resname EC",
                                     "DMC": "resname DMC"}, "com": True},
            "transference": {"cation": ["Li", "resname LI"], "anion": ["PF6", "resname PF6"]},
            "coordination": {},
        },
        "platform": platform,
    })


def _echo(text: str, kind: str) -> None:
    if kind == "step":
        click.secho(text, bold=True)
    else:
        click.echo(text, err=kind == "warning")


@click.command("quickstart")
@click.option("-o", "--output", "out_dir", default="aseimd-quickstart", show_default=True,
              type=click.Path(file_okay=False), help="Directory for system/, run/ and analysis/.")
@click.option("--platform", default="auto", show_default=True,
              help="auto (CUDA > OpenCL > CPU) or CUDA|OpenCL|CPU|Reference.")
@click.option("--n-solvent", type=click.IntRange(min=QUICKSTART_MIN_N_SOLVENT), default=QUICKSTART_N_SOLVENT, show_default=True,
              help="Solvent molecules in the box (bigger = slower).")
@click.option("--force", is_flag=True, help="Start over: rebuild, rerun and reanalyse.")
@click.option("--quiet", is_flag=True, help="No progress line while running.")
def quickstart(out_dir: str, platform: str, n_solvent: int, force: bool, quiet: bool) -> None:
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
    from aseimd.pipeline import job_paths, run_pipeline

    run_pipeline(quickstart_spec(platform, n_solvent), Path(out_dir), force=force, progress=not quiet,
                 echo=_echo, titles=QUICKSTART_TITLES)
    analysis_dir = job_paths(out_dir)[2]
    click.echo(
        f"\nDone. Open {analysis_dir}/*.png, or read the JSON files. This was a short demonstration run "
        f"({QUICKSTART_CUTOFF_NM} nm cut-off, 4 fs with hydrogen mass repartitioning, which alters the dynamics): "
        "its diffusion coefficients, conductivity and transference numbers are a demonstration, not results; "
        "the warnings above say which numbers are not converged. For real work: "
        "aseimd build electrolyte RECIPE -o DIR, then aseimd run DIR -o RUNDIR (default protocol)."
    )


COMMANDS: list[click.Command] = [quickstart]
