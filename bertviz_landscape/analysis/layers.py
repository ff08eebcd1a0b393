"""`analysis=layers`: are lower layers more invariant during fine-tuning? (Hao et al. 2019, §6)

Per layer group of the one layer map (`parameters.layer_map`: ``embeddings``, ``layer.0`` …
``layer.{L-1}``, ``pooler``, ``head``; every trainable parameter of the layer, biases and
LayerNorm included):

- **relative change** ‖θ1ˡ − θ0ˡ‖ / ‖θ0ˡ‖ and **cosine** cos(θ0ˡ, θ1ˡ);
- **1D curve** moving only that layer along its slice of δ1 = θ1 − θ0, the other layers at θ1:
  θ(α) = θ1 outside l, θ0ˡ + α·δ1ˡ in l — α = 1 is θ1, α = 0 is θ1 with layer l rolled back;
- **roll-back** of a set S of layers to θ0 (the others at θ1): each single layer, the bottom k
  and the top k layers for every k = 1 … n−1 (n layer groups), plus ``none`` (θ1) and ``all`` (θ0).

Every number goes through the landscape engine (`landscape.evaluator.Evaluator`, fixed examples,
eval mode, float32): a point that changes only layers ≥ l starts from the cached hidden states
entering l, so curves and roll-backs of upper layers cost a fraction of a forward pass. One
model load serves all layers. Roll-back weights are set exactly (the centre of the evaluator
is the rolled-back state, α = 0), not as θ1 − δ1.

JSON (bertviz-analysis/1; notes/ANALYSIS_SCHEMA.md), per_run[i]::

    "layers": ["embeddings", "layer.0", ..., "pooler", "head"],
    "relative_change": {layer: float}, "cosine": {layer: float},
    "norms": {layer: {"theta0": ‖θ0ˡ‖, "delta": ‖δ1ˡ‖, "num_parameters": int}},
    "curves": {layer: {"alpha": [float], "train_loss": [...], "train_<metric>": [...],
                       "train_error": [...], "train_loss_stderr": [...], "dev_loss": [...],
                       "dev_<metric>": [...], "dev_error": [...], ...}},
    "rollback": [{"layers": [layer, ...], "kind": "none"|"single"|"bottom_k"|"top_k"|"all",
                  "k": int|null, "train_loss", "train_loss_stderr", "dev_loss", "dev_loss_stderr",
                  "dev_<metric>", "dev_error",
                  "train_loss_change": J − J(θ1), "train_loss_change_stderr": its paired standard error,
                  "train_loss_change_exceeds_noise": bool (|change| > 2 paired stderr)}],
    "data": {...the examples...}, "evaluations": int, "seconds": float,
    "parameter_sharing": str  (only when blocks share parameters, ALBERT: what the layers can mean)

Each single-layer (and bottom/top-k) roll-back also carries, paired over the same dev examples:
``dev_error_change`` (its dev error − θ1's, primary metric), ``dev_mistake_change`` (the change in
the fraction of dev examples misclassified, = the accuracy error's change) with
``dev_mistake_change_stderr`` (standard error of the per-example differences of the 0/1 mistakes;
null for regression), and ``train_loss_change`` with its paired standard error (above).

``numbers`` (per run; the depth trends run over the layers below the pooler — embeddings, layer.0 …
layer.{L−1} — at depth 0, 1, …, L):

    rollback_depth_trend          Spearman ρ(depth, dev_error_change of the single roll-back):
                                  > 0 = rolling back a higher layer hurts more = lower layers more invariant
    rollback_train_depth_trend    the same with train_loss_change
    curve_rise_depth_trend        Spearman ρ(depth, the layer's 1D curve's rise at α = 0,
                                  J(α = 0) − J(α = 1); from the roll-back when α = 0 or 1 is off the grid)
    rollback_dev_loss_slope       the registered statistic (issue 28): the least-squares slope over depth
                                  of dev_loss_change (the continuous dev-loss rise when that one layer is
                                  rolled back; the whole dev split unless max_eval_samples): > 0 = lower
                                  layers more invariant
    cka_depth_slope               the slope over depth of CKA(θ0, θ1) of the layer's hidden states on the
                                  dev examples (analysis/cka.py; < 0: lower layers' representations
                                  change less); ``cka_<layer>`` per layer (``cka: true``)
    relative_change_depth_trend   Spearman ρ(depth, ‖Δθˡ‖/‖θ0ˡ‖): descriptive — AdamW's per-coordinate
                                  steps make the relative change nearly equal across layers
    rollback_dev_error_change_<layer>, rollback_dev_mistake_change_<layer>(_stderr),
    rollback_dev_loss_change_<layer>, cka_<layer>,
    rollback_train_loss_change_<layer>(_stderr), curve_rise_<layer>: the per-layer values
    (null when a measure is off or its layer was not selected; a trend needs >= 3 layers)

summary scalars: ``relative_change_<layer>``, ``cosine_<layer>``, ``rollback_single_<layer>_dev_error`` and
``_train_loss``, ``rollback_bottom_<k>_dev_error`` / ``_train_loss``, ``rollback_top_<k>_…``,
``rollback_none_…``, ``rollback_all_…``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from scipy.stats import spearmanr

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
from bertviz_landscape.analysis.measures.cka import layer_representations, linear_cka
from bertviz_landscape.analysis.measures.noise import exceeds_noise, paired_stderr
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.analysis.spec import AnalysisSpec, ClaimSpec, Measure, Options, Row, finite
from bertviz_landscape.contracts.checkpoints import load_checkpoints
from bertviz_landscape.contracts.devices import pick_device
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.parameters import check_layer, layer_map, shared_block_note
from bertviz_landscape.contracts.sections import Settings, free, section
from bertviz_landscape.engine import directions as dirs
from bertviz_landscape.engine.evaluator import Evaluator
from bertviz_landscape.engine.grid import Axis
from bertviz_landscape.training.data.eval_sets import load_eval_sets
from bertviz_landscape.training.data.tasks import get_task

log = logging.getLogger(__name__)

KINDS = ("none", "single", "bottom_k", "top_k", "all")


def layer_change(theta0: dict, theta1: dict, groups: OrderedDict[str, list[str]]) -> dict:
    """relative_change, cosine and norms per layer (float64 sums)."""
    rel, cos, norms = {}, {}, {}
    for layer, names in groups.items():
        a = OrderedDict((n, theta0[n]) for n in names)
        d = OrderedDict((n, theta1[n] - theta0[n]) for n in names)
        b = OrderedDict((n, theta1[n]) for n in names)
        n0, nd = dirs.norm(a), dirs.norm(d)
        rel[layer] = nd / n0 if n0 > 0 else math.nan
        cos[layer] = dirs.cosine(a, b)
        norms[layer] = {
            "theta0": n0,
            "delta": nd,
            "num_parameters": int(sum(theta0[n].numel() for n in names)),
        }
    return {"relative_change": rel, "cosine": cos, "norms": norms}


def rollback_sets(
    layers: Sequence[str], singles: Sequence[str] | None = None, spans: bool = True
) -> list[dict]:
    """The roll-back sets: none, each single layer, bottom-k and top-k for k = 1 … n−1 (unless
    `spans` is false), all."""
    n = len(layers)
    sets = [{"layers": [], "kind": "none", "k": None}]
    sets += [
        {"layers": [layer], "kind": "single", "k": None}
        for layer in (singles if singles is not None else layers)
    ]
    if spans:
        sets += [{"layers": list(layers[:k]), "kind": "bottom_k", "k": k} for k in range(1, n)]
        sets += [{"layers": list(layers[n - k :]), "kind": "top_k", "k": k} for k in range(1, n)]
    sets.append({"layers": list(layers), "kind": "all", "k": None})
    return sets


def _rolled_back(theta0: dict, theta1: dict, names: Sequence[str]) -> dict:
    """θ1 with the parameters `names` at θ0."""
    moved = set(names)
    return OrderedDict((n, theta0[n] if n in moved else theta1[n]) for n in theta1)


def _evaluator(
    model, task, center: dict, direction: OrderedDict[str, torch.Tensor], sets, device, points: int
):
    """An evaluator of J(center + α·direction). The hidden-state cache (the layers below the moved
    ones run once) pays only over several α: its prefix forward and its check against the full
    forward cost more than one full forward, so a single roll-back point goes without it."""
    recipe = dirs.Directions(
        "difference", OrderedDict((n, t.to(device)) for n, t in direction.items()), None, "theta0"
    )
    center = {k: v.to(device) for k, v in center.items()}
    return Evaluator(model, task, center, recipe, sets, use_cache=points > 1)


def _scalar_name(entry: dict) -> str:
    if entry["kind"] in ("none", "all"):
        return f"rollback_{entry['kind']}"
    if entry["kind"] == "single":
        return f"rollback_single_{entry['layers'][0]}"
    return f"rollback_{'bottom' if entry['kind'] == 'bottom_k' else 'top'}_{entry['k']}"


@section
class LayersAlpha(Settings):
    """`analysis.alpha`: the curves' α (conf/analysis/layers.yaml)."""

    min: float = -0.5
    max: float = 1.5
    num: int = 9


