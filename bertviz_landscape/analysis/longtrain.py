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
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

from omegaconf import DictConfig

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
from bertviz_landscape.analysis.noise import binomial_stderr, exceeds_noise, unpaired_stderr
from bertviz_landscape.analysis.registry import register
from bertviz_landscape.analysis.trajectory import (
    _recorded_dev_error,
    epoch_states,
    inner_products,
    interpolator,
    plane_of_surface,
    project_point,
)
from bertviz_landscape.snapshots import Snapshots


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
            f"run {run.root} records no per-epoch dev metrics ({run.metrics_json.name} dev_per_epoch, {run.dev_per_epoch})"
        )
    return sorted(rows, key=lambda r: int(r["epoch"]))


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
        dev_at = interpolator(surface, "dev_error") if "dev_error" in surface else None
        points = []
        for epoch, source, delta, row in epoch_states(run, snaps, plane.names):
            p = project_point(*inner_products(delta, plane), plane.gram())
            points.append(
                {
                    "epoch": epoch,
                    "source": source,
                    "alpha": p["alpha"],
                    "beta": p["beta"],
                    "lstsq": p["lstsq"],
                    "distance_from_plane": p["distance_from_plane"],
                    "dev_error": dev_at(p["alpha"], p["beta"]) if dev_at else None,
                    "recorded_dev_error": _recorded_dev_error(row, primary),
                }
            )
        entry["epoch_points"], entry["surface"] = points, str(surface_path)
    return info, entry


def longtrain(runs: Sequence[str | os.PathLike], surfaces: Sequence[str | os.PathLike] = ()) -> dict:
    """The longtrain analysis JSON over `runs` (several seeds of one (task, init)); `surfaces`
    (one per run, optional) for the per-epoch points."""
    runs, surfaces = list(runs), list(surfaces)
    if not runs:
        raise AnalysisError("analysis=longtrain needs run=<run dir of experiment=overfit> (or runs=[...])")
    if surfaces and len(surfaces) != len(runs):
        raise AnalysisError(
            f"analysis=longtrain: {len(runs)} runs but {len(surfaces)} surfaces (one surface per run, or none)"
        )
    infos, per_run, scalars = [], [], []
    for i, run in enumerate(runs):
        info, entry = longtrain_of_run(run, surfaces[i] if surfaces else None)
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
    )


@register("longtrain")
def longtrain_from_config(cfg: DictConfig) -> dict:
    return longtrain(config_list(cfg, "run", "runs"), config_list(cfg, "surface", "surfaces"))
