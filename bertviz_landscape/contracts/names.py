"""Names read from files, and paths they become: strict patterns, and paths confined to their root.

A run's `run.json`, a surface's attributes, a snapshot index are files a colleague sent or a
download brought: whatever they say must not reach a path unchecked. Every name that becomes
part of a file name (a task, an init, a recipe, a grid) goes through `check_name`; every file a
file names (a snapshot listed in `index.jsonl`, θ0 named by a `meta.json`) and every output
path built from names goes through `confine`, which refuses what resolves outside its root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bertviz_landscape.contracts.errors import BadInput

# a name that is safe as (a part of) one file name: no separator, no leading dot, no "..", short
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# a Hugging Face hub id (`org/name` or `name`): no "..", no leading dot, no absolute path
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?")


class UnsafeNameError(BadInput):
    """A name read from a file that is not a plain name (it would become a path elsewhere)."""


class ConfinementError(BadInput):
    """A path that a file names, or an output path, that resolves outside its directory."""


def is_name(value) -> bool:
    return isinstance(value, str) and NAME.fullmatch(value) is not None and ".." not in value


def check_name(value, key: str, source: str | os.PathLike) -> str:
    """`value` when it is a plain name (letters, digits, `_ . + -`, at most 64, no `..`), else
    a BadInput naming `source` (the file it was read from) and `key`."""
    if not is_name(value):
        raise UnsafeNameError(
            f"{source}: {key} {str(value)[:80]!r} is not a plain name (letters, digits, '_.+-', "
            "no '/' or '..'); it would become part of a file name"
        )
    return value


def check_model_name(value, key: str, source: str | os.PathLike) -> str:
    """A model's `name_or_path` read from a file: a hub id (`org/name`) or an absolute path."""
    ok = isinstance(value, str) and "\x00" not in value and "\n" not in value
    if ok and not os.path.isabs(value):
        ok = HUB_ID.fullmatch(value) is not None and ".." not in value.split("/")
    if not ok:
        raise UnsafeNameError(
            f"{source}: {key} {str(value)[:80]!r} is neither a hub id (org/name) nor an absolute path"
        )
    return value


def confine(path: str | os.PathLike, root: str | os.PathLike, what: str) -> Path:
    """`path` resolved (symlinks too; relative paths against `root`), when it lies inside `root`;
    else a ConfinementError saying `what` named it."""
    root = Path(root).expanduser().resolve()
    target = Path(path).expanduser()
    target = (target if target.is_absolute() else root / target).resolve()
    if target != root and root not in target.parents:
        raise ConfinementError(f"{what}: {str(path)!r} resolves to {target}, outside {root}; refused")
    return target
