"""CLI: aseimd analyze diffusion | transference. Thin layer over aseimd.analysis.

Independent replicas: repeat ``--traj`` (one ``--top`` for all, or one
``--top`` per ``--traj``, paired in order); they are pooled by
:func:`aseimd.analysis.replicas.pool_replicas`.
"""

from __future__ import annotations

from pathlib import Path

import click

from aseimd.cli._common import parse_labelled, trajectory_options
from aseimd.errors import SpecError


def _outputs(json_path: str, curve: str, force: bool, plot: bool = True) -> tuple[Path, Path, Path | None]:
    """OUT.json, OUT_<curve>.csv, OUT_<curve>.png (None without a plot); all checked before anything is written."""
    from aseimd.fileio import check_new_output

    out = Path(json_path)
    csv = out.with_name(f"{out.stem}_{curve}.csv")
    png = out.with_name(f"{out.stem}_{curve}.png") if plot else None
    for path in (out, csv, png):
        if path is not None:
            check_new_output(path, force=force)
    return out, csv, png


def _drop_stale_plot(out: Path, curve: str, force: bool, png: Path | None) -> None:
    """With ``--force --no-plot``: the PNG an earlier run left beside the replaced JSON would show other data."""
    stale = out.with_name(f"{out.stem}_{curve}.png")
    if force and png is None and stale.is_file():
        stale.unlink()
        click.echo(f"Removed {stale.name}: it was drawn from an earlier run (--no-plot draws none)")


def _sources(tops: tuple[str, ...], trajs: tuple[str, ...]) -> list[tuple[str, str]]:
    """(top, traj) per replica: one --top for every --traj, or one --top per --traj in order."""
    if len(tops) not in (1, len(trajs)):
        raise SpecError(f"give one --top for all {len(trajs)} --traj replicas or one --top per --traj "
                        f"(in the same order), got {len(tops)} --top")
    tops = tops * len(trajs) if len(tops) == 1 else tops
    return list(zip(tops, trajs))


def _run(sources, analysis, dt_ps, start, stop, stride):
    """(report, meta): one trajectory through run_analyses, several pooled as replicas."""
    options = {"dt_ps": dt_ps, "start": start, "stop": stop, "stride": stride}
    if len(sources) == 1:
        from aseimd.analysis.engine import run_analyses
        from aseimd.analysis.trajectory import Trajectory

        t = Trajectory(*sources[0], **options)
        return run_analyses(t, [analysis])[0], t.meta()
    from aseimd.analysis.replicas import pool_replicas

    report = pool_replicas(sources, analysis, **options)
    return report, report.meta()


def _trajectory_options(func):
    """``--top --traj --dt-ps --start --stop --stride``, with ``--top``/``--traj`` repeatable for replicas."""
    return trajectory_options(func, replicas=True)


