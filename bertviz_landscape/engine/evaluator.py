"""The evaluator: J and the task's metrics at θ = centre + α·δ1 + β·δ2, one forward pass per split.

What makes a grid point cost no more than a forward pass:

- examples are tokenised once, sorted by length and padded per batch, and the batches stay on
  the device (`EvalSet`);
- weights are set *in place from the fixed centre* with foreach ops, in float32
  (p ← c; p += α·δ1; p += β·δ2) — never by cumulative steps, so there is no drift;
- the model is in eval mode (no dropout) under `torch.inference_mode()`;
- when the directions leave everything below encoder layer l unchanged, the hidden states
  entering l are computed once (`HiddenStateCache`) and only layers l… and the head are run;
- reduced precision is an option (`precision="bf16"`: autocast; `"bf16-weights"`: a bf16
  copy of the model, weights still computed in fp32 first; `"tf32"`: TF32 matmuls on GPU);
  measure its deviation before trusting it (see benchmarks/bench_landscape.py).

Loss is the mean over examples (sum over batches / N), metrics are the task's torchmetrics on
all examples, error = 1 − primary metric, ``loss_stderr`` the standard error of that mean
(per-example losses' sample standard deviation, ddof = 1, over sqrt(N); NaN for N = 1); the
per-example losses of the last evaluation are kept in ``last_per_example`` (split → float64
tensor, the EvalSet's fixed order) for paired comparisons (analysis/noise.py), and for
classification tasks the per-example correctness in ``last_correct`` (split → bool tensor, same
order; absent for regression). Non-finite
values are returned, not raised.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence

import torch

from bertviz_landscape.contracts import work
from bertviz_landscape.contracts.parameters import (
    depth_of,
    num_layers,
    trainable_parameters,
    transformer_blocks,
)
from bertviz_landscape.engine.directions import Directions
from bertviz_landscape.training.data.eval_sets import Batch, EvalSet
from bertviz_landscape.training.data.tasks import GlueTask
from bertviz_landscape.training.data.tokenize import takes_token_type_ids

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "bf16-weights", "tf32")


class _Stop(Exception):
    pass


class HiddenStateCache:
    """The output of transformer block `start - 1` (the hidden states entering block `start`), per batch.

    Valid while nothing below block `start` changes (1 ≤ start ≤ number of blocks). Replaying a
    batch runs the model's own forward with blocks 0 … start−1 replaced by the cached output, so
    whatever the architecture does around its blocks (masks, position embeddings, a final norm,
    the pooler and head) is the model's own code; only the skipped blocks' work is saved. The
    blocks come from the layer map (`parameters.transformer_blocks`). `supported(model)` says
    whether the architecture's blocks are an ordered list the encoder runs once each, and the
    evaluator checks the replay against the full forward on the first batch before trusting it.
    """

    def __init__(self, model, start: int, batches: Sequence[Batch], inputs=None):
        self.model, self.start = model, start
        self.inputs = inputs or (lambda b: b.inputs())
        _, self.blocks = transformer_blocks(model)
        if not 1 <= start <= len(self.blocks):
            raise ValueError(f"cache start {start} outside 1..{len(self.blocks)}")
        self.batches = list(batches)
        self.entries: list = []
        last = self.blocks[start - 1]
        box: list = []

        def grab(module, args, output):
            box[:] = [output]

        def stop(module, args):
            raise _Stop

        handles = [last.register_forward_hook(grab)]
        if start < len(self.blocks):  # no need to run the blocks above
            handles.append(self.blocks[start].register_forward_pre_hook(stop))
        try:
            with torch.inference_mode():
                for b in batches:
                    box.clear()
                    try:
                        model(**self.inputs(b))
                    except _Stop:
                        pass
                    self.entries.append(box[0])
                    # blocks 0 … start−1; the head too when no block is left above (no stop)
                    last_block = start == len(self.blocks)
                    work.count_pass(model, b.attention_mask, layers=(0, start), head=last_block)
        finally:
            for h in handles:
                h.remove()

    @staticmethod
    def supported(model) -> bool:
        """Blocks that form an ordered list run once each (not ALBERT's shared groups, not DeBERTa's
        convolution after block 0, which the encoder applies outside the blocks)."""
        _, blocks = transformer_blocks(model)
        config = getattr(model, "config", None)
        if not blocks or getattr(config, "model_type", None) == "albert":
            return False
        return not int(getattr(config, "conv_kernel_size", 0) or 0)

    def logits(self, index: int) -> torch.Tensor:
        """The classifier's logits for batch `index`, running only blocks start… and what follows."""
        cached = self.entries[index]
        skipped = self.blocks[: self.start]

        def replay(*args, **kwargs):
            return cached

        for block in skipped:
            block.forward = replay
        batch = self.batches[index]
        work.count_pass(self.model, batch.attention_mask, layers=(self.start, len(self.blocks)))
        try:
            return self.model(**self.inputs(batch)).logits
        finally:
            for block in skipped:
                del block.forward


