"""Views that do not mislead (issue 17): the trajectory drawn where it is, comparable panels,
warnings for cropped basins, 3D marks, the interactive page's metric switch. Synthetic surfaces
and hand-written analysis JSONs: no model, seconds in total."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import require_extra

from bertviz_landscape.analysis.trajectory import project_point
from bertviz_landscape.engine.surface import Surface, minimum_on_edge, write_surface
from bertviz_landscape.plots import curves, style, surface2d, surface3d
from bertviz_landscape.plots.inputs import read_surface
from tests.test_plots import make_surface


def off_plane_trajectory(surface_path, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """A path θ_t − θ0 = a_t·δ1 + b_t·δ2 + c_t·n that leaves the plane (c_t up to ~‖δ1‖), as the
    trajectory analysis writes it (per_run: paper α/β, least squares, distance), and the
    independent least-squares coordinates of every snapshot and its relative distance."""
    rng = np.random.default_rng(seed)
    P = 50
    d1, d2 = rng.normal(size=P), rng.normal(size=P)
    d2 = 0.3 * d1 + d2  # not orthogonal: least squares differs from two dot products
    n = rng.normal(size=P)
    D = np.stack([d1, d2], axis=1)
    n -= D @ np.linalg.lstsq(D, n, rcond=None)[0]  # orthogonal to the plane
    n *= np.linalg.norm(d1) / np.linalg.norm(n)
    t = np.linspace(0.05, 1.0, 12)
    V = [a * d1 + b * d2 + c * n for a, b, c in zip(t, 0.05 * np.sin(4 * t), 0.8 * np.sin(np.pi * t))]
    gram = D.T @ D
    pts = [project_point(float(v @ d1), float(v @ d2), float(v @ v), gram) for v in V]
    expected = np.array([np.linalg.lstsq(D, v, rcond=None)[0] for v in V])
    dist = np.array([np.linalg.norm(v - D @ c) / np.linalg.norm(v) for v, c in zip(V, expected)])
    per_run = {
        "alpha": [p["alpha"] for p in pts],
        "beta": [p["beta"] for p in pts],
        "lstsq": [p["lstsq"] for p in pts],
        "distance_from_plane": [p["distance_from_plane"] for p in pts],
        "plane": {"center": "theta0"},
        "epoch_points": [],
    }
    traj = {
        "format": "bertviz-analysis/1",
        "analysis": "trajectory",
        "inputs": {"surfaces": [{"path": str(surface_path)}]},
        "runs": [{"task": "mrpc", "init": "pretrained"}],
        "per_run": [per_run],
        "summary": {},
    }
    return traj, expected, dist


def _path_line(ax):
    return next(ln for ln in ax.lines if ln.get_label().startswith("trajectory"))


def test_default_trajectory_is_its_least_squares_projection_and_the_figure_says_how_far(tmp_path):
    path = make_surface(tmp_path / "mrpc_pretrained_plane.h5")
    sf = read_surface(path)
    traj, expected, dist = off_plane_trajectory(path)
    fig, _ = surface2d.surface_contours(sf, traj)
    panels = [ax for ax in fig.axes if ax.get_title() in (style.TRAIN_LOSS, style.DEV_ERROR)]
    assert len(panels) == 2
    for ax in panels:  # both value panels
        line = _path_line(ax)
        assert "least-squares" in line.get_label()
        np.testing.assert_allclose(line.get_xdata()[1:], expected[:, 0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(line.get_ydata()[1:], expected[:, 1], rtol=1e-9, atol=1e-12)
        assert (line.get_xdata()[0], line.get_ydata()[0]) == (0.0, 0.0)  # from θ0
    assert dist.max() > 0.5  # the path really leaves the plane
    texts = [t.get_text() for t in fig.texts]
    assert any(f"largest distance from this plane: {dist.max():.3f}" in t for t in texts), texts
    style.plt.close(fig)
    # the paper's (α_t, β_t) is an option, and then captioned as the projection it is
    paper, _ = surface2d.surface_contours(sf, traj, projection="paper")
    line = _path_line(paper.axes[0])
    beta = np.array(traj["per_run"][0]["beta"])
    np.testing.assert_allclose(line.get_ydata()[1:], beta)
    assert not np.allclose(beta, expected[:, 1], atol=0.05)  # the two views differ for this path
    assert any("not its δ2 coordinate" in t.get_text() for t in paper.texts)
    assert any("largest distance from this plane" in t.get_text() for t in paper.texts)
    style.plt.close(paper)
    with pytest.raises(ValueError, match="projection"):
        surface2d.trajectory_points(traj, sf, "cosine")


def test_a_pca_surface_draws_the_path_on_its_own_pca_coordinates_only(tmp_path):
    path = make_surface(tmp_path / "mrpc_pretrained_pca.h5", recipe="pca")
    sf = read_surface(path)
    traj = {
        "per_run": [
            {
                "pca": {
                    "coordinates": [[5.0, 5.0]],  # mean-centred scores: not this surface's coordinates
                    "explained_variance_ratio": [0.7, 0.2],
                    "surface": str(path),
                    "surface_coordinates": [[-1.0, 0.1], [-0.4, 0.05], [0.0, 0.0]],
                    "surface_distance_from_plane": [0.2, 0.1, 0.0],
                }
            }
        ]
    }
    pts = surface2d.trajectory_points(traj, sf)
    assert pts["alpha"] == [-1.0, -0.4, 0.0] and pts["max_distance"] == 0.2
    assert "90.0%" in pts["caption"]
    other = read_surface(make_surface(tmp_path / "mrpc_pretrained_pca2.h5", recipe="pca"))
    assert surface2d.trajectory_points(traj, other) is None  # another PCA surface: not drawn


def test_pretrained_and_scratch_share_one_colour_scale_and_one_set_of_levels(tmp_path):
    pre = read_surface(make_surface(tmp_path / "mrpc_pretrained_plane.h5", cx=1.0, cy=0.0))
    x, y = pre.surface.x, pre.surface.y
    scr_vals = {k: np.asarray(v) * 3 + 0.5 for k, v in pre.surface.values.items()}  # another range
    write_surface(tmp_path / "mrpc_scratch_plane.h5", Surface(x, y, scr_vals, pre.surface.meta))
    scr = read_surface(tmp_path / "mrpc_scratch_plane.h5")
    fig, _ = surface2d.surface_comparison([pre, scr])
    panels = [ax for ax in fig.axes if ax.get_title()]
    by_row: dict[str, list] = {}
    for ax in panels:
        by_row.setdefault(ax.get_title().split(": ")[1], []).append(ax)
    assert set(by_row) == {style.TRAIN_LOSS, style.DEV_ERROR}
    for key, axes in (("train_loss", by_row[style.TRAIN_LOSS]), ("dev_error", by_row[style.DEV_ERROR])):
        levels = [np.asarray(ax.collections[0].levels) for ax in axes]
        np.testing.assert_allclose(levels[0], levels[1])
        lo = min(np.nanmin(pre.surface[key]), np.nanmin(scr.surface[key]))
        hi = max(np.nanmax(pre.surface[key]), np.nanmax(scr.surface[key]))
        assert levels[0][0] == pytest.approx(lo) and levels[0][-1] == pytest.approx(hi)
        assert axes[0].collections[0].get_clim() == axes[1].collections[0].get_clim()
    assert len(fig.axes) == 4 + 2  # four panels, one colour bar per row
    style.plt.close(fig)


def test_a_minimum_on_the_grid_edge_is_warned_with_the_override_that_widens_it(tmp_path):
    path = make_surface(tmp_path / "mrpc_scratch_plane.h5", cx=2.5, cy=0.3, nx=9, ny=5)
    sf = read_surface(path)
    edge = minimum_on_edge(sf.surface, "train_loss")
    assert edge["edges"] == ["x.max"] and edge["alpha"] == 1.5
    assert edge["override"] == "grid.x.max=2.5 grid.x.num=13"  # same spacing 0.25, half the span more
    inside = read_surface(make_surface(tmp_path / "mrpc_pretrained_plane.h5", cx=0.5, cy=0.5, nx=9, ny=5))
    assert minimum_on_edge(inside.surface, "train_loss") is None
    fig, _ = surface2d.surface_contours(sf)
    assert any("grid.x.max=2.5" in t.get_text() for t in fig.texts)
    style.plt.close(fig)
    from bertviz_landscape.plots.results import draw_all

    manifest = draw_all(tmp_path, tmp_path / "figs", interactive=False, formats=("png",))
    warned = [w for w in manifest["warnings"] if w["key"] == "train_loss"]
    assert [w["init"] for w in warned] == ["scratch"] and "grid.x.max=2.5" in warned[0]["message"]
    cap = next(f for f in manifest["figures"] if f["kind"] == "surface2d" and f["init"] == "scratch")
    assert "grid.x.max=2.5" in cap["caption"]
    line = make_surface(tmp_path / "line" / "mrpc_scratch_line.h5", two_d=False, cx=-1.0)
    assert minimum_on_edge(read_surface(line).surface, "train_loss")["edges"] == ["x.min"]


def test_1d_curves_put_loss_and_error_in_separate_panels_and_never_clip_the_band(tmp_path):
    pre = read_surface(make_surface(tmp_path / "mrpc_pretrained_line.h5", two_d=False, cx=1.0))
    s = pre.surface
    s.values["train_loss_stderr"] = np.full_like(s["train_loss"], 0.3)  # wide band
    fig, _ = curves.loss_curves([pre])
    ax, ax_err = fig.axes
    assert ax.get_ylabel() == style.TRAIN_LOSS and ax_err.get_ylabel().startswith(style.DEV_ERROR)
    assert ax.get_shared_x_axes().joined(ax, ax_err)
    lo, hi = ax.get_ylim()
    assert lo <= np.min(s["train_loss"] - 0.3) and hi >= np.max(s["train_loss"] + 0.3)
    np.testing.assert_allclose(
        next(ln for ln in ax_err.lines if ln.get_label().endswith(style.DEV_ERROR)).get_ydata(),
        s["dev_error"],
    )
    style.plt.close(fig)


def test_static_3d_has_a_colour_bar_and_theta_marks_at_their_heights(tmp_path):
    sf = read_surface(make_surface(tmp_path / "mrpc_pretrained_plane.h5", nx=9, ny=9))
    fig, _ = surface3d.surface_3d(sf)
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == style.TRAIN_LOSS  # the colour bar
    ax = fig.axes[0]
    marks = [ln for ln in ax.lines if ln.get_marker() in ("o", "*")]
    heights = sorted(float(ln.get_data_3d()[2][0]) for ln in marks)
    want = sorted([sf.surface.at("train_loss", 0.0, 0.0), sf.surface.at("train_loss", 1.0, 0.0)])
    np.testing.assert_allclose(heights, want)
    style.plt.close(fig)


def test_interactive_switch_moves_markers_z_title_and_colour_bar(tmp_path):
    sf = read_surface(make_surface(tmp_path / "mrpc_pretrained_plane.h5", nx=9, ny=9))
    fig = surface3d.interactive_figure(sf)
    assert fig.layout.width is None and fig.layout.autosize  # sized by the page
    (menu,) = fig.layout.updatemenus
    title_y, menu_x = fig.layout.title.y, menu.x
    assert (
        fig.layout.title.xanchor == "left" and menu.xanchor == "right" and menu_x > 0.5 > fig.layout.title.x
    )
    assert title_y >= menu.y or menu.x - fig.layout.title.x > 0.5  # not over the title
    assert fig.layout.legend.orientation == "h"  # below the plot, away from the colour bar at the right
    for button, key in zip(menu.buttons, ("train_loss", "dev_error")):
        visible = button.args[0]["visible"]
        shown = [tr for tr, v in zip(fig.data, visible) if v]
        assert button.args[1]["scene.zaxis.title.text"] == style.value_label(key)
        surf = [tr for tr in shown if tr.type == "surface"]
        assert len(surf) == 1 and surf[0].colorbar.title.text == style.value_label(key)
        markers = {tr.text[0]: tr.z[0] for tr in shown if tr.type == "scatter3d"}
        assert markers["θ0"] == pytest.approx(sf.surface.at(key, 0.0, 0.0))
        assert markers["θ1"] == pytest.approx(sf.surface.at(key, 1.0, 0.0))
    html = surface3d.interactive_html(sf, tmp_path / "page.html")
    text = html.read_text()
    assert '"responsive": true' in text and "width:100%" in text.replace(" ", "")


def test_draw_all_rejects_an_unknown_projection(tmp_path):
    from bertviz_landscape.contracts.errors import BadInput
    from bertviz_landscape.plots.results import draw_all

    with pytest.raises(BadInput, match="trajectory_projection"):
        draw_all(tmp_path, trajectory_projection="cos")


# --------------------------------------------------------------------------- the report in a browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MARK_IMAGES = (
    "<script>window.addEventListener('load', () => {"
    "for (const i of document.images)"
    " i.setAttribute('data-loaded', String(i.complete && i.naturalWidth > 0));"
    "document.body.setAttribute('data-ready', '1');});</script>"
)


class _Dom(HTMLParser):
    """Table header cells, image attributes, links and the text of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.th, self.imgs, self.links, self.text, self._in_th = [], [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "th":
            self._in_th = True
            self.th.append("")
        elif tag == "img":
            self.imgs.append(attrs)
        elif tag == "a":
            self.links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag == "th":
            self._in_th = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_th:
            self.th[-1] += data


def _squash(text: str) -> str:
    return " ".join(text.split())


def markdown_table_columns(md: str) -> list[str]:
    """Every header cell of every table of a Markdown text."""
    lines = md.splitlines()
    cols = []
    for head, rule in zip(lines, lines[1:]):
        if head.startswith("|") and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", rule.strip()):
            cols += [c.strip() for c in head.strip().strip("|").split("|")]
    return cols


def write_run(root: Path, task: str, init: str, dev: float, base: float) -> Path:
    run = root / "runs" / f"{task}_{init}"
    (run / "checkpoints" / "init").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"task": task, "init": init, "seed": 1, "model": "tiny"}))
    metrics = {
        "task": task,
        "init": init,
        "primary_metric": "accuracy",
        "dev": {"val/accuracy": dev},
        "majority_baseline": {"accuracy": base},
        "dev_examples": 408,
        "steps": 40,
        "train_examples": 640,
        "wall_seconds": 12.5,
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("BVL_REQUIRE_EXTRAS"),  # .ci/run installs it: no skip there
    reason="no chromium on PATH (Debian: apt-get install -y chromium)",
)
def test_report_html_in_headless_chromium_has_every_column_sentence_and_image(tmp_path):
    assert CHROMIUM is not None, "no chromium on PATH (Debian: apt-get install -y chromium)"
    from bertviz_landscape.plots.results import draw_all
    from bertviz_landscape.publish.publisher import write_report
    from bertviz_landscape.publish.report import claims
    from tests.test_plots import write_fixture_dir

    root = write_fixture_dir(tmp_path / "res")
    write_run(root, "mrpc", "pretrained", 0.81, 0.684)
    write_run(root, "mrpc", "scratch", 0.684, 0.684)  # exactly at its majority baseline: "beat it?" no
    make_surface(root / "surfaces" / "mrpc_scratch_plane.h5", cx=1.9, nx=9, ny=9)  # basin past the grid
    draw_all(root, formats=("png",))
    md_path, page = write_report(root)
    md = md_path.read_text()
    moved = tmp_path / "elsewhere" / "res"  # the report's directory moved: links must still resolve
    moved.parent.mkdir()
    shutil.move(root, moved)
    harness = moved / "report.chromium.html"
    harness.write_text((moved / "report.html").read_text().replace("</body>", MARK_IMAGES + "</body>"))
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--dump-dom",
            harness.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    assert 'data-ready="1"' in proc.stdout  # the page loaded and the marker script ran
    text = _squash(" ".join(dom.text))
    columns = markdown_table_columns(md)
    assert "beat it?" in columns and "from scratch" in columns
    th = {_squash(c) for c in dom.th}
    assert {_squash(c) for c in columns if c} <= th, sorted(set(columns) - th)
    verdicts = claims.decide_all({k: list(v) for k, v in fixture_analyses_by_name(moved).items()})
    assert verdicts
    for v in verdicts:
        assert _squash(v.sentence) in text, v.sentence
    assert "Method (the plan)" in text and "did not beat their majority baseline" in text  # the rules
    assert "grid.x.max=" in text  # the grid-edge warning, in both renderings
    scratch_row = next(  # the Runs table: task | model | init | …
        line for line in md.splitlines() if line.startswith("| mrpc | ") and " | scratch | " in line
    )
    assert "accuracy 0.684 | 0.684 | **no** |" in scratch_row
    n_png = sum(1 for line in md.splitlines() if line.startswith("![") and ".png)" in line)
    assert n_png > 0 and len(dom.imgs) == n_png
    assert all(i.get("data-loaded") == "true" for i in dom.imgs), [i.get("alt") for i in dom.imgs]
    assert all(i["src"].startswith("data:image/png;base64,") for i in dom.imgs)  # the page carries them
    interactive = [h for h in dom.links if h.endswith(".html")]
    assert interactive and all((moved / h).is_file() and not Path(h).is_absolute() for h in interactive)


