"""`analysis=basins`: do fine-tuning runs from one start share a basin? (beyond the paper; Neyshabur,
Sedghi, Zhang 2020: models fine-tuned from one pretrained start are linearly connected, models
trained from scratch are not.)

For two runs a, b that share θ0 (the same pretrained weights and head, or the same from-scratch
initialisation: `init_seed` in the demo presets; they differ in data order and dropout — ``seed``),
the straight line between their end points θ(t) = (1 − t)·θ1ᵃ + t·θ1ᵇ, t ∈ `analysis.t`, evaluated
through the landscape engine's loss (eval mode, float32, the same examples in the same order at
every t) on the run's seeded train subset and on the dev examples. The loss barrier

    B = max_t [ J(θ(t)) − ((1 − t)·J(θ1ᵃ) + t·J(θ1ᵇ)) ]

is ≥ 0 on the grid (t = 0, 1 give 0); B ≈ 0: one basin (linearly connected), B large: a ridge
between them. The two runs must share θ0 exactly (their checkpoints/init weights are compared); a
pair that does not is reported with ``shared_theta0: false`` and no barrier.

``numbers`` (per run, paired with `analysis.partner.run`, the next seed of the same arm in the demo —
each run is in two pairs, so the pairs are not independent; the claim's test is over the runs):

    barrier_train, barrier_dev    B on the train subset and on the dev examples (the registered metric:
                                  barrier_dev, lower for pretrained)
    barrier_train_t, barrier_dev_t  where on the line the barrier is reached
    endpoint_train_loss_a/_b, endpoint_dev_loss_a/_b  J at the two ends
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

import numpy as np
import torch

from bertviz_landscape.analysis.common import (
    AnalysisError,
    analysis_result,
    check_same_group,
    config_list,
    read_run,
    run_data_request,
    run_dir,
    run_task,
)
from bertviz_landscape.analysis.measures.path_loss import set_weights
from bertviz_landscape.analysis.measures.sharpness import mean_loss
from bertviz_landscape.analysis.spec import AnalysisSpec, ClaimSpec, Measure, Row
from bertviz_landscape.contracts.checkpoints import load_checkpoints
from bertviz_landscape.contracts.devices import pick_device
from bertviz_landscape.contracts.parameters import trainable_parameters
from bertviz_landscape.contracts.sections import Settings, section
from bertviz_landscape.training.data.eval_sets import load_eval_sets
from bertviz_landscape.training.data.tasks import get_task


def barrier(ts: Sequence[float], losses: Sequence[float]) -> tuple[float | None, float | None]:
    """(B, the t where it is reached): the largest rise of the loss above the straight line between its
    two ends (module docstring); (None, None) when a value is not finite or the ends are not t = 0, 1."""
    t = np.asarray(ts, dtype=np.float64)
    j = np.asarray(losses, dtype=np.float64)
    if len(t) < 2 or not np.all(np.isfinite(j)) or t[0] != 0.0 or t[-1] != 1.0:
        return None, None
    rise = j - ((1.0 - t) * j[0] + t * j[-1])
    k = int(np.argmax(rise))
    return float(rise[k]), float(t[k])


def interpolation_curve(model, task, sets, theta_a: dict, theta_b: dict, ts: Sequence[float]) -> dict:
    """{split: [J(θ(t)) for t in ts]} along θ(t) = (1 − t)θa + tθb; the model is left at θb."""
    out: dict = {"t": [float(t) for t in ts]}
    for t in ts:
        set_weights(model, {n: (1.0 - float(t)) * theta_a[n] + float(t) * theta_b[n] for n in theta_a})
        for s in sets:
            out.setdefault(f"{s.name}_loss", []).append(mean_loss(model, s, task))
    return out


def _same_theta0(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def basins_of_pair(run, partner, data, ts, max_train_samples, max_eval_samples, device="auto") -> dict:
    """The per_run entry of one pair (module docstring)."""
    started = time.perf_counter()
    ra, rb = run_dir(run), run_dir(partner, "analysis.partner.run")
    task = get_task(run_task(ra))
    if run_task(rb) != task.name:
        raise AnalysisError(f"analysis.partner.run={rb.root}: task {run_task(rb)}, not {task.name}")
    model_a, ck_a = load_checkpoints(ra.theta0, ra.theta1)
    _, ck_b = load_checkpoints(rb.theta0, rb.theta1)
    entry: dict = {"partner": str(rb.root), "t": [float(t) for t in ts]}
    entry["shared_theta0"] = _same_theta0(ck_a["theta0"].state, ck_b["theta0"].state)
    if not entry["shared_theta0"]:
        entry["note"] = (
            "the two runs start from different θ0 (set the demo's init_seed so that a seed changes only the "
            "data order and dropout): no barrier"
        )
        return entry
    dev = pick_device(device, 0)
    model_a.to(dev).eval()
    names = list(trainable_parameters(model_a))
    theta_a = {n: ck_a["theta1"].state[n].float().to(dev) for n in names}
    theta_b = {n: ck_b["theta1"].state[n].float().to(dev) for n in names}
    req = run_data_request(data, ra, max_train_samples=max_train_samples, max_eval_samples=max_eval_samples)
    sets = load_eval_sets(task, req, ["train", "dev"], ra.theta0, dev)
    entry["data"] = req.describe() | {"splits": {s.name: s.num_examples for s in sets}}
    entry["curve"] = interpolation_curve(model_a, task, sets, theta_a, theta_b, ts)
    for split in ("train", "dev"):
        b, at = barrier(entry["curve"]["t"], entry["curve"][f"{split}_loss"])
        entry[f"barrier_{split}"], entry[f"barrier_{split}_t"] = b, at
    entry["seconds"] = time.perf_counter() - started
    return entry


def basins_numbers(entry: dict) -> dict:
    curve = entry.get("curve") or {}
    nums = {k: entry.get(k) for k in ("barrier_train", "barrier_dev", "barrier_train_t", "barrier_dev_t")}
    for split in ("train", "dev"):
        values = curve.get(f"{split}_loss") or []
        nums[f"endpoint_{split}_loss_a"] = values[0] if values else None
        nums[f"endpoint_{split}_loss_b"] = values[-1] if values else None
    nums["shared_theta0"] = (
        None if entry.get("shared_theta0") is None else float(bool(entry["shared_theta0"]))
    )
    return nums


def basins(
    runs: Sequence[str | os.PathLike],
    partners: Sequence[str | os.PathLike],
    ts: Sequence[float] = tuple(np.linspace(0.0, 1.0, 9)),
    data=None,
    max_train_samples: int | None = 256,
    max_eval_samples: int | None = None,
    device: str = "auto",
) -> dict:
    """The basins analysis JSON: one pair (run, partner) per run."""
    runs, partners = list(runs), list(partners)
    if not runs or len(partners) != len(runs):
        raise AnalysisError("analysis=basins needs run=<run dir> and analysis.partner.run=<its partner run>")
    ts = [float(t) for t in ts]
    if ts != sorted(ts) or ts[0] != 0.0 or ts[-1] != 1.0 or any(not math.isfinite(t) for t in ts):
        raise AnalysisError(f"analysis.t must rise from 0 to 1 (both included), got {ts}")
    infos = [read_run(r) for r in runs]
    check_same_group(infos)
    per_run = [
        basins_of_pair(r, p, data, ts, max_train_samples, max_eval_samples, device)
        for r, p in zip(runs, partners)
    ]
    numbers = [basins_numbers(e) for e in per_run]
    scalars = [{k: v for k, v in n.items() if k in ("barrier_train", "barrier_dev")} for n in numbers]
    return analysis_result("basins", {"runs": [i.run for i in infos]}, infos, per_run, scalars, numbers)


@section
class BasinsLine(Settings):
    """`analysis.t`: the points on the line θ(t) (conf/analysis/basins.yaml)."""

    min: float = 0.0
    max: float = 1.0
    num: int = 9


@section
class BasinsPartner(Settings):
    run: str | None = None


@section
class BasinsOptions(Settings):
    """conf/analysis/basins.yaml."""

    name: str = "basins"
    t: BasinsLine = BasinsLine()
    partner: BasinsPartner = BasinsPartner()
    max_train_samples: int | None = 256
    max_eval_samples: int | None = None


def basins_from_config(cfg) -> dict:
    """The analysis JSON of an `AnalyzeRequest` for analysis=basins."""
    a = cfg.analysis
    partner = (a.get("partner") or {}).get("run")
    t = a.t
    ts = np.linspace(float(t.min), float(t.max), int(t.num)) if hasattr(t, "num") else [float(x) for x in t]
    return basins(
        config_list(cfg, "run", "runs"),
        [] if partner in (None, "") else [str(partner)],
        ts,
        cfg.data.to_dict() if cfg.get("data") else None,
        a.max_train_samples,
        a.max_eval_samples,
        str(cfg.get("device", "auto")),
    )


SPEC = AnalysisSpec(
    "basins",
    basins_from_config,
    reads=("run",),
    partner=True,  # the demo pairs each run with the next seed's run of the same arm
    rows=(
        Row("barrier_dev", "loss barrier to the next seed's θ1 (dev)"),
        Row("barrier_train", "loss barrier to the next seed's θ1 (train subset)"),
    ),
    hidden=("barrier_train_t", "barrier_dev_t", "shared_theta0"),
    figures=("basins",),
    claims=(
        ClaimSpec(
            "shared_basins",
            "Fine-tuning runs from one pretrained start share a basin; from-scratch runs do not "
            "(beyond the paper: Neyshabur et al. 2020)",
            6,
            (
                Measure(
                    "barrier_dev", -1, "loss barrier on the straight line between two seeds' θ1 (dev loss)"
                ),
                Measure("barrier_train", -1, "loss barrier between two seeds' θ1 (train subset)"),
            ),
            "the pretrained runs' barriers are lower (one basin)",
            "the from-scratch runs' barriers are lower",
            (("barrier_train", "barrier on the train subset"),),
        ),
    ),
    order=60,
    options=BasinsOptions,
)
