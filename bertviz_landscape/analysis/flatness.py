"""`analysis=flatness`: how wide the optimum is, from a surface (and, with `hessian.enabled`, its
curvature from the checkpoint: analysis/hessian.py).

Around the centre c (θ1: (1, 0) on the paper's axes, (0, 0) for surfaces centred on θ1; or
`analysis.center`), with J = the surface's `key` and J_c = J(c):

- ``width``: along each axis through c, the length of the interval around c where
  J ≤ J_c + ε (the basin's connected interval; its ends found by linear interpolation between
  the first grid points outside it). ``units_delta1``: in units of ‖δ1‖ (β lengths are
  converted with ‖δ2‖/‖δ1‖); ``absolute``: the parameter-space length (× ‖δ1‖, or × ‖δ2‖ on y).
  ``bounded``: false when the interval reaches the grid's edge (the width is then a lower
  bound). A non-finite value ends the interval at the last finite point.
- ``area`` (2D): the area of the sublevel set's connected component containing c
  ({J ≤ J_c + ε}, grid points counted × the cell area), ``absolute_sq`` in parameter space
  (× ‖δ1‖‖δ2‖ sin∠(δ1, δ2)), ``units_delta1_sq`` = absolute / ‖δ1‖².
- ``scale``: ‖δ1‖, ‖δ2‖, ‖θ0‖ and ‖θ1‖ over the moved parameters — flatness in units of ‖δ1‖
  compares models only when their weights have comparable scale; both are reported.
- ``noise``: J_c's standard error (the surface's ``<key>_stderr``) and, per ε, whether ε exceeds
  2 × the (unpaired, conservative) standard error of a difference of two points.
- ``matched_train_loss`` (with `analysis.matched_train_loss` = a loss L): the first α ≥ 0 on the
  paper axis (β = 0 row) where J ≤ L, and the widths along x around that point — so a run that
  ends at a lower training loss is also compared where the other ends.

A run that did not beat its majority baseline is flagged (common.py): its wide "basin" is the
constant-predictor plateau.

Measured at the run's θ1 (needs run=; on `analysis.examples` of the landscape's seeded train
subset, eval mode; analysis/sharpness.py, analysis/path_loss.py):

- ``invariant`` (`analysis.invariant.enabled`): widths of {J ≤ J(θ1) + ε} along m seeded
  filter-normalised random directions (Li et al.), ε = `analysis.epsilon`;
- ``adaptive`` (`analysis.adaptive.enabled`): Kwon et al.'s elementwise adaptive sharpness;
- ``matched`` (`analysis.matched.run` = the scratch run of the comparison): the target
  J_scratch(θ1_scratch) on the same examples, this run's path loss (θ0, every snapshot, θ1), the two
  recorded points that bracket its first crossing of the target, and the point between them where J
  equals the target: the path between two recorded points is taken as the straight segment of their
  weights and its w found by regula falsi (`matched.refine` evaluations), the matched step
  s_lower + w·(s_upper − s_lower); there (with `matched.invariant`) the random-direction widths;
- every random-direction width grows its range until bounded: a draw reaching ±`invariant.max` is
  measured again on a doubled range, up to `invariant.max_cap`; beyond, it is reported censored
  (``*_bounded`` 0.0: a lower bound, ordered as one by the claims' Gehan rank test);
- ``train_loss_theta1``: J(θ1) on those examples.

``numbers`` (the per-run quantities a claim decides on; null when not measured), ε = `analysis.epsilon`:

    invariant_width              mean width over the m random directions (filter-normalised units t)
    invariant_width_std          their standard deviation (ddof = 1; null for m = 1)
    invariant_width_bounded      1.0 when every draw's interval ended inside ±invariant.max, else 0.0
    invariant_width_abs          mean width in parameter distance (t-width × ‖d_k‖)
    adaptive_sharpness           worst rise of J over |δ_i| ≤ ρ|θ_i| (lower = flatter)
    adaptive_sharpness_average   mean rise over Rademacher corners of that box
    width_delta1                 width along δ1 around θ1 in units of ‖δ1‖ (descriptive: not invariant)
    width_delta1_bounded         1.0 / 0.0: the δ1 interval ended inside the grid
    width_abs                    that width in parameter distance (× ‖δ1‖)
    width_rel_theta1             width_abs / ‖θ1‖ (over the moved parameters)
    hessian_top_eig              λ1 of H (descriptive: not invariant)
    hessian_top_eig_normalised   λ1 of |θ|⊙H⊙|θ| (invariant; analysis/hessian.py)
    hessian_trace, hessian_trace_normalised
    train_loss_theta1            J(θ1) on the measures' examples (else the surface's value at θ1)
    matched_loss_step            the (interpolated) step of this run's path where its J equals the
                                 matched run's J(θ1) (null: never, or no matched run)
    matched_target_loss          that target
    matched_loss_at_point        J at the matched point (equals the target up to the refinement)
    invariant_width_matched      invariant_width at the matched point (wider optima's registered metric)
    invariant_width_matched_bounded  1.0 when bounded inside invariant.max_cap, else 0.0 (censored)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertviz_landscape.analysis.common import (
    AnalysisError,
    analysis_result,
    check_same_group,
    check_surface_matches_run,
    config_list,
    load_surface_checked,
    open_snapshots,
    read_run,
    require_key,
    run_dir,
    surface_input,
    surface_run,
    unknown_run,
)
from bertviz_landscape.analysis.measures import hessian
from bertviz_landscape.analysis.measures.hessian import HessianRequest
from bertviz_landscape.analysis.measures.noise import exceeds_noise, unpaired_stderr
from bertviz_landscape.analysis.measures.path_loss import (
    matched_bracket,
    matched_point,
    path_loss_of_run,
    run_model_and_examples,
    set_weights,
)
from bertviz_landscape.analysis.measures.sharpness import (
    AdaptiveRequest,
    InvariantRequest,
    adaptive_sharpness,
    mean_loss,
    widths_until_bounded,
)
from bertviz_landscape.analysis.spec import (
    AnalysisSpec,
    ClaimSpec,
    Measure,
    Options,
    Row,
    finite,
    summary_mean,
)
from bertviz_landscape.analysis.trajectory import read_weights, surface_direction_file
from bertviz_landscape.contracts.h5file import open_self_contained
from bertviz_landscape.contracts.parameters import trainable_parameters
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.sections import Settings, free, section


def _crossing(c0: float, v0: float, c1: float, v1: float, level: float) -> float:
    """Where the segment (c0, v0)–(c1, v1) reaches `level` (v0 ≤ level < v1), linearly."""
    if not math.isfinite(v1):
        return c0
    return c0 + (level - v0) / (v1 - v0) * (c1 - c0)


def interval_width(coords: np.ndarray, values: np.ndarray, center: float, level: float) -> dict:
    """The connected interval around `center` where values ≤ level (linear between grid points).

    `center` may lie between grid points (values there by linear interpolation). Returns
    {"left", "right", "width", "bounded"}; width None when the centre itself is above the level.
    """
    x = np.asarray(coords, dtype=np.float64)
    z = np.asarray(values, dtype=np.float64)
    zc = float(np.interp(center, x, z))
    if not math.isfinite(zc) or zc > level:
        return {"left": None, "right": None, "width": None, "bounded": None}
    bounded = True
    right = None
    for i in range(int(np.searchsorted(x, center, side="right")), len(x)):
        prev_c, prev_v = (center, zc) if i == 0 or x[i - 1] < center else (x[i - 1], z[i - 1])
        if not (z[i] <= level):  # above the level, or non-finite
            right = _crossing(prev_c, prev_v, x[i], z[i], level)
            break
    if right is None:
        right, bounded = float(x[-1]), False
    left = None
    for i in range(int(np.searchsorted(x, center, side="left")) - 1, -1, -1):
        prev_c, prev_v = (center, zc) if i == len(x) - 1 or x[i + 1] > center else (x[i + 1], z[i + 1])
        if not (z[i] <= level):
            left = _crossing(prev_c, prev_v, x[i], z[i], level)
            break
    if left is None:
        left, bounded = float(x[0]), False
    return {"left": float(left), "right": float(right), "width": float(right - left), "bounded": bounded}


def basin_area(surface_values: np.ndarray, j0: int, i0: int, level: float) -> tuple[int | None, bool | None]:
    """(grid points in the connected component of {Z ≤ level} containing [j0, i0], whether it
    touches the grid's edge) — 4-connectivity (scipy.ndimage.label). (None, None) when the
    centre itself is not in the set (a non-finite loss there): no basin is measured, not a
    zero-area one."""
    from scipy import ndimage

    z = np.asarray(surface_values, dtype=np.float64)
    inside = np.isfinite(z) & (z <= level)
    if not inside[j0, i0]:
        return None, None
    labels, _ = ndimage.label(inside)
    component = labels == labels[j0, i0]
    edge = bool(
        component[0, :].any() or component[-1, :].any() or component[:, 0].any() or component[:, -1].any()
    )
    return int(component.sum()), edge


def _grid_index(coords: np.ndarray, value: float, axis: str, path) -> int:
    i = int(np.argmin(np.abs(coords - value)))
    if not np.isclose(coords[i], value, atol=1e-9):
        raise AnalysisError(
            f"surface {path}: the centre's {axis} = {value:g} is not a grid coordinate "
            f"({axis} grid: {coords.min():g} … {coords.max():g}, {len(coords)} points); set analysis.center"
        )
    return i


def default_center(surface) -> tuple[float, float]:
    """θ1 on the surface: (1, 0) for axes centred on θ0 (the paper's), (0, 0) for axes centred on θ1."""
    center = (surface.meta.get("directions") or {}).get("center", "theta0")
    return (1.0, 0.0) if center == "theta0" else (0.0, 0.0)


def weight_norms(surface, names_from: Path | None) -> dict:
    """‖θ0‖, ‖θ1‖ over the direction file's parameters (the moved ones), from the surface's checkpoints."""
    out = {"norm_theta0": None, "norm_theta1": None}
    checkpoints = surface.meta.get("checkpoints") or {}
    if names_from is None or not Path(names_from).is_file():
        return out
    with open_self_contained(names_from, "direction file") as f:  # nothing outside the file is read
        names = list(f["xdirection"].keys())
    for role in ("theta0", "theta1"):
        path = (checkpoints.get(role) or {}).get("path")
        if path and Path(path).is_dir():
            w = read_weights(path, names)
            out[f"norm_{role}"] = math.sqrt(sum(float(t.double().pow(2).sum()) for t in w.values()))
    return out


def flatness_of_surface(
    surface,
    path,
    key: str = "train_loss",
    epsilons: Sequence[float] = (0.01, 0.05, 0.1, 0.5),
    center: Sequence[float] | None = None,
    matched_train_loss: float | None = None,
) -> dict:
    """Widths, areas, scale and noise of one surface (see the module docstring)."""
    z = require_key(surface, path, key, "analysis.key")
    d = surface.meta.get("directions") or {}
    n1 = d.get("norm_x")
    n2 = d.get("norm_y") if surface.two_d else None
    if n1 is None or not n1 > 0:
        raise AnalysisError(
            f"surface {path} records no ‖δ1‖ (meta directions.norm_x): cannot give widths in parameter "
            "distance"
        )
    cos = d.get("cosine_xy")
    sin = math.sqrt(max(1.0 - float(cos) ** 2, 0.0)) if cos is not None and math.isfinite(float(cos)) else 1.0
    ca, cb = (list(center) + [0.0])[:2] if center is not None else default_center(surface)
    i0 = _grid_index(surface.x, ca, "α", path)
    j0 = _grid_index(surface.y, cb, "β", path) if surface.two_d else None
    zc = float(z[j0, i0]) if surface.two_d else float(z[i0])
    se_key = f"{key}_stderr"
    se = None
    if se_key in surface:
        se_arr = np.asarray(surface[se_key], dtype=np.float64)
        se = float(se_arr[j0, i0]) if surface.two_d else float(se_arr[i0])
    row = z[j0, :] if surface.two_d else z
    width: dict = {"x": {}, "y": {} if surface.two_d else None}
    area: dict = {} if surface.two_d else None
    noise = {
        "center_value": zc,
        "center_stderr": se,
        "difference_stderr": unpaired_stderr(se, se) if se is not None else None,
        "eps_exceeds_noise": {},
    }
    for eps in epsilons:
        k = f"{eps:g}"
        level = zc + float(eps)
        wx = interval_width(surface.x, row, ca, level)
        width["x"][k] = wx | {
            "units_delta1": wx["width"],
            "absolute": None if wx["width"] is None else wx["width"] * n1,
        }
        if surface.two_d:
            wy = interval_width(surface.y, z[:, i0], cb, level)
            u = None if wy["width"] is None else wy["width"] * (n2 / n1)
            width["y"][k] = wy | {
                "units_delta1": u,
                "absolute": None if wy["width"] is None else wy["width"] * n2,
            }
            count, edge = basin_area(z, j0, i0, level)
            dx = float(np.mean(np.diff(surface.x))) if len(surface.x) > 1 else math.nan
            dy = float(np.mean(np.diff(surface.y))) if len(surface.y) > 1 else math.nan
            absolute = None if count is None else count * dx * dy * n1 * n2 * sin
            area[k] = {
                "points": count,
                "grid_fraction": None if count is None else count / z.size,
                "bounded": None if edge is None else not edge,
                "units_delta1_sq": None if absolute is None else absolute / n1**2,
                "absolute_sq": absolute,
            }
        noise["eps_exceeds_noise"][k] = (
            exceeds_noise(float(eps), noise["difference_stderr"]) if se is not None else None
        )
    out = {
        "key": key,
        "center": [ca, cb] if surface.two_d else [ca],
        "width": width,
        "area": area,
        "scale": {"norm_delta1": n1, "norm_delta2": n2, "cosine_delta1_delta2": cos},
        "noise": noise,
        "matched_train_loss": None,
        "hessian": None,
    }
    if matched_train_loss is not None:
        out["matched_train_loss"] = matched_width(surface.x, row, float(matched_train_loss), epsilons, n1)
    return out


def matched_width(
    x: np.ndarray, row: np.ndarray, target: float, epsilons: Sequence[float], norm_delta1: float
) -> dict:
    """The first α ≥ 0 along the paper axis where J ≤ target (linear between grid points), and the
    widths {J ≤ target + ε} around it."""
    x, row = np.asarray(x, dtype=np.float64), np.asarray(row, dtype=np.float64)
    start = int(np.searchsorted(x, 0.0, side="left"))
    alpha = None
    for i in range(start, len(x)):
        if np.isfinite(row[i]) and row[i] <= target:
            if i > start and np.isfinite(row[i - 1]) and row[i - 1] > target:
                alpha = _crossing(x[i], row[i], x[i - 1], row[i - 1], target)
            else:
                alpha = float(x[i])
            break
    out = {"target": target, "alpha": alpha, "width": {"x": {}}}
    if alpha is None:
        out["note"] = "the training loss never reaches the target on the paper axis"
        return out
    for eps in epsilons:
        w = interval_width(x, row, alpha, target + float(eps))
        out["width"]["x"][f"{eps:g}"] = w | {
            "units_delta1": w["width"],
            "absolute": None if w["width"] is None else w["width"] * norm_delta1,
        }
    return out


@section
class HessianDensity(Settings):
    iterations: int = 0
    runs: int = 1


@section
class HessianOptions(Settings):
    """`analysis.hessian` (conf/analysis/flatness.yaml)."""

    enabled: bool = False
    k: int = 5
    tol: float = 1.0e-3
    max_iter: int = 100
    ncv: int | None = None
    samples: int = 50
    num_examples: int | None = 64
    batch_size: int = 32
    params: Any = free("all")
    bias_and_norm: str = "include"
    hvp: str = "double_backward"
    seed: int = 0
    normalised: bool = True
    density: HessianDensity = HessianDensity()
    groups: bool = False


@section
class InvariantOptions(Settings):
    """`analysis.invariant` (conf/analysis/flatness.yaml)."""

    enabled: bool = False
    draws: int = 5
    seed: int = 0
    step: float = 0.05
    max: float = 1.0
    max_cap: float | None = 8.0
    bisect: int = 6
    params: Any = free("all")
    bias_and_norm: str = "exclude"


@section
class AdaptiveOptions(Settings):
    """`analysis.adaptive` (conf/analysis/flatness.yaml)."""

    enabled: bool = False
    rho: float = 0.005
    steps: int = 3
    samples: int = 5
    seed: int = 0
    params: Any = free("all")
    bias_and_norm: str = "exclude"


@section
class MatchedOptions(Settings):
    """`analysis.matched` (conf/analysis/flatness.yaml)."""

    run: str | None = None
    invariant: bool = True
    refine: int = 8


@section
class FlatnessOptions(Settings):
    """conf/analysis/flatness.yaml."""

    name: str = "flatness"
    key: str = "train_loss"
    center: Any = free(None)  # (α, β) of the grid point; None: θ1
    epsilons: tuple[float, ...] = (0.01, 0.05, 0.1, 0.5)
    epsilon: float = 0.1
    matched_train_loss: float | None = None
    hessian: HessianOptions = HessianOptions()
    examples: int | None = 256
    batch_size: int = 32
    invariant: InvariantOptions = InvariantOptions()
    adaptive: AdaptiveOptions = AdaptiveOptions()
    matched: MatchedOptions = MatchedOptions()


def hessian_entry(cfg, run) -> dict | None:
    """The Hessian numbers (analysis/hessian.py, `hessian_entry(cfg, run_dir)`) when enabled."""
    if cfg is None or not bool((cfg.analysis.get("hessian") or {}).get("enabled", False)):
        return None
    if run is None:
        raise AnalysisError("analysis.hessian.enabled needs the run whose θ1 it measures: set run=<run dir>")
    return hessian.hessian_entry(cfg, run)


def _same_examples(a, b) -> bool:
    return len(a.batches) == len(b.batches) and all(
        torch.equal(x.input_ids.cpu(), y.input_ids.cpu()) and torch.equal(x.labels.cpu(), y.labels.cpu())
        for x, y in zip(a.batches, b.batches)
    )


def _section(name: str, values: dict) -> Any:
    """conf/analysis/flatness.yaml's section `name` with `values` (its key names) on top."""
    return FlatnessOptions(**{name: values})[name]


def hessian_request(**values: Any) -> HessianRequest:
    """The `hessian` section as a request (``k=``, ``samples=``, ``density={"iterations": 8}``, …)."""
    return HessianRequest.from_config(_section("hessian", values))


def invariant_request(**values: Any) -> InvariantRequest:
    """The `invariant` section as a request (``draws=``, ``step=``, ``max=``, …)."""
    return InvariantRequest.from_config(_section("invariant", values))


def adaptive_request(**values: Any) -> AdaptiveRequest:
    """The `adaptive` section as a request (``rho=``, ``steps=``, ``samples=``, …)."""
    return AdaptiveRequest.from_config(_section("adaptive", values))


def _widths(model, train, task, eps: float, inv) -> dict:
    """The random-direction widths, the range grown until bounded up to `invariant.max_cap`."""
    cap = inv.get("max_cap")
    return widths_until_bounded(
        model, train, task, eps, InvariantRequest.from_config(inv), None if cap is None else float(cap)
    )


def _path_delta(rd: RunDir, curve: dict, index: int, names: list[str], theta0: dict, theta1: dict) -> dict:
    """δ = θ − θ0 (float32) of the path-loss curve's point `index` (θ0, a snapshot or θ1)."""
    source, step = curve["source"][index], curve["steps"][index]
    if source == "theta0":
        return {n: torch.zeros_like(theta0[n]) for n in names}
    if source == "theta1":
        return {n: theta1[n] - theta0[n] for n in names}
    delta = open_snapshots(rd, need="the matched-loss point").delta(step, names)
    return {n: delta[n].float().to(theta0[n].device) for n in names}


def matched_measure(
    model, train, task, data, rd: RunDir, a, curve: dict, target: float, eps, inv, mat, device: str
) -> dict:
    """The run measured where its own path's eval-mode training loss equals `target` (the matched
    scratch run's J(θ1)): the path-loss curve's first crossing of the target is bracketed by two
    recorded points, the path between them taken as the straight segment θ(w) of their weights, and
    w found by regula falsi (`matched.refine` loss evaluations) so that J(θ(w)) = target; the
    matched step is s_lower + w·(s_upper − s_lower). There, the random-direction widths (`inv`,
    grown until bounded up to `invariant.max_cap`). The model's weights are left at θ1."""
    bracket = matched_bracket(curve["steps"], curve["loss"], target)
    out: dict = {
        "target_loss": target,
        "path_loss": curve,
        "step": None if bracket is None else bracket["upper"]["step"],  # the first recorded step at or below
        "step_interpolated": None,
        "loss_at_point": None,
        "bracket": bracket,
        "invariant": None,
    }
    if bracket is None:
        out["note"] = "this run's path never reaches the matched run's J(θ1)"
        return out
    names = list(trainable_parameters(model))
    theta1 = {n: p.detach().clone() for n, p in trainable_parameters(model).items()}
    m0, *_ = run_model_and_examples(data, rd, "theta0", a.get("examples"), a.get("batch_size"), device)
    theta0 = {n: p.detach().to(theta1[n].device) for n, p in trainable_parameters(m0).items()}
    upper = _path_delta(rd, curve, bracket["upper"]["index"], names, theta0, theta1)
    try:
        if bracket["lower"] is None:
            w, value = 1.0, bracket["upper"]["loss"]
            set_weights(model, {n: theta0[n] + upper[n] for n in names})
        else:
            lower = _path_delta(rd, curve, bracket["lower"]["index"], names, theta0, theta1)

            def loss_at(w: float) -> float:
                set_weights(model, {n: theta0[n] + lower[n] + w * (upper[n] - lower[n]) for n in names})
                return mean_loss(model, train, task)

            w, value, _ = matched_point(
                loss_at, bracket["lower"]["loss"], bracket["upper"]["loss"], target, int(mat.get("refine", 8))
            )
            set_weights(model, {n: theta0[n] + lower[n] + w * (upper[n] - lower[n]) for n in names})
        s0 = bracket["upper"]["step"] if bracket["lower"] is None else bracket["lower"]["step"]
        out["step_interpolated"] = s0 + w * (bracket["upper"]["step"] - s0)
        out["loss_at_point"] = value
        if inv is not None and mat.get("invariant", True):
            out["invariant"] = _widths(model, train, task, eps, inv)
            out["invariant"]["step"] = out["step_interpolated"]
    finally:
        set_weights(model, theta1)
    return out


def run_measures(cfg, rd: RunDir | None) -> dict:
    """The measures at θ1 that evaluate the model (module docstring): invariant, adaptive, matched,
    train_loss_theta1. Empty when none is enabled."""
    if cfg is None:
        return {}
    a = cfg.analysis
    inv, ada, mat = a.get("invariant") or {}, a.get("adaptive") or {}, a.get("matched") or {}
    wanted = bool(inv.get("enabled")) or bool(ada.get("enabled")) or mat.get("run") not in (None, "")
    if not wanted:
        return {}
    if rd is None:
        raise AnalysisError(
            "analysis.invariant / adaptive / matched need the run whose θ1 they measure: set run=<run dir>"
        )
    eps = float(a.get("epsilon", 0.1))
    data, device = cfg.get("data"), str(cfg.get("device", "auto"))
    model, task, train, _ = run_model_and_examples(
        data, rd, "theta1", a.get("examples"), a.get("batch_size"), device
    )
    out: dict = {"train_loss_theta1": mean_loss(model, train, task), "invariant": None, "adaptive": None}
    if inv.get("enabled"):
        out["invariant"] = _widths(model, train, task, eps, inv)
    if ada.get("enabled"):
        out["adaptive"] = adaptive_sharpness(model, train, task, AdaptiveRequest.from_config(ada))
    out["matched"] = None
    if mat.get("run") not in (None, ""):
        other = run_dir(mat.run, "analysis.matched.run")
        om, otask, otrain, _ = run_model_and_examples(
            data, other, "theta1", a.get("examples"), a.get("batch_size"), device
        )
        if otask.name != task.name or not _same_examples(train, otrain):
            raise AnalysisError(
                f"analysis.matched.run={other.root}: not the same task and examples as run {rd.root} "
                f"({otask.name} vs {task.name}); match runs of one task, tokenizer and data subset"
            )
        target = mean_loss(om, otrain, otask)
        curve = path_loss_of_run(data, rd, a.get("examples"), a.get("batch_size"), None, 1, device)
        out["matched"] = matched_measure(
            model,
            train,
            task,
            data,
            rd,
            a,
            curve,
            target,
            eps,
            inv if inv.get("enabled") else None,
            mat,
            device,
        )
        out["matched"]["run"] = str(other.root)
    return out


def flatness_numbers(entry: dict, eps: float) -> dict:
    """The run's `numbers` from its per_run entry (names in the module docstring)."""
    k = f"{eps:g}"
    nums: dict = {}
    inv = entry.get("invariant") or {}
    nums["invariant_width"] = inv.get("width_mean")
    nums["invariant_width_std"] = inv.get("width_std")
    nums["invariant_width_bounded"] = None if not inv else float(bool(inv.get("all_bounded")))
    nums["invariant_width_abs"] = inv.get("absolute_width_mean")
    ada = entry.get("adaptive") or {}
    nums["adaptive_sharpness"] = ada.get("worst")
    nums["adaptive_sharpness_average"] = ada.get("average")
    wx = ((entry.get("width") or {}).get("x") or {}).get(k) or {}
    nums["width_delta1"] = wx.get("units_delta1")
    nums["width_delta1_bounded"] = None if wx.get("bounded") is None else float(bool(wx["bounded"]))
    nums["width_abs"] = wx.get("absolute")
    norm1 = (entry.get("scale") or {}).get("norm_theta1")
    nums["width_rel_theta1"] = wx["absolute"] / norm1 if wx.get("absolute") is not None and norm1 else None
    h = entry.get("hessian") or {}
    nums["hessian_top_eig"] = (h.get("top_eigenvalues") or [None])[0]
    nums["hessian_top_eig_normalised"] = ((h.get("normalised") or {}).get("top_eigenvalues") or [None])[0]
    nums["hessian_trace"] = h.get("trace")
    nums["hessian_trace_normalised"] = (h.get("normalised") or {}).get("trace")
    loss = entry.get("train_loss_theta1")
    if loss is None and entry.get("key") == "train_loss":
        loss = (entry.get("noise") or {}).get("center_value")
    nums["train_loss_theta1"] = loss
    m = entry.get("matched") or {}
    nums["matched_loss_step"] = m.get("step_interpolated", m.get("step"))
    nums["matched_target_loss"] = m.get("target_loss")
    nums["matched_loss_at_point"] = m.get("loss_at_point")
    minv = m.get("invariant") or {}
    nums["invariant_width_matched"] = minv.get("width_mean")
    nums["invariant_width_matched_bounded"] = None if not minv else float(bool(minv.get("all_bounded")))
    return nums


def flatness(
    surfaces: Sequence[str | os.PathLike] = (),
    runs: Sequence[str | os.PathLike] = (),
    key: str = "train_loss",
    epsilons: Sequence[float] = (0.01, 0.05, 0.1, 0.5),
    center: Sequence[float] | None = None,
    matched_train_loss: float | None = None,
    cfg=None,
) -> dict:
    """The flatness analysis JSON (one surface per run; `cfg`, an `AnalyzeRequest`, only for the
    measures at θ1)."""
    surfaces, runs = list(surfaces), list(runs)
    a = cfg.analysis if cfg is not None else {}
    at_theta1 = cfg is not None and any(
        bool((a.get(m) or {}).get("enabled", False)) for m in ("hessian", "invariant", "adaptive")
    )
    if not surfaces and not (runs and at_theta1):
        raise AnalysisError(
            "analysis=flatness needs surface=<surface .h5> (or surfaces=[...]), or run= with "
            "analysis.hessian / invariant / adaptive enabled"
        )
    if surfaces and runs and len(runs) != len(surfaces):
        raise AnalysisError(
            f"analysis=flatness: {len(runs)} runs but {len(surfaces)} surfaces (one surface per run)"
        )
    epsilons = [float(e) for e in epsilons]
    eps = float(a.get("epsilon", epsilons[0] if epsilons else 0.1)) if cfg is not None else None
    if eps is not None and eps not in epsilons:
        epsilons.append(eps)
    if any(not e > 0 for e in epsilons):
        raise AnalysisError(
            f"analysis.epsilons / analysis.epsilon must be positive loss increases, got {epsilons}"
        )
    infos, per_run, inputs, scalars, numbers = [], [], [], [], []
    for i in range(max(len(surfaces), len(runs))):
        path = surfaces[i] if surfaces else None
        surface = load_surface_checked(path) if path is not None else None
        run = runs[i] if runs else (surface_run(surface) if surface is not None else None)
        rd = run_dir(run) if run is not None else None
        if surface is not None and rd is not None:
            check_surface_matches_run(surface, path, rd)
        info = (
            read_run(run)
            if run is not None
            else unknown_run(surface.meta.get("task"), surface.meta.get("primary_metric"))
        )
        if surface is not None:
            entry = flatness_of_surface(surface, path, key, epsilons, center, matched_train_loss)

            try:
                dfile = surface_direction_file(surface, path)
            except AnalysisError:
                dfile = None
            entry["scale"] |= weight_norms(surface, dfile)
            inputs.append(surface_input(surface, path))
        else:
            entry = {
                "key": key,
                "center": None,
                "width": None,
                "area": None,
                "scale": None,
                "noise": None,
                "matched_train_loss": None,
                "hessian": None,
            }
        entry["hessian"] = hessian_entry(cfg, rd)
        entry |= run_measures(cfg, rd)
        numbers.append(flatness_numbers(entry, eps if eps is not None else epsilons[0]))
        infos.append(info)
        per_run.append(entry)
        row: dict = {}
        for k in (f"{e:g}" for e in epsilons):
            if entry["width"]:
                row[f"width_x_{k}"] = entry["width"]["x"][k]["units_delta1"]
                row[f"width_x_{k}_absolute"] = entry["width"]["x"][k]["absolute"]
                if entry["width"]["y"]:
                    row[f"width_y_{k}"] = entry["width"]["y"][k]["units_delta1"]
            if entry["area"]:
                row[f"area_{k}"] = entry["area"][k]["units_delta1_sq"]
                row[f"area_{k}_absolute"] = entry["area"][k]["absolute_sq"]
            m = entry.get("matched_train_loss")
            if m and m.get("alpha") is not None:
                row[f"matched_width_x_{k}"] = m["width"]["x"][k]["units_delta1"]
        if entry["scale"]:
            row["norm_delta1"] = entry["scale"]["norm_delta1"]
            row["norm_theta1"] = entry["scale"].get("norm_theta1")
        h = entry["hessian"]
        if h:
            row["hessian_top"] = (h.get("top_eigenvalues") or [None])[0]
            row["hessian_trace"] = h.get("trace")
        scalars.append(row)
    check_same_group(infos)
    return analysis_result(
        "flatness",
        {"runs": [i.run for i in infos], "surfaces": inputs},
        infos,
        per_run,
        scalars,
        numbers,
        epsilon=eps,
    )


def flatness_from_config(cfg) -> dict:
    """The analysis JSON of an `AnalyzeRequest` for analysis=flatness."""
    a = cfg.analysis
    center = None if a.get("center") is None else [float(v) for v in a.center]
    matched = a.get("matched_train_loss")
    return flatness(
        config_list(cfg, "surface", "surfaces"),
        config_list(cfg, "run", "runs"),
        str(a.key),
        list(a.epsilons),
        center,
        None if matched is None else float(matched),
        cfg,
    )


def legacy_numbers(data: dict, per_run: dict, opts: Options) -> dict:
    """A JSON without ``numbers``: the width along δ1 at ε = `opts.width_eps` (else the smallest ε
    it has) in units of ‖δ1‖, absolute and over ‖θ1‖, the Hessian's top eigenvalue and trace, the
    training loss at the centre."""
    out: dict = {}
    summary = data.get("summary") or {}
    widths = [k for k in summary if k.startswith("width_x_") and k[8:].replace(".", "", 1).isdigit()]
    key = (
        f"width_x_{opts.width_eps}"
        if f"width_x_{opts.width_eps}" in widths
        else (sorted(widths, key=lambda k: float(k[8:])) or [None])[0]
    )
    if key:
        e = key[8:]
        out["width_delta1"] = summary_mean(data, key)
        out["width_delta1_eps"] = float(e)
        entry = ((per_run.get("width") or {}).get("x") or {}).get(e) or {}
        if entry.get("bounded") is not None:
            out["width_delta1_bounded"] = 1.0 if entry["bounded"] else 0.0
        out["width_abs"] = summary_mean(data, f"{key}_absolute")
        norm1 = summary_mean(data, "norm_theta1")
        if out["width_abs"] is not None and norm1:
            out["width_rel_theta1"] = out["width_abs"] / norm1
    out["hessian_top_eig"] = summary_mean(data, "hessian_top")
    out["hessian_trace"] = summary_mean(data, "hessian_trace")
    out["train_loss_theta1"] = finite((per_run.get("noise") or {}).get("center_value"))
    return out


SPEC = AnalysisSpec(
    "flatness",
    flatness_from_config,
    reads=("line", "run"),
    matched=True,  # the pretrained run's matched-loss step against the same seed's scratch run
    rows=(
        Row("invariant_width", "basin width along filter-normalised random directions (invariant)"),
        Row("invariant_width_std", "  its spread over the random draws"),
        Row("adaptive_sharpness", "adaptive sharpness (Kwon et al. 2021)"),
        Row("width_delta1", "basin width along δ1 (units ‖δ1‖)"),
        Row("width_abs", "basin width along δ1 (absolute)"),
        Row("width_rel_theta1", "basin width along δ1 / ‖θ1‖"),
        Row("hessian_top_eig", "Hessian top eigenvalue"),
        Row("hessian_top_eig_normalised", "Hessian top eigenvalue, weight-norm-normalised"),
        Row("hessian_trace", "Hessian trace"),
        Row("train_loss_theta1", "training loss at θ1"),
    ),
    hidden=("width_delta1_bounded", "width_delta1_eps"),
    figures=("flatness",),
    claims=(
        ClaimSpec(
            "wider_optima",
            "Pre-training leads to wider optima",
            1,
            (
                Measure(
                    "invariant_width",
                    +1,
                    "basin width along filter-normalised random directions (invariant)",
                    widen="analysis.invariant.max",
                ),
                Measure("adaptive_sharpness", -1, "adaptive sharpness (Kwon et al. 2021; lower = flatter)"),
                Measure(
                    "width_delta1",
                    +1,
                    "basin width along δ1 around θ1 in units of each run's ‖δ1‖ (fallback: not "
                    "reparameterisation-invariant, descriptive-grade)",
                    fallback=True,
                    widen="grid.x",
                ),
            ),
            "the pretrained optimum is wider",
            "the from-scratch optimum is wider",
            (
                ("width_delta1", "width along δ1 (‖δ1‖ units)"),
                ("width_abs", "absolute width"),
                ("width_rel_theta1", "width / ‖θ1‖"),
                ("hessian_top_eig", "Hessian top eigenvalue"),
                ("hessian_top_eig_normalised", "weight-norm-normalised top eigenvalue"),
                ("train_loss_theta1", "training loss at θ1"),
            ),
            checks=("matched_loss",),
        ),
    ),
    legacy=legacy_numbers,
    order=10,
    options=FlatnessOptions,
)