def fixture_analyses_by_name(root: Path) -> dict[str, list[dict]]:
    from bertviz_landscape.plots.results import Results

    return Results.scan(root, exclude=(root / "figures",)).analyses


# --------------------------------------------------------------------------- W&B read back
def test_wandb_pretrained_and_scratch_log_the_same_keys_linked_to_their_training_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    from bertviz_landscape.plots.results import draw_all
    from bertviz_landscape.publish.wandb_media import log_results
    from tests.test_plots import read_offline, write_fixture_dir

    root = write_fixture_dir(tmp_path / "res")
    for init in ("pretrained", "scratch"):
        run = write_run(root, "mrpc", init, 0.8, 0.684)
        (run / "config.yaml").write_text(
            f"init: {init}\noptim:\n  lr: {2e-5 if init == 'pretrained' else 1e-4}\n"
        )
        (run / "wandb" / f"offline-run-20261201_000000-train{init[:3]}").mkdir(parents=True)
        (root / "surfaces" / f"mrpc_{init}_plane.directions.h5").write_bytes(
            b"direction file " + init.encode()
        )
    draw_all(root, formats=("png",))
    out = log_results(root)
    runs = {(r["job_type"], r["init"]): r for r in out["runs"]}
    pre, scr = runs[("landscape", "pretrained")], runs[("landscape", "scratch")]
    keysets = {}
    for entry in (pre, scr):
        summary, records = read_offline(Path(entry["dir"]))
        keys = {k for k in summary["summary"] if k.split("/")[0] in ("landscape", "figures", "analysis")}
        assert not any("pretrained" in k or "scratch" in k for k in keys), sorted(keys)
        keysets[entry["init"]] = keys
        run_rec = next(r for r in records if r.get("type") == "run")["run"]
        assert run_rec.get("run_group") == "mrpc" and entry["init"] in json.dumps(run_rec)  # name and config
        config = json.dumps(run_rec.get("config") or {})
        assert f'"{entry["init"]}"' in config  # the init is in the config, not in the keys
        assert f"train{entry['init'][:3]}" in config and ("0.0001" in config or "2e-05" in config)
        arts = [r["artifact"] for r in records if r.get("type") == "artifact"]
        contents = [c for a in arts for c in a["manifest"]["contents"]]
        assert f"mrpc_{entry['init']}_plane.directions.h5" in {c["path"] for c in contents}
        assert not any(str(c.get("ref", "")).startswith("file://") for c in contents)  # uploaded, not linked
    assert keysets["pretrained"] == keysets["scratch"]
    assert {"landscape/mrpc_difference_line/train_loss_table", "landscape/mrpc_difference_plane/figure"} <= (
        keysets["pretrained"]
    )
    # every figure once: the shared ones in the task's figures run, the per-init ones in their run
    logged_pngs = [p for r in out["runs"] for p in r["figures"]]
    assert len(logged_pngs) == len(set(logged_pngs))
    shared = runs[("figures", None)]["keys"]
    assert "figures/curve1d/mrpc_difference_line" in shared and any(
        k.startswith("figures/layers") for k in shared
    )
    # one command syncs every run, the training runs included
    assert "offline-run-20261201_000000-trainpre" in out["sync"] and pre["dir"] in out["sync"]


