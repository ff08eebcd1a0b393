"""Reparameterisation-invariant sharpness at a point θ: the measures Dinh et al.'s (2017) rescalings
leave alone.

A function-preserving rescaling — e.g. W_Q, b_Q ← c·W_Q, c·b_Q and W_K, b_K ← W_K/c, b_K/c in one
attention layer (QKᵀ, hence the logits, unchanged) — changes the Hessian's eigenvalues and any
width measured along a fixed direction (δ1 = θ1 − θ0) without changing the model. Two measures it
leaves unchanged, both on J = the mean per-example task loss on a fixed set of examples, model in
eval mode, float32:

- **Random-direction widths** (Li et al. 2018): m seeded Gaussian directions d_k (seed, seed+1, …),
  each filter (output row of a weight matrix) rescaled to the norm of θ's filter, a 1-D tensor to
  that tensor's norm (`landscape.directions.random_directions`, normalization=filter — the
  engine's own recipe). Along each, the connected interval around t = 0 where
  J(θ + t·d_k) ≤ J(θ) + ε: the grid t = ±step, ±2·step, … ±max is walked outward until J exceeds
  the level (or is non-finite), then the crossing is bisected `bisect` times between the last
  point inside and the first outside (the end is the bracket's midpoint). ``bounded`` is false
  when a side reaches ±max (the width is then a lower bound). A rescaled filter rescales its
  direction by the same factor, so θ' + t·d'_k is the same function as θ + t·d_k at every t:
  the widths are unchanged up to float rounding. Units: t, fractions of each filter's own norm;
  ``absolute`` = t-width × ‖d_k‖ (parameter distance; ‖d_k‖ ≈ ‖θ‖ over the moved parameters).
- **Adaptive sharpness** (Kwon et al. 2021, ASAM; the elementwise ℓ∞ form of Andriushchenko et
  al. 2023): the rise of J over the box |δ_i| ≤ ρ·|θ_i|. The box scales with each weight, so a
  rescaling maps it onto itself. ``worst``: max over the box, by projected sign-gradient ascent
  from δ = 0 (the first step lands on ρ|θ|⊙sign∇J, the maximiser of the linearised rise; each
  further step adds ρ/2·|θ|⊙sign∇J(θ+δ) and clips to the box); the largest rise met — a lower
  bound of the true maximum. ``average``: the mean rise over `samples` seeded Rademacher corners
  δ = ρ|θ|⊙ξ, with its standard error. Lower = flatter.

`invariant_sharpness(...)` returns the flatness JSON's ``invariant`` object (keys below) and leaves
the model's weights at θ.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from bertviz_landscape.algebra import norm
from bertviz_landscape.contracts import work
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.parameters import is_bias_or_norm, select_parameters, trainable_parameters
from bertviz_landscape.engine.directions import Directions, random_directions
from bertviz_landscape.engine.evaluator import Evaluator
from bertviz_landscape.training.data.eval_sets import EvalSet

NORMALIZATION = "filter"  # Li et al.'s filter-normalised directions: invariant to rescaling a filter


class SharpnessError(BadInput):
    """A sharpness request that cannot be computed (draws, ε, ρ, steps)."""


def mean_loss(model: torch.nn.Module, batches: EvalSet, task) -> float:
    """J at the model's current weights: Σ per-example loss / N (eval mode, no gradient)."""
    total = 0.0
    model.eval()
    with torch.inference_mode():
        for b in batches.batches:
            work.count_pass(model, b.attention_mask)
            total += float(task.loss(model(**b.inputs()).logits.float(), b.labels, reduction="sum").double())
    return total / batches.num_examples


def loss_and_gradient(model, batches: EvalSet, task, params: Sequence[torch.nn.Parameter]):
    """(J, ∇J over `params`) at the model's current weights, eval mode, summed batch by batch."""
    grads = [torch.zeros_like(p) for p in params]
    total = 0.0
    model.eval()
    for b in batches.batches:
        work.count_pass(model, b.attention_mask, kind="train")  # forward + backward to the weights
        loss = task.loss(model(**b.inputs()).logits.float(), b.labels, reduction="sum")
        g = torch.autograd.grad(loss, list(params))
        torch._foreach_add_(grads, g)
        total += float(loss.detach().double())
    torch._foreach_div_(grads, float(batches.num_examples))
    return total / batches.num_examples, grads


def _side(evaluator: Evaluator, key: str, sign: float, step: float, t_max: float, level: float, bisect: int):
    """The end of the sublevel interval on one side of t = 0 (|t|), whether it stayed inside the grid,
    and the (t, J) points evaluated."""
    points = []
    inside, n = 0.0, 1
    while True:
        t = min(n * step, t_max)
        value = evaluator.evaluate(sign * t)[key]
        points.append((sign * t, value))
        if not (math.isfinite(value) and value <= level):
            lo, hi = inside, t
            for _ in range(bisect):
                mid = 0.5 * (lo + hi)
                v = evaluator.evaluate(sign * mid)[key]
                points.append((sign * mid, v))
                if math.isfinite(v) and v <= level:
                    lo = mid
                else:
                    hi = mid
            return 0.5 * (lo + hi), True, points
        inside = t
        if t >= t_max:
            return t_max, False, points
        n += 1


