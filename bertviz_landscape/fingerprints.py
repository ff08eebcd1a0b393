"""Fingerprints of inputs: what a finished result was made from, so that a changed input is seen.

`file_fingerprint(path)` identifies a file by its content, not by its path or time: the full
sha256 up to `FULL_HASH_BYTES`, beyond that the size and a sha256 of evenly spaced samples
(cheap for a multi-GB file, and still changed by any edit that alters the size or a sampled
block). `digest(obj)` is the short hash of a JSON-able specification.
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


def file_fingerprint(path: str | os.PathLike) -> dict:
    """``{"bytes": size, "sha256": ...}`` of the whole file, or ``{"bytes", "sampled_sha256"}``
    of evenly spaced blocks when the file is larger than FULL_HASH_BYTES."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= FULL_HASH_BYTES:
            for block in iter(lambda: handle.read(1 << 22), b""):
                h.update(block)
            return {"bytes": size, "sha256": h.hexdigest()}
        block = min(SAMPLE_BYTES, max(size // SAMPLES, 1))
        step = (size - block) / (SAMPLES - 1)
        for i in range(SAMPLES):
            handle.seek(int(i * step))
            h.update(handle.read(block))
    return {"bytes": size, "sampled_sha256": h.hexdigest()}
