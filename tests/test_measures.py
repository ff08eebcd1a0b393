"""Per-run measurements of issue 14: the path loss along the real trajectory, and the flatness and
trajectory analyses' `numbers` (the contract the decision code reads)."""

from __future__ import annotations

import math

import pytest
from test_analysis_support import analysis_run  # noqa: F401  (fixture)
from test_landscape_support import data_cfg

from bertviz_landscape.analysis.measures.path_loss import curve_numbers, path_loss_of_run
from bertviz_landscape.analysis.trajectory import trajectory
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import load_surface

pytestmark = pytest.mark.usefixtures("one_thread")


def surface_value(surface, alpha: float, beta: float, key: str = "train_loss") -> float:
    i = [round(float(x), 9) for x in surface.x].index(alpha)
    j = [round(float(y), 9) for y in surface.y].index(beta)
    return float(surface[key][j, i])


@pytest.fixture(scope="module")
def curve(analysis_run):
    data = data_cfg(analysis_run["tiny"])
    return path_loss_of_run(data, RunDir(analysis_run["run"]), None, 4, threshold=None, device="cpu")


def test_path_loss_at_theta1_and_theta0_is_the_landscape_value(analysis_run, curve):
    """Acceptance: the eval-mode loss at θ1 equals the landscape's value at (1, 0) on the same subset
    (and at θ0, and at the snapshot that sits at θ0, the value at (0, 0))."""
    surface = load_surface(analysis_run["surface"])
    assert curve["source"][0] == "theta0" and curve["source"][-1] == "theta1"
    assert curve["steps"] == [0, 1, 2, 3, 4, 5, 6]  # θ0, the snapshots before the last, θ1 at the last step
    assert curve["final_path_loss"] == pytest.approx(surface_value(surface, 1.0, 0.0), rel=1e-5)
    assert curve["loss"][0] == pytest.approx(surface_value(surface, 0.0, 0.0), rel=1e-5)
    assert curve["loss"][1] == pytest.approx(
        surface_value(surface, 0.0, 0.0), rel=1e-4
    )  # δ_1 = 0 (half precision)
    assert curve["num_examples"] == 12
    assert len(set(round(v, 6) for v in curve["loss"])) > 2  # the intermediate snapshots are their own points


def test_steps_to_threshold_and_area_under_the_curve():
    numbers = curve_numbers([0, 10, 20, 40], [0.7, 0.5, 0.3, 0.1], threshold=0.35)
    assert numbers["steps_to_threshold"] == 20
    # trapezoid over u = 0, .25, .5, 1: .25·(.6) + .25·(.4) + .5·(.2) = 0.35
    assert numbers["path_loss_auc"] == pytest.approx(0.35)
    assert numbers["initial_path_loss"] == 0.7 and numbers["final_path_loss"] == 0.1
    assert curve_numbers([0, 10], [0.7, 0.6], threshold=0.5)["steps_to_threshold"] is None
    assert curve_numbers([0, 10], [0.7, math.nan], threshold=0.5)["path_loss_auc"] is None


def test_trajectory_numbers_carry_the_path_loss(analysis_run, curve, tmp_path):
    res = trajectory(
        [analysis_run["run"]],
        [analysis_run["surface"]],
        tmp_path / "t.json",
        pca={"enabled": False},
        path_loss={"enabled": True, "examples": None, "batch_size": 4, "threshold": curve["loss"][3]},
        data=data_cfg(analysis_run["tiny"]),
        device="cpu",
    )
    n = res["numbers"]
    assert n == res["per_run"][0]["numbers"]
    assert n["final_path_loss"] == pytest.approx(curve["final_path_loss"])
    assert n["path_loss_auc"] == pytest.approx(curve["path_loss_auc"])
    first = next(s for s, v in zip(curve["steps"], curve["loss"]) if v <= curve["loss"][3])
    assert n["steps_to_threshold"] == first and n["path_loss_threshold"] == pytest.approx(curve["loss"][3])


