"""MkDocs hook: the task-spec key table of docs/guide/concepts/own-data.md, generated from the code.

The keys, their example values and their comments are read from the spec block of
`bertviz_landscape/training/data/sources.py`'s module docstring (the one description of the format), and
checked against the keys the reader accepts (`SPEC_KEYS`, the `source` and `columns` keys, the
formats and metrics): a key the code accepts but the table lacks fails the build (`make docs`
runs ``mkdocs build --strict``), so the page cannot go stale. Parsed with `ast`, without importing
the package (no torch in the docs build).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

MARKER = "<!-- task-spec-keys -->"
SOURCES = Path(__file__).resolve().parents[2] / "bertviz_landscape" / "training" / "data" / "sources.py"
SOURCE_KEYS = ("format", "train", "dev", "path", "config")
COLUMN_KEYS = ("text", "pair", "label")


def _constants(tree: ast.Module) -> dict:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def spec_rows() -> list[tuple[str, str, str]]:
    """(key, example, meaning) for every key of the spec block in the module docstring."""
    tree = ast.parse(SOURCES.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]  # the indented YAML after "::"
    rows, parent = [], ""
    for line in block.splitlines():
        found = re.match(r"^(\s*)([a-z_]+):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if not found:
            continue
        indent, key, value, comment = found.groups()
        if len(indent) <= 4:
            parent = key
            full = key
        else:
            full = f"{parent}.{key}"
        if value.startswith("{") and key == "columns":  # columns: {text: …, pair: …, label: …}
            rows.append(("columns", "", "which columns hold the text(s) and the label"))
            for inner in re.findall(r"(\w+):\s*([^,}]+)", value):
                rows.append((f"columns.{inner[0]}", inner[1].strip(), ""))
            continue
        rows.append((full, value, comment or ""))
    return rows


def table() -> str:
    tree = ast.parse(SOURCES.read_text(encoding="utf-8"))
    consts = _constants(tree)
    rows = spec_rows()
    keys = {r[0] for r in rows}
    wanted = (
        set(consts["SPEC_KEYS"]) | {f"source.{k}" for k in SOURCE_KEYS} | {f"columns.{k}" for k in COLUMN_KEYS}
    )
    missing = sorted(wanted - keys)
    if missing:
        raise ValueError(f"data/sources.py's docstring does not describe task-spec key(s) {missing}")
    described = {"source": "where the data is (the keys below)", "columns.text": "the column holding the text", "columns.pair": "the second text of pair tasks (null: none)",
                 "columns.label": "the column holding the label"}
    lines = ["| key | example | meaning |", "|---|---|---|"]
    for key, value, comment in rows:
        meaning = comment or described.get(key, "")
        lines.append(f"| `{key}` | `{value}` | {meaning.replace('|', '/')} |" if value else f"| `{key}` | | {meaning} |")
    lines += [
        "",
        f"Formats (`source.format`): {', '.join(f'`{f}`' for f in consts['FORMATS'])}; by file extension: "
        + ", ".join(f"`{e}` → {f}" for e, f in consts["EXTENSIONS"].items())
        + ".",
        f"Metrics: classification {', '.join(f'`{m}`' for m in consts['CLASSIFICATION_METRICS'])}; "
        f"regression {', '.join(f'`{m}`' for m in consts['REGRESSION_METRICS'])}.",
    ]
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return markdown.replace(MARKER, table()) if MARKER in markdown else markdown
