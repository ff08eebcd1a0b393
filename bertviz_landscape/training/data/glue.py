"""Read a GLUE split, from GLUE's original TSV layout or from the hub, into one schema.

Both sources go through `datasets` (the TSV through its csv builder with QUOTE_NONE, because
GLUE's files carry literal quote characters) and come out with the same columns:
``text_a``, ``text_b`` (None for single-sentence tasks) and ``label`` (int, or float for STS-B).
Every problem with the input is raised as `GlueDataError` naming the file, row or key.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from pathlib import Path

import datasets
import numpy as np

from bertviz_landscape.contracts.fingerprints import file_fingerprint
from bertviz_landscape.training.data.sources import DataError, load_source_split
from bertviz_landscape.training.data.tasks import GlueTask

SPLITS = ("train", "dev")
HUB_DATASET = "nyu-mll/glue"
HUB_SPLIT = {"train": "train", "dev": "validation"}  # the dev split: GlueTask.hub_dev_split


class GlueDataError(DataError):
    """Bad GLUE input: a missing file or column, an unparseable label, an empty file."""


def resolve_glue_dir(glue_dir: str | os.PathLike | None) -> Path | None:
    """The TSV directory: the argument, else env GLUE_DIR, else None (read the hub)."""
    value = glue_dir if glue_dir not in (None, "") else os.environ.get("GLUE_DIR") or None
    return Path(value).expanduser() if value else None


def tsv_path(task: GlueTask, glue_dir: str | os.PathLike, split: str) -> Path:
    if split not in SPLITS:
        raise GlueDataError(f"unknown split {split!r}; expected one of {SPLITS}")
    root = Path(glue_dir).expanduser()
    if not root.is_dir():
        raise GlueDataError(f"GLUE directory {str(root)!r} does not exist (set data.glue_dir or GLUE_DIR)")
    path = root / task.tsv_dir / ("train.tsv" if split == "train" else task.dev_file)
    if path.is_dir():
        raise GlueDataError(
            f"GLUE file {str(path)!r} is a directory, not a TSV file (task {task.name}, split {split})"
        )
    if not path.is_file():
        raise GlueDataError(f"GLUE file {str(path)!r} does not exist (task {task.name}, split {split})")
    return path


def _check_layout(path: Path, columns: tuple[str, ...] | None = None) -> list[str]:
    """The header's columns, after checking that every row has as many tab-separated fields.

    An empty or header-only file, or a row with a different number of fields (a tab inside a
    field, a truncated line), is an error naming the line.
    """
    try:
        return _check_rows(path, columns)
    except UnicodeDecodeError as err:
        raise GlueDataError(
            f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); GLUE files are UTF-8, re-save it as "
            "UTF-8"
        ) from None


def _check_rows(path: Path, columns: tuple[str, ...] | None = None) -> list[str]:
    """`columns`: the names of a header-less file's fields (its first line is a row)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        if not first.strip():
            raise GlueDataError(f"{path}: file is empty (no {'rows' if columns else 'header row'})")
        header = list(columns) if columns else first.rstrip("\r\n").split("\t")
        rows = 0
        if columns:
            handle.seek(0)
        for number, line in enumerate(handle, start=1 if columns else 2):
            if not line.strip():
                continue
            rows += 1
            fields = line.count("\t") + 1
            if fields != len(header):
                raise GlueDataError(
                    f"{path}: line {number} has {fields} tab-separated fields, "
                    f"{'the task has' if columns else 'the header has'} {len(header)}"
                )
    if rows == 0:
        raise GlueDataError(f"{path}: file has a header but no rows")
    return header


def load_tsv_split(
    task: GlueTask, glue_dir: str | os.PathLike, split: str, cache_dir: str | None = None
) -> datasets.Dataset:
    path = tsv_path(task, glue_dir, split)
    return _parse_tsv_split(task, path, split, cache_dir, json.dumps(file_fingerprint(path), sort_keys=True))


# parsed once per process, file content and task: a demo runs ~40 stages in one process that each
# read SST-2's 67k-row train.tsv (3.3 s a parse on the 2-core CPU); an edited file has another
# fingerprint and is parsed again. A datasets.Dataset is immutable (select/map return new ones).
@functools.lru_cache(maxsize=8)
def _parse_tsv_split(
    task: GlueTask, path: Path, split: str, cache_dir: str | None, content: str
) -> datasets.Dataset:
    """The split's rows; `content` (the file's fingerprint) is only the cache key."""
    header = _check_layout(path, task.tsv_columns)
    wanted = [c for c in (task.text_a, task.text_b, task.label) if c is not None]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise GlueDataError(f"{path}: missing column(s) {missing}; header has {header}")
    try:
        raw = datasets.load_dataset(
            "csv",
            data_files={split: str(path)},
            split=split,
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
            encoding="utf-8-sig",
            keep_default_na=False,
            na_filter=False,
            usecols=wanted,
            **({"column_names": list(task.tsv_columns)} if task.tsv_columns else {}),
            features=datasets.Features({c: datasets.Value("string") for c in header if c in wanted}),
            cache_dir=cache_dir,
        )
    except Exception as err:  # pandas' ParserError names the line; add the file
        raise GlueDataError(f"{path}: could not be parsed as a tab-separated GLUE file: {err}") from err

    labels = []
    for index, value in enumerate(raw.data.column(task.label).to_pylist()):
        try:
            labels.append(task.parse_label(value))
        except ValueError as err:
            # row numbers as a text editor shows them: the header is line 1
            line = index + (1 if task.tsv_columns else 2)
            raise GlueDataError(f"{path}: line {line}, column {task.label!r}: {err}") from None
    columns = {
        "text_a": raw.data.column(task.text_a).to_pylist(),
        "text_b": raw.data.column(task.text_b).to_pylist() if task.text_b else [None] * len(raw),
        "label": labels,
    }
    return datasets.Dataset.from_dict(columns, features=_features(task))


