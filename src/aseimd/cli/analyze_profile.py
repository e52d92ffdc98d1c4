"""CLI: ``aseimd analyze profile``. Thin layer over :mod:`aseimd.analysis.profile`."""

from __future__ import annotations

from pathlib import Path

import click

from aseimd.cli._common import parse_labelled, trajectory_options


@click.command("profile")
@trajectory_options
@click.option("--group", "group_values", multiple=True, required=True, metavar="LABEL=SEL",
              help="A group of atoms (mdtraj selection); repeat for several, e.g. --group Li='resname LI'.")
@click.option("--axis", type=click.Choice(["x", "y", "z"]), default="z", show_default=True,
              help="Axis of the profile (normal to the interface).")
@click.option("--bin-nm", type=float, default=None,
              help="Bin width in nm (default 0.05; the box height is split into round(h/bin) bins).")
@click.option("--n-bins", type=int, default=None, help="Number of bins over the box height (instead of --bin-nm).")
@click.option("--blocks", "n_blocks", type=click.IntRange(min=1), default=10, show_default=True,
              help="Blocks for the block-average standard errors.")
@click.option("--system-xml", type=click.Path(dir_okay=False), default=None,
              help="Serialized openmm.System (system.xml of a built system): per-atom charges from its "
                   "NonbondedForce. Default: residue formal charges spread evenly over the residue's atoms.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False),
              help="Output JSON; OUT_density.csv and OUT_density.png are written beside it.")
@click.option("--force", is_flag=True, help="Replace existing outputs.")
def profile(top, traj, dt_ps, start, stop, stride, group_values, axis, bin_nm, n_bins, n_blocks,
            system_xml, json_out, force) -> None:
    """Number and charge density along an axis per group, with block-average standard errors.

    Atoms are wrapped into the box each frame and binned on fractional
    coordinates, so a fluctuating (NPT) box is handled.
    """
    from aseimd.analysis.profile import density_profiles, profiles_document, system_xml_charges
    from aseimd.analysis.trajectory import Trajectory
    from aseimd.fileio import atomic_write_csv, atomic_write_json, check_new_output
    from aseimd.report.profile_plots import plot_profiles

    groups = parse_labelled(group_values, "--group")
    json_path = Path(json_out)
    csv_path = json_path.with_name(json_path.stem + "_density.csv")
    png_path = json_path.with_name(json_path.stem + "_density.png")
    for path in (json_path, csv_path, png_path):
        check_new_output(path, force=force)

    t = Trajectory(top, traj, dt_ps=dt_ps, start=start, stop=stop, stride=stride)
    if system_xml is not None:
        charges, source = system_xml_charges(system_xml, t.topology.n_atoms), str(system_xml)
    else:
        charges, source = None, "formal"
    result = density_profiles(t, groups, charges_e=charges, charge_source=source, axis=axis,
                              bin_nm=bin_nm, n_bins=n_bins, n_blocks=n_blocks)

    headers, columns = result.tables()["density"]
    atomic_write_csv(csv_path, headers, columns, force=True)
    plot_profiles(result, png_path, force=True)
    atomic_write_json(json_path, profiles_document(result, t), force=True)
    for label, g in result.groups.items():
        click.echo(f"{label}: {g.n_atoms} atoms, integral {g.integral_n_atoms:.3f}, charge {g.total_charge_e:+.3f} e")
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {json_path}, {csv_path.name}, {png_path.name}")


COMMANDS: list[click.Command] = [profile]
