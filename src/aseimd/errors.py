"""One exception hierarchy for everything aseimd reports to a user.

Every error raised on bad user input is an :class:`AseimdError` (and a
:class:`ValueError`), carries a one-line message that names the bad value and
what is allowed, and is turned by the CLI into ``Error: <message>`` with exit
code 2.
"""


class AseimdError(Exception):
    """Base class of all aseimd errors."""


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
    """An output already exists and ``force`` was not given."""
