"""Safe file output: atomic writes, no silent overwrites.

Nothing a user made is ever lost: a file is written to a temporary sibling and
renamed into place (``os.replace`` is atomic on POSIX), and an existing output
is only replaced when the caller passes ``force=True``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from aseimd.errors import OutputExistsError


def check_new_output(path: str | os.PathLike, force: bool = False) -> Path:
    """Raise :class:`OutputExistsError` if ``path`` exists and ``force`` is false."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"output {str(path)!r} already exists; pass --force to replace it")
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def dumps_json(obj: Any) -> str:
    """Serialise ``obj`` as indented JSON; numpy scalars/arrays become plain numbers/lists.

    Non-finite floats are written as ``null`` so the file stays valid JSON.
    """
    return json.dumps(_finite(obj), indent=2, sort_keys=False, default=_json_default) + "\n"


def _finite(obj: Any) -> Any:
    import math

    import numpy as np

    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, force: bool = True) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (refusing to overwrite unless ``force``)."""
    check_new_output(path, force=force)
    return atomic_write_text(path, dumps_json(obj))


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Build an output directory in a temporary sibling and move it into place on success.

    On any error the temporary directory is removed and an existing ``path`` is
    left untouched; with ``force=True`` an existing ``path`` is replaced only
    after the new content is complete.

    Yields
    ------
    pathlib.Path
        The temporary directory to write into.
    """
    path = Path(path)
    check_new_output(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def format_csv(headers: list[str], columns: list) -> str:
    """CSV text from equal-length columns; headers carry their units, e.g. ``"Time (ps)"``."""
    import numpy as np

    cols = [np.asarray(c) for c in columns]
    if len(cols) != len(headers):
        raise ValueError(f"{len(headers)} headers for {len(cols)} columns")
    n = {len(c) for c in cols}
    if len(n) > 1:
        raise ValueError(f"columns of different lengths: {sorted(n)}")
    lines = [",".join(f'"{h}"' if "," in h else h for h in headers)]
    for row in zip(*cols, strict=True):
        lines.append(",".join(_csv_cell(v) for v in row))
    return "\n".join(lines) + "\n"


def _csv_cell(value: Any) -> str:
    import numpy as np

    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def atomic_write_csv(path: str | os.PathLike, headers: list[str], columns: list, force: bool = True) -> Path:
    """Write columns as CSV to ``path`` atomically (refusing to overwrite unless ``force``)."""
    check_new_output(path, force=force)
    return atomic_write_text(path, format_csv(headers, columns))
