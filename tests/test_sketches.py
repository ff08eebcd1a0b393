"""Every-step trajectory in bounded disk: the CountSketch (bound, determinism, crash safety, the
callback) and the deterministic replay (exact on CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_train_cfg, write_glue

from bertviz_landscape.algebra import pca_of_gram
from bertviz_landscape.contracts.sketches import (
    CountSketch,
    SketchError,
    Sketches,
    SketchWriter,
    exact_gram,
    hash_elements,
    sketched_gram,
    sketched_projection,
    write_meta,
)
from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.training.train import train

SHAPES = {"a.weight": (40, 25), "b.weight": (300,), "c.bias": (7, 3, 2)}


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {n: torch.randn(s, generator=g, dtype=torch.float64) for n, s in SHAPES.items()}
    y = {
        n: 0.6 * x[n] + torch.randn(s, generator=g, dtype=torch.float64) for n, s in SHAPES.items()
    }  # correlated
    return x, y


def test_hash_is_a_pure_function_of_seed_name_and_index():
    b1, s1 = hash_elements(3, "a.weight", 1000, 64)
    b2, s2 = hash_elements(3, "a.weight", 1000, 64, chunk=7)  # chunking does not matter
    assert np.array_equal(b1, b2) and np.array_equal(s1, s2)
    assert b1.min() >= 0 and b1.max() < 64 and set(np.unique(s1)) == {-1, 1}
    b3, _ = hash_elements(4, "a.weight", 1000, 64)
    b4, _ = hash_elements(3, "b.weight", 1000, 64)
    assert not np.array_equal(b1, b3) and not np.array_equal(b1, b4)
    # the buckets are close to uniform and the signs balanced
    counts = np.bincount(b1, minlength=64)
    assert counts.min() > 3 and abs(int(s1.sum())) < 120
    # parameter order and extra unknown parameters do not change a sketch
    x, _ = _pair()
    cs = CountSketch(SHAPES, 64, seed=3)
    reordered = dict(reversed(list(x.items())))
    torch.testing.assert_close(
        cs.sketch(x),
        CountSketch(dict(reversed(list(SHAPES.items()))), 64, 3).sketch(reordered),
        rtol=1e-12,
        atol=1e-12,
    )  # only the summation order differs
    assert torch.equal(cs.sketch(x), cs.sketch({**x, "other": torch.ones(3)}))
    with pytest.raises(SketchError, match="other"):
        cs.sketch({**x, "other": torch.ones(3)}, strict=True)
    with pytest.raises(SketchError, match="shape"):
        cs.sketch({"a.weight": torch.ones(25, 40)})


def test_inner_product_is_unbiased_with_variance_within_the_bound():
    """Over 300 hash seeds: mean within 4 standard errors of ⟨x,y⟩, variance equal to the exact
    CountSketch variance (‖x‖²‖y‖² + ⟨x,y⟩² − 2Σx²y²)/k and below the stated 2‖x‖²‖y‖²/k."""
    x, y = _pair()
    k = 128
    fx, fy = (torch.cat([t.reshape(-1) for t in d.values()]) for d in (x, y))
    exact = float(fx @ fy)
    nx2, ny2 = float(fx @ fx), float(fy @ fy)
    variance = (nx2 * ny2 + exact**2 - 2 * float((fx**2 * fy**2).sum())) / k
    bound = 2 * nx2 * ny2 / k
    est = np.array(
        [
            float(CountSketch(SHAPES, k, seed).sketch(x) @ CountSketch(SHAPES, k, seed).sketch(y))
            for seed in range(300)
        ]
    )
    assert abs(est.mean() - exact) < 4 * np.sqrt(variance / len(est))
    assert (
        0.75 * variance < est.var() < 1.3 * variance
    )  # 300 draws: the sample variance is within ±25% (≈ 3σ)
    assert est.var() < bound
    assert np.max(np.abs(est - exact)) < 5 * np.sqrt(bound)


SKETCHED = (
    "trainer.max_epochs=2",
    "callbacks.snapshots.dtype=float32",
    "callbacks.snapshots.sketch.enabled=true",
    "callbacks.snapshots.sketch.buckets=4096",
)


@pytest.fixture(scope="module")
def sketched_run(tmp_path_factory):
    """A tiny run with float32 full deltas and sketches at every step (shared by the tests below)."""
    root = tmp_path_factory.mktemp("sketched")
    glue = write_glue(root / "glue")
    train(tiny_train_cfg(glue, *SKETCHED), root / "run")
    return {"run": root / "run", "glue": glue, "root": root}


def test_callback_sketches_every_step_and_estimates_the_exact_projection(sketched_run):
    run = sketched_run["run"]
    sk, snaps = Sketches(run), Snapshots(run)
    assert sk.steps == snaps.steps == [1, 2, 3, 4, 5, 6]
    assert (
        sk.meta["bytes_per_step"] == 4 * 4096
        and (run / "sketches" / "sketch.f32").stat().st_size == 6 * 4 * 4096
    )
    cs = sk.sketcher()
    deltas = {s: snaps.delta(s) for s in snaps.steps}
    for i, s in enumerate(sk.steps):  # each row is S(θ_t − θ0) of the float32 delta, its norm exact
        np.testing.assert_allclose(sk.rows([s])[0], cs.sketch(deltas[s]).numpy(), rtol=1e-5, atol=1e-6)
        exact_sq = sum(float(d.double().pow(2).sum()) for d in deltas[s].values())
        assert sk.records[i].norm_sq == pytest.approx(exact_sq, rel=1e-10)
    delta1 = deltas[6]
    g = torch.Generator().manual_seed(1)
    delta2 = {n: torch.randn(t.shape, generator=g) * 1e-3 for n, t in delta1.items()}
    plain = sketched_projection(run, delta1, delta2, anchors=None)
    exact_dots = np.array(
        [
            [sum(float((d[n].double() * e[n].double()).sum()) for n in e) for e in (delta1, delta2)]
            for d in deltas.values()
        ]
    )
    n1 = sum(float(t.double().pow(2).sum()) for t in delta1.values())
    alpha = exact_dots[:, 0] / n1
    err = np.abs(plain["alpha"] - alpha)
    assert np.all(err <= 5 * plain["alpha_stderr"] + 1e-9), (err, plain["alpha_stderr"])
    assert np.all(np.abs(plain["dots"] - exact_dots) <= 5 * plain["dots_stderr"] + 1e-9)
    # anchored on the full snapshots (here every step): exact up to float rounding
    anchored = sketched_projection(run, delta1, delta2)
    np.testing.assert_allclose(anchored["alpha"], alpha, rtol=1e-9, atol=1e-12)
    assert anchored["alpha"][-1] == pytest.approx(1.0) and anchored["beta"][-1] == pytest.approx(
        0.0, abs=1e-6
    )
    # Gram and PCA: plain within the bound, anchored exact
    exact_g = exact_gram(run, sk.steps)
    plain_g = sketched_gram(run, anchors=None)["gram"]
    np.testing.assert_allclose(
        sketched_gram(run, anchors=None, block=4)["gram"], plain_g, rtol=1e-12
    )  # streamed in blocks
    bound = np.sqrt(2 * np.outer(np.diag(exact_g), np.diag(exact_g)) / 4096)
    assert np.all(np.abs(plain_g - exact_g) <= 5 * bound + 1e-12)
    np.testing.assert_allclose(sketched_gram(run)["gram"], exact_g, rtol=1e-8, atol=1e-14)
    ratio = pca_of_gram(exact_g)["explained_variance_ratio"]
    assert sum(ratio) <= 1 + 1e-9 and ratio[0] >= ratio[1] > 0


def test_sparse_full_snapshots_anchor_the_every_step_sketch(sketched_run, tmp_path):
    """Full deltas every 4 steps (+ the last), sketches every step: the anchored estimate is
    exact at steps 4 and 6 and within its (smaller) bound between them; the same run with every
    full delta (the fixture) is the exact reference."""
    run = tmp_path / "run"
    train(tiny_train_cfg(sketched_run["glue"], *SKETCHED, "callbacks.snapshots.every_n_steps=4"), run)
    assert Snapshots(run).steps == [4, 6] and Sketches(run).steps == list(range(1, 7))
    assert np.array_equal(np.asarray(Sketches(run).rows()), np.asarray(Sketches(sketched_run["run"]).rows()))
    delta1 = Snapshots(run).delta(6)
    est = sketched_projection(run, delta1, anchors="auto")
    assert est["anchors"] == [0, 0, 4, 4, 4, 6]
    exact = sketched_projection(sketched_run["run"], delta1)["alpha"]  # anchored at every step: exact
    assert np.all(np.abs(est["alpha"] - exact) <= 5 * est["alpha_stderr"] + 1e-9)
    assert est["alpha_stderr"][3] == 0 and est["alpha_stderr"][5] == 0
    assert est["alpha"][3] == pytest.approx(exact[3], rel=1e-9)
    plain = sketched_projection(run, delta1, anchors=None)
    assert np.all(est["alpha_stderr"] <= plain["alpha_stderr"])


def test_a_torn_row_or_index_line_after_a_crash_is_ignored_and_overwritten(tmp_path):
    d = tmp_path / "sketches"
    write_meta(d, {"w": (10,)}, 8, 0, "../checkpoints/init")
    w = SketchWriter(d, 8)
    w.truncate(0)
    w.append(1, 0, 0.5, np.arange(8, dtype=np.float32), 3.0)
    w.append(2, 0, 0.4, np.ones(8, dtype=np.float32), 4.0)
    with open(d / "sketch.f32", "ab") as f:  # a crash after writing half of row 3, before its index line
        f.write(b"\0" * 12)
    with open(d / "index.jsonl", "a") as f:
        f.write('{"step": 3, "ep')
    sk = Sketches(d)
    assert sk.steps == [1, 2] and np.array_equal(sk.rows([1])[0], np.arange(8))
    w = SketchWriter(d, 8)  # a resumed run: truncates to its step, then appends over the torn bytes
    w.truncate(2)
    w.append(3, 1, 0.3, np.full(8, 2.0, dtype=np.float32), 5.0)
    sk = Sketches(d)
    assert sk.steps == [1, 2, 3] and np.array_equal(sk.rows([3])[0], np.full(8, 2.0))
    assert (d / "sketch.f32").stat().st_size == 3 * 32
    (d / "sketch.f32").write_bytes(b"\0" * 40)  # rows listed but missing: a clear error
    with pytest.raises(SketchError, match="sketch.f32"):
        Sketches(d)
    with pytest.raises(SketchError, match="no sketches"):
        Sketches(tmp_path / "elsewhere")


@pytest.mark.slow
def test_resumed_run_sketches_equal_the_uninterrupted_ones(glue_dir, tmp_path, monkeypatch):
    import pytorch_lightning as pl
    from helpers.train import CrashAt

    overrides = (
        "callbacks.snapshots.sketch.enabled=true",
        "callbacks.snapshots.sketch.buckets=512",
        "trainer.max_epochs=3",
    )
    train(tiny_train_cfg(glue_dir, *overrides), tmp_path / "ref")
    original = pl.Trainer.__init__
    monkeypatch.setattr(
        pl.Trainer,
        "__init__",
        lambda self, *a, callbacks=None, **k: original(
            self, *a, callbacks=[*(callbacks or []), CrashAt(5)], **k
        ),
    )
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_train_cfg(glue_dir, *overrides), tmp_path / "run")
    monkeypatch.setattr(pl.Trainer, "__init__", original)
    train(tiny_train_cfg(glue_dir, *overrides), tmp_path / "run")
    a, b = Sketches(tmp_path / "run"), Sketches(tmp_path / "ref")
    assert a.steps == b.steps == list(range(1, 10))
    assert np.array_equal(np.asarray(a.rows()), np.asarray(b.rows())) and np.array_equal(a.norm_sq, b.norm_sq)


def test_disk_budget_counts_the_sketches(glue_dir, tmp_path):
    from bertviz_landscape.training.callbacks import SnapshotBudgetError

    # 6 steps × 4·2^20 bytes = 25 MB of sketches alone, over a 0.02 GB budget
    with pytest.raises(SnapshotBudgetError, match="max_disk_gb"):
        train(
            tiny_train_cfg(
                glue_dir,
                "trainer.max_epochs=2",
                "callbacks.snapshots.every_n_steps=100",
                "callbacks.snapshots.max_disk_gb=0.02",
                "callbacks.snapshots.sketch.enabled=true",
                f"callbacks.snapshots.sketch.buckets={2**20}",
            ),
            tmp_path / "run",
        )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_replay_reproduces_the_exact_every_step_projection_on_cpu(sketched_run, tmp_path):
    from bertviz_landscape.engine.replay import replay_projection

    run = sketched_run["run"]
    snaps = Snapshots(run)
    delta1 = snaps.delta(snaps.steps[-1])
    g = torch.Generator().manual_seed(2)
    delta2 = {n: torch.randn(t.shape, generator=g) for n, t in delta1.items() if "encoder" in n}
    out = replay_projection(run, [delta1, delta2], workdir=str(tmp_path))
    assert out["theta1_identical"] and out["theta1_max_abs_diff"] == 0.0
    assert out["steps"] == snaps.steps
    from bertviz_landscape.algebra import dot

    for i, s in enumerate(snaps.steps):  # the float32 snapshots are θ_t − θ0 exactly: equality, not closeness
        d = snaps.delta(s)
        assert out["dots"][i].tolist() == [dot(d, delta1), dot(d, delta2)]
        assert out["norm_sq"][i] == dot(d, d)
    assert out["alpha"][-1] == 1.0 and out["beta"][-1] == 0.0
    assert not list(tmp_path.glob("replay-*")), "the replay's scratch run is removed"


def test_sketched_plane_and_pca_match_the_trajectory_analysis(sketched_run):
    """The sketch route gives the trajectory analysis' own quantities: inner products over a plane
    confined to one layer and centred off θ0, and its trajectory PCA (anchored: exact; plain:
    within the bound)."""
    from pathlib import Path

    from bertviz_landscape.analysis.trajectory import Plane, inner_products, trajectory_pca
    from bertviz_landscape.contracts.sketches import sketched_plane, sketched_trajectory_pca

    run = sketched_run["run"]
    snaps = Snapshots(run)
    last, mid = snaps.delta(6), snaps.delta(3)
    names = [n for n in last if "encoder.layer.1." in n]
    g = torch.Generator().manual_seed(3)
    x = {n: last[n].float() for n in names}
    y = {n: torch.randn(last[n].shape, generator=g) * 1e-3 for n in names}
    offset = {n: mid[n].float() for n in names}
    exact = np.array(
        [inner_products(snaps.delta(s, names), Plane(x, y, offset, "theta1", Path("."))) for s in snaps.steps]
    )
    anchored = sketched_plane(run, x, y, offset)
    for key, col in (("vx", 0), ("vy", 1), ("vv", 2)):
        np.testing.assert_allclose(anchored[key], exact[:, col], rtol=1e-6, atol=1e-12, err_msg=key)
    plain = sketched_plane(run, x, y, offset, anchors=None)
    assert np.all(np.abs(plain["vx"] - exact[:, 0]) <= 5 * plain["vx_stderr"] + 1e-12)
    full = trajectory_pca(snaps, snaps.parameter_names, 2)
    sk = sketched_trajectory_pca(run, 2)
    np.testing.assert_allclose(sk["explained_variance_ratio"], full["explained_variance_ratio"], rtol=1e-6)
    np.testing.assert_allclose(sk["coordinates"], full["coordinates"], rtol=1e-5, atol=1e-9)


def test_trajectory_analysis_reads_the_sketch(sketched_run, tmp_path):
    """analysis=trajectory with source=sketch gives the full-snapshot result (anchored at every
    step here); a plane centred on θ1 (random directions) exercises the offset."""
    from bertviz_landscape.analysis.trajectory import trajectory
    from bertviz_landscape.engine.sweep import landscape

    run = sketched_run["run"]
    surface = landscape(
        run=str(run),
        output=str(tmp_path / "s.h5"),
        splits=["train"],
        progress=False,
        grid={"x": {"min": -1, "max": 1, "num": 2}, "y": {"min": -1, "max": 1, "num": 2}},
        directions={"name": "random", "seed": 0, "normalization": "filter", "center": "theta1"},
        data={"glue_dir": str(sketched_run["glue"]), "max_train_samples": 8, "eval_batch_size": 8},
    ).surface
    full = trajectory([run], [surface], tmp_path / "full.json", source="full")["per_run"][0]
    sk = trajectory([run], [surface], tmp_path / "sketch.json", source="sketch")["per_run"][0]
    assert (full["source"], sk["source"], sk["pca"]["source"]) == ("full", "sketch", "sketch")
    assert sk["steps"] == full["steps"]
    for key in ("alpha", "beta", "distance_from_plane"):
        np.testing.assert_allclose(sk[key], full[key], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(
        sk["pca"]["explained_variance_ratio"], full["pca"]["explained_variance_ratio"], rtol=1e-6
    )
    with pytest.raises(Exception, match="source"):
        trajectory([run], [surface], tmp_path / "bad.json", source="sketches")
