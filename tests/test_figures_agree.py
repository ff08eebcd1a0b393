"""Figures and the report that say what their captions say (issue 31, item 6): each test names the
disagreement it guards against. Synthetic surfaces and hand-written analysis JSONs: no model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from bertviz_landscape.analysis.flatness import flatness_of_surface
from bertviz_landscape.engine.surface import Surface, write_surface
from bertviz_landscape.plots import curvature, curves, layers, style, surface2d
from bertviz_landscape.plots.inputs import read_surface

ROOT = Path(__file__).resolve().parents[1]


def plane(path: Path, loss=None, err=None, x=None, y=None, task="sst2", grid="plane") -> Path:
    """A 2D difference-plane surface file: `loss`/`err` functions of (α, β) meshes."""
    x = np.linspace(-0.5, 1.5, 9) if x is None else x
    y = np.linspace(-0.5, 0.5, 5) if y is None else y
    a, b = np.meshgrid(x, y)  # [ny, nx]: rows are y
    loss = loss or (lambda a, b: 0.2 + (a - 1) ** 2 + b**2)
    err = err or (lambda a, b: 0.1 + 0.1 * ((a - 1) ** 2 + b**2))
    values = {"train_loss": loss(a, b), "dev_error": err(a, b), "dev_loss": loss(a, b) + 0.1}
    meta = {
        "task": task,
        "primary_metric": "accuracy",
        "grid": {"name": grid},
        "directions": {
            "recipe": "difference",
            "center": "theta0",
            "norm_x": 2.0,
            "norm_y": 2.0,
            "cosine_xy": 0.0,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_surface(path, Surface(x, y, values, meta))


def line(path: Path, task="sst2") -> Path:
    x = np.linspace(-0.5, 1.5, 11)
    values = {"train_loss": 0.2 + (x - 1) ** 2, "dev_error": 0.1 + 0.1 * (x - 1) ** 2}
    meta = {"task": task, "primary_metric": "accuracy", "directions": {"recipe": "difference", "norm_x": 2.0}}
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_surface(path, Surface(x, None, values, meta))


# ----------------------------------------------------------------------------- 1. flatness areas
def test_a_basin_area_never_exceeds_the_sampled_plane_and_an_unbounded_one_is_drawn_hollow(tmp_path):
    """A loss flat over the whole grid: its basin is the whole sampled plane (2 × 1 in α, β; ‖δ2‖ =
    ‖δ1‖), an area of 2.0 ‖δ1‖² and no more (grid points × cell area gave 9 × 5 × 0.25 × 0.25 =
    2.81), and it reaches the grid's edge: a lower bound, so the figure draws it hollow and says so."""
    path = plane(tmp_path / "sst2_pretrained_seed0_plane.h5", loss=lambda a, b: 0.2 + 0 * a)
    sf = read_surface(path)
    entry = flatness_of_surface(sf.surface, path, epsilons=[0.1])
    area = entry["area"]["0.1"]
    assert area["units_delta1_sq"] == pytest.approx(2.0) == area["plane_units_delta1_sq"]
    assert area["bounded"] is False
    # an interior basin keeps whole cells: α ∈ [0.75, 1.25] × β = 0 is 3 points of 0.25 × 0.25
    inner = plane(
        tmp_path / "sst2_pretrained_seed1_plane.h5", loss=lambda a, b: 0.2 + (a - 1) ** 2 + 10 * b**2
    )
    small = flatness_of_surface(read_surface(inner).surface, inner, epsilons=[0.07])["area"]["0.07"]
    assert small["bounded"] is True and small["units_delta1_sq"] == pytest.approx(3 * 0.25 * 0.25)

    data = {
        "analysis": "flatness",
        "format": "bertviz-analysis/1",
        "runs": [{"task": "sst2", "init": "pretrained", "seed": 0}],
        "per_run": [{"area": {"0.01": {"bounded": True, "plane_units_delta1_sq": 2.0}, "0.1": area}}],
        "summary": {
            "area_0.01": {"mean": 0.5, "std": 0, "n": 1},
            "area_0.1": {"mean": 2.0, "std": 0, "n": 1},
        },
    }
    fig, caption = curvature.curvature_numbers([data])
    ax = fig.axes[0]
    points = {
        (float(x), bool(line.get_markerfacecolor() == "white"))
        for line in ax.lines
        if line.get_marker() == "o"
        for x in line.get_xdata()
    }
    assert points == {(0.01, False), (0.1, True)}  # ε = 0.1 reaches the edge: hollow
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [2.0]  # the plane
    assert "hollow" in caption and "lower bound" in caption and "sampled plane" in caption
    # the note under the axes names only what this figure draws: no Hessian bars, no plateau run
    note = " ".join(t.get_text() for t in fig.texts)
    assert "hollow" in note and "bars" not in note and "red ×" not in note
    style.plt.close(fig)
    with_bars = {**data, "summary": {**data["summary"], "hessian_top": {"mean": 3.0, "std": 0, "n": 1}}}
    fig, _ = curvature.curvature_numbers([with_bars])
    assert "bars with several seeds" in " ".join(t.get_text() for t in fig.texts)
    style.plt.close(fig)