# --------------------------------------------------------------------------- Li et al.'s tools
# What tomgoldstein/loss-landscape's scripts read (checked against their HEAD by hand):
#   plot_2D.plot_2d_contour: f['xcoordinates'], f['ycoordinates'], X, Y = meshgrid(x, y),
#       Z = f[surf_name] (train_loss | test_loss | train_err | test_err ...), contour(X, Y, Z)
#   plot_1D.plot_1d_loss_err: f['train_loss'], f['train_acc'] (percent, ylim 0..100), and when
#       'test_loss' is present f['test_loss'], f['test_acc']
#   plot_2D.plot_contour_trajectory / plot_trajectory: proj_file['proj_xcoord'], ['proj_ycoord'];
#       dir_file['explained_variance_ratio_'][0], [1]
#   h52vtp.h5_to_vtp: meshgrid(x, y) raveled against f[surf_name].ravel(), matrix_size = sqrt(N)
#       (square grids only: our .vts export is the non-square replacement)
def test_li_plot_2d_and_plot_1d_read_our_surfaces_in_their_units(tmp_path):
    import h5py

    def with_train_accuracy(path):  # what the engine records for accuracy tasks
        s = read_surface(path).surface
        s.values["train_accuracy"] = 1 - s.values["train_error"]
        return write_surface(path, s)

    path = with_train_accuracy(
        make_surface(tmp_path / "mrpc_pretrained_plane.h5", nx=9, ny=5, cx=0.7, cy=0.3)
    )
    sf = read_surface(path)
    with h5py.File(path, "r") as f:
        x, y = np.array(f["xcoordinates"][:]), np.array(f["ycoordinates"][:])
        X, Y = np.meshgrid(x, y)
        for name in ("train_loss", "test_loss", "train_err", "test_err", "train_acc", "test_acc"):
            assert name in f.keys(), name
            Z = np.array(f[name][:])
            assert Z.shape == X.shape  # contour(X, Y, Z) draws Z[j, i] at (x[i], y[j])
        np.testing.assert_allclose(f["train_err"][:], 100 * sf.surface["train_error"])  # percent
        np.testing.assert_allclose(f["test_err"][:], 100 * sf.surface["dev_error"])
        np.testing.assert_allclose(f["test_acc"][:], 100 - np.array(f["test_err"][:]))
        j, i = np.unravel_index(np.argmin(f["train_loss"][:]), X.shape)
        assert (X[j, i], Y[j, i]) == (0.75, 0.5)  # their picture's minimum is where ours is (0.7, 0.3 → grid)
    line = with_train_accuracy(make_surface(tmp_path / "mrpc_pretrained_line.h5", two_d=False))
    with h5py.File(line, "r") as f:
        x = f["xcoordinates"][:]
        assert "train_loss" in f.keys() and "test_loss" in f.keys()
        for name in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert f[name][:].shape == x.shape
        assert 0 <= f["train_acc"][:].min() and f["test_acc"][:].max() <= 100


