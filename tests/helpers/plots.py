"""Synthetic surfaces and analysis JSONs for the figure and report tests: `make_surface` (a bowl
on a grid, written as a surface file), `write_fixture_dir` (a results directory of hand-written
analysis JSONs and surfaces), and their parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bertviz_landscape.engine.surface import Surface, write_surface


def bowl(x, y, cx, cy, sx=1.0, sy=0.5):
    xx, yy = np.meshgrid(x, y)  # [ny, nx]: rows are y
    return 0.2 + ((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2


def make_surface(
    path: Path, task="mrpc", two_d=True, cx=1.1, cy=-0.25, nx=13, ny=7, recipe="difference", nan_corner=False
) -> Path:
    x = np.linspace(-0.5, 1.5, nx)
    y = np.linspace(-0.5, 1.5, ny) if two_d else None
    if two_d:
        loss = bowl(x, y, cx, cy)
        err = 0.1 + 0.5 * np.tanh(bowl(x, y, cx + 0.1, cy, 1.5, 1.0) / 4)
        if nan_corner:
            loss[-2:, -3:] = np.nan
            loss[-1, 0] = np.inf
    else:
        loss = 0.2 + (x - cx) ** 2
        err = 0.1 + 0.3 * np.tanh((x - cx) ** 2)
    values = {
        "train_loss": loss,
        "dev_loss": loss + 0.1,
        "dev_error": err,
        "dev_accuracy": 1 - err,
        "train_error": err * 0.8,
    }
    if not two_d:
        values["train_loss_stderr"] = np.full_like(loss, 0.02)
    meta = {
        "task": task,
        "primary_metric": "accuracy",
        "directions": {
            "recipe": recipe,
            "center": "theta0",
            "norm_x": 2.5,
            "norm_y": 2.5 if two_d else None,
            "cosine_xy": 0.05,
        },
    }
    return write_surface(path, Surface(x, y, values, meta))


# --------------------------------------------------------------------------- analysis fixtures
def run_entry(init, beat=True, task="mrpc", dev=0.8, base=0.684):
    return {
        "run": f"/runs/{task}_{init}",
        "task": task,
        "init": init,
        "seed": 0,
        "beat_baseline": beat,
        "dev_metric": dev if beat else base,
        "majority_baseline": base,
        "primary_metric": "accuracy",
    }


def analysis(name, init, summary, per_run=None, beat=True, task="mrpc", inputs=None):
    return {
        "analysis": name,
        "format": "bertviz-analysis/1",
        "inputs": inputs or {},
        "runs": [run_entry(init, beat, task)],
        "per_run": [per_run or {}],
        "summary": {k: {"mean": v, "std": 0.0, "n": 1} for k, v in summary.items()},
    }


def fixture_analyses(beat_scratch=True, task="mrpc") -> dict[str, list[dict]]:
    layers = ["embeddings"] + [f"layer.{i}" for i in range(6)] + ["pooler", "head"]

    def lay(init, rel):
        return analysis(
            "layers",
            init,
            {f"relative_change_{k}": v for k, v in rel.items()},
            {
                "layers": layers,
                "relative_change": rel,
                "cosine": {k: 0.99 for k in layers},
                "curves": {
                    k: {
                        "alpha": [-0.5, 0, 0.5, 1, 1.5],
                        "train_loss": [0.9, 0.7, 0.5, 0.4, 0.5],
                        "dev_loss": [1, 0.8, 0.6, 0.5, 0.6],
                        "dev_error": [0.4, 0.3, 0.2, 0.2, 0.25],
                    }
                    for k in layers
                },
                "rollback": [
                    {
                        "layers": [],
                        "kind": "none",
                        "k": None,
                        "train_loss": 0.3,
                        "dev_loss": 0.5,
                        "dev_accuracy": 0.8,
                        "dev_error": 0.2,
                    },
                    {
                        "layers": layers[1:3],
                        "kind": "bottom_k",
                        "k": 2,
                        "train_loss": 0.35,
                        "dev_loss": 0.55,
                        "dev_accuracy": 0.78,
                        "dev_error": 0.22,
                    },
                    {
                        "layers": layers[5:7],
                        "kind": "top_k",
                        "k": 2,
                        "train_loss": 0.6,
                        "dev_loss": 0.7,
                        "dev_accuracy": 0.6,
                        "dev_error": 0.4,
                    },
                ],
            },
            beat=beat_scratch or init == "pretrained",
            task=task,
        )

    def traj(init, final):
        losses = list(np.linspace(0.7, final, 40) + 0.005 * np.sin(np.arange(40)))
        return analysis(
            "trajectory",
            init,
            {
                "max_distance_from_plane": 0.3,
                "final_alpha": 1.0,
                "final_beta": 0.2,
                "pca_top2_explained": 0.9,
            },
            {
                "steps": list(range(1, 41)),
                "recorded_train_loss": losses,
                "alpha": list(np.linspace(0, 1, 40)),
                "beta": list(0.2 * np.sin(np.linspace(0, 3, 40)) ** 2),
                "epoch_points": [],
            },
            beat=beat_scratch or init == "pretrained",
            task=task,
        )

    b = beat_scratch
    return {
        "flatness": [
            analysis(
                "flatness", "pretrained", {"width_x_0.1": 1.4, "area_0.1": 1.1, "hessian_top": 3.0}, task=task
            ),
            analysis(
                "flatness",
                "scratch",
                {"width_x_0.1": 0.6, "area_0.1": 0.4, "hessian_top": 40.0},
                beat=b,
                task=task,
            ),
        ],
        "consistency": [
            analysis(
                "consistency",
                "pretrained",
                {"spearman": 0.95, "iou_25": 0.8},
                {"n_points": 81, "spearman": 0.95},
                task=task,
            ),
            analysis(
                "consistency",
                "scratch",
                {"spearman": 0.4, "iou_25": 0.3},
                {"n_points": 81, "spearman": 0.4},
                beat=b,
                task=task,
            ),
        ],
        "trajectory": [traj("pretrained", 0.2), traj("scratch", 0.6)],
        "layers": [
            lay(
                "pretrained",
                {
                    "embeddings": 1e-4,
                    **{f"layer.{i}": 1e-4 * (i + 1) for i in range(6)},
                    "pooler": 1e-3,
                    "head": 1.0,
                },
            ),
            lay(
                "scratch",
                {"embeddings": 1e-2, **{f"layer.{i}": 1e-2 for i in range(6)}, "pooler": 1e-2, "head": 1.0},
            ),
        ],
        "longtrain": [
            analysis(
                "longtrain",
                "pretrained",
                {"best": 0.85, "last": 0.84, "drop_from_best": 0.01},
                {"dev_metric_per_epoch": [0.8, 0.83, 0.85, 0.85, 0.84, 0.84], "primary_metric": "accuracy"},
                task=task,
            ),
            analysis(
                "longtrain",
                "scratch",
                {"best": 0.7, "last": 0.6, "drop_from_best": 0.1},
                {"dev_metric_per_epoch": [0.65, 0.68, 0.7, 0.66, 0.62, 0.6], "primary_metric": "accuracy"},
                beat=b,
                task=task,
            ),
        ],
    }


def write_fixture_dir(root: Path, beat_scratch=True) -> Path:
    (root / "analysis").mkdir(parents=True)
    for name, datas in fixture_analyses(beat_scratch).items():
        for d in datas:
            (root / "analysis" / f"{name}_mrpc_{d['runs'][0]['init']}.json").write_text(json.dumps(d))
    for init, cx in (("pretrained", 1.0), ("scratch", 0.7)):
        make_surface(root / "surfaces" / f"mrpc_{init}_line.h5", two_d=False, cx=cx)
        make_surface(root / "surfaces" / f"mrpc_{init}_plane.h5", cx=cx, nx=9, ny=9)
    return root