# ----------------------------------------------------------------------------- 2, 3. the report
def test_the_report_keeps_each_caption_out_of_the_interactive_link_and_skips_its_own_files(tmp_path):
    """report.html: an interactive page's link is a list item of its own; the next figure's caption
    is a paragraph, not swallowed into the link's item. "Files not read" lists a foreign file, never
    the tool's own trajectory projection files."""
    from html.parser import HTMLParser

    from bertviz_landscape.plots.results import draw_all
    from bertviz_landscape.publish.publisher import write_report

    root = tmp_path / "res"
    for init in ("pretrained", "scratch"):
        plane(root / "surfaces" / f"sst2_{init}_seed0_plane.h5")
    (root / "analysis").mkdir()
    with h5py.File(root / "analysis" / "trajectory_sst2_pretrained_seed0.projection.h5", "w") as f:
        f.attrs["format"] = "bertviz-projection/1"  # as analysis/trajectory.py writes it
        f["proj_xcoord"] = np.zeros(3)
    with h5py.File(root / "surfaces" / "foreign.h5", "w") as f:
        f["something"] = np.zeros(3)
    manifest = draw_all(root, formats=("png",))
    skipped = [Path(s["path"]).name for s in manifest["skipped"]]
    assert skipped == ["foreign.h5"]
    write_report(root)
    md = (root / "report.md").read_text()
    assert "projection.h5" not in md and "foreign.h5" in md

    class Items(HTMLParser):
        def __init__(self):
            super().__init__()
            self.depth, self.items, self.strong_in_item = 0, 0, 0

        def handle_starttag(self, tag, attrs):
            if tag == "li":
                self.depth += 1
                self.items += 1
            elif tag == "strong" and self.depth:
                self.strong_in_item += 1

        def handle_endtag(self, tag):
            if tag == "li":
                self.depth -= 1

    page = Items()
    page.feed((root / "report.html").read_text())
    links = [f for f in manifest["figures"] if f["kind"] == "interactive3d"]
    assert len(links) == 2 and page.items >= 2
    assert page.strong_in_item == 0  # every figure's caption (<strong>) stands outside the link items


# ----------------------------------------------------------------------------- 4. a one-arm 1D figure
def test_a_one_arm_1d_figure_names_its_one_arm_not_pretrained_vs_scratch(tmp_path):
    pre = read_surface(line(tmp_path / "sst2_pretrained_seed0_line.h5"))
    fig, caption = curves.loss_curves([pre])
    title = fig._suptitle.get_text()
    assert "pretrained" in title and "vs" not in title and "scratch" not in title, title
    assert "vs" not in caption and "scratch" not in caption, caption
    style.plt.close(fig)
    scr = read_surface(line(tmp_path / "sst2_scratch_seed0_line.h5"))
    fig, caption = curves.loss_curves([pre, scr])
    assert (
        "pretrained vs from scratch" in fig._suptitle.get_text() and "pretrained vs from scratch" in caption
    )
    style.plt.close(fig)


