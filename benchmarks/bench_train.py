"""Training at the machine's limit: where a step's time goes, against a plain loop and the GEMM peak.

    python benchmarks/bench_train.py [--steps 30] [--repeats 2] [--presets demo,paper]
    python benchmarks/bench_train.py --dev-seeds 3 --dev-train 1600   # + the dev-metric effect

Per preset (demo: MiniLM, SST-2, batch 16, max length 64; paper: the paper recipe's shapes, batch
32, max length 128, sketch every step + deltas every 25), all in one process, arms interleaved
(absolute times on a shared 2-core host vary 2x with load: compare ratios within one run):

- tokens: real vs padded tokens over one epoch, random batches vs length-grouped;
- the matmul peak: torch.mm GFLOP/s at the step's GEMM shapes (fp32, and bf16 where it pays);
- Lightning arms (`bertviz_landscape.training.train.train`, the preset's callbacks, logger=csv): "before"
  (random batches, per-tensor AdamW: the project before issue 16) and "after" (length-grouped,
  fused AdamW), "after" without snapshots, with snapshots every step, and in bf16 autocast;
  per step: forward, backward, optimiser (clip + step), snapshot callback, the rest (Lightning's
  loop, logging, scheduler, data loading), and data loading alone;
- a plain PyTorch loop (no Lightning, no callbacks) on the same model, θ0 and batches as "after".

GFLOP/s counts the matmuls a step executes on its padded batch (3x the forward: backward is
two GEMMs per forward GEMM); the share of peak divides by the measured peak at those shapes.
With --dev-seeds, the dev metric of short SST-2 runs (pretrained, --dev-train examples) across
seeds: random vs length-grouped batches, and fp32 vs bf16.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from transformers import get_linear_schedule_with_warmup

from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.devices import bf16_support
from bertviz_landscape.contracts.parameters import is_bias_or_norm, trainable_parameters
from bertviz_landscape.training.callbacks import WeightSnapshots
from bertviz_landscape.training.data.datamodule import padding_ratio
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.models import build_initial_model, load_tokenizer
from bertviz_landscape.training.models.classifier import adamw_kernel
from bertviz_landscape.training.train import build_datamodule, train

GLUE = os.environ.get("GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))

PRESETS = {
    "demo": ["experiment=demo"],
    # the paper recipe's shapes on the offline model and SST-2 (batch 32, max length 128, sketches)
    "paper": ["experiment=paper", "task=sst2", "model=minilm", "init.lr=1e-4", "data.max_train_samples=6400"],
}
BEFORE = ["data.group_by_length=false", "optim.implementation=for-loop"]
AFTER = ["data.group_by_length=true", "optim.implementation=fused"]
COMMON = [
    "init=pretrained",
    "logger=csv",
    "trainer.limit_val_batches=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
    "resume=false",
]


def cpu_description() -> str:
    model, flags = platform.processor() or "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8") if f in flags]
    return (
        f"{model} | {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()} | flags: {' '.join(shown)}"
    )


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=[f"data.glue_dir={GLUE}", *overrides])


# -- FLOPs and the matmul peak ----------------------------------------------------------------
def gemm_shapes(config, tokens: int, batch: int, length: int) -> list[tuple[int, int, int, int]]:
    """(m, k, n, count) of one forward pass's matmuls on a padded batch of `tokens` = batch·length."""
    h, f, n_layers, heads = config.hidden_size, config.intermediate_size, config.num_hidden_layers, None
    heads = config.num_attention_heads
    d = h // heads
    per_layer = [(tokens, h, h, 4), (tokens, h, f, 1), (tokens, f, h, 1)]  # QKV + output, FFN in, FFN out
    attention = [(length, d, length, 2 * batch * heads)]  # scores QKᵀ and scores·V per head
    return [(m, k, n, c * n_layers) for m, k, n, c in per_layer + attention] + [(batch, h, h, 1)]


def forward_flops(shapes) -> float:
    return sum(2.0 * m * k * n * c for m, k, n, c in shapes)


def matmul_gflops(shapes, dtype: torch.dtype, seconds: float = 0.4) -> float:
    """Measured GFLOP/s of torch.mm over `shapes`, FLOP-weighted (each shape timed for ~seconds)."""
    total_flops = total_time = 0.0
    for m, k, n, count in shapes:
        if m * k * n < 1e5:  # attention of short sequences: tiny GEMMs, timed in bulk below
            a, b = torch.randn(count, m, k, dtype=dtype), torch.randn(count, k, n, dtype=dtype)
            op = lambda a=a, b=b: torch.bmm(a, b)  # noqa: E731
        else:
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            op = lambda a=a, b=b: torch.mm(a, b)  # noqa: E731
        op()
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            op()
            reps += 1
        elapsed = (time.perf_counter() - start) / reps
        per_call = 2.0 * m * k * n * (count if a.dim() == 3 else 1)
        scale = 1 if a.dim() == 3 else count
        total_flops += per_call * scale
        total_time += elapsed * scale
    return total_flops / total_time / 1e9


