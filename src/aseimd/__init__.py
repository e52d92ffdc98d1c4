"""aseimd: molecular dynamics of artificial solid-electrolyte interfaces on Li metal.

Layers (data flows one way)::

    spec -> build -> forcefield -> simulate -> analysis -> report

See ``ARCHITECTURE.md`` in the project's shared notes and ``docs/`` for the
physical model and the contracts (CLI, run-directory files, JSON keys).
"""

#: The package version: written here only (pyproject.toml reads it through hatch), so that
#: ``import aseimd`` needs no importlib.metadata lookup (50-160 ms at every CLI start on a loaded machine).
__version__ = "0.1.0"

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