def test_li_contour_trajectory_reads_our_pca_direction_and_projection_files(tmp_path):
    from collections import OrderedDict

    import h5py
    import torch

    from bertviz_landscape.analysis.trajectory import Plane, write_li_projection
    from bertviz_landscape.engine.direction_file import read_directions, write_directions
    from bertviz_landscape.engine.directions import Directions

    x = OrderedDict(w=torch.tensor([1.0, 0.0, 0.0]))
    y = OrderedDict(w=torch.tensor([0.0, 1.0, 0.0]))
    info = {
        "explained_variance_ratio": [0.81, 0.12],
        "explained_variance": [4.0, 0.6],
        "singular_values": [2, 0.7],
    }
    dir_file = write_directions(
        tmp_path / "pca.directions.h5", Directions("pca", x, y, "theta1", info), "k", {}
    )
    points = [{"lstsq": [-1.0 + 0.25 * t, 0.1 * t], "distance_from_plane": 0.01 * t} for t in range(5)]
    plane = Plane(x, y, None, "theta1", dir_file)
    proj = write_li_projection(tmp_path / "pca.projection.h5", points, tmp_path / "pca.h5", plane)
    with h5py.File(dir_file, "r") as df, h5py.File(proj, "r") as pf:
        assert (df["explained_variance_ratio_"][0], df["explained_variance_ratio_"][1]) == (0.81, 0.12)
        assert list(df["explained_variance_"][:]) == [4.0, 0.6] and "xdirection" in df and "ydirection" in df
        np.testing.assert_allclose(pf["proj_xcoord"][:], [p["lstsq"][0] for p in points])
        np.testing.assert_allclose(pf["proj_ycoord"][:], [p["lstsq"][1] for p in points])
    assert read_directions(dir_file)[0].recipe == "pca"  # still our direction file
    rnd = write_directions(
        tmp_path / "rnd.directions.h5", Directions("random", x, y, "theta0", info), "k", {}
    )
    with h5py.File(rnd, "r") as df:
        assert "explained_variance_ratio_" not in df  # only PCA directions have it


