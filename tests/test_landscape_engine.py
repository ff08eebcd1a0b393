"""The landscape engine on tiny checkpoints: values, directions, cache, precision, surface file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers.landscape import TINY, build_tiny, data_cfg, tiny_run  # noqa: F401  (fixture)

from bertviz_landscape.contracts.parameters import layer_map, select_parameters
from bertviz_landscape.engine import directions as dirs
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.engine.sweep import landscape

LINE = {"x": {"min": -0.5, "max": 1.5, "num": 3}}


def recipe(values: dict):
    """A typed direction recipe with the YAML defaults of its group under `values`."""
    from bertviz_landscape.engine.request import landscape_request

    return landscape_request(theta0="x", task="mrpc", directions=values).directions


def reference_dev_loss(theta0, theta1, alpha, glue_dir):
    """Mean cross-entropy of θ0 + α(θ1 − θ0) on dev, with plain transformers and nothing of ours."""
    import csv

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    m0 = AutoModelForSequenceClassification.from_pretrained(str(theta0))
    m1 = AutoModelForSequenceClassification.from_pretrained(str(theta1))
    s1 = m1.state_dict()
    state = {k: v + alpha * (s1[k] - v) if v.is_floating_point() else v for k, v in m0.state_dict().items()}
    m0.load_state_dict(state)
    m0.eval()
    tok = AutoTokenizer.from_pretrained(str(theta0))
    with open(glue_dir / "MRPC" / "dev.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    losses = []
    with torch.no_grad():
        for i in range(0, len(rows), 5):
            chunk = rows[i : i + 5]
            enc = tok(
                [r["#1 String"] for r in chunk],
                [r["#2 String"] for r in chunk],
                padding=True,
                truncation=True,
                max_length=32,
                return_tensors="pt",
            )
            labels = torch.tensor([int(r["Quality"]) for r in chunk])
            logits = m0(**enc).logits
            losses.append(torch.nn.functional.cross_entropy(logits, labels, reduction="none"))
    return float(torch.cat(losses).mean())


def test_1d_difference_matches_plain_transformers(tiny_run, tmp_path):
    res = landscape(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        output=tmp_path / "s.h5",
        grid={"x": {"min": 0, "max": 1, "num": 3}},
        directions={"name": "difference"},
        data=data_cfg(tiny_run),
        splits=["dev"],
        progress=False,
    )
    surf = load_surface(res.surface)
    assert list(surf.x) == [0.0, 0.5, 1.0]
    for i, alpha in enumerate(surf.x):
        ref = reference_dev_loss(tiny_run["theta0"], tiny_run["theta1"], float(alpha), tiny_run["glue_dir"])
        assert surf["dev_loss"][i] == pytest.approx(ref, rel=1e-5)
    assert res.evaluated == 3


def test_2d_surface_keys_shape_and_metadata(tiny_run, tmp_path):
    grid = {"x": {"min": -0.5, "max": 1.5, "num": 3}, "y": {"min": -1, "max": 1, "num": 2}}  # non-square
    res = landscape(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        output=tmp_path / "s.h5",
        grid=grid,
        directions={"name": "difference", "rescale_y": True},
        data=data_cfg(tiny_run),
        theta2=tiny_run["theta2"],
        progress=False,
    )
    surf = load_surface(res.surface)
    assert surf.two_d and surf.x.shape == (3,) and surf.y.shape == (2,)
    for split in ("train", "dev"):
        for key in ("loss", "accuracy", "f1", "error"):
            assert surf[f"{split}_{key}"].shape == (2, 3)  # [ny, nx]: rows are y
        np.testing.assert_allclose(surf[f"{split}_error"], 1 - surf[f"{split}_accuracy"])
    d = surf.meta["directions"]
    assert d["recipe"] == "difference" and d["center"] == "theta0"
    assert d["norm_y"] == pytest.approx(d["norm_x"], rel=1e-6)  # rescaled to ‖δ1‖
    assert -1 <= d["cosine_xy"] <= 1 and set(d["layer_norms_x"]) == {
        "embeddings",
        "layer.0",
        "layer.1",
        "pooler",
        "head",
    }
    ck = surf.meta["checkpoints"]
    assert set(ck) == {"theta0", "theta1", "theta2"} and all(len(c["sha256"]) == 64 for c in ck.values())
    assert surf.meta["data"]["splits"]["dev"]["num_examples"] == 9
    # [i, j] ↔ (x[i], y[j]): the point (x=0.5, y=-1) is θ0 + 0.5 δ1 − δ2; check against a 1D run
    # along δ1 at y=0 elsewhere
    import h5py

    with h5py.File(res.surface) as f:  # Li et al.'s key names, readable without our loader
        assert {"xcoordinates", "ycoordinates", "train_loss", "train_accuracy", "dev_loss"} <= set(f.keys())


def test_grid_point_is_set_from_fixed_base(tiny_run, tmp_path):
    """Visiting points in any order gives the same values: no cumulative steps, no drift."""
    from bertviz_landscape.contracts.checkpoints import load_checkpoints
    from bertviz_landscape.engine.evaluator import Evaluator
    from bertviz_landscape.engine.sweep import build_directions
    from bertviz_landscape.training.data.eval_sets import load_eval_sets
    from bertviz_landscape.training.data.tasks import get_task

    task = get_task("mrpc")
    model, cks = load_checkpoints(tiny_run["theta0"], tiny_run["theta1"])
    d = build_directions(recipe({"name": "difference"}), cks, False)
    from bertviz_landscape.training.data.eval_sets import DataRequest

    sets = load_eval_sets(
        task, DataRequest.from_config(data_cfg(tiny_run)), ["dev"], cks["theta0"].path, "cpu"
    )
    ev = Evaluator(model, task, cks["theta0"].state, d, sets)
    first = ev.evaluate(0.3)
    for a in (1.5, -0.5, 7.0, 0.3):
        last = ev.evaluate(a)
    assert last == first
    ev.evaluate(1.0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), cks["theta1"].state[name], rtol=1e-6, atol=1e-6)
    assert ev.evaluations == 6


@pytest.mark.parametrize("precision", ["fp32", "bf16-weights"])
def test_a_point_is_set_bit_for_bit_as_copy_then_adds(tiny_run, precision):
    """set_point writes p = c + α·δ1 in one pass, then p += β·δ2: the same bits as p ← c;
    p += α·δ1; p += β·δ2 (the definition), at every kind of point (centre, one axis, both)."""
    from bertviz_landscape.contracts.checkpoints import load_checkpoints
    from bertviz_landscape.contracts.parameters import trainable_parameters
    from bertviz_landscape.engine.evaluator import Evaluator
    from bertviz_landscape.engine.sweep import build_directions
    from bertviz_landscape.training.data.tasks import get_task

    model, cks = load_checkpoints(tiny_run["theta0"], tiny_run["theta1"], tiny_run["theta2"])
    d = build_directions(recipe({"name": "difference"}), cks, True)
    ev = Evaluator(model, get_task("mrpc"), cks["theta0"].state, d, [], precision=precision)
    params = trainable_parameters(model)
    for alpha, beta in [(0.0, 0.0), (0.3, 0.0), (0.0, -1.7), (1.5, 0.25), (-0.123456789, 3.3)]:
        ev.set_point(alpha, beta)
        for name in d.names:
            want = cks["theta0"].state[name].to(torch.float32).clone()  # p ← c
            if alpha:
                want.add_(d.x[name].float(), alpha=alpha)
            if beta:
                want.add_(d.y[name].float(), alpha=beta)
            assert torch.equal(params[name].detach(), want.to(params[name].dtype)), (name, alpha, beta)


def test_hidden_state_cache_equals_full_forward(tiny_run, tmp_path):
    common = dict(grid=LINE, data=data_cfg(tiny_run), progress=False)
    for params in (["layer.1", "head"], ["pooler"], ["head"]):
        d = {"name": "difference", "params": params}
        a = landscape(
            task="mrpc",
            theta0=tiny_run["theta0"],
            theta1=tiny_run["theta1"],
            output=tmp_path / f"c{params[0]}.h5",
            directions=d,
            hidden_state_cache=True,
            **common,
        )
        b = landscape(
            task="mrpc",
            theta0=tiny_run["theta0"],
            theta1=tiny_run["theta1"],
            output=tmp_path / f"n{params[0]}.h5",
            directions=d,
            hidden_state_cache=False,
            **common,
        )
        sa, sb = load_surface(a.surface), load_surface(b.surface)
        assert sa.meta["evaluation"]["hidden_state_cache"] and not sb.meta["evaluation"]["hidden_state_cache"]
        for key in sa.keys():
            np.testing.assert_allclose(sa[key], sb[key], rtol=1e-5, atol=1e-6)


def test_layer_restricted_direction_moves_only_that_layer(tiny_run, tmp_path):
    from bertviz_landscape.contracts.checkpoints import load_checkpoints
    from bertviz_landscape.engine.sweep import build_directions

    _, cks = load_checkpoints(tiny_run["theta0"], tiny_run["theta1"])
    names = list(cks["theta0"].state)
    d = build_directions(recipe({"name": "difference", "params": "layer.0"}), cks, False)
    assert d.names and all(".layer.0." in n for n in d.names)
    assert set(layer_map(names)) == {"embeddings", "layer.0", "layer.1", "pooler", "head"}
    assert select_parameters(names, "layers.0-1") == [n for n in names if ".encoder.layer." in n]
    assert select_parameters(names, ["head"]) == [n for n in names if n.startswith("classifier.")]
    d = build_directions(recipe({"name": "difference", "bias_and_norm": "exclude"}), cks, False)
    assert not any(n.endswith(".bias") or "LayerNorm" in n for n in d.names)


def test_random_directions_filter_and_layer_normalised(tiny_run):
    from bertviz_landscape.contracts.checkpoints import load_checkpoints

    _, cks = load_checkpoints(tiny_run["theta0"], tiny_run["theta1"])
    c = cks["theta1"].state
    names = list(c)
    a = dirs.random_directions(c, names, True, seed=3, normalization="filter")
    b = dirs.random_directions(c, names, True, seed=3, normalization="filter")
    assert all(torch.equal(a.x[n], b.x[n]) and torch.equal(a.y[n], b.y[n]) for n in a.names)  # seeded
    w = "bert.encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(a.x[w].norm(dim=1), c[w].norm(dim=1), rtol=1e-4, atol=1e-6)
    assert not any(n.endswith(".bias") for n in a.names)  # biases/LayerNorm excluded by default
    lw = dirs.random_directions(c, names, False, seed=3, normalization="layer", bias_and_norm="include")
    assert lw.y is None and any(n.endswith(".bias") for n in lw.names)
    assert float(lw.x[w].norm()) == pytest.approx(float(c[w].norm()), rel=1e-4)


def test_pca_directions_from_snapshots_via_gram(tmp_path, tiny_run):
    """PCA through the T×T Gram matrix equals an SVD of the (small) dense snapshot matrix."""
    from bertviz_landscape.contracts.checkpoints import load_checkpoints
    from bertviz_landscape.contracts.snapshots import FORMAT, write_snapshot

    _, cks = load_checkpoints(tiny_run["theta0"], tiny_run["theta1"])
    t0, t1 = cks["theta0"].state, cks["theta1"].state
    snap = tmp_path / "run" / "snapshots"
    snap.mkdir(parents=True)
    names = list(t0)
    (snap / "meta.json").write_text(
        json.dumps(
            {
                "format": FORMAT,
                "dtype": "float32",
                "every_n_steps": 1,
                "theta0": "../checkpoints/init",
                "parameters": [{"name": n, "shape": list(t0[n].shape)} for n in names],
            }
        )
    )
    gen = torch.Generator().manual_seed(0)
    deltas = []
    for step in range(1, 7):
        frac = step / 6
        d = {
            n: (t1[n] - t0[n]) * frac + 0.01 * frac * (1 - frac) * torch.randn(t0[n].shape, generator=gen)
            for n in names
        }
        deltas.append(torch.cat([d[n].reshape(-1) for n in names]))
        write_snapshot(snap, step, 0, None, d)
    from bertviz_landscape.contracts.snapshots import Snapshots

    out = dirs.pca_directions(Snapshots(tmp_path / "run"), names, True, chunk_elements=100_000)
    dense = torch.stack(deltas).double()
    dense -= dense.mean(0)
    _, s, vh = torch.linalg.svd(dense, full_matrices=False)
    for k, d in enumerate((out.x, out.y)):
        v = torch.cat([d[n].reshape(-1) for n in names]).double()
        assert abs(float(v @ vh[k])) == pytest.approx(1.0, abs=1e-4)
    ev = (s**2 / (s**2).sum())[:2].tolist()
    assert out.info["explained_variance_ratio"] == pytest.approx(ev, rel=1e-4)


def test_non_finite_points_are_stored_not_raised(tiny_run, tmp_path):
    res = landscape(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        output=tmp_path / "s.h5",
        grid={"x": {"min": 0, "max": 1e30, "num": 2}},
        directions={"name": "difference"},
        data=data_cfg(tiny_run),
        splits=["dev"],
        progress=False,
    )
    surf = load_surface(res.surface)
    assert math.isfinite(surf["dev_loss"][0]) and not math.isfinite(surf["dev_loss"][1])


@pytest.mark.slow
def test_bf16_deviation_is_small(tiny_run, tmp_path):
    common = dict(grid=LINE, directions={"name": "difference"}, data=data_cfg(tiny_run), progress=False)
    a = load_surface(
        landscape(
            task="mrpc",
            theta0=tiny_run["theta0"],
            theta1=tiny_run["theta1"],
            output=tmp_path / "a.h5",
            **common,
        ).surface
    )
    for precision in ("bf16", "bf16-weights"):
        b = load_surface(
            landscape(
                task="mrpc",
                theta0=tiny_run["theta0"],
                theta1=tiny_run["theta1"],
                output=tmp_path / f"{precision}.h5",
                precision=precision,
                **common,
            ).surface
        )
        assert b.meta["evaluation"]["precision"] == precision
        np.testing.assert_allclose(b["dev_loss"], a["dev_loss"], rtol=0.05)


def test_wandb_logs_image_and_artifact_offline(tiny_run, tmp_path, monkeypatch):
    """With the logger on (offline), the entrypoint logs the surface image and the file as an artifact."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from bertviz_landscape.cli.landscape import CONFIG_PATH, run

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    d = data_cfg(tiny_run)
    overrides = [
        "task=mrpc",
        f"theta0={tiny_run['theta0']}",
        f"theta1={tiny_run['theta1']}",
        f"theta2={tiny_run['theta2']}",
        "grid=demo",
        "grid.x.num=2",
        "grid.y.num=2",
        f"output={tmp_path / 's.h5'}",
        f"paths.output_dir={tmp_path}",
        "progress=false",
        f"data.glue_dir={d['glue_dir']}",
        f"data.cache_dir={d['cache_dir']}",
        "data.max_length=32",
        "data.eval_batch_size=4",
        "splits=[dev]",
        "wandb.enabled=true",
        f"wandb.dir={tmp_path}",
    ]
    with initialize_config_dir(config_dir=str(Path(CONFIG_PATH).resolve()), version_base="1.3"):
        cfg = compose("landscape", overrides=overrides)
    assert cfg.wandb.mode == "offline"
    result = run(cfg)
    assert result.surface.is_file()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("files/media/images/landscape/surface*.png"))
    assert list(runs[0].glob("*.wandb"))
