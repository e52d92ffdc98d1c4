"""The simulate layer: protocols, platform choice, reporters, checkpoints and exact resume.

>>> from aseimd.simulate import Protocol
>>> [stage.type for stage in Protocol.default().stages]
['minimize', 'nvt', 'npt', 'production']

Run one from Python (the CLI ``aseimd run DIR -o RUNDIR`` does the same)::

    from aseimd.simulate import run_protocol
    result = run_protocol("elyte", "elyte-run", "quickstart", platform="auto")
"""

from aseimd.simulate.platform import PlatformChoice, select_platform
from aseimd.simulate.protocol import NPT, NVT, Duration, Minimize, Production, Protocol
from aseimd.simulate.runner import RunResult, load_run_info, run_protocol

__all__ = [
    "Protocol",
    "Minimize",
    "NVT",
    "NPT",
    "Production",
    "Duration",
    "PlatformChoice",
    "select_platform",
    "RunResult",
    "run_protocol",
    "load_run_info",
]
