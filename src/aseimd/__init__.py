"""aseimd: molecular dynamics of artificial solid-electrolyte interfaces on Li metal.

Layers (data flows one way)::

    spec -> build -> forcefield -> simulate -> analysis -> report

See ``ARCHITECTURE.md`` in the project's shared notes and ``docs/`` for the
physical model and the contracts (CLI, run-directory files, JSON keys).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aseimd")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0+unknown"

from aseimd.errors import (  # noqa: E402
    AnalysisError,
    AseimdError,
    BuildError,
    ForceFieldError,
    OutputExistsError,
    SimulationError,
    SpecError,
)

__all__ = [
    "__version__",
    "AseimdError",
    "SpecError",
    "BuildError",
    "ForceFieldError",
    "SimulationError",
    "AnalysisError",
    "OutputExistsError",
]
