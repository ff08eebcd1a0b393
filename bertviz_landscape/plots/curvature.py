"""Curvature and width numbers (the paper's "wider optima"), pretrained vs from scratch per
task, from the `flatness` analysis JSONs: the basin width along δ1 around θ1 against the
tolerance ε (in units of ‖δ1‖, and in absolute parameter distance), the basin area of the 2D
surface when measured, and the Hessian's top eigenvalue and trace where computed. A width or an
area whose basin reaches the grid's edge is a lower bound: a hollow marker (filled: the basin ends
inside the grid); the area panel draws the sampled plane's area, which no area can exceed. Error
bars: std over runs (n > 1); with one JSON per seed, the bars are the mean over the seeds that
learned and each seed is a dot; a run that did not beat its majority baseline is a red × outside
the mean. `curvature_numbers` returns (figure, caption).
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.analysis.spec import summary_entry
from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import analysis_identity

LINESTYLES = ["-", "--", ":", "-."]
PLATEAU = "#d62728"  # a run that did not beat its majority baseline (evidence.plateau_runs)


def _learned(data: dict) -> bool:
    """Whether the JSON's (first) run beat its majority baseline (unknown: yes)."""
    return ((data.get("runs") or [{}])[0]).get("beat_baseline") is not False


def _eps_series(data: dict, prefix: str, suffix: str = "") -> list[tuple[float, float, float, bool]]:
    """(ε, mean, std, bounded) for the summary keys `<prefix><ε><suffix>`."""
    out = []
    for key in data.get("summary") or {}:
        if not key.startswith(prefix) or not key.endswith(suffix):
            continue
        middle = key[len(prefix) : len(key) - len(suffix)] if suffix else key[len(prefix) :]
        try:
            eps = float(middle)
        except ValueError:
            continue
        v = summary_entry(data, key)
        if v is None:
            continue
        bounded = True
        for pr in data.get("per_run") or []:
            if prefix == "width_x_":
                entry = (((pr.get("width") or {}).get("x") or {}).get(middle)) or {}
            elif prefix == "area_":
                entry = ((pr.get("area") or {}).get(middle)) or {}
            else:
                entry = {}
            bounded = bounded and entry.get("bounded") is not False
        out.append((eps, v[0], v[1], bounded))
    return sorted(out)


def plane_area(data: dict) -> float | None:
    """The sampled plane's area (units of ‖δ1‖²) of a flatness JSON's surfaces: the largest any
    basin area can be (None when the JSON does not record it)."""
    planes = [
        e.get("plane_units_delta1_sq")
        for pr in data.get("per_run") or []
        for e in ((pr.get("area") or {}).values())
        if isinstance(e, dict) and e.get("plane_units_delta1_sq") is not None
    ]
    return max(planes) if planes else None


