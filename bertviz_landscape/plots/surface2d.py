"""2D surfaces (the paper's Figures 2–4): filled contours of the training loss and of the dev
error side by side, on the same (α, β) axes, with the trajectory drawn on both.

Orientation: a surface stores 2D arrays as [ny, nx] (``Z[j, i] ↔ (x[i], y[j])``), exactly what
``contourf(x, y, Z)`` reads — no transposes here. Markers depend on the direction recipe
(``surface.meta["directions"]["recipe"]``): for ``difference`` θ0 is (0, 0) and θ1 is (1, 0);
for ``random``/``pca`` the grid is centred on one checkpoint, drawn at (0, 0) and named.
Non-finite values (diverged far points) are masked and left blank. The figure functions return
(figure, caption); the legend lists every mark any panel draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from bertviz_landscape.engine.surface import minimum_on_edge
from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import SurfaceFile

PANELS = (("train_loss", style.TRAIN_LOSS, "loss"), ("dev_error", style.DEV_ERROR, "error"))


PROJECTIONS = ("lstsq", "paper")
PAPER_CAPTION = (
    "the paper's projection (α_t = ⟨v,δ1⟩/‖δ1‖², β_t = ‖v − α_t·δ1‖/‖δ1‖): β_t is the path's distance "
    "from the δ1 axis, not its δ2 coordinate; the contours under it are not the losses along the path"
)


def _names_surface(entry, sf: SurfaceFile) -> bool:
    path = entry.get("path") if isinstance(entry, dict) else entry
    return bool(path) and Path(str(path)).name == sf.path.name


def _run_of(trajectory: dict, sf: SurfaceFile | None) -> dict | None:
    """The per_run entry made on this surface (the analysis' inputs name it), else the first."""
    per_run = trajectory.get("per_run") or []
    if not per_run:
        return None
    if sf is not None:
        inputs = trajectory.get("inputs") or {}
        named = [inputs.get("surface")] if inputs.get("surface") else list(inputs.get("surfaces") or [])
        for entry, pr in zip(named, per_run):
            if _names_surface(entry, sf):
                return pr
        for pr in per_run:
            if _names_surface((pr.get("pca") or {}).get("surface"), sf):
                return pr
    return per_run[0]


def _finite_max(values) -> float | None:
    vals = [float(v) for v in values or [] if v is not None and math.isfinite(float(v))]
    return max(vals) if vals else None


def trajectory_points(
    trajectory: dict | None, recipe: str | SurfaceFile, projection: str = "lstsq"
) -> dict | None:
    """The trajectory of a trajectory JSON in the coordinates of a surface: {'alpha', 'beta',
    'epochs': [(alpha, beta, epoch)], 'label', 'projection', 'max_distance' (the path's largest
    ‖v − aδ1 − bδ2‖/‖v‖ from this plane), 'caption'}; None when it has none for this surface.

    `projection`: ``lstsq`` (default) — where the path really is: its least-squares coordinates on
    the plane (for a `pca` surface, on the trajectory's own PCA-directions surface); ``paper`` —
    the paper's (α_t, β_t), a projection (see PAPER_CAPTION), for `difference` planes only.
    `recipe` may be the SurfaceFile itself (then the run whose surface it is is picked)."""
    if projection not in PROJECTIONS:
        raise ValueError(f"trajectory projection must be one of {PROJECTIONS}, got {projection!r}")
    sf = recipe if isinstance(recipe, SurfaceFile) else None
    recipe = sf.recipe if sf is not None else recipe
    if not trajectory:
        return None
    per_run = _run_of(trajectory, sf)
    if not per_run:
        return None
    epochs: list = []
    if recipe == "pca":
        pca = per_run.get("pca") or {}
        coords = pca.get("surface_coordinates") or []
        if not coords or (sf is not None and not _names_surface(pca.get("surface"), sf)):
            return None  # the PCA scores are centred on the snapshots' mean, not on this surface's centre
        a, b = zip(*coords)
        ratio = pca.get("explained_variance_ratio") or []
        label = "trajectory (least-squares coordinates on its PCA directions)"
        dist = _finite_max(pca.get("surface_distance_from_plane"))
        caption = "" if len(ratio) < 2 else f"PCA directions explain {100 * (ratio[0] + ratio[1]):.1f}% "
        caption += "of the trajectory's variance" if caption else ""
        return {
            "alpha": list(a),
            "beta": list(b),
            "epochs": [],
            "label": label,
            "projection": "lstsq",
            "max_distance": dist,
            "caption": caption,
        }
    if recipe != "difference" and projection == "paper":
        return None
    dist = _finite_max(per_run.get("distance_from_plane"))
    if projection == "lstsq":
        coords = [c for c in per_run.get("lstsq") or [] if c is not None]
        if not coords or any(c[1] is None for c in coords):
            return None
        a, b = zip(*coords)
        label = "trajectory (least-squares coordinates on the plane)"
        epochs = [
            (p["lstsq"][0], p["lstsq"][1], p["epoch"])
            for p in per_run.get("epoch_points") or []
            if p.get("lstsq") and p["lstsq"][1] is not None
        ]
        caption = ""
    else:
        a, b = per_run.get("alpha") or [], per_run.get("beta") or []
        label = "trajectory, paper's projection (α_t, β_t = ‖v⊥‖/‖δ1‖)"
        epochs = [(p["alpha"], p["beta"], p["epoch"]) for p in per_run.get("epoch_points") or []]
        caption = PAPER_CAPTION
    a, b = list(a), list(b)
    centred_on_theta0 = str((per_run.get("plane") or {}).get("center", "theta0")) == "theta0"
    if a and centred_on_theta0 and (a[0], b[0]) != (0, 0):  # the path starts at θ0, before the first snapshot
        a, b = [0.0, *a], [0.0, *b]
    return {
        "alpha": a,
        "beta": b,
        "epochs": epochs,
        "label": label,
        "projection": projection,
        "max_distance": dist,
        "caption": caption,
    }


def path_heights(trajectory: dict | None, sf: SurfaceFile, projection: str = "lstsq") -> dict | None:
    """The path in 3D: {'alpha', 'beta', 'loss', 'label'} — each point's coordinates on the plane
    (`trajectory_points`) at the height of its *measured* loss (the trajectory analysis' path
    loss: the eval-mode training loss at that snapshot, analysis/path_loss.py), matched by step;
    θ0 (step 0) at the start. None when the path loss was not measured (no height is invented)."""
    pts = trajectory_points(trajectory, sf, projection)
    per_run = _run_of(trajectory, sf) if trajectory else None
    pl = (per_run or {}).get("path_loss") or {}
    if pts is None or not pl.get("steps") or sf.recipe == "pca":
        return None
    by_step = {int(s): float(v) for s, v in zip(pl["steps"], pl["loss"]) if v is not None}
    steps = [int(s) for s in per_run.get("steps") or []]
    offset = len(pts["alpha"]) - len(steps)  # 1 when the path was prefixed with θ0
    out = {"alpha": [], "beta": [], "loss": [], "label": "trajectory at its measured (eval-mode) loss"}
    if offset == 1 and 0 in by_step:
        out["alpha"].append(pts["alpha"][0])
        out["beta"].append(pts["beta"][0])
        out["loss"].append(by_step[0])
    for k, step in enumerate(steps):
        if step in by_step and math.isfinite(by_step[step]):
            out["alpha"].append(pts["alpha"][k + offset])
            out["beta"].append(pts["beta"][k + offset])
            out["loss"].append(by_step[step])
    return out if out["loss"] else None


def distance_note(traj: dict | None) -> str:
    """The sentence every 2D figure carries: how far the drawn path is from the drawn plane."""
    if traj is None:
        return "no trajectory recorded on this plane"
    if traj.get("max_distance") is None:
        return "the path's distance from this plane was not recorded"
    return (
        f"path's largest distance from this plane: {traj['max_distance']:.3f}·‖v‖ "
        "(‖v − aδ1 − bδ2‖/‖v‖, v = θ_t − centre)"
    )


def edge_note(sf: SurfaceFile, key: str) -> str | None:
    edge = minimum_on_edge(sf.surface, key)
    return None if edge is None else edge["message"]


def draw_markers(ax, sf: SurfaceFile) -> list:
    d = sf.surface.meta.get("directions") or {}
    if sf.recipe == "difference":
        (h0,) = ax.plot([0], [0], label="θ0 (start)", **style.MARKERS["theta0"])
        (h1,) = ax.plot([1], [0], label="θ1 (end of training)", **style.MARKERS["theta1"])
        return [h0, h1]
    centre = str(d.get("center") or d.get("centre") or "theta0").replace("theta", "θ")
    (h,) = ax.plot([0], [0], label=f"centre ({centre})", **style.MARKERS["centre"])
    return [h]


def epoch_labels(ax, epochs, surface, min_gap: float = 0.07) -> list[tuple[float, float, str]]:
    """One label per group of epoch points that would overlap: points closer than `min_gap` of the
    axes (in axes fractions, over the grid's extent) share one label, "1–3" (consecutive) or "1, 3",
    at their mean position; a point alone keeps its own number."""
    x0, x1 = float(np.min(surface.x)), float(np.max(surface.x))
    y0, y1 = float(np.min(surface.y)), float(np.max(surface.y))
    sx, sy = (x1 - x0) or 1.0, (y1 - y0) or 1.0
    ordered = sorted(((float(a), float(b), int(e)) for a, b, e in epochs), key=lambda p: p[2])
    groups: list[list[tuple[float, float, int]]] = []
    for a, b, e in ordered:
        for group in groups:
            if any(math.hypot((a - ga) / sx, (b - gb) / sy) < min_gap for ga, gb, _ in group):
                group.append((a, b, e))
                break
        else:
            groups.append([(a, b, e)])
    out = []
    for group in groups:
        numbers = sorted(e for _, _, e in group)
        if len(numbers) == 1:
            text = str(numbers[0])
        elif numbers == list(range(numbers[0], numbers[-1] + 1)):
            text = f"{numbers[0]}–{numbers[-1]}"
        else:
            text = ", ".join(map(str, numbers))
        out.append((float(np.mean([a for a, _, _ in group])), max(b for _, b, _ in group), text))
    return out


def shared_levels(arrays, levels: int = 20) -> np.ndarray | None:
    """One set of contour levels over the finite values of every array (one colour scale)."""
    rng = style.finite_range(*arrays)
    return None if rng is None else np.linspace(rng[0], rng[1], levels + 1)


@dataclass(frozen=True)
class Panel:
    """What one contour panel draws: the surface value `key`, titled `title`, in colour map `cmap`;
    `levels` a count, or the levels themselves to share a colour scale between panels; its own
    colour bar unless `colorbar` is false (a row sharing one)."""

    key: str
    title: str
    cmap: str
    levels: int | np.ndarray
    colorbar: bool = True


def contour_panel(ax, fig, sf: SurfaceFile, panel: Panel, traj: dict | None = None):
    """Filled contours of `panel.key` on `ax`, the trajectory and the markers; returns (legend
    handles, the contour set or None)."""
    key, title, levels = panel.key, panel.title, panel.levels
    s = sf.surface
    z = style.masked(s[key])  # [ny, nx], rows are y
    cs = None
    if z.count() == 0:
        style.no_data(ax)
    else:
        if np.ndim(levels) == 0:
            lv = shared_levels([z.filled(np.nan)], int(levels))
        else:
            lv = np.asarray(levels, dtype=np.float64)
        cs = ax.contourf(s.x, s.y, z, levels=lv, cmap=panel.cmap)
        if float(z.max()) > float(z.min()):
            ax.contour(s.x, s.y, z, levels=lv[::4], colors="white", linewidths=0.5, alpha=0.6)
        else:
            ax.text(
                0.02,
                0.02,
                f"constant: {float(z.min()):.4g}",
                transform=ax.transAxes,
                color="white",
                fontsize=8,
            )
        if panel.colorbar:
            cb = fig.colorbar(cs, ax=ax, shrink=0.9, format=ticker.ScalarFormatter(useOffset=False))
            cb.set_label(title)
            cb.locator = ticker.MaxNLocator(6)
            cb.update_ticks()
        ax.set_facecolor("0.85")  # masked (non-finite) cells show as grey
    handles = []
    if traj and traj["alpha"]:
        (h,) = ax.plot(traj["alpha"], traj["beta"], "-", color="white", linewidth=1.6, label=traj["label"])
        ax.plot(traj["alpha"], traj["beta"], "-", color="black", linewidth=0.7)
        handles.append(h)
    handles += draw_markers(ax, sf)
    if traj and traj["alpha"] and traj["epochs"]:  # above θ1's star: the last epoch ends there
        ea, eb, ee = zip(*traj["epochs"])
        (h,) = ax.plot(
            ea,
            eb,
            "D",
            color=style.OKABE_ITO["sky"],
            markeredgecolor="black",
            markersize=5,
            linestyle="none",
            label="end of each epoch" if len(ee) > 1 else f"end of epoch {ee[0]}",
            zorder=6,
        )
        handles.append(h)
        for a, b, text in epoch_labels(ax, traj["epochs"], s):
            ax.annotate(
                text,
                (a, b),
                textcoords="offset points",
                xytext=(0, 9),  # above the marker (and above θ1's star, where the last epoch ends)
                ha="center",
                va="bottom",
                fontsize=7,
                color="white",
                zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "black", "alpha": 0.45, "linewidth": 0},
            )
    edge = minimum_on_edge(s, key)
    if edge is not None:  # the grid cropped the basin: the lowest point is a bound, not a minimum
        (h,) = ax.plot(
            [edge["alpha"]],
            [edge["beta"]],
            "X",
            color=style.OKABE_ITO["yellow"],
            markeredgecolor="black",
            markersize=9,
            linestyle="none",
            label="lowest point, on the grid's edge",
            zorder=7,
            clip_on=False,
        )
        handles.append(h)
    xlabel, ylabel = style.axis_labels(sf.recipe)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(float(np.min(s.x)), float(np.max(s.x)))
    ax.set_ylim(float(np.min(s.y)), float(np.max(s.y)))
    ax.set_title(title)
    return handles, cs


