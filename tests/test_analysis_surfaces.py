"""Analyses of surfaces: flatness of known functions, consistency, standard errors and paired noise."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from helpers.analysis import analysis_run  # noqa: F401  (fixture)

from bertviz_landscape.analysis.consistency import consistency, consistency_of
from bertviz_landscape.analysis.flatness import flatness, interval_width
from bertviz_landscape.analysis.measures.noise import paired_stderr, stderr_of_mean, unpaired_stderr
from bertviz_landscape.engine.surface import Surface, load_surface, write_surface

NORM_X, NORM_Y = 2.0, 3.0


def quadratic_surface(path, fn, x, y=None, cos=0.0):
    """A surface file of J = fn(α, β) on the grid, centred on θ0 like the paper's axes."""
    meta = {
        "task": "mrpc",
        "primary_metric": "accuracy",
        "directions": {
            "recipe": "difference",
            "center": "theta0",
            "norm_x": NORM_X,
            **({"norm_y": NORM_Y, "cosine_xy": cos} if y is not None else {}),
        },
        "checkpoints": {},
    }
    if y is None:
        values = {"train_loss": fn(x, 0.0)}
    else:
        a, b = np.meshgrid(x, y)  # [ny, nx]: rows are y
        values = {"train_loss": fn(a, b)}
    return write_surface(path, Surface(np.asarray(x), None if y is None else np.asarray(y), values, meta))


def test_basin_width_of_a_known_quadratic_is_exact(tmp_path):
    # J = (α − 1)² + 4β²: {J ≤ ε} has half-widths sqrt(ε) along α and sqrt(ε)/2 along β; with ε = 1/16 the
    # basin's ends (α = 0.75, 1.25; β = ±0.125) are grid points, so the width is exact, not approximately so
    x = np.arange(0, 2.0001, 0.25)
    y = np.arange(-0.5, 0.5001, 0.125)
    path = quadratic_surface(tmp_path / "q.h5", lambda a, b: (a - 1) ** 2 + 4 * b**2, x, y)
    res = flatness([path], epsilons=[0.0625, 0.25])
    (p,) = res["per_run"]
    assert p["center"] == [1.0, 0.0]
    wx, wy = p["width"]["x"]["0.0625"], p["width"]["y"]["0.0625"]
    assert (wx["left"], wx["right"], wx["width"]) == (0.75, 1.25, 0.5) and wx["bounded"] is True
    assert wx["absolute"] == 0.5 * NORM_X and wx["units_delta1"] == 0.5
    assert (wy["left"], wy["right"], wy["width"]) == (-0.125, 0.125, 0.25)
    assert wy["absolute"] == 0.25 * NORM_Y and wy["units_delta1"] == pytest.approx(0.25 * NORM_Y / NORM_X)
    assert p["width"]["x"]["0.25"]["width"] == 1.0  # ends at α = 0.5 and 1.5
    # area: grid points inside the ellipse × cell area, in parameter space × ‖δ1‖‖δ2‖ (orthogonal axes)
    a = p["area"]["0.25"]
    aa, bb = np.meshgrid(x, y)
    inside = int(((aa - 1) ** 2 + 4 * bb**2 <= 0.25).sum())
    assert a["points"] == inside and a["bounded"] is True
    assert a["absolute_sq"] == pytest.approx(inside * 0.25 * 0.125 * NORM_X * NORM_Y)
    assert a["units_delta1_sq"] == pytest.approx(a["absolute_sq"] / NORM_X**2)
    assert res["summary"]["width_x_0.0625"] == {"mean": 0.5, "std": 0.0, "n": 1}


def test_width_between_grid_points_is_linearly_interpolated_and_edges_are_lower_bounds():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    w = interval_width(x, np.array([4.0, 1.0, 0.0, 0.5]), 2.0, 2.0)
    assert w["left"] == pytest.approx(1 - 1 / 3) and w["right"] == 3.0 and w["bounded"] is False
    nan = interval_width(x, np.array([np.nan, 1.0, 0.0, 5.0]), 2.0, 2.0)
    assert nan["left"] == 1.0 and nan["right"] == pytest.approx(2.4)  # a non-finite point ends the basin


