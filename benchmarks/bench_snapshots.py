"""What the weight-snapshot callback costs: training time with vs without snapshots every step.

    python benchmarks/bench_snapshots.py [--train-samples 256] [--repeats 2] [--model minilm]

Same model, data, seed and steps in each arm; the timed span is Lightning's training loop
(on_train_start → on_train_end, so the writer thread's final flush is included); validation
is off. Arms alternate, and each reports its best repeat (machine noise here is ±10%
between repeats of the same arm, larger than the effect measured).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir

from bertviz_landscape.config import CONF_DIR
from bertviz_landscape.train import train

GLUE = os.environ.get("GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))


class FitTimer(pl.Callback):
    last = None

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        FitTimer.last = (time.perf_counter() - self.start, trainer.global_step)


def run_arm(overrides: list[str], workdir: Path) -> tuple[float, int]:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    original = pl.Trainer.__init__

    def with_timer(self, *args, callbacks=None, **kwargs):
        # the timer goes last, so its on_train_end runs after the snapshot writer has flushed
        original(self, *args, callbacks=[*(callbacks or []), FitTimer()], **kwargs)

    pl.Trainer.__init__ = with_timer
    try:
        train(cfg, workdir)
    finally:
        pl.Trainer.__init__ = original
    return FitTimer.last


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--train-samples", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    base = [
        f"model={args.model}",
        "init=pretrained",
        "logger=none",
        f"data.glue_dir={GLUE}",
        f"data.max_train_samples={args.train_samples}",
        "data.max_eval_samples=32",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.accelerator=cpu",
        "resume=false",
    ]
    arms = {
        "no snapshots": ["callbacks=none"],
        "every step, float16": ["callbacks.snapshots.every_n_steps=1", "callbacks.snapshots.dtype=float16"],
        "every step, float32": ["callbacks.snapshots.every_n_steps=1", "callbacks.snapshots.dtype=float32"],
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    steps = 0
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_snapshots_"))
    for repeat in range(args.repeats):
        for i, (name, extra) in enumerate(arms.items()):
            seconds, steps = run_arm(base + extra, root / f"r{repeat}_{i}")
            times[name].append(seconds)
    baseline = min(times["no snapshots"])
    print(
        f"\nsnapshot cost | model={args.model} | {steps} optimiser steps of batch 32 | "
        f"CPU threads={os.cpu_count()} | best of {args.repeats}"
    )
    print(f"{'arm':<24}{'s/step':>10}{'overhead':>12}{'all repeats (s/step)':>28}")
    for name, values in times.items():
        spread = " ".join(f"{v / steps:.3f}" for v in values)
        print(
            f"{name:<24}{min(values) / steps:>10.3f}{(min(values) / baseline - 1) * 100:>11.1f}%{spread:>28}"
        )


if __name__ == "__main__":
    main()
