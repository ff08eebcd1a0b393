"""Path loss: the training loss along the actual optimisation path, in eval mode on fixed examples.

The loss a run records while training is a dropout minibatch loss of a few examples; it cannot
say how fast the run optimised. The path loss is J(θ_t) — the mean per-example task loss on a
fixed train subset (the same examples, in the same order, at every point; eval mode, no dropout,
float32; the landscape's ``train_loss`` on the same subset) — at θ0 (step 0), at every snapshot
θ_t = θ0 + δ_t (snapshots/, `every` n-th), and at θ1 (checkpoints/final, at metrics.json's
``steps``; it replaces a snapshot at the same step, whose delta is stored in half precision). So
J at θ1 equals the landscape's value at (1, 0) on the same subset.

From the curve (steps s_0 = 0 < … < s_T = S, losses J_t):

- ``steps_to_threshold``: the first recorded step with J_t ≤ threshold (fixed in the config before
  any run); null when the path never reaches it;
- ``path_loss_auc``: the area under J over normalised steps u = s/S ∈ [0, 1] (trapezoid): the mean
  loss along the path, lower = faster optimisation;
- ``final_path_loss``: J(θ1); ``initial_path_loss``: J(θ0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from bertviz_landscape.analysis.common import AnalysisError, open_snapshots, run_data_request, run_task
from bertviz_landscape.analysis.measures.sharpness import mean_loss
from bertviz_landscape.contracts.checkpoints import check_checkpoint_dir, load_model
from bertviz_landscape.contracts.devices import pick_device
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.parameters import trainable_parameters
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.training.data.eval_sets import load_eval_sets
from bertviz_landscape.training.data.tasks import get_task


class PathLossError(BadInput):
    """A path-loss request that cannot be computed (no snapshots, bad threshold, parameters)."""


def set_weights(model: torch.nn.Module, values: dict[str, torch.Tensor]) -> None:
    """The model's trainable parameters ← `values` (float32, in place)."""
    params = trainable_parameters(model)
    with torch.no_grad():
        for n, t in values.items():
            params[n].copy_(t.to(params[n].device, torch.float32))


def loss_at_snapshot(model, train, task, theta0: dict[str, torch.Tensor], delta: dict) -> float:
    """J(θ0 + δ) (float32 sum) on `train`; the model's weights are left at that point."""
    set_weights(model, {n: theta0[n] + delta[n].float() for n in delta})
    return mean_loss(model, train, task)


def curve_numbers(steps: Sequence[int], losses: Sequence[float], threshold: float | None) -> dict:
    """steps_to_threshold, path_loss_auc, initial/final path loss of one curve (module docstring)."""
    s = np.asarray(steps, dtype=np.float64)
    j = np.asarray(losses, dtype=np.float64)
    reached = None
    if threshold is not None:
        below = np.nonzero(np.isfinite(j) & (j <= float(threshold)))[0]
        reached = int(s[below[0]]) if len(below) else None
    auc = None
    if len(s) >= 2 and s[-1] > 0 and np.all(np.isfinite(j)):
        u = s / s[-1]
        auc = float(np.sum(np.diff(u) * (j[1:] + j[:-1]) / 2.0))
    return {
        "steps_to_threshold": reached,
        "path_loss_auc": auc,
        "initial_path_loss": float(j[0]) if len(j) else None,
        "final_path_loss": float(j[-1]) if len(j) else None,
    }


def path_loss(
    model: torch.nn.Module,
    train,
    task,
    snapshots,
    theta1: dict[str, torch.Tensor],
    final_step: int | None,
    threshold: float | None = None,
    every: int = 1,
) -> dict:
    """The path-loss curve and its numbers. `model`: loaded from θ0 (its trainable parameters are
    θ0); `snapshots`: the run's `Snapshots`; `theta1`: θ1's trainable parameters (float32);
    `final_step`: θ1's step (None: the last snapshot's). The model is left at θ1."""
    if int(every) < 1:
        raise PathLossError(f"path_loss.every must be >= 1, got {every}")
    if threshold is not None and not math.isfinite(float(threshold)):
        raise PathLossError(f"path_loss.threshold must be a finite loss, got {threshold}")
    trainable = trainable_parameters(model)
    names = list(trainable)
    missing = [n for n in names if n not in set(snapshots.parameter_names)]
    if missing:
        raise PathLossError(f"snapshots in {snapshots.directory} lack trainable parameters {missing[:3]}")
    theta0 = {n: p.detach().clone().float() for n, p in trainable.items()}
    records = snapshots.records[:: int(every)]
    last = final_step if final_step is not None else (snapshots.records[-1].step if snapshots.records else 0)
    steps, losses, sources = [0], [mean_loss(model, train, task)], ["theta0"]
    for r in records:
        if r.step <= 0 or r.step >= last:
            continue
        losses.append(loss_at_snapshot(model, train, task, theta0, snapshots.delta(r.step, names)))
        steps.append(int(r.step))
        sources.append("snapshot")
    set_weights(model, {n: theta1[n] for n in names})
    steps.append(int(last))
    losses.append(mean_loss(model, train, task))
    sources.append("theta1")
    return {
        "steps": steps,
        "loss": losses,
        "source": sources,
        "threshold": None if threshold is None else float(threshold),
        "every": int(every),
        "num_examples": train.num_examples,
        **curve_numbers(steps, losses, threshold),
    }