# -- timing Lightning's step ------------------------------------------------------------------
class PhaseTimer(pl.Callback):
    """Timestamps of one step's phases; the first callback, so batch_end comes before the others'."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.snapshot_seconds: list[float] = []
        self._t: dict[str, float] = {}
        self._last_end = None
        self.ends: list[float] = []
        self.fit = 0.0

    def on_train_start(self, trainer, pl_module):
        self._fit_start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.fit = time.perf_counter() - self._fit_start

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        self._t = {"start": now, "between": now - self._last_end if self._last_end else float("nan")}

    def on_before_backward(self, trainer, pl_module, loss):
        self._t["fwd"] = time.perf_counter()

    def on_after_backward(self, trainer, pl_module):
        self._t["bwd"] = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        t, now = self._t, time.perf_counter()
        self.rows.append(
            {
                "forward": t["fwd"] - t["start"],
                "backward": t["bwd"] - t["fwd"],
                "optimiser": now - t["bwd"],
                "between": t["between"],
            }
        )
        self._t["end"] = now

    def after_callbacks(self) -> None:
        self._last_end = time.perf_counter()
        self.ends.append(self._last_end)


class EndMarker(pl.Callback):
    """The last callback: marks the end of the step's callbacks for PhaseTimer."""

    def __init__(self, timer: PhaseTimer) -> None:
        self.timer = timer

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.timer.after_callbacks()


def lightning_arm(overrides: list[str], workdir: Path) -> dict[str, float]:
    cfg = compose_cfg(overrides)
    timer = PhaseTimer()
    original_init, original_end = pl.Trainer.__init__, WeightSnapshots.on_train_batch_end

    def with_timer(self, *args, callbacks=None, **kwargs):
        original_init(self, *args, callbacks=[timer, *(callbacks or []), EndMarker(timer)], **kwargs)

    def timed_end(self, *args, **kwargs):
        start = time.perf_counter()
        original_end(self, *args, **kwargs)
        timer.snapshot_seconds.append(time.perf_counter() - start)

    pl.Trainer.__init__, WeightSnapshots.on_train_batch_end = with_timer, timed_end
    try:
        result = train(cfg, workdir)
    finally:
        pl.Trainer.__init__, WeightSnapshots.on_train_batch_end = original_init, original_end
    rows = timer.rows[3:]  # warm-up steps out
    out = {k: statistics.median(r[k] for r in rows) for k in ("forward", "backward", "optimiser")}
    between = [r["between"] for r in rows if r["between"] == r["between"]]
    out["rest"] = statistics.median(between) if between else 0.0
    out["snapshots"] = statistics.mean(timer.snapshot_seconds[3:]) if timer.snapshot_seconds else 0.0
    out["fit_per_step"] = timer.fit / max(result["steps"], 1)
    # mean (not median) over steps 5..N, the same steps whose real tokens are counted: grouped
    # batches differ in length, so a step's time and its tokens go together
    out["step"] = statistics.mean(b - a for a, b in zip(timer.ends[3:], timer.ends[4:]))
    return out


# -- the plain loop -----------------------------------------------------------------------------
def batches_of(cfg, steps: int):
    task = get_task(cfg.task.name)
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    dm = build_datamodule(cfg, task, tokenizer)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(0)
    start, batches = time.perf_counter(), []
    for batch in loader:
        batches.append(batch)
        if len(batches) == steps:
            break
    data_seconds = (time.perf_counter() - start) / len(batches)
    lengths = dm.train_lengths()
    sampler = loader.sampler
    epoch = sampler.batches() if hasattr(sampler, "batches") else None
    return task, batches, data_seconds, lengths, epoch


def plain_loop(cfg, task, batches, precision: str = "32-true") -> dict[str, float]:
    """fwd, loss, backward, clip, AdamW (the run's kernel and groups), scheduler: no Lightning."""
    torch.manual_seed(cfg.seed)
    model = build_initial_model(cfg.model.name_or_path, task, "pretrained", seed=cfg.init.seed).train()
    decay, no_decay = [], []
    for name, param in trainable_parameters(model).items():
        (no_decay if is_bias_or_norm(name, param) else decay).append(param)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.init.lr,
        eps=cfg.optim.adam_eps,
        **adamw_kernel(cfg.optim.implementation, torch.device("cpu")),
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, 1, 1000)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    rows = []
    for step, batch in enumerate(batches):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        with autocast:
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        loss = task.loss(logits.float(), batch["labels"])
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        scheduler.step()
        t3 = time.perf_counter()
        if step >= 4:
            rows.append({"forward": t1 - t0, "backward": t2 - t1, "optimiser": t3 - t2, "step": t3 - t0})
    return {k: statistics.mean(r[k] for r in rows) for k in rows[0]}