def _layer_edges(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise SpecError(f"--layer-edges-nm {text!r} is not a list of numbers (e.g. '0,1.5,3,4.5')") from None


def _single(values: tuple[str, ...], option: str) -> tuple[str, str]:
    parsed = parse_labelled(values, option)
    return next(iter(parsed.items()))


_window_option = click.option(
    "--fit-window-ps", type=(float, float), default=None, metavar="A B",
    help="Fit window in ps (default: automatic, where the log-log MSD slope is ~1).")
_blocks_option = click.option(
    "--blocks", "n_blocks", type=click.IntRange(min=2), default=None,
    help="Blocks for the standard errors: gls, blocks of time origins (default automatic, 5-100, each >= 8 "
         "window lengths); ols-blocks, time slices (default 5, fit window <= half a slice).")
_method_option = click.option(
    "--method", type=click.Choice(["gls", "ols-blocks"]), default="gls", show_default=True,
    help="gls: generalised least squares with the random-walk covariance over a window from the onset of "
         "diffusion, jackknife over blocks of time origins; ols-blocks: the earlier estimator (least squares "
         "over the longest diffusive run, 5 time slices). See docs/analysis_transport.md.")
_tolerance_option = click.option(
    "--slope-tolerance", type=click.FloatRange(min=0, min_open=True), default=0.1, show_default=True,
    help="Diffusive means |log-log slope - 1| below this.")
_dims_option = click.option(
    "--dims", type=click.Choice(["xyz", "xy", "xz", "yz", "x", "y", "z"]), default="xyz", show_default=True,
    help="Directions of the MSD (D = slope / 2d).")
_output_options = [
    click.option("--json", "json_path", required=True, type=click.Path(dir_okay=False),
                 help="Output JSON; the CSV and PNG are written beside it."),
    click.option("--force", is_flag=True, help="Replace existing outputs."),
    click.option("--plot/--no-plot", default=True, show_default=True,
                 help="Write the PNG (matplotlib: about a third of a short analysis' time); --no-plot writes "
                      "JSON and CSV only."),
]


def _with(options):
    def deco(func):
        for option in reversed(options):
            func = option(func)
        return func
    return deco


@click.command("diffusion")
@_trajectory_options
@click.option("--group", "groups", multiple=True, required=True, metavar="LABEL=SEL",
              help="Labelled mdtraj selection, repeatable (e.g. --group Li='resname LI').")
@click.option("--com", is_flag=True, help="Use residue centres of mass (of the selected atoms) as particles.")
@_dims_option
@click.option("--drift", default="system", show_default=True, metavar="system|none|group:LABEL|SELECTION",
              help="Centre-of-mass drift to remove: the whole system, none, a group, or a selection (frozen slab).")
@_window_option
@click.option("--z-layers", type=int, default=None, help="Also lateral D in N equal z layers across the box.")
@click.option("--layer-edges-nm", default=None, metavar="'E0,E1,...'",
              help="Also lateral D in layers between these z values (nm).")
@click.option("--viscosity-mPa-s", "viscosity_mPa_s", type=float, default=None,
              help="Shear viscosity for the Yeh-Hummer correction (cubic boxes; needs --temperature-K).")
@click.option("--temperature-K", "temperature_K", type=float, default=None, help="Temperature for Yeh-Hummer.")
@_blocks_option
@_method_option
@_tolerance_option
@_with(_output_options)
def diffusion(top, traj, dt_ps, start, stop, stride, groups, com, dims, drift, fit_window_ps, z_layers,
              layer_edges_nm, viscosity_mPa_s, temperature_K, n_blocks, method, slope_tolerance, json_path, force,
              plot):
    """Self-diffusion coefficients (FFT MSD, automatic fit window, block standard errors).

    Writes OUT.json (per label D_m2_per_s, D_stderr_m2_per_s, fit_window_ps,
    diffusive, slope, ...), OUT_msd.csv and OUT_msd.png (unless --no-plot). With
    several --traj (replicas) the numbers are pooled and OUT.json adds a "replicas"
    block (frames and estimates per replica, their consistency).
    """
    from aseimd.analysis.diffusion import DiffusionAnalysis
    from aseimd.fileio import atomic_write_csv, atomic_write_json
    from aseimd.report.figures import save_figure
    from aseimd.report.transport_plots import msd_figure

    selections = parse_labelled(groups, "--group")
    sources = _sources(top, traj)
    out, csv, png = _outputs(json_path, "msd", force, plot)
    analysis = DiffusionAnalysis(
        selections, com=com, dims=dims, drift=drift, fit_window_ps=fit_window_ps, n_blocks=n_blocks,
        tolerance=slope_tolerance, z_layers=z_layers, layer_edges_nm=_layer_edges(layer_edges_nm),
        viscosity_mPa_s=viscosity_mPa_s, temperature_K=temperature_K, method=method,
    )
    report, meta = _run(sources, analysis, dt_ps, start, stop, stride)
    pooled = getattr(report, "pooled", report)
    headers, columns = report.tables()["msd"]
    data = {"meta": meta} | report.to_json()
    if png is not None:
        save_figure(msd_figure(pooled.results, pooled.layers), png, force=force)
    atomic_write_csv(csv, headers, columns, force=force)
    atomic_write_json(out, data, force=force)
    _drop_stale_plot(out, "msd", force, png)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    pooled_note = f", {len(sources)} replicas pooled" if len(sources) > 1 else ""
    for label, res in pooled.results.items():
        click.echo(f"{label}: D = {res.D_m2_per_s:.4g} ± {res.D_stderr_m2_per_s:.2g} m^2/s "
                   f"(window {res.window.ps(res.dt_ps)[0]:g}-{res.window.ps(res.dt_ps)[1]:g} ps, "
                   f"slope {res.slope:.2f}, diffusive: {str(res.diffusive).lower()}{pooled_note})")
    click.echo(f"Wrote {out}, {csv.name}" + ("" if png is None else f", {png.name}"))


@click.command("transference")
@_trajectory_options
@click.option("--cation", "cation", multiple=True, required=True, metavar="LABEL=SEL",
              help="Cations (each selected residue's selected atoms form one ion).")
@click.option("--anion", "anion", multiple=True, required=True, metavar="LABEL=SEL",
              help="Anions; may be groups of a polymer residue (e.g. sulfonates of Li-Nafion).")
@click.option("--temperature-K", "temperature_K", type=float, required=True, help="Temperature in K.")
@click.option("--cation-charge", type=float, default=None,
              help="Cation charge in e (default: formal charge from the species table).")
@click.option("--anion-charge", type=float, default=None,
              help="Anion charge in e (default: formal charge from the species table).")
@_dims_option
@_window_option
@_blocks_option
@_method_option
@_tolerance_option
@_with(_output_options)
def transference(top, traj, dt_ps, start, stop, stride, cation, anion, temperature_K, cation_charge,
                 anion_charge, dims, fit_window_ps, n_blocks, method, slope_tolerance, json_path, force,
                 plot):
    """Onsager coefficients, transference numbers and conductivity (NE and Einstein-Helfand).

    Writes OUT.json (t_plus_onsager, t_plus_ne, sigma_ne_S_per_m, sigma_eh_S_per_m,
    L_ij, each with a standard error), OUT_msd.csv and OUT_msd.png (unless --no-plot).
    With several --traj (replicas) the numbers are pooled and OUT.json adds a
    "replicas" block.
    """
    from aseimd.analysis.transference import TransferenceAnalysis
    from aseimd.fileio import atomic_write_csv, atomic_write_json
    from aseimd.report.figures import save_figure
    from aseimd.report.transport_plots import onsager_figure

    if len(cation) > 1 or len(anion) > 1:
        raise SpecError("give exactly one --cation LABEL=SEL and one --anion LABEL=SEL")
    cat, an = _single(cation, "--cation"), _single(anion, "--anion")
    sources = _sources(top, traj)
    out, csv, png = _outputs(json_path, "msd", force, plot)
    analysis = TransferenceAnalysis(
        cat, an, temperature_K=temperature_K, cation_charge=cation_charge, anion_charge=anion_charge,
        dims=dims, fit_window_ps=fit_window_ps, n_blocks=n_blocks, tolerance=slope_tolerance, method=method,
    )
    report, meta = _run(sources, analysis, dt_ps, start, stop, stride)
    res = getattr(report, "pooled", report).result
    headers, columns = report.tables()["msd"]
    data = {"meta": meta} | report.to_json()
    if png is not None:
        save_figure(onsager_figure(res, (cat[0], an[0])), png, force=force)
    atomic_write_csv(csv, headers, columns, force=force)
    atomic_write_json(out, data, force=force)
    _drop_stale_plot(out, "msd", force, png)
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    v, s = res.values, res.stderr
    w0, w1 = res.window.ps(res.dt_ps)
    click.echo(f"t+ (Onsager) = {v['t_plus_onsager']:.4g} ± {s['t_plus_onsager']:.2g}; "
               f"t+ (NE) = {v['t_plus_ne']:.4g} ± {s['t_plus_ne']:.2g} "
               f"({res.method}, window {w0:g}-{w1:g} ps, {res.n_blocks} blocks"
               f"{f' from {len(sources)} replicas' if len(sources) > 1 else ''})")
    click.echo(f"sigma_EH = {v['sigma_eh']:.4g} ± {s['sigma_eh']:.2g} S/m; "
               f"sigma_NE = {v['sigma_ne']:.4g} ± {s['sigma_ne']:.2g} S/m")
    click.echo(f"Wrote {out}, {csv.name}" + ("" if png is None else f", {png.name}"))


COMMANDS: list[click.Command] = [diffusion, transference]