def test_flatness_accepts_1d_and_reports_matched_training_loss(tmp_path):
    x = np.arange(-0.5, 1.5001, 0.25)
    path = quadratic_surface(tmp_path / "line.h5", lambda a, b: (a - 1) ** 2, x)
    res = flatness([path], epsilons=[0.0625], matched_train_loss=0.25)
    (p,) = res["per_run"]
    assert p["area"] is None and p["width"]["y"] is None and p["width"]["x"]["0.0625"]["width"] == 0.5
    m = p["matched_train_loss"]
    assert m["alpha"] == 0.5  # the first α ≥ 0 where J ≤ 0.25
    # around α = 0.5 (J = 0.25): J ≤ 0.3125 from α = 1 − sqrt(0.3125) (interpolated between 0.25 and 0.5)
    assert m["width"]["x"]["0.0625"]["right"] > 1.0


def test_consistency_spearman_and_iou():
    train = np.arange(20.0).reshape(4, 5)
    same = consistency_of(train, np.sqrt(train) / 10, [10, 25, 50])  # a monotone transform: same ranking
    assert same["spearman"] == pytest.approx(1.0) and same["iou"] == {"10": 1.0, "25": 1.0, "50": 1.0}
    opposite = consistency_of(train, -train, [10, 50])
    assert opposite["spearman"] == pytest.approx(-1.0) and opposite["iou"]["10"] == 0.0
    masked = train.copy()
    masked[0, 0] = np.nan
    dev = train.copy()
    dev[3, 4] = np.inf
    m = consistency_of(masked, dev, [50])
    assert m["n_points"] == 18 and m["n_masked"] == 2 and m["spearman"] == pytest.approx(1.0)
    plateau = consistency_of(train, np.full_like(train, 0.316), [25])
    assert plateau["spearman"] is None and "constant" in plateau["note"]


def test_consistency_of_a_1d_curve_file(tmp_path):
    x = np.linspace(-0.5, 1.5, 9)
    meta = {"task": "mrpc", "primary_metric": "accuracy", "directions": {"norm_x": 1.0}, "checkpoints": {}}
    path = write_surface(
        tmp_path / "c.h5", Surface(x, None, {"train_loss": (x - 1) ** 2, "dev_error": np.abs(x - 0.9)}, meta)
    )
    res = consistency([path], quantiles=[25])
    assert res["per_run"][0]["dimensions"] == 1 and res["per_run"][0]["spearman"] > 0.9
    assert res["runs"][0]["beat_baseline"] is None  # bare checkpoints: no run says it