@section
class LayersOptions(Settings):
    """conf/analysis/layers.yaml."""

    name: str = "layers"
    alpha: LayersAlpha = LayersAlpha()
    layers: Any = free(None)  # a layer name or a list of them; None: every layer
    curves: bool = True
    cka: bool = True
    rollback: bool = True
    rollback_spans: bool = True
    max_train_samples: int | None = 256
    max_eval_samples: int | None = None


@dataclass(frozen=True)
class LayersRequest:
    """analysis=layers as conf/analyze.yaml and conf/analysis/layers.yaml say it (the defaults live
    there only): `alphas`, the curves' α values; `data`, the analyze config's data section
    (glue_dir, subsets, eval_batch_size; max_length null = the run's); `selected`, layer names for
    the curves and single roll-backs (None: every layer; an unknown name is an error listing the
    model's layers)."""

    runs: tuple[str, ...]
    alphas: tuple[float, ...]
    data: Any
    selected: tuple[str, ...] | None
    curves: bool
    rollback: bool
    rollback_spans: bool
    device: str
    progress: bool
    max_train_samples: int | None
    max_eval_samples: int | None
    cka: bool = True

    @classmethod
    def from_config(cls, cfg) -> LayersRequest:
        """From an `AnalyzeRequest` for analysis=layers."""
        a = cfg.analysis
        try:
            axis = Axis.parse("alpha", a.alpha)
        except LandscapeError as err:
            raise AnalysisError(f"analysis.alpha: {err}".replace("grid.alpha", "analysis.alpha")) from None
        selected = a.layers
        if isinstance(selected, str):
            selected = [selected]
        return cls(
            runs=tuple(config_list(cfg, "run", "runs")),
            alphas=tuple(float(x) for x in axis.coordinates),
            data=cfg.data.to_dict() if cfg.get("data") else None,
            selected=None if selected is None else tuple(str(x) for x in selected),
            curves=bool(a.curves),
            rollback=bool(a.rollback),
            rollback_spans=bool(a.rollback_spans),
            device=str(cfg.device),
            progress=bool(cfg.progress),
            max_train_samples=a.max_train_samples,
            max_eval_samples=a.max_eval_samples,
            cka=bool(a.get("cka", True)),
        )


