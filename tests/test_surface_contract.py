"""Surfaces the field's tools read the right way round; direction files computed once per surface."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest
import torch
from helpers.landscape import data_cfg, tiny_run  # noqa: F401  (fixture)

from bertviz_landscape.engine.surface import Surface, load_surface, write_surface
from bertviz_landscape.engine.sweep import landscape

GRID = {
    "x": {"min": -0.5, "max": 1.5, "num": 4},
    "y": {"min": -0.5, "max": 0.5, "num": 3},
}  # non-square, asymmetric


def plain_loss(theta0, theta1, theta2, alpha, beta, glue_dir, split="dev"):
    """J(θ0 + αδ1 + βδ2) on a split with plain transformers, nothing of ours."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    models = [AutoModelForSequenceClassification.from_pretrained(str(p)) for p in (theta0, theta1, theta2)]
    s0, s1, s2 = (m.state_dict() for m in models)
    state = {
        k: v + alpha * (s1[k] - v) + beta * (s2[k] - v) if v.is_floating_point() else v for k, v in s0.items()
    }
    m = models[0]
    m.load_state_dict(state)
    m.eval()
    tok = AutoTokenizer.from_pretrained(str(theta0))
    with open(glue_dir / "MRPC" / f"{split}.tsv") as f:
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
        logits = m(**enc).logits
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor([int(r["Quality"]) for r in rows])))


