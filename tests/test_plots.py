"""Figures, report claims and W&B media, on synthetic surfaces and hand-written analysis JSONs
(the bertviz-analysis/1 contract): no model, seconds in total."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers.plots import bowl, fixture_analyses, make_surface, write_fixture_dir

from bertviz_landscape.engine.surface import Surface, write_surface
from bertviz_landscape.plots import curves, style, surface2d
from bertviz_landscape.plots.inputs import read_surface
from bertviz_landscape.publish.report import claims


# --------------------------------------------------------------------------- orientation
def _min_colour_location(fig, ax, cmap_name: str) -> tuple[float, float]:
    """Data coordinates of the centroid of the pixels drawn in the lowest level's colour."""
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(float) / 255
    h = rgba.shape[0]
    target = np.array(style.plt.get_cmap(cmap_name)(0.0)[:3])
    bbox = ax.get_window_extent()
    x0, x1 = int(bbox.x0) + 2, int(bbox.x1) - 2
    r0, r1 = int(h - bbox.y1) + 2, int(h - bbox.y0) - 2  # rows count from the top
    region = rgba[r0:r1, x0:x1]
    dist = np.linalg.norm(region - target, axis=-1)
    rows, cols = np.nonzero(dist < 0.08)
    assert rows.size > 0, "no pixel in the lowest level's colour"
    px = x0 + cols.mean()
    py = h - (r0 + rows.mean())
    return tuple(ax.transData.inverted().transform((px, py)))


@pytest.mark.parametrize("cx,cy", [(0.7, 0.1), (0.2, 0.9)])
def test_2d_contour_minimum_is_drawn_where_the_surface_minimum_is(tmp_path, cx, cy):
    """An asymmetric bowl on a non-square grid: the darkest region of the drawn training-loss
    panel lies at the surface's argmin (a transposed array would put it at (cy, cx))."""
    sf = read_surface(make_surface(tmp_path / "mrpc_pretrained_plane.h5", cx=cx, cy=cy))
    j, i = np.unravel_index(np.nanargmin(sf.surface["train_loss"]), sf.surface.shape)
    fig, _ = surface2d.surface_contours(sf)
    ax = fig.axes[0]
    assert ax.get_title() == style.TRAIN_LOSS and "α" in ax.get_xlabel() and "β" in ax.get_ylabel()
    mx, my = _min_colour_location(fig, ax, "viridis")
    dx, dy = np.diff(sf.surface.x)[0], np.diff(sf.surface.y)[0]
    assert abs(mx - sf.surface.x[i]) < dx and abs(my - sf.surface.y[j]) < dy, (
        (mx, my),
        (sf.surface.x[i], sf.surface.y[j]),
    )
    style.plt.close(fig)


def test_difference_recipe_marks_theta0_and_theta1_and_random_marks_the_centre(tmp_path):
    diff, _ = surface2d.surface_contours(read_surface(make_surface(tmp_path / "a_pretrained_plane.h5")))
    labels = [line.get_label() for line in diff.axes[0].lines]
    assert "θ0 (start)" in labels and "θ1 (end of training)" in labels
    pts = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in diff.axes[0].lines}
    assert pts["θ0 (start)"] == ([0], [0]) and pts["θ1 (end of training)"] == ([1], [0])
    rnd, _ = surface2d.surface_contours(
        read_surface(make_surface(tmp_path / "a_scratch_plane.h5", recipe="random"))
    )
    labels = [line.get_label() for line in rnd.axes[0].lines]
    assert "centre (θ0)" in labels and not any("θ1" in lab for lab in labels)
    assert "random" in rnd.axes[0].get_xlabel()