def layers_of_run(run: str | os.PathLike, req: LayersRequest) -> dict:
    """The per_run entry of one run (keys in the module docstring)."""
    alphas, data, selected, curves, rollback = req.alphas, req.data, req.selected, req.curves, req.rollback
    spans, req_cka = req.rollback_spans, req.cka
    device, progress, max_train_samples, max_eval_samples = (
        req.device,
        req.progress,
        req.max_train_samples,
        req.max_eval_samples,
    )
    started = time.perf_counter()
    rd = run_dir(run)
    task = get_task(run_task(rd))
    req = run_data_request(data, rd, max_train_samples=max_train_samples, max_eval_samples=max_eval_samples)
    model, checkpoints = load_checkpoints(rd.theta0, rd.theta1)
    if model.config.num_labels != task.num_labels:
        raise AnalysisError(
            f"run {rd.root}: its model has {model.config.num_labels} outputs but task {task.name} needs "
            f"{task.num_labels}"
        )
    theta0, theta1 = checkpoints["theta0"].state, checkpoints["theta1"].state
    groups = layer_map(list(theta0))
    names = list(groups)
    chosen = names if selected is None else [check_layer(list(theta0), str(layer)) for layer in selected]
    entry: dict = {"layers": names, **layer_change(theta0, theta1, groups)}
    if note := shared_block_note(model.config):  # ALBERT: a block is a parameter group applied many times
        entry["parameter_sharing"] = note
        log.warning("run %s: %s", rd.root, note)

    dev = pick_device(device, 0)
    model.to(dev)
    sets = load_eval_sets(task, req, ["train", "dev"], rd.theta0, dev)
    entry["data"] = req.describe() | {"splits": {s.name: s.num_examples for s in sets}}
    delta = OrderedDict((n, theta1[n] - theta0[n]) for n in theta0)
    evaluations = 0
    if req_cka:
        entry["cka"] = representation_similarity(model, theta0, theta1, names, sets, dev)

    def point(center: dict, moved: Sequence[str], alpha_values: Sequence[float]) -> list[tuple[dict, dict]]:
        nonlocal evaluations
        ev = _evaluator(
            model, task, center, OrderedDict((n, delta[n]) for n in moved), sets, dev, len(alpha_values)
        )
        out = []
        for a in alpha_values:
            values = ev.evaluate(float(a))
            per_example = {k: v.clone() for k, v in ev.last_per_example.items()}
            per_example |= {f"{k}_correct": v.clone() for k, v in ev.last_correct.items()}
            out.append((values, per_example))
        evaluations += ev.evaluations
        return out

    todo = (len(chosen) if curves else 0) + (len(rollback_sets(names, chosen, spans)) if rollback else 0)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=todo, desc=f"layers {rd.name}", unit="set", dynamic_ncols=True)

    if curves:
        entry["curves"] = {}
        for layer in chosen:
            results = point(_rolled_back(theta0, theta1, groups[layer]), groups[layer], alphas)
            curve: dict = {"alpha": [float(a) for a in alphas]}
            for values, _ in results:
                for k, v in values.items():
                    curve.setdefault(k, []).append(v)
            entry["curves"][layer] = curve
            if bar is not None:
                bar.update()
    if rollback:
        entry["rollback"] = []
        base_losses = base_correct = None
        for spec in rollback_sets(names, chosen, spans):
            moved = [n for layer in spec["layers"] for n in groups[layer]]
            # the cache needs a direction: the rolled-back layers (none: the head, evaluated at α = 0 = θ1)
            values, per_example = point(
                _rolled_back(theta0, theta1, moved), moved or groups[names[-1]], [0.0]
            )[0]
            if spec["kind"] == "none":
                base, base_losses, base_correct = values, per_example["train"], per_example.get("dev_correct")
            change = values["train_loss"] - base["train_loss"]
            dev_change: dict = {
                "dev_error_change": values["dev_error"] - base["dev_error"],
                "dev_loss_change": values["dev_loss"] - base["dev_loss"],
            }
            if base_correct is not None:
                wrong = (~per_example["dev_correct"]).double().numpy()
                base_wrong = (~base_correct).double().numpy()
                dev_change["dev_mistake_change"] = float(wrong.mean() - base_wrong.mean())
                dev_change["dev_mistake_change_stderr"] = (
                    paired_stderr(wrong, base_wrong) if spec["kind"] != "none" else 0.0
                )
            se = (
                paired_stderr(per_example["train"].numpy(), base_losses.numpy())
                if spec["kind"] != "none"
                else 0.0
            )
            entry["rollback"].append(
                spec
                | values
                | dev_change
                | {
                    "train_loss_change": change,
                    "train_loss_change_stderr": se,
                    "train_loss_change_exceeds_noise": exceeds_noise(change, se)
                    if spec["kind"] != "none"
                    else False,
                }
            )
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    entry["evaluations"] = evaluations
    entry["seconds"] = time.perf_counter() - started
    return entry


