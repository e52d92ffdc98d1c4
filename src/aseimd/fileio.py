"""Safe file output: atomic writes, no silent overwrites, ``--force`` only on what aseimd wrote.

Nothing a user made is ever lost:

* a file is written to a temporary sibling and renamed into place (``os.replace``
  is atomic on POSIX); an existing output file is only replaced with ``force=True``;
* a directory aseimd writes (a system directory, a run directory) carries a small
  marker file, :data:`MARKER` (``.aseimd``, JSON: the kind of directory and the
  files aseimd wrote there). ``force=True`` replaces only such a directory of the
  same kind, holding nothing but those files; anything else (a folder without
  the marker, user files inside, ``.``, ``..``, the current folder or one of its
  parents, a symbolic link) is refused with a one-line message;
* files and folders are created with the permissions the user's umask gives
  (``0666 & ~umask`` and ``0777 & ~umask``), like any Unix tool;
* failures of the machine (permission denied, disk full) become
  :class:`~aseimd.errors.EnvironmentProblem` naming the path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Iterator

from aseimd.errors import EnvironmentProblem, OutputExistsError, SpecError, from_os_error

#: Marker file aseimd writes into every directory it creates (JSON).
MARKER = ".aseimd"


# ---------------------------------------------------------------------- permissions

def current_umask() -> int:
    """The process umask (read without changing it where ``/proc`` allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """Permission bits of a new file: ``0o666 & ~umask``."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """Permission bits of a new folder: ``0o777 & ~umask``."""
    return 0o777 & ~current_umask()


# ---------------------------------------------------------------------- checks

def _display(path: str | os.PathLike) -> str:
    return repr(str(path))


def _check_parent_writable(path: Path) -> None:
    """Refuse before any work when ``path`` cannot be created: a file in the way, no permission."""
    ancestor = path.parent  # as the user wrote it (relative stays relative in messages)
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise SpecError(f"cannot create {_display(path)}: {_display(ancestor)} is a file, not a folder; "
                        f"choose another output path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"cannot create {_display(path)}: permission denied in {_display(ancestor)}; "
                                 f"check the folder's permissions or choose another output path")
    try:  # os.access says yes to root everywhere: create (and remove) an empty folder to be sure
        os.rmdir(tempfile.mkdtemp(prefix=".aseimd-probe-", suffix=".tmp", dir=ancestor))
    except OSError as exc:
        raise from_os_error(exc, f"create {_display(path)}") from None


def _nonempty(path: str | os.PathLike, what: str = "output path") -> Path:
    if str(path).strip() == "":
        raise SpecError(f"the {what} is empty; give a name, e.g. -o run1")
    return Path(path)


def check_new_output(path: str | os.PathLike, force: bool = False) -> Path:
    """Check an output *file* before any work is done.

    For a folder (callers that check a directory output this way), the message
    suggests ``--force`` only where it would work; the directory writer
    (:func:`staged_directory`) makes the real decision.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``force`` is false.
    SpecError
        ``path`` is empty or a file stands where a folder of it should be.
    EnvironmentProblem
        No permission to create ``path``.
    """
    path = _nonempty(path)
    if path.exists() and not force:
        if path.is_dir() and not _replaceable(path):
            raise OutputExistsError(f"output {_display(path)} already exists and is a folder aseimd did not "
                                    f"write (or holds other files); choose another output path")
        raise OutputExistsError(f"output {_display(path)} already exists; pass --force to replace it")
    _check_parent_writable(path)
    return path


def _replaceable(directory: Path) -> bool:
    """An aseimd directory (by its marker) that ``force`` could replace."""
    marker = read_marker(directory)
    return marker is not None and replace_problem(directory, marker["kind"], marker.get("files") or ()) is None


# ---------------------------------------------------------------------- markers

def write_marker(directory: str | os.PathLike, kind: str, files: Iterable[str] = ()) -> Path:
    """Write :data:`MARKER` into ``directory``: aseimd wrote it, as a ``kind`` directory holding ``files``."""
    from aseimd import __version__

    doc = {"written_by": "aseimd", "kind": kind, "aseimd_version": __version__,
           "files": sorted(set(files) - {MARKER})}
    return atomic_write_text(Path(directory) / MARKER, json.dumps(doc, indent=1) + "\n")


def read_marker(directory: str | os.PathLike) -> dict | None:
    """The marker of ``directory`` (``None`` if absent or not an aseimd marker)."""
    path = Path(directory) / MARKER
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("written_by") != "aseimd" or not isinstance(doc.get("kind"), str):
        return None
    return doc


def _is_temporary(name: str) -> bool:
    """Names of aseimd's own temporaries (atomic writes, staging)."""
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".partial") or name.endswith(".old"))


