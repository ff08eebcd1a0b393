"""Linear interpolation between two seeds' θ1 (analysis=basins): the loss along
θ(t) = (1 − t)θ1ᵃ + tθ1ᵇ, one line per pair, pretrained and from scratch in one panel per split;
the barrier is the curve's rise above the chord between its ends."""

from __future__ import annotations

import matplotlib.pyplot as plt

from bertviz_landscape.plots import style


def interpolation_curves(datas: list[dict], task: str) -> tuple[object, str]:
    """(figure, caption): one panel per split (train subset, dev) of every pair's curve, coloured by init."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.8), sharex=True)
    for ax, split in zip(axes, ("train", "dev")):
        for data in datas:
            init = (data.get("runs") or [{}])[0].get("init")
            for entry in data.get("per_run") or []:
                curve = entry.get("curve") or {}
                if curve.get(f"{split}_loss"):
                    ax.plot(
                        curve["t"],
                        curve[f"{split}_loss"],
                        marker="o",
                        ms=3,
                        alpha=0.8,
                        color=style.init_colour(init),  # one colour per arm (the legend's)
                        label=style.init_label(init),
                    )
        ax.set_xlabel("t  (θ1 of seed s → θ1 of the next seed)")
        ax.set_ylabel(f"{split} loss")
        handles, labels = ax.get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        if seen:
            ax.legend(seen.values(), seen.keys(), fontsize=8)
    fig.suptitle(f"{task}: loss on the line between two seeds' θ1 (shared θ0)")
    style.tight_layout(fig)
    caption = (
        f"{task}: loss on the straight line between two seeds' θ1 that share θ0 (each run to the next "
        "seed's); the barrier is the rise above the chord between the ends"
    )
    return fig, caption
