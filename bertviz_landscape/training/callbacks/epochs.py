"""Per-epoch records for long training (the paper's robustness-to-overfitting experiment).

`EpochRecords` appends the dev metrics of every epoch to ``logs/dev_per_epoch.jsonl`` (one JSON
line ``{"epoch": e, "step": s, "val/loss": ..., "val/<metric>": ...}``, 1-based epochs) and,
when `keep_weights`, saves θ after each epoch as a checkpoint directory
(`RunDir.epoch_checkpoint(e)`). With `predictions` (``logs/dev_predictions.jsonl``,
`RunDir.dev_predictions`) it also appends, per epoch, the per-example dev results of that epoch's
validation, in the dev set's fixed order (the datamodule's unshuffled dev loader): one JSON line
``{"epoch": e, "step": s, "predictions": [...], "labels": [...], "losses": [...]}`` (class indices,
or the regression outputs; per-example task losses) — what a paired test between two epochs
(McNemar, analysis/longtrain.py) needs. A resumed run forgets the records of epochs it redoes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytorch_lightning as pl

from bertviz_landscape.contracts.atomic import open_in_place, write_text_atomic
from bertviz_landscape.contracts.checkpoints import save_checkpoint


def read_dev_per_epoch(path: str | os.PathLike) -> list[dict]:
    """The per-epoch dev records, one per epoch (the last record of an epoch wins)."""
    path = Path(path)
    if not path.is_file():
        return []
    by_epoch = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        by_epoch[int(row["epoch"])] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


def _append_line(path: Path, row: dict) -> None:
    with open_in_place(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class EpochRecords(pl.Callback):
    def __init__(
        self,
        records: str | os.PathLike,
        checkpoint_path=None,
        tokenizer=None,
        predictions: str | os.PathLike | None = None,
    ) -> None:
        """`checkpoint_path(epoch) -> Path` and `tokenizer` to keep θ after each epoch, else None;
        `predictions`: the per-example dev results file, else None."""
        self.records = Path(records)
        self.checkpoint_path = checkpoint_path
        self.tokenizer = tokenizer
        self.predictions = None if predictions is None else Path(predictions)
        self._batches: list[dict] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:  # DDP: rank 0 keeps the records
            return
        done = trainer.current_epoch  # epochs finished before this (re)start
        for path in (self.records, self.predictions):
            if path is None:
                continue
            kept = [r for r in read_dev_per_epoch(path) if r["epoch"] <= done]
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._batches = []

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.predictions is None or trainer.sanity_checking or not isinstance(outputs, dict):
            return
        if "predictions" in outputs:
            self._batches.append(
                {k: outputs[k].detach().float().cpu() for k in ("predictions", "labels", "losses")}
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            self._batches = []
            return
        epoch = trainer.current_epoch + 1
        row = {"epoch": epoch, "step": trainer.global_step}
        row |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        _append_line(self.records, row)
        if self.predictions is not None and self._batches:
            per_example = {
                k: [float(v) for b in self._batches for v in b[k].reshape(-1).tolist()]
                for k in ("predictions", "labels", "losses")
            }
            _append_line(self.predictions, {"epoch": epoch, "step": trainer.global_step, **per_example})
            self._batches = []
        if self.checkpoint_path is not None:
            save_checkpoint(
                getattr(pl_module, "model", pl_module), self.tokenizer, self.checkpoint_path(epoch)
            )
