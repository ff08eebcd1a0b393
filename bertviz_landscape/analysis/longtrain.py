"""`analysis=longtrain`: robustness to overfitting (Hao et al. §5) — train far past 3 epochs
(`experiment=overfit`) and read the dev metric after every epoch.

Per run (metrics.json ``dev_per_epoch``, else logs/dev_per_epoch.jsonl): the dev primary metric
and dev loss per epoch, the best epoch (highest metric; ties: the earliest), the best and last
values and ``drop_from_best`` = best − last (≥ 0; how much of its best the run lost by training
on). ``drop_noise``: for accuracy, the binomial standard error of each value
(sqrt(p(1 − p)/n_dev)) and whether the drop exceeds 2 × the unpaired standard error of their
difference (conservative: two epochs' predictions are positively correlated); null for other
metrics. With ``surface=`` (the run's own surface), the per-epoch points are placed on it by
the trajectory analysis's projection (``epoch_points``: α, β, least squares, dev error there).

``numbers`` (per run):

    dev_slope_second_half          least-squares slope of the dev primary metric per epoch over the
                                   second half of the epochs (epoch > E/2, at least 3 of them; else null)
    dev_slope_second_half_ci_low   its 95% interval: slope ± t(0.975, n−2)·stderr (scipy linregress;
    dev_slope_second_half_ci_high  the per-epoch values share one dev set and one trajectory, so they
                                   are not independent: the interval is a within-run check, not the
                                   noise of a comparison across seeds)
    best_minus_last_dev            best − last dev primary metric (= drop_from_best, ≥ 0)
    mcnemar_p_best_vs_last         exact McNemar test (two-sided binomial on the discordant examples)
                                   between the best and the last epoch's per-example dev correctness
                                   (logs/dev_predictions.jsonl, callbacks/epochs.py); 1.0 when no example
                                   differs; null for regression, a single epoch, or a run without the
                                   file. The best epoch is chosen on the same examples, which biases the
                                   test toward finding a drop (conservative for "robust to overfitting")
    mcnemar_discordant_best_only, mcnemar_discordant_last_only   the discordant counts b, c
    dev_loss_last, dev_loss_best   the dev loss at the last and at the best epoch
    dev_loss_min                   the lowest dev loss over the epochs (dev loss rises before accuracy falls)
    num_epochs
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest, linregress
from scipy.stats import t as student_t

from bertviz_landscape.analysis.common import (
    AnalysisError,
    analysis_result,
    check_same_group,
    check_surface_matches_run,
    config_list,
    load_surface_checked,
    read_run,
    require_2d,
    run_dir,
)
from bertviz_landscape.analysis.measures.noise import binomial_stderr, exceeds_noise, unpaired_stderr
from bertviz_landscape.analysis.spec import AnalysisSpec, ClaimSpec, Measure, Options, Row, summary_mean
from bertviz_landscape.analysis.trajectory import plane_of_surface, project_epochs
from bertviz_landscape.contracts.sections import Settings, section
from bertviz_landscape.contracts.snapshots import Snapshots


def dev_per_epoch(run) -> list[dict]:
    """The run's per-epoch dev records, in epoch order."""
    rows = []
    if run.metrics_json.is_file():
        rows = run.read_metrics().get("dev_per_epoch") or []
    if not rows and run.dev_per_epoch.is_file():
        for number, line in enumerate(run.dev_per_epoch.read_text().splitlines(), start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise AnalysisError(f"{run.dev_per_epoch}: line {number} is not JSON") from None
    if not rows:
        raise AnalysisError(
            f"run {run.root} records no per-epoch dev metrics ({run.metrics_json.name} dev_per_epoch, "
            f"{run.dev_per_epoch})"
        )
    return sorted(rows, key=lambda r: int(r["epoch"]))


def second_half_slope(epochs: Sequence[int], values: Sequence[float], level: float = 0.95) -> dict:
    """The least-squares slope of `values` over the epochs in the second half (epoch > E/2) and its
    t interval; nulls with fewer than 3 finite points there."""
    last = max(epochs) if len(epochs) else 0
    pts = [(e, v) for e, v in zip(epochs, values) if e > last / 2 and math.isfinite(v)]
    out = {"slope": None, "ci_low": None, "ci_high": None, "epochs": [e for e, _ in pts]}
    if len(pts) < 3:
        return out
    x, y = np.array([e for e, _ in pts], dtype=float), np.array([v for _, v in pts], dtype=float)
    if np.ptp(y) == 0:
        return out | {"slope": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    fit = linregress(x, y)
    half = float(student_t.ppf(0.5 + level / 2, len(pts) - 2)) * float(fit.stderr)
    return out | {
        "slope": float(fit.slope),
        "ci_low": float(fit.slope) - half,
        "ci_high": float(fit.slope) + half,
    }


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """Exact McNemar test of paired correctness: b = right only under a, c = right only under b;
    p = two-sided binomial test of min(b, c) in b + c at 1/2 (1.0 when b + c = 0)."""
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise AnalysisError(f"McNemar needs the same examples: {a.size} vs {b_.size} predictions")
    only_a, only_b = int(np.sum(a & ~b_)), int(np.sum(~a & b_))
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(min(only_a, only_b), n, 0.5).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p": p}


def dev_predictions(run) -> dict[int, dict]:
    """epoch → {"predictions", "labels", "losses"} from logs/dev_predictions.jsonl (the last record
    of an epoch wins; empty when the run has no such file)."""
    path = run.dev_predictions
    out: dict[int, dict] = {}
    if not path.is_file():
        return out
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            row = json.loads(line)
            out[int(row["epoch"])] = row
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if number == len(path.read_text().splitlines()):
                continue  # a torn last line
            raise AnalysisError(f"{path}: line {number} is not a per-epoch predictions record") from None
    return out


def longtrain_numbers(entry: dict, run, regression: bool) -> dict:
    """The run's `numbers` (module docstring) from its per_run entry and its per-epoch predictions."""
    slope = second_half_slope(entry["epochs"], entry["dev_metric_per_epoch"])
    entry["second_half_slope"] = slope
    losses = entry["dev_loss_per_epoch"]
    finite_losses = [v for v in losses if math.isfinite(v)]
    best_at = entry["epochs"].index(entry["best_epoch"])
    nums = {
        "dev_slope_second_half": slope["slope"],
        "dev_slope_second_half_ci_low": slope["ci_low"],
        "dev_slope_second_half_ci_high": slope["ci_high"],
        "best_minus_last_dev": entry["drop_from_best"],
        "dev_loss_last": losses[-1] if losses else None,
        "dev_loss_best": losses[best_at] if losses else None,
        "dev_loss_min": min(finite_losses) if finite_losses else None,
        "num_epochs": float(len(entry["epochs"])),
        "mcnemar_p_best_vs_last": None,
        "mcnemar_discordant_best_only": None,
        "mcnemar_discordant_last_only": None,
    }
    entry["mcnemar"] = None
    preds = dev_predictions(run) if not regression else {}
    best, last = entry["best_epoch"], entry["epochs"][-1]
    if best in preds and last in preds and len(entry["epochs"]) > 1:

        def correct(row):
            return np.asarray(row["predictions"]) == np.asarray(row["labels"])

        test = mcnemar(correct(preds[best]), correct(preds[last]))
        entry["mcnemar"] = test | {
            "best_epoch": best,
            "last_epoch": last,
            "num_examples": len(preds[last]["labels"]),
        }
        nums["mcnemar_p_best_vs_last"] = test["p"]
        nums["mcnemar_discordant_best_only"] = float(test["only_a"])
        nums["mcnemar_discordant_last_only"] = float(test["only_b"])
    return nums


def longtrain_of_run(run_path: str | os.PathLike, surface_path: str | os.PathLike | None = None) -> tuple:
    info = read_run(run_path)
    run = run_dir(run_path)
    rows = dev_per_epoch(run)
    primary = info.primary_metric
    metric = [float(r.get(f"val/{primary}", math.nan)) for r in rows]
    loss = [float(r.get("val/loss", math.nan)) for r in rows]
    finite = [i for i, v in enumerate(metric) if math.isfinite(v)]
    if not finite:
        raise AnalysisError(f"run {run.root}: no finite dev {primary} in its per-epoch records")
    best_i = max(finite, key=lambda i: (metric[i], -i))
    best, last = metric[best_i], metric[-1]
    n_dev = run.read_metrics().get("dev_examples")
    noise = None
    if primary == "accuracy" and n_dev:
        se_b, se_l = binomial_stderr(best, int(n_dev)), binomial_stderr(last, int(n_dev))
        se = unpaired_stderr(se_b, se_l)
        noise = {
            "stderr_best": se_b,
            "stderr_last": se_l,
            "stderr_difference": se,
            "paired": False,
            "exceeds_noise": exceeds_noise(best - last, se),
            "num_examples": int(n_dev),
        }
    entry = {
        "epochs": [int(r["epoch"]) for r in rows],
        "dev_metric_per_epoch": metric,
        "dev_loss_per_epoch": loss,
        "dev_error_per_epoch": [1.0 - v for v in metric] if primary != "pearson" else None,
        "primary_metric": primary,
        "best_epoch": int(rows[best_i]["epoch"]),
        "best": best,
        "last": last,
        "drop_from_best": best - last,
        "drop_noise": noise,
        "epoch_points": None,
        "surface": None,
    }
    if surface_path is not None:
        surface = load_surface_checked(surface_path)
        require_2d(surface, surface_path, "longtrain", " (epoch points)")
        check_surface_matches_run(surface, surface_path, run)
        plane = plane_of_surface(surface, surface_path, run)
        snaps = None
        if (run.snapshots / "meta.json").is_file():
            snaps = Snapshots(run.root)
        points = project_epochs(run, snaps, plane, surface, primary)
        entry["epoch_points"], entry["surface"] = points, str(surface_path)
    entry["numbers"] = longtrain_numbers(entry, run, primary in ("pearson", "spearman"))
    return info, entry


def longtrain(runs: Sequence[str | os.PathLike], surfaces: Sequence[str | os.PathLike] = ()) -> dict:
    """The longtrain analysis JSON over `runs` (several seeds of one (task, init)); `surfaces`
    (one per run, optional) for the per-epoch points."""
    runs, surfaces = list(runs), list(surfaces)
    if not runs:
        raise AnalysisError("analysis=longtrain needs run=<run dir of experiment=overfit> (or runs=[...])")
    if surfaces and len(surfaces) != len(runs):
        raise AnalysisError(
            f"analysis=longtrain: {len(runs)} runs but {len(surfaces)} surfaces (one surface per run, or "
            "none)"
        )
    infos, per_run, scalars, numbers = [], [], [], []
    for i, run in enumerate(runs):
        info, entry = longtrain_of_run(run, surfaces[i] if surfaces else None)
        numbers.append(entry.pop("numbers"))
        infos.append(info)
        per_run.append(entry)
        scalars.append(
            {
                "best": entry["best"],
                "last": entry["last"],
                "drop_from_best": entry["drop_from_best"],
                "best_epoch": entry["best_epoch"],
                "num_epochs": len(entry["epochs"]),
            }
        )
    check_same_group(infos)
    return analysis_result(
        "longtrain",
        {"runs": [i.run for i in infos], "surfaces": [str(s) for s in surfaces]},
        infos,
        per_run,
        scalars,
        numbers,
    )


@section
class LongtrainOptions(Settings):
    """conf/analysis/longtrain.yaml (no options of its own)."""

    name: str = "longtrain"


def longtrain_from_config(cfg) -> dict:
    """The analysis JSON of an `AnalyzeRequest` for analysis=longtrain."""
    return longtrain(config_list(cfg, "run", "runs"), config_list(cfg, "surface", "surfaces"))


def legacy_numbers(data: dict, per_run: dict, opts: Options) -> dict:
    """A JSON without ``numbers``: the drop from the best epoch, and how many epochs it saw."""
    curve = [x for x in per_run.get("dev_metric_per_epoch") or [] if x is not None]
    return {"best_minus_last_dev": summary_mean(data, "drop_from_best"), "epochs": float(len(curve))}


SPEC = AnalysisSpec(
    "longtrain",
    longtrain_from_config,
    reads=("run", "plane"),
    rows=(
        Row("dev_slope_second_half", "long training: dev slope over the second half"),
        Row("best_minus_last_dev", "long training: best − last dev metric"),
        Row("mcnemar_p_best_vs_last", "long training: McNemar p, best vs last"),
        Row("dev_loss_last", "long training: last dev loss"),
    ),
    hidden=("epochs",),
    figures=("dev_per_epoch",),
    claims=(
        ClaimSpec(
            "robust_to_overfitting",
            "Fine-tuning is robust to overfitting",
            3,
            (
                Measure(
                    "dev_slope_second_half", +1, "slope of the dev metric over the second half of training"
                ),
                Measure("best_minus_last_dev", -1, "drop of the dev metric from the best epoch to the last"),
            ),
            "the pretrained runs lose less of their dev metric",
            "the from-scratch runs lose less",
            (
                ("dev_loss_last", "last dev loss"),
                ("mcnemar_p_best_vs_last", "McNemar p, best vs last epoch"),
            ),
            checks=("min_epochs",),
        ),
    ),
    legacy=legacy_numbers,
    order=50,
    options=LongtrainOptions,
)