def _legacy_owned(path: Path, legacy_json: str | None) -> bool:
    """A directory from an aseimd without markers: its ``legacy_json`` names the aseimd version."""
    if legacy_json is None:
        return False
    try:
        doc = json.loads((path / legacy_json).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "aseimd_version" in doc


def _cwd_or_parent(path: Path) -> bool:
    try:
        target, cwd = path.resolve(), Path.cwd().resolve()
    except OSError:
        return False
    return target == cwd or target in cwd.parents or target == Path.home().resolve() or target == Path("/")


def replace_problem(path: str | os.PathLike, kind: str, files: Iterable[str] = (),
                    legacy_json: str | None = None) -> str | None:
    """Why ``force`` may not replace the existing directory ``path`` (``None``: it may).

    It may when ``path`` is a real directory (not a link), not the current folder
    or one of its parents, carries aseimd's :data:`MARKER` of this ``kind`` (or,
    written by an older aseimd, a ``legacy_json`` naming the aseimd version), and
    holds nothing but the files aseimd writes there (``files``, those the marker
    lists, aseimd's temporaries) -- or is empty.

    Parameters
    ----------
    path : path-like
    kind : str
        The kind of directory the caller writes (``"system"``, ``"run"``, ...).
    files : iterable of str
        Names aseimd writes into a directory of this kind.
    legacy_json : str, optional
        For directories written before markers existed: a JSON file in it that
        holds ``aseimd_version``.
    """
    path = Path(path)
    if path.is_symlink():
        return "it is a symbolic link"
    if _cwd_or_parent(path):
        return "it is the current folder, one of its parents or the home folder"
    if not path.is_dir():
        return "it is not a folder"
    entries = sorted(path.iterdir())
    if not entries:
        return None
    def listing(names: list[str]) -> str:
        return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")

    marker = read_marker(path)
    allowed = set(files) | {MARKER}
    if marker is None:
        if not _legacy_owned(path, legacy_json):
            names = [p.name + ("/" if p.is_dir() else "") for p in entries]
            return f"it has no .aseimd marker, so aseimd did not write it (it holds {listing(names)})"
    elif marker["kind"] != kind:
        return f"it is an aseimd {marker['kind']} directory, not a {kind} directory"
    else:
        allowed |= set(marker.get("files") or ())
    foreign = [p.name + ("/" if p.is_dir() else "") for p in entries
               if not ((p.name in allowed or _is_temporary(p.name)) and (p.is_file() or p.is_symlink()))]
    if foreign:
        return f"it holds {len(foreign)} item(s) aseimd did not write ({listing(foreign)})"
    return None


def check_output_location(path: str | os.PathLike) -> Path:
    """Checks every output directory passes, existing or not (no ``force`` overrides them).

    Raises
    ------
    SpecError
        Empty path; a file stands where a parent folder should be.
    OutputExistsError
        ``path`` is a file, a symbolic link, the current folder, one of its
        parents or the home folder.
    EnvironmentProblem
        No permission to create ``path``.
    """
    path = _nonempty(path)
    if path.is_symlink():
        raise OutputExistsError(f"output {_display(path)} is a symbolic link; give the real folder or "
                                f"another output path")
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output {_display(path)} exists and is a file, not a folder; "
                                f"choose another output path")
    if _cwd_or_parent(path):
        raise OutputExistsError(f"output {_display(path)} is the current folder, one of its parents or the "
                                f"home folder; give a new folder name, e.g. -o run1")
    _check_parent_writable(path)
    return path


def check_output_dir(path: str | os.PathLike, *, kind: str, files: Iterable[str] = (), force: bool = False,
                     legacy_json: str | None = None) -> Path:
    """Check an output *directory* before any work is done.

    A missing or empty directory is fine; an existing one needs ``force`` and
    must pass :func:`replace_problem`.

    Raises
    ------
    OutputExistsError
        ``path`` exists and may not be replaced (the message says why, and
        mentions ``--force`` only where it would help).
    SpecError, EnvironmentProblem
        Empty path, a file in the way, no permission.
    """
    path = check_output_location(path)
    if not path.exists() or not any(path.iterdir()):
        return path
    problem = replace_problem(path, kind, files, legacy_json)
    if problem is not None:
        if force:
            raise OutputExistsError(f"refusing to replace {_display(path)} with --force: {problem}; "
                                    f"choose another output path (--force replaces only what aseimd wrote)")
        raise OutputExistsError(f"output {_display(path)} already exists and {problem}; "
                                f"choose another output path")
    if not force:
        raise OutputExistsError(f"output {_display(path)} already exists; pass --force to replace it")
    return path


