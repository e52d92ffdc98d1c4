"""The ``aseimd`` command line: a thin click layer over the library.

No physics lives here. Every command exits 0 on success and 2 on bad input
with a one-line ``Error: ...`` message; ``aseimd --traceback CMD`` shows the
full traceback instead. Subcommands are defined one module per command group
(``cli/build.py``, ``cli/run.py``, ``cli/analyze.py``, ...) and registered below.
"""

from __future__ import annotations

import sys

import click

from aseimd import __version__
from aseimd.errors import AseimdError


class UserError(click.ClickException):
    """A one-line error for the user, exit code 2."""

    exit_code = 2


class AseimdGroup(click.Group):
    """Click group that turns :class:`AseimdError` into a one-line message and exit 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AseimdError as exc:
            if (ctx.obj or {}).get("traceback"):
                raise
            raise UserError(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@click.group(cls=AseimdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aseimd")
@click.option("--traceback", is_flag=True, help="Show the full Python traceback on errors.")
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """aseimd: MD of artificial solid-electrolyte interfaces on Li metal (OpenMM).

    \b
    build -> run -> analyze -> compare:
      aseimd species
      aseimd build electrolyte "1.0 M LiPF6 in EC:DMC 1:1 v/v" -o elyte
      aseimd run elyte -o elyte-run
      aseimd analyze diffusion --top elyte/system.pdb --traj elyte-run/trajectory.dcd ...
      aseimd quickstart
    """
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


def _register() -> None:
    from aseimd.cli import analyze, build, campaign, quickstart, run, species

    for module in (species, build, run, analyze, quickstart, campaign):
        for command in module.COMMANDS:
            main.add_command(command)


_register()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