def data_fingerprint(task: GlueTask, glue_dir: str | os.PathLike | None, splits=SPLITS) -> dict:
    """What decides a task's examples, by content: split → the TSV's `file_fingerprint` (no
    path: a copied data directory is the same data), or the hub dataset it is read from."""
    if task.source is not None:
        return {split: _source_fingerprint(task.source, split) for split in splits}
    root = resolve_glue_dir(glue_dir)
    if root is None:
        hub = f"{HUB_DATASET}/{task.hub_config}"
        return {
            split: {"hub": f"{hub}:{'train' if split == 'train' else task.hub_dev_split}"} for split in splits
        }
    return {split: file_fingerprint(tsv_path(task, root, split)) for split in splits}


def _source_fingerprint(source, split: str) -> dict:
    """A task spec's data: the file's content, a save_to_disk directory's files, or the hub name."""
    part = source.train if split == "train" else source.dev
    if source.format == "hub":
        return {"hub": f"{source.path}/{source.config or ''}:{part}"}
    if source.format == "disk":
        root = Path(str(source.path))
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        return {"split": part, "files": {str(p.relative_to(root)): file_fingerprint(p) for p in files}}
    path = Path(part)
    if not path.is_file():
        raise GlueDataError(f"data file {str(path)!r} ({split} split) does not exist")
    return file_fingerprint(path)


def check_hub_reachable(task: GlueTask, cache_dir: str | None = None) -> None:
    """No cached copy of the task's hub dataset and the hub offline (HF_HUB_OFFLINE /
    HF_DATASETS_OFFLINE) or unreachable (no connection to its host within 3 s): one line naming
    GLUE_DIR at once, instead of the hub client's retries (half a minute) first."""
    import socket
    from urllib.parse import urlparse

    cache = Path(cache_dir or datasets.config.HF_DATASETS_CACHE)
    if any(cache.glob(f"{HUB_DATASET.replace('/', '___')}/{task.hub_config}")):
        return  # a cached copy: the hub client reads it offline
    offline = ("1", "ON", "YES", "TRUE")  # read now: the env may change after datasets is imported
    why = None
    if any(os.environ.get(v, "").upper() in offline for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        why = "is offline (HF_HUB_OFFLINE)"
    else:
        host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
        try:
            socket.create_connection((host, 443), timeout=3).close()
        except OSError:
            why = f"is not reachable ({host})"
    if why:
        raise GlueDataError(
            f"no GLUE data for task {task.name}: data.glue_dir and env GLUE_DIR are unset, and the hub "
            f"({HUB_DATASET}) {why} with no cached copy; set GLUE_DIR=<GLUE's TSV directory> or "
            "data.glue_dir=<dir>"
        )


def load_hub_split(task: GlueTask, split: str, cache_dir: str | None = None) -> datasets.Dataset:
    if split not in SPLITS:
        raise GlueDataError(f"unknown split {split!r}; expected one of {SPLITS}")
    hub_split = "train" if split == "train" else task.hub_dev_split
    check_hub_reachable(task, cache_dir)
    try:
        raw = datasets.load_dataset(HUB_DATASET, task.hub_config, split=hub_split, cache_dir=cache_dir)
    except Exception as err:
        raise GlueDataError(
            f"could not load {HUB_DATASET}/{task.hub_config} ({hub_split}) from the hub: {err}. "
            "Offline? Point data.glue_dir (or GLUE_DIR) at GLUE's TSV directory."
        ) from err
    columns = {
        "text_a": raw[task.hub_text_a],
        "text_b": raw[task.hub_text_b] if task.hub_text_b else [None] * len(raw),
        "label": [float(v) for v in raw["label"]] if task.is_regression else [int(v) for v in raw["label"]],
    }
    return datasets.Dataset.from_dict(columns, features=_features(task))


def _features(task: GlueTask) -> datasets.Features:
    return datasets.Features(
        {
            "text_a": datasets.Value("string"),
            "text_b": datasets.Value("string"),
            "label": datasets.Value("float32" if task.is_regression else "int64"),
        }
    )


def select_subset(
    ds: datasets.Dataset, max_samples: int | None, seed: int, key: str = "max_samples"
) -> datasets.Dataset:
    """A seeded, deterministic subset of `max_samples` rows (kept in file order); None = all rows.
    `key` names the setting in error messages (e.g. data.max_train_samples)."""
    if max_samples is not None and (isinstance(max_samples, bool) or int(max_samples) < 1):
        raise GlueDataError(f"{key} must be >= 1 or null, got {max_samples}")
    if max_samples is None or max_samples >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(ds))[: int(max_samples)])
    return ds.select(keep.tolist())


def load_glue_split(
    task: GlueTask,
    split: str,
    glue_dir: str | os.PathLike | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    cache_dir: str | None = None,
    key: str | None = None,
) -> datasets.Dataset:
    """One split of one task (columns text_a, text_b, label), optionally a seeded subset.

    A task with its own `source` reads it (`data/sources.py`; `glue_dir` does not apply); a GLUE
    task reads GLUE's TSV layout under `glue_dir` (or env GLUE_DIR); with neither, the hub.
    """
    if task.source is not None:
        ds = load_source_split(task, split, cache_dir)
    elif root := resolve_glue_dir(glue_dir):
        ds = load_tsv_split(task, root, split, cache_dir)
    else:
        ds = load_hub_split(task, split, cache_dir)
    return select_subset(
        ds, max_samples, seed, key or f"data.max_{'train' if split == 'train' else 'eval'}_samples"
    )
