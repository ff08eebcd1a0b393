"""Resume an interrupted training run: a Lightning checkpoint at every epoch end, written atomically.

It holds what `Trainer.fit(ckpt_path=...)` needs (weights, optimiser, scheduler, loop state) as
tensors and plain containers only: `train()` checks it and resumes with `weights_only=True`, so a
crafted pickle runs no code even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1;
`train()` resumes from it when the run directory has one and deletes it once θ1 is saved.
With the data order and dropout seeded per epoch, the resumed run ends at the same θ1 as one
never interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl

from bertviz_landscape.contracts.atomic import atomic_path


class EpochCheckpoint(pl.Callback):
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        check = getattr(pl_module, "check_finite_loss", None)
        if check is not None:  # a diverged epoch is never the state a re-run resumes from
            check()
        if not trainer.is_global_zero:  # DDP: every rank calls save_checkpoint (a barrier); rank 0 writes
            trainer.save_checkpoint(self.path, weights_only=False)
            return
        with atomic_path(self.path) as tmp:
            trainer.save_checkpoint(tmp, weights_only=False)  # the optimiser and loop state are the point