# ----------------------------------------------------------------------------- 5, 8. the per-run plane
def test_the_plane_legend_lists_every_mark_and_epoch_labels_do_not_overlap(tmp_path):
    """The training loss's lowest point lies on the grid's edge (a ✕ on its panel only): the legend
    lists it. Three epochs end within a few hundredths of θ1: their labels do not overlap each
    other (one label "1–3")."""
    path = plane(tmp_path / "sst2_pretrained_seed0_plane.h5", loss=lambda a, b: 0.2 + (a - 1.6) ** 2 + b**2)
    sf = read_surface(path)
    per_run = {
        "lstsq": [[a, 0.0] for a in np.linspace(0.05, 1.0, 20)],
        "distance_from_plane": [0.1] * 20,
        "plane": {"center": "theta0"},
        "epoch_points": [{"epoch": e, "lstsq": [a, 0.0]} for e, a in ((1, 0.96), (2, 0.98), (3, 1.0))],
    }
    traj = {"analysis": "trajectory", "inputs": {"surfaces": [{"path": str(path)}]}, "per_run": [per_run]}
    fig, caption = surface2d.surface_contours(sf, traj)
    legend = fig.legends[0]
    assert "lowest point, on the grid's edge" in [t.get_text() for t in legend.get_texts()]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[:2]:
        labels = [t for t in ax.texts if t.get_text() and t.get_text()[0].isdigit()]
        assert labels, "no epoch label"
        boxes = [t.get_window_extent(renderer) for t in labels]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), [t.get_text() for t in labels]
        assert [t.get_text() for t in labels] == ["1–3"]
    style.plt.close(fig)


# ----------------------------------------------------------------------------- 6, 7. the layer figure
def layer_json(init: str, seed: int, changes: dict[str, float], spans: bool = False) -> dict:
    names = list(changes)
    rollback = [
        {"layers": [], "kind": "none", "k": None, "dev_error": 0.2, "dev_loss": 0.4, "dev_loss_change": 0.0}
    ]
    rollback += [
        {
            "layers": [n],
            "kind": "single",
            "k": None,
            "dev_error": 0.2 + c,
            "dev_loss": 0.4 + c,
            "dev_loss_change": c,
        }
        for n, c in changes.items()
    ]
    if spans:
        rollback.append(
            {
                "layers": names[:2],
                "kind": "bottom_k",
                "k": 2,
                "dev_error": 0.3,
                "dev_loss": 0.5,
                "dev_loss_change": 0.1,
            }
        )
    return {
        "analysis": "layers",
        "format": "bertviz-analysis/1",
        "runs": [{"task": "sst2", "init": init, "seed": seed, "beat_baseline": True}],
        "per_run": [{"layers": names, "relative_change": {n: 1e-3 for n in names}, "rollback": rollback}],
        "summary": {},
    }


