"""End to end on real data: the packaged MiniLM fine-tuned and trained from scratch on real MRPC."""

from __future__ import annotations

import pytest
from conftest import REAL_GLUE, compose_train, evaluate_with_plain_transformers

from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.training.train import train

pytestmark = pytest.mark.skipif(not REAL_GLUE.is_dir(), reason="real GLUE TSVs not found (set GLUE_DIR)")


@pytest.mark.parametrize(
    "init", ["pretrained", pytest.param("scratch", marks=pytest.mark.slow)]
)  # scratch: make test-all
def test_minilm_on_real_mrpc_slice(tmp_path, init):
    cfg = compose_train(
        [
            "task=mrpc",
            f"init={init}",
            "model=minilm",
            "logger=csv",
            f"data.glue_dir={REAL_GLUE}",
            "data.max_train_samples=64",
            "data.max_eval_samples=64",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "callbacks.snapshots.every_n_steps=1",
        ]
    )
    run = tmp_path / init
    result = train(cfg, run)
    assert result["steps"] == 2 and result["dev_examples"] == 64 and result["model"] == "all-minilm-l6-v2"
    assert 0.0 <= result["dev"]["val/accuracy"] <= 1.0
    # θ1 reloads with plain transformers and reproduces the logged dev metrics
    loss, accuracy = evaluate_with_plain_transformers(
        run / "checkpoints" / "final", "mrpc", REAL_GLUE, max_samples=64
    )
    assert accuracy == pytest.approx(result["dev"]["val/accuracy"], abs=1e-6)
    assert loss == pytest.approx(result["dev"]["val/loss"], rel=1e-4)
    snaps = Snapshots(run)
    assert (
        snaps.steps == [1, 2] and len(snaps.parameter_names) == 5 + 6 * 16 + 2 + 2
    )  # embeddings, 6 layers, pooler, head


def test_training_run_feeds_the_landscape(glue_dir, tmp_path):
    """The stage contract: a run's checkpoints and snapshots are what the landscape reads.

    On the run's own dev set, the difference curve at α = 1 is θ1, so it must reproduce the
    dev loss and error that training logged; PCA directions come from the run's fp16 snapshots.
    """
    from conftest import tiny_train_cfg

    from bertviz_landscape.engine import load_surface
    from bertviz_landscape.engine.sweep import landscape

    run = tmp_path / "run"
    result = train(tiny_train_cfg(glue_dir, "task=rte", "trainer.max_epochs=2"), run)
    data = {
        "glue_dir": str(glue_dir),
        "max_train_samples": None,
        "max_eval_samples": None,
        "subset_seed": 0,
        "max_length": 128,
        "eval_batch_size": 8,
        "cache_dir": str(tmp_path / "cache"),
    }
    curve = landscape(
        run=run,
        output=tmp_path / "curve.h5",
        grid={"x": {"min": 0.0, "max": 1.0, "num": 3}},
        directions={"name": "difference"},
        data=data,
        progress=False,
    )
    surface = load_surface(curve.surface)
    assert surface["dev_loss"][2] == pytest.approx(result["dev"]["val/loss"], rel=1e-5)
    assert surface["dev_error"][2] == pytest.approx(1 - result["dev"]["val/accuracy"], abs=1e-6)

    pca = landscape(
        run=run,
        output=tmp_path / "pca.h5",
        grid={"x": {"min": -1.0, "max": 1.0, "num": 3}, "y": {"min": -1.0, "max": 1.0, "num": 2}},
        directions={"name": "pca"},
        data=data,
        progress=False,
    )
    plane = load_surface(pca.surface)
    assert plane["train_loss"].shape == (2, 3)  # [ny, nx]
    ratios = pca.directions["explained_variance_ratio"]
    assert len(ratios) == 2 and ratios[0] >= ratios[1] > 0 and sum(ratios) <= 1 + 1e-9
