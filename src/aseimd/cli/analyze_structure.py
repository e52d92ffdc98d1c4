"""CLI: ``aseimd analyze coordination``. Thin layer over :mod:`aseimd.analysis.coordination`."""

from __future__ import annotations

from pathlib import Path

import click

from aseimd.cli._common import parse_labelled, trajectory_options
from aseimd.errors import SpecError


@click.command("coordination")
@trajectory_options
@click.option("--center", "center_values", multiple=True, metavar="LABEL=SEL",
              help="Centre atoms (one group), e.g. --center Li='resname LI' (the default).")
@click.option("--shell", "shell_values", multiple=True, metavar="LABEL=SEL",
              help="A shell group (mdtraj selection); repeat for several, e.g. "
                   "--shell EC='resname EC and name O1'. Default: the carbonyl O (O1) of each carbonate "
                   "and the F/O of each anion present (then also --anion). In solvent-cn mode LABEL is a role: "
                   "N_nitrile, C_nitrile, C_carbonyl, O_carbonyl, O_ether, anion "
                   "(overrides the detected default).")
@click.option("--cutoff-nm", "cutoff_values", multiple=True, metavar="LABEL=R",
              help="Cut-off in nm for a shell label (solvent-cn: also N_nitrile-C_carbonyl, "
                   "C_nitrile-C_carbonyl); "
                   "default: first minimum of the RDF.")
@click.option("--cutoff-rule", type=click.Choice(["significance", "prominence"]), default="significance",
              show_default=True,
              help="How the first minimum of g(r) is accepted: significance = depth and rise >= 4 sigma of the "
                   "histogram's noise (Poisson counts, frame blocks); prominence = the fixed thresholds of "
                   "earlier versions (prominence >= 5 % of min(peak, 2) and >= 0.05).")
@click.option("--rmax-nm", type=float, default=None,
              help="Largest RDF distance in nm [default: 1.0, clipped with a warning to half the shortest box "
                   "width; a larger given value is an error].")
@click.option("--bin-nm", type=float, default=0.005, show_default=True, help="RDF bin width in nm.")
@click.option("--mode", type=click.Choice(["default", "solvent-cn"]), default="default", show_default=True,
              help="solvent-cn: PAN nitrile <-> carbonate binding next to the Li+ shell.")
@click.option("--anion", default=None, metavar="LABEL",
              help="Shell label of the anion: SSIP/CIP/AGG ion-pair speciation (default mode).")
@click.option("--residence", is_flag=True, help="Continuous residence time correlation functions and tau.")
@click.option("--exclude-intramolecular", is_flag=True,
              help="Do not count centre-shell pairs inside one residue (default: only an atom with itself).")
@click.option("--z-range-nm", "z_range_nm", type=float, nargs=2, default=None, metavar="LO HI",
              help="Count only centre atoms whose z, wrapped into the box, lies in [LO, HI) nm in a frame "
                   "(neighbours from the whole cell); not with --residence.")
@click.option("--layer", "layer", default=None, metavar="NAME",
              help="Like --z-range-nm, with the z range of a layer of an interface cell (build.json beside --top, "
                   "scaled to the production box of run.json beside --traj), e.g. electrolyte, polymer_bottom.")
@click.option("--blocks", "n_blocks", type=click.IntRange(min=2), default=5, show_default=True,
              help="Time blocks for the standard errors.")
@click.option("--json", "json_path", required=True, type=click.Path(dir_okay=False),
              help="Output JSON; OUT_rdf.csv and OUT_rdf.png (and OUT_residence.* with --residence) beside it.")