def test_trajectory_is_drawn_on_both_panels(tmp_path):
    sf = read_surface(make_surface(tmp_path / "mrpc_pretrained_plane.h5"))
    traj = {
        "per_run": [
            {
                "alpha": [0, 0.4, 1.0],
                "beta": [0, 0.2, 0.1],
                "lstsq": [[0, 0], [0.4, 0.1], [1, 0]],
                "epoch_points": [
                    {"epoch": 1, "alpha": 0.4, "beta": 0.2, "lstsq": [0.4, 0.1], "dev_error": 0.3}
                ],
            }
        ]
    }
    fig, _ = surface2d.surface_contours(sf, traj, projection="paper")
    for ax in fig.axes[:2] if len(fig.axes) == 4 else fig.axes[::2]:
        lines = [ln for ln in ax.lines if ln.get_label().startswith("trajectory")]
        assert (
            lines
            and list(lines[0].get_xdata()) == [0, 0.4, 1.0]
            and list(lines[0].get_ydata()) == [0, 0.2, 0.1]
        )
    late = {
        "per_run": [{"alpha": [0.3, 1.0], "beta": [0.1, 0.0]}]
    }  # first snapshot after step 1: the path starts at θ0
    fig, _ = surface2d.surface_contours(sf, late, projection="paper")
    line = next(ln for ln in fig.axes[0].lines if ln.get_label().startswith("trajectory"))
    assert list(line.get_xdata()) == [0, 0.3, 1.0] and list(line.get_ydata()) == [0, 0.1, 0.0]


def test_non_finite_values_are_masked_not_a_crash(tmp_path):
    sf = read_surface(make_surface(tmp_path / "mrpc_scratch_plane.h5", nan_corner=True))
    fig, _ = surface2d.surface_contours(sf)
    style.save_figure(fig, tmp_path / "nan")
    assert (tmp_path / "nan.png").stat().st_size > 0 and (tmp_path / "nan.pdf").stat().st_size > 0
    all_nan = Surface(
        sf.surface.x, sf.surface.y, {"train_loss": np.full(sf.surface.shape, np.nan)}, sf.surface.meta
    )
    write_surface(tmp_path / "mrpc_scratch_nan.h5", all_nan)
    fig, _ = surface2d.surface_contours(read_surface(tmp_path / "mrpc_scratch_nan.h5"))
    style.save_figure(fig, tmp_path / "allnan")


def test_1d_curves_plot_the_surface_values_with_the_stderr_band(tmp_path):
    pre = read_surface(make_surface(tmp_path / "mrpc_pretrained_line.h5", two_d=False, cx=1.0))
    scr = read_surface(make_surface(tmp_path / "mrpc_scratch_line.h5", two_d=False, cx=0.8))
    fig, _ = curves.loss_curves([pre, scr])
    ax, ax_err = fig.axes
    loss_lines = {ln.get_label(): ln for ln in ax.lines if "training loss" in ln.get_label()}
    np.testing.assert_allclose(loss_lines["pretrained: training loss"].get_ydata(), pre.surface["train_loss"])
    np.testing.assert_allclose(loss_lines["from scratch: training loss"].get_xdata(), scr.surface.x)
    np.testing.assert_allclose(
        [ln for ln in ax_err.lines if ln.get_label() == "from scratch: dev error"][0].get_ydata(),
        scr.surface["dev_error"],
    )
    assert len(ax.collections) == 2  # one ±stderr band per curve
    assert (
        loss_lines["pretrained: training loss"].get_color().lower()
        == style.INIT_COLOURS["pretrained"].lower()
    )


def test_a_li_et_al_surface_file_plots(tmp_path):
    """Li et al.'s keys (train_loss, test_loss, train_acc/test_acc in percent; their files are [nx, ny])."""
    x, y = np.linspace(-1, 1, 9), np.linspace(-1, 1, 5)
    z = bowl(x, y, 0.5, -0.5)  # [ny, nx]
    path = tmp_path / "li_surface.h5"
    with h5py.File(path, "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"], f["test_loss"] = z.T, z.T + 0.1
        f["train_acc"], f["test_acc"] = 100 - 10 * z.T, 90 - 10 * z.T
    from bertviz_landscape.plots.results import draw_all

    manifest = draw_all(tmp_path, tmp_path / "figs", interactive=False)
    kinds = {f["kind"] for f in manifest["figures"]}
    assert {"surface2d", "surface3d"} <= kinds
    sf = read_surface(path)
    assert sf.surface.shape == (5, 9) and "dev_error" in sf.surface
    fig, _ = surface2d.surface_contours(sf)
    mx, my = _min_colour_location(fig, fig.axes[0], "viridis")
    assert abs(mx - 0.5) < 0.25 and abs(my + 0.5) < 0.5


