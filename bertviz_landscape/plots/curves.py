"""1D loss curves (the paper's Figure 1): J(θ0 + α·δ1) of the pretrained and the from-scratch
run of one task, in two panels that share α: training loss on top, dev error below (each its
own labelled axis, never a second y-axis over the first). A ±1 standard-error band where the
surface recorded ``{split}_loss_stderr``, inside the axis limits (never clipped). θ0 is at
α = 0, θ1 at α = 1 (dotted verticals). Non-finite points are masked. A lowest point on the
grid's edge is marked and named in a note with the override that widens the grid. Several runs
(seeds) of one init on one grid are drawn as their mean with the min–max over the runs shaded.
The title and the caption name the arms drawn (one arm: no "vs").

`loss_curves` returns (figure, caption): the caption says what the figure shows, its notes included.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.engine.surface import Surface, minimum_on_edge
from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import SurfaceFile


def _band(sf: SurfaceFile, key: str):
    """(lower, upper) of the ±1 standard-error band of `key`, or None."""
    se_key = f"{key}_stderr"
    if se_key not in sf.surface:
        return None
    y = np.asarray(sf.surface[key], dtype=np.float64)
    se = np.asarray(sf.surface[se_key], dtype=np.float64)
    ok = np.isfinite(se) & np.isfinite(y)
    return np.where(ok, y - se, np.nan), np.where(ok, y + se, np.nan)


def seed_groups(curves: list[SurfaceFile]) -> list[tuple[SurfaceFile, dict | None]]:
    """Several runs (seeds) of one init on the same α grid become one curve: (a SurfaceFile of
    their mean, {"n", "<key>": (min, max) over the runs}); a single run stays as it is (None)."""
    by_init: dict[str, list[SurfaceFile]] = {}
    for sf in curves:
        by_init.setdefault(sf.init, []).append(sf)
    out = []
    for init, group in by_init.items():
        same_grid = all(np.array_equal(g.surface.x, group[0].surface.x) for g in group)
        if len(group) < 2 or not same_grid:
            out += [(g, None) for g in group]
            continue
        keys = [k for k in ("train_loss", "dev_error") if all(k in g.surface for g in group)]
        values, spread = {}, {"n": len(group)}
        for k in keys:
            stack = np.stack([np.asarray(g.surface[k], dtype=np.float64) for g in group])
            with np.errstate(all="ignore"):
                values[k] = np.nanmean(np.where(np.isfinite(stack), stack, np.nan), axis=0)
                spread[k] = (np.nanmin(stack, axis=0), np.nanmax(stack, axis=0))
        first = group[0]
        mean = Surface(first.surface.x, None, values, dict(first.surface.meta))
        out.append((SurfaceFile(first.path, mean, first.task, init), spread))
    return out


def _limits(ax, arrays, floor: float | None = None, ceiling: float | None = None) -> bool:
    rng = style.finite_range(*arrays)
    if rng is None:
        return False
    pad = 0.05 * (rng[1] - rng[0])
    lo, hi = rng[0] - pad, rng[1] + pad
    if floor is not None and rng[0] >= floor:
        lo = max(lo, floor)
    if ceiling is not None and rng[1] <= ceiling:
        hi = min(hi, ceiling)
    ax.set_ylim(lo, hi)
    return True


def arms_text(inits) -> str:
    """The arms a figure draws, in the paper's words: "pretrained vs from scratch", or one arm."""
    return " vs ".join(style.init_label(i) for i in dict.fromkeys(inits))


