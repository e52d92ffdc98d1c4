"""The ``aseimd`` command line: a thin click layer over the library.

No physics lives here. Every command exits 0 on success, 2 on bad input
(including click's usage errors such as ``--seed abc``), 3 when the machine is
at fault (Packmol missing, permission denied, disk full) and 1 on an internal
error, always with a single ``Error: ...`` line (codes in :mod:`aseimd.errors`);
``aseimd --traceback CMD`` shows the full traceback instead. Subcommands are defined one module per command group
(``cli/build.py``, ``cli/run.py``, ``cli/analyze.py``, ...) and registered by name in :data:`COMMAND_MODULES`:
a module is imported only when its command runs (or ``--help`` lists it), so ``aseimd analyze ...`` never
imports OpenMM or the builders.
"""

from __future__ import annotations

import importlib
import os
import sys

# Before numpy is imported: numpy asks for transparent huge pages (madvise) on every array of >= 4 MiB. With
# the kernel's THP "defrag" setting at "madvise" (a common default) each first touch of such an array then
# waits for memory compaction, even when it yields no huge page: 0.2 s of CPU per 72 MiB measured here, about
# a fifth of a short ``aseimd analyze``. The CLI owns its process, so it turns that off unless the user set it.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
# Also before numpy: OpenBLAS starts one worker thread per CPU when numpy is imported, and idle workers
# busy-wait (~0.1 s) before they sleep. No command's linear algebra is large enough to gain from them (the
# largest matrices are GLS covariances of a few hundred lags; OpenMM has its own threads), so the spin is pure
# CPU cost: ~0.1 s of a ~0.85 s ``aseimd analyze diffusion`` measured here, with no change in wall time on an
# idle machine, and on a one-core Slurm allocation the spinning worker competes with the main thread. The CLI
# pins OpenBLAS to one thread unless the user set it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from aseimd import __version__  # noqa: E402
from aseimd.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, AseimdError, from_os_error  # noqa: E402

#: Longest message printed (a longer one is cut, the full text is under --traceback).
MAX_MESSAGE_CHARS = 600


class UserError(click.ClickException):
    """A one-line error for the user (exit code from the aseimd error, default 2)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


#: Top-level command name -> the module whose ``COMMANDS`` list defines it (imported on first use).
COMMAND_MODULES: dict[str, str] = {
    "analyze": "aseimd.cli.analyze",
    "build": "aseimd.cli.build",
    "campaign": "aseimd.cli.campaign",
    "quickstart": "aseimd.cli.quickstart",
    "run": "aseimd.cli.run",
    "species": "aseimd.cli.species",
}


class AseimdGroup(click.Group):
    """Click group that turns every error into one ``Error: ...`` line and an exit code.

    :class:`AseimdError` -> its ``exit_code`` (2 bad input, 3 environment);
    :class:`OSError` -> 3 (permission, disk full, ...) or 2 (a path that does
    not exist); click usage errors -> 2, on one line with a pointer to
    ``--help``; anything else -> 1 ("internal error", report it).
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, UserError):
            raise
        except click.UsageError as exc:
            raise _usage(exc) from None
        except click.ClickException as exc:
            raise UserError(_one_line(exc.format_message()), exc.exit_code) from None
        except Exception as exc:  # noqa: BLE001 - the one place every error becomes one line
            if (ctx.obj or {}).get("traceback"):
                raise
            if isinstance(exc, OSError) and not isinstance(exc, AseimdError):
                exc = from_os_error(exc)
            if isinstance(exc, AseimdError):
                raise UserError(_one_line(exc), exc.exit_code) from None
            raise UserError(f"internal error ({type(exc).__name__}: {_one_line(exc)}); rerun with "
                            f"'aseimd --traceback ...' and report it", EXIT_INTERNAL) from None


class LazyGroup(AseimdGroup):
    """:class:`AseimdGroup` whose subcommands are imported by name on first use (see :data:`COMMAND_MODULES`).

    ``lazy`` maps a command name to a module path; the module must list a command of that name in its
    ``COMMANDS``. Commands added with :meth:`add_command` work as in a plain group.
    """

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self._load(cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # suggest from every name, not only the loaded ones
            if exc.possibilities or not args:
                raise
            raise click.exceptions.NoSuchCommand(args[0], possibilities=self.list_commands(ctx), ctx=ctx) from None

    def _load(self, name: str) -> None:
        module = importlib.import_module(self.lazy[name])
        found = {command.name: command for command in module.COMMANDS}
        if name not in found:
            raise RuntimeError(f"{self.lazy[name]}.COMMANDS has no command {name!r} (it has {sorted(found)})")
        self.add_command(found[name])


def _usage(exc: click.UsageError) -> UserError:
    """A click usage error as one line naming the command's --help."""
    text = _one_line(exc.format_message()).rstrip(".")
    ctx = exc.ctx
    if ctx is not None and isinstance(ctx.command, click.Group) and text.startswith("No such command"):
        text += (" Allowed: " if text.endswith("?") else "; allowed: ") + ", ".join(ctx.command.list_commands(ctx))
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return UserError(text + where, EXIT_BAD_INPUT)


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 40].rstrip() + " ... (cut; --traceback shows all)"
    return text


@click.group(cls=LazyGroup, lazy=COMMAND_MODULES, context_settings={"help_option_names": ["-h", "--help"]})
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
