"""Analysis of trajectories: transport (diffusion, Onsager transference, conductivity), structure, profiles.

The library entry point for several analyses over one read of a trajectory is
:func:`run_analyses` (see :mod:`aseimd.analysis.engine`); heavy modules are
imported only when used.
"""

from __future__ import annotations

__all__ = ["run_analyses", "open_trajectory", "DiffusionAnalysis", "TransferenceAnalysis", "CoordinationAnalysis",
           "SolventCNAnalysis", "ProfileAnalysis"]

_WHERE = {
    "run_analyses": "engine", "open_trajectory": "trajectory", "DiffusionAnalysis": "diffusion",
    "TransferenceAnalysis": "transference", "CoordinationAnalysis": "coordination",
    "SolventCNAnalysis": "solvent_cn", "ProfileAnalysis": "profile",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"aseimd.analysis.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'aseimd.analysis' has no attribute {name!r}")