def _selector(value) -> str | tuple[str, ...]:
    return str(value) if isinstance(value, str) else tuple(str(v) for v in value)


@dataclass(frozen=True)
class InvariantRequest:
    """`analysis.invariant` as conf/analysis/flatness.yaml says it (its defaults live there only)."""

    draws: int
    seed: int
    step: float
    max: float  # the grid's end |t|
    bisect: int
    params: str | tuple[str, ...]
    bias_and_norm: str

    @classmethod
    def from_config(cls, inv: Mapping[str, Any]) -> InvariantRequest:
        return cls(
            draws=int(inv["draws"]),
            seed=int(inv["seed"]),
            step=float(inv["step"]),
            max=float(inv["max"]),
            bisect=int(inv["bisect"]),
            params=_selector(inv["params"]),
            bias_and_norm=str(inv["bias_and_norm"]),
        )


@dataclass(frozen=True)
class AdaptiveRequest:
    """`analysis.adaptive` as conf/analysis/flatness.yaml says it (its defaults live there only)."""

    rho: float
    steps: int
    samples: int
    seed: int
    params: str | tuple[str, ...]
    bias_and_norm: str

    @classmethod
    def from_config(cls, ada: Mapping[str, Any]) -> AdaptiveRequest:
        return cls(
            rho=float(ada["rho"]),
            steps=int(ada["steps"]),
            samples=int(ada["samples"]),
            seed=int(ada["seed"]),
            params=_selector(ada["params"]),
            bias_and_norm=str(ada["bias_and_norm"]),
        )


def random_direction_widths(
    model: torch.nn.Module, train: EvalSet, task, epsilon: float, req: InvariantRequest
) -> dict:
    """Widths of {J ≤ J(θ) + ε} along `draws` seeded filter-normalised directions (module docstring)."""
    draws, seed, step, t_max, bisect = req.draws, req.seed, req.step, req.max, req.bisect
    params = list(req.params) if isinstance(req.params, tuple) else req.params
    bias_and_norm, normalization = req.bias_and_norm, NORMALIZATION
    if draws < 1:
        raise SharpnessError(f"invariant.draws must be >= 1, got {draws}")
    if not epsilon > 0:
        raise SharpnessError(f"the flatness ε must be a positive loss increase, got {epsilon}")
    if not 0 < step <= t_max:
        raise SharpnessError(f"invariant.step must be in (0, invariant.max], got step={step}, max={t_max}")
    started = time.perf_counter()
    trainable = trainable_parameters(model)
    center = OrderedDict((n, p.detach().clone()) for n, p in trainable.items())
    names = select_parameters(list(trainable), params)
    split = train.name
    key = f"{split}_loss"
    widths, bounded, absolute, norms, curves = [], [], [], [], []
    center_loss, evaluations = None, 0
    try:
        for k in range(int(draws)):
            d = random_directions(center, names, False, int(seed) + k, normalization, bias_and_norm, "theta1")
            ev = Evaluator(
                model, task, center, Directions("random", d.x, None, "theta1"), [train], use_cache=False
            )
            if center_loss is None:
                center_loss = ev.evaluate(0.0)[key]
                if not math.isfinite(center_loss):
                    raise SharpnessError(f"J(θ) is not finite ({center_loss}) on the {split} examples")
            level = center_loss + float(epsilon)
            right, rb, pr = _side(ev, key, 1.0, float(step), float(t_max), level, int(bisect))
            left, lb, pl = _side(ev, key, -1.0, float(step), float(t_max), level, int(bisect))
            evaluations += ev.evaluations
            w = right + left
            dn = norm(d.x)
            widths.append(w)
            bounded.append(bool(rb and lb))
            norms.append(dn)
            absolute.append(w * dn)
            curve = sorted(pl + [(0.0, center_loss)] + pr)
            curves.append({"t": [c[0] for c in curve], "loss": [c[1] for c in curve]})
    finally:
        with torch.no_grad():
            for n, p in trainable.items():
                p.copy_(center[n])
    arr = np.asarray(widths, dtype=np.float64)
    return {
        "epsilon": float(epsilon),
        "draws": int(draws),
        "seed": int(seed),
        "normalization": normalization,
        "bias_and_norm": bias_and_norm,
        "params": [params] if isinstance(params, str) else list(params),
        "step": float(step),
        "max": float(t_max),
        "bisect": int(bisect),
        "center_loss": center_loss,
        "widths": widths,
        "bounded": bounded,
        "all_bounded": all(bounded),
        "width_mean": float(arr.mean()),
        "width_std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
        "absolute_widths": absolute,
        "absolute_width_mean": float(np.mean(absolute)),
        "direction_norms": norms,
        "curves": curves,
        "evaluations": evaluations,
        "num_examples": train.num_examples,
        "seconds": time.perf_counter() - started,
    }


