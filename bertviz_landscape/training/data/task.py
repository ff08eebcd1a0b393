"""One task's definition (`GlueTask`): its columns, labels, head size, loss and metrics.

The registry of tasks by name is `data/tasks.py`; task spec files are read by `data/sources.py`
(both import this module, so neither imports the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torchmetrics
from torchmetrics import MetricCollection

# what a spreadsheet or pandas writes for a missing cell: never a class or a score
MISSING_MARKERS = frozenset({"", "nan", "-nan", "+nan", "<na>", "#n/a", "n/a", "null", "#na"})


def missing_label(raw: str) -> str | None:
    """Why the label cell `raw` is missing ("empty label", "missing value 'NaN'"), else None."""
    value = raw.strip()
    if not value:
        return "empty label"
    if value.lower() in MISSING_MARKERS:
        return f"missing value {raw!r} (an empty or NaN cell is not a label)"
    return None


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
    dev_file: str = "dev.tsv"  # the dev split's TSV under tsv_dir (MNLI: dev_matched.tsv)
    hub_dev_split: str = "validation"  # the dev split on the hub (MNLI: validation_matched)
    tsv_columns: tuple[str, ...] | None = None  # a header-less TSV's column names (CoLA)
    label_indices: bool = True  # integer labels may stand for label_names' indices
    source: Any = None  # a data.sources.Source: your own data (None: GLUE)

    @property
    def is_regression(self) -> bool:
        return self.problem == "regression"

    def parse_label(self, raw: str) -> int | float:
        """Turn a TSV label field into the model's target; ValueError names what is wrong."""
        value = raw.strip()
        if why := missing_label(raw):
            raise ValueError(why)
        if self.is_regression:
            try:
                score = float(value)
            except ValueError:
                raise ValueError(f"score {raw!r} is not a number") from None
            if not math.isfinite(score):
                raise ValueError(f"score {raw!r} is not a finite number")
            if self.score_range and not (self.score_range[0] <= score <= self.score_range[1]):
                raise ValueError(f"score {raw!r} is outside {self.score_range}")
            return score
        if self.label_names and value in self.label_names:
            return self.label_names.index(value)
        if not self.label_indices:
            raise ValueError(f"label {raw!r} is not one of the training labels {list(self.label_names)}")
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
            "f1": lambda: (
                torchmetrics.classification.BinaryF1Score()
                if self.num_labels == 2
                else torchmetrics.classification.MulticlassF1Score(self.num_labels, average="macro")
            ),
            "mcc": lambda: torchmetrics.classification.MulticlassMatthewsCorrCoef(self.num_labels),
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