def test_a_zero_roll_back_change_is_a_measured_zero_and_the_note_defines_only_the_roll_backs_made():
    """Layer L1's roll-back changes nothing (0.0): a ◆ on the zero line marks the measured 0 (a
    zero-length bar alone reads as missing data); θ1 itself ("none") is the zero line, not a row.
    The demo runs single-layer roll-backs only: the note does not explain bottom/top k."""
    changes = {"layer.0": 0.0, "layer.1": 0.02, "layer.2": 0.05}
    fig, caption = layers.layer_panels(
        {
            "pretrained": [layer_json("pretrained", 0, changes)],
            "scratch": [layer_json("scratch", 0, changes)],
        },
        "sst2",
    )
    ax_rb = fig.axes[1]
    assert [t.get_text() for t in ax_rb.get_yticklabels()] == ["L1", "L2", "L3"]  # no "none (θ1)" row
    means = [line for line in ax_rb.lines if line.get_marker() == "D"]
    assert len(means) == 2 and all(
        list(line.get_xdata()) == pytest.approx([0.0, 0.02, 0.05]) for line in means
    )
    assert ax_rb.get_xlim()[0] < 0 < ax_rb.get_xlim()[1]  # the ◆ at 0 is inside the axes
    assert "change" in ax_rb.get_xlabel()
    note = " ".join(t.get_text() for t in fig.texts)
    assert "bottom k" not in note and "top k" not in note and "bottom k" not in caption
    style.plt.close(fig)
    fig, caption = layers.layer_panels(
        {"pretrained": [layer_json("pretrained", 0, changes, spans=True)]}, "sst2"
    )
    assert "bottom k = " in " ".join(t.get_text() for t in fig.texts) and "top k" not in caption
    style.plt.close(fig)


# ----------------------------------------------------------------------------- 9. budgets
def trajectory_json(init: str, seed: int, auc: float, lr: float, steps: int) -> dict:
    return {
        "analysis": "trajectory",
        "format": "bertviz-analysis/1",
        "runs": [
            {
                "run": f"/runs/sst2_{init}_{seed}",
                "task": "sst2",
                "init": init,
                "seed": seed,
                "beat_baseline": True,
                "lr": lr,
                "steps": steps,
            }
        ],
        "per_run": [{}],
        "numbers": {"path_loss_auc": auc, "steps_to_threshold": None},
        "summary": {},
    }


def test_easier_optimisation_says_when_the_arms_step_budgets_or_rates_differ(tmp_path):
    """30 steps at 2e-5 against 100 steps at 1e-4: the claim's row, its sentence and its figure
    say the budgets differ; at one budget they say nothing of it."""
    from bertviz_landscape.publish.report import claims

    def verdict(pre: tuple, scr: tuple):
        datas = [trajectory_json("pretrained", s, 0.3 + 0.01 * s, *pre) for s in range(3)]
        datas += [trajectory_json("scratch", s, 0.7 + 0.01 * s, *scr) for s in range(3)]
        (v,) = [v for v in claims.decide_all({"trajectory": datas}) if v.claim == "easier_optimisation"]
        return v

    v = verdict((2e-5, 30), (1e-4, 100))
    caveat = v.numbers["row"]["caveat"]
    assert "step budgets and learning rates differ" in caveat, caveat
    assert "pretrained 30 steps at lr 2e-05" in caveat and "from scratch 100 steps at lr 0.0001" in caveat
    assert "step budgets and learning rates differ" in v.sentence
    assert v.numbers["budgets"] == {"pretrained": "30 steps at lr 2e-05", "scratch": "100 steps at lr 0.0001"}
    fig = _drawn_claim_figure({"verdict": v.verdict, **v.numbers}, v.claim, tmp_path / "c.png")
    ticks = " ".join(t.get_text() for t in fig.axes[0].get_xticklabels())
    assert "30 steps at lr 2e-05" in ticks and "100 steps at lr 0.0001" in ticks
    same = verdict((2e-5, 100), (2e-5, 100))
    assert "differ" not in same.numbers["row"]["caveat"] and "budgets" not in same.numbers


def _drawn_claim_figure(verdict: dict, title: str, path: Path):
    """The matplotlib figure `claim_figure` saves to `path` (it closes it after saving)."""
    import matplotlib.pyplot as plt

    from bertviz_landscape.plots.claims import claim_figure

    drawn = []
    real = plt.Figure.savefig
    plt.Figure.savefig = lambda self, *a, **k: (drawn.append(self), real(self, *a, **k))[1]
    try:
        claim_figure(verdict, title, path)
    finally:
        plt.Figure.savefig = real
    return drawn[0]