def adaptive_sharpness(model: torch.nn.Module, train: EvalSet, task, req: AdaptiveRequest) -> dict:
    """Kwon et al.'s elementwise adaptive sharpness: the worst and the average rise of J over the box
    |δ_i| ≤ ρ·|θ_i| (module docstring). The weights are back at θ afterwards."""
    rho, steps, samples, seed = req.rho, req.steps, req.samples, req.seed
    params = list(req.params) if isinstance(req.params, tuple) else req.params
    bias_and_norm = req.bias_and_norm
    if not rho > 0:
        raise SharpnessError(f"adaptive.rho must be > 0, got {rho}")
    if steps < 1 or samples < 0:
        raise SharpnessError(f"adaptive.steps must be >= 1 and adaptive.samples >= 0, got {steps}, {samples}")
    if bias_and_norm not in ("include", "exclude"):
        raise SharpnessError(f"adaptive.bias_and_norm must be include or exclude, got {bias_and_norm!r}")
    started = time.perf_counter()
    trainable = trainable_parameters(model)
    names = select_parameters(list(trainable), params)
    if bias_and_norm == "exclude":
        names = [n for n in names if not is_bias_or_norm(n, trainable[n])]
    if not names:
        raise SharpnessError("adaptive sharpness moves no parameter (selection empty)")
    ps = [trainable[n] for n in names]
    theta = [p.detach().clone() for p in ps]
    bound = [rho * t.abs() for t in theta]  # the box's half-widths
    every = list(model.parameters())
    before = [p.requires_grad for p in every]
    chosen = {id(p) for p in ps}
    try:
        for p in every:
            p.requires_grad_(id(p) in chosen)
        base, grads = loss_and_gradient(model, train, task, ps)
        delta = [torch.zeros_like(t) for t in theta]
        worst, rises = -math.inf, []
        for s in range(int(steps)):
            size = 1.0 if s == 0 else 0.5
            with torch.no_grad():
                for d, g, b in zip(delta, grads, bound):
                    d.add_(size * b * torch.sign(g))
                    torch.minimum(torch.maximum(d, -b), b, out=d)
                for p, t, d in zip(ps, theta, delta):
                    p.copy_(t + d)
            value, grads = loss_and_gradient(model, train, task, ps)
            rises.append(value - base)
            worst = max(worst, value - base) if math.isfinite(value) else math.inf
        gen = torch.Generator().manual_seed(int(seed))
        average = []
        for _ in range(int(samples)):
            with torch.no_grad():
                for p, t, b in zip(ps, theta, bound):
                    xi = torch.randint(0, 2, t.shape, generator=gen).to(t.dtype).mul_(2).sub_(1)
                    p.copy_(t + b * xi.to(t.device))
            average.append(mean_loss(model, train, task) - base)
    finally:
        with torch.no_grad():
            for p, t in zip(ps, theta):
                p.copy_(t)
        for p, flag in zip(every, before):
            p.requires_grad_(flag)
    avg = np.asarray(average, dtype=np.float64)
    return {
        "rho": float(rho),
        "steps": int(steps),
        "samples": int(samples),
        "seed": int(seed),
        "params": [params] if isinstance(params, str) else list(params),
        "bias_and_norm": bias_and_norm,
        "center_loss": base,
        "worst": worst,
        "ascent_rises": rises,
        "average": float(avg.mean()) if len(avg) else None,
        "average_stderr": float(avg.std(ddof=1) / math.sqrt(len(avg))) if len(avg) > 1 else None,
        "num_parameters": int(sum(t.numel() for t in theta)),
        "num_examples": train.num_examples,
        "seconds": time.perf_counter() - started,
    }


def widths_until_bounded(
    model: torch.nn.Module, train: EvalSet, task, epsilon: float, req: InvariantRequest, cap: float | None
) -> dict:
    """`random_direction_widths`, with the search range grown until every draw's interval is bounded:
    while a side reaches ±max, max doubles (up to `cap`; the outward step scales with it, so each
    walk costs the same number of evaluations) and the widths are measured again. A width still
    reaching `cap` is reported censored (``all_bounded`` false: a lower bound, which the claims'
    Gehan rank test orders as one). ``ranges``: every max tried; ``cap``: the registered end."""
    if cap is not None and not float(cap) >= req.max:
        raise SharpnessError(f"invariant.max_cap must be >= invariant.max, got cap={cap}, max={req.max}")
    out = random_direction_widths(model, train, task, epsilon, req)
    ranges, evaluations, seconds = [req.max], out["evaluations"], out["seconds"]
    while not out["all_bounded"] and cap is not None and req.max < float(cap):
        grown = min(2.0 * req.max, float(cap))
        req = replace(req, max=grown, step=req.step * grown / req.max)
        out = random_direction_widths(model, train, task, epsilon, req)
        ranges.append(req.max)
        evaluations += out["evaluations"]
        seconds += out["seconds"]
    return out | {
        "ranges": ranges,
        "cap": None if cap is None else float(cap),
        "evaluations": evaluations,
        "seconds": seconds,
    }
