"""1D loss curves (the paper's Figure 1): J(θ0 + α·δ1) of the pretrained and the from-scratch
run of one task on one plot — training loss on the left axis (solid), dev error on the right
axis (dashed), a ±1 standard-error band where the surface recorded ``{split}_loss_stderr``.
θ0 is at α = 0, θ1 at α = 1 (dotted verticals). Non-finite points are masked.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import SurfaceFile


def loss_curves(curves: list[SurfaceFile], title: str | None = None):
    """One figure: every 1D surface in `curves` (typically the pretrained and the scratch run of
    one task); training loss (left axis) and dev error (right axis) against α."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax_err = ax.twinx()
    ax_err.spines["top"].set_visible(False)
    handles = []
    for sf in curves:
        s, colour, label = sf.surface, style.init_colour(sf.init), style.init_label(sf.init)
        x = np.asarray(s.x, dtype=np.float64)
        if "train_loss" in s:
            y = style.masked(s["train_loss"])
            (h,) = ax.plot(
                x, y, "-", color=colour, marker="o", markersize=3, label=f"{label}: {style.TRAIN_LOSS}"
            )
            handles.append(h)
            if "train_loss_stderr" in s:
                se = np.asarray(s["train_loss_stderr"], dtype=np.float64)
                ok = np.isfinite(se) & ~np.ma.getmaskarray(y)
                ax.fill_between(
                    x,
                    np.where(ok, y.filled(np.nan) - se, np.nan),
                    np.where(ok, y.filled(np.nan) + se, np.nan),
                    color=colour,
                    alpha=0.2,
                    linewidth=0,
                )
        if "dev_error" in s:
            (h,) = ax_err.plot(
                x,
                style.masked(s["dev_error"]),
                "--",
                color=colour,
                marker="s",
                markersize=3,
                label=f"{label}: {style.DEV_ERROR}",
            )
            handles.append(h)
    for a in (0.0, 1.0):
        ax.axvline(a, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel(style.axis_labels(curves[0].recipe if curves else None)[0])
    ax.set_ylabel(f"{style.TRAIN_LOSS} (solid)")
    ax_err.set_ylabel(
        f"{style.DEV_ERROR} = 1 − {curves[0].surface.meta.get('primary_metric', 'metric') if curves else 'metric'} (dashed)"
    )
    rng = style.finite_range(*[c.surface["train_loss"] for c in curves if "train_loss" in c.surface])
    if rng is None:
        style.no_data(ax)
    else:
        pad = 0.05 * (rng[1] - rng[0])
        ax.set_ylim(rng[0] - pad, rng[1] + pad)
    erng = style.finite_range(*[c.surface["dev_error"] for c in curves if "dev_error" in c.surface])
    if erng is not None:
        ax_err.set_ylim(max(0.0, erng[0] - 0.05), min(1.0, erng[1] + 0.05) if erng[1] <= 1 else erng[1])
    ymin, ymax = ax.get_ylim()
    ax.text(0.0, ymax, " θ0", va="top", ha="left", color="0.4", fontsize=8)
    ax.text(1.0, ymax, " θ1", va="top", ha="left", color="0.4", fontsize=8)
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)
    task = curves[0].task if curves else ""
    ax.set_title(title or f"{task}: 1D loss curves along δ1, pretrained vs from scratch")
    fig.tight_layout()
    return fig
