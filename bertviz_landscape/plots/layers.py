"""Layer-wise panels (the paper's Section 6, "lower layers are more invariant"), from the
`layers` analysis JSON of the pretrained and the from-scratch run of one task:

(a) relative change ‖θ1ˡ − θ0ˡ‖/‖θ0ˡ‖ per layer (embeddings, layer 1 … L, pooler, head);
(b) dev error after rolling layers back to θ0 (single layers, bottom-k, top-k; "none" is θ1);
(a) and (b) with several seeds: the bar is the mean, a dot each seed; a seed whose run sat at
its majority-class plateau is a red × left out of the mean (the claims' rule for it: evidence.plateau_runs);
(c, d) per-layer 1D curves: training loss when only that layer moves along its slice of δ1,
one panel per init, one distinct colour per layer (tab10; tab20 past ten layers).
"bottom k" / "top k" are defined on the figure (ROLLBACK_NOTE) and name the layers they span.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.plots import style

LINESTYLES = ["-", "--", ":", "-."]
ROLLBACK_NOTE = (
    "roll-back: the named layers set back to θ0, every other layer at θ1. bottom k = the k lowest groups "
    "counted from the embeddings (emb, L1, …); top k = the k highest counted from the head "
    "(head, pool, the last layer, …); "
    "none = θ1, all = θ0"
)


def _label(layer: str) -> str:
    if layer.startswith("layer."):
        return f"L{int(layer.split('.')[1]) + 1}"
    return {"embeddings": "emb", "pooler": "pool"}.get(layer, layer)


def _rollback_label(entry: dict) -> str:
    kind, k, layers = entry.get("kind"), entry.get("k"), entry.get("layers") or []
    span = (
        f" ({_label(layers[0])}–{_label(layers[-1])})"
        if len(layers) > 1
        else (f" ({_label(layers[0])})" if layers else "")
    )
    if kind == "bottom_k":
        return f"bottom {k}{span}"
    if kind == "top_k":
        return f"top {k}{span}"
    if kind in ("none", "all"):
        return {"none": "none (θ1)", "all": "all (θ0)"}[kind]
    return "+".join(_label(x) for x in layers)


def _per_seed(runs: list[dict], rows: list, value) -> np.ndarray:
    """[seed, row] values (NaN where a seed lacks a row): `value(per_run, row)`."""
    return np.array([[value(pr, row) for row in rows] for pr in runs], dtype=float).reshape(
        len(runs), len(rows)
    )


def _bars_with_seeds(
    bar, dots, pos, values: np.ndarray, colour, label: str, width: float, learned: np.ndarray | None = None
) -> None:
    """A bar at the mean over the seeds that learned, one dot per seed on it (the spread, not a
    stand-in for it); a seed at its majority-class plateau (`learned` false) is a red × outside
    the mean (the claims' rule for such runs: evidence.plateau_runs)."""
    n = values.shape[0]
    learned = np.ones(n, dtype=bool) if learned is None else np.asarray(learned, dtype=bool)
    kept = values[learned] if learned.any() else values
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(kept, axis=0) if kept.size else np.zeros(values.shape[1:])  # no layers: no bars
    plateau = int((~learned).sum())
    label += (
        f" (mean of {n - plateau} seeds" + (f"; × {plateau} plateau, not in the mean)" if plateau else ")")
        if n > 1
        else ""
    )
    bar(pos, mean, width, color=colour, label=label, alpha=0.85)
    if n > 1:
        jitter = (np.arange(n) - (n - 1) / 2) * width / max(n, 2) * 0.8
        for k in range(n):
            if learned[k]:
                dots(pos + jitter[k], values[k], "o", color="0.1", markersize=2.6, zorder=3)
            else:
                dots(pos + jitter[k], values[k], "x", color="#d62728", markersize=5, mew=1.4, zorder=4)


def plateau_seeds(analyses: list[dict]) -> np.ndarray:
    """Per analysis JSON (one seed each): whether its run beat its majority baseline (the JSON's
    runs[0].beat_baseline; unknown counts as learned)."""
    return np.array([((d.get("runs") or [{}])[0]).get("beat_baseline") is not False for d in analyses])


def layer_panels(analyses: dict, task: str = ""):
    """`analyses`: init → the layers analysis JSON of each seed (a list; one JSON is one seed).
    (a) and (b) draw the mean over seeds as bars and every seed as a dot; (c) the first seed's
    per-layer curves. One figure with the four panels."""
    analyses = {init: (runs if isinstance(runs, list) else [runs]) for init, runs in analyses.items()}
    inits = [i for i in ("pretrained", "scratch") if i in analyses] + [
        i for i in analyses if i not in ("pretrained", "scratch")
    ]
    # the per-layer curves' row only where some run has curves (analysis.curves=false: none to draw)
    has_curves = any((d.get("per_run") or [{}])[0].get("curves") for runs in analyses.values() for d in runs)
    rows = 2 if has_curves else 1
    fig = plt.figure(figsize=(12, 8.4 if has_curves else 5.0))
    ax_rel = fig.add_subplot(rows, 2, 1)
    ax_rb = fig.add_subplot(rows, 2, 2)
    curve_axes = (
        [fig.add_subplot(2, len(inits) or 1, (len(inits) or 1) + k + 1) for k in range(len(inits))]
        if has_curves
        else []
    )

    width = 0.8 / max(1, len(inits))
    for n, init in enumerate(inits):
        runs = [(d.get("per_run") or [{}])[0] for d in analyses[init]]
        learned = plateau_seeds(analyses[init])
        pr = runs[0]
        layers = pr.get("layers") or list((pr.get("relative_change") or {}).keys())
        rel = _per_seed(runs, layers, lambda r, layer: (r.get("relative_change") or {}).get(layer, np.nan))
        pos = np.arange(len(layers)) + (n - (len(inits) - 1) / 2) * width
        colour, label = style.init_colour(init), style.init_label(init)
        _bars_with_seeds(ax_rel.bar, ax_rel.plot, pos, rel, colour, label, width, learned)
        ax_rel.set_xticks(np.arange(len(layers)), [_label(x) for x in layers], rotation=0)
        rb = pr.get("rollback") or []
        if rb:
            labels = [_rollback_label(e) for e in rb]
            keys = [(e.get("kind"), tuple(e.get("layers") or [])) for e in rb]

            def dev_error(r, key):
                hit = [
                    e for e in r.get("rollback") or [] if (e.get("kind"), tuple(e.get("layers") or [])) == key
                ]
                return float(hit[0].get("dev_error", np.nan)) if hit else np.nan

            vals = _per_seed(runs, keys, dev_error)
            pos = np.arange(len(rb)) + (n - (len(inits) - 1) / 2) * width
            _bars_with_seeds(
                lambda p, v, w, **kw: ax_rb.barh(p, v, height=w, **kw),
                lambda p, v, *a, **kw: ax_rb.plot(v, p, *a, **kw),
                pos,
                vals,
                colour,
                label,
                width,
                learned,
            )
            ax_rb.set_yticks(np.arange(len(rb)), labels, fontsize=8.5)
        if n < len(curve_axes):
            ax = curve_axes[n]
            curves = pr.get("curves") or {}
            names = [layer for layer in layers if layer in curves] or list(curves)
            palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors  # distinct hues
            for i, layer in enumerate(names):
                c = curves[layer]
                ax.plot(
                    c.get("alpha", []),
                    style.masked(c.get("train_loss", [])),
                    LINESTYLES[(i // len(palette)) % len(LINESTYLES)],
                    marker=".",
                    markersize=3,
                    color=palette[i % len(palette)],
                    label=_label(layer),
                )
            if not names:
                style.no_data(ax, "no per-layer curves")
            ax.axvline(0, color="0.6", linestyle=":", linewidth=1)
            ax.axvline(1, color="0.6", linestyle=":", linewidth=1)
            ax.set_xlabel("α (only this layer moves along its slice of δ1)")
            ax.set_ylabel(style.TRAIN_LOSS)
            seed = ((analyses[init][0].get("runs") or [{}])[0]).get("seed")
            first = f" (seed {seed})" if len(runs) > 1 and seed is not None else ""
            ax.set_title(f"(c{n + 1}) per-layer 1D curves, {style.init_label(init)}{first}")
            if names:
                ax.legend(fontsize=7, ncol=2)
    ax_rel.set_yscale("log")
    ax_rel.set_ylabel("relative change ‖θ1ˡ − θ0ˡ‖ / ‖θ0ˡ‖")
    ax_rel.set_title("(a) how far each layer moved")
    ax_rel.legend(fontsize=8)
    ax_rb.set_xlabel(f"{style.DEV_ERROR} after rolling back to θ0")
    ax_rb.set_title("(b) roll-back", loc="left")
    ax_rb.invert_yaxis()
    if ax_rb.get_legend_handles_labels()[0]:
        ax_rb.legend(  # below the axis label: never on the bars or the title
            fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.1 if has_curves else -0.14),
            ncol=2,
            frameon=False,
        )
    else:
        style.no_data(ax_rb, "no roll-back results")
    fig.suptitle(f"{task}: layer-wise analysis")
    note = ROLLBACK_NOTE + (
        "" if has_curves else "\nno per-layer 1D curves in these runs (analysis.curves=false)"
    )
    fig.text(0.01, 0.005, note, fontsize=8, color="0.25", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03 if has_curves else 0.07, 1, 1))
    return fig
