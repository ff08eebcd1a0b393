"""3D views of a 2D surface: a static one (matplotlib mplot3d) and an interactive one (Plotly,
one self-contained HTML file with plotly.js inlined — opens offline, and renders interactively
in W&B as ``wandb.Html``). Non-finite values become gaps (NaN), never a crash. Plotly renders
its texts as (a subset of) HTML: every text the page shows goes through `_plain`, so a name
from the surface file (a dataset's name, the centre it records) is shown, never run.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.contracts.atomic import write_text_atomic
from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import SurfaceFile
from bertviz_landscape.plots.surface2d import path_heights, seed_text


def _plain(text) -> str:
    """`text` for a Plotly text field: HTML-escaped (Plotly shows `&lt;` as `<`)."""
    return html.escape(str(text), quote=True)


def _grid(sf: SurfaceFile, key: str):
    s = sf.surface
    xx, yy = np.meshgrid(
        np.asarray(s.x, dtype=np.float64), np.asarray(s.y, dtype=np.float64)
    )  # [ny, nx], like Z
    z = np.asarray(s[key], dtype=np.float64).copy()
    z[~np.isfinite(z)] = np.nan
    return xx, yy, z


def marker_points(sf: SurfaceFile) -> list[tuple[float, float, str]]:
    """(α, β, name) of the checkpoints a surface is drawn around: θ0 and θ1 for the paper's
    difference plane, the centre for random/PCA ones."""
    if sf.recipe == "difference":
        return [(0.0, 0.0, "θ0"), (1.0, 0.0, "θ1")]
    d = sf.surface.meta.get("directions") or {}
    return [(0.0, 0.0, str(d.get("center") or d.get("centre") or "theta0").replace("theta", "θ"))]


def height_at(sf: SurfaceFile, key: str, alpha: float, beta: float) -> float | None:
    """`key` at (α, β) by linear interpolation on the grid (exact at grid points); None outside
    it or where the value is not finite."""
    from scipy.interpolate import RegularGridInterpolator  # scipy's import costs ~0.3 s

    s = sf.surface
    x, y = np.asarray(s.x, np.float64), np.asarray(s.y, np.float64)
    if len(x) < 2 or len(y) < 2:
        return None
    f = RegularGridInterpolator((y, x), np.asarray(s[key], np.float64), bounds_error=False, fill_value=np.nan)
    v = float(f([[beta, alpha]])[0])
    return v if np.isfinite(v) else None


def surface_3d(
    sf: SurfaceFile, key: str = "train_loss", trajectory: dict | None = None, projection: str = "lstsq"
) -> tuple[object, str]:
    """(figure, caption): a mplot3d view of `key` (default the training loss) over (α, β), with its
    colour bar and the θ0/θ1 (or centre) marks at their heights on the surface; on the training
    loss, the path at its measured loss (`surface2d.path_heights`) when the trajectory analysis
    measured it."""
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the projection)

    if not sf.surface.two_d:
        raise ValueError(f"{sf.path} is a 1D surface; surface_3d draws 2D surfaces")
    xx, yy, z = _grid(sf, key)
    fig = plt.figure(figsize=(7.2, 5.4))
    ax = fig.add_subplot(projection="3d")
    path = None
    if np.isfinite(z).any():
        zm = np.ma.masked_invalid(z)
        cmap = style.CMAPS["error" if key.endswith("error") else "loss"]
        surf = ax.plot_surface(
            xx,
            yy,
            zm,
            cmap=cmap,
            linewidth=0.2,
            edgecolor="0.3",
            antialiased=True,
            vmin=float(np.nanmin(z)),
            vmax=float(np.nanmax(z)),
            alpha=0.9,
        )
        ax.set_zlim(float(np.nanmin(z)), float(np.nanmax(z)) + 1e-9)
        cb = fig.colorbar(surf, ax=ax, shrink=0.6, pad=0.12)
        cb.set_label(style.value_label(key))
        for a, b, name in marker_points(sf):
            h = height_at(sf, key, a, b)
            if h is None:
                continue
            marker = style.MARKERS["theta1" if name == "θ1" else "theta0"]
            ax.plot(
                [a],
                [b],
                [h],
                marker=marker["marker"],
                color=marker["color"],
                markeredgecolor="black",
                markersize=marker["markersize"],
                linestyle="none",
                zorder=10,
            )
            ax.text(a, b, h, f"  {name}", fontsize=9, zorder=11)
        path = path_heights(trajectory, sf, projection) if key == "train_loss" else None
        if path is not None:
            ax.plot(path["alpha"], path["beta"], path["loss"], "-", color="white", linewidth=2.2, zorder=12)
            ax.plot(
                path["alpha"],
                path["beta"],
                path["loss"],
                "-",
                color="black",
                linewidth=1.0,
                zorder=13,
                label=path["label"],
            )
            ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text2D(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center")
    xlabel, ylabel = style.axis_labels(sf.recipe)
    ax.set_xlabel(
        xlabel.split("(")[0].strip() + " (δ1)" if sf.recipe == "difference" else xlabel.split("(")[0].strip()
    )
    ax.set_ylabel(
        ylabel.split("(")[0].strip() + " (δ2)" if sf.recipe == "difference" else ylabel.split("(")[0].strip()
    )
    ax.set_zlabel(style.value_label(key))
    ax.view_init(elev=30, azim=-60)
    ax.set_title(f"{sf.task} · {style.init_label(sf.init)}{seed_text(sf)}: {style.value_label(key)}")
    style.tight_layout(fig)
    caption = f"{sf.task}, {style.init_label(sf.init)}{seed_text(sf)}: {style.value_label(key)} in 3D" + (
        ", the trajectory at its measured (eval-mode) training loss" if path is not None else ""
    )
    return fig, caption


def interactive_figure(
    sf: SurfaceFile,
    keys: tuple[str, ...] = ("train_loss", "dev_error"),
    trajectory: dict | None = None,
    projection: str = "lstsq",
):
    """A Plotly figure: one 3D surface per key present; a dropdown switches between them, and
    with it the colour bar, the z-axis title and the θ0/θ1 markers' heights (one marker trace
    per key). Sized by its page (responsive), the dropdown beside the title, not over it, and the
    legend below the plot, away from the colour bar."""
    import plotly.graph_objects as go  # plotly's import costs ~1 s: only the interactive views need it

    s = sf.surface
    keys = [k for k in keys if k in s] or [k for k in s.keys() if k.endswith("_loss")][:1]
    label = {k: _plain(style.value_label(k)) for k in keys}  # a key is a dataset name from the file
    fig = go.Figure()
    owner: list[str] = []  # the key each trace belongs to
    for i, key in enumerate(keys):
        _, _, z = _grid(sf, key)
        cmap = "Cividis" if key.endswith("error") else "Viridis"
        fig.add_trace(
            go.Surface(
                x=np.asarray(s.x, float),
                y=np.asarray(s.y, float),
                z=z,
                colorscale=cmap,
                name=label[key],
                visible=(i == 0),
                showlegend=False,
                colorbar={"title": {"text": label[key], "side": "right"}, "x": 1.0},
                hovertemplate="α=%{x:.3f}<br>β=%{y:.3f}<br>" + label[key] + "=%{z:.4f}<extra></extra>",
            )
        )
        owner.append(key)
        for a, b, name in marker_points(sf):
            h = height_at(sf, key, a, b)
            if h is None:
                continue
            fig.add_trace(
                go.Scatter3d(
                    x=[a],
                    y=[b],
                    z=[h],
                    mode="markers+text",
                    text=[_plain(name)],
                    name=f"{_plain(name)} ({label[key]} {h:.4g})",
                    marker={"size": 5, "color": "black" if name != "θ1" else style.OKABE_ITO["orange"]},
                    visible=(i == 0),
                    showlegend=True,
                )
            )
            owner.append(key)
        path = path_heights(trajectory, sf, projection) if key == "train_loss" else None
        if path is not None:
            fig.add_trace(
                go.Scatter3d(
                    x=path["alpha"],
                    y=path["beta"],
                    z=path["loss"],
                    mode="lines+markers",
                    name=_plain(path["label"]),
                    line={"color": "black", "width": 4},
                    marker={"size": 2, "color": "black"},
                    visible=(i == 0),
                )
            )
            owner.append(key)
    buttons = [
        {
            "label": label[k],
            "method": "update",
            "args": [
                {"visible": [o == k for o in owner]},
                {"scene.zaxis.title.text": label[k]},
            ],
        }
        for k in keys
    ]
    fig.update_layout(
        title={
            "text": _plain(f"{sf.task} · {style.init_label(sf.init)} · {sf.recipe} directions"),
            "x": 0.01,
            "xanchor": "left",
            "y": 0.98,
            "yanchor": "top",
        },
        scene={
            "xaxis_title": "α (δ1)" if sf.recipe == "difference" else "α",
            "yaxis_title": "β (δ2)" if sf.recipe == "difference" else "β",
            "zaxis": {"title": {"text": label[keys[0]]}},
        },
        updatemenus=(
            [
                {
                    "buttons": buttons,
                    "x": 0.99,
                    "xanchor": "right",
                    "y": 0.99,
                    "yanchor": "top",
                    "direction": "down",
                    "showactive": True,
                }
            ]
            if len(keys) > 1
            else []
        ),
        legend={"orientation": "h", "x": 0.0, "xanchor": "left", "y": 0.0, "yanchor": "top"},
        margin={"l": 10, "r": 10, "t": 70, "b": 40},
        autosize=True,
    )
    return fig


def interactive_html(
    sf: SurfaceFile,
    path: str | os.PathLike,
    keys: tuple[str, ...] = ("train_loss", "dev_error"),
    trajectory: dict | None = None,
    projection: str = "lstsq",
) -> Path:
    """Write the interactive surface as one self-contained HTML file (plotly.js inlined, sized
    to the window), atomically."""
    fig = interactive_figure(sf, keys, trajectory, projection)
    html = fig.to_html(
        include_plotlyjs=True,
        full_html=True,
        config={"responsive": True},
        default_width="100%",
        default_height="95vh",
    )
    return write_text_atomic(path, html)
