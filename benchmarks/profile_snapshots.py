"""Counts that name a per-step cost without a quiet machine: what the snapshot callback changes
in a training step besides time (issue 32; benchmarks/results/snapshot_constant_cost.txt).

    python benchmarks/profile_snapshots.py [--steps 12] [--arms none,16,1]

Each arm trains the demo preset (MiniLM, SST-2, batch 16) in a fresh process (so one arm's
threads cannot change the next), with a callback that records at every step's end: voluntary
and involuntary context switches, minor page faults, process CPU seconds, and the native
threads (not Python's) started since fitting began. Per arm, the median over steps 5..N:

- voluntary switches per step: ~1 when training's OpenMP worker spin-waits between parallel
  regions, ~1400 (one per region) when libgomp has stopped spinning because it manages more
  threads than there are CPUs -- the constant cost issue 32 found;
- +threads: an OpenMP team started by another thread (the snapshot helper must start none).

Counts do not depend on load; the CPU column does (spinning burns CPU on a loaded host).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def native_threads() -> set[int]:
    try:
        tids = {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:
        return set()
    return tids - {t.native_id for t in threading.enumerate()}


def one_arm(arm: str, steps: int, workdir: Path) -> None:
    """Train one arm in this process and print its counts as one line."""
    import pytorch_lightning as pl
    from bench_snapshots import COMMON, GLUE
    from hydra import compose, initialize_config_dir

    from bertviz_landscape.contracts.config import CONF_DIR
    from bertviz_landscape.training.train import train

    class Counts(pl.Callback):
        def __init__(self) -> None:
            self.rows: list[tuple] = []
            self.start: set[int] = set()
            self.later: set[int] = set()

        def on_fit_start(self, trainer, pl_module):
            self.start = native_threads()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            r = resource.getrusage(resource.RUSAGE_SELF)
            self.rows.append((r.ru_nvcsw, r.ru_nivcsw, r.ru_minflt, time.process_time()))
            self.later |= native_threads()

    overrides = [*COMMON, f"trainer.max_steps={steps}"]
    if arm == "none":
        overrides.append("callbacks.snapshots.enabled=false")
    else:
        overrides.append(f"callbacks.snapshots.every_n_steps={int(arm)}")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"data.glue_dir={GLUE}", *overrides])
    import torch

    torch.ones(1 << 20).add_(1)  # training's own OpenMP team exists before fitting starts
    counts = Counts()
    try:
        train(cfg, workdir, extra_callbacks=[counts])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = counts.rows[3:]  # steps 4..N: differences are steps 5..N
    diffs = [[b[i] - a[i] for i in range(4)] for a, b in zip(rows, rows[1:])]
    med = [statistics.median(d[i] for d in diffs) for i in range(4)]
    print(
        f"RESULT {arm} {med[0]:.0f} {med[1]:.0f} {med[2]:.0f} {med[3]:.3f} "
        f"{len(counts.later - counts.start)}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--arms", default="none,16,1", help="none and/or every_n_steps values")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one arm
    args = parser.parse_args()
    if args.one:
        one_arm(args.one, args.steps, Path(tempfile.mkdtemp(prefix="profile_snapshots_")))
        return
    from bench_train import cpu_description

    print(f"profile_snapshots | {cpu_description()} | load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'arm':<16}{'vol. switches/step':>19}{'invol./step':>12}{'minflt/step':>12}"
        f"{'CPU s/step':>11}{'+threads':>9}"
    )
    for arm in args.arms.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--one", arm, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        _, name, vol, invol, flt, cpu, threads = next(
            line for line in out.splitlines() if line.startswith("RESULT ")
        ).split()
        label = "no snapshots" if name == "none" else f"every {name}"
        print(f"{label:<16}{vol:>19}{invol:>12}{flt:>12}{cpu:>11}{threads:>9}")
    print(f"medians over steps 5..{args.steps}; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
