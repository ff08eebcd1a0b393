"""Shards: joblib multirun merges equal one process; a killed shard resumes with only missing points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.landscape import data_cfg, tiny_run  # noqa: F401  (fixture)
from helpers.shards import (
    GRID,
    _single,
    assert_same_surface,
    cli_args,
    reference,  # noqa: F401  (fixture)
)

from bertviz_landscape.engine.grid import Grid
from bertviz_landscape.engine.shards import merge_parts
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.plots.results import draw_all


@pytest.mark.parametrize(
    "num_shards", [2, pytest.param(3, marks=pytest.mark.slow)]
)  # 3 shards: make test-all
def test_joblib_shards_merge_to_single_process_surface(tiny_run, reference, tmp_path, num_shards):
    out = tmp_path / "sharded.h5"
    shards = ",".join(str(s) for s in range(num_shards))
    cmd = [
        sys.executable,
        "-m",
        "bertviz_landscape.cli.landscape",
        "-m",
        f"shard={shards}",
        f"num_shards={num_shards}",
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={num_shards}",
        *cli_args(tiny_run, out, tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.is_file(), "the last shard to finish merges automatically"
    assert_same_surface(load_surface(out), reference)
    parts = next((tmp_path / "sharded.h5.parts").iterdir())
    assert len(list(parts.glob("points-*.jsonl"))) == num_shards


def test_killed_shard_reruns_only_missing_points(tiny_run, reference, tmp_path):
    out = tmp_path / "resumed.h5"

    class Killed(Exception):
        pass

    seen = []

    def die_after_5(k, values):
        seen.append(k)
        if len(seen) == 5:
            raise Killed

    with pytest.raises(Killed):
        _single(tiny_run, out, on_point=die_after_5)
    assert not out.exists()
    # a torn last line, as a SIGKILL mid-write would leave
    parts = next((tmp_path / "resumed.h5.parts").iterdir())
    with open(next(parts.glob("points-*.jsonl")), "a") as f:
        f.write('{"k": 7, "values": {"dev_lo')
    res = _single(tiny_run, out)
    assert (res.evaluated, res.skipped) == (12 - 5, 5)
    assert_same_surface(load_surface(out), reference)
    again = _single(tiny_run, out)
    assert (again.evaluated, again.skipped) == (0, 12)


def test_shards_resume_and_merge_by_command(tiny_run, reference, tmp_path):
    out = tmp_path / "manual.h5"
    first = _single(tiny_run, out, shard=0, num_shards=3, merge=False)
    second = _single(tiny_run, out, shard=1, num_shards=3)
    assert (first.evaluated, second.evaluated) == (4, 4) and second.surface is None and not out.exists()
    from bertviz_landscape.contracts.errors import LandscapeError

    with pytest.raises(LandscapeError, match="4 of 12 points are missing"):
        merge_parts(first.parts, out)
    third = _single(tiny_run, out, shard=2, num_shards=3, merge=False)
    assert third.surface is None and not out.exists()
    merge_parts(third.parts, out)
    assert_same_surface(load_surface(out), reference)
    # a re-run with another shard count finds every point done
    assert _single(tiny_run, out, shard=0, num_shards=2).evaluated == 0


def test_a_named_grid_names_the_surface_and_its_figures(tiny_run, tmp_path):
    """grid=demo's name reaches the surface file (and its merge from shards), and the figures
    drawn from it are named after it, not after the default 'plane'."""
    root = tmp_path / "results"
    out = root / "surfaces" / "mrpc_pretrained_demo.h5"
    res = _single(tiny_run, out, grid={"name": "demo", **GRID})
    surface = load_surface(res.surface)
    assert surface.meta["grid"]["name"] == "demo"
    assert np.shape(surface["train_loss"]) == (3, 4)  # [ny, nx]: rows are y
    manifest = draw_all(root, interactive=False, formats=("png",))
    names = [Path(f).name for fig in manifest["figures"] for f in fig["files"]]
    assert names and all("demo" in n and "plane" not in n for n in names if "surface" in n), names


def test_the_grid_shape_is_the_surface_layout():
    grid = Grid.parse({"x": {"min": 0, "max": 1, "num": 4}, "y": {"min": 0, "max": 1, "num": 3}})
    assert grid.shape == (3, 4) and grid.size == 12
    assert grid.index(5) == (2, 1)  # k = i·ny + j: i = 1, j = 2 -> row j, column i
    assert grid.coordinate(5) == (pytest.approx(1 / 3), pytest.approx(1.0))