def test_flatness_numbers_from_the_run(analysis_run, tmp_path):
    """analysis=flatness run= surface= with the invariant, adaptive and Hessian measures and a matched
    run: every contract name is in `numbers`, and each equals the per_run value it summarises."""
    import bertviz_landscape.analysis  # noqa: F401  (the output-name resolver)
    from bertviz_landscape.cli.analyze import run as analyze
    from bertviz_landscape.cli.compose import compose

    run = analysis_run["run"]
    data = [f"data.{k}={'null' if v is None else v}" for k, v in data_cfg(analysis_run["tiny"]).items()]
    cfg = compose(
        "analyze",
        [
            "analysis=flatness",
            f"run={run}",
            f"surface={analysis_run['surface']}",
            f"output={tmp_path / 'f.json'}",
            "device=cpu",
            "analysis.epsilon=0.05",
            "analysis.examples=null",
            "analysis.batch_size=4",
            "analysis.invariant.enabled=true",
            "analysis.invariant.draws=2",
            "analysis.invariant.step=0.25",
            "analysis.invariant.bisect=2",
            "analysis.adaptive.enabled=true",
            "analysis.adaptive.steps=1",
            "analysis.adaptive.samples=2",
            "analysis.hessian.enabled=true",
            "analysis.hessian.k=1",
            "analysis.hessian.samples=2",
            "analysis.hessian.num_examples=5",
            "analysis.hessian.params=[head]",
            f"analysis.matched.run={run}",
            *data,
        ],
    )
    res = analyze(cfg)
    n, entry = res["numbers"], res["per_run"][0]
    for name in (
        "invariant_width",
        "invariant_width_std",
        "adaptive_sharpness",
        "width_delta1",
        "width_abs",
        "width_rel_theta1",
        "hessian_top_eig",
        "hessian_top_eig_normalised",
        "hessian_trace",
        "train_loss_theta1",
        "matched_loss_step",
    ):
        assert name in n, name
    assert res["epsilon"] == 0.05
    assert n["invariant_width"] == pytest.approx(sum(entry["invariant"]["widths"]) / 2)
    assert n["width_delta1"] == entry["width"]["x"]["0.05"]["units_delta1"]
    assert n["width_abs"] == pytest.approx(n["width_delta1"] * entry["scale"]["norm_delta1"])
    assert n["width_rel_theta1"] == pytest.approx(n["width_abs"] / entry["scale"]["norm_theta1"])
    assert n["hessian_top_eig"] == entry["hessian"]["top_eigenvalues"][0] > 0
    surface = load_surface(analysis_run["surface"])
    assert n["train_loss_theta1"] == pytest.approx(surface_value(surface, 1.0, 0.0), rel=1e-5)
    # matched to itself: the target is its own J(θ1), reached at the latest at the last step
    assert n["matched_target_loss"] == pytest.approx(n["train_loss_theta1"])
    curve = entry["matched"]["path_loss"]
    assert n["matched_loss_step"] == next(
        s for s, v in zip(curve["steps"], curve["loss"]) if v <= n["matched_target_loss"]
    )
    assert n["invariant_width_matched"] is not None
    # the matched point's own loss is the target (regula falsi on the segment between two recorded points)
    assert n["matched_loss_at_point"] == pytest.approx(n["matched_target_loss"], abs=1e-4)
    assert n["invariant_width_matched_bounded"] in (0.0, 1.0)
    assert entry["invariant"]["ranges"][0] == 1.0 and entry["invariant"]["cap"] == 8.0