def test_paraview_export_is_right_for_non_square_grids(tmp_path):
    pyvista = require_extra("pyvista", "paraview")
    from bertviz_landscape.engine.surface import write_vts

    path = make_surface(tmp_path / "mrpc_pretrained_plane.h5", nx=9, ny=5, nan_corner=True)
    s = read_surface(path).surface
    out = write_vts(s, tmp_path / "surface.vts")
    grid = pyvista.read(str(out))
    assert tuple(grid.dimensions) == (9, 5, 1)
    pts = np.asarray(grid.points)
    for j in range(5):
        for i in range(9):
            k = i + 9 * j  # VTK's order: x fastest
            assert pts[k, 0] == pytest.approx(s.x[i]) and pts[k, 1] == pytest.approx(s.y[j])
            want = s["train_loss"][j, i]
            got = grid.point_data["train_loss"][k]
            assert (np.isnan(got) and not np.isfinite(want)) or got == pytest.approx(want)
            if np.isfinite(want):
                assert pts[k, 2] == pytest.approx(want)
    assert grid.point_data["test_err"][0] == pytest.approx(100 * s["dev_error"][0, 0])
    from bertviz_landscape.plots.results import draw_all

    manifest = draw_all(tmp_path, tmp_path / "figs", interactive=False, formats=("png",), paraview=True)
    (vts,) = [f["files"][0] for f in manifest["figures"] if f["kind"] == "paraview"]
    assert tuple(pyvista.read(vts).dimensions) == (9, 5, 1)


