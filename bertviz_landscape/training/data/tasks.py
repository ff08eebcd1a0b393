"""The task registry: what each task is, in one place — every GLUE task, and your own.

A task says where its text and label live (in GLUE's original TSV layout and on the hub, or
any source of `data/sources.py`), how labels map to integers, how many outputs the head has,
which loss trains it (cross-entropy for classification, MSE for regression) and which metrics
judge it (accuracy, f1, mcc, pearson, spearman: torchmetrics). Everything else (data module,
model, landscape evaluator) reads it from here.

`get_task(name)` knows the GLUE tasks (`TASKS`), tasks registered in this process
(`register_task`), and task spec files ``<name>.yaml`` on the task path: the directories of
env ``BVL_TASK_PATH`` (``:``-separated), then the package's conf/task/. A spec file with a
``source`` section defines a task of your own (keys: `data/sources.py`), so every stage — train,
landscape, analyses — resolves the same name to the same task.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from bertviz_landscape.contracts.names import is_name
from bertviz_landscape.training.data.sources import task_from_spec_file
from bertviz_landscape.training.data.task import GlueTask

TASKS: dict[str, GlueTask] = {
    "mrpc": GlueTask(
        name="mrpc",
        tsv_dir="MRPC",
        text_a="#1 String",
        text_b="#2 String",
        label="Quality",
        hub_config="mrpc",
        hub_text_a="sentence1",
        hub_text_b="sentence2",
        problem="classification",
        num_labels=2,
        metrics=("accuracy", "f1"),
        primary_metric="accuracy",
    ),
    "rte": GlueTask(
        name="rte",
        tsv_dir="RTE",
        text_a="sentence1",
        text_b="sentence2",
        label="label",
        hub_config="rte",
        hub_text_a="sentence1",
        hub_text_b="sentence2",
        problem="classification",
        num_labels=2,
        metrics=("accuracy",),
        primary_metric="accuracy",
        label_names=("entailment", "not_entailment"),
    ),
    "sst2": GlueTask(
        name="sst2",
        tsv_dir="SST-2",
        text_a="sentence",
        text_b=None,
        label="label",
        hub_config="sst2",
        hub_text_a="sentence",
        hub_text_b=None,
        problem="classification",
        num_labels=2,
        metrics=("accuracy",),
        primary_metric="accuracy",
    ),
    "stsb": GlueTask(
        name="stsb",
        tsv_dir="STS-B",
        text_a="sentence1",
        text_b="sentence2",
        label="score",
        hub_config="stsb",
        hub_text_a="sentence1",
        hub_text_b="sentence2",
        problem="regression",
        num_labels=1,
        metrics=("pearson", "spearman"),
        primary_metric="pearson",
        score_range=(0.0, 5.0),
    ),
    "cola": GlueTask(
        name="cola",
        tsv_dir="CoLA",
        text_a="sentence",
        text_b=None,
        label="label",
        hub_config="cola",
        hub_text_a="sentence",
        hub_text_b=None,
        problem="classification",
        num_labels=2,
        metrics=("mcc", "accuracy"),
        primary_metric="mcc",
        tsv_columns=("source", "label", "label_notes", "sentence"),  # GLUE's CoLA files have no header
    ),
    "qnli": GlueTask(
        name="qnli",
        tsv_dir="QNLI",
        text_a="question",
        text_b="sentence",
        label="label",
        hub_config="qnli",
        hub_text_a="question",
        hub_text_b="sentence",
        problem="classification",
        num_labels=2,
        metrics=("accuracy",),
        primary_metric="accuracy",
        label_names=("entailment", "not_entailment"),
    ),
    "qqp": GlueTask(
        name="qqp",
        tsv_dir="QQP",
        text_a="question1",
        text_b="question2",
        label="is_duplicate",
        hub_config="qqp",
        hub_text_a="question1",
        hub_text_b="question2",
        problem="classification",
        num_labels=2,
        metrics=("accuracy", "f1"),
        primary_metric="accuracy",
    ),
    "mnli": GlueTask(  # dev = matched (in-genre)
        name="mnli",
        tsv_dir="MNLI",
        text_a="sentence1",
        text_b="sentence2",
        label="gold_label",
        hub_config="mnli",
        hub_text_a="premise",
        hub_text_b="hypothesis",
        problem="classification",
        num_labels=3,
        metrics=("accuracy",),
        primary_metric="accuracy",
        label_names=("entailment", "neutral", "contradiction"),  # the hub's label order
        dev_file="dev_matched.tsv",
        hub_dev_split="validation_matched",
    ),
    "mnli-mm": GlueTask(  # the same training set; dev = mismatched (cross-genre)
        name="mnli-mm",
        tsv_dir="MNLI",
        text_a="sentence1",
        text_b="sentence2",
        label="gold_label",
        hub_config="mnli",
        hub_text_a="premise",
        hub_text_b="hypothesis",
        problem="classification",
        num_labels=3,
        metrics=("accuracy",),
        primary_metric="accuracy",
        label_names=("entailment", "neutral", "contradiction"),
        dev_file="dev_mismatched.tsv",
        hub_dev_split="validation_mismatched",
    ),
    "wnli": GlueTask(
        name="wnli",
        tsv_dir="WNLI",
        text_a="sentence1",
        text_b="sentence2",
        label="label",
        hub_config="wnli",
        hub_text_a="sentence1",
        hub_text_b="sentence2",
        problem="classification",
        num_labels=2,
        metrics=("accuracy",),
        primary_metric="accuracy",
    ),
}
ALIASES = {
    "sst-2": "sst2",
    "sts-b": "stsb",
    "mnli-m": "mnli",
    "mnli_mismatched": "mnli-mm",
    "mnli_matched": "mnli",
}

_REGISTERED: dict[str, GlueTask] = {}


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def register_task(task: GlueTask) -> GlueTask:
    """Make `task` known to `get_task` in this process (a GLUE name cannot be taken)."""
    if task.name.lower() in TASKS or task.name.lower() in ALIASES:
        raise UnknownTaskError(f"task name {task.name!r} is a GLUE task's; give your task another name")
    _REGISTERED[task.name.lower()] = task
    return task


def task_path() -> list[Path]:
    """Where `get_task` looks for ``<name>.yaml`` spec files: $BVL_TASK_PATH, then conf/task."""
    dirs = [Path(d).expanduser() for d in os.environ.get("BVL_TASK_PATH", "").split(os.pathsep) if d]
    return [*dirs, Path(__file__).resolve().parents[2] / "conf" / "task"]


def get_task(name: str) -> GlueTask:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key in TASKS:
        return TASKS[key]
    if key in _REGISTERED:
        return _REGISTERED[key]
    if not is_name(str(name)):  # it names a spec file below the task path: no climbing out
        raise UnknownTaskError(
            f"unknown task {name!r}: a task name is a plain name (letters, digits, '_.+-')"
        )
    for folder in task_path():
        spec = folder / f"{name}.yaml"
        if spec.is_file() and _has_source(spec):
            return register_task(task_from_spec_file(spec))
    known = sorted(TASKS) + sorted(_REGISTERED)
    specs = sorted({p.stem for folder in task_path() for p in folder.glob("*.yaml") if p.stem not in TASKS})
    close = difflib.get_close_matches(str(name), [*known, *specs], n=1)
    raise UnknownTaskError(
        f"unknown task {name!r}{f' (did you mean {close[0]}?)' if close else ''}; known tasks: "
        f"{', '.join(known)}{f', task specs: {chr(44).join(specs)}' if specs else ''} "
        f"(your own: a {name}.yaml task spec in $BVL_TASK_PATH or conf/task)"
    )


def _has_source(spec: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except Exception:
        return True  # let the spec reader name the problem
    return isinstance(data, dict) and "source" in data