def write_long_run(root, tiny, metric, predictions=None):
    """A run dir whose metrics.json records `metric` (dev accuracy) per epoch, optionally with the
    per-example dev predictions file the epochs callback writes."""
    import json

    from test_analysis_support import make_run_dir

    run = make_run_dir(root, tiny)
    m = json.loads((run / "metrics.json").read_text())
    m["dev_per_epoch"] = [
        {"epoch": e + 1, "step": 3 * (e + 1), "val/loss": 0.5 + 0.01 * e, "val/accuracy": v}
        for e, v in enumerate(metric)
    ]
    (run / "metrics.json").write_text(json.dumps(m))
    if predictions is not None:
        lines = [json.dumps({"epoch": e + 1, "step": 3 * (e + 1), **p}) for e, p in enumerate(predictions)]
        (run / "logs").mkdir(exist_ok=True)
        (run / "logs" / "dev_predictions.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_longtrain_slope_interval_and_mcnemar_by_hand(analysis_run, tmp_path):
    import numpy as np
    from scipy.stats import t as student_t

    from bertviz_landscape.analysis.longtrain import longtrain

    metric = [0.5, 0.6, 0.7, 0.8, 0.78, 0.8, 0.74, 0.76, 0.7, 0.72]
    labels = [0] * 10 + [1] * 10
    best_preds = labels[:]  # epoch 4 (0.8, the first best): all 20 right
    last_preds = labels[:]
    for i in (0, 1, 2, 3, 4, 15):  # the last epoch gets 6 wrong that the best got right, and none back
        last_preds[i] = 1 - labels[i]
    other = {"predictions": labels, "labels": labels, "losses": [0.1] * 20}
    preds = [other] * 10
    preds[3] = {"predictions": best_preds, "labels": labels, "losses": [0.1] * 20}
    preds[9] = {"predictions": last_preds, "labels": labels, "losses": [0.2] * 20}
    run = write_long_run(tmp_path / "run", analysis_run["tiny"], metric, preds)
    res = longtrain([run])
    n = res["numbers"]
    # second half: epochs 6..10 (> 10/2)
    x, y = np.arange(6, 11, dtype=float), np.array(metric[5:])
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    se = np.sqrt(resid @ resid / (len(x) - 2) / np.sum((x - x.mean()) ** 2))
    half = student_t.ppf(0.975, len(x) - 2) * se
    assert n["dev_slope_second_half"] == pytest.approx(slope)
    assert n["dev_slope_second_half_ci_low"] == pytest.approx(slope - half)
    assert n["dev_slope_second_half_ci_high"] == pytest.approx(slope + half)
    assert n["best_minus_last_dev"] == pytest.approx(0.8 - 0.72)
    # exact McNemar: 6 discordant, all one way: p = 2 · 0.5^6
    assert n["mcnemar_discordant_best_only"] == 6 and n["mcnemar_discordant_last_only"] == 0
    assert n["mcnemar_p_best_vs_last"] == pytest.approx(2 * 0.5**6)
    assert n["dev_loss_last"] == pytest.approx(0.59) and n["dev_loss_min"] == pytest.approx(0.5)
    assert res["per_run"][0]["mcnemar"]["best_epoch"] == 4


def test_longtrain_without_predictions_has_no_mcnemar_and_short_runs_no_slope(analysis_run, tmp_path):
    from bertviz_landscape.analysis.longtrain import longtrain

    n = longtrain([write_long_run(tmp_path / "a", analysis_run["tiny"], [0.6, 0.7, 0.65, 0.66])])["numbers"]
    assert n["mcnemar_p_best_vs_last"] is None and n["dev_slope_second_half"] is None  # 2 epochs in the half
    assert n["best_minus_last_dev"] == pytest.approx(0.04)


def test_consistency_numbers_minima_distance_by_hand(tmp_path):
    """Two known bowls on a 2D grid: train minimum at (1, 0), dev minimum at (0.5, 0.5); the
    distance in parameter space uses ‖δ1‖ = 2, ‖δ2‖ = 3 and cos = 0.2; a flat-bottomed dev error
    gives the mean position of its tied minima."""
    import numpy as np

    from bertviz_landscape.analysis.consistency import consistency
    from bertviz_landscape.engine.surface import Surface, write_surface

    x, y = np.linspace(0.0, 1.5, 7), np.linspace(-0.5, 1.0, 7)
    a, b = np.meshgrid(x, y)
    meta = {
        "task": "mrpc",
        "primary_metric": "accuracy",
        "directions": {"norm_x": 2.0, "norm_y": 3.0, "cosine_xy": 0.2},
        "checkpoints": {},
    }
    train = (a - 1.0) ** 2 + b**2
    dev = (a - 0.5) ** 2 + (b - 0.5) ** 2
    path = write_surface(tmp_path / "s.h5", Surface(x, y, {"train_loss": train, "dev_error": dev}, meta))
    res = consistency([path], quantiles=[10, 50], iou_quantile=25)
    n = res["numbers"]
    da, db = -0.5, 0.5
    absolute = math.sqrt((da * 2) ** 2 + (db * 3) ** 2 + 2 * da * db * 2 * 3 * 0.2)
    assert n["minima_distance_abs"] == pytest.approx(absolute)
    assert n["minima_distance"] == pytest.approx(absolute / 2)
    assert n["spearman_train_dev"] == res["per_run"][0]["spearman"]
    assert n["iou"] == res["per_run"][0]["iou"]["25"] and "iou_10" in n and res["iou_quantile"] == 25
    # a plateau of tied dev minima at α ∈ {0.75, 1.0}, β = 0: their mean position is (0.875, 0)
    flat = np.where((np.isclose(b, 0.0)) & ((np.isclose(a, 0.75)) | np.isclose(a, 1.0)), 0.0, 1.0 + a)
    path = write_surface(tmp_path / "p.h5", Surface(x, y, {"train_loss": train, "dev_error": flat}, meta))
    m = consistency([path])["per_run"][0]["minima"]
    assert m["dev"] == [pytest.approx(0.875), pytest.approx(0.0)] and m["train"] == [1.0, 0.0]
    assert consistency([path])["numbers"]["minima_distance"] == pytest.approx(0.125)


def test_surface_stores_per_example_values_and_consistency_bootstraps_over_examples(analysis_run, tmp_path):
    """landscape per_example=true: each point's per-example losses average to its train_loss and its
    0/1 correctness to its accuracy; the consistency bootstrap resamples those examples (identical
    examples: zero spread; the engine's surface: a finite standard error, deterministic by seed)."""
    import numpy as np

    from bertviz_landscape.analysis.consistency import consistency
    from bertviz_landscape.engine.surface import Surface, write_surface
    from bertviz_landscape.engine.sweep import landscape

    grid = {"x": {"min": 0.0, "max": 1.0, "num": 4}, "y": {"min": -0.5, "max": 0.5, "num": 3}}
    res = landscape(
        run=analysis_run["run"],
        theta2=analysis_run["tiny"]["theta2"],
        output=tmp_path / "pe.h5",
        grid=grid,
        data=data_cfg(analysis_run["tiny"]),
        progress=False,
        per_example=True,
    )
    s = load_surface(res.surface)
    assert s.per_example["train_loss"].shape == (3, 4, 12) and s.per_example["dev_correct"].shape == (3, 4, 9)
    np.testing.assert_allclose(s.per_example["train_loss"].mean(-1), s["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(s.per_example["dev_correct"].mean(-1), s["dev_accuracy"], rtol=1e-6)
    assert set(np.unique(s.per_example["dev_correct"])) <= {0.0, 1.0}
    one = consistency([res.surface], bootstrap_samples=50, bootstrap_seed=1)
    two = consistency([res.surface], bootstrap_samples=50, bootstrap_seed=1)
    assert one["numbers"]["bootstrap_samples"] == 50
    assert one["numbers"]["minima_distance_boot_se"] == two["numbers"]["minima_distance_boot_se"]
    assert one["per_run"][0]["bootstrap"]["dev_examples"] == 9

    # every example alike: resampling them changes nothing
    x, y = s.x, s.y
    a, b = np.meshgrid(x, y)
    train, dev = (a - 1.0) ** 2 + b**2, 1.0 / (1.0 + np.exp(-((a - 0.5) ** 2 + b**2)))
    meta = {"task": "mrpc", "primary_metric": "accuracy", "directions": {"norm_x": 1.0, "norm_y": 1.0}}
    same = Surface(x, y, {"train_loss": train, "dev_error": dev}, meta)
    same.per_example = {
        "train_loss": np.repeat(train[..., None], 20, -1),
        "dev_correct": np.repeat((dev < 0.6)[..., None].astype(float), 10, -1),
    }
    same.values["dev_error"] = 1.0 - same.per_example["dev_correct"].mean(-1)
    n = consistency([write_surface(tmp_path / "same.h5", same)], bootstrap_samples=30)["numbers"]
    assert n["minima_distance_boot_se"] == 0.0 and abs(n["iou_boot_se"]) < 1e-12  # identical resamples
    # examples that disagree about where the minimum is: the distance between minima has a spread
    gen = np.random.default_rng(0)
    shift = gen.normal(0, 0.6, 20)
    differ = Surface(x, y, dict(same.values), meta)
    differ.per_example = {
        "train_loss": np.stack([(a - 1.0 - d) ** 2 + b**2 for d in shift], -1),
        "dev_correct": same.per_example["dev_correct"],
    }
    differ.values["train_loss"] = differ.per_example["train_loss"].mean(-1)
    n = consistency([write_surface(tmp_path / "differ.h5", differ)], bootstrap_samples=100)["numbers"]
    assert n["minima_distance_boot_se"] > 0.05
