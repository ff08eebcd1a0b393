"""Training-test helpers: `read_wandb_run` (an offline W&B run read back with wandb's reader),
`CrashAt` (a callback that kills a run after a given optimiser step)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytorch_lightning as pl


def read_wandb_run(run_dir: Path) -> dict:
    """Read an offline W&B run back with wandb's own reader (`wandb leet inspect`)."""
    (offline,) = list((run_dir / "wandb").glob("offline-run-*"))
    wandb_cli = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--summary", "--json", str(offline)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout) | {"dir": offline.name}


class CrashAt(pl.Callback):
    """Kill the run (an exception) right after optimiser step `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError("simulated crash")
