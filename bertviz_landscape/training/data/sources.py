"""Your own data: any text-classification or regression dataset as a task.

A task spec file ``<name>.yaml`` (found by `tasks.get_task` on $BVL_TASK_PATH or conf/task/)
says where the data is, which columns hold the text and the label, and how it is judged::

    name: reviews                 # the task's name in run names and reports
    source:
      format: csv                 # csv | tsv | json (JSON Lines) | parquet | disk | hub (files: by extension)
      train: data/train.csv       # a file, relative to the spec file (disk/hub: a split; default train)
      dev: data/dev.csv           # (disk/hub: default validation)
      path: null                  # disk: the save_to_disk directory; hub: the dataset's name (load_dataset)
      config: null                # hub: the dataset's config
    columns: {text: review, pair: null, label: stars}   # pair: the second text of pair tasks
    problem: classification       # or regression (MSE loss, float targets)
    labels: null                  # label names in index order; null: the sorted distinct labels of train
    metrics: [accuracy, f1]       # accuracy, f1, mcc | pearson, spearman (torchmetrics)
    primary_metric: null          # null: the first metric; error = 1 − primary metric

Labels may be names or integers. Given ``labels``, an integer is that label's index (and a name
is itself); inferred from train (a Hugging Face ClassLabel's names when the column has them),
only labels that train has are accepted: a dev label that training never saw is an error, not a
silent new class. Every split comes out in the schema of GLUE's loader (``text_a``, ``text_b``,
``label``), and every problem is one line naming the file (or dataset and split), the row and
the column.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import yaml

from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.names import check_name
from bertviz_landscape.training.data.task import GlueTask, missing_label

FORMATS = ("csv", "tsv", "json", "parquet", "disk", "hub")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
SPEC_KEYS = {"name", "source", "columns", "problem", "labels", "metrics", "primary_metric"}


class DataError(BadInput):
    """Bad data: a missing file or column, an unparseable label or text, a label train never saw."""


@dataclass(frozen=True)
class Source:
    format: str
    train: str  # a file path (csv, tsv, json, parquet) or a split name (disk, hub)
    dev: str
    path: str | None = None  # disk: the directory; hub: the dataset name
    config: str | None = None

    def where(self, split: str) -> str:
        """What error messages name: the file, or the dataset and split."""
        part = self.train if split == "train" else self.dev
        if self.format in ("disk", "hub"):
            return f"{self.path}{'/' + self.config if self.config else ''} [{part}]"
        return part

    def row(self, index: int) -> str:
        """Row `index` (0-based) as a reader finds it: a text line for CSV/TSV/JSON Lines."""
        if self.format in ("csv", "tsv"):
            return f"line {index + 2}"  # the header is line 1
        if self.format == "json":
            return f"line {index + 1}"
        return f"row {index}"


def _read_raw(source: Source, split: str, cache_dir: str | None) -> datasets.Dataset:
    part = source.train if split == "train" else source.dev
    where = source.where(split)
    if source.format in ("csv", "tsv", "json", "parquet"):
        path = Path(part)
        if not path.is_file():
            raise DataError(f"data file {str(path)!r} ({split} split) does not exist")
    try:
        if source.format in ("csv", "tsv"):
            delimiter = "\t" if source.format == "tsv" else ","
            with open(part, encoding="utf-8-sig", newline="") as handle:
                header = next(csv.reader(handle, delimiter=delimiter), None)
            if not header:
                raise DataError(f"{where}: file is empty (no header row)")
            twice = sorted({c for c in header if header.count(c) > 1})
            if twice:  # a reader would silently use one of them (pandas renames the others)
                raise DataError(f"{where}: line 1 (header) names column {twice[0]!r} more than once")
            return datasets.load_dataset(  # every column as text: labels are parsed by the task
                "csv",
                data_files={split: part},
                split=split,
                delimiter=delimiter,
                encoding="utf-8-sig",
                keep_default_na=False,
                na_filter=False,
                features=datasets.Features({c: datasets.Value("string") for c in header}),
                cache_dir=cache_dir,
            )
        if source.format in ("json", "parquet"):
            return datasets.load_dataset(
                source.format, data_files={split: part}, split=split, cache_dir=cache_dir
            )
        if source.format == "disk":
            loaded = datasets.load_from_disk(str(source.path))
            if isinstance(loaded, datasets.Dataset):
                raise DataError(
                    f"{source.path}: a single saved Dataset; save a DatasetDict with {source.train!r} and "
                    f"{source.dev!r} splits"
                )
            return loaded[part]
        return datasets.load_dataset(source.path, source.config, split=part, cache_dir=cache_dir)
    except DataError:
        raise
    except KeyError:
        raise DataError(f"{where}: no split {part!r}") from None
    except Exception as err:  # the reader's message names the line; add the file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{where}: could not be read as {source.format}: {first}") from None


def _label_value(value: Any) -> str | None:
    """A label cell as text: ints stay ints ("1", also from 1.0), names stay names; None if empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _check_columns(raw: datasets.Dataset, where: str, columns: dict) -> None:
    wanted = [c for c in (columns["text"], columns.get("pair"), columns["label"]) if c]
    missing = [c for c in wanted if c not in raw.column_names]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; it has {raw.column_names}")