def test_3d_views_draw_the_path_at_its_measured_loss_and_only_then(tmp_path):
    path = make_surface(tmp_path / "mrpc_pretrained_plane.h5", nx=9, ny=9)
    sf = read_surface(path)
    traj, expected, _ = off_plane_trajectory(path)
    pr = traj["per_run"][0]
    pr["steps"] = list(range(10, 130, 10))
    measured = [0.9 - 0.05 * k for k in range(12)]
    pr["path_loss"] = {"steps": [0, *pr["steps"]], "loss": [1.2, *measured]}
    fig, _ = surface3d.surface_3d(sf, "train_loss", traj)
    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("trajectory"))
    xs, ys, zs = line.get_data_3d()
    np.testing.assert_allclose(zs, [1.2, *measured])  # the measured loss, not the surface under the path
    np.testing.assert_allclose(xs[1:], expected[:, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ys[1:], expected[:, 1], rtol=1e-9, atol=1e-12)
    style.plt.close(fig)
    page = surface3d.interactive_figure(sf, trajectory=traj)
    (tr,) = [t for t in page.data if t.name and t.name.startswith("trajectory")]
    np.testing.assert_allclose(tr.z, [1.2, *measured])
    del pr["path_loss"]
    fig, _ = surface3d.surface_3d(sf, "train_loss", traj)
    assert not any(ln.get_label().startswith("trajectory") for ln in fig.axes[0].lines)  # no invented height
    style.plt.close(fig)


def test_1d_curves_draw_several_seeds_of_one_init_as_mean_and_spread(tmp_path):
    seeds = [
        read_surface(
            make_surface(tmp_path / f"mrpc_pretrained_seed{k}_line.h5", two_d=False, cx=0.8 + 0.1 * k)
        )
        for k in range(3)
    ]
    scratch = read_surface(make_surface(tmp_path / "mrpc_scratch_line.h5", two_d=False, cx=0.5))
    fig, _ = curves.loss_curves([*seeds, scratch])
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines if style.TRAIN_LOSS in ln.get_label()}
    assert set(lines) == {
        f"pretrained (mean of 3 seeds): {style.TRAIN_LOSS}",
        f"from scratch: {style.TRAIN_LOSS}",
    }
    stack = np.stack([s.surface["train_loss"] for s in seeds])
    np.testing.assert_allclose(
        lines[f"pretrained (mean of 3 seeds): {style.TRAIN_LOSS}"].get_ydata(), stack.mean(0)
    )
    band = ax.collections[0].get_paths()[0].vertices[:, 1]  # the seeds' shaded spread
    assert band.min() == pytest.approx(stack.min()) and band.max() == pytest.approx(stack.max())
    assert any("min–max over the runs" in t.get_text() for t in fig.texts)
    style.plt.close(fig)


def test_figures_of_a_relative_results_directory_land_in_its_figures_directory(tmp_path, monkeypatch):
    """`make demo` passes a relative output_dir: the figures go to <results>/figures/<name>, not to a
    copy of the relative path below it (they went to figures/outputs/demo/figures/)."""
    from bertviz_landscape.plots.results import draw_all

    make_surface(tmp_path / "res" / "mrpc_scratch_plane.h5", cx=0.5, cy=0.3, nx=5, ny=3)
    monkeypatch.chdir(tmp_path)
    manifest = draw_all(Path("res"), interactive=False, formats=("png",))
    pngs = sorted(p.relative_to(tmp_path / "res" / "figures") for p in (tmp_path / "res").rglob("*.png"))
    assert pngs and all(len(p.parts) == 1 for p in pngs), pngs
    assert manifest["figures"]
