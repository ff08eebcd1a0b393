"""3D views of a 2D surface: a static one (matplotlib mplot3d) and an interactive one (Plotly,
one self-contained HTML file with plotly.js inlined — opens offline, and renders interactively
in W&B as ``wandb.Html``). Non-finite values become gaps (NaN), never a crash.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bertviz_landscape.atomic import write_text_atomic
from bertviz_landscape.plots import style
from bertviz_landscape.plots.inputs import SurfaceFile


def _grid(sf: SurfaceFile, key: str):
    s = sf.surface
    xx, yy = np.meshgrid(
        np.asarray(s.x, dtype=np.float64), np.asarray(s.y, dtype=np.float64)
    )  # [ny, nx], like Z
    z = np.asarray(s[key], dtype=np.float64).copy()
    z[~np.isfinite(z)] = np.nan
    return xx, yy, z


def surface_3d(sf: SurfaceFile, key: str = "train_loss"):
    """A mplot3d view of `key` (default the training loss) over (α, β)."""
    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the projection)

    if not sf.surface.two_d:
        raise ValueError(f"{sf.path} is a 1D surface; surface_3d draws 2D surfaces")
    xx, yy, z = _grid(sf, key)
    fig = plt.figure(figsize=(6.4, 5.2))
    ax = fig.add_subplot(projection="3d")
    if np.isfinite(z).any():
        zm = np.ma.masked_invalid(z)
        cmap = style.CMAPS["error" if key.endswith("error") else "loss"]
        ax.plot_surface(
            xx,
            yy,
            zm,
            cmap=cmap,
            linewidth=0.2,
            edgecolor="0.3",
            antialiased=True,
            vmin=float(np.nanmin(z)),
            vmax=float(np.nanmax(z)),
        )
        ax.set_zlim(float(np.nanmin(z)), float(np.nanmax(z)) + 1e-9)
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
    ax.set_title(f"{sf.task} · {style.init_label(sf.init)}: {style.value_label(key)}")
    fig.tight_layout()
    return fig


def interactive_figure(sf: SurfaceFile, keys: tuple[str, ...] = ("train_loss", "dev_error")):
    """A Plotly figure: one 3D surface per key present (a dropdown switches between them)."""
    import plotly.graph_objects as go

    s = sf.surface
    keys = [k for k in keys if k in s] or [k for k in s.keys() if k.endswith("_loss")][:1]
    fig = go.Figure()
    for i, key in enumerate(keys):
        _, _, z = _grid(sf, key)
        cmap = "Cividis" if key.endswith("error") else "Viridis"
        fig.add_trace(
            go.Surface(
                x=np.asarray(s.x, float),
                y=np.asarray(s.y, float),
                z=z,
                colorscale=cmap,
                name=key,
                visible=(i == 0),
                colorbar={"title": style.value_label(key)},
                hovertemplate="α=%{x:.3f}<br>β=%{y:.3f}<br>"
                + style.value_label(key)
                + "=%{z:.4f}<extra></extra>",
            )
        )
    if sf.recipe == "difference":
        for a, b, name in ((0.0, 0.0, "θ0"), (1.0, 0.0, "θ1")):
            try:
                zv = (
                    [sf.surface.at(keys[0], a, b)]
                    if (np.isclose(s.x, a).any() and np.isclose(s.y, b).any())
                    else None
                )
            except KeyError:
                zv = None
            if zv and np.isfinite(zv[0]):
                fig.add_trace(
                    go.Scatter3d(
                        x=[a],
                        y=[b],
                        z=zv,
                        mode="markers+text",
                        text=[name],
                        name=name,
                        marker={"size": 5, "color": "black"},
                        visible=True,
                    )
                )
    buttons = [
        {
            "label": style.value_label(k),
            "method": "update",
            "args": [{"visible": [tr.name == k or tr.type == "scatter3d" for tr in fig.data]}],
        }
        for k in keys
    ]
    fig.update_layout(
        title=f"{sf.task} · {style.init_label(sf.init)} · {sf.recipe} directions",
        scene={"xaxis_title": "α (δ1)", "yaxis_title": "β (δ2)", "zaxis_title": style.value_label(keys[0])},
        updatemenus=[{"buttons": buttons, "x": 0.0, "y": 1.1, "xanchor": "left"}] if len(keys) > 1 else [],
        margin={"l": 0, "r": 0, "t": 50, "b": 0},
        width=760,
        height=620,
    )
    return fig


def interactive_html(
    sf: SurfaceFile, path: str | os.PathLike, keys: tuple[str, ...] = ("train_loss", "dev_error")
) -> Path:
    """Write the interactive surface as one self-contained HTML file (plotly.js inlined), atomically."""
    fig = interactive_figure(sf, keys)
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    return write_text_atomic(path, html)
