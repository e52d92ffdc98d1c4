"""Fault injection for the crash-resume tests (inert unless ``ASEIMD_TEST_CRASH`` is set).

``ASEIMD_TEST_CRASH=NAME`` or ``NAME@N`` makes the process kill itself with
SIGKILL the N-th time (default 1st) it passes the crash point ``NAME``: the
same abrupt death as ``kill -9``, at a chosen moment. Crash points are placed
only where files are written (never inside the MD loop), so the check costs
nothing measurable.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV_VAR = "ASEIMD_TEST_CRASH"
_passed: Counter = Counter()


def crash_point(name: str) -> None:
    """Die with SIGKILL here if ``ASEIMD_TEST_CRASH`` names this point (and count)."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    target, _, count = spec.partition("@")
    if target != name:
        return
    _passed[name] += 1
    if _passed[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
