"""Shared builders for the analysis tests: a run directory with a known trajectory, and its surface.

The analysis test modules import the `analysis_run` fixture from here. The run is made from checkpoints built
like `tiny_run`'s (no training, so it costs seconds; built once per session): θ0 = init,
θ1 = final, θ2 = other (for δ2); after the paper-axes surface is computed, snapshots are
written whose deltas are known
combinations of that surface's own δ1, δ2 (read back from its direction file) — so their
projections are known exactly — plus one with a known component off the plane. Epoch 1's
checkpoint is θ0 + 0.5 δ1 + 0.25 δ2, epoch 2's is θ1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers.landscape import build_tiny, data_cfg, write_glue

# (step, epoch, a, b, off-plane scale): θ_t − θ0 = a·δ1 + b·δ2 + scale·r, r ⟂ δ1, δ2 with ‖r‖ = ‖δ1‖
TRAJECTORY = [
    (1, 0, 0.0, 0.0, 0.0),
    (2, 0, 0.3, 0.1, 0.0),
    (3, 0, 0.5, 0.25, 0.0),
    (4, 1, 0.7, -0.2, 0.5),
    (5, 1, 0.9, 0.05, 0.0),
    (6, 1, 1.0, 0.0, 0.0),
]
PLANE_GRID = {
    "x": {"min": 0.0, "max": 1.0, "num": 3},
    "y": {"min": -0.5, "max": 0.5, "num": 3},
}  # has (0,0) and (1,0)


def make_run_dir(root: Path, tiny, final: Path | None = None, train_loss: bool = True) -> Path:
    """A training run's directory (rundir.RunDir layout) from tiny checkpoints, without training."""
    run = root
    (run / "checkpoints").mkdir(parents=True)
    shutil.copytree(tiny["theta0"], run / "checkpoints" / "init")
    shutil.copytree(final or tiny["theta1"], run / "checkpoints" / "final")
    (run / "run.json").write_text(json.dumps({"task": "mrpc", "init": "scratch", "seed": 7, "model": "tiny"}))
    (run / "config.yaml").write_text("task:\n  name: mrpc\ndata:\n  max_length: 32\n")
    metrics = {
        "task": "mrpc",
        "init": "scratch",
        "primary_metric": "accuracy",
        "dev": {
            "val/loss": 0.69,
            "val/accuracy": 0.9,
            "val/f1": 0.5,
        },  # beats 0.5556 by > 2 binomial stderr (0.33) on 9
        "majority_baseline": {"accuracy": 0.5556, "f1": 0.0, "class": 0},
        "dev_examples": 9,
        "dev_per_epoch": [
            {"epoch": 1, "step": 3, "val/loss": 0.70, "val/accuracy": 0.6667, "val/f1": 0.5},
            {"epoch": 2, "step": 6, "val/loss": 0.69, "val/accuracy": 0.9, "val/f1": 0.5},
        ],
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def off_plane(dx: dict, dy: dict, seed: int = 5) -> dict:
    """A vector orthogonal to δ1 and δ2 (float64 Gram–Schmidt) with the norm of δ1."""
    from bertviz_landscape.algebra import dot, norm

    gen = torch.Generator().manual_seed(seed)
    r = {n: torch.randn(t.shape, generator=gen, dtype=torch.float64) for n, t in dx.items()}
    basis = []
    for d in (dx, dy):
        d = {n: t.double() for n, t in d.items()}
        for b in basis:
            c = dot(d, b)
            d = {n: d[n] - c * b[n] for n in d}
        s = norm(d)
        basis.append({n: t / s for n, t in d.items()})
    for b in basis:
        c = dot(r, b)
        r = {n: r[n] - c * b[n] for n in r}
    scale = norm(dx) / norm(r)
    return {n: t * scale for n, t in r.items()}


def write_trajectory(run: Path, dx: dict, dy: dict, names: list[str], shapes: dict, rows=TRAJECTORY) -> dict:
    """float32 snapshots θ_t − θ0 = a·δ1 + b·δ2 + s·r; returns r (float64)."""
    from bertviz_landscape.contracts.snapshots import FORMAT, write_snapshot

    snap = run / "snapshots"
    snap.mkdir()
    (snap / "meta.json").write_text(
        json.dumps(
            {
                "format": FORMAT,
                "dtype": "float32",
                "every_n_steps": 1,
                "theta0": "../checkpoints/init",
                "parameters": [{"name": n, "shape": list(shapes[n])} for n in names],
            }
        )
    )
    r = off_plane(dx, dy)
    for step, epoch, a, b, s in rows:
        delta = {
            n: (a * dx[n].double() + b * dy[n].double() + s * r[n]).float()
            if n in dx
            else torch.zeros(shapes[n])
            for n in names
        }
        write_snapshot(snap, step, epoch, 0.7 - 0.01 * step, delta)
    return r


def save_point(tiny, path: Path, a: float, b: float) -> Path:
    """A checkpoint at θ0 + a·(θ1 − θ0) + b·(θ2 − θ0)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    models = [
        AutoModelForSequenceClassification.from_pretrained(str(tiny[k]))
        for k in ("theta0", "theta1", "theta2")
    ]
    s0, s1, s2 = (m.state_dict() for m in models)
    with torch.no_grad():
        models[0].load_state_dict(
            {k: v + a * (s1[k] - v) + b * (s2[k] - v) if v.is_floating_point() else v for k, v in s0.items()}
        )
    models[0].save_pretrained(str(path))
    AutoTokenizer.from_pretrained(str(tiny["theta0"])).save_pretrained(str(path))
    return path


_BUILT: dict = {}  # one build per test session, however many test modules import the fixture


@pytest.fixture(scope="session")
def analysis_run(tmp_path_factory):
    """{"run", "surface", "r", "dx", "dy", "names", "tiny", ...}: a run with a known trajectory on
    its 2D surface."""
    if "analysis_run" not in _BUILT:
        _BUILT["analysis_run"] = _build_analysis_run(tmp_path_factory)
    return _BUILT["analysis_run"]


def _build_analysis_run(tmp_path_factory) -> dict:
    from bertviz_landscape.engine.direction_file import beside, read_directions
    from bertviz_landscape.engine.sweep import landscape

    root = tmp_path_factory.mktemp("analysis_run")
    # tiny_run's checkpoints (helpers.landscape's builders), built here once for every
    # analysis test module
    theta0 = build_tiny(root / "init")
    tiny_run = {
        "theta0": theta0,
        "theta1": build_tiny(root / "final", move_from=theta0, move_seed=1),
        "theta2": build_tiny(root / "other", move_from=theta0, move_seed=2),
        "glue_dir": write_glue(root / "glue"),
        "cache_dir": root / "cache",
        "root": root,
    }
    run = make_run_dir(root / "run", tiny_run)
    res = landscape(
        run=run,
        theta2=tiny_run["theta2"],
        output=root / "plane.h5",
        grid=PLANE_GRID,
        data=data_cfg(tiny_run),
        progress=False,
    )
    directions, _ = read_directions(beside(res.surface))
    from safetensors.torch import load_file

    state = load_file(str(run / "checkpoints" / "init" / "model.safetensors"))
    from bertviz_landscape.contracts.checkpoints import load_model
    from bertviz_landscape.contracts.parameters import parameter_state

    names = list(parameter_state(load_model(run / "checkpoints" / "init")))
    shapes = {n: tuple(state[n].shape) for n in names}
    r = write_trajectory(run, directions.x, directions.y, names, shapes)
    save_point(tiny_run, run / "checkpoints" / "epoch_001", 0.5, 0.25)
    shutil.copytree(tiny_run["theta1"], run / "checkpoints" / "epoch_002")
    return {
        "run": run,
        "surface": res.surface,
        "r": r,
        "dx": directions.x,
        "dy": directions.y,
        "names": names,
        "root": root,
        "tiny": tiny_run,
    }
