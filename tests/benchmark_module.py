"""Import a script from benchmarks/ as a module, for the benchmarks' smoke tests."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@contextlib.contextmanager
def loaded_benchmark(filename: str, module_name: str):
    """Yield ``benchmarks/<filename>`` imported as ``module_name`` (removed from sys.modules after)."""
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