def test_one_run_per_arm_is_descriptive_only_for_every_claim():
    """The unit of replication is the run: one run per arm never decides (tests/test_claims.py decides
    claims across seeds)."""
    verdicts = {v.claim: v for v in claims.decide_all(fixture_analyses())}
    assert set(verdicts) == set(claims.CLAIMS)
    for name, v in verdicts.items():
        if name == "lower_layers_invariant":  # the scratch fixture's equal relative changes: no rank trend
            assert v.verdict == claims.UNRESOLVED and "not measured" in v.sentence
            continue
        if name == "shared_basins":  # the fixture predates analysis=basins: no JSONs, never a verdict
            assert v.verdict == claims.UNRESOLVED and "no basins JSONs" in v.sentence
            continue
        assert v.verdict == claims.DESCRIPTIVE, (name, v.sentence)
        assert v.sentence.startswith("descriptive only (n = 1/1 runs")
    # the fixture has no registered width (invariant_width): the sentence quotes what it has, per arm
    assert "pretrained 3 (n = 1), from scratch 40 (n = 1)" in verdicts["wider_optima"].sentence


def test_draw_all_and_report_from_a_results_directory(tmp_path):
    from bertviz_landscape.cli.compose import compose
    from bertviz_landscape.cli.plot import run

    root = write_fixture_dir(tmp_path / "res")
    manifest = run(compose("plot", [f"results={root}"]))
    kinds = sorted(f["kind"] for f in manifest["figures"])
    assert kinds == sorted(
        [
            "curve1d",
            "surface2d",
            "surface2d",
            "surface2d_compare",
            "surface3d",
            "surface3d",
            "interactive3d",
            "interactive3d",
            "layers",
            "dev_per_epoch",
            "flatness",
        ]
    )
    for fig in manifest["figures"]:
        for f in fig["files"]:
            assert Path(f).stat().st_size > 1000, f
    traj_fig = next(f for f in manifest["figures"] if f["kind"] == "surface2d" and f["init"] == "pretrained")
    assert any("trajectory_mrpc_pretrained" in s for s in traj_fig["sources"])
    html = next(f for f in manifest["figures"] if f["kind"] == "interactive3d")["files"][0]
    text = Path(html).read_text()
    assert "plotly" in text.lower() and '<script src="http' not in text  # plotly.js inlined: opens offline
    md = (root / "report.md").read_text()
    page = (root / "report.html").read_text()
    for v in claims.decide_all(fixture_analyses()):
        assert v.sentence in md
    assert "| basin width along δ1 (units ‖δ1‖) | 1.4 (n = 1) | 0.6 (n = 1) |" in md
    imgs = page.count("data:image/png;base64,")
    claim_figures = len(list((root / "figures" / "claims").glob("claim_*.png")))  # one per claim figure
    assert imgs == claim_figures + len([f for f in manifest["figures"] if f["kind"] != "interactive3d"])
    b64 = page.split("data:image/png;base64,")[1].split("'")[0]
    assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"


def test_bertviz_plot_on_a_missing_directory_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bertviz_landscape.cli.plot", f"results={tmp_path / 'nope'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "bertviz-plot: error: results="
    )