@click.option("--force", is_flag=True, help="Replace existing outputs.")
def coordination(top, traj, dt_ps, start, stop, stride, center_values, shell_values, cutoff_values, cutoff_rule,
                 rmax_nm, bin_nm, mode, anion, residence, exclude_intramolecular, z_range_nm, layer, n_blocks, json_path,
                 force) -> None:
    """RDFs, coordination numbers, shell compositions, ion pairing and residence times.

    \b
    aseimd analyze coordination --top system.pdb --traj trajectory.dcd \\
        --center Li='resname LI' --shell EC='resname EC and name O1' \\
        --shell DMC='resname DMC and name O1' --shell PF6='resname PF6 and name P' \\
        --anion PF6 --residence --json coordination.json
    aseimd analyze coordination --top system.pdb --traj trajectory.dcd --json cn.json
    aseimd analyze coordination --mode solvent-cn --top cell.pdb --traj run.dcd --json scn.json
    aseimd analyze coordination --top sys/system.pdb --traj run/trajectory.dcd \
        --layer polymer_bottom --json cn_peo.json

    Without --center/--shell the Li+ shell of a carbonate electrolyte is analysed
    with default groups from the species table (printed).
    """
    from aseimd.analysis.coordination import coordination as run_coordination
    from aseimd.analysis.coordination import default_electrolyte_groups
    from aseimd.analysis.coordination_results import coordination_document
    from aseimd.analysis.solvent_cn import solvent_cn
    from aseimd.analysis.trajectory import Trajectory
    from aseimd.fileio import atomic_write_csv, atomic_write_json, check_new_output
    from aseimd.report.structure_plots import plot_rdfs, plot_residence

    center = parse_labelled(center_values, "--center")
    shells = parse_labelled(shell_values, "--shell")
    cutoffs = _parse_cutoffs(cutoff_values)
    if len(center) > 1:
        raise SpecError(f"--center given {len(center)} times ({', '.join(center)}); give exactly one centre group")
    if mode == "solvent-cn" and anion is not None:
        raise SpecError("--anion applies to --mode default; in solvent-cn mode use --shell anion=SELECTION")
    if exclude_intramolecular and mode != "default":
        raise SpecError("--exclude-intramolecular applies to --mode default")
    if z_range_nm is not None and layer is not None:
        raise SpecError("give --z-range-nm or --layer, not both")
    if (z_range_nm is not None or layer is not None) and mode != "default":
        raise SpecError("--z-range-nm/--layer apply to --mode default")
    if (z_range_nm is not None or layer is not None) and residence:
        raise SpecError("--residence with --z-range-nm/--layer is not supported (a centre leaving the window "
                        "would cut its contacts short and bias tau)")
    if z_range_nm is not None and not z_range_nm[0] < z_range_nm[1]:
        raise SpecError(f"--z-range-nm {z_range_nm[0]:g} {z_range_nm[1]:g}: need LO < HI (nm)")
    if layer is not None:
        from aseimd.pipeline import layer_window_nm

        z_range_nm = layer_window_nm(Path(top).parent, Path(traj).parent, layer)
        click.echo(f"layer {layer}: z {z_range_nm[0]:.3f}-{z_range_nm[1]:.3f} nm")

    json_path = Path(json_path)
    outputs = [json_path] + [json_path.with_name(f"{json_path.stem}_rdf{ext}") for ext in (".csv", ".png")]
    if residence:
        outputs += [json_path.with_name(f"{json_path.stem}_residence{ext}") for ext in (".csv", ".png")]
    for path in outputs:
        check_new_output(path, force=force)

    t = Trajectory(top, traj, dt_ps=dt_ps, start=start, stop=stop, stride=stride)
    if mode == "default":
        if not center or not shells:
            default_center, default_shells, default_anion = default_electrolyte_groups(t.topology)
            if not center and not default_center:
                raise SpecError("no Li+ (residue LI) in the topology; give --center LABEL=SELECTION")
            if not shells and not default_shells:
                raise SpecError("no carbonate or anion residues of the species table found; "
                                "give --shell LABEL=SELECTION")
            if not shells and anion is None:
                anion = default_anion
            center, shells = center or default_center, shells or default_shells
            click.echo("groups: " + "; ".join(f"{k}={v}" for k, v in {**center, **shells}.items()))
        result = run_coordination(t, center, shells, cutoffs_nm=cutoffs, r_max_nm=rmax_nm, bin_nm=bin_nm,
                                  anion=anion, residence=residence,
                                  exclude_intramolecular=exclude_intramolecular, n_blocks=n_blocks,
                                  z_range_nm=z_range_nm, window_label=layer, cutoff_rule=cutoff_rule)
    else:
        result = solvent_cn(t, center=center or None, groups=shells, cutoffs_nm=cutoffs, r_max_nm=rmax_nm,
                            bin_nm=bin_nm, residence=residence, n_blocks=n_blocks, cutoff_rule=cutoff_rule)

    tables = result.tables()
    headers, columns = tables.get("rdf") or result.rdf_table()
    atomic_write_csv(outputs[1], headers, columns, force=True)
    plot_rdfs(result, outputs[2], force=True)
    if residence:
        headers, columns = tables.get("residence") or result.residence_table()
        atomic_write_csv(outputs[3], headers, columns, force=True)
        plot_residence(result, outputs[4], force=True)
    atomic_write_json(json_path, coordination_document(result, t, mode), force=True)

    if result.window is not None:
        w = result.window
        click.echo(f"window z {w['z_range_nm'][0]:.3f}-{w['z_range_nm'][1]:.3f} nm: "
                   f"{w['mean_centers_in_window']:.2f} of {w['n_center_atoms']} {w['center']} on average, "
                   f"{w['n_center_frames']} (centre, frame) pairs")
    for key, p in result.pairs.items():
        if p.cutoff_nm is None:
            click.echo(f"{key}: no cut-off (see warnings)")
        else:
            click.echo(f"{key}: cn {p.cn:.3f} +- {p.cn_stderr:.3f} atoms, {p.cn_molecules:.3f} molecules "
                       f"within {p.cutoff_nm:.3f} nm ({p.cutoff_note})")
    if result.solvent_cn:
        s = result.solvent_cn
        click.echo(f"carbonate bound to nitrile: {s['carbonate_bound_fraction']:.3f}, "
                   f"nitrile-carbonyl CN {s['nitrile_carbonyl_cn']:.3f}")
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo("wrote " + ", ".join([str(json_path)] + [p.name for p in outputs[1:]]))


def _parse_cutoffs(values: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for label, text in parse_labelled(values, "--cutoff-nm").items():
        try:
            value = float(text)
        except ValueError:
            raise SpecError(f"--cutoff-nm {label}={text!r}: not a number (nm)") from None
        if not value > 0:
            raise SpecError(f"--cutoff-nm {label}={text}: must be > 0 nm")
        out[label] = value
    return out


COMMANDS: list[click.Command] = [coordination]
