"""The Python API: the README's notebook example on a tiny model, and the entrypoints' numbers."""

from __future__ import annotations

import json

import pytest

from bertviz_landscape import api
from bertviz_landscape.engine.surface import load_surface

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_thread"),
]  # ~25 s: a run, 2 surfaces, an analysis, figures


def test_notebook_example_train_curve_surface_analysis_figures(tmp_path, glue_dir):
    quiet = {"trainer": {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}}
    small = {"data": {"glue_dir": str(glue_dir), "batch_size": 8}, "trainer": {"max_epochs": 1}}
    out = tmp_path / "outputs"
    metrics = api.train_run(
        out / "mrpc",
        task="mrpc",
        model="tiny",
        init="scratch",
        logger="none",
        callbacks="none",
        **quiet | small,
    )
    assert metrics["task"] == "mrpc" and metrics["init"] == "scratch" and metrics["epochs"] == 1
    assert json.loads((out / "mrpc" / "metrics.json").read_text())["dev"] == metrics["dev"]
    api.train_run(
        out / "rte",
        task="rte",
        model="tiny",
        init="scratch",
        overrides=["logger=none", "callbacks=none"],
        **small,
    )
    data = {"data": {"glue_dir": str(glue_dir), "max_train_samples": 8, "cache_dir": str(tmp_path / "c")}}
    grid = {"x": {"min": 0.0, "max": 1.0, "num": 3}}
    curve = api.loss_curve(out / "mrpc", output=out / "curve.h5", grid=grid, progress=False, **data)
    sf = load_surface(curve.surface)
    assert list(sf.x) == [0.0, 0.5, 1.0] and sf["dev_loss"].shape == (3,)

    # the same request through the entrypoint's config path gives the same numbers
    from bertviz_landscape.cli.compose import compose
    from bertviz_landscape.cli.landscape import run as landscape_cli

    values = {
        "run": str(out / "mrpc"),
        "output": str(tmp_path / "cli.h5"),
        "grid": grid,
        "progress": False,
        **data,
    }
    cli = load_surface(landscape_cli(compose("landscape", ["grid=line"], values)).surface)
    assert list(cli["dev_loss"]) == list(sf["dev_loss"])

    plane = api.loss_surface(
        out / "mrpc",
        run2=out / "rte",
        output=out / "plane.h5",
        grid=grid | {"y": {"min": 0.0, "max": 1.0, "num": 2}},
        progress=False,
        **data,
    )
    assert load_surface(plane.surface)["train_loss"].shape == (2, 3)
    result = api.analyze(
        "layers",
        run=out / "mrpc",
        output=out / "layers.json",
        analysis={"alpha": {"min": 0.0, "max": 1.0, "num": 2}, "rollback": False},
        progress=False,
        **data,
    )
    assert result["per_run"][0]["layers"] == ["embeddings", "layer.0", "layer.1", "pooler", "head"]
    manifest = api.draw(out, report=False, interactive=False, formats=["png"])
    kinds = {f["kind"] for f in manifest["figures"]}
    assert kinds and all((out / "figures").glob("*.png"))
