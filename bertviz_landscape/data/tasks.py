"""The GLUE task registry: what each task studied in the paper is, in one place.

A task says where its text and label live (in GLUE's original TSV layout and on the hub),
how labels map to integers, how many outputs the head has, which loss trains it and which
metrics judge it. Everything else (data module, model, landscape evaluator) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torchmetrics
from torchmetrics import MetricCollection


@dataclass(frozen=True)
class GlueTask:
    name: str
    tsv_dir: str  # directory name under GLUE_DIR
    text_a: str  # TSV column of the first sentence
    text_b: str | None  # TSV column of the second sentence (None: single sentence)
    label: str  # TSV column of the label / score
    hub_config: str  # config name of nyu-mll/glue
    hub_text_a: str
    hub_text_b: str | None
    problem: Literal["classification", "regression"]
    num_labels: int
    metrics: tuple[str, ...]
    primary_metric: str
    label_names: tuple[str, ...] = field(default_factory=tuple)  # string labels, in index order
    score_range: tuple[float, float] | None = None  # regression targets must lie in it

    @property
    def is_regression(self) -> bool:
        return self.problem == "regression"

    @property
    def loss_name(self) -> str:
        return "mse" if self.is_regression else "cross_entropy"

    def parse_label(self, raw: str) -> int | float:
        """Turn a TSV label field into the model's target; ValueError names what is wrong."""
        value = raw.strip()
        if self.is_regression:
            try:
                score = float(value)
            except ValueError:
                raise ValueError(f"score {raw!r} is not a number") from None
            if score != score or (
                self.score_range and not (self.score_range[0] <= score <= self.score_range[1])
            ):
                raise ValueError(f"score {raw!r} is outside {self.score_range}")
            return score
        if self.label_names and value in self.label_names:
            return self.label_names.index(value)
        try:
            index = int(value)
        except ValueError:
            allowed = list(self.label_names) or list(range(self.num_labels))
            raise ValueError(f"label {raw!r} is not one of {allowed}") from None
        if not 0 <= index < self.num_labels:
            raise ValueError(f"label {raw!r} is outside 0..{self.num_labels - 1}")
        return index

    def make_metrics(self, prefix: str = "") -> MetricCollection:
        """torchmetrics for this task; update with (predictions, targets) as from `predictions`."""
        table = {
            "accuracy": lambda: torchmetrics.classification.MulticlassAccuracy(
                self.num_labels, average="micro"
            ),
            "f1": lambda: torchmetrics.classification.BinaryF1Score(),
            "pearson": lambda: torchmetrics.PearsonCorrCoef(),
            "spearman": lambda: torchmetrics.SpearmanCorrCoef(),
        }
        return MetricCollection({m: table[m]() for m in self.metrics}, prefix=prefix)

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """What metrics are computed on: class indices, or the regression output."""
        return logits.squeeze(-1).float() if self.is_regression else logits.argmax(-1)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The training objective J: cross-entropy, or MSE for STS-B (as HF computes it)."""
        if self.is_regression:
            return torch.nn.functional.mse_loss(
                logits.squeeze(-1).float(), labels.float(), reduction=reduction
            )
        return torch.nn.functional.cross_entropy(logits.float(), labels.long(), reduction=reduction)


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
}
ALIASES = {"sst-2": "sst2", "sts-b": "stsb"}


class UnknownTaskError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_task(name: str) -> GlueTask:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[key]