def matched_step(steps: Sequence[int], losses: Sequence[float], target: float) -> int | None:
    """The first step of a path-loss curve whose J ≤ target (null: never)."""
    for s, j in zip(steps, losses):
        if math.isfinite(j) and j <= target:
            return int(s)
    return None


def matched_bracket(steps: Sequence[int], losses: Sequence[float], target: float) -> dict | None:
    """The path's first crossing of `target`: the recorded point before the first one at or below it
    (``lower``: its index, step and J, above the target) and that first one (``upper``), and ``step``,
    where the straight line between their losses reaches the target. None when the path never
    reaches it; ``lower`` None when the path starts at or below it (θ0 is the matched point)."""
    for i, (s, j) in enumerate(zip(steps, losses)):
        if math.isfinite(j) and j <= target:
            if i == 0 or not math.isfinite(losses[i - 1]):
                return {
                    "lower": None,
                    "upper": {"index": i, "step": int(s), "loss": float(j)},
                    "step": float(s),
                }
            s0, j0 = int(steps[i - 1]), float(losses[i - 1])
            w = (j0 - target) / (j0 - float(j)) if j0 != j else 1.0
            return {
                "lower": {"index": i - 1, "step": s0, "loss": j0},
                "upper": {"index": i, "step": int(s), "loss": float(j)},
                "step": s0 + w * (int(s) - s0),
            }
    return None


def matched_point(
    loss_at: Callable[[float], float], j_lower: float, j_upper: float, target: float, iterations: int
) -> tuple[float, float, int]:
    """(w, J(w), evaluations): where the loss along the segment θ(w) = θ_lower + w·(θ_upper − θ_lower)
    between two consecutive points of the path (J(0) = `j_lower` > target ≥ `j_upper` = J(1)) equals
    `target`, by `iterations` steps of regula falsi (Illinois) on w, each one evaluation of
    `loss_at(w)`. The path between two snapshots is taken as that segment, so the matched step is
    s_lower + w·(s_upper − s_lower); with iterations = 0, w is the linear interpolation of the two
    losses (its loss unevaluated: `j_lower`/`j_upper` interpolated)."""
    a, fa, b, fb = 0.0, j_lower - target, 1.0, j_upper - target
    w = a - fa * (b - a) / (fb - fa) if fb != fa else b
    value = j_lower + w * (j_upper - j_lower)
    side = 0
    for k in range(int(iterations)):
        value = float(loss_at(w))
        f = value - target
        if not math.isfinite(f):
            b, fb = w, 1.0  # treat as above: the crossing lies below w
        elif f > 0:
            a, fa = w, f
            if side == -1:
                fb /= 2.0
            side = -1
        else:
            b, fb = w, f
            if side == 1:
                fa /= 2.0
            side = 1
        if f == 0:
            return w, value, k + 1
        w = a - fa * (b - a) / (fb - fa) if fb != fa else 0.5 * (a + b)
    if iterations:
        value = float(loss_at(w))
    return w, value, int(iterations) + (1 if iterations else 0)


def run_model_and_examples(data, run: RunDir, role: str, examples, batch_size, device: str = "auto"):
    """(model at the run's `role` checkpoint (theta0 | theta1), its task, the fixed train EvalSet, device):
    the first `examples` of the landscape's seeded train subset (`data`: the analyze config's data
    section; null examples: data.max_train_samples), tokenised with the run's θ1 tokenizer."""
    task = get_task(run_task(run))
    path = check_checkpoint_dir(role, run.theta0 if role == "theta0" else run.theta1)
    req = run_data_request(data, run, max_train_samples=examples, eval_batch_size=batch_size)
    dev = pick_device(str(device), 0)
    model = load_model(path)
    if model.config.num_labels != task.num_labels:
        raise AnalysisError(
            f"checkpoint {path} has {model.config.num_labels} outputs but task {task.name} "
            f"needs {task.num_labels}"
        )
    model.to(dev).eval()
    (train,) = load_eval_sets(task, req, ["train"], check_checkpoint_dir("theta1", run.theta1), dev)
    return model, task, train, dev


def path_loss_of_run(
    data, run: RunDir, examples=256, batch_size=32, threshold=None, every=1, device="auto"
) -> dict:
    """`path_loss` of a run from its files (θ0, snapshots, θ1, metrics.json's final step)."""
    snaps = open_snapshots(run, need="the path loss")
    model, task, train, _ = run_model_and_examples(data, run, "theta0", examples, batch_size, device)
    theta1 = {n: p.detach().clone() for n, p in trainable_parameters(load_model(run.theta1)).items()}
    final = run.read_metrics().get("steps") if run.metrics_json.is_file() else None
    out = path_loss(
        model, train, task, snaps, theta1, None if final is None else int(final), threshold, every
    )
    out["data"] = run_data_request(data, run, max_train_samples=examples).describe() | {"split": "train"}
    return out
