"""Data edits the fingerprint tests make: `flip_labels` (MRPC's labels flipped in place)."""

from __future__ import annotations

from pathlib import Path


def flip_labels(tsv: Path) -> None:
    """MRPC's label is the first column: 0 ↔ 1, in place (same size, same name)."""
    head, *rows = tsv.read_text(encoding="utf-8").splitlines()
    rows = [("1" if r[0] == "0" else "0") + r[1:] for r in rows]
    tsv.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