def _texts(raw: datasets.Dataset, column: str, source: Source, split: str) -> list[str]:
    out = list(raw[column])
    for i, value in enumerate(out):
        if not isinstance(value, str):
            kind = (
                "empty (null)" if value is None else f"not text ({type(value).__name__} {str(value)[:40]!r})"
            )
            raise DataError(f"{source.where(split)}: {source.row(i)}, column {column!r}: {kind}")
    return out


def load_source_split(task: GlueTask, split: str, cache_dir: str | None = None) -> datasets.Dataset:
    """One split of a task with its own source, as columns text_a, text_b, label."""
    source: Source = task.source
    if split not in ("train", "dev"):
        raise DataError(f"unknown split {split!r}; expected train or dev")
    raw = _read_raw(source, split, cache_dir)
    where = source.where(split)
    columns = {"text": task.text_a, "pair": task.text_b, "label": task.label}
    _check_columns(raw, where, columns)
    if len(raw) == 0:
        raise DataError(f"{where}: no rows")
    labels = []
    names = _class_label_names(raw, task.label)
    for i, value in enumerate(raw[task.label]):
        if names is not None and isinstance(value, int) and 0 <= value < len(names):
            value = names[value]  # a ClassLabel's index: its name decides
        text = _label_value(value)
        try:
            if text is None:
                raise ValueError("empty label")
            labels.append(task.parse_label(text))
        except ValueError as err:
            raise DataError(f"{where}: {source.row(i)}, column {task.label!r}: {err}") from None
    out = {
        "text_a": _texts(raw, task.text_a, source, split),
        "text_b": _texts(raw, task.text_b, source, split) if task.text_b else [None] * len(raw),
        "label": labels,
    }
    features = datasets.Features(
        {
            "text_a": datasets.Value("string"),
            "text_b": datasets.Value("string"),
            "label": datasets.Value("float32" if task.is_regression else "int64"),
        }
    )
    return datasets.Dataset.from_dict(out, features=features)


def _class_label_names(raw: datasets.Dataset, column: str) -> list[str] | None:
    feature = raw.features.get(column)
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _infer_labels(source: Source, label: str, text: str, pair: str | None, cache_dir) -> tuple[str, ...]:
    """The sorted distinct labels of the training split (numerically when they are all integers)."""
    raw = _read_raw(source, "train", cache_dir)
    where = source.where("train")
    _check_columns(raw, where, {"text": text, "pair": pair, "label": label})
    if names := _class_label_names(raw, label):
        return tuple(names)
    values = set()
    for i, value in enumerate(raw[label]):
        text_value = _label_value(value)
        why = "empty label" if text_value is None else missing_label(text_value)
        if why:
            raise DataError(f"{where}: {source.row(i)}, column {label!r}: {why}")
        values.add(text_value)
    if len(values) < 2:
        raise DataError(
            f"{where}: column {label!r} has {len(values)} distinct label(s); a classifier needs 2+"
        )

    def key(v: str):
        try:
            return (0, int(v), "")
        except ValueError:
            return (1, 0, v)

    return tuple(sorted(values, key=key))


