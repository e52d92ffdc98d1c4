"""Options shared by several commands (kept here so each command module stays thin)."""

from __future__ import annotations

from collections.abc import Callable

import click

from aseimd.errors import SpecError


def trajectory_options(func: Callable, *, replicas: bool = False) -> Callable:
    """``--top --traj --dt-ps --start --stop --stride`` for every ``aseimd analyze`` command.

    With ``replicas=True`` ``--top`` and ``--traj`` are repeatable (tuples): independent replicas of one system.
    """
    top_help, traj_help = "Topology file (PDB, PSF, GRO, ...).", "Trajectory file (DCD, XTC, TRR, NetCDF, ...)."
    if replicas:
        top_help = top_help[:-1] + "; once for all --traj, or once per --traj."
        traj_help = traj_help[:-1] + "; repeat for independent replicas of the same system (pooled; --method gls)."
    options = [
        click.option("--top", "top", required=True, multiple=replicas, type=click.Path(dir_okay=False),
                     help=top_help),
        click.option("--traj", "traj", required=True, multiple=replicas, type=click.Path(dir_okay=False),
                     help=traj_help),
        click.option("--dt-ps", type=float, default=None,
                     help="Time between stored frames in ps (for files that carry no time step)."),
        click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
                     help="First frame (stored-frame index)."),
        click.option("--stop", type=click.IntRange(min=1), default=None,
                     help="Stop before this frame (default: end)."),
        click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Use every n-th frame."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def parse_labelled(values: tuple[str, ...], option: str) -> dict[str, str]:
    """Parse repeated ``LABEL=SELECTION`` values into an ordered dict.

    Raises
    ------
    SpecError
        On a value without ``=``, an empty label or selection, or a label used twice.
    """
    out: dict[str, str] = {}
    for value in values:
        label, sep, selection = value.partition("=")
        label, selection = label.strip(), selection.strip()
        if not sep or not label or not selection:
            raise SpecError(f"{option} {value!r} is not LABEL=SELECTION (e.g. {option} Li='resname LI')")
        if label in out:
            raise SpecError(f"{option} label {label!r} is used twice; labels must be unique")
        out[label] = selection
    return out
