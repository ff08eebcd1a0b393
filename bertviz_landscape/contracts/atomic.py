"""One way to write a file so that it appears complete or not at all, and one way to open a
file in place (an append-only log, a lock, a file written at offsets) without following a link.

`atomic_path(path)` yields a temporary name in the same directory; on success the file is
fsynced, renamed over `path` and the directory fsynced; on any error the temporary is removed.
Every writer of the project (JSON, HDF5, safetensors, checkpoints directories) goes through it.
`write_texts_atomic({path: text})` writes several files as one: all temporaries first, renamed
only when every one was written (report.md never beside a stale report.html).

`open_in_place(path, mode)` is the one way to open a file that is written where it lies (a
results directory is shared: a colleague's copy, a download): never through a symbolic link,
never a hard-linked file, a FIFO or a device; an OutputError naming the file otherwise, so a
planted link's target is neither truncated nor appended to.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from bertviz_landscape.contracts.errors import OutputError


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


def _write_new(tmp: Path, data: bytes) -> None:
    """`data` into the new file `tmp` (created here: never an existing file or a link)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        _write_new(tmp, data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike, payload, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=indent, default=str) + "\n")


def write_texts_atomic(files: dict[str | os.PathLike, str]) -> list[Path]:
    """Write several files as one: each to its temporary (fsynced), and only when every one was
    written, rename them all into place; on any error no file is replaced and the temporaries are
    removed (an OutputError naming the file that failed)."""
    done: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            path = check_writable(path)
            tmp = temp_name(path)
            done.append((path, tmp))
            try:
                _write_new(tmp, text.encode())
                _fsync_path(tmp)
            except OSError as err:
                raise OutputError(f"cannot write {path}: {_reason(err)}") from err
        for path, tmp in done:
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise OutputError(f"cannot write {path}: {_reason(err)}") from err
        for parent in {path.parent for path, _ in done}:
            _fsync_dir(parent)
    finally:
        for _, tmp in done:
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()
    return [path for path, _ in done]


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_MODES = {  # open_in_place's modes: os.open flags, the file object's mode
    "a": (os.O_WRONLY | os.O_APPEND, "a"),
    "ab": (os.O_WRONLY | os.O_APPEND, "ab"),
    "a+": (os.O_RDWR | os.O_APPEND, "a+"),
    "r+b": (os.O_RDWR, "r+b"),
}


def open_fd_in_place(path: str | os.PathLike, flags: int = os.O_RDWR, mode: int = 0o644) -> int:
    """`os.open(path, flags | O_CREAT)` that never follows a symbolic link at `path` and refuses
    anything but a plain file of its own (a hard link to another file, a FIFO, a device): an
    OutputError naming `path` (nothing is created, truncated or written there)."""
    path = Path(path)
    try:  # O_NONBLOCK: a planted FIFO must not block the open
        fd = os.open(path, flags | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK, mode)
    except OSError as err:
        if err.errno == errno.ELOOP or path.is_symlink():
            raise OutputError(
                f"cannot write {path}: it is a symbolic link (to {os.readlink(path)!r}); "
                "refused, not followed (remove it)"
            ) from None
        raise OutputError(f"cannot write {path}: {_reason(err)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"cannot write {path}: it is not a regular file; refused")
        if info.st_nlink > 1:
            raise OutputError(
                f"cannot write {path}: it is a hard link ({info.st_nlink} names for one file); "
                "refused, not written through (remove it)"
            )
        if _NONBLOCK:
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_in_place(path: str | os.PathLike, mode: str = "a"):
    """A file object on `path` (created if missing) opened with `open_fd_in_place`'s checks:
    `mode` "a"/"ab" (append), "a+" (append, and read) or "r+b" (read and write at offsets)."""
    flags, fmode = _MODES[mode]
    return os.fdopen(open_fd_in_place(path, flags), fmode)
