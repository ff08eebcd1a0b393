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
from conftest import (
    assert_changes_only_under,
    changes,
    exits_2_with_one_line,
    tiny_train_cfg,
    tree_state,
    write_glue,
)

from bertviz_landscape.analysis.common import AnalysisError, refuse_repeats
from bertviz_landscape.analysis.flatness import basin_area
from bertviz_landscape.analysis.trajectory import trajectory
from bertviz_landscape.contracts.checkpoints import load_model
from bertviz_landscape.contracts.errors import BadInput, CheckpointError, LandscapeError, OutputError
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.sketches import SketchError, Sketches
from bertviz_landscape.engine.grid import Grid
from bertviz_landscape.engine.sweep import landscape
from bertviz_landscape.training.train import train

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
    shared = tree_state(runs["root"])
    for source in ("auto", "sketch"):
        before = tree_state(tmp_path)
        out = trajectory([runs["a"]], [runs["plane"]], tmp_path / f"{source}.json", source=source)
        per_run = out["per_run"][0]
        assert per_run["source"] == "sketch" and per_run["steps"] == list(range(1, 7))
        assert all(math.isfinite(a) for a in per_run["alpha"])
        new = changes(before, tmp_path)  # the projection beside the output it was given, nothing else
        assert new == {tmp_path / f"{source}.projection.h5"}, new
    assert_changes_only_under(shared, runs["root"])  # the run, its snapshots and sketches as they were


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
    before = tree_state(tmp_path)
    exits_2_with_one_line(
        lambda: trajectory([runs["a"]], [plane], tmp_path / "t.json"),
        f"direction file {directions}",
        str(plane),
    )
    assert_changes_only_under(before, tmp_path)  # no t.json, the surface and its files as they were
    assert not (tmp_path / "t.json").exists()


def test_run2_equal_to_run_warns_and_its_plane_is_one_error_not_linalg(runs, tmp_path, caplog):
    shared = tree_state(runs["root"])
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
    assert_changes_only_under(shared, runs["root"])  # the surface went to output=, the run is untouched
    with pytest.raises(AnalysisError, match=r"same.h5: its axes are parallel or zero \(cos\(δ1, δ2\) = 1"):
        trajectory([runs["a"]], [surface], tmp_path / "t.json")
    before = tree_state(tmp_path)
    exits_2_with_one_line(
        lambda: trajectory([runs["a"]], [surface], tmp_path / "t.json"), f"{surface}: its axes are parallel"
    )
    assert_changes_only_under(before, tmp_path)


def test_the_same_input_twice_is_not_two_seeds(runs, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copy(runs["plane"], copy)
    for paths in ([str(runs["plane"]), str(runs["plane"])], [str(runs["plane"]), str(copy)]):
        with pytest.raises(AnalysisError, match=r"surfaces: .* are (the same file|identical files).*n = 2"):
            refuse_repeats(paths, "surface/surfaces")
    refuse_repeats([str(runs["plane"]), str(runs["line"])], "surfaces")  # two surfaces: fine


@pytest.mark.parametrize("twice", ["the same path", "a copy"])
def test_bertviz_analyze_refuses_one_surface_given_as_two_seeds(runs, tmp_path, twice):
    """Was: n = 2, std 0 — a spread that is no spread. At the command: exit 2, no JSON."""
    from bertviz_landscape.cli.analyze import run as analyze
    from bertviz_landscape.cli.compose import compose

    second = runs["plane"] if twice == "the same path" else shutil.copy(runs["plane"], tmp_path / "copy.h5")
    out = tmp_path / "out" / "consistency.json"
    cfg = compose(
        "analyze", ["analysis=consistency", f"surfaces=[{runs['plane']},{second}]", f"output={out}"]
    )
    before, shared = tree_state(tmp_path), tree_state(runs["root"])
    exits_2_with_one_line(lambda: analyze(cfg), "surfaces: ", str(second), "n = 2")
    assert_changes_only_under(before, tmp_path)
    assert_changes_only_under(shared, runs["root"])  # the surface and its runs as they were
    assert not out.exists()


def test_nan_at_theta1_is_no_basin_not_a_zero_area_one():
    z = np.ones((3, 3))
    z[1, 1] = np.nan
    assert basin_area(z, 1, 1, 1.5) == (None, None)
    z[1, 1] = 0.5
    assert basin_area(z, 1, 1, 0.7) == (1, False)  # a real one-point basin stays one point


def test_a_surface_with_nan_at_theta1_reports_no_area_and_no_bound():
    """Was: `area_ε = 0.0, bounded: true` with every width null, a false zero-area basin."""
    from bertviz_landscape.analysis.flatness import flatness_of_surface
    from bertviz_landscape.engine.surface import Surface

    x, y = np.linspace(-0.5, 1.5, 5), np.linspace(-0.5, 0.5, 3)
    z = np.ones((3, 5))
    z[1, 3] = np.nan  # (α, β) = (1, 0): θ1
    meta = {"directions": {"norm_x": 2.0, "norm_y": 2.0, "cosine_xy": 0.0}}
    out = flatness_of_surface(Surface(x, y, {"train_loss": z}, meta), "s.h5", epsilons=(0.1, 0.5))
    assert out["center"] == [1.0, 0.0]
    for k in ("0.1", "0.5"):
        assert out["area"][k]["points"] is None and out["area"][k]["bounded"] is None
        assert out["area"][k]["absolute_sq"] is None
        assert out["width"]["x"][k]["width"] is None and out["width"]["x"][k]["bounded"] is None
        assert out["width"]["y"][k]["width"] is None


def test_a_grid_that_cannot_fit_is_refused_with_its_size():
    big = {"x": {"min": -1, "max": 1, "num": 100_000}, "y": {"min": -1, "max": 1, "num": 100_000}}
    with pytest.raises(LandscapeError, match=r"grid 100000 × 100000 = 1e\+10 points.*GB.*at most 1e\+07"):
        Grid.parse(big)
    exits_2_with_one_line(lambda: Grid.parse(big), "grid 100000 × 100000 = 1e+10 points", "GB")
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
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: load_model(ckpt), f"checkpoint {weights}: cannot read its weights")
    assert_changes_only_under(before, tmp_path)


