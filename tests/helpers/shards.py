"""The sharded-landscape tests' reference: `reference` (module fixture: the single-process
surface on `GRID`), `assert_same_surface`, `cli_args` (the bertviz-landscape arguments for it)."""

from __future__ import annotations

import numpy as np
import pytest

from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.engine.sweep import landscape
from helpers.landscape import data_cfg

GRID = {
    "x": {"min": -0.5, "max": 1.5, "num": 4},
    "y": {"min": -1.0, "max": 1.0, "num": 3},
}  # 12 points, non-square


def _single(tiny_run, out, grid=GRID, **kw):
    return landscape(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        output=out,
        grid=grid,
        directions={"name": "difference"},
        data=data_cfg(tiny_run),
        theta2=tiny_run["theta2"],
        progress=False,
        **kw,
    )


@pytest.fixture(scope="module")
def reference(tiny_run, tmp_path_factory):
    res = _single(tiny_run, tmp_path_factory.mktemp("ref") / "single.h5")
    assert res.evaluated == 12
    return load_surface(res.surface)


def assert_same_surface(a, b):
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert sorted(a.keys()) == sorted(b.keys())
    for k in a.keys():
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)


def cli_args(tiny_run, out, tmp_path):
    d = data_cfg(tiny_run)
    return [
        "task=mrpc",
        f"theta0={tiny_run['theta0']}",
        f"theta1={tiny_run['theta1']}",
        f"theta2={tiny_run['theta2']}",
        "grid=demo",
        "grid.x.num=4",
        "grid.y.num=3",
        "grid.y.min=-1.0",
        "grid.y.max=1.0",
        f"output={out}",
        f"paths.output_dir={tmp_path / 'outputs'}",
        "progress=false",
        f"data.glue_dir={d['glue_dir']}",
        f"data.cache_dir={d['cache_dir']}",
        "data.max_length=32",
        "data.eval_batch_size=4",
        "data.max_train_samples=null",
    ]
