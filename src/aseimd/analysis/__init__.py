"""Analysis of trajectories: transport (diffusion, Onsager transference, conductivity), structure, profiles.

The library entry point for several analyses over one read of a trajectory is
:func:`run_analyses` (see :mod:`aseimd.analysis.engine`); heavy modules are
imported only when used.
"""

from __future__ import annotations

__all__ = ["run_analyses", "open_trajectory", "DiffusionAnalysis", "TransferenceAnalysis"]


def __getattr__(name: str):
    if name == "run_analyses":
        from aseimd.analysis.engine import run_analyses

        return run_analyses
    if name == "open_trajectory":
        from aseimd.analysis.trajectory import open_trajectory

        return open_trajectory
    if name == "DiffusionAnalysis":
        from aseimd.analysis.diffusion import DiffusionAnalysis

        return DiffusionAnalysis
    if name == "TransferenceAnalysis":
        from aseimd.analysis.transference import TransferenceAnalysis

        return TransferenceAnalysis
    raise AttributeError(f"module 'aseimd.analysis' has no attribute {name!r}")
