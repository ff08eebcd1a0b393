"""2D surfaces (the paper's Figures 2–4): filled contours of the training loss and of the dev
error side by side, on the same (α, β) axes, with the trajectory drawn on both.

Orientation: a surface stores 2D arrays as [ny, nx] (``Z[j, i] ↔ (x[i], y[j])``), exactly what
``contourf(x, y, Z)`` reads — no transposes here. Markers depend on the direction recipe
(``surface.meta["directions"]["recipe"]``): for ``difference`` θ0 is (0, 0) and θ1 is (1, 0);
for ``random``/``pca`` the grid is centred on one checkpoint, drawn at (0, 0) and named.
Non-finite values (diverged far points) are masked and left blank.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import SurfaceFile

PANELS = (("train_loss", style.TRAIN_LOSS, "loss"), ("dev_error", style.DEV_ERROR, "error"))


def trajectory_points(trajectory: dict | None, recipe: str, projection: str = "paper") -> dict | None:
    """{'alpha','beta','epochs': [(alpha, beta, epoch)]} of a trajectory JSON (per_run[0]) in the
    coordinates of a surface with this recipe; None when it has none for it."""
    if not trajectory:
        return None
    per_run = (trajectory.get("per_run") or [None])[0]
    if not per_run:
        return None
    if recipe == "pca":
        pca = per_run.get("pca") or {}
        coords = pca.get("coordinates") or []
        if not coords:
            return None
        a, b = zip(*coords)
        return {"alpha": list(a), "beta": list(b), "epochs": [], "label": "trajectory (PCA coordinates)"}
    if recipe != "difference":
        return None
    if projection == "lstsq" and per_run.get("lstsq"):
        a, b = zip(*per_run["lstsq"])
        label = "trajectory (least-squares projection)"
        epochs = [
            (p["lstsq"][0], p["lstsq"][1], p["epoch"])
            for p in per_run.get("epoch_points") or []
            if p.get("lstsq")
        ]
    else:
        a, b = per_run.get("alpha") or [], per_run.get("beta") or []
        label = "trajectory (α=⟨v,δ1⟩/‖δ1‖², β=‖v⊥‖/‖δ1‖)"
        epochs = [(p["alpha"], p["beta"], p["epoch"]) for p in per_run.get("epoch_points") or []]
    a, b = list(a), list(b)
    if a and (a[0], b[0]) != (0, 0):  # the path starts at θ0 (v = 0), before the first snapshot
        a, b = [0.0, *a], [0.0, *b]
    return {"alpha": a, "beta": b, "epochs": epochs, "label": label}


def draw_markers(ax, sf: SurfaceFile) -> list:
    d = sf.surface.meta.get("directions") or {}
    if sf.recipe == "difference":
        (h0,) = ax.plot([0], [0], label="θ0 (start)", **style.MARKERS["theta0"])
        (h1,) = ax.plot([1], [0], label="θ1 (end of training)", **style.MARKERS["theta1"])
        return [h0, h1]
    centre = str(d.get("center") or d.get("centre") or "theta0").replace("theta", "θ")
    (h,) = ax.plot([0], [0], label=f"centre ({centre})", **style.MARKERS["centre"])
    return [h]


def contour_panel(
    ax, fig, sf: SurfaceFile, key: str, title: str, cmap: str, levels: int = 20, traj: dict | None = None
):
    s = sf.surface
    z = style.masked(s[key])  # [ny, nx], rows are y
    if z.count() == 0:
        style.no_data(ax)
    else:
        lo, hi = style.finite_range(z.filled(np.nan))
        lv = np.linspace(lo, hi, levels + 1)
        cs = ax.contourf(s.x, s.y, z, levels=lv, cmap=cmap)
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
        for a, b, e in traj["epochs"]:
            ax.annotate(
                str(e), (a, b), textcoords="offset points", xytext=(4, 4), fontsize=7, color="white", zorder=6
            )
    xlabel, ylabel = style.axis_labels(sf.recipe)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(float(np.min(s.x)), float(np.max(s.x)))
    ax.set_ylim(float(np.min(s.y)), float(np.max(s.y)))
    ax.set_title(title)
    return handles


def surface_contours(
    sf: SurfaceFile, trajectory: dict | None = None, projection: str = "paper", levels: int = 20
):
    """Training loss and dev error of one 2D surface side by side (whichever of the two it has),
    with the trajectory of `trajectory` (a trajectory analysis JSON) on both."""
    s = sf.surface
    if not s.two_d:
        raise ValueError(f"{sf.path} is a 1D surface; surface_contours draws 2D surfaces")
    panels = [(k, t, c) for k, t, c in PANELS if k in s]
    if not panels:
        panels = [(k, k.replace("_", " "), "loss") for k in s.keys() if k.endswith("_loss")][:2]
    traj = trajectory_points(trajectory, sf.recipe, projection)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.6), squeeze=False)
    handles = []
    for ax, (key, title, kind) in zip(axes[0], panels):
        handles = contour_panel(ax, fig, sf, key, title, style.CMAPS[kind], levels, traj)
    d = s.meta.get("directions") or {}
    notes = []
    if "cosine_xy" in d and d["cosine_xy"] is not None:
        notes.append(f"cos(δ1, δ2) = {float(d['cosine_xy']):.3f}")
    if d.get("norm_x") is not None:
        notes.append(f"‖δ1‖ = {float(d['norm_x']):.3g}")
    if d.get("norm_y") is not None:
        notes.append(f"‖δ2‖ = {float(d['norm_y']):.3g}")
    fig.suptitle(
        f"{sf.task} · {style.init_label(sf.init)} · {sf.recipe} directions"
        + (f"   ({', '.join(notes)})" if notes else "")
    )
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(4, len(handles)),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.02),
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