def _panels(s) -> list[tuple[str, str, str]]:
    panels = [(k, t, c) for k, t, c in PANELS if k in s]
    return panels or [(k, k.replace("_", " "), "loss") for k in s.keys() if k.endswith("_loss")][:2]


def _direction_notes(s) -> list[str]:
    d = s.meta.get("directions") or {}
    notes = []
    if "cosine_xy" in d and d["cosine_xy"] is not None:
        notes.append(f"cos(δ1, δ2) = {float(d['cosine_xy']):.3f}")
    if d.get("norm_x") is not None:
        notes.append(f"‖δ1‖ = {float(d['norm_x']):.3g}")
    if d.get("norm_y") is not None:
        notes.append(f"‖δ2‖ = {float(d['norm_y']):.3g}")
    return notes


def figure_notes(pairs: list[tuple[str, SurfaceFile, dict | None]], keys: list[str]) -> list[str]:
    """The footnotes: each panel's path distance from its plane, the projection's caption, the
    PCA share, and every minimum that lies on the grid's edge with the override that widens it."""
    notes = []
    for name, sf, traj in pairs:
        prefix = f"{name}: " if name else ""
        notes.append(prefix + distance_note(traj))
        if traj and traj.get("caption"):
            notes.append(prefix + traj["caption"])
        for key in keys:
            if key in sf.surface:
                msg = edge_note(sf, key)
                if msg:
                    notes.append(prefix + msg)
    out = []
    for n in notes:  # one sentence once (the caption is the same for both inits)
        if n not in out:
            out.append(n)
    return out