def representation_similarity(model, theta0: dict, theta1: dict, names: list[str], sets, device) -> dict:
    """{layer: linear CKA of θ0's and θ1's hidden states} on the dev examples (analysis/cka.py), for
    the layers that have a hidden-state output (embeddings, layer.0 … layer.{L−1}). The model's
    weights are left at θ1."""
    dev = next(s for s in sets if s.name == "dev")
    below = [n for n in names if n == "embeddings" or n.startswith("layer.")]
    reps = {}
    for role, state in (("theta0", theta0), ("theta1", theta1)):
        model.load_state_dict({k: v.to(device) for k, v in state.items()}, strict=False)
        reps[role] = layer_representations(model, dev)
    return {layer: linear_cka(a, b) for layer, a, b in zip(below, reps["theta0"], reps["theta1"])}


def depth_slope(depths: Sequence[int], values: Sequence[float | None]) -> float | None:
    """The least-squares slope of value over depth (per unit of depth) over the layers with a finite
    value (>= 3 of them; else None): a continuous depth trend, unlike a rank correlation over a few
    tied values."""
    pairs = [
        (float(d), float(v)) for d, v in zip(depths, values) if v is not None and math.isfinite(float(v))
    ]
    if len(pairs) < 3:
        return None
    x = [d for d, _ in pairs]
    y = [v for _, v in pairs]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((d - mx) ** 2 for d in x)
    return sum((d - mx) * (v - my) for d, v in pairs) / sxx if sxx > 0 else None