@pytest.mark.parametrize("meta", ["{not json", '{"format": "bertviz-sketches/1"}', "[1, 2]"])
def test_garbage_sketch_meta_names_the_file(runs, tmp_path, meta):
    d = tmp_path / "sketches"
    shutil.copytree(RunDir(runs["a"]).sketches, d)
    fmt = json.loads((d / "meta.json").read_text())["format"]
    (d / "meta.json").write_text(meta.replace("bertviz-sketches/1", fmt))
    with pytest.raises(SketchError, match=r"sketches/meta.json: "):
        Sketches(d)
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: Sketches(d), f"{d / 'meta.json'}: ")
    assert_changes_only_under(before, tmp_path)


def test_full_disk_while_writing_snapshots_is_one_error_naming_them(runs, tmp_path, monkeypatch):
    from bertviz_landscape.contracts import snapshots as snapshot_module

    real = snapshot_module.write_image

    def full_disk(path, image):
        if "00000003" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, image)

    monkeypatch.setattr(snapshot_module, "write_image", full_disk)
    run = RunDir(tmp_path / "run")
    before = tree_state(runs["root"])
    exits_2_with_one_line(
        lambda: train(tiny_train_cfg(runs["glue"], "trainer.max_epochs=2"), run.root),
        f"writing a weight snapshot to {run.snapshots}",
        "No space left",
    )
    assert isinstance(OutputError("x"), BadInput)  # exit status 2 at the CLI
    assert not list(run.root.rglob(".*.tmp")) and not run.metrics_json.exists()
    assert_changes_only_under(before, runs["root"])  # the data and the other runs untouched
    kept = [json.loads(line)["step"] for line in (run.snapshots / "index.jsonl").read_text().splitlines()]
    assert kept and max(kept) < 3  # the snapshots finished before the disk filled are still listed


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
    before = tree_state(tmp_path)
    exits_2_with_one_line(
        lambda: write_result(out, result("/b/runs/mrpc_scratch_seed0")), str(out), "overwrite=true"
    )
    assert_changes_only_under(before, tmp_path)
    assert json.loads(out.read_text())["inputs"]["runs"] == ["/a/runs/mrpc_scratch_seed0"]
    write_result(out, result("/b/runs/mrpc_scratch_seed0"), overwrite=True)
    assert json.loads(out.read_text())["inputs"]["runs"] == ["/b/runs/mrpc_scratch_seed0"]