def tokens_in(batches) -> tuple[int, int]:
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["input_ids"].numel() for b in batches)
    return real, padded


def flops_of(config, batches) -> float:
    """Training FLOPs (3x forward) of the batches, as executed (padded)."""
    total = 0.0
    for b in batches:
        batch, length = b["input_ids"].shape
        total += 3 * forward_flops(gemm_shapes(config, batch * length, batch, length))
    return total


def bench_preset(name: str, args, root: Path) -> None:
    base = [*PRESETS[name], *COMMON, f"trainer.max_steps={args.steps}"]
    cfg_after = compose_cfg([*base, *AFTER])
    cfg_before = compose_cfg([*base, *BEFORE])
    task, batches, data_after, lengths, epoch_after = batches_of(cfg_after, args.steps)
    _, batches_before, data_before, _, _ = batches_of(cfg_before, args.steps)
    from transformers import AutoConfig

    from bertviz_landscape.training.models.source import resolve_model_source

    config = AutoConfig.from_pretrained(resolve_model_source(cfg_after.model.name_or_path))
    b = int(cfg_after.data.batch_size)
    print(f"\n== {name}: {' '.join(PRESETS[name])} | batch {b}, max length {cfg_after.data.max_length}")
    random_batches = [lengths_chunk for lengths_chunk in _random_epoch(cfg_before, len(lengths), b)]
    ratios = padding_ratio(lengths, random_batches), padding_ratio(lengths, epoch_after)
    print(
        f"tokens processed per real token, one epoch of {len(lengths)} examples: random batches "
        f"{ratios[0]:.2f}, length-grouped {ratios[1]:.2f}"
    )
    real_a, padded_a = tokens_in(batches[4:])
    real_b, padded_b = tokens_in(batches_before[4:])
    mean_len = padded_a / len(batches[4:]) / b
    shapes = gemm_shapes(config, int(b * mean_len), b, int(round(mean_len)))
    shapes_before = gemm_shapes(
        config, int(padded_b / len(batches_before[4:])), b, int(padded_b / len(batches_before[4:]) / b)
    )
    peak = {
        "fp32": matmul_gflops(shapes, torch.float32),
        "fp32 (before shapes)": matmul_gflops(shapes_before, torch.float32),
    }
    bf16_ok, why = bf16_support(torch.device("cpu"))
    if bf16_ok:
        peak["bf16"] = matmul_gflops(shapes, torch.bfloat16)
    print(
        "matmul peak at the step's GEMM shapes: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items())
    )
    print(f"bf16: {why}")

    arms = {
        "before (random, for-loop AdamW)": [*base, *BEFORE],
        "after (grouped, fused AdamW)": [*base, *AFTER],
        "after, no snapshots": [*base, *AFTER, "callbacks=none"],
        "after, snapshots every step": [*base, *AFTER, "callbacks.snapshots.every_n_steps=1"],
    }
    if bf16_ok:
        arms["after, bf16-mixed"] = [*base, *AFTER, "trainer.precision=bf16-mixed"]
    results: dict[str, list[dict]] = {k: [] for k in [*arms, "plain loop (after's batches)"]}
    if bf16_ok:
        results["plain loop, bf16"] = []
    for repeat in range(args.repeats):
        for i, (arm, overrides) in enumerate(arms.items()):
            results[arm].append(lightning_arm(overrides, root / f"{name}_r{repeat}_{i}"))
        results["plain loop (after's batches)"].append(plain_loop(cfg_after, task, batches))
        # the peak again beside each repeat (load varies): the best measured is the limit
        peak["fp32"] = max(peak["fp32"], matmul_gflops(shapes, torch.float32))
        peak["fp32 (before shapes)"] = max(
            peak["fp32 (before shapes)"], matmul_gflops(shapes_before, torch.float32)
        )
        if bf16_ok:
            peak["bf16"] = max(peak["bf16"], matmul_gflops(shapes, torch.bfloat16))
        if bf16_ok:
            results["plain loop, bf16"].append(plain_loop(cfg_after, task, batches, "bf16-mixed"))

    flops_after = flops_of(config, batches[4:]) / len(batches[4:])
    flops_before = flops_of(config, batches_before[4:]) / len(batches_before[4:])
    real_per_step = {"before": real_b / len(batches_before[4:]), "after": real_a / len(batches[4:])}
    best = {arm: min(rs, key=lambda r: r["step"]) for arm, rs in results.items()}
    before_tps = real_per_step["before"] / best["before (random, for-loop AdamW)"]["step"]
    plain_step = best["plain loop (after's batches)"]["step"]
    print(
        f"best of {args.repeats} | ms per step (step: mean over steps 5..{args.steps}; phases: medians) | "
        "data loading alone "
        f"{data_after * 1e3:.1f} ms/batch (before: {data_before * 1e3:.1f})"
    )
    head = f"{'arm':<34}{'step':>7}{'fwd':>7}{'bwd':>7}{'opt':>7}{'snap':>6}{'rest':>6}"
    print(head + f"{'real tok/s':>11}{'speed-up':>9}{'GFLOP/s':>9}{'of peak':>8}{'vs plain':>9}")
    for arm, r in best.items():
        is_before = arm.startswith("before")
        tps = (real_per_step["before"] if is_before else real_per_step["after"]) / r["step"]
        gflops = (flops_before if is_before else flops_after) / r["step"] / 1e9
        ref_peak = peak["bf16"] if "bf16" in arm else peak["fp32 (before shapes)" if is_before else "fp32"]
        print(
            f"{arm:<34}{r['step'] * 1e3:>7.0f}{r['forward'] * 1e3:>7.0f}{r['backward'] * 1e3:>7.0f}"
            f"{r['optimiser'] * 1e3:>7.0f}{r.get('snapshots', 0) * 1e3:>6.1f}{r.get('rest', 0) * 1e3:>6.1f}"
            f"{tps:>11.0f}{tps / before_tps:>8.2f}x{gflops:>9.1f}{gflops / ref_peak * 100:>7.0f}%"
            f"{r['step'] / plain_step:>8.2f}x"
        )
    print(
        "matmul peak, best beside the repeats: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items())
    )
    fit = {arm: min(r["fit_per_step"] for r in results[arm]) for arm in arms}
    no_snap = fit["after, no snapshots"]
    print(
        f"snapshot overhead (whole fit incl. the final flush, per step, vs no snapshots): preset's "
        f"every_n_steps {(fit['after (grouped, fused AdamW)'] / no_snap - 1) * 100:+.1f}%, every step "
        f"{(fit['after, snapshots every step'] / no_snap - 1) * 100:+.1f}%"
    )


