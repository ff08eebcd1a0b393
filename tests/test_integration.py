"""End to end on real data: the packaged MiniLM fine-tuned and trained from scratch on real MRPC."""

from __future__ import annotations

import pytest

from bertviz_landscape.snapshots import Snapshots
from bertviz_landscape.train import train

from conftest import REAL_GLUE, compose_train, evaluate_with_plain_transformers

pytestmark = pytest.mark.skipif(not REAL_GLUE.is_dir(), reason="real GLUE TSVs not found (set GLUE_DIR)")


@pytest.mark.parametrize("init", ["pretrained", "scratch"])
def test_minilm_on_real_mrpc_slice(tmp_path, init):
    cfg = compose_train([
        "task=mrpc", f"init={init}", "model=minilm", "logger=csv", f"data.glue_dir={REAL_GLUE}",
        "data.max_train_samples=64", "data.max_eval_samples=64", "trainer.max_epochs=1",
        "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "callbacks.snapshots.every_n_steps=1",
    ])
    run = tmp_path / init
    result = train(cfg, run)
    assert result["steps"] == 2 and result["dev_examples"] == 64 and result["model"] == "all-minilm-l6-v2"
    assert 0.0 <= result["dev"]["val/accuracy"] <= 1.0
    # θ1 reloads with plain transformers and reproduces the logged dev metrics
    loss, accuracy = evaluate_with_plain_transformers(run / "checkpoints" / "final", "mrpc", REAL_GLUE, max_samples=64)
    assert accuracy == pytest.approx(result["dev"]["val/accuracy"], abs=1e-6)
    assert loss == pytest.approx(result["dev"]["val/loss"], rel=1e-4)
    snaps = Snapshots(run)
    assert snaps.steps == [1, 2] and len(snaps.parameter_names) == 5 + 6 * 16 + 2 + 2  # embeddings, 6 layers, pooler, head
