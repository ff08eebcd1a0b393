"""One style for every figure: Agg backend, a colour-blind-safe palette, the paper's axis names,
and the one way figures are saved (PNG + PDF, each written atomically).

Colours: Okabe & Ito's palette (safe for the common colour-vision deficiencies) for lines —
pretrained blue, from scratch vermillion; sequential maps viridis (training loss) and cividis
(dev error), both perceptually uniform and readable in grey scale.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window (also on machines without a display)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bertviz_landscape.contracts.atomic import atomic_path  # noqa: E402

OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
INIT_COLOURS = {"pretrained": OKABE_ITO["blue"], "scratch": OKABE_ITO["vermillion"]}
INIT_LABELS = {"pretrained": "pretrained", "scratch": "from scratch"}
SERIES = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky", "yellow", "black")]
CMAPS = {"loss": "viridis", "error": "cividis"}
MARKERS = {
    "theta0": dict(marker="o", color="white", markeredgecolor="black", markersize=9, linestyle="none"),
    "theta1": dict(
        marker="*", color=OKABE_ITO["orange"], markeredgecolor="black", markersize=15, linestyle="none"
    ),
    "centre": dict(marker="P", color="white", markeredgecolor="black", markersize=10, linestyle="none"),
}

ALPHA = "α  (θ0 + α·δ1,  δ1 = θ1 − θ0)"
BETA = "β  (δ2 = θ2 − θ0)"
TRAIN_LOSS = "training loss"
DEV_ERROR = "dev error"
DEV_LOSS = "dev loss"

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.spines.top": False,
        "axes.grid": False,
        "legend.frameon": False,
        "axes.prop_cycle": matplotlib.cycler(color=SERIES),
        "axes.formatter.useoffset": False,
    }
)


def value_label(key: str) -> str:
    """A surface key in the paper's words: train_loss → training loss, dev_error → dev error."""
    split, _, what = key.partition("_")
    return f"{'training' if split == 'train' else split} {what.replace('_', ' ')}".strip()


def init_colour(init: str | None) -> str:
    return INIT_COLOURS.get(str(init), OKABE_ITO["black"])


def init_label(init: str | None) -> str:
    return INIT_LABELS.get(str(init), str(init))


def axis_labels(recipe: str | None) -> tuple[str, str]:
    """x/y axis names for a direction recipe: the paper's α/β for `difference`, Li's for the others."""
    if recipe in (None, "difference"):
        return ALPHA, BETA
    if recipe == "pca":
        return "α  (1st PCA direction of the trajectory)", "β  (2nd PCA direction)"
    return f"α  (random direction 1, {recipe})", f"β  (random direction 2, {recipe})"


def masked(values) -> np.ma.MaskedArray:
    """Non-finite values (NaN, ±inf: far grid points that diverged) masked, never plotted."""
    return np.ma.masked_invalid(np.asarray(values, dtype=np.float64))


def finite_range(*arrays) -> tuple[float, float] | None:
    vals = np.concatenate(
        [np.asarray(a, dtype=np.float64).ravel() for a in arrays if a is not None] or [np.zeros(0)]
    )
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return None
    lo, hi = float(vals.min()), float(vals.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * max(abs(lo), 1e-3), hi + 0.5 * max(abs(hi), 1e-3)
    return lo, hi


def literal_text(fig) -> None:
    """Every text of `fig` drawn as written, never parsed as mathtext: titles, axis labels,
    legends and annotations carry strings read from files (metric names from a plan, run and
    task names), and matplotlib parses a `$...$` in them as math, which draws nonsense or raises
    at save time. Tick labels keep math parsing (log axes draw their ticks as `$10^{k}$`); this
    project's own strings use none."""
    texts = [*fig.texts]
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        texts.append(getattr(fig, name, None))
    for ax in [*fig.axes, *fig.legends]:
        texts += [getattr(ax, name, None) for name in ("title", "_left_title", "_right_title")]
        texts += [getattr(ax, name).label for name in ("xaxis", "yaxis", "zaxis") if hasattr(ax, name)]
        texts += [*getattr(ax, "texts", ())]
        legend = ax if isinstance(ax, matplotlib.legend.Legend) else ax.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
    for text in texts:
        if text is not None:
            text.set_parse_math(False)


def tight_layout(fig, **kwargs) -> None:
    """`fig.tight_layout` with the texts literal first (laying out measures them: a `$...$` read
    from a file would be parsed, and raise, there already)."""
    literal_text(fig)
    fig.tight_layout(**kwargs)


def save_figure(fig, stem: str | os.PathLike, formats: tuple[str, ...] = ("png", "pdf")) -> list[Path]:
    """Write `stem.png` and `stem.pdf` (each atomically: complete or absent) and close the figure.
    Its texts are drawn literally (`literal_text`)."""
    stem = Path(stem)
    out = []
    try:
        literal_text(fig)
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, bbox_inches="tight")
            out.append(path)
    finally:
        plt.close(fig)
    return out


def no_data(ax, text: str = "no finite values") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