def curvature_numbers(analyses: list[dict], title: str | None = None) -> tuple[object, str]:
    """(figure, caption): the flatness numbers of every task and arm in `analyses` (module doc)."""
    groups = sorted({analysis_identity(a) for a in analyses}, key=lambda t: (t[0], t[1] != "pretrained"))
    tasks = sorted({t for t, _ in groups})
    panels = [
        ("width_x_", "", "basin width along δ1 around θ1\n(units of ‖δ1‖)"),
        ("width_x_", "_absolute", "basin width along δ1\n(parameter distance)"),
        ("area_", "", "basin area of the 2D surface\n(units of ‖δ1‖²)"),
    ]
    panels = [p for p in panels if any(_eps_series(a, p[0], p[1]) for a in analyses)]
    hess = [k for k in ("hessian_top", "hessian_trace") if any(summary_entry(a, k) for a in analyses)]
    n = max(1, len(panels) + len(hess))
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.6), squeeze=False)
    axes = list(axes[0])
    for ax, (prefix, suffix, label) in zip(axes, panels):
        for data in analyses:
            task, init = analysis_identity(data)
            series = _eps_series(data, prefix, suffix)
            if not series:
                continue
            eps, mean, std, bounded = map(np.asarray, zip(*series))
            colour, ls = style.init_colour(init), LINESTYLES[tasks.index(task) % len(LINESTYLES)]
            if not _learned(data):  # a plateau run: thin, red ×, its own legend entry
                ax.plot(eps, mean, linestyle=ls, color=colour, linewidth=0.8, alpha=0.6)
                ax.plot(
                    eps, mean, "x", color=PLATEAU, markersize=5, mew=1.4,
                    label=f"{task} · {style.init_label(init)}, plateau",
                )  # fmt: skip
                continue
            ax.errorbar(
                eps,
                mean,
                yerr=std if np.any(std > 0) else None,
                color=colour,
                linestyle=ls,
                capsize=3,
                label=f"{task} · {style.init_label(init)}",
            )
            ax.plot(eps[bounded], mean[bounded], "o", color=colour)
            ax.plot(eps[~bounded], mean[~bounded], "o", markerfacecolor="white", markeredgecolor=colour)
        if prefix == "area_":
            planes = sorted({round(a, 12) for a in map(plane_area, analyses) if a is not None})
            lines = [ax.axhline(a, color="0.45", linestyle="--", linewidth=0.9) for a in planes]
            if lines:  # its own legend: the arms' entries are the first panel's
                ax.legend(lines[:1], ["the sampled plane's area"], fontsize=7, loc="lower right")
        ax.set_xscale("log")
        ax.set_xlabel("ε (loss increase over J(θ1))")
        ax.set_title(label, fontsize=9)
    for ax, key in zip(axes[len(panels) :], hess):
        for t_i, task in enumerate(tasks):
            inits = [i for (t, i) in groups if t == task]
            for k, init in enumerate(inits):
                mine = [a for a in analyses if analysis_identity(a) == (task, init)]
                vals = [(summary_entry(a, key), _learned(a)) for a in mine]
                vals = [(v, ok) for v, ok in vals if v is not None]
                if not vals:
                    continue
                x = t_i + (k - (len(inits) - 1) / 2) * 0.38
                if len(vals) == 1:  # one JSON (one run, or several runs summarised in it)
                    mean, std, cnt = vals[0][0]
                else:  # one JSON per seed: the mean over the seeds that learned, a dot per seed
                    kept = [v[0] for v, ok in vals if ok] or [v[0] for v, _ in vals]
                    mean, std, cnt = (
                        float(np.mean(kept)),
                        float(np.std(kept, ddof=1)) if len(kept) > 1 else 0.0,
                        len(kept),
                    )
                    jitter = np.linspace(-0.12, 0.12, len(vals))
                    for dx, (v, ok) in zip(jitter, vals):
                        if ok:
                            ax.plot(x + dx, v[0], "o", color="0.1", markersize=2.6, zorder=3)
                        else:
                            ax.plot(x + dx, v[0], "x", color=PLATEAU, markersize=5, mew=1.4, zorder=4)
                ax.bar(
                    x,
                    mean,
                    width=0.36,
                    yerr=std if cnt > 1 else None,
                    color=style.init_colour(init),
                    capsize=3,
                )
                ax.annotate(f"{mean:.4g}", (x, mean), ha="center", va="bottom", fontsize=8)
        heights = [float(b.get_height()) for b in ax.patches]
        if (
            heights and min(heights) > 0 and max(heights) / min(heights) > 30
        ):  # two decades apart (and all positive: a trace can be negative)
            ax.set_yscale("log")
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_title(
            {"hessian_top": "Hessian top eigenvalue at θ1", "hessian_trace": "Hessian trace at θ1"}[key],
            fontsize=9,
        )
        ax.margins(y=0.2)
    if not panels and not hess:
        style.no_data(axes[0], "no flatness numbers")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:  # one entry per (task, init): the seeds of one arm share its colour
        unique = dict(zip(labels, handles))
        n_runs = {lab: labels.count(lab) for lab in unique}
        axes[0].legend(
            list(unique.values()),
            [lab if n_runs[lab] == 1 else f"{lab} ({n_runs[lab]} seeds)" for lab in unique],
            fontsize=7,
        )
    arms = " vs ".join(style.init_label(i) for i in dict.fromkeys(i for _, i in groups))
    fig.suptitle(title or f"flatness: {arms}")
    areas = any(p[0] == "area_" for p in panels)
    note = (
        "filled marker: the basin ends inside the grid (exact); hollow: it reaches the grid's edge, a lower "
        "bound" + (" (an area then counts only the sampled plane)" if areas else "")
    )
    if panels:  # below the axes, where no point can sit under it: only what this figure draws
        text = note
        if hess:
            text += "; bars with several seeds: mean ± sd over seeds, a dot per seed"
        if not all(_learned(a) for a in analyses):
            text += (
                "\nred ×: a run that did not beat its majority baseline"
                + (", not in the bars' means" if hess else "")
                + " (the report's plateau rule says how its claims treat it)"
            )
        # wrapped to the figure's width (a long line widened the saved figure past its last panel)
        lines = [w for part in text.split("\n") for w in textwrap.wrap(part, int(60 * n))]
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, color="0.35")
        style.tight_layout(fig, rect=(0, 0.04 + 0.035 * len(lines), 1, 1))
    else:
        style.tight_layout(fig)
    drawn = [p[2].split("\n")[0] for p in panels] + [
        {"hessian_top": "Hessian top eigenvalue", "hessian_trace": "Hessian trace"}[k] for k in hess
    ]
    caption = f"flatness, {arms}: " + (", ".join(drawn) or "no flatness numbers")
    if panels:
        caption += f" against ε; {note}"
    if any(_eps_series(a, "area_") for a in analyses) and any(plane_area(a) for a in analyses):
        caption += "; dashed: the sampled plane's area, the most an area can be"
    return fig, caption