def read_offline(run_dir: Path) -> tuple[dict, list[dict]]:
    """Summary (wandb's own reader) and every record of an offline W&B run."""
    cli = Path(sys.executable).with_name("wandb")
    summary = json.loads(
        subprocess.run(
            [str(cli), "leet", "inspect", "--summary", "--json", str(run_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    records = subprocess.run(
        [str(cli), "leet", "inspect", "--json", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return summary, [json.loads(line) for line in records.splitlines() if line.strip()]


def check_wandb_results(root: Path, inits=("pretrained", "scratch"), task="mrpc", with_analysis=True) -> None:
    logged = json.loads((root / "wandb" / "logged.json").read_text())["runs"]
    logged = [r for r in logged if r["job_type"] == "landscape"]  # the figures runs: tests/test_views.py
    assert sorted((r["task"], r["init"]) for r in logged) == sorted((task, i) for i in inits)
    for entry in logged:
        summary, records = read_offline(Path(entry["dir"]))
        s = summary["summary"]
        init = entry["init"]
        run_rec = next(r for r in records if r.get("type") == "run")["run"]
        assert run_rec.get("run_group") == task and run_rec.get("job_type") == "landscape"
        assert s[f"landscape/{task}_difference_line/train_loss_table"]  # the native line plot's table
        assert s[f"landscape/{task}_difference_plane/interactive_3d"]["_type"] == "html-file"
        assert s[f"landscape/{task}_difference_plane/figure"]["_type"] == "image-file"
        assert s[f"landscape/{task}_difference_plane/table"]["_type"] == "table-file"
        assert "cosine_xy" in s
        arts = [
            r["artifact"]
            for r in records
            if r.get("type") == "artifact" and r["artifact"].get("type") == "surface"
        ]
        assert {a["name"] for a in arts} == {f"surface-{task}_{init}_line", f"surface-{task}_{init}_plane"}
        paths = {c["path"] for a in arts for c in a["manifest"]["contents"]}
        assert f"{task}_{init}_plane.h5" in paths
        run_dir = Path(entry["dir"])
        assert list(run_dir.glob("files/media/html/**/*.html")) and list(
            run_dir.glob("files/media/images/**/*.png")
        )
        if with_analysis:
            assert any(k.startswith("analysis/") for k in s), sorted(s)
            for k, v in entry["summary"].items():
                assert s[k] == pytest.approx(v)


def test_wandb_results_offline_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    from bertviz_landscape.plots.results import draw_all
    from bertviz_landscape.publish.wandb_media import log_results

    root = write_fixture_dir(tmp_path / "res")
    draw_all(root)
    log_results(root)
    check_wandb_results(root)
    logged = json.loads((root / "wandb" / "logged.json").read_text())["runs"]
    pre = next(r for r in logged if r["init"] == "pretrained")
    assert (
        pre["summary"]["analysis/flatness/width_x_0.1"] == 1.4
        and pre["summary"]["analysis/consistency/spearman"] == 0.95
    )


def test_the_layer_figure_draws_the_mean_over_seeds_and_a_dot_per_seed():
    import copy

    from matplotlib.container import BarContainer

    from bertviz_landscape.plots.layers import layer_panels

    base = {d["runs"][0]["init"]: d for d in fixture_analyses()["layers"]}
    seeds = {}
    for init, d in base.items():
        runs = []
        for k, scale in enumerate((1.0, 2.0, 3.0)):  # three seeds: relative change x1, x2, x3
            s = copy.deepcopy(d)
            s["runs"][0]["seed"] = k
            pr = s["per_run"][0]
            pr["relative_change"] = {layer: v * scale for layer, v in pr["relative_change"].items()}
            for e in pr["rollback"]:
                e["dev_error"] = e["dev_error"] + 0.01 * k
            runs.append(s)
        seeds[init] = runs
    fig, _ = layer_panels(seeds, "mrpc")
    ax_rel, ax_rb = fig.axes[0], fig.axes[1]
    bars = [c for c in ax_rel.containers if isinstance(c, BarContainer)]
    first = base["pretrained"]["per_run"][0]["relative_change"]
    heights = [b.get_height() for b in bars[0]]
    assert heights == pytest.approx([2.0 * v for v in first.values()])  # the mean of x1, x2, x3
    dots = [line for line in ax_rel.lines if line.get_marker() == "o"]
    assert len(dots) == 3 * len(base)  # one dot series per seed and init
    assert sorted(np.concatenate([d.get_ydata() for d in dots[:3]])) == pytest.approx(
        sorted([s * v for s in (1.0, 2.0, 3.0) for v in first.values()])
    )
    rb = [c for c in ax_rb.containers if isinstance(c, BarContainer)][0]
    assert [b.get_width() for b in rb] == pytest.approx([0.21, 0.23, 0.41])  # mean dev error over seeds
    assert "mean of 3 seeds" in ax_rel.get_legend_handles_labels()[1][0]
    assert "seed 0" in fig.axes[2].get_title()


def test_the_layer_figure_without_per_layer_curves_has_no_empty_panels():
    import copy

    from bertviz_landscape.plots.layers import layer_panels

    runs = {}
    for d in fixture_analyses()["layers"]:
        s = copy.deepcopy(d)
        s["per_run"][0].pop("curves", None)  # analysis.curves=false
        runs[s["runs"][0]["init"]] = [s]
    fig, _ = layer_panels(runs, "mrpc")
    assert [ax.get_title(loc="left") or ax.get_title() for ax in fig.axes] == [
        "(a) how far each layer moved",
        "(b) roll-back",
    ]
    assert any("analysis.curves=false" in t.get_text() for t in fig.texts)
    legend = fig.axes[1].get_legend()
    assert (
        legend is not None
        and legend.get_bbox_to_anchor().y0 < fig.axes[1].get_position().y0 * fig.bbox.height
    )


def test_a_plateau_seed_is_a_red_cross_outside_the_layer_bars_mean():
    """With one scratch seed at the majority plateau (beat_baseline false), the layer figure's bars
    are the mean of the other seeds, the plateau seed is drawn as × (not as a dot), and the legend
    and the caption name it."""
    import copy

    from matplotlib.container import BarContainer

    from bertviz_landscape.plots.layers import layer_panels

    base = {d["runs"][0]["init"]: d for d in fixture_analyses()["layers"]}
    seeds = {}
    for init, d in base.items():
        runs = []
        for k, scale in enumerate(
            (1.0, 2.0, 30.0)
        ):  # scratch seed 2 is the plateau run (×30: would move the mean)
            s = copy.deepcopy(d)
            s["runs"][0]["seed"] = k
            s["runs"][0]["beat_baseline"] = not (init == "scratch" and k == 2)
            pr = s["per_run"][0]
            pr["relative_change"] = {layer: v * scale for layer, v in pr["relative_change"].items()}
            runs.append(s)
        seeds[init] = runs
    fig, _ = layer_panels(seeds, "mrpc")
    ax_rel = fig.axes[0]
    bars = [c for c in ax_rel.containers if isinstance(c, BarContainer)]
    scratch = base["scratch"]["per_run"][0]["relative_change"]
    pretrained = base["pretrained"]["per_run"][0]["relative_change"]
    assert [b.get_height() for b in bars[1]] == pytest.approx(
        [1.5 * v for v in scratch.values()]
    )  # seeds 0, 1
    assert [b.get_height() for b in bars[0]] == pytest.approx(
        [11.0 * v for v in pretrained.values()]
    )  # all 3
    crosses = [line for line in ax_rel.lines if line.get_marker() == "x"]
    dots = [line for line in ax_rel.lines if line.get_marker() == "o"]
    assert len(crosses) == 1 and len(dots) == 5
    assert list(crosses[0].get_ydata()) == pytest.approx([30.0 * v for v in scratch.values()])
    labels = ax_rel.get_legend_handles_labels()[1]
    assert "mean of 3 seeds" in labels[0] and "mean of 2 seeds; × 1 plateau, not in the mean" in labels[1]


def test_the_flatness_bars_are_the_mean_over_seeds_without_the_plateau_seed():
    """One flatness JSON per seed: the Hessian bar of an arm is the mean over the seeds that beat
    their majority baseline (not one seed's value), each seed a dot, a plateau seed
    a red ×; its width curve is drawn thin and labelled as a plateau run."""
    import copy

    from bertviz_landscape.plots.curvature import curvature_numbers

    pre, scr = fixture_analyses()["flatness"]
    datas = []
    for k, (top_p, top_s) in enumerate(((3.0, 40.0), (5.0, 60.0), (4.0, 900.0))):
        for d, top in ((pre, top_p), (scr, top_s)):
            s = copy.deepcopy(d)
            s["runs"][0]["seed"] = k
            s["runs"][0]["beat_baseline"] = not (d is scr and k == 2)
            s["summary"]["hessian_top"]["mean"] = top
            datas.append(s)
    fig, _ = curvature_numbers(datas)
    ax_h = fig.axes[-1]
    heights = sorted(b.get_height() for b in ax_h.patches)
    assert heights == pytest.approx([4.0, 50.0])  # pretrained 3, 5, 4; scratch 40, 60 (900: the plateau seed)
    crosses = [line for line in ax_h.lines if line.get_marker() == "x"]
    assert [list(c.get_ydata()) for c in crosses] == [[900.0]]
    assert sum(line.get_marker() == "o" for line in ax_h.lines) == 5
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "mrpc · from scratch, plateau" in labels
    assert any("red ×" in t.get_text() for t in fig.texts)


def test_a_claim_figure_says_when_the_pretrained_values_are_taken_at_matched_loss(tmp_path, monkeypatch):
    """Wider optima compares the pretrained runs' matched-loss widths with the scratch widths at θ1:
    the claim's figure names the matched measurement on its axis and under the pretrained arm, and
    a long claim title wraps instead of running off the figure."""
    import matplotlib.pyplot as plt

    from bertviz_landscape.plots import claims as claim_plots

    seen = {}
    monkeypatch.setattr(plt, "close", lambda fig: seen.setdefault("fig", fig))
    per_run = {
        i: [{"value": v, "censored": False, "excluded": None} for v in (1.0, 2.0)] for i in claims.ARMS
    }
    verdict = {"verdict": "not resolved", "measure": "invariant_width", "matched": "invariant_width_matched"}
    title = "A claim whose title is much longer than sixty characters, as the paper's are"
    assert claim_plots.claim_figure(verdict | {"per_run": per_run}, title, tmp_path / "c.png").is_file()
    ax = seen["fig"].axes[0]
    assert "(pretrained: invariant_width_matched)" in ax.get_ylabel()
    assert "at matched loss" in ax.get_xticklabels()[0].get_text()
    assert "at matched loss" not in ax.get_xticklabels()[1].get_text()
    assert ax.get_title().count("\n") >= 2  # wrapped title + the verdict line


def test_save_figure_draws_strings_from_files_literally_and_keeps_log_ticks(tmp_path):
    """A title, label or legend entry read from a file (`$\\undefined$`) is drawn as written, not
    parsed as mathtext (which raised at save); a log axis still draws its `$10^{k}$` ticks."""
    fig, ax = style.plt.subplots()
    ax.plot([1, 10, 100], [1, 2, 3], label=r"run $\undefined{}$")
    ax.set_xscale("log")
    ax.set_title(r"task $\undefined$")
    ax.set_ylabel(r"$x^{$")
    ax.legend()
    out = style.save_figure(fig, tmp_path / "f")
    assert [p.suffix for p in out] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in out)
    assert not ax.title.get_parse_math() and not ax.yaxis.label.get_parse_math()
    assert not ax.get_legend().get_texts()[0].get_parse_math()
    ticks = [t for t in ax.get_xticklabels() if t.get_text()]
    assert ticks and all(t.get_parse_math() and "10^" in t.get_text() for t in ticks)
