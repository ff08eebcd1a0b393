"""The surface in W&B: a picture (curves, or train-loss and dev-error contours) and the file as an artifact."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bertviz_landscape.landscape.surface import Surface, load_surface


def surface_figure(surface: Surface):
    """1D: train/dev loss and error against α. 2D: train-loss and dev-error contours side by side.

    Non-finite values are masked, not plotted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = [s for s in ("train", "dev") if f"{s}_loss" in surface.values]
    if not surface.two_d:
        fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
        for s in splits:
            ax_loss.plot(surface.x, np.ma.masked_invalid(surface[f"{s}_loss"]), marker="o", label=f"{s} loss")
            ax_err.plot(surface.x, np.ma.masked_invalid(surface[f"{s}_error"]), marker="o", label=f"{s} error")
        for ax, label in ((ax_loss, "loss"), (ax_err, "error = 1 − " + str(surface.meta.get("primary_metric", "metric")))):
            ax.set_xlabel("α"), ax.set_ylabel(label), ax.legend(), ax.grid(alpha=0.3)
    else:
        panels = [(f"{s}_loss", f"{s} loss") for s in splits[:1]] + [("dev_error", "dev error")] * ("dev_error" in surface.values)
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
        for ax, (key, title) in zip(axes[0], panels):
            z = np.ma.masked_invalid(surface[key])  # [ny, nx]: rows are y, as contourf reads it
            cs = ax.contourf(surface.x, surface.y, z, levels=20, cmap="viridis")
            fig.colorbar(cs, ax=ax)
            ax.plot([0, 1], [0, 0], "r*", markersize=10)  # start θ0 and end θ1 (difference recipe)
            ax.set_title(title), ax.set_xlabel("α (δ1)"), ax.set_ylabel("β (δ2)")
    fig.suptitle(f"{surface.meta.get('task', '')} · {surface.meta.get('directions', {}).get('recipe', '')}")
    fig.tight_layout()
    return fig


def log_surface(path: str | os.PathLike, config: dict | None = None, run=None) -> None:
    """Log the surface at `path` to W&B (image + artifact). Uses `run`, or starts one from config['wandb']."""
    import wandb

    path = Path(path)
    surface = load_surface(path)
    opts = dict((config or {}).get("wandb") or {})
    own = run is None
    if own:
        run = wandb.init(project=opts.get("project", "bertviz-landscape"), entity=opts.get("entity"), name=opts.get("name"),
                         mode=opts.get("mode") or os.environ.get("WANDB_MODE", "online"), dir=opts.get("dir"),
                         job_type="landscape", config=config or {})
    fig = surface_figure(surface)
    summary = {}
    for key, arr in surface.values.items():
        finite = arr[np.isfinite(arr)]
        if finite.size:
            summary[f"landscape/{key}_min"] = float(finite.min())
            summary[f"landscape/{key}_max"] = float(finite.max())
    run.log({"landscape/surface": wandb.Image(fig), **summary})
    d = surface.meta.get("directions", {})
    run.summary.update({k: d[k] for k in ("norm_x", "norm_y", "cosine_xy") if k in d})
    artifact = wandb.Artifact(f"surface-{surface.meta.get('task', 'task')}-{d.get('recipe', 'directions')}", type="surface",
                              metadata={k: v for k, v in surface.meta.items() if k != "directions"} | {"directions": {k: v for k, v in d.items() if not k.startswith("layer_norms")}})
    artifact.add_file(str(path))
    run.log_artifact(artifact)
    import matplotlib.pyplot as plt

    plt.close(fig)
    if own:
        run.finish()