@pytest.mark.parametrize("differ", ["two seeds", "two grid sizes"])
def test_two_surfaces_of_one_task_init_recipe_grid_get_their_own_figures(tmp_path, differ):
    """Was: the second overwrote the first one's figures and the report gave one image to both."""
    from bertviz_landscape.engine.surface import Surface, write_surface
    from bertviz_landscape.plots.results import draw_all

    names = []
    for k in (0, 1):
        seed, size = (k, (5, 3)) if differ == "two seeds" else (0, ((5, 3), (9, 5))[k])
        x, y = np.linspace(-0.5, 1.5, size[0]), np.linspace(-0.5, 0.5, size[1])
        X, Y = np.meshgrid(x, y)
        z = (X - 1) ** 2 + Y**2 + seed
        values = {"train_loss": z, "dev_loss": z + 0.1, "dev_error": np.clip(z / 10, 0, 1)}
        names.append(
            f"mrpc_pretrained_seed{seed}_plane" + ("" if differ == "two seeds" else f"_{size[0]}x{size[1]}")
        )
        write_surface(
            tmp_path / "r" / f"{names[-1]}.h5",
            Surface(x, y, values, {"task": "mrpc", "grid": {"name": "plane"}}),
        )
    before = tree_state(tmp_path)
    manifest = draw_all(tmp_path / "r", interactive=False, formats=("png",))
    assert_changes_only_under(before, tmp_path, tmp_path / "r" / "figures")  # the surfaces as they were
    planes = [f for f in manifest["figures"] if f["kind"] == "surface2d"]
    assert len(planes) == 2
    files = [tuple(f["files"]) for f in planes]
    assert len(set(files)) == 2 and not set(files[0]) & set(files[1])  # not one image attributed to both
    figures = tmp_path / "r" / "figures"
    assert all(Path(f).is_file() and Path(f).is_relative_to(figures) for t in files for f in t)
    assert {Path(f["sources"][0]).name for f in planes} == {f"{n}.h5" for n in names}


def test_a_negative_loss_in_a_surface_is_refused_naming_the_key(tmp_path):
    from bertviz_landscape.engine.surface import Surface, load_surface, write_surface

    x = np.linspace(0, 1, 3)
    path = write_surface(tmp_path / "s.h5", Surface(x, None, {"train_loss": np.array([0.7, -5.0, 0.6])}))
    with pytest.raises(LandscapeError, match=r"s.h5: train_loss has negative values \(min -5\)"):
        load_surface(path)
    exits_2_with_one_line(lambda: load_surface(path), f"surface file {path}: train_loss has negative values")
    from bertviz_landscape.plots.results import draw_all

    before = tree_state(tmp_path)
    manifest = draw_all(tmp_path, interactive=False, formats=("png",))  # a plot skips it, naming it
    assert [Path(s["path"]).name for s in manifest["skipped"]] == ["s.h5"] and not manifest["figures"]
    assert path not in assert_changes_only_under(before, tmp_path, tmp_path / "figures")  # left as it was


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
    before = tree_state(tmp_path)
    exits_2_with_one_line(
        lambda: Sketches(d).rows(),
        f"sketch.f32: the sketch rows of steps [{sk.records[2].step}] are not finite",
    )
    assert_changes_only_under(before, tmp_path)


@pytest.mark.parametrize("two_d", [False, True], ids=["line", "plane"])
def test_a_direction_file_of_the_same_shape_but_another_seed_is_refused(tmp_path, two_d):
    """Filter-normalised random axes of another seed have the same shapes and the same norms: only
    the recipe's settings tell them apart (was: accepted for a line, α ≈ 0 throughout)."""
    import torch

    from bertviz_landscape.engine.direction_file import (
        check_matches_surface,
        read_directions,
        write_directions,
    )
    from bertviz_landscape.engine.directions import random_directions
    from bertviz_landscape.engine.surface import Surface, write_surface

    gen = torch.Generator().manual_seed(0)
    center = {"encoder.w": torch.randn(8, 16, generator=gen), "head.w": torch.randn(2, 16, generator=gen)}
    own, other = (random_directions(center, list(center), two_d, seed=s) for s in (0, 1))
    assert abs(own.summary()["norm_x"] - other.summary()["norm_x"]) < 1e-4 * own.summary()["norm_x"]
    x = np.linspace(-1, 1, 3)
    y = np.linspace(-1, 1, 2) if two_d else None
    z = np.ones((2, 3)) if two_d else np.ones(3)
    surface_path = write_surface(
        tmp_path / "s.h5", Surface(x, y, {"train_loss": z}, {"task": "mrpc", "directions": own.summary()})
    )
    from bertviz_landscape.engine.surface import load_surface

    surface = load_surface(surface_path)
    for directions, name in ((own, "own.h5"), (other, "other.h5")):
        write_directions(tmp_path / name, directions, "key", {})
    check_matches_surface(*read_directions(tmp_path / "own.h5"), tmp_path / "own.h5", surface, surface_path)
    before = tree_state(tmp_path)
    line = exits_2_with_one_line(
        lambda: check_matches_surface(
            *read_directions(tmp_path / "other.h5"), tmp_path / "other.h5", surface, surface_path
        ),
        f"direction file {tmp_path / 'other.h5'} is not the one surface {surface_path}",
        "seed 1 vs the surface's 0",
    )
    assert "\n" not in line
    assert_changes_only_under(before, tmp_path)
