"""Choosing the OpenMM platform: ``auto`` = CUDA (mixed) > OpenCL (mixed) > CPU.

A platform counts as available only if a one-particle Context can actually be
created on it (a CUDA plugin without a GPU is registered but unusable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import openmm as mm

from aseimd.errors import SpecError

PLATFORM_NAMES = ("CUDA", "OpenCL", "CPU", "Reference")
"""Platforms a user may name explicitly (besides ``auto``)."""

AUTO_ORDER = ("CUDA", "OpenCL", "CPU")
"""Preference order of ``auto`` (Reference is never picked automatically: it is slow)."""
MAX_THREADS_PER_CPU = 4
"""Most CPU-platform threads per CPU core accepted (oversubscription helps nobody; far more aborts OpenMM)."""


@dataclass(frozen=True)
class PlatformChoice:
    """A usable OpenMM platform and the properties to create Contexts with.

    Parameters
    ----------
    name : str
        OpenMM platform name.
    properties : dict of str to str
        Platform properties passed to every Context (precision, threads, ...).
    requested : str
        What the user asked for (``auto`` or a platform name).
    skipped : dict of str to str
        Platforms ``auto`` tried and rejected, with the reason.
    """

    name: str
    properties: dict[str, str] = field(default_factory=dict)
    requested: str = "auto"
    skipped: dict[str, str] = field(default_factory=dict)

    def platform(self) -> mm.Platform:
        """The :class:`openmm.Platform` object."""
        return mm.Platform.getPlatformByName(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "properties": dict(self.properties),
            "requested": self.requested,
            "skipped": dict(self.skipped),
        }


def _registered_names() -> list[str]:
    return [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]


def _probe(name: str, properties: dict[str, str]) -> str | None:
    """Try a one-particle Context on ``name``; return None if it works, else the reason."""
    system = mm.System()
    system.addParticle(1.0)
    integrator = mm.VerletIntegrator(0.001)
    try:
        context = mm.Context(system, integrator, mm.Platform.getPlatformByName(name), properties)
    except Exception as exc:  # OpenMM raises plain Exception subclasses for missing devices
        return " ".join(str(exc).split()) or type(exc).__name__
    del context
    return None


def default_properties(name: str, *, threads: int | None = None, deterministic: bool = False) -> dict[str, str]:
    """Platform properties aseimd uses: mixed precision on GPUs, optional thread count on CPU.

    ``deterministic`` asks CUDA/CPU for order-independent force summation
    (``DeterministicForces``), which bit-exact resume needs on those platforms.
    """
    props: dict[str, str] = {}
    if name in ("CUDA", "OpenCL"):
        props["Precision"] = "mixed"
    if name == "CPU" and threads is not None:
        props["Threads"] = str(int(threads))
    if deterministic and name in ("CUDA", "CPU"):
        props["DeterministicForces"] = "true"
    return props


def usable_platforms() -> list[str]:
    """Names of the platforms on which a Context can be created on this machine."""
    return [name for name in _registered_names() if _probe(name, default_properties(name)) is None]


def select_platform(
    requested: str = "auto", *, threads: int | None = None, deterministic: bool = False
) -> PlatformChoice:
    """Pick a platform.

    Parameters
    ----------
    requested : str
        ``auto`` or one of :data:`PLATFORM_NAMES` (case-insensitive).
    threads : int, optional
        CPU platform thread count (ignored elsewhere).
    deterministic : bool
        Request deterministic force summation (CUDA, CPU).

    Returns
    -------
    PlatformChoice

    Raises
    ------
    SpecError
        Unknown or unusable platform; the message lists what this machine has.
    """
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise SpecError(f"threads must be a positive integer, got {threads!r}")
    if threads is not None and int(threads) > MAX_THREADS_PER_CPU * (os.cpu_count() or 1):
        # OpenMM's CPU platform aborts the process (std::terminate) when it cannot start that many threads
        raise SpecError(f"threads {threads} not allowed; allowed: 1 to {MAX_THREADS_PER_CPU * (os.cpu_count() or 1)} "
                        f"({MAX_THREADS_PER_CPU} per CPU of this machine, which has {os.cpu_count() or 1})")
    allowed = ("auto",) + PLATFORM_NAMES
    canonical = {n.lower(): n for n in allowed}
    key = str(requested).strip().lower()
    if key not in canonical:
        raise SpecError(f"unknown platform {requested!r}; allowed: {', '.join(allowed)}")
    name = canonical[key]
    registered = _registered_names()
    if name == "auto":
        skipped: dict[str, str] = {}
        for candidate in AUTO_ORDER:
            if candidate not in registered:
                continue
            props = default_properties(candidate, threads=threads, deterministic=deterministic)
            reason = _probe(candidate, props)
            if reason is None:
                return PlatformChoice(candidate, props, "auto", skipped)
            skipped[candidate] = reason
        raise SpecError(
            f"no usable platform among {', '.join(AUTO_ORDER)}; this machine has: "
            f"{', '.join(_usable_or_registered(registered))}"
        )
    props = default_properties(name, threads=threads, deterministic=deterministic)
    if name not in registered:
        raise SpecError(
            f"platform {name!r} is not available; this machine has: {', '.join(_usable_or_registered(registered))}"
        )
    reason = _probe(name, props)
    if reason is not None:
        raise SpecError(
            f"platform {name!r} cannot be used ({reason}); this machine has: "
            f"{', '.join(_usable_or_registered(registered))}"
        )
    return PlatformChoice(name, props, name, {})


def _usable_or_registered(registered: list[str]) -> list[str]:
    usable = [n for n in registered if _probe(n, default_properties(n)) is None]
    return usable or registered or ["none"]


def context_platform_info(context: mm.Context) -> dict[str, Any]:
    """Platform name and every property value of a live Context (for ``run.json``)."""
    platform = context.getPlatform()
    props = {}
    for prop in platform.getPropertyNames():
        try:
            props[prop] = platform.getPropertyValue(context, prop)
        except Exception:  # some properties are not defined for every context
            continue
    return {"name": platform.getName(), "properties": props, "speed": platform.getSpeed()}
