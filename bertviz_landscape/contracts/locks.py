"""One lock helper for what two processes can share: a run directory, a demo stage, a shard.

`held(path, what)` takes an exclusive ``flock`` on `path` (created if needed) and writes the
holder (pid, host, start time) into it; the kernel drops the lock when the holder dies, so a
``kill -9`` never leaves a stale lock. When another process holds it, `wait=True` logs who and
blocks until it is free; `wait=False` raises a `BusyError` (one line naming the holder). The
lock file is opened by `atomic.open_in_place`: a symbolic (or hard) link planted at its name is
refused, never followed, so its target is not truncated.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from bertviz_landscape.contracts.atomic import open_in_place
from bertviz_landscape.contracts.errors import BadInput

log = logging.getLogger(__name__)


class BusyError(BadInput):
    """Another live process holds the lock on what this one was asked to write."""


def holder(path: str | os.PathLike) -> str:
    """Who holds (or last held) the lock at `path`, in words."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    return f"pid {info['pid']} on {info.get('host', '?')} since {info.get('since', '?')}"


@contextlib.contextmanager
def held(path: str | os.PathLike, what: str, wait: bool = True) -> Iterator[Path]:
    """Hold the exclusive lock `path` for `what` (e.g. "run directory /x") while the block runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_in_place(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(path)
            if not wait:
                raise BusyError(
                    f"{what} is in use by {who} (lock {path}); wait for it to finish or use another directory"
                ) from None
            log.warning("%s is in use by %s (lock %s): waiting for it", what, who, path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(
                json.dumps(
                    {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%H:%M:%S")}
                )
            )
            handle.flush()
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def held_by_another(path: str | os.PathLike) -> str | None:
    """Who holds the lock at `path` right now, in words (`holder`), or None when no live process
    does (or there is no such file). Asks the kernel without taking the lock for long and without
    writing to the file; a lock this process holds through another open file counts as held."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return holder(path)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def held_directory(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on the directory `path` itself (created if needed; no file is
    written into it) while the block runs, waiting for another holder: for short claims on what
    a directory will hold (e.g. which configuration writes a surface file there)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s is being claimed by another process: waiting", what)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(fd)  # closing the only descriptor drops the lock
