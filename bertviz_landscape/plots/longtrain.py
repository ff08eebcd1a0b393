"""Dev metric per epoch (the paper's Section 5, "robustness to overfitting"): pretrained and
from scratch on one axis, the majority-class baseline dashed, the best epoch marked.

Reads the `longtrain` analysis JSON ("dev_metric_per_epoch", "best_epoch", "primary_metric")
or, for any run, its ``metrics.json`` ("dev_per_epoch", "majority_baseline") — so every run
directory gets the figure, long-trained or not.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.analysis.spec import finite
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.plots import style


def series_from_run(run_dir) -> dict:
    """{'init','task','metric','values','baseline'} from a run directory's metrics.json."""

    rd = RunDir(run_dir)
    m = rd.read_metrics()
    metric = m.get("primary_metric", "accuracy")
    values = [float(e.get(f"val/{metric}", e.get(metric, np.nan))) for e in m.get("dev_per_epoch") or []]
    base = (m.get("majority_baseline") or {}).get(metric)
    return {
        "init": m.get("init"),
        "task": m.get("task"),
        "metric": metric,
        "values": values,
        "baseline": None if base is None else float(base),
    }


def series_from_analysis(data: dict) -> dict:
    run = (data.get("runs") or [{}])[0]
    pr = (data.get("per_run") or [{}])[0]
    return {
        "init": run.get("init"),
        "task": run.get("task"),
        "metric": pr.get("primary_metric") or run.get("primary_metric", "metric"),
        "values": [float(v) if v is not None else np.nan for v in pr.get("dev_metric_per_epoch") or []],
        "baseline": run.get("majority_baseline"),
        # the registered statistic's early epoch (last − early), when the analysis measured it: a
        # whole finite number, else none (the JSON is a file: a string, NaN or inf draws no line)
        "early_epoch": _whole((data.get("numbers") or {}).get("early_epoch", pr.get("early_epoch"))),
    }


def _whole(v) -> int | None:
    f = finite(v)
    return int(f) if f is not None and f.is_integer() else None


def dev_per_epoch(series: list[dict], title: str | None = None) -> tuple[object, str]:
    """(figure, caption): the dev metric after each epoch of every series, ★ at its best epoch."""
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    baselines = set()
    counts = {i: sum(x["init"] == i for x in series) for i in dict.fromkeys(x["init"] for x in series)}
    labelled = set()
    for s in series:
        v = np.asarray(s["values"], dtype=np.float64)
        epochs = np.arange(1, len(v) + 1)
        colour = style.init_colour(s["init"])
        label = None
        if s["init"] not in labelled:  # one legend entry per arm, not one per seed
            labelled.add(s["init"])
            n = counts[s["init"]]
            label = style.init_label(s["init"]) + (f" ({n} seeds)" if n > 1 else "")
        ax.plot(epochs, style.masked(v), "-o", color=colour, markersize=4, label=label)
        if np.isfinite(v).any():
            best = int(np.nanargmax(v)) if s["metric"] not in ("mse",) else int(np.nanargmin(v))
            ax.plot([epochs[best]], [v[best]], "*", color=colour, markersize=12, markeredgecolor="black")
        if s.get("baseline") is not None:
            baselines.add(round(float(s["baseline"]), 6))
    for b in sorted(baselines):
        ax.axhline(b, color="0.4", linestyle="--", linewidth=1, label=f"majority baseline ({b:.3f})")
    last = max((len(s["values"]) for s in series), default=1)
    early = sorted({int(s["early_epoch"]) for s in series if s.get("early_epoch") is not None})
    early = [e for e in early if 1 <= e < last]  # drawn where the runs trained past it
    for e in early:
        ax.axvline(
            e, color="0.25", linestyle=":", linewidth=1.2, label=f"epoch {e}: the early epoch of last − early"
        )
    metric = series[0]["metric"] if series else "metric"
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"dev {metric}")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, last + 0.5)  # whole epochs on the axis, also for a one-epoch run
    ax.legend(fontsize=8)
    task = series[0]["task"] if series else ""
    ax.set_title(title or f"{task}: dev {metric} per epoch (★ best)")
    style.tight_layout(fig)
    caption = f"{task}: dev {metric} after each epoch (★ best)" + (
        ", majority baseline dashed" if baselines else ""
    )
    if early:  # the registered statistic: the last epoch's dev metric minus this epoch's
        caption += (
            f"; dotted: epoch {', '.join(map(str, early))}, the early epoch of the registered last − early"
        )
    return fig, caption
