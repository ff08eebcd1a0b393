"""Fingerprints of inputs: what a finished result was made from, so that a changed input is seen.

`file_fingerprint(path)` identifies a file by its content, not by its path or time: the full
sha256 up to `FULL_HASH_BYTES`, beyond that the size and a sha256 of evenly spaced samples
(cheap for a multi-GB file, and still changed by any edit that alters the size or a sampled
block). `sha256_file(path)` is the full content hash (a direction file, a surface, a checkpoint's
weight files through `update_with_file`). `digest(obj)` is the short hash of a JSON-able
specification (a landscape's parts directory, a demo stage's record).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FULL_HASH_BYTES = 256 * 2**20  # files up to this size are hashed whole
SAMPLES, SAMPLE_BYTES = 64, 2**20  # larger ones: 64 evenly spaced 1 MiB blocks, first and last included


def digest(spec) -> str:
    """16 hex digits of the sha256 of `spec` as sorted JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def update_with_file(h, path: str | os.PathLike) -> None:
    """Feed the bytes of the file `path` into the hash `h`, 4 MiB at a time."""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            h.update(block)


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 (hex) of the whole file's content."""
    h = hashlib.sha256()
    update_with_file(h, path)
    return h.hexdigest()


def file_fingerprint(path: str | os.PathLike) -> dict:
    """``{"bytes": size, "sha256": ...}`` of the whole file, or ``{"bytes", "sampled_sha256"}``
    of evenly spaced blocks when the file is larger than FULL_HASH_BYTES."""
    path = Path(path)
    size = path.stat().st_size
    if size <= FULL_HASH_BYTES:
        return {"bytes": size, "sha256": sha256_file(path)}
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        block = min(SAMPLE_BYTES, max(size // SAMPLES, 1))
        step = (size - block) / (SAMPLES - 1)
        for i in range(SAMPLES):
            handle.seek(int(i * step))
            h.update(handle.read(block))
    return {"bytes": size, "sampled_sha256": h.hexdigest()}
