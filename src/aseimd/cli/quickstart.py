"""``aseimd quickstart``: a tiny Li | PEO | electrolyte interface cell, end to end, in minutes on a laptop CPU.

A thin wrapper over :func:`aseimd.pipeline.run_pipeline` (the same pipeline
every campaign job runs): build the Li(100) | PEO | 1 M LiPF6 in EC:DMC | PEO
cell of ``systems/quickstart.yaml``, run the ``quickstart-interface`` protocol,
then analyse the density profile across the interface, the Li+ coordination by
PEO ether O, carbonyl O and anion F/O (whole cell, and per layer: the Li+ in the
polymer layers vs in the electrolyte), and the Li+ diffusion (whole cell and per
layer), all from one read of the trajectory. It writes what ``aseimd build interface``, ``aseimd run`` and ``aseimd
analyze ...`` write. Running it again resumes the run and keeps finished outputs.
"""

from __future__ import annotations

from pathlib import Path

import click

#: The embedded default system (systems/quickstart.yaml) and protocol (workflows/quickstart-interface.yaml).
QUICKSTART_SYSTEM = "quickstart"
QUICKSTART_PROTOCOL = "quickstart-interface"
QUICKSTART_TITLES = {
    "diffusion": "Li+ self-diffusion: whole cell, and lateral (xy) per layer (polymer / electrolyte / polymer)",
    "coordination": "Li+ coordination by PEO ether O, EC and DMC carbonyl O, PF6- F and TFSI- O",
    "profile": "number densities of Li+, PF6-, TFSI-, EC, DMC, PEO and the Li metal along z",
}
#: Selections of the analyses (residue names of forcefields/peo.xml, carbonates.xml, the species table).
PEO_RESIDUES = "resname PEH PEO PET"
QUICKSTART_ANALYSES = {
    "diffusion": {"groups": {"Li": "resname LI"}, "com": True, "layer_edges_nm": "build"},
    "coordination": {
        "center": {"Li": "resname LI"},
        "shells": {"PEO_O": f"{PEO_RESIDUES} and element O", "EC": "resname EC and name O1",
                   "DMC": "resname DMC and name O1", "PF6": "resname PF6 and element F",
                   "TFSI": "resname TFS and element O",
                   # any anion (PF6- F or TFSI- O): the shell that sorts Li+ into SSIP / CIP / AGG
                   "anions": "(resname PF6 and element F) or (resname TFS and element O)"},
        "anion": "anions",
        # few Li+ (those of the PEO-LiTFSI layers) see ether O: in a short run g(r) may have no first minimum,
        # so its shell is a fixed 0.30 nm (chosen: just below the auto carbonyl-O cut-offs, 0.32-0.33 nm, of
        # this cell); the other cut-offs are the first minima of g(r).
        "cutoffs_nm": {"PEO_O": 0.30},
        # and per layer (Li+ in the polymer_bottom / electrolyte / polymer_top z range of build.json, with the
        # whole cell's cut-offs): coordination_<layer>.json beside coordination.json, a table on the screen
        "layers": "build",
    },
    "profile": {"groups": {"Li": "resname LI", "PF6": "resname PF6", "TFSI": "resname TFS", "EC": "resname EC",
                           "DMC": "resname DMC", "PEO": PEO_RESIDUES, "LiMetal": "resname LIM"}},
}


def quickstart_spec(platform: str, system: str | dict = QUICKSTART_SYSTEM, protocol: str | dict = QUICKSTART_PROTOCOL):
    """The :class:`~aseimd.pipeline.PipelineSpec` of the quickstart.

    Parameters
    ----------
    platform : str
    system : str or dict
        A ``systems/`` spec name or path, or an interface spec mapping (default: ``systems/quickstart.yaml``).
    protocol : str or dict
        A protocol name, path or mapping (default: ``quickstart-interface``).
    """
    from aseimd.pipeline import PipelineSpec, interface_system

    return PipelineSpec.from_dict({
        "system": interface_system(system), "protocol": protocol, "analyses": QUICKSTART_ANALYSES,
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
@click.option("--system", "system", default=QUICKSTART_SYSTEM, show_default=True,
              help="Interface spec: a systems/ name (e.g. li-peo-lipf6) or a YAML path (bigger = slower).")
@click.option("--force", is_flag=True, help="Start over: rebuild, rerun and reanalyse.")
@click.option("--quiet", is_flag=True, help="No progress line while running.")
def quickstart(out_dir: str, platform: str, system: str, force: bool, quiet: bool) -> None:
    """Build a tiny Li(100) | PEO | 1 M LiPF6 in EC:DMC 1:1 v/v cell, run a short protocol, analyse it.

    \b
    OUT/system    system.pdb, system.xml, build.json      (aseimd build interface systems/quickstart.yaml)
    OUT/run       trajectory.dcd, thermo.csv, run.json     (aseimd run --protocol quickstart-interface)
    OUT/analysis  profile, coordination, diffusion         (aseimd analyze ...; JSON, CSV, PNG)

    The run is ~22 ps with a 1.0 nm cut-off and 4 fs steps with hydrogen mass
    repartitioning (HMR alters the dynamics) on a ~2,000-atom cell: its density
    profile, coordination numbers and diffusion coefficients are a demonstration
    of the machinery, not results.
    Interrupted? Run the same command again: the run resumes from its checkpoint.
    """
    from aseimd.pipeline import job_paths, run_pipeline

    run_pipeline(quickstart_spec(platform, system), Path(out_dir), force=force, progress=not quiet,
                 echo=_echo, titles=QUICKSTART_TITLES)
    analysis_dir = job_paths(out_dir)[2]
    click.echo(
        f"\nDone. Plots: {analysis_dir}/profile_density.png (density across the interface), "
        f"{analysis_dir}/coordination_rdf.png (Li+ g(r) and n(r) per ligand; coordination_<layer>_rdf.png per "
        "layer), "
        f"{analysis_dir}/diffusion_msd.png (Li+ MSD, whole cell and per layer); numbers in the JSON files.\n"
        "This was a short demonstration run (a ~2,000-atom cell, ~22 ps, 1.0 nm cut-off, 4 fs with hydrogen mass "
        "repartitioning, which alters the dynamics): every number above (densities, coordination numbers and "
        "their (Li+, frame) pair counts, diffusion coefficients, per layer or not) is a demonstration, not a "
        "result; a layer with few Li+ has few pairs and a large error; the warnings above say which are not "
        "converged. For real work: aseimd build interface systems/li-peo-lipf6.yaml -o DIR, then "
        "aseimd run DIR -o RUNDIR --protocol interface."
    )


COMMANDS: list[click.Command] = [quickstart]