def _footer(fig, notes: list[str], legend_rows: int) -> float:
    """Write the notes below the axes; returns the bottom of the axes' area (figure fraction)."""
    height = fig.get_figheight()
    line = 0.19 / height  # ≈ 14 pt per line
    for k, text in enumerate(reversed(notes)):
        fig.text(0.01, 0.005 + k * line, text, fontsize=7, color="0.25", ha="left", va="bottom")
    return 0.01 + len(notes) * line + legend_rows * 0.3 / height


def surface_contours(
    sf: SurfaceFile, trajectory: dict | None = None, projection: str = "lstsq", levels: int = 20
) -> tuple[object, str]:
    """Training loss and dev error of one 2D surface side by side (whichever of the two it has),
    with the trajectory of `trajectory` (a trajectory analysis JSON) on both — by default where it
    is (least-squares coordinates on the plane); ``projection="paper"`` draws the paper's
    (α_t, β_t), captioned as the projection it is. The figure states the path's largest distance
    from the plane and warns when a minimum lies on the grid's edge."""
    s = sf.surface
    if not s.two_d:
        raise ValueError(f"{sf.path} is a 1D surface; surface_contours draws 2D surfaces")
    panels = _panels(s)
    traj = trajectory_points(trajectory, sf, projection)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.6), squeeze=False)
    handles: dict[str, object] = {}  # every panel's marks (a lowest point on one panel's edge too), once each
    for ax, (key, title, kind) in zip(axes[0], panels):
        hs, _ = contour_panel(ax, fig, sf, Panel(key, title, style.CMAPS[kind], levels), traj)
        for h in hs:
            handles.setdefault(h.get_label(), h)
    notes = _direction_notes(s)
    fig.suptitle(
        f"{sf.task} · {style.init_label(sf.init)} · {sf.recipe} directions"
        + (f"   ({', '.join(notes)})" if notes else "")
    )
    footnotes = figure_notes([("", sf, traj)], [k for k, _, _ in panels])
    bottom = _footer(fig, footnotes, 1)
    fig.legend(
        handles=list(handles.values()),
        loc="lower center",
        ncol=min(4, len(handles)),
        fontsize=8,
        bbox_to_anchor=(0.5, bottom - 0.3 / fig.get_figheight()),
    )
    style.tight_layout(fig, rect=(0, bottom + 0.02, 1, 1))
    where = (
        ""
        if traj is None
        else ", the trajectory at its least-squares coordinates on it"
        if traj["projection"] == "lstsq"
        else ", the trajectory in the paper's (α_t, β_t) projection"
    )
    caption = (
        f"{sf.task}, {style.init_label(sf.init)}{seed_text(sf)}: training loss and dev error on the "
        f"({sf.recipe}) plane{where}. " + "; ".join(footnotes)
    )
    return fig, caption