def _claim_title(verdict: dict, tmp_path) -> str:
    fig = _drawn_claim_figure(verdict, "a claim", tmp_path / "c.png")
    return " ".join(fig.axes[0].get_title().split())


def test_a_claim_figure_names_the_registered_metric_it_lacks_and_shows_the_holm_p_that_decided(tmp_path):
    """The claim's figure shows the number that decides it: the Holm-adjusted p of a tested claim; dots
    of a fallback measure (a one-epoch run has no last-minus-early change) are said not to be the
    registered metric, and an untested claim shows no p."""
    dots = {"pretrained": [{"value": 0.0}, {"value": 0.01}], "scratch": [{"value": 0.0}, {"value": 0.02}]}
    fallback = _claim_title(
        {
            "verdict": "not resolved",
            "measure": "best_minus_last_dev",
            "registered": "dev_last_minus_early",
            "p_adjusted": 1.0,
            "per_run": dots,
        },
        tmp_path,
    )
    assert "the registered dev_last_minus_early is not measured; shown, not decided on" in fallback
    assert "Holm p" not in fallback
    tested = {"verdict": "supported", "measure": "m", "registered": "m", "p_adjusted": 0.048, "per_run": dots}
    assert "supported, Holm p = 0.048" in _claim_title(tested | {"in_family": True}, tmp_path)
    assert "Holm p" not in _claim_title(tested | {"in_family": False}, tmp_path)


def test_an_equivalence_claims_figure_draws_its_margin(tmp_path):
    """A TOST claim is decided against its margin: the figure draws ±margin (dashed) beside the dots."""
    verdict = {
        "verdict": "not resolved",
        "measure": "dev_last_minus_early",
        "registered": "dev_last_minus_early",
        "comparison": {"test": "tost", "margin": 0.02},
        "per_run": {"pretrained": [{"value": 0.01}, {"value": 0.0}], "scratch": [{"value": 0.1}]},
    }
    ax = _drawn_claim_figure(verdict, "robust", tmp_path / "c.png").axes[0]
    dashed = sorted(float(line.get_ydata()[0]) for line in ax.lines if line.get_linestyle() == "--")
    assert dashed == pytest.approx([-0.02, 0.02])
    assert "equivalence margin" in " ".join(t.get_text() for t in ax.texts)


def test_the_dev_per_epoch_figure_has_one_legend_entry_per_arm_and_marks_the_early_epoch():
    """Long training of several seeds: one legend entry per arm (with its seed count), and the
    registered statistic's early epoch dotted where the runs trained past it (a one-epoch run: none)."""
    from bertviz_landscape.plots import longtrain

    def series(init, seed, epochs):
        return {
            "init": init,
            "task": "sst2",
            "metric": "accuracy",
            "values": [0.5 + 0.01 * (e + seed) for e in range(epochs)],
            "baseline": 0.509,
            "early_epoch": 3.0,
        }

    long = [series(i, s, 20) for i in ("pretrained", "scratch") for s in range(5)]
    fig, caption = longtrain.dev_per_epoch(long)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels[:2] == ["pretrained (5 seeds)", "from scratch (5 seeds)"] and len(labels) == 4
    dotted = [line for line in fig.axes[0].lines if line.get_linestyle() == ":"]
    assert [float(line.get_xdata()[0]) for line in dotted] == [3.0] and "dotted: epoch 3" in caption
    style.plt.close(fig)
    fig, caption = longtrain.dev_per_epoch([series("pretrained", 0, 1)])
    assert not [line for line in fig.axes[0].lines if line.get_linestyle() == ":"] and "dotted" not in caption
    style.plt.close(fig)
    # read from an analysis JSON (a file): only a whole finite epoch draws a line
    for bad in ("3; <b>x</b>", float("nan"), float("inf"), 2.5, None):
        data = {
            "runs": [{"init": "pretrained", "task": "sst2"}],
            "per_run": [{"dev_metric_per_epoch": [0.5] * 5}],
        }
        assert longtrain.series_from_analysis(data | {"numbers": {"early_epoch": bad}})["early_epoch"] is None
    assert longtrain.series_from_analysis(data | {"numbers": {"early_epoch": 3.0}})["early_epoch"] == 3


