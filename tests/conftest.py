"""Shared pytest fixtures: deterministic RNG, CPU-only OpenMM, each test in its own tmp dir."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """One seeded random generator per test."""
    return np.random.default_rng(20261125)
