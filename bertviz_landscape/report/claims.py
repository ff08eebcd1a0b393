"""The paper's five claims, each decided by the numbers in the analysis JSONs.

One function per claim, ``claim(analyses_of_one_task) -> Verdict``; `analyses` maps an
analysis name to its JSONs (format bertviz-analysis/1), for one task, pretrained and scratch.
A verdict is "supported", "contradicted" or "not resolved" (within the noise, or because the
numbers needed are missing, or because a run never left the majority-class plateau — its
landscape is then the plateau's, not a learned optimum's; "left" means a dev accuracy more than
2 binomial standard errors above the majority's, analysis.common.baseline_verdict). The rules:

wider optima            flatness ``width_x_<ε>`` (basin width along δ1 around θ1, in units of ‖δ1‖,
                        at ε = 0.1, else the smallest ε given): pretrained − scratch beyond the noise (2·combined standard
                        error over runs, and at least one grid step of the 1D curve);
                        the Hessian top eigenvalue, when computed, is quoted beside it.
easier optimisation     the training loss at the end of training, as the trajectory recorded it
                        (mean of the last quarter of ``recorded_train_loss``): pretrained lower
                        than scratch by more than 2 standard errors (of those per-step losses);
                        decided even when a run sits on the dev plateau (flagged in the sentence):
                        training loss is what the claim is about.
robustness to           ``drop_from_best`` of long training (dev metric, best epoch − last epoch):
overfitting             pretrained smaller than scratch beyond 2·combined noise (spread over runs,
                        else the epoch-to-epoch fluctuation); needs ≥ 5 epochs.
train/dev consistency   Spearman ρ between the train-loss and dev-error surfaces: pretrained higher
                        than scratch; the difference of Fisher z-values beyond 2 standard errors
                        (√(1/(n₁−3) + 1/(n₂−3)), n = grid points).
lower layers more       pretrained: Spearman ρ between encoder-layer depth and relative change
invariant               ‖θ1ˡ−θ0ˡ‖/‖θ0ˡ‖ over layers 1…L: supported when ρ > 0 with p < 0.05,
                        contradicted when ρ < 0 with p < 0.05; roll-back numbers quoted beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bertviz_landscape.landscape.surface import load_surface
from bertviz_landscape.plots.inputs import analysis_identity

SUPPORTED, CONTRADICTED, UNRESOLVED = "supported", "contradicted", "not resolved"
CLAIMS = {
    "wider_optima": "Pre-training leads to wider optima",
    "easier_optimisation": "Pre-training eases optimisation",
    "robust_to_overfitting": "Fine-tuning is robust to overfitting",
    "consistency": "Training loss and dev error surfaces are consistent for fine-tuning (less so from scratch)",
    "lower_layers_invariant": "Lower layers of the pretrained model are more invariant during fine-tuning",
}
Z = 2.0  # how many standard errors a difference must exceed


@dataclass
class Verdict:
    claim: str
    task: str
    verdict: str
    sentence: str
    numbers: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return CLAIMS[self.claim]


def _by_init(jsons: list[dict]) -> dict[str, dict]:
    out = {}
    for data in jsons or []:
        out.setdefault(analysis_identity(data)[1], data)
    return out


def _summary(data: dict | None, key: str):
    if not data:
        return None
    entry = (data.get("summary") or {}).get(key)
    if entry is None:
        return None
    if isinstance(entry, (int, float)):
        entry = {"mean": entry, "std": 0.0, "n": 1}
    m = entry.get("mean")
    if m is None or not math.isfinite(float(m)):
        return None
    return float(m), float(entry.get("std") or 0.0), int(entry.get("n") or 1)


def plateau_reason(*datas: dict | None) -> str | None:
    """Why a comparison cannot be made: a run that did not beat its majority baseline (named)."""
    bad = []
    for data in datas:
        for run in (data or {}).get("runs") or []:
            if run.get("beat_baseline") is False:
                bad.append(
                    f"the {run.get('init')} run ({run.get('primary_metric', 'metric')} {float(run.get('dev_metric', float('nan'))):.3f} "
                    f"vs majority baseline {float(run.get('majority_baseline', float('nan'))):.3f}) did not beat its majority baseline"
                )
    if not bad:
        return None
    return "; ".join(dict.fromkeys(bad)) + " — its landscape is the plateau's, not a learned optimum's"


def _compare(diff: float, noise: float, better_positive: bool = True) -> str:
    if not math.isfinite(diff) or not math.isfinite(noise):
        return UNRESOLVED
    d = diff if better_positive else -diff
    if d > noise:
        return SUPPORTED
    if d < -noise:
        return CONTRADICTED
    return UNRESOLVED


def _missing(claim: str, task: str, what: str) -> Verdict:
    return Verdict(claim, task, UNRESOLVED, f"not resolved: {what}.")


def _combined(a, b) -> float:
    """2 × the standard error of a difference of two means (std over runs; 0 with one run each)."""
    (_, sa, na), (_, sb, nb) = a, b
    return Z * math.sqrt((sa**2) / max(na, 1) + (sb**2) / max(nb, 1))


def _eps_keys(datas: list[dict], prefix: str) -> list[str]:
    """`<prefix><ε>` summary keys common to all `datas`, by ε (not the `_absolute` variants)."""
    keys = set.intersection(*[set((d.get("summary") or {}).keys()) for d in datas]) if datas else set()

    def eps(k):
        try:
            return float(k[len(prefix) :])
        except ValueError:
            return None

    return sorted((k for k in keys if k.startswith(prefix) and eps(k) is not None), key=eps)


def _surface_paths(data: dict) -> list[str]:
    inputs = data.get("inputs") or {}
    out = []
    for entry in [inputs.get("surface"), *(inputs.get("surfaces") or [])]:
        path = entry.get("path") if isinstance(entry, dict) else entry
        if path:
            out.append(str(path))
    return out


def _grid_step(data: dict) -> float:
    """The α spacing of the 1D curve the widths were measured on (inputs.grid_step or the surface), else 0."""
    inputs = data.get("inputs") or {}
    for key in ("grid_step", "alpha_step"):
        if isinstance(inputs.get(key), (int, float)):
            return float(inputs[key])
    for path in _surface_paths(data):
        try:
            x = np.asarray(load_surface(path).x, dtype=float)
            return float(np.min(np.diff(np.sort(x)))) if x.size > 1 else 0.0
        except (OSError, KeyError, ValueError):
            continue
    return 0.0


def width_bounded(data: dict, eps: str) -> bool:
    """Whether the basin along δ1 ends inside the grid on both sides (False: the width is a lower bound)."""
    for pr in data.get("per_run") or []:
        entry = (((pr.get("width") or {}).get("x") or {}).get(eps)) or {}
        if entry.get("bounded") is False:
            return False
    return True


def wider_optima(analyses: dict[str, list[dict]], task: str, eps: str = "0.1") -> Verdict:
    claim = "wider_optima"
    f = _by_init(analyses.get("flatness", []))
    if not {"pretrained", "scratch"} <= set(f):
        return _missing(claim, task, "no flatness numbers for both the pretrained and the from-scratch run")
    reason = plateau_reason(f["pretrained"], f["scratch"])
    keys = _eps_keys([f["pretrained"], f["scratch"]], "width_x_")
    numbers = {}
    if keys:
        key = f"width_x_{eps}" if f"width_x_{eps}" in keys else keys[0]
        a, b = _summary(f["pretrained"], key), _summary(f["scratch"], key)
        if a and b:
            step = max(_grid_step(f["pretrained"]), _grid_step(f["scratch"]))
            noise = max(_combined(a, b), step)
            numbers = {"key": key, "pretrained": a[0], "scratch": b[0], "noise": noise, "grid_step": step}
    hess = {i: _summary(f[i], "hessian_top") for i in ("pretrained", "scratch")}
    hess_txt = ""
    if all(hess.values()):
        numbers["hessian_top"] = {i: v[0] for i, v in hess.items()}
        hess_txt = f" Hessian top eigenvalue: pretrained {hess['pretrained'][0]:.4g}, from scratch {hess['scratch'][0]:.4g}."
    if not numbers.get("key"):
        return Verdict(
            claim,
            task,
            UNRESOLVED,
            "not resolved: the flatness JSONs have no basin width along δ1." + hess_txt,
            numbers,
        )
    eps = numbers["key"][len("width_x_") :]  # the ε actually used
    bounded = {i: width_bounded(f[i], eps) for i in ("pretrained", "scratch")}
    numbers["bounded"] = bounded
    mark = {i: "" if bounded[i] else "≥ " for i in bounded}
    facts = (
        f"basin width along δ1 around θ1 at ε={eps}: pretrained {mark['pretrained']}{numbers['pretrained']:.3g}, "
        f"from scratch {mark['scratch']}{numbers['scratch']:.3g} (units of each run's ‖δ1‖; noise ±{numbers['noise']:.2g}"
        + ("; ≥: the basin extends past the grid" if not all(bounded.values()) else "")
        + ")"
    )
    if reason:
        return Verdict(claim, task, UNRESOLVED, f"not resolved: {reason}. ({facts}.)" + hess_txt, numbers)
    v = _compare(numbers["pretrained"] - numbers["scratch"], numbers["noise"])
    # a width that is only a lower bound can only win: it cannot be shown narrower
    if v == CONTRADICTED and not bounded["pretrained"]:
        v = UNRESOLVED
    if v == SUPPORTED and not bounded["scratch"]:
        v = UNRESOLVED
    if not any(bounded.values()):
        return Verdict(
            claim,
            task,
            UNRESOLVED,
            f"not resolved: both basins extend past the grid (widen grid.x) — {facts}." + hess_txt,
            numbers,
        )
    lead = {
        SUPPORTED: "supported: the pretrained optimum is wider",
        CONTRADICTED: "contradicted: the from-scratch optimum is wider",
        UNRESOLVED: "not resolved within the noise",
    }[v]
    return Verdict(claim, task, v, f"{lead} — {facts}." + hess_txt, numbers)


def _final_loss(data: dict) -> tuple[float, float, int] | None:
    pr = (data.get("per_run") or [{}])[0]
    losses = np.asarray([x for x in pr.get("recorded_train_loss") or [] if x is not None], dtype=float)
    losses = losses[np.isfinite(losses)]
    if losses.size < 2:
        return None
    tail = losses[-max(2, losses.size // 4) :]
    return float(tail.mean()), float(tail.std(ddof=1) / math.sqrt(tail.size)), int(tail.size)


def easier_optimisation(analyses: dict[str, list[dict]], task: str) -> Verdict:
    claim = "easier_optimisation"
    t = _by_init(analyses.get("trajectory", []))
    if not {"pretrained", "scratch"} <= set(t):
        return _missing(claim, task, "no trajectory JSONs for both the pretrained and the from-scratch run")
    a, b = _final_loss(t["pretrained"]), _final_loss(t["scratch"])
    if not (a and b):
        return _missing(claim, task, "the trajectories recorded no training losses")
    noise = Z * math.sqrt(a[1] ** 2 + b[1] ** 2)
    numbers = {"pretrained": a[0], "scratch": b[0], "noise": noise, "steps_averaged": [a[2], b[2]]}
    facts = (
        f"training loss at the end of training (mean of the last {a[2]}/{b[2]} recorded steps): pretrained {a[0]:.3f}, "
        f"from scratch {b[0]:.3f} (noise ±{noise:.2g})"
    )
    # Training loss is what this claim is about, so a run on the dev plateau still counts (a scratch
    # run that cannot leave it is the hardest optimisation of all); the plateau is flagged, not hidden.
    reason = plateau_reason(t["pretrained"], t["scratch"])
    v = _compare(b[0] - a[0], noise)
    lead = {
        SUPPORTED: "supported: training reaches a lower loss from the pretrained start",
        CONTRADICTED: "contradicted: from scratch reaches the lower training loss",
        UNRESOLVED: "not resolved within the noise",
    }[v]
    flag = (
        f" Flagged: {reason} (the comparison is of training loss, which it does not invalidate)."
        if reason
        else ""
    )
    return Verdict(claim, task, v, f"{lead} — {facts}.{flag}", numbers)


def robust_to_overfitting(analyses: dict[str, list[dict]], task: str, min_epochs: int = 5) -> Verdict:
    claim = "robust_to_overfitting"
    lt = _by_init(analyses.get("longtrain", []))
    if not {"pretrained", "scratch"} <= set(lt):
        return _missing(
            claim,
            task,
            "no long-training JSONs for both runs (bertviz-train experiment=overfit, then analysis=longtrain)",
        )
    curves = {
        i: [x for x in ((lt[i].get("per_run") or [{}])[0].get("dev_metric_per_epoch") or []) if x is not None]
        for i in lt
    }
    epochs = min(len(curves["pretrained"]), len(curves["scratch"]))
    a, b = _summary(lt["pretrained"], "drop_from_best"), _summary(lt["scratch"], "drop_from_best")
    if not (a and b):
        return _missing(claim, task, "the long-training JSONs have no drop_from_best")
    noise = _combined(a, b)
    if a[2] == 1 or b[2] == 1:  # one run each: the epoch-to-epoch fluctuation of the dev metric
        fluct = [
            float(np.std(np.diff(curves[i]), ddof=1)) for i in ("pretrained", "scratch") if len(curves[i]) > 2
        ]
        noise = max(noise, Z * math.sqrt(sum(f**2 for f in fluct) / max(1, len(fluct)))) if fluct else noise
    numbers = {"pretrained": a[0], "scratch": b[0], "noise": noise, "epochs": epochs}
    facts = f"dev-metric drop from the best epoch to the last ({epochs} epoch{'s' if epochs != 1 else ''}): pretrained {a[0]:.3f}, from scratch {b[0]:.3f} (noise ±{noise:.2g})"
    if epochs < min_epochs:
        return Verdict(
            claim,
            task,
            UNRESOLVED,
            f"not resolved: only {epochs} epoch{'s' if epochs != 1 else ''} — overfitting needs long training "
            f"(≥ {min_epochs}; bertviz-train experiment=overfit). ({facts}.)",
            numbers,
        )
    reason = plateau_reason(lt["pretrained"], lt["scratch"])
    if reason:
        return Verdict(claim, task, UNRESOLVED, f"not resolved: {reason}. ({facts}.)", numbers)
    v = _compare(b[0] - a[0], noise)
    lead = {
        SUPPORTED: "supported: the pretrained run loses less of its best dev metric",
        CONTRADICTED: "contradicted: the from-scratch run loses less",
        UNRESOLVED: "not resolved within the noise",
    }[v]
    return Verdict(claim, task, v, f"{lead} — {facts}.", numbers)


def consistency(analyses: dict[str, list[dict]], task: str) -> Verdict:
    claim = "consistency"
    c = _by_init(analyses.get("consistency", []))
    if not {"pretrained", "scratch"} <= set(c):
        return _missing(claim, task, "no consistency JSONs for both runs")
    a, b = _summary(c["pretrained"], "spearman"), _summary(c["scratch"], "spearman")
    if not (a and b):
        return _missing(claim, task, "a consistency JSON has no finite Spearman ρ (a constant surface?)")
    n = [int(((c[i].get("per_run") or [{}])[0]).get("n_points") or 0) for i in ("pretrained", "scratch")]
    if min(n) <= 3:
        return _missing(claim, task, f"too few grid points ({min(n)}) for a rank correlation")
    clip = lambda r: max(-0.999999, min(0.999999, r))  # noqa: E731
    diff = math.atanh(clip(a[0])) - math.atanh(clip(b[0]))
    noise = Z * math.sqrt(1 / (n[0] - 3) + 1 / (n[1] - 3))
    numbers = {
        "pretrained": a[0],
        "scratch": b[0],
        "fisher_z_difference": diff,
        "noise": noise,
        "n_points": n,
    }
    iou = {i: _summary(c[i], "iou_25") for i in ("pretrained", "scratch")}
    iou_txt = ""
    if all(iou.values()):
        numbers["iou_25"] = {i: v[0] for i, v in iou.items()}
        iou_txt = f" Overlap (IoU) of the lowest 25% regions: pretrained {iou['pretrained'][0]:.2f}, from scratch {iou['scratch'][0]:.2f}."
    facts = (
        f"Spearman ρ(training loss, dev error) over the 2D grid: pretrained {a[0]:.3f}, from scratch {b[0]:.3f} "
        f"(Fisher-z difference {diff:.2f}, noise ±{noise:.2f}, n = {n[0]}/{n[1]} points)"
    )
    reason = plateau_reason(c["pretrained"], c["scratch"])
    if reason:
        return Verdict(claim, task, UNRESOLVED, f"not resolved: {reason}. ({facts}.)" + iou_txt, numbers)
    v = _compare(diff, noise)
    lead = {
        SUPPORTED: "supported: the pretrained surfaces agree more",
        CONTRADICTED: "contradicted: the from-scratch surfaces agree more",
        UNRESOLVED: "not resolved within the noise",
    }[v]
    return Verdict(claim, task, v, f"{lead} — {facts}." + iou_txt, numbers)


def lower_layers_invariant(analyses: dict[str, list[dict]], task: str, alpha: float = 0.05) -> Verdict:
    claim = "lower_layers_invariant"
    lay = _by_init(analyses.get("layers", []))
    if "pretrained" not in lay:
        return _missing(claim, task, "no layers JSON for the pretrained run")
    pr = (lay["pretrained"].get("per_run") or [{}])[0]
    rel = pr.get("relative_change") or {}
    enc = sorted(
        (
            (int(k.split(".")[1]), float(v))
            for k, v in rel.items()
            if k.startswith("layer.") and v is not None
        ),
        key=lambda t: t[0],
    )
    if len(enc) < 3:
        return _missing(claim, task, f"{len(enc)} encoder layers — too few for a trend")
    from scipy.stats import spearmanr

    depth, change = zip(*enc)
    res = spearmanr(depth, change)
    rho, p = float(res.statistic), float(res.pvalue)
    numbers = {
        "spearman": rho,
        "pvalue": p,
        "relative_change": dict(zip([f"layer.{d}" for d in depth], change)),
    }
    facts = (
        f"relative change of the encoder layers 1…{len(enc)}: {', '.join(f'{c:.2g}' for c in change)} "
        f"(Spearman ρ(depth, change) = {rho:.2f}, p = {p:.3f})"
    )
    rb = {(e.get("kind"), e.get("k")): e for e in pr.get("rollback") or []}
    rb_txt = ""
    ks = sorted({k for (kind, k) in rb if kind == "bottom_k" and ("top_k", k) in rb and k is not None})
    if ks:  # every k: the bottom k (embeddings first) against the top k (head first) layer groups
        pairs = [
            (
                k,
                float(rb[("bottom_k", k)].get("dev_error", float("nan"))),
                float(rb[("top_k", k)].get("dev_error", float("nan"))),
            )
            for k in ks
        ]
        numbers["rollback"] = [
            {"k": k, "bottom_dev_error": bot, "top_dev_error": top} for k, bot, top in pairs
        ]
        rb_txt = (
            f" Dev error after rolling back the bottom / top k layer groups to θ0 (k = {ks[0]}…{ks[-1]}): "
            + ", ".join(f"{bot:.3f}/{top:.3f}" for _, bot, top in pairs)
            + " (not part of the decision)."
        )
    reason = plateau_reason(lay["pretrained"])
    if reason:
        return Verdict(claim, task, UNRESOLVED, f"not resolved: {reason}. ({facts}.)" + rb_txt, numbers)
    if math.isfinite(rho) and p < alpha:
        v = SUPPORTED if rho > 0 else CONTRADICTED
    else:
        v = UNRESOLVED
    lead = {
        SUPPORTED: "supported: lower layers moved less",
        CONTRADICTED: "contradicted: lower layers moved more",
        UNRESOLVED: "not resolved within the noise",
    }[v]
    return Verdict(claim, task, v, f"{lead} — {facts}." + rb_txt, numbers)


DECIDE = {
    "wider_optima": wider_optima,
    "easier_optimisation": easier_optimisation,
    "robust_to_overfitting": robust_to_overfitting,
    "consistency": consistency,
    "lower_layers_invariant": lower_layers_invariant,
}


def decide_all(analyses: dict[str, list[dict]]) -> list[Verdict]:
    """Every claim for every task the analyses cover."""
    tasks = sorted(
        {str(r.get("task")) for datas in analyses.values() for d in datas for r in (d.get("runs") or [])[:1]}
    )
    out = []
    for task in tasks:
        mine = {
            name: [d for d in datas if (d.get("runs") or [{}])[0].get("task") == task]
            for name, datas in analyses.items()
        }
        out += [fn(mine, task) for fn in DECIDE.values()]
    return out