def clear_output_dir(path: str | os.PathLike, *, kind: str, files: Iterable[str] = (),
                     legacy_json: str | None = None) -> None:
    """Delete what aseimd wrote in ``path`` (after :func:`replace_problem` allows it); keep the folder."""
    path = Path(path)
    files = tuple(files)
    problem = replace_problem(path, kind, files, legacy_json)
    if problem is not None:
        raise OutputExistsError(f"refusing to replace {_display(path)} with --force: {problem}; "
                                f"choose another output path (--force replaces only what aseimd wrote)")
    for entry in path.iterdir():
        try:
            entry.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise from_os_error(exc, f"remove {_display(entry)}") from None


def make_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p`` with the umask's permissions; OS failures become aseimd errors naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, f"create the folder {_display(path)}") from None
    return path


# ---------------------------------------------------------------------- atomic writes

def atomic_write_bytes(path: str | os.PathLike, data: bytes, keep_previous: str | os.PathLike | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename), mode ``0666 & ~umask``.

    With ``keep_previous``, an existing ``path`` is first renamed to it (after
    the new data is safely on disk), so the last good version survives; at every
    moment at least one of the two files holds complete data.

    Raises
    ------
    EnvironmentProblem, SpecError
        The write failed (disk full, permission denied, ...); ``path`` is unchanged.
    """
    path = Path(path)
    make_dir(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), default_file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise from_os_error(exc, f"write {_display(path)}") from None
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _check_write_target(path: str | os.PathLike, force: bool) -> None:
    """The full :func:`check_new_output` for a new output; with ``force`` only that it is not a folder."""
    if not force:
        check_new_output(path, force=False)
    elif Path(path).is_dir():
        raise OutputExistsError(f"output {_display(path)} is a folder, not a file; give a file name")


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
    _check_write_target(path, force)
    return atomic_write_text(path, dumps_json(obj))


@contextlib.contextmanager
def staged_directory(path: str | os.PathLike, force: bool = False, *, kind: str = "output",
                     files: Iterable[str] = (), legacy_json: str | None = None) -> Iterator[Path]:
    """Build an output directory in a temporary sibling and move it into place on success.

    The new directory gets aseimd's :data:`MARKER` (``kind`` and the files it
    holds). On any error the temporary directory is removed and an existing
    ``path`` is left untouched; with ``force=True`` an existing ``path`` is
    replaced only after the new content is complete, and only if
    :func:`replace_problem` allows it (checked before and again right before the
    swap, so files a user put there meanwhile are never lost).

    Yields
    ------
    pathlib.Path
        The temporary directory to write into.
    """
    path = check_output_dir(path, kind=kind, files=files, force=force, legacy_json=legacy_json)
    make_dir(path.absolute().parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.absolute().parent))
        os.chmod(tmp, default_dir_mode())
    except OSError as exc:
        raise from_os_error(exc, f"create {_display(path)}") from None
    try:
        yield tmp
        write_marker(tmp, kind, [p.name for p in tmp.iterdir()])
        if path.exists():
            problem = replace_problem(path, kind, files, legacy_json)
            if problem is not None:
                raise OutputExistsError(f"refusing to replace {_display(path)}: {problem} (changed while "
                                        f"building); the new content was not kept")
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.absolute().parent))
            os.replace(path, old / "content")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise from_os_error(exc, f"write {_display(path)}") from None
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
    # whole columns at once: tolist() gives Python scalars, repr() of a float is its shortest round-trip text
    cells = [list(map(repr if c.dtype.kind == "f" else _csv_cell, c.tolist())) for c in cols]
    lines.extend(map(",".join, zip(*cells, strict=True)))
    return "\n".join(lines) + "\n"


def _csv_cell(value: Any) -> str:
    import numpy as np

    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def atomic_write_csv(path: str | os.PathLike, headers: list[str], columns: list, force: bool = True) -> Path:
    """Write columns as CSV to ``path`` atomically (refusing to overwrite unless ``force``)."""
    _check_write_target(path, force)
    return atomic_write_text(path, format_csv(headers, columns))


class SyncedFile:
    """Mixin of a writer that owns one open file, ``self._file`` (run-directory DCD and thermo.csv).

    ``sync`` pushes what was written to the operating system and to disk (a checkpoint of the
    same step relies on it: frames and rows up to that step are durable before it); ``close``
    closes the file once (closing flushes it), and again is a no-op.
    """

    _file: Any

    def sync(self) -> None:
        """Flush to the operating system and to disk."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (after flushing it); nothing if it is closed already."""
        if not self._file.closed:
            self._file.close()
