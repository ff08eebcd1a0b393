"""Curvature and width numbers (the paper's "wider optima"), pretrained vs from scratch per
task, from the `flatness` analysis JSONs' "summary": basin width along δ1 and area in units of
‖δ1‖ at each tolerance ε, and the Hessian's top eigenvalue and trace where computed. Bars are
means, error bars the std over runs (n in the label).
"""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import analysis_identity, summary_value


def _metric_keys(analyses: list[dict]) -> list[str]:
    keys = set()
    for a in analyses:
        keys |= set((a.get("summary") or {}).keys())
    order = []
    for pattern in (r"width_x_", r"area_", r"hessian_top$", r"hessian_trace$"):
        order += sorted((k for k in keys if re.match(pattern, k)), key=lambda k: (len(k), k))
    return order


def curvature_numbers(analyses: list[dict], title: str = "flatness: pretrained vs from scratch"):
    """One small panel per summary scalar (width_x_<ε>, area_<ε>, hessian_top, hessian_trace);
    bars per (task, init)."""
    keys = _metric_keys(analyses)
    n = max(1, len(keys))
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False)
    groups = sorted({analysis_identity(a) for a in analyses}, key=lambda t: (t[0], t[1] != "pretrained"))
    tasks = sorted({t for t, _ in groups})
    for ax, key in zip(axes.ravel(), keys):
        for t_i, task in enumerate(tasks):
            inits = [i for (t, i) in groups if t == task]
            for k, init in enumerate(inits):
                vals = [summary_value(a, key) for a in analyses if analysis_identity(a) == (task, init)]
                vals = [v for v in vals if v is not None]
                if not vals:
                    continue
                mean, std, cnt = vals[0]
                x = t_i + (k - (len(inits) - 1) / 2) * 0.38
                ax.bar(x, mean, width=0.36, yerr=std if cnt > 1 else None, color=style.init_colour(init), capsize=3,
                       label=style.init_label(init) if t_i == 0 else None)
                ax.annotate(f"{mean:.3g}" + (f"\n±{std:.2g}" if cnt > 1 else ""), (x, mean), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_title(_title(key), fontsize=9)
        ax.margins(y=0.2)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    if not keys:
        style.no_data(axes[0, 0], "no flatness numbers")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _title(key: str) -> str:
    if key.startswith("width_x_"):
        return f"basin width along δ1 (units of ‖δ1‖), ε={key[8:]}"
    if key.startswith("area_"):
        return f"basin area (units of ‖δ1‖²), ε={key[5:]}"
    return {"hessian_top": "Hessian top eigenvalue", "hessian_trace": "Hessian trace"}.get(key, key)