# ----------------------------------------------------------------------------- 10. nothing left behind
def test_bertviz_plot_leaves_nothing_where_it_runs(tmp_path):
    """bertviz-plot run from any directory writes only under results= (it used to leave Hydra's
    outputs/plot/<time>/ with a log file in the working directory)."""
    root = tmp_path / "res"
    plane(root / "surfaces" / "sst2_pretrained_seed0_plane.h5")
    cwd = tmp_path / "here"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "BVL_OUTPUT_DIR"}  # the default output directory
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bertviz_landscape.cli.plot",
            f"results={root}",
            "interactive=false",
            "formats=[png]",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list(cwd.iterdir()) == []
    assert (root / "figures" / "figures.json").is_file()


def test_the_suite_checks_that_the_checkout_gains_no_outputs():
    """conftest's session fixture compares the checkout's outputs/ before and after the tests (and
    sends the commands' default output directory to a temporary one)."""
    from tests.conftest import CHECKOUT, outputs_listing

    assert CHECKOUT == ROOT
    assert Path(os.environ["BVL_OUTPUT_DIR"]).resolve() != (ROOT / "outputs").resolve()
    assert outputs_listing(ROOT / "no-such-checkout") is None


def test_figure_files_are_named_once_and_uniquely(tmp_path):
    """Three seeds of one arm: one figure per seed, each named once after its surface
    (surface2d_sst2_pretrained_seed1_difference_plane.png), never a name repeated inside a name
    (surface2d_sst2_pretrained_difference_plane_sst2_pretrained_seed1_plane.png) and never two
    interactive pages under one name (they overwrote each other)."""
    from bertviz_landscape.plots.results import draw_all

    root = tmp_path / "res"
    for seed in range(3):
        plane(root / "surfaces" / f"sst2_pretrained_seed{seed}_plane.h5")
    plane(root / "surfaces" / "sst2_scratch_seed0_plane.h5")
    manifest = draw_all(root, formats=("png",))
    files = [
        Path(f).relative_to(root / "figures").as_posix() for fig in manifest["figures"] for f in fig["files"]
    ]
    assert len(files) == len(set(files))
    assert "surface2d_sst2_pretrained_seed1_difference_plane.png" in files
    assert "interactive/sst2_pretrained_seed2_difference_plane.html" in files
    assert "surface2d_compare_sst2_seed0_difference_plane.png" in files
    for f in files:
        stem = Path(f).stem
        assert stem.count("sst2") == 1 and stem.count("plane") == 1, f
    seeds = sorted(
        f["seed"] for f in manifest["figures"] if f["kind"] == "surface2d" and f["init"] == "pretrained"
    )
    assert seeds == [0, 1, 2]
    captions = [f["caption"] for f in manifest["figures"] if f["kind"] == "surface2d"]
    assert len(set(captions)) == len(captions)  # each names its seed


def test_a_metric_name_with_dollar_signs_from_the_plan_is_drawn_literally_not_parsed_as_math(tmp_path):
    """Metric names come from the frozen plan (a file): `$\\undefined$` in one used to make matplotlib's
    mathtext raise when the claim figure was saved; it is drawn as written."""
    dots = {"pretrained": [{"value": 0.0}, {"value": 0.01}], "scratch": [{"value": 0.0}, {"value": 0.02}]}
    crafted = {"verdict": "not resolved", "measure": r"$\undefined{x}$", "registered": r"$\undefined{x}$"}
    fig = _drawn_claim_figure({**crafted, "per_run": dots}, r"a claim $\alpha^{$", tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 0
    title = fig.axes[0].get_title()
    assert r"$\undefined{x}$" in fig.axes[0].get_ylabel() and r"$\alpha^{$" in title
    assert not fig.axes[0].title.get_parse_math()
