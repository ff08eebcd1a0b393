"""Opening an HDF5 file that came from elsewhere (a surface, a direction file): only its own bytes.

HDF5 lets a file refer outside itself: a dataset's raw data in another file (*external
storage*, ``h5py`` ``external=``), a *virtual* dataset mapped from other files, an *external
link* to an object of another file, and a *soft link* (a path, resolved when read, that can
lead through another link). A crafted surface would then return another file's bytes as loss
values. `open_self_contained(path, what)` opens the file read-only and, before anything is read,
walks every object and every link (links are listed, never followed; external files are never
opened) and refuses the file when one of them refers elsewhere: a LandscapeError naming the file
and the dataset or link. Every reader of surfaces and direction files opens them here.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from bertviz_landscape.contracts.errors import LandscapeError


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]


def outside_references(f: h5py.File) -> list[str]:
    """What in `f` refers outside it, in words ('dataset /x uses external raw storage in
    'secret.bin''), in the order found; empty for a self-contained file."""
    found: list[str] = []
    groups: list[tuple[str, h5py.Group]] = [("/", f)]

    def visit(name: str, obj) -> None:  # H5Ovisit: every object once, through hard links only
        where = "/" + name
        if isinstance(obj, h5py.Group):
            groups.append((where, obj))
        elif isinstance(obj, h5py.Dataset):
            if obj.is_virtual:
                sources = sorted({m.file_name for m in obj.virtual_sources()})
                found.append(f"dataset {where} is a virtual dataset mapped from {', '.join(sources)[:200]}")
            external = obj.external
            if external:
                names = ", ".join(sorted({os.fsdecode(e[0]) for e in external}))
                found.append(f"dataset {where} uses external raw storage in {names[:200]}")

    f.visititems(visit)
    for where, group in groups:
        for name in group:
            link = group.get(name, getlink=True)
            path = where.rstrip("/") + "/" + name
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{path} is an external link to {link.filename}:{link.path}")
            elif isinstance(link, h5py.SoftLink):
                found.append(f"{path} is a soft link to {link.path}")
    return found


def open_self_contained(path: str | os.PathLike, what: str) -> h5py.File:
    """`path` opened read-only when it is an HDF5 file that refers to nothing outside itself;
    else a LandscapeError "<what> <path>: ..." naming the dataset or link (the file is closed)."""
    path = Path(path)
    if not path.is_file():
        raise LandscapeError(f"{what} {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise LandscapeError(f"{what} {path} is not a readable HDF5 file ({_short(err)})") from None
    try:
        found = outside_references(f)
    except (OSError, KeyError, ValueError, RuntimeError) as err:  # a damaged object header or link
        f.close()
        raise LandscapeError(f"{what} {path} is corrupt ({_short(err)})") from None
    if found:
        f.close()
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise LandscapeError(f"{what} {path}: {found[0]}{more}; a file that refers outside itself is refused")
    return f
