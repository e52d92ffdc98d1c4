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
    from aseimd.analysis.profile import density_profiles, system_xml_charges
    from aseimd.analysis.trajectory import Trajectory
    from aseimd.fileio import atomic_write_csv, atomic_write_json, check_new_output
    from aseimd.report.profile_plots import plot_profiles, profile_csv_columns

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

    headers, columns = profile_csv_columns(result)
    atomic_write_csv(csv_path, headers, columns, force=True)
    plot_profiles(result, png_path, force=True)
    atomic_write_json(json_path, profiles_to_json(result, t), force=True)
    for label, g in result.groups.items():
        click.echo(f"{label}: {g.n_atoms} atoms, integral {g.integral_n_atoms:.3f}, charge {g.total_charge_e:+.3f} e")
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"wrote {json_path}, {csv_path.name}, {png_path.name}")


def _time_step(traj) -> tuple[float | None, str]:
    """The frame spacing for the meta block; a density profile needs none, so a file without one is fine."""
    from aseimd.errors import AnalysisError

    try:
        return traj.dt_ps, traj.dt_source
    except AnalysisError:
        return None, "unknown (not needed for a density profile)"


def profiles_to_json(result, traj) -> dict:
    """The JSON document of ``aseimd analyze profile`` (see docs/analysis_profile.md)."""
    from aseimd import __version__

    dt_ps, dt_source = _time_step(traj)
    groups = {}
    for label, g in result.groups.items():
        groups[label] = {
            "selection": g.selection,
            "n_atoms": g.n_atoms,
            "number_density_per_nm3": g.number_density_per_nm3,
            "number_density_stderr_per_nm3": g.number_density_stderr_per_nm3,
            "charge_density_e_per_nm3": g.charge_density_e_per_nm3,
            "charge_density_stderr_e_per_nm3": g.charge_density_stderr_e_per_nm3,
            "total_charge_e": g.total_charge_e,
            "integral_n_atoms": g.integral_n_atoms,
            "integral_charge_e": g.integral_charge_e,
        }
    return {
        "axis": result.axis,
        "n_bins": result.n_bins,
        "bin_width_nm": result.bin_width_nm,
        "bin_centers_nm": result.bin_centers_nm,
        "box_mean_nm": result.box_mean_nm,
        "height_mean_nm": result.height_mean_nm,
        "height_range_nm": [result.height_min_nm, result.height_max_nm],
        "volume_mean_nm3": result.volume_mean_nm3,
        "charge_source": result.charge_source,
        "groups": groups,
        "method": {
            "binning": "atoms wrapped into the box per frame; bins on the fractional coordinate along the axis "
                       "(bin volume V(t)/n_bins); density = time average of per-frame densities",
            "stderr": f"block averaging over {result.n_blocks} contiguous blocks: std(block means, ddof=1)/sqrt(n)",
            "charges": "residue formal charge spread evenly over the residue's atoms"
                       if result.charge_source == "formal"
                       else "per-atom charges from the NonbondedForce of the system XML",
        },
        "warnings": list(result.warnings),
        "meta": {
            "top": str(traj.top_path),
            "traj": str(traj.traj_path),
            "frames": {"start": traj.start, "stop": traj.stop, "stride": traj.stride, "n_frames": traj.n_frames},
            "dt_ps": dt_ps,
            "dt_source": dt_source,
            "aseimd_version": __version__,
        },
    }


COMMANDS: list[click.Command] = [profile]