def _scalars(entry: dict) -> dict:
    row = {f"relative_change_{layer}": v for layer, v in entry["relative_change"].items()}
    row |= {f"cosine_{layer}": v for layer, v in entry["cosine"].items()}
    for r in entry.get("rollback", []):
        name = _scalar_name(r)
        row[f"{name}_dev_error"] = r["dev_error"]
        row[f"{name}_train_loss"] = r["train_loss"]
    return row


def depth_trend(depths: Sequence[int], values: Sequence[float | None]) -> float | None:
    """Spearman ρ between depth and value over the layers that have a finite value (>= 3 of them,
    not all equal; else None)."""
    pairs = [(d, float(v)) for d, v in zip(depths, values) if v is not None and math.isfinite(float(v))]
    if len(pairs) < 3 or len({v for _, v in pairs}) < 2:
        return None
    rho = spearmanr([d for d, _ in pairs], [v for _, v in pairs]).statistic
    return float(rho) if math.isfinite(float(rho)) else None


def layers_numbers(entry: dict) -> dict:
    """The run's `numbers` (module docstring) from its per_run entry."""
    below = [layer for layer in entry["layers"] if layer == "embeddings" or layer.startswith("layer.")]
    depths = list(range(len(below)))
    singles = {r["layers"][0]: r for r in entry.get("rollback", []) if r["kind"] == "single"}
    rise = {}
    for layer, curve in (entry.get("curves") or {}).items():
        alpha = [round(float(a), 9) for a in curve["alpha"]]
        if 0.0 in alpha and 1.0 in alpha:
            rise[layer] = curve["train_loss"][alpha.index(0.0)] - curve["train_loss"][alpha.index(1.0)]
        elif layer in singles:
            rise[layer] = singles[layer]["train_loss_change"]
    nums: dict = {
        "rollback_depth_trend": depth_trend(
            depths, [singles.get(x, {}).get("dev_error_change") for x in below]
        ),
        "rollback_train_depth_trend": depth_trend(
            depths, [singles.get(x, {}).get("train_loss_change") for x in below]
        ),
        "curve_rise_depth_trend": depth_trend(depths, [rise.get(x) for x in below]),
        "relative_change_depth_trend": depth_trend(depths, [entry["relative_change"].get(x) for x in below]),
        "rollback_dev_loss_slope": depth_slope(
            depths, [singles.get(x, {}).get("dev_loss_change") for x in below]
        ),
        "cka_depth_slope": depth_slope(depths, [(entry.get("cka") or {}).get(x) for x in below]),
    }
    for layer in entry["layers"]:
        r = singles.get(layer, {})
        nums[f"rollback_dev_error_change_{layer}"] = r.get("dev_error_change")
        nums[f"rollback_dev_mistake_change_{layer}"] = r.get("dev_mistake_change")
        nums[f"rollback_dev_mistake_change_{layer}_stderr"] = r.get("dev_mistake_change_stderr")
        nums[f"rollback_train_loss_change_{layer}"] = r.get("train_loss_change")
        nums[f"rollback_train_loss_change_{layer}_stderr"] = r.get("train_loss_change_stderr")
        nums[f"curve_rise_{layer}"] = rise.get(layer)
        nums[f"rollback_dev_loss_change_{layer}"] = r.get("dev_loss_change")
        nums[f"cka_{layer}"] = (entry.get("cka") or {}).get(layer)
    return nums


def layers(runs: Sequence[str | os.PathLike], **values: Any) -> dict:
    """The layers analysis JSON for one or several runs of the same (task, init): `values` on top of
    the YAML — the analysis's keys (``alpha={"min", "max", "num"}``, ``layers=[...]``,
    ``rollback=false``, …) and the analyze config's ``data=``, ``device=``, ``progress=``."""
    top = {k: values.pop(k) for k in ("data", "device", "progress") if k in values}
    req = AnalyzeRequest(**top, runs=[str(r) for r in runs], analysis={"name": "layers", **values})
    return compute_layers(LayersRequest.from_config(req))


