"""The claims' figure: per claim, the number that decides it, one dot per seed, both arms.

`claim_figure(verdict, path)` draws claims.json's entry of one verdict (``per_run``: each run's
value, whether it is censored — a lower bound, drawn as an upward triangle — and whether the plan's
rule excluded it — a red cross outside the comparison), with each arm's median as a bar. When the
arms' step budgets or learning rates differ (``budgets``), each arm's budget is under its name and
the title says they differ."""

from __future__ import annotations

import textwrap
from pathlib import Path
from statistics import median

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bertviz_landscape.contracts.atomic import atomic_path  # noqa: E402
from bertviz_landscape.plots.style import tight_layout  # noqa: E402

ARMS = ("pretrained", "scratch")
COLOURS = {"pretrained": "#1f77b4", "scratch": "#ff7f0e"}
EXCLUDED = "#d62728"


def claim_figure(verdict: dict, title: str, path: Path) -> Path | None:
    """One PNG at `path` of the deciding metric per seed (None when no run has a value)."""
    per_run = verdict.get("per_run") or {}
    if not any(r.get("value") is not None for i in ARMS for r in per_run.get(i) or []):
        return None
    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=110)
    for x, init in enumerate(ARMS):
        rows = [r for r in per_run.get(init) or [] if r.get("value") is not None]
        kept = [r for r in rows if not r.get("excluded")]
        for j, r in enumerate(rows):
            dx = x + 0.08 * (j - (len(rows) - 1) / 2)
            if r.get("excluded"):
                ax.scatter(dx, r["value"], marker="x", color=EXCLUDED, zorder=3)
            else:
                ax.scatter(
                    dx, r["value"], marker="^" if r.get("censored") else "o", color=COLOURS[init], zorder=3
                )
        if kept:
            ax.hlines(median(r["value"] for r in kept), x - 0.3, x + 0.3, color=COLOURS[init], lw=2)
    comparison = verdict.get("comparison") or {}
    if comparison.get("margin") is not None:  # an equivalence test: the margin is what decides
        m = float(comparison["margin"])
        for y in (-m, m):
            ax.axhline(y, color="0.4", linestyle="--", linewidth=0.9, zorder=1)
        ax.annotate(f"±{m:g}: the equivalence margin", (0.99, m), xycoords=("axes fraction", "data"),
                    ha="right", va="bottom", fontsize=7, color="0.3")  # fmt: skip
    matched = verdict.get("matched")  # the pretrained values are taken at the scratch partner's J(θ1)
    budgets = verdict.get("budgets") or {}  # only when the arms' budgets differ
    ax.set_xticks(
        range(len(ARMS)),
        [
            f"{i}"
            + ("\nat matched loss" if matched and i == "pretrained" else "")
            + f"\n(n = {sum(not r.get('excluded') for r in per_run.get(i) or [])})"
            + (f"\n{budgets[i]}" if budgets.get(i) else "")
            for i in ARMS
        ],
        fontsize=8 if budgets else None,
    )
    ax.set_xlim(-0.6, len(ARMS) - 0.4)
    ax.set_ylabel(str(verdict.get("measure")) + (f"\n(pretrained: {matched})" if matched else ""), fontsize=8)
    head = "\n".join(textwrap.wrap(title, 60))  # a long claim wraps instead of running off the figure
    registered, measure = verdict.get("registered"), verdict.get("measure")
    decided = bool(verdict.get("in_family")) and verdict.get("p_adjusted") is not None
    if registered and measure != registered:  # the dots are not the registered metric: say so
        status = (
            f"{verdict.get('verdict')}: the registered {registered} is not measured; shown, not decided on"
        )
    elif decided:  # the number that decided: the registered test's p after Holm over the family
        status = f"{verdict.get('verdict')}, Holm p = {float(verdict['p_adjusted']):.2g}"
    else:
        status = str(verdict.get("verdict"))
    ax.set_title(
        f"{head}\n" + "\n".join(textwrap.wrap(status, 56)) + "\n(▲ censored: lower bound, × excluded)"
        + ("\nthe arms' budgets differ (under each arm)" if budgets else ""),
        fontsize=8,
    )  # fmt: skip
    tight_layout(fig)  # metric names and verdicts come from the frozen plan and the runs' files
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
