"""Locate the data shipped with aseimd: ``forcefields/``, ``systems/``, ``workflows/``.

In a wheel these live at ``aseimd/_data/<name>`` (hatch force-include); in a
source checkout or an editable install they are the top-level folders of the
repository. Both are resolved here, in one place, so no other module needs to
know how aseimd was installed.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aseimd.errors import SpecError

_DATA_DIRS = ("forcefields", "systems", "workflows")


def data_dir(name: str) -> Path:
    """Return the directory holding the shipped data folder ``name``.

    Parameters
    ----------
    name : str
        One of ``"forcefields"``, ``"systems"``, ``"workflows"``.

    Returns
    -------
    pathlib.Path
        An existing directory.
    """
    if name not in _DATA_DIRS:
        raise SpecError(f"unknown data folder {name!r}; allowed: {', '.join(_DATA_DIRS)}")
    packaged = Path(str(resources.files("aseimd"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(  # an installation problem, not a user error
        f"aseimd data folder {name!r} not found (looked in {packaged} and {checkout})"
    )


def data_file(name: str, filename: str) -> Path:
    """Return the path of ``filename`` inside the shipped data folder ``name``."""
    path = data_dir(name) / filename
    if not path.is_file():
        available = sorted(p.name for p in data_dir(name).iterdir() if p.is_file())
        raise SpecError(
            f"no file {filename!r} in aseimd's {name}/; available: {', '.join(available) or 'none'}"
        )
    return path