def _precision_context(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Evaluator:
    """Evaluate J(centre + α·δ1 + β·δ2) on fixed example sets. Counts its evaluations."""

    def __init__(
        self,
        model: torch.nn.Module,
        task: GlueTask,
        center: dict,
        directions: Directions,
        sets: Sequence[EvalSet],
        precision: str = "fp32",
        use_cache: bool = True,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
        self.model, self.task, self.sets, self.precision = model.eval(), task, list(sets), precision
        self.device = next(model.parameters()).device
        params = trainable_parameters(model)
        # all trainable parameters start at the centre
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(center[name])
        names = directions.names
        self._params = [params[n] for n in names]
        self._center = [center[n].to(self.device, torch.float32) for n in names]
        self._dx = [directions.x[n].to(self.device, torch.float32) for n in names]
        self._dy = (
            [directions.y[n].to(self.device, torch.float32) for n in names] if directions.two_d else None
        )
        self._numel = sum(c.numel() for c in self._center)
        self._scratch = None
        if precision == "bf16-weights":
            model.to(torch.bfloat16)
            self._scratch = [c.clone() for c in self._center]
        if precision == "tf32" and self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        n_layers = num_layers(list(params))
        self.start_depth = min(depth_of(n, n_layers) for n in names)
        self.token_type_ids = takes_token_type_ids(model.config) if hasattr(model, "config") else True
        self.caches: dict[str, HiddenStateCache] | None = None
        if use_cache and self.start_depth >= 2 and HiddenStateCache.supported(model):
            start = self.start_depth - 1  # depth i+1 ↔ block i; pooler/head → after the last block
            start = min(start, n_layers)
            self.caches = {
                s.name: HiddenStateCache(model, start, s.batches, self.inputs) for s in self.sets if s.batches
            }
            self._check_cache()
        self.evaluations = 0
        self.last_per_example: dict[str, torch.Tensor] = {}  # split → per-example losses at the last point
        self.last_correct: dict[str, torch.Tensor] = {}  # split → per-example correctness (classification)

    def inputs(self, batch: Batch) -> dict:
        return batch.inputs(self.token_type_ids)

    def _check_cache(self) -> None:
        """The cached replay must give the full forward's logits (first batch of each set); else fall
        back to the full forward, and say so."""
        with torch.inference_mode():
            for s in self.sets:
                if not s.batches:
                    continue
                full = self.model(**self.inputs(s.batches[0])).logits
                work.count_pass(self.model, s.batches[0].attention_mask)
                cached = self.caches[s.name].logits(0)
                if full.shape != cached.shape or not torch.allclose(full, cached, rtol=1e-5, atol=1e-6):
                    log.warning(
                        "hidden-state cache disagrees with the full forward for %s (max |diff| %.3g); "
                        "using the full forward",
                        type(self.model).__name__,
                        float((full - cached).abs().max()) if full.shape == cached.shape else math.inf,
                    )
                    self.caches = None
                    return

    @torch.no_grad()
    def set_point(self, alpha: float, beta: float = 0.0) -> None:
        """Weights ← centre + α·δ1 + β·δ2 (float32 arithmetic, from the fixed centre).

        The first direction used writes p = c + α·δ directly (one pass: read c and δ, write p —
        the same add kernel as p ← c then p += α·δ, so the same bits, without the copy's pass);
        the second adds in place. No direction used: p ← c."""
        target = self._scratch if self._scratch is not None else self._params
        axes = [(d, float(a)) for d, a in ((self._dx, alpha), (self._dy, beta)) if d is not None and a != 0.0]
        if not axes:
            torch._foreach_copy_(target, self._center)
        else:
            first, a = axes[0]
            for p, c, d in zip(target, self._center, first):
                torch.add(c, d, alpha=a, out=p)
            for d, a in axes[1:]:
                torch._foreach_add_(target, d, alpha=a)
        if self._scratch is not None:
            torch._foreach_copy_(self._params, self._scratch)
        if work.metering_open():  # bytes read + written: the copy, or one axpy per direction used
            per_element = len(axes) * work.WEIGHT_AXPY_BYTES if axes else work.WEIGHT_SET_BYTES
            if self._scratch is not None:  # the fp32 scratch copied into the bf16 weights
                per_element += 6
            work.count_bytes("weight update", per_element * self._numel)

    def logits(self, split: EvalSet, index: int) -> torch.Tensor:
        if self.caches is not None:
            return self.caches[split.name].logits(index)
        batch = split.batches[index]
        work.count_pass(self.model, batch.attention_mask)
        return self.model(**self.inputs(batch)).logits

    def evaluate_set(self, split: EvalSet) -> dict[str, float]:
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        preds, labels, per_example = [], [], []
        with torch.inference_mode(), _precision_context(self.precision, self.device):
            for i, batch in enumerate(split.batches):
                logits = self.logits(split, i).float()
                total += self.task.loss(logits, batch.labels, reduction="sum").double()
                per_example.append(self.task.loss(logits, batch.labels, reduction="none").double())
                preds.append(self.task.predictions(logits))
                labels.append(batch.labels)
        out = {"loss": float(total) / split.num_examples}
        losses = torch.cat(per_example)
        self.last_per_example[split.name] = losses.cpu()
        if not self.task.is_regression:
            self.last_correct[split.name] = (torch.cat(preds) == torch.cat(labels)).cpu()
        # standard error of the mean loss: sample std (ddof = 1) of the per-example losses / sqrt(n)
        out["loss_stderr"] = (
            float(losses.std(correction=1)) / math.sqrt(losses.numel()) if losses.numel() > 1 else math.nan
        )
        metrics = self.task.make_metrics()
        try:
            values = metrics(torch.cat(preds).cpu(), torch.cat(labels).cpu())
            out.update({k: float(v) for k, v in values.items()})
        except Exception:  # e.g. non-finite logits at a far grid point: data, not a crash
            out.update({k: math.nan for k in self.task.metrics})
        out["error"] = 1.0 - out[self.task.primary_metric]
        return out

    def evaluate(self, alpha: float, beta: float = 0.0) -> dict[str, float]:
        """{'<split>_loss', '<split>_<metric>', '<split>_error', '<split>_loss_stderr'} at (α, β)."""
        self.set_point(alpha, beta)
        self.evaluations += 1
        out = {}
        for split in self.sets:
            out.update({f"{split.name}_{k}": v for k, v in self.evaluate_set(split).items()})
        return out

    def value_keys(self) -> list[str]:
        return [
            f"{s.name}_{k}" for s in self.sets for k in ("loss", *self.task.metrics, "error", "loss_stderr")
        ]
