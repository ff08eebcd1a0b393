"""Layer-wise panels (the paper's Section 6, "lower layers are more invariant"), from the
`layers` analysis JSON of the pretrained and the from-scratch run of one task:

(a) relative change ‖θ1ˡ − θ0ˡ‖/‖θ0ˡ‖ per layer (embeddings, layer 1 … L, pooler, head);
(b) dev error after rolling layers back to θ0 (single layers, bottom-k, top-k; "none" is θ1);
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


def layer_panels(analyses: dict[str, dict], task: str = ""):
    """`analyses`: init → layers analysis JSON. One figure with the four panels."""
    inits = [i for i in ("pretrained", "scratch") if i in analyses] + [
        i for i in analyses if i not in ("pretrained", "scratch")
    ]
    fig = plt.figure(figsize=(12, 8.4))
    ax_rel = fig.add_subplot(2, 2, 1)
    ax_rb = fig.add_subplot(2, 2, 2)
    curve_axes = [fig.add_subplot(2, len(inits) or 1, (len(inits) or 1) + k + 1) for k in range(len(inits))]

    width = 0.8 / max(1, len(inits))
    for n, init in enumerate(inits):
        pr = (analyses[init].get("per_run") or [{}])[0]
        layers = pr.get("layers") or list((pr.get("relative_change") or {}).keys())
        rel = [float((pr.get("relative_change") or {}).get(layer, np.nan)) for layer in layers]
        pos = np.arange(len(layers)) + (n - (len(inits) - 1) / 2) * width
        ax_rel.bar(pos, rel, width=width, color=style.init_colour(init), label=style.init_label(init))
        ax_rel.set_xticks(np.arange(len(layers)), [_label(x) for x in layers], rotation=0)
        rb = pr.get("rollback") or []
        if rb:
            labels = [_rollback_label(e) for e in rb]
            vals = [float(e.get("dev_error", np.nan)) for e in rb]
            pos = np.arange(len(rb)) + (n - (len(inits) - 1) / 2) * width
            ax_rb.barh(pos, vals, height=width, color=style.init_colour(init), label=style.init_label(init))
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
            ax.set_title(f"(c{n + 1}) per-layer 1D curves, {style.init_label(init)}")
            if names:
                ax.legend(fontsize=7, ncol=2)
    ax_rel.set_yscale("log")
    ax_rel.set_ylabel("relative change ‖θ1ˡ − θ0ˡ‖ / ‖θ0ˡ‖")
    ax_rel.set_title("(a) how far each layer moved")
    ax_rel.legend(fontsize=8)
    ax_rb.set_xlabel(f"{style.DEV_ERROR} after rolling back to θ0")
    ax_rb.set_title("(b) roll-back", loc="left")  # the legend sits at the right above the bars
    ax_rb.invert_yaxis()
    if ax_rb.get_legend_handles_labels()[0]:
        ax_rb.legend(
            fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False
        )  # above the bars, never on them
    else:
        style.no_data(ax_rb, "no roll-back results")
    fig.suptitle(f"{task}: layer-wise analysis")
    fig.text(0.01, 0.005, ROLLBACK_NOTE, fontsize=8, color="0.25", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
