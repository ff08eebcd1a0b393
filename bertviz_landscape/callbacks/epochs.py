"""Per-epoch records for long training (the paper's robustness-to-overfitting experiment).

`EpochRecords` appends the dev metrics of every epoch to ``logs/dev_per_epoch.jsonl`` (one JSON
line ``{"epoch": e, "step": s, "val/loss": ..., "val/<metric>": ...}``, 1-based epochs) and,
when `keep_weights`, saves θ after each epoch as a checkpoint directory
(`RunDir.epoch_checkpoint(e)`). A resumed run forgets the records of epochs it redoes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytorch_lightning as pl

from bertviz_landscape.atomic import write_text_atomic
from bertviz_landscape.checkpoints import save_checkpoint


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


class EpochRecords(pl.Callback):
    def __init__(self, records: str | os.PathLike, checkpoint_path=None, tokenizer=None) -> None:
        """`checkpoint_path(epoch) -> Path` and `tokenizer` to keep θ after each epoch, else None."""
        self.records = Path(records)
        self.checkpoint_path = checkpoint_path
        self.tokenizer = tokenizer

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        done = trainer.current_epoch  # epochs finished before this (re)start
        kept = [r for r in read_dev_per_epoch(self.records) if r["epoch"] <= done]
        write_text_atomic(self.records, "".join(json.dumps(r) + "\n" for r in kept))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        row = {"epoch": epoch, "step": trainer.global_step}
        row |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        with open(self.records, "a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if self.checkpoint_path is not None:
            save_checkpoint(
                getattr(pl_module, "model", pl_module), self.tokenizer, self.checkpoint_path(epoch)
            )
