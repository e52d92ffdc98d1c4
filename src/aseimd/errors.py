"""One exception hierarchy for everything aseimd reports to a user.

Every error raised on bad user input is an :class:`AseimdError` (and a
:class:`ValueError`), carries a one-line message that names the bad value and
what is allowed, and is turned by the CLI into ``Error: <message>`` with the
error's :attr:`~AseimdError.exit_code`.

Exit codes of the ``aseimd`` command (also in docs/running.md)
---------------------------------------------------------------
==== ===================================================================
0    success (also: a finished run asked to run again)
1    an internal error (a bug: please report it with ``aseimd --traceback ...``)
2    bad input: a malformed option, recipe, protocol or file, an output
     that exists, a run that cannot be resumed, a blow-up (:class:`AseimdError`)
3    the environment, not the input: a tool is missing (Packmol), permission
     denied, disk full, a read-only or vanished file system
     (:class:`EnvironmentProblem`)
==== ===================================================================
"""

from __future__ import annotations

import errno as _errno

#: Exit code for success.
EXIT_OK = 0
#: Exit code of an unexpected (internal) error.
EXIT_INTERNAL = 1
#: Exit code for bad input (click's usage errors use it too).
EXIT_BAD_INPUT = 2
#: Exit code for a problem of the machine rather than of the input.
EXIT_ENVIRONMENT = 3


class AseimdError(Exception):
    """Base class of all aseimd errors."""

    #: Exit code of the ``aseimd`` command when this error ends it.
    exit_code: int = EXIT_BAD_INPUT


class SpecError(AseimdError, ValueError):
    """A specification (recipe, YAML, CLI option) is malformed or inconsistent."""


class BuildError(AseimdError, ValueError):
    """A system cannot be built (unknown species, impossible packing, ...)."""


class ForceFieldError(AseimdError, ValueError):
    """Parameters are missing or inconsistent for a species."""


class SimulationError(AseimdError, RuntimeError):
    """A simulation failed or cannot be resumed (blow-up, mismatched run directory)."""


class AnalysisError(AseimdError, ValueError):
    """An analysis got input it cannot work with (empty selection, short trajectory, ...)."""


class OutputExistsError(AseimdError, FileExistsError):
    """An output already exists and ``force`` was not given (or may not be replaced)."""


class EnvironmentProblem(AseimdError, RuntimeError):
    """The machine, not the input, is at fault: a missing tool, permission denied, disk full.

    Exit code :data:`EXIT_ENVIRONMENT` (3), distinct from bad input (2), so a
    script or a scheduler can tell "fix the input" from "fix the machine / retry".
    """

    exit_code = EXIT_ENVIRONMENT


#: ``errno`` values that mean the machine, not the input, is at fault.
ENVIRONMENT_ERRNOS = frozenset(
    getattr(_errno, name) for name in
    ("EACCES", "EPERM", "ENOSPC", "EDQUOT", "EROFS", "EIO", "EMFILE", "ENFILE", "ENOMEM", "ESTALE",
     "EFBIG", "ETXTBSY", "EAGAIN", "ENODEV", "ENXIO", "EBUSY")
    if hasattr(_errno, name)
)


def from_os_error(exc: OSError, action: str | None = None) -> AseimdError:
    """The aseimd error for an :class:`OSError`, with a one-line message.

    Parameters
    ----------
    exc : OSError
    action : str, optional
        What was being done, e.g. ``"write 'run/thermo.csv'"``; default from
        the error's file name.

    Returns
    -------
    AseimdError
        :class:`EnvironmentProblem` for permission, space, read-only and I/O
        errors (:data:`ENVIRONMENT_ERRNOS`); :class:`SpecError` otherwise (a
        path that does not exist, a file where a folder is needed, ...).
    """
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    if action is None:
        names = [n for n in (exc.filename, getattr(exc, "filename2", None)) if n]
        action = "use " + " -> ".join(repr(str(n)) for n in names) if names else "access a file"
    message = f"cannot {action}: {reason}"
    if exc.errno in ENVIRONMENT_ERRNOS:
        hint = {
            _errno.ENOSPC: "free some disk space (or choose another -o) and run the command again",
            _errno.EACCES: "check the folder's permissions or choose another -o",
            _errno.EPERM: "check the folder's permissions or choose another -o",
            _errno.EROFS: "choose an -o on a writable file system",
        }.get(exc.errno)
        return EnvironmentProblem(message + (f"; {hint}" if hint else ""))
    return SpecError(message)