def test_stderr_of_a_surface_point_is_the_per_example_std_over_sqrt_n(analysis_run):
    """J(θ0)'s stderr on the train split == per-example losses' std (ddof = 1) / sqrt(n), computed with
    plain transformers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tiny = analysis_run["tiny"]
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny["theta0"])).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny["theta0"]))
    with open(tiny["glue_dir"] / "MRPC" / "train.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    enc = tok(
        [r["#1 String"] for r in rows],
        [r["#2 String"] for r in rows],
        padding=True,
        truncation=True,
        max_length=32,
        return_tensors="pt",
    )
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(
            model(**enc).logits, torch.tensor([int(r["Quality"]) for r in rows]), reduction="none"
        )
    expected = float(losses.double().std(correction=1)) / math.sqrt(len(rows))
    surf = load_surface(analysis_run["surface"])
    assert surf.at("train_loss_stderr", 0.0, 0.0) == pytest.approx(expected, rel=1e-4)
    assert surf.at("train_loss", 0.0, 0.0) == pytest.approx(float(losses.mean()), rel=1e-5)
    assert surf["dev_loss_stderr"].shape == surf["dev_loss"].shape and np.all(surf["dev_loss_stderr"] > 0)


def test_paired_stderr_of_differences_on_the_same_examples():
    gen = np.random.default_rng(0)
    a = gen.exponential(size=200)
    b = a + 0.1 + gen.normal(scale=0.01, size=200)  # b moves with a: the paired error is tiny
    assert paired_stderr(a, b) == pytest.approx(np.std(a - b, ddof=1) / math.sqrt(200))
    assert paired_stderr(a, b) < 0.05 * unpaired_stderr(stderr_of_mean(a), stderr_of_mean(b))
    assert paired_stderr(a, a + 0.5) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="same examples"):
        paired_stderr(a, b[:10])


def test_consistency_grid_with_a_planted_offset_between_the_minima_reports_it(tmp_path):
    """Issue 28 item 3: on a 7 × 5 grid around θ1 the training loss is lowest at (1, 0) and the dev
    error at (1 + 2/6, 0.25): the minima distance is that offset (in ‖δ1‖ units: Δα and Δβ·‖δ2‖/‖δ1‖),
    the regret the dev error's rise from its minimum to (1, 0); the per-example bootstrap (512 dev
    examples of 0/1 correctness drawn around the planted error) keeps them and bias-corrects both."""
    x = np.linspace(0.5, 1.5, 7)
    y = np.linspace(-0.5, 0.5, 5)
    a, b = np.meshgrid(x, y)
    train = (a - 1.0) ** 2 + (b - 0.0) ** 2 + 0.1
    dev = 0.10 + 0.4 * ((a - (1.0 + 2.0 / 6.0)) ** 2 + (b - 0.25) ** 2)
    rng = np.random.default_rng(0)
    n_train, n_dev = 64, 512
    train_pe = train[..., None] + rng.normal(0.0, 0.01, (5, 7, n_train))
    u = rng.random(n_dev)  # one draw per example, shared by every point: correct iff u >= the point's error
    correct = (u[None, None, :] >= dev[..., None]).astype(np.float64)
    dev_err = 1.0 - correct.mean(-1)
    meta = {
        "task": "sst2",
        "primary_metric": "accuracy",
        "directions": {
            "recipe": "difference",
            "center": "theta0",
            "norm_x": 2.0,
            "norm_y": 2.0,
            "cosine_xy": 0.0,
        },
        "checkpoints": {},
    }
    values = {"train_loss": train_pe.mean(-1), "dev_error": dev_err}
    surface = Surface(x, y, values, meta, {"train_loss": train_pe, "dev_correct": correct})
    path = write_surface(tmp_path / "offset.h5", surface)
    res = consistency([path], bootstrap_samples=200)
    n, entry = res["numbers"], res["per_run"][0]
    assert entry["minima"]["train"] == pytest.approx((1.0, 0.0))
    assert entry["minima"]["dev"] == pytest.approx((1.0 + 2.0 / 6.0, 0.25))
    assert n["minima_distance"] == pytest.approx(math.hypot(2.0 / 6.0, 0.25))
    j, i = 2, 3  # (β = 0, α = 1): the training-loss minimum
    assert n["regret"] == pytest.approx(dev_err[j, i] - dev_err.min())
    assert n["regret"] == pytest.approx(0.4 * ((2.0 / 6.0) ** 2 + 0.25**2), abs=0.01)
    assert (
        n["regret_debiased"] is not None and abs(n["regret_debiased"] - n["regret"]) < 3 * n["regret_boot_se"]
    )
    assert n["minima_distance_debiased"] == pytest.approx(n["minima_distance"], abs=0.15)
    # no offset: the minima coincide, regret 0
    same = Surface(x, y, {"train_loss": train, "dev_error": 0.1 + 0.4 * ((a - 1) ** 2 + b**2)}, meta)
    res0 = consistency([write_surface(tmp_path / "same.h5", same)], bootstrap_samples=0)
    assert res0["numbers"]["regret"] == 0.0 and res0["numbers"]["minima_distance"] == 0.0


def test_the_bias_corrected_regret_and_distance_stay_in_their_range():
    """Efron's correction 2·v − mean(boot) of a regret or a distance (both >= 0) is never negative:
    a raw 0 whose bootstrap replicates sit above it is 0, not a negative distance; above 0 it is
    the plain correction."""
    from bertviz_landscape.analysis.consistency import debiased

    assert debiased(0.0, [0.01, 0.03]) == 0.0
    assert debiased(0.1, [0.05, 0.07]) == pytest.approx(0.14)
    assert debiased(None, [0.1]) is None and debiased(0.1, []) is None