def _source(spec: dict, base: Path, where: str) -> Source:
    src = spec.get("source")
    if not isinstance(src, dict):
        raise DataError(f"{where}: source must be a mapping (format, train, dev, path, config)")
    unknown = set(src) - {"format", "train", "dev", "path", "config"}
    if unknown:
        raise DataError(
            f"{where}: unknown key(s) source.{sorted(unknown)[0]}; expected format, train, dev, path, config"
        )
    fmt = src.get("format")
    if fmt is None and src.get("train"):
        fmt = EXTENSIONS.get(Path(str(src["train"])).suffix.lower())
    if fmt not in FORMATS:
        raise DataError(
            f"{where}: source.format {fmt!r} is not one of {FORMATS} (or give a file with a known extension)"
        )

    def resolve(p) -> str:
        path = Path(str(p)).expanduser()
        return str(path if path.is_absolute() else (base / path).resolve())

    if fmt in ("disk", "hub"):
        if not src.get("path"):
            raise DataError(f"{where}: source.path is required for format {fmt}")
        path = resolve(src["path"]) if fmt == "disk" else str(src["path"])
        return Source(
            fmt,
            str(src.get("train") or "train"),
            str(src.get("dev") or "validation"),
            path,
            src.get("config"),
        )
    for key in ("train", "dev"):
        if not src.get(key):
            raise DataError(f"{where}: source.{key} (a file) is required for format {fmt}")
    return Source(fmt, resolve(src["train"]), resolve(src["dev"]))


def task_from_spec(
    spec: dict, base_dir: str | os.PathLike = ".", where: str = "task spec", cache_dir=None
) -> GlueTask:
    """A task from a spec mapping (keys in the module docstring); relative paths against `base_dir`."""
    if not isinstance(spec, dict):
        raise DataError(f"{where}: a task spec is a mapping")
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise DataError(f"{where}: unknown key {sorted(unknown)[0]!r}; expected {sorted(SPEC_KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise DataError(f"{where}: name is required")
    check_name(name, "name", where)  # the task's name becomes part of run, surface and figure names
    source = _source(spec, Path(base_dir), where)
    columns = spec.get("columns") or {}
    if not isinstance(columns, dict) or not columns.get("text") or not columns.get("label"):
        raise DataError(f"{where}: columns must name text and label (and optionally pair)")
    bad = set(columns) - {"text", "pair", "label"}
    if bad:
        raise DataError(f"{where}: unknown key columns.{sorted(bad)[0]}; expected text, pair, label")
    text, pair, label = str(columns["text"]), columns.get("pair"), str(columns["label"])
    pair = str(pair) if pair else None
    problem = spec.get("problem") or "classification"
    if problem not in ("classification", "regression"):
        raise DataError(f"{where}: problem must be classification or regression, got {problem!r}")
    allowed = CLASSIFICATION_METRICS if problem == "classification" else REGRESSION_METRICS
    metrics = spec.get("metrics") or (
        ["accuracy"] if problem == "classification" else list(REGRESSION_METRICS)
    )
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in allowed:
            raise DataError(f"{where}: metric {m!r} does not apply to {problem}; use {list(allowed)}")
    primary = spec.get("primary_metric") or metrics[0]
    if primary not in metrics:
        raise DataError(f"{where}: primary_metric {primary!r} is not among metrics {metrics}")
    given = spec.get("labels")
    if problem == "regression":
        if given:
            raise DataError(f"{where}: labels apply to classification, not regression")
        label_names, num_labels, indices = (), 1, True
    elif given:
        label_names = tuple(str(v) for v in given)
        if len(set(label_names)) != len(label_names) or len(label_names) < 2:
            raise DataError(f"{where}: labels must be 2+ distinct names, got {list(given)}")
        num_labels, indices = len(label_names), True
    else:
        label_names = _infer_labels(source, label, text, pair, cache_dir)
        num_labels, indices = len(label_names), False
    return GlueTask(
        name=name,
        tsv_dir="",
        text_a=text,
        text_b=pair,
        label=label,
        hub_config="",
        hub_text_a=text,
        hub_text_b=pair,
        problem=problem,
        num_labels=num_labels,
        metrics=tuple(metrics),
        primary_metric=primary,
        label_names=label_names,
        label_indices=indices,
        source=source,
    )


def task_from_spec_file(path: str | os.PathLike) -> GlueTask:
    """The task a ``<name>.yaml`` spec file defines (its name must be the file's)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise DataError(f"{path}: not a readable YAML task spec ({str(err).splitlines()[0]})") from None
    task = task_from_spec(spec, path.parent, str(path))
    if task.name.lower() != path.stem.lower():
        raise DataError(f"{path}: name {task.name!r} differs from the file's name {path.stem!r}")
    return task
