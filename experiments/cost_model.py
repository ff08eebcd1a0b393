#!/usr/bin/env python
"""What the paper costs at full scale: GPU-hours and disk per experiment, per (task, init).

    python experiments/cost_model.py [--model bert_base] [--tasks mrpc,rte,stsb,sst2] [--grid 21] \
        [--every-n 125] [--buckets 262144] [--gpu-tflops 100] [--json out.json]

Where each number comes from (printed with the table):

* MEASURED on this project's 2-core CPU (AVX512-BF16, no AMX) with the MiniLM, by `make bench`
  (docs/measured/benchmarks.md): one training step of batch 32 on MRPC, 1.149 s; one landscape
  grid point over 128 MRPC dev examples with the fp32 engine, 0.742 s; float16 snapshots every
  step, +2%; the every-step CountSketch (k = 2^18), `benchmarks/bench_sketch.py`.
* MEASURED token lengths (MiniLM's uncased WordPiece = bert-base-uncased's vocabulary, max
  length 128, /work/shared/data/glue): mean length per example, and the mean of the longest
  example in random batches of 32 (what per-batch padding costs in training).
* SCALED: other models, tasks and lengths by forward FLOPs per token,
  2·N_nonembedding + 4·L·s·d (s the padded length); a training step is 3× the forward pass.
  CPU hours are the measured seconds × FLOPs ratio; GPU hours are FLOPs / (--gpu-tflops), an
  ASSUMED sustained throughput (default 25 TFLOP/s: batches of 32 short sequences keep a GPU
  far below its peak — 312 TFLOP/s bf16 on an A100 — so this is a planning figure, not a
  measurement). No GPU was measured: run `make bench` on one and pass what it gives.
* Disk is exact arithmetic: θ0, θ1 (float32 save_pretrained), full float16 deltas every n steps
  (+ the last), 4·k bytes of sketch per step, 20 epoch checkpoints for the overfitting run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

# --- measured (see the module doc) ------------------------------------------------------------
MEASURED = {
    "train_seconds_per_step": 1.149,  # MiniLM, MRPC, batch 32, no snapshots (make bench)
    "snapshot_overhead": 0.02,  # float16 θ_t − θ0 every step (make bench, best of 3)
    "sketch_seconds_per_step": 0.152,  # CountSketch k=2^18 of 22.7M parameters (benchmarks/bench_sketch.py, loaded CPU)
    "point_seconds": 0.742,  # landscape engine fp32, 128 MRPC dev examples (make bench)
    "point_examples": 128,
    "cpu": "2-core x86 CPU, AVX512-BF16, no AMX, torch 2.13",
}
# mean tokens per example / mean longest-in-a-random-batch-of-32, max_length 128 (train, dev)
TASKS = {
    "mrpc": {"train": 3668, "dev": 408, "len": {"train": 53.2, "dev": 53.2}, "batch_len": 79.9},
    "rte": {"train": 2490, "dev": 277, "len": {"train": 66.6, "dev": 64.6}, "batch_len": 127.8},
    "stsb": {"train": 5749, "dev": 1500, "len": {"train": 27.8, "dev": 31.5}, "batch_len": 69.3},
    "sst2": {"train": 67349, "dev": 872, "len": {"train": 13.3, "dev": 25.2}, "batch_len": 40.1},
}
LANDSCAPE_TRAIN_EXAMPLES = 1024  # conf/landscape.yaml data.max_train_samples


@dataclass(frozen=True)
class Model:
    name: str
    layers: int
    hidden: int
    intermediate: int
    vocab: int = 30522
    positions: int = 512

    @property
    def nonembedding(self) -> int:  # per layer: Q, K, V, O (4·d² + 4·d) + FFN (2·d·f + d + f) + 2 LayerNorms
        d, f = self.hidden, self.intermediate
        return self.layers * (4 * d * d + 4 * d + 2 * d * f + d + f + 4 * d) + d * d + d  # + pooler

    @property
    def parameters(self) -> int:  # + embeddings (word, position, type, LayerNorm) + a 2-way head
        d = self.hidden
        return self.nonembedding + (self.vocab + self.positions + 2) * d + 2 * d + 2 * d + 2

    @property
    def tensors(self) -> int:  # parameter tensors: embeddings 5, 16 per layer, pooler 2, head 2
        return 5 + 16 * self.layers + 2 + 2

    def sketch_bytes_per_step(self, buckets: int) -> int:
        """The every-step record (bertviz_landscape.contracts.sketches): a float32 row of k buckets, a float64
        row of per-tensor squared norms, and an index line (~128 bytes)."""
        return 4 * buckets + 8 * self.tensors + 128

    def forward_flops_per_token(self, seq: float) -> float:
        return 2 * self.nonembedding + 4 * self.layers * seq * self.hidden


MODELS = {
    "minilm": Model("minilm", 6, 384, 1536),
    "bert_base": Model("bert_base", 12, 768, 3072),
    "bert_large": Model("bert_large", 24, 1024, 4096),
}
REFERENCE = MODELS["minilm"]


def train_step_flops(model: Model, batch: int, seq: float) -> float:
    return 3 * batch * seq * model.forward_flops_per_token(seq)


def forward_flops(model: Model, examples: float, seq: float) -> float:
    return examples * seq * model.forward_flops_per_token(seq)


def cpu_seconds_per_flop() -> dict[str, float]:
    """Seconds per FLOP this CPU achieved in the measured MiniLM runs (training, landscape point)."""
    step = train_step_flops(REFERENCE, 32, TASKS["mrpc"]["batch_len"])
    point = forward_flops(REFERENCE, MEASURED["point_examples"], TASKS["mrpc"]["len"]["dev"])
    return {"train": MEASURED["train_seconds_per_step"] / step, "forward": MEASURED["point_seconds"] / point}


def disk_bytes(
    model: Model, steps: int, every_n: int, buckets: int, sketch: bool, epoch_checkpoints: int = 0
) -> dict[str, int]:
    params = model.parameters
    snapshots = math.ceil(steps / every_n) + (0 if steps % every_n == 0 else 1)
    out = {
        "checkpoints": (2 + epoch_checkpoints) * 4 * params,
        "snapshots": snapshots * 2 * params,
        "sketches": steps * model.sketch_bytes_per_step(buckets) if sketch else 0,
    }
    out["total"] = sum(out.values())
    return out


def estimate(
    model: Model,
    task: str,
    grid: int,
    every_n: int,
    buckets: int,
    sketch: bool,
    epochs: int,
    gpu_tflops: float,
    overfit_epochs: int = 20,
) -> list[dict]:
    """One row per experiment of the paper for (model, task), for one init (pretrained and
    scratch cost the same)."""
    t = TASKS[task]
    per_flop = cpu_seconds_per_flop()
    steps = math.ceil(t["train"] / 32) * epochs
    step_flops = train_step_flops(model, 32, t["batch_len"])
    recording = 1 + MEASURED["snapshot_overhead"]
    sketch_s = (
        (MEASURED["sketch_seconds_per_step"] or 0.0) * model.parameters / REFERENCE.parameters
        if sketch
        else 0.0
    )
    point_flops = forward_flops(
        model, min(LANDSCAPE_TRAIN_EXAMPLES, t["train"]), t["len"]["train"]
    ) + forward_flops(model, t["dev"], t["len"]["dev"])

    def row(name, flops_train=0.0, flops_fwd=0.0, extra_cpu_s=0.0, disk=None, note=""):
        cpu_h = (
            flops_train * per_flop["train"] * recording + flops_fwd * per_flop["forward"] + extra_cpu_s
        ) / 3600
        gpu_h = (flops_train + flops_fwd) / (gpu_tflops * 1e12) / 3600
        return {
            "experiment": name,
            "task": task,
            "model": model.name,
            "cpu_hours_scaled": cpu_h,
            "gpu_hours_assumed": gpu_h,
            "disk_bytes": (disk or {}).get("total", 0),
            "disk": disk or {},
            "note": note,
        }

    rows = [
        row(
            "train (θ0 → θ1, trajectory recorded)",
            steps * step_flops,
            extra_cpu_s=steps * sketch_s,
            disk=disk_bytes(model, steps, every_n, buckets, sketch),
            note=f"{steps} steps; full deltas every {every_n}"
            + (f", sketch k={buckets} every step" if sketch else ""),
        ),
        row("1D loss curve (train subset + dev)", flops_fwd=grid * point_flops, note=f"{grid} points"),
        row("2D loss + dev-error surface", flops_fwd=grid * grid * point_flops, note=f"{grid}×{grid} points"),
        row("trajectory projection", note="reads snapshots/sketches: minutes on a CPU"),
    ]
    over_steps = math.ceil(t["train"] / 32) * overfit_epochs
    rows.append(
        row(
            f"robustness to overfitting ({overfit_epochs} epochs)",
            over_steps * step_flops,
            flops_fwd=overfit_epochs * forward_flops(model, t["dev"], t["len"]["dev"]),
            extra_cpu_s=over_steps * sketch_s,
            disk=disk_bytes(
                model, over_steps, max(every_n, 10), buckets, sketch, epoch_checkpoints=overfit_epochs
            ),
            note=f"{over_steps} steps, θ kept per epoch",
        )
    )
    layers = model.layers + 3  # embeddings, layer.0..L-1, pooler, head
    # per-layer 1D curves with the hidden-state cache: on average half of the forward pass is rerun
    rows.append(
        row(
            "layer-wise: per-layer 1D curves + roll-backs",
            flops_fwd=(layers * grid * 0.5 + 3 * layers) * point_flops,
            note=f"{layers} layers × {grid} points (cache: ~½ pass) + {3 * layers} roll-backs",
        )
    )
    return rows


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="bert_base", choices=sorted(MODELS))
    p.add_argument("--layers", type=int, help="a custom model: layers (with --hidden, --intermediate)")
    p.add_argument("--hidden", type=int)
    p.add_argument("--intermediate", type=int)
    p.add_argument("--tasks", default="mrpc,rte,stsb,sst2")
    p.add_argument("--train-examples", type=int, help="override the task size (examples in the train split)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--grid", type=int, default=21, help="points per axis (conf/grid/line.yaml, plane.yaml)")
    p.add_argument(
        "--every-n",
        type=int,
        default=125,
        help="full deltas every n steps (callbacks.snapshots.every_n_steps)",
    )
    p.add_argument(
        "--buckets", type=int, default=2**18, help="sketch buckets k (callbacks.snapshots.sketch.buckets)"
    )
    p.add_argument("--no-sketch", action="store_true")
    p.add_argument("--gpu-tflops", type=float, default=25.0, help="ASSUMED sustained GPU throughput, TFLOP/s")
    p.add_argument(
        "--sketch-seconds", type=float, default=None, help="measured MiniLM sketch s/step (bench_sketch.py)"
    )
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    model = MODELS[args.model]
    if args.layers:
        model = Model(
            f"custom L{args.layers} d{args.hidden}",
            args.layers,
            args.hidden,
            args.intermediate or 4 * args.hidden,
        )
    if args.sketch_seconds is not None:
        MEASURED["sketch_seconds_per_step"] = args.sketch_seconds
    rows = []
    for task in args.tasks.split(","):
        if task not in TASKS:
            p.error(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
        if args.train_examples:
            TASKS[task] = dict(TASKS[task], train=args.train_examples)
        rows += estimate(
            model,
            task,
            args.grid,
            args.every_n,
            args.buckets,
            not args.no_sketch,
            args.epochs,
            args.gpu_tflops,
        )
    print(
        f"model {model.name}: {model.parameters / 1e6:.1f}M parameters ({model.nonembedding / 1e6:.1f}M non-embedding); "
        f"forward FLOPs/token at s=128: {model.forward_flops_per_token(128) / 1e6:.0f}M "
        f"({model.forward_flops_per_token(128) / REFERENCE.forward_flops_per_token(128):.2f}× MiniLM)"
    )
    print(
        f"measured on {MEASURED['cpu']} (MiniLM): {MEASURED['train_seconds_per_step']} s/train step, "
        f"{MEASURED['point_seconds']} s per grid point of {MEASURED['point_examples']} MRPC dev examples; "
        f"scaled by FLOPs; GPU hours at an ASSUMED {args.gpu_tflops:g} TFLOP/s (no GPU measured)"
    )
    print("per (task, init); ×2 for pretrained + scratch\n")
    print(
        f"| task | experiment | CPU hours (scaled) | GPU hours (assumed {args.gpu_tflops:g} TFLOP/s) | disk | notes |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        disk = f"{r['disk_bytes'] / 1e9:.1f} GB" if r["disk_bytes"] else "—"
        print(
            f"| {r['task']} | {r['experiment']} | {r['cpu_hours_scaled']:.1f} | {r['gpu_hours_assumed']:.3f} | {disk} | {r['note']} |"
        )
    total_gpu = 2 * sum(r["gpu_hours_assumed"] for r in rows)
    total_cpu = 2 * sum(r["cpu_hours_scaled"] for r in rows)
    print(
        f"\nall of it, both inits: {total_gpu:.1f} GPU hours (assumed), {total_cpu:.0f} CPU hours (scaled), "
        f"{2 * sum(r['disk_bytes'] for r in rows) / 1e9:.0f} GB"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"measured": MEASURED, "model": model.__dict__, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
