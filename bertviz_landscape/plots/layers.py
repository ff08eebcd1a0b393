"""Layer-wise panels (the paper's Section 6, "lower layers are more invariant"), from the
`layers` analysis JSON of the pretrained and the from-scratch run of one task:

(a) relative change ‖θ1ˡ − θ0ˡ‖/‖θ0ˡ‖ per layer (embeddings, layer 1 … L, pooler, head);
(b) roll-back: what rolling layers back to θ0 does (the others at θ1) — the change against θ1 of
the dev loss (the lower-layers claim's continuous measure), else of the dev error, where the JSONs
record it (θ1 itself, "none", is then the zero line, not a bar); the dev error after the roll-back
for JSONs without changes. Every mean is a ◆ on its bar, so a change of 0 is a ◆ on the zero line,
not an empty row;
(a) and (b) with several seeds: the bar is the mean, a dot each seed; a seed whose run sat at
its majority-class plateau is a red × left out of the mean (the claims' rule for it: evidence.plateau_runs);
(c, d) per-layer 1D curves: training loss when only that layer moves along its slice of δ1,
one panel per init, one distinct colour per layer (tab10; tab20 past ten layers).
The note below the figure defines only the roll-backs the runs made (`rollback_note`): "bottom k" /
"top k" when present, each named by the layers it spans. `layer_panels` returns (figure, caption).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.plots import style

LINESTYLES = ["-", "--", ":", "-."]
ROLLBACK = "roll-back: the named layers set back to θ0, every other layer at θ1"
ROLLBACK_KINDS = {  # what each kind of roll-back means, said only when the runs made one
    "bottom_k": "bottom k = the k lowest groups counted from the embeddings (emb, L1, …)",
    "top_k": "top k = the k highest counted from the head (head, pool, the last layer, …)",
    "none": "none = θ1",
    "all": "all = θ0",
}
# the value panel (b) draws, in order of preference: (key in a roll-back entry, axis label, a change?)
ROLLBACK_VALUES = (
    ("dev_loss_change", "dev-loss change after rolling back to θ0 (vs θ1)", True),
    ("dev_error_change", "dev-error change after rolling back to θ0 (vs θ1)", True),
    ("dev_error", f"{style.DEV_ERROR} after rolling back to θ0", False),
)


def rollback_value(runs: list[dict]) -> tuple[str, str, bool]:
    """(key, axis label, whether it is a change against θ1) of the first of ROLLBACK_VALUES that
    every roll-back entry of every run records (beside θ1's own, "none")."""
    entries = [e for r in runs for e in r.get("rollback") or [] if e.get("kind") != "none"]
    for key, label, change in ROLLBACK_VALUES:
        if entries and all(e.get(key) is not None for e in entries):
            return key, label, change
    return ROLLBACK_VALUES[-1]


def rollback_note(kinds, change: bool) -> str:
    """The note below the figure: what a roll-back is, and only the kinds the runs made."""
    parts = [ROLLBACK]
    for kind in ("bottom_k", "top_k", "none", "all"):
        if kind in kinds and not (change and kind == "none"):
            parts.append(ROLLBACK_KINDS[kind])
    text = parts[0] + (". " + "; ".join(parts[1:]) if len(parts) > 1 else "")
    if change:
        text += "; bars: the change against θ1 (the zero line), ◆ its mean"
    return text


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
    bar,
    dots,
    pos,
    values: np.ndarray,
    colour,
    label: str,
    width: float,
    learned: np.ndarray | None = None,
    mark_mean: bool = False,
) -> None:
    """A bar at the mean over the seeds that learned, one dot per seed on it (the spread, not a
    stand-in for it); a seed at its majority-class plateau (`learned` false) is a red × outside
    the mean (the claims' rule for such runs: evidence.plateau_runs). `mark_mean`: a ◆ at each
    mean too, so a mean of 0 (a zero-length bar) still shows as measured."""
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
    if mark_mean:
        dots(pos, mean, "D", color=colour, markeredgecolor="black", markersize=4, linestyle="none", zorder=5)
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


def layer_panels(analyses: dict, task: str = "") -> tuple[object, str]:
    """`analyses`: init → the layers analysis JSON of each seed (a list; one JSON is one seed).
    (a) and (b) draw the mean over seeds as bars and every seed as a dot; (c) the first seed's
    per-layer curves. (figure, caption): one figure with the panels the runs have."""
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
    every_run = [(d.get("per_run") or [{}])[0] for runs in analyses.values() for d in runs]
    value_key, value_label, change = rollback_value(every_run)
    kinds = {e.get("kind") for r in every_run for e in r.get("rollback") or []}
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
        rb = [
            e for e in pr.get("rollback") or [] if not (change and e.get("kind") == "none")
        ]  # none: the 0 line
        if rb:
            labels = [_rollback_label(e) for e in rb]
            keys = [(e.get("kind"), tuple(e.get("layers") or [])) for e in rb]

            def rolled_back(r, key):
                hit = [
                    e for e in r.get("rollback") or [] if (e.get("kind"), tuple(e.get("layers") or [])) == key
                ]
                value = hit[0].get(value_key) if hit else None
                return np.nan if value is None else float(value)

            vals = _per_seed(runs, keys, rolled_back)
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
                mark_mean=True,
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
    ax_rb.set_xlabel(value_label)
    if change:
        ax_rb.axvline(0.0, color="0.25", linewidth=0.9, zorder=1)  # θ1 itself: no change
        lo, hi = ax_rb.get_xlim()
        pad = 0.03 * (hi - lo)
        ax_rb.set_xlim(min(lo, -pad), max(hi, pad))  # a ◆ at 0 whole, not cut by the axis
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
    counts = {init: len(analyses[init]) for init in inits}
    several = any(c > 1 for c in counts.values())
    runs_text = ", ".join(f"{c} {init}" for init, c in counts.items())
    fig.suptitle(f"{task}: layer-wise analysis" + (f" — {runs_text} runs" if several else ""))
    note = rollback_note(kinds, change) + (
        "" if has_curves else "\nno per-layer 1D curves in these runs (analysis.curves=false)"
    )
    fig.text(0.01, 0.005, note, fontsize=8, color="0.25", ha="left", va="bottom")
    style.tight_layout(fig, rect=(0, 0.03 if has_curves else 0.07, 1, 1))
    drawn = ["per-layer relative change"] + (
        [f"roll-back ({value_label.split(' after')[0]})"] if kinds else []
    )
    caption = f"{task}: " + ", ".join(drawn) + (" and per-layer 1D curves" if has_curves else "")
    caption += f"; {rollback_note(kinds, change)}" if kinds else ""
    if several:
        first = ", ".join(f"{init} seed {_seed_of(analyses[init][0])}" for init in inits)
        caption += f"; bars: mean over seeds ({runs_text} runs), dots: each seed" + (
            f"; the 1D curves of {first}" if has_curves else ""
        )
        plateau = [
            f"{init} seed {_seed_of(d)}"
            for init in inits
            for d, ok in zip(analyses[init], plateau_seeds(analyses[init]))
            if not ok
        ]
        if plateau:
            caption += (
                f"; ×, not in the bars' mean: {', '.join(plateau)}, which did not beat the majority "
                "baseline (the report says how the claims treat it: evidence.plateau_runs)"
            )
    return fig, caption


def _seed_of(data: dict):
    """The seed of a one-run analysis JSON ('?' when it does not say)."""
    return ((data.get("runs") or [{}])[0]).get("seed", "?")