def compute_layers(req: LayersRequest) -> dict:
    """The layers analysis JSON of the request."""
    runs = list(req.runs)
    if not runs:
        raise AnalysisError("analysis=layers needs run=<run dir> (or runs=[...])")
    if not len(req.alphas):
        raise AnalysisError("analysis.alpha: the curves need at least one α")
    infos = [read_run(r) for r in runs]
    check_same_group(infos)
    per_run = [layers_of_run(r, req) for r in runs]
    if len({tuple(p["layers"]) for p in per_run}) > 1:
        raise AnalysisError(
            f"analysis=layers: runs {runs} have different layers; analyse each model on its own"
        )
    return analysis_result(
        "layers",
        {"runs": [i.run for i in infos]},
        infos,
        per_run,
        [_scalars(p) for p in per_run],
        [layers_numbers(p) for p in per_run],
    )


def layers_from_config(cfg) -> dict:
    return compute_layers(LayersRequest.from_config(cfg))


def _encoder_depth(name: str) -> int | None:
    if name.startswith("layer."):
        try:
            return int(name.split(".")[1])
        except ValueError:
            return None
    return None


def legacy_numbers(data: dict, per_run: dict, opts: Options) -> dict:
    """A JSON without ``numbers``: the depth trends of the relative change and of the single
    layers' roll-backs (rise of the dev error over no roll-back), over the encoder layers."""
    rel = per_run.get("relative_change") or {}
    rb = per_run.get("rollback") or []
    none = next((r for r in rb if r.get("kind") == "none"), None)
    base = finite((none or {}).get("dev_error"))
    singles = [
        (d, float(r["dev_error"]) - (base or 0.0))
        for r in rb
        if r.get("kind") == "single"
        and len(r.get("layers") or []) == 1
        and (d := _encoder_depth(r["layers"][0])) is not None
        and finite(r.get("dev_error")) is not None
    ]
    changes = [
        (d, float(v))
        for k, v in rel.items()
        if (d := _encoder_depth(k)) is not None and finite(v) is not None
    ]
    return {
        "relative_change_depth_trend": _pair_trend(changes),
        "rollback_depth_trend": _pair_trend(singles),
    }


def _pair_trend(pairs: list[tuple[int, float]]) -> float | None:
    """Spearman ρ of (depth, value) pairs: >= 3 pairs with at least two distinct values, else None."""
    if len(pairs) < 3:
        return None
    x, y = zip(*pairs)
    if len(set(y)) < 2:
        return None
    return finite(spearmanr(x, y).statistic)


SPEC = AnalysisSpec(
    "layers",
    layers_from_config,
    reads=("run",),
    rows=(
        Row("rollback_dev_loss_slope", "roll-back dev-loss change, slope over depth (per layer)"),
        Row("cka_depth_slope", "CKA(θ0, θ1) of the hidden states, slope over depth (per layer)"),
        Row("rollback_depth_trend", "roll-back depth trend (Spearman ρ)"),
        Row("curve_rise_depth_trend", "per-layer curve rise depth trend (Spearman ρ)"),
        Row("relative_change_depth_trend", "relative-change depth trend (Spearman ρ; AdamW caveat)"),
    ),
    figures=("layers",),
    claims=(
        ClaimSpec(
            "lower_layers_invariant",
            "Lower layers of the pretrained model are more invariant during fine-tuning",
            5,
            (
                Measure(
                    "rollback_dev_loss_slope",
                    +1,
                    "least-squares slope over encoder depth of the dev-loss rise when that one layer is "
                    "rolled back to θ0 (continuous, the whole dev set)",
                ),
                Measure(
                    "rollback_depth_trend",
                    +1,
                    "Spearman ρ(encoder depth, rise of dev error when that one layer is rolled back to θ0)",
                ),
                Measure(
                    "curve_rise_depth_trend",
                    +1,
                    "Spearman ρ(encoder depth, the per-layer curve's rise at α = 0)",
                ),
                Measure(
                    "relative_change_depth_trend",
                    +1,
                    "Spearman ρ(encoder depth, relative change ‖θ1ˡ−θ0ˡ‖/‖θ0ˡ‖) (fallback: AdamW makes it "
                    "nearly equal across layers)",
                    fallback=True,
                ),
            ),
            "lower layers are more invariant in the pretrained runs than in the from-scratch control",
            "the from-scratch control shows the stronger depth trend",
            (
                (
                    "cka_depth_slope",
                    "slope over depth of CKA(θ0, θ1) of the hidden states (< 0: lower layers change less)",
                ),
                ("rollback_depth_trend", "dev-error roll-back depth trend (Spearman ρ; descriptive)"),
                ("relative_change_depth_trend", "relative-change depth trend (descriptive)"),
            ),
        ),
    ),
    legacy=legacy_numbers,
    order=40,
    options=LayersOptions,
)