def loss_curves(curves: list[SurfaceFile], title: str | None = None) -> tuple[object, str]:
    """(figure, caption): every 1D surface in `curves` (typically the pretrained and the scratch
    runs of one task); training loss (top panel) and dev error (bottom panel) against α."""
    has_err = any("dev_error" in c.surface for c in curves)
    nrows = 2 if has_err else 1
    fig, axes = plt.subplots(nrows, 1, figsize=(6.4, 3.0 * nrows + 1.0), sharex=True, squeeze=False)
    ax, ax_err = axes[0][0], (axes[1][0] if has_err else None)
    handles, notes, loss_arrays, err_arrays = [], [], [], []
    for sf, spread in seed_groups(curves):
        s, colour, label = sf.surface, style.init_colour(sf.init), style.init_label(sf.init)
        if spread is not None:
            label = f"{label} (mean of {spread['n']} seeds)"
        x = np.asarray(s.x, dtype=np.float64)
        if "train_loss" in s:
            y = style.masked(s["train_loss"])
            (h,) = ax.plot(
                x, y, "-", color=colour, marker="o", markersize=3, label=f"{label}: {style.TRAIN_LOSS}"
            )
            handles.append(h)
            loss_arrays.append(s["train_loss"])
            band = spread.get("train_loss") if spread else _band(sf, "train_loss")
            if band is not None:
                ax.fill_between(x, *band, color=colour, alpha=0.2, linewidth=0)
                loss_arrays += list(band)
        if spread is not None and "dev_error" in spread and ax_err is not None:
            ax_err.fill_between(x, *spread["dev_error"], color=colour, alpha=0.2, linewidth=0)
            err_arrays += list(spread["dev_error"])
        if "dev_error" in s and ax_err is not None:
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
            err_arrays.append(s["dev_error"])
        for key, target in (("train_loss", ax), ("dev_error", ax_err)):
            edge = minimum_on_edge(s, key) if target is not None else None
            if edge is not None:
                target.plot(
                    [edge["alpha"]],
                    [edge["value"]],
                    "X",
                    color=colour,
                    markeredgecolor="black",
                    markersize=9,
                    zorder=5,
                )
                notes.append(f"{label}: {edge['message']}")
    if not _limits(ax, loss_arrays):
        style.no_data(ax)
    ax.set_ylabel(style.TRAIN_LOSS)
    if ax_err is not None:
        _limits(ax_err, err_arrays, floor=0.0, ceiling=1.0)
        metric = curves[0].surface.meta.get("primary_metric", "metric") if curves else "metric"
        ax_err.set_ylabel(f"{style.DEV_ERROR} = 1 − {metric}")
    for a_ in [a[0] for a in axes]:
        for a in (0.0, 1.0):
            a_.axvline(a, color="0.6", linestyle=":", linewidth=1)
    axes[-1][0].set_xlabel(style.axis_labels(curves[0].recipe if curves else None)[0])
    ymin, ymax = ax.get_ylim()
    ax.text(0.0, ymax, " θ0", va="top", ha="left", color="0.4", fontsize=8)
    ax.text(1.0, ymax, " θ1", va="top", ha="left", color="0.4", fontsize=8)
    task = curves[0].task if curves else ""
    arms = arms_text(c.init for c in curves)
    several = len({c.init for c in curves}) > 1
    fig.suptitle(title or f"{task}: 1D loss curve{'s' if several else ''} along δ1, {arms}")
    groups = seed_groups(curves)
    if any(spread is None and "train_loss_stderr" in c.surface for c, spread in groups):
        notes.insert(0, "band: ±1 standard error of the mean loss over the examples")
    if any(spread is not None for _, spread in groups):
        notes.insert(0, "shaded (seeds): min–max over the runs of that init; line: their mean")
    height = fig.get_figheight()
    for k, text in enumerate(reversed(notes)):
        fig.text(0.01, 0.005 + k * 0.19 / height, text, fontsize=7, color="0.25", ha="left", va="bottom")
    bottom = 0.01 + len(notes) * 0.19 / height
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=2,
            fontsize=8,
            bbox_to_anchor=(0.5, bottom),
            frameon=False,
        )
    style.tight_layout(fig, rect=(0, bottom + (0.55 / height if handles else 0), 1, 1))
    caption = (
        f"{task}: training loss (top panel) and dev error (bottom panel) along δ1 = θ1 − θ0, {arms}; "
        "θ0 at α=0, θ1 at α=1" + "".join(f"; {n}" for n in notes)
    )
    return fig, caption