def seed_text(sf: SurfaceFile) -> str:
    """ ", seed N" when the surface's run names its seed, else nothing."""
    return "" if sf.seed is None else f", seed {sf.seed}"


def surface_comparison(
    sfs: list[SurfaceFile],
    trajectories: list[dict | None] | None = None,
    projection: str = "lstsq",
    levels: int = 20,
) -> tuple[object, str]:
    """Pretrained vs from scratch on one surface kind (same recipe and grid): one column per
    init, one row per value (training loss, dev error), and per row one colour scale and one set
    of contour levels over every panel of the row, so the basins compare by eye."""
    if not sfs:
        raise ValueError("surface_comparison needs at least one 2D surface")
    for sf in sfs:
        if not sf.surface.two_d:
            raise ValueError(f"{sf.path} is a 1D surface; surface_comparison draws 2D surfaces")
    trajectories = list(trajectories or [None] * len(sfs))
    rows = [p for p in _panels(sfs[0].surface) if all(p[0] in sf.surface for sf in sfs)]
    if not rows:
        raise ValueError(f"{', '.join(str(sf.path) for sf in sfs)}: no value common to every surface")
    trajs = [trajectory_points(t, sf, projection) for t, sf in zip(trajectories, sfs)]
    fig, axes = plt.subplots(
        len(rows), len(sfs), figsize=(4.9 * len(sfs) + 1.2, 4.1 * len(rows)), squeeze=False
    )
    footnotes = figure_notes(
        [(style.init_label(sf.init), sf, t) for sf, t in zip(sfs, trajs)], [k for k, _, _ in rows]
    )
    bottom = _footer(fig, footnotes, 1)
    fig.subplots_adjust(
        bottom=bottom + 1.0 / fig.get_figheight(), top=0.92, wspace=0.3, hspace=0.35, left=0.08, right=0.97
    )
    handles: dict[str, object] = {}
    for r, (key, title, kind) in enumerate(rows):
        lv = shared_levels([sf.surface[key] for sf in sfs], levels)
        cs_any = None
        for c, (sf, traj) in enumerate(zip(sfs, trajs)):
            ax = axes[r][c]
            panel = Panel(key, title, style.CMAPS[kind], lv if lv is not None else levels, colorbar=False)
            hs, cs = contour_panel(ax, fig, sf, panel, traj)
            ax.set_title(f"{style.init_label(sf.init)}: {title}")
            cs_any = cs_any or cs
            for h in hs:
                handles.setdefault(h.get_label(), h)
        if cs_any is not None:
            cb = fig.colorbar(
                cs_any, ax=list(axes[r]), shrink=0.9, format=ticker.ScalarFormatter(useOffset=False)
            )
            cb.set_label(f"{title} (one scale for the row)")
            cb.locator = ticker.MaxNLocator(6)
            cb.update_ticks()
    fig.suptitle(
        f"{sfs[0].task}: "
        + " vs ".join(style.init_label(sf.init) for sf in sfs)
        + f" · {sfs[0].recipe} directions (same colour scale and levels per row)"
    )
    fig.legend(
        handles=list(handles.values()),
        loc="lower center",
        ncol=min(4, len(handles)),
        fontsize=8,
        bbox_to_anchor=(0.5, bottom),
    )
    caption = (
        f"{sfs[0].task}: "
        + " vs ".join(f"{style.init_label(sf.init)}{seed_text(sf)}" for sf in sfs)
        + f" on their ({sfs[0].recipe}) planes, one colour scale and one set of contour levels per row. "
        + "; ".join(footnotes)
    )
    return fig, caption
