"""analysis=trajectory: exact projections of known trajectories, trajectory PCA == dense SVD, epoch points."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch
from helpers.analysis import TRAJECTORY, analysis_run  # noqa: F401  (fixture)

from bertviz_landscape.algebra import dot
from bertviz_landscape.analysis.trajectory import trajectory, trajectory_pca
from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.engine.surface import load_surface


@pytest.fixture(scope="module")
def result(analysis_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("traj") / "trajectory.json"
    return trajectory([analysis_run["run"]], [analysis_run["surface"]], out), out


def test_known_trajectory_projects_exactly(analysis_run, result):
    res, _ = result
    p = res["per_run"][0]
    dx, dy, r = analysis_run["dx"], analysis_run["dy"], analysis_run["r"]
    d11, d12, d22, rr = dot(dx, dx), dot(dx, dy), dot(dy, dy), dot(r, r)
    assert p["steps"] == [row[0] for row in TRAJECTORY] and p["epochs"] == [row[1] for row in TRAJECTORY]
    for t, (_, _, a, b, s) in enumerate(TRAJECTORY):
        # least squares onto span(δ1, δ2) recovers (a, b); the distance is the off-plane part's share of ‖v‖
        assert p["lstsq"][t] == pytest.approx([a, b], abs=1e-6)
        vv = a * a * d11 + 2 * a * b * d12 + b * b * d22 + s * s * rr
        expected = 0.0 if vv == 0 else math.sqrt(s * s * rr / vv)
        assert p["distance_from_plane"][t] == pytest.approx(expected, abs=1e-6)
        # the paper's α = ⟨v, δ1⟩/‖δ1‖², β = sqrt(‖v‖²/‖δ1‖² − α²)
        alpha = (a * d11 + b * d12) / d11
        assert p["alpha"][t] == pytest.approx(alpha, abs=1e-6)
        assert p["beta"][t] == pytest.approx(math.sqrt(max(vv / d11 - alpha**2, 0)), abs=1e-5)
    # θ0 → (0, 0); the last snapshot (θ1) → (1, 0), on the plane
    assert (p["alpha"][0], p["beta"][0]) == (0.0, 0.0) and p["distance_from_plane"][0] == 0.0
    assert p["alpha"][-1] == pytest.approx(1.0, abs=1e-7) and p["beta"][-1] == pytest.approx(0.0, abs=1e-6)
    assert p["distance_from_plane"][3] > 0.3  # the off-plane snapshot is seen as off the plane
    assert res["summary"]["final_alpha"] == {"mean": pytest.approx(1.0, abs=1e-7), "std": 0.0, "n": 1}
    assert res["summary"]["max_distance_from_plane"]["mean"] == pytest.approx(max(p["distance_from_plane"]))


def test_surface_value_at_projection_and_recorded_loss(analysis_run, result):
    p = result[0]["per_run"][0]
    surf = load_surface(analysis_run["surface"])
    assert p["surface_train_loss_at_projection"][0] == pytest.approx(
        surf.at("train_loss", 0.0, 0.0), rel=1e-9
    )
    assert p["surface_train_loss_at_projection"][-1] == pytest.approx(
        surf.at("train_loss", 1.0, 0.0), rel=1e-6
    )
    assert p["recorded_train_loss"] == pytest.approx([0.7 - 0.01 * row[0] for row in TRAJECTORY])


def test_projection_file_has_li_keys(result):
    res, out = result
    p = res["per_run"][0]
    with h5py.File(p["projection_file"]) as f:
        np.testing.assert_allclose(f["proj_xcoord"][...], [c[0] for c in p["lstsq"]])
        np.testing.assert_allclose(f["proj_ycoord"][...], [c[1] for c in p["lstsq"]])
        np.testing.assert_allclose(f["paper_alpha"][...], p["alpha"])
        assert list(f["steps"][...]) == p["steps"]


def test_trajectory_pca_equals_dense_svd(analysis_run):
    snaps = Snapshots(analysis_run["run"])
    names = analysis_run["names"]
    # small chunks: one parameter split over several chunks, several small ones sharing a chunk
    pca = trajectory_pca(snaps, names, components=3, chunk_elements=200_000)
    dense = torch.stack(
        [torch.cat([d[n].reshape(-1).double() for n in names]) for _, d in snaps.iter_deltas(names)]
    )
    dense -= dense.mean(0)
    u, s, _ = torch.linalg.svd(dense, full_matrices=False)
    T = dense.shape[0]
    assert pca["explained_variance"] == pytest.approx((s[:3] ** 2 / (T - 1)).tolist(), rel=1e-8)
    assert pca["explained_variance_ratio"] == pytest.approx((s[:3] ** 2 / (s**2).sum()).tolist(), rel=1e-8)
    coords = np.array(pca["coordinates"])
    scores = (u[:, :3] * s[:3]).numpy()
    for k in range(3):
        sign = np.sign(coords[-1, k]) * np.sign(scores[-1, k])
        np.testing.assert_allclose(coords[:, k], sign * scores[:, k], atol=1e-9 * float(s[0]))
    assert all(c >= 0 for c in coords[-1])  # the sign convention: the last snapshot on the positive side


def test_epoch_points_from_epoch_checkpoints(result):
    p = result[0]["per_run"][0]
    e1, e2 = p["epoch_points"]
    assert (e1["epoch"], e2["epoch"]) == (1, 2) and e1["source"].endswith("epoch_001")
    assert e1["lstsq"] == pytest.approx([0.5, 0.25], abs=1e-5) and e1["distance_from_plane"] == pytest.approx(
        0, abs=1e-5
    )
    assert e2["lstsq"] == pytest.approx([1.0, 0.0], abs=1e-6) and e2["alpha"] == pytest.approx(1.0, abs=1e-6)
    assert e1["recorded_dev_error"] == pytest.approx(1 - 0.6667) and 0 <= e1["dev_error"] <= 1


def test_runs_entry_flags_the_baseline(result):
    res = result[0]
    (entry,) = res["runs"]
    assert entry["task"] == "mrpc" and entry["init"] == "scratch" and entry["seed"] == 7
    assert (
        entry["beat_baseline"] is True and entry["dev_metric"] == 0.9 and entry["majority_baseline"] == 0.5556
    )
    assert res["baseline"]["all_beat_baseline"] is True and res["format"] == "bertviz-analysis/1"


def test_beating_the_baseline_means_beyond_the_dev_sets_noise():
    from bertviz_landscape.analysis.common import baseline_verdict

    base = {"accuracy": 0.527, "class": 0}  # RTE's majority on its 277 dev examples: 2 stderr = 0.060
    assert baseline_verdict("accuracy", {"val/accuracy": 0.542}, base, 277) == (
        0.542,
        0.527,
        False,
    )  # 4 examples above: the plateau
    assert baseline_verdict("accuracy", {"val/accuracy": 0.617}, base, 277)[2] is True
    assert (
        baseline_verdict("accuracy", {"val/accuracy": 0.542}, base, None)[2] is True
    )  # dev size unknown: strictly above
    assert baseline_verdict("accuracy", {"val/accuracy": 0.5}, base, 277)[2] is False
    # regression: below the constant's MSE and a correlation beyond 2/sqrt(n) (STS-B dev: 1500, 0.052)
    stsb = {"mse": 2.329}
    plateau = {"val/loss": 2.253, "val/pearson": 0.051}  # measured from scratch after 128 steps
    assert baseline_verdict("pearson", plateau, stsb, 1500)[2] is False
    assert baseline_verdict("pearson", plateau | {"val/pearson": 0.3}, stsb, 1500)[2] is True
    assert baseline_verdict("pearson", {"val/loss": 2.4, "val/pearson": 0.3}, stsb, 1500)[2] is False