@pytest.fixture(scope="module")
def plane(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("plane") / "plane.h5"
    res = landscape(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        theta2=tiny_run["theta2"],
        output=out,
        grid=GRID,
        directions={"name": "difference"},
        data=data_cfg(tiny_run),
        progress=False,
    )
    return res


def test_asymmetric_2d_point_matches_plain_transformers_and_rows_are_y(tiny_run, plane):
    surf = load_surface(plane.surface)
    assert surf["dev_loss"].shape == (3, 4)  # [ny, nx]
    j, i = 0, 3  # (α, β) = (1.5, −0.5): Z[j, i] ↔ (x[i], y[j])
    assert (surf.x[i], surf.y[j]) == (1.5, -0.5)
    ref = plain_loss(
        tiny_run["theta0"], tiny_run["theta1"], tiny_run["theta2"], 1.5, -0.5, tiny_run["glue_dir"]
    )
    assert surf["dev_loss"][j, i] == pytest.approx(ref, rel=1e-5)
    assert surf.at("dev_loss", 1.5, -0.5) == surf["dev_loss"][j, i]
    swapped = plain_loss(
        tiny_run["theta0"], tiny_run["theta1"], tiny_run["theta2"], -0.5, 1.5, tiny_run["glue_dir"]
    )
    assert swapped != pytest.approx(ref, rel=1e-4)  # so the check above would catch an α/β swap
    with h5py.File(plane.surface) as f:  # what Li et al.'s plot_2D.py and matplotlib read, without our loader
        assert f.attrs["layout"] == "yx" and f["test_loss"].shape == (3, 4)
        np.testing.assert_array_equal(f["test_loss"][...], f["dev_loss"][...])
        np.testing.assert_allclose(f["train_acc"][...], 100 * f["train_accuracy"][...])
        np.testing.assert_allclose(f["test_acc"][...], 100 * f["dev_accuracy"][...])


def test_direction_file_sits_beside_the_surface_and_is_reused(tiny_run, plane, tmp_path):
    from bertviz_landscape.engine.direction_file import beside, read_directions

    d = beside(plane.surface)
    assert d.is_file() and d.name == "plane.directions.h5"
    directions, attrs = read_directions(d)
    assert directions.recipe == "difference" and directions.y is not None and "theta2" in attrs["checkpoints"]
    assert load_surface(plane.surface).meta["directions"]["file"] == str(d)
    # the same directions on another data subset: no theta2 needed, same values where the data agree
    again = landscape(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        output=tmp_path / "again.h5",
        grid=GRID,
        directions={"name": "difference", "file": str(d)},
        data=data_cfg(tiny_run),
        progress=False,
    )
    np.testing.assert_allclose(
        load_surface(again.surface)["dev_loss"], load_surface(plane.surface)["dev_loss"], rtol=1e-6
    )


def test_directions_are_computed_once_per_surface(tiny_run, tmp_path, monkeypatch):
    from bertviz_landscape.engine import sweep

    calls = []
    real = sweep.build_directions
    monkeypatch.setattr(sweep, "build_directions", lambda *a, **k: calls.append(1) or real(*a, **k))
    common = dict(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        theta2=tiny_run["theta2"],
        output=tmp_path / "s.h5",
        grid=GRID,
        directions={"name": "difference"},
        data=data_cfg(tiny_run),
        progress=False,
        num_shards=3,
        merge=False,
    )
    for shard in range(3):
        landscape(shard=shard, **common)
    merged = landscape(mode="merge", **common)
    assert merged.surface.is_file() and len(calls) == 1


def test_load_surface_reads_the_older_layout_and_li_files(tmp_path):
    x, y = np.array([0.0, 1.0, 2.0]), np.array([-1.0, 1.0])
    z = np.array([[10.0, 11.0, 12.0], [20.0, 21.0, 22.0]])  # [ny, nx]: z[j, i] = 10(j+1) + i
    # our older files stored [nx, ny]
    with h5py.File(tmp_path / "v1.h5", "w") as f:
        f.attrs["format"] = "bertviz-surface/1"
        f["xcoordinates"], f["ycoordinates"], f["dev_loss"] = x, y, z.T
    assert np.array_equal(load_surface(tmp_path / "v1.h5")["dev_loss"], z)
    # a Li et al. file: train_loss / train_acc (percent) / test_loss / test_acc, rows are y
    with h5py.File(tmp_path / "li.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"], f["train_acc"], f["test_loss"], f["test_acc"] = (
            z,
            np.full((2, 3), 75.0),
            z + 1,
            np.full((2, 3), 60.0),
        )
    li = load_surface(tmp_path / "li.h5")
    assert np.array_equal(li["train_loss"], z) and np.array_equal(li["dev_loss"], z + 1)
    assert np.allclose(li["train_accuracy"], 0.75) and np.allclose(li["dev_error"], 0.4)
    # ours round-trips, and shapes are checked on writing
    write_surface(tmp_path / "v2.h5", Surface(x, y, {"dev_loss": z}, {"task": "mrpc"}))
    assert np.array_equal(load_surface(tmp_path / "v2.h5")["dev_loss"], z)
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        write_surface(tmp_path / "bad.h5", Surface(x, y, {"dev_loss": z.T}, {}))
    assert not list(tmp_path.glob(".bad.h5*"))


def test_landscape_takes_task_and_max_length_from_the_run(tmp_path, glue_dir):
    from conftest import tiny_train_cfg

    from bertviz_landscape.contracts.errors import LandscapeError
    from bertviz_landscape.contracts.rundir import RunDir
    from bertviz_landscape.engine.request import landscape_request, resolve_runs
    from bertviz_landscape.training.train import train

    run = RunDir(tmp_path / "run")
    train(tiny_train_cfg(glue_dir, "task=rte", "data.max_length=48", "callbacks=none"), run.root)
    req = resolve_runs(landscape_request(run=run.root))
    assert (req.task, req.data.max_length, req.theta0, req.theta1) == ("rte", 48, run.theta0, run.theta1)
    assert resolve_runs(landscape_request(run=run.root, data={"max_length": 64})).data.max_length == 64
    with pytest.raises(LandscapeError, match="task=mrpc but run .* was trained on rte"):
        resolve_runs(landscape_request(run=run.root, task="mrpc"))
    with pytest.raises(LandscapeError, match="run=.*nope: directory does not exist"):
        resolve_runs(landscape_request(run=tmp_path / "nope"))
    assert json.loads(run.identity_file.read_text())["task"] == "rte"