def _random_epoch(cfg, size: int, batch_size: int) -> list[list[int]]:
    from bertviz_landscape.training.data.datamodule import EpochShuffle

    order = list(EpochShuffle(size, int(cfg.seed)))
    return [order[i : i + batch_size] for i in range(0, size, batch_size)]


def dev_effect(args, root: Path) -> None:
    """Dev accuracy of short pretrained SST-2 runs across seeds: random vs grouped, fp32 vs bf16."""
    arms = {"random, fp32": ["data.group_by_length=false"], "grouped, fp32": ["data.group_by_length=true"]}
    if bf16_support(torch.device("cpu"))[0]:
        arms["grouped, bf16"] = ["data.group_by_length=true", "trainer.precision=bf16-mixed"]
    print(f"\n== dev metric, SST-2 pretrained, {args.dev_train} train examples, batch 16, full dev set")
    scores: dict[str, list[float]] = {k: [] for k in arms}
    seconds: dict[str, list[float]] = {k: [] for k in arms}
    for seed in range(args.dev_seeds):
        for i, (arm, extra) in enumerate(arms.items()):
            cfg = compose_cfg(
                [
                    "experiment=demo",
                    "init=pretrained",
                    "logger=none",
                    "callbacks=none",
                    "trainer.enable_progress_bar=false",
                    "trainer.enable_model_summary=false",
                    "trainer.accelerator=cpu",
                    "resume=false",
                    f"seed={seed}",
                    f"data.max_train_samples={args.dev_train}",
                    *extra,
                ]
            )
            start = time.perf_counter()
            result = train(cfg, root / f"dev_{seed}_{i}")
            seconds[arm].append(time.perf_counter() - start)
            scores[arm].append(result["dev"]["val/accuracy"])
    reference = scores["random, fp32"]
    for arm in arms:
        values = scores[arm]
        paired = [v - r for v, r in zip(values, reference)]
        paired_sd = statistics.stdev(paired) if len(paired) > 1 else float("nan")
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        print(
            f"{arm:<16} dev accuracy {statistics.mean(values):.4f} ± {sd:.4f} (sd over {len(values)} seeds: "
            f"{' '.join(f'{v:.4f}' for v in values)}) | vs random fp32, same seed: "
            f"{statistics.mean(paired):+.4f} ± {paired_sd:.4f}"
            f" | {statistics.mean(seconds[arm]):.0f} s per run"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--presets", default="demo,paper")
    parser.add_argument(
        "--dev-seeds", type=int, default=0, help="seeds of the dev-metric comparison (0: skip)"
    )
    parser.add_argument("--dev-train", type=int, default=1600)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_train_"))
    print(f"bench_train | {cpu_description()}")
    for name in filter(None, args.presets.split(",")):
        bench_preset(name, args, root)
    if args.dev_seeds:
        dev_effect(args, root)


if __name__ == "__main__":
    main()
