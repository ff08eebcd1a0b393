"""What the analyses and the engine are given (issue 19): a direction file that is not the
surface's, a degenerate plane, the same input twice, a NaN at θ1, an absurd grid, a truncated
weight file, a full disk under training — each one line naming the file or key, never a
traceback or a silently wrong number."""

from __future__ import annotations

import errno
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_cfg, write_glue

from bertviz_landscape.analysis.common import AnalysisError, refuse_repeats
from bertviz_landscape.analysis.flatness import basin_area
from bertviz_landscape.analysis.trajectory import trajectory
from bertviz_landscape.checkpoints import load_model
from bertviz_landscape.errors import BadInput, CheckpointError, LandscapeError, OutputError
from bertviz_landscape.landscape.grid import Grid
from bertviz_landscape.landscape.sweep import landscape
from bertviz_landscape.rundir import RunDir
from bertviz_landscape.sketches import SketchError, Sketches
from bertviz_landscape.train import train

PLANE = {"x": {"min": -0.5, "max": 1.5, "num": 3}, "y": {"min": -0.5, "max": 0.5, "num": 2}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs from one θ0 (MRPC, and RTE for δ2); MRPC's with sketches and full deltas every
    3 steps (the README's paper-scale recipe), and its plane, line and direction files."""
    root = tmp_path_factory.mktemp("runs")
    glue = write_glue(root / "glue")
    sketch = ("callbacks.snapshots.sketch.enabled=true", "callbacks.snapshots.sketch.buckets=1024")
    train(
        tiny_train_cfg(glue, "trainer.max_epochs=2", "callbacks.snapshots.every_n_steps=4", *sketch),
        root / "a",
    )
    train(tiny_train_cfg(glue, "task=rte"), root / "b")
    common = dict(run=str(root / "a"), splits=["train"], progress=False)
    data = {"glue_dir": str(glue), "max_train_samples": 8, "eval_batch_size": 8}
    plane = landscape(
        **common, run2=str(root / "b"), grid=PLANE, output=str(root / "s" / "plane.h5"), data=data
    ).surface
    line = landscape(**common, grid={"x": PLANE["x"]}, output=str(root / "s" / "line.h5"), data=data).surface
    return {
        "root": root,
        "glue": glue,
        "a": root / "a",
        "b": root / "b",
        "plane": plane,
        "line": line,
        "data": data,
    }


def test_sketched_trajectory_with_sparse_full_snapshots_projects_every_step(runs, tmp_path):
    """sketch.enabled + every_n_steps > 1, then the default trajectory (was KeyError: 'no snapshot
    for step 1')."""
    for source in ("auto", "sketch"):
        out = trajectory([runs["a"]], [runs["plane"]], tmp_path / f"{source}.json", source=source)
        per_run = out["per_run"][0]
        assert per_run["source"] == "sketch" and per_run["steps"] == list(range(1, 7))
        assert all(math.isfinite(a) for a in per_run["alpha"])


@pytest.mark.parametrize("swap", ["line's file beside the plane", "another plane's file"])
def test_a_direction_file_that_is_not_the_surfaces_is_refused(runs, tmp_path, swap):
    plane = tmp_path / "plane.h5"
    shutil.copy(runs["plane"], plane)
    directions = plane.with_name("plane.directions.h5")
    if swap.startswith("line"):
        shutil.copy(runs["line"].with_name("line.directions.h5"), directions)
        expect = r"1D direction file for a 2D surface"
    else:  # random directions for the same run: same shape, other norms
        other = landscape(
            run=str(runs["a"]),
            splits=["train"],
            progress=False,
            grid=PLANE,
            directions={"name": "random", "seed": 3},
            output=str(tmp_path / "r" / "random.h5"),
            data=runs["data"],
        ).surface
        shutil.copy(other.with_name("random.directions.h5"), directions)
        expect = r"recipe 'random' vs 'difference'|norm_x"
    m = json.loads(__import__("h5py").File(plane, "r").attrs["directions"])
    m.pop("file", None)  # the surface names no file of its own: the one beside it is read
    with __import__("h5py").File(plane, "a") as f:
        f.attrs["directions"] = json.dumps(m)
    with pytest.raises(
        AnalysisError, match=rf"direction file .*plane.directions.h5 is not the one surface .*({expect})"
    ):
        trajectory([runs["a"]], [plane], tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()


def test_run2_equal_to_run_warns_and_its_plane_is_one_error_not_linalg(runs, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        surface = landscape(
            run=str(runs["a"]),
            run2=str(runs["a"]),
            splits=["train"],
            progress=False,
            grid=PLANE,
            output=str(tmp_path / "same.h5"),
            data=runs["data"],
        ).surface
    assert "theta2 has the same weights as theta1" in caplog.text
    with pytest.raises(AnalysisError, match=r"same.h5: its axes are parallel or zero \(cos\(δ1, δ2\) = 1"):
        trajectory([runs["a"]], [surface], tmp_path / "t.json")


def test_the_same_input_twice_is_not_two_seeds(runs, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copy(runs["plane"], copy)
    for paths in ([str(runs["plane"]), str(runs["plane"])], [str(runs["plane"]), str(copy)]):
        with pytest.raises(AnalysisError, match=r"surfaces: .* are (the same file|identical files).*n = 2"):
            refuse_repeats(paths, "surface/surfaces")
    refuse_repeats([str(runs["plane"]), str(runs["line"])], "surfaces")  # two surfaces: fine


def test_nan_at_theta1_is_no_basin_not_a_zero_area_one():
    z = np.ones((3, 3))
    z[1, 1] = np.nan
    assert basin_area(z, 1, 1, 1.5) == (None, None)
    z[1, 1] = 0.5
    assert basin_area(z, 1, 1, 0.7) == (1, False)  # a real one-point basin stays one point


def test_a_grid_that_cannot_fit_is_refused_with_its_size():
    big = {"x": {"min": -1, "max": 1, "num": 100_000}, "y": {"min": -1, "max": 1, "num": 100_000}}
    with pytest.raises(LandscapeError, match=r"grid 100000 × 100000 = 1e\+10 points.*GB.*at most 1e\+07"):
        Grid.parse(big)
    assert Grid.parse({"x": {"min": -1, "max": 1, "num": 101}, "y": {"min": -1, "max": 1, "num": 101}}).size


def test_truncated_model_safetensors_names_the_file(runs, tmp_path):
    ckpt = tmp_path / "final"
    shutil.copytree(RunDir(runs["a"]).theta1, ckpt)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(
        CheckpointError, match=r"checkpoint .*final/model.safetensors: cannot read its weights"
    ):
        load_model(ckpt)


@pytest.mark.parametrize("meta", ["{not json", '{"format": "bertviz-sketches/1"}', "[1, 2]"])
def test_garbage_sketch_meta_names_the_file(runs, tmp_path, meta):
    d = tmp_path / "sketches"
    shutil.copytree(RunDir(runs["a"]).sketches, d)
    fmt = json.loads((d / "meta.json").read_text())["format"]
    (d / "meta.json").write_text(meta.replace("bertviz-sketches/1", fmt))
    with pytest.raises(SketchError, match=r"sketches/meta.json: "):
        Sketches(d)


def test_full_disk_while_writing_snapshots_is_one_error_naming_them(runs, tmp_path, monkeypatch):
    from bertviz_landscape import snapshots as snapshot_module

    real = snapshot_module.write_image

    def full_disk(path, image):
        if "00000003" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, image)

    monkeypatch.setattr(snapshot_module, "write_image", full_disk)
    run = RunDir(tmp_path / "run")
    with pytest.raises(
        OutputError, match=r"writing a weight snapshot to .*snapshots failed: .*No space left"
    ):
        train(tiny_train_cfg(runs["glue"], "trainer.max_epochs=2"), run.root)
    assert isinstance(OutputError("x"), BadInput)  # exit status 2 at the CLI
    assert not list(run.root.rglob(".*.tmp")) and not run.metrics_json.exists()


def test_an_analysis_json_of_other_runs_is_kept_unless_overwrite(tmp_path):
    from bertviz_landscape.analysis.common import write_result

    out = tmp_path / "analysis" / "mrpc_scratch_seed0_flatness.json"

    def result(run):
        return {
            "format": "bertviz-analysis/1",
            "analysis": "flatness",
            "inputs": {"runs": [run]},
            "per_run": [],
        }

    write_result(out, result("/a/runs/mrpc_scratch_seed0"))
    write_result(out, result("/a/runs/mrpc_scratch_seed0"))  # the same inputs again: replaced
    with pytest.raises(AnalysisError, match=r"already holds the flatness of other runs .*overwrite=true"):
        write_result(out, result("/b/runs/mrpc_scratch_seed0"))  # another run of the same name
    assert json.loads(out.read_text())["inputs"]["runs"] == ["/a/runs/mrpc_scratch_seed0"]
    write_result(out, result("/b/runs/mrpc_scratch_seed0"), overwrite=True)
    assert json.loads(out.read_text())["inputs"]["runs"] == ["/b/runs/mrpc_scratch_seed0"]


def test_two_surfaces_of_one_task_init_recipe_grid_get_their_own_figures(tmp_path):
    from bertviz_landscape.landscape.surface import Surface, write_surface
    from bertviz_landscape.plots.results import draw_all

    x, y = np.linspace(-0.5, 1.5, 5), np.linspace(-0.5, 0.5, 3)
    X, Y = np.meshgrid(x, y)
    for seed in (0, 1):
        z = (X - 1) ** 2 + Y**2 + seed
        values = {"train_loss": z, "dev_loss": z + 0.1, "dev_error": np.clip(z / 10, 0, 1)}
        write_surface(
            tmp_path / "r" / f"mrpc_pretrained_seed{seed}_plane.h5",
            Surface(x, y, values, {"task": "mrpc", "grid": {"name": "plane"}}),
        )
    manifest = draw_all(tmp_path / "r", interactive=False, formats=("png",))
    planes = [f for f in manifest["figures"] if f["kind"] == "surface2d"]
    assert len(planes) == 2
    files = [tuple(f["files"]) for f in planes]
    assert len(set(files)) == 2  # not one image attributed to both
    assert {Path(f["sources"][0]).name for f in planes} == {
        "mrpc_pretrained_seed0_plane.h5",
        "mrpc_pretrained_seed1_plane.h5",
    }


def test_a_negative_loss_in_a_surface_is_refused_naming_the_key(tmp_path):
    from bertviz_landscape.landscape.surface import Surface, load_surface, write_surface

    x = np.linspace(0, 1, 3)
    path = write_surface(tmp_path / "s.h5", Surface(x, None, {"train_loss": np.array([0.7, -5.0, 0.6])}))
    with pytest.raises(LandscapeError, match=r"s.h5: train_loss has negative values \(min -5\)"):
        load_surface(path)


def test_nan_in_a_sketch_names_the_file_and_the_steps(runs, tmp_path):
    d = tmp_path / "sketches"
    shutil.copytree(RunDir(runs["a"]).sketches, d)
    sk = Sketches(d)
    data = np.memmap(d / "sketch.f32", dtype="<f4", mode="r+")
    data[sk.records[2].row * sk.buckets + 5] = np.nan
    data.flush()
    del data
    for read in (lambda s: s.rows(), lambda s: list(s.blocks()), lambda s: s.rows([sk.records[2].step])):
        with pytest.raises(
            SketchError,
            match=rf"sketch.f32: the sketch rows of steps \[{sk.records[2].step}\] are not finite",
        ):
            read(Sketches(d))
