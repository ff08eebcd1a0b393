"""One way to write a file so that it appears complete or not at all.

`atomic_path(path)` yields a temporary name in the same directory; on success the file is
fsynced, renamed over `path` and the directory fsynced; on any error the temporary is removed.
Every writer of the project (JSON, HDF5, safetensors, checkpoints directories) goes through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from bertviz_landscape.errors import OutputError


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    if path.is_dir():
        for child in path.rglob("*"):
            if child.is_file():
                _fsync_path(child)
        _fsync_dir(path)
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_writable(path: str | os.PathLike, directory: bool = False) -> Path:
    """Create `path`'s parent and check that `path` can be written there (before any work is
    done for it); an OutputError naming the path otherwise."""

    path = Path(path)
    if path.is_dir() and not directory:
        raise OutputError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"cannot write {path}: cannot create {path.parent} ({err.strerror or err})"
        ) from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {path.parent} is not writable")
    return path


def temp_name(path: Path) -> Path:
    """`.<name>.<random>.tmp` beside `path`: unique per writer, hidden, easy to recognise."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def is_temp_name(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path (a file, or an empty directory when `directory=True`) to write;
    then fsync it, rename it over `path` (replacing a file or a directory) and fsync the parent."""

    path = Path(path)
    check_writable(path, directory)
    tmp = temp_name(path)
    try:
        if directory:
            tmp.mkdir()
        yield tmp
        _fsync_path(tmp)
        if directory and path.exists():
            old = temp_name(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (
        OSError,
        RuntimeError,
    ) as err:  # a full disk, a file-size limit, a read-only file system: name the file
        cause = _write_failure(err)
        if cause is None:
            raise
        raise OutputError(f"cannot write {path}: {_reason(cause)}") from err
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _write_failure(err: BaseException) -> OSError | None:
    """The OSError behind a failed write: `err` itself, or the OSError that a library's
    RuntimeError was raised while handling (h5py closing a file after a short write)."""
    while err is not None:
        if isinstance(err, OSError):
            return err
        err = err.__context__ if isinstance(err, RuntimeError) else None
    return None


def _reason(err: OSError) -> str:
    if err.errno:
        return os.strerror(err.errno)
    return err.strerror or (str(err).splitlines()[0] if str(err) else type(err).__name__)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike, payload, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=indent, default=str) + "\n")
