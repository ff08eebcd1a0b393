"""Acceptance on real data: the 1D difference curve of a MiniLM MRPC run vs plain transformers.

dev loss at α = 0, 0.5, 1 over the full MRPC dev set equals the mean cross-entropy of
θ0 + α(θ1 − θ0) computed independently with plain transformers, to 1e-4 relative (fp32).

θ0/θ1 come from a short `train()` run (MiniLM, 128 MRPC train examples, 4 AdamW steps), or
from the run BVL_MRPC_RUN points at (<run>/checkpoints/{init,final}).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

GLUE = Path(os.environ.get("GLUE_DIR", "/work/shared/data/glue"))

pytestmark = [
    # ~70 s (a real MiniLM run + curve); make test-all. make test keeps the tiny-model equivalence tests
    pytest.mark.slow,
    pytest.mark.skipif(not (GLUE / "MRPC" / "dev.tsv").is_file(), reason="real GLUE MRPC not available"),
]


def _read(split):
    with open(GLUE / "MRPC" / f"{split}.tsv", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


@pytest.fixture(scope="module")
def mrpc_run(tmp_path_factory):
    """θ0/θ1 of a real (short) `bertviz-train` run: MiniLM fine-tuned on 128 MRPC train examples."""
    run = os.environ.get("BVL_MRPC_RUN")
    if not run:
        from conftest import compose_train

        from bertviz_landscape.training.train import train

        run = tmp_path_factory.mktemp("mrpc_run")
        train(
            compose_train(
                [
                    "task=mrpc",
                    "init=pretrained",
                    "model=minilm",
                    "logger=none",
                    "callbacks=none",
                    f"data.glue_dir={GLUE}",
                    "data.max_train_samples=128",
                    "data.max_eval_samples=32",
                    "trainer.max_epochs=1",
                    "trainer.accelerator=cpu",
                    "trainer.enable_progress_bar=false",
                ]
            ),
            run,
        )
    return Path(run) / "checkpoints" / "init", Path(run) / "checkpoints" / "final"


def plain_transformers_dev_loss(theta0, theta1, alpha):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    m0 = AutoModelForSequenceClassification.from_pretrained(str(theta0)).eval()
    s1 = AutoModelForSequenceClassification.from_pretrained(str(theta1)).state_dict()
    m0.load_state_dict(
        {k: v + alpha * (s1[k] - v) if v.is_floating_point() else v for k, v in m0.state_dict().items()}
    )
    tok = AutoTokenizer.from_pretrained(str(theta0))
    rows = _read("dev")
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(rows), 64):
            chunk = rows[i : i + 64]
            enc = tok(
                [r["#1 String"] for r in chunk],
                [r["#2 String"] for r in chunk],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
            )
            labels = torch.tensor([int(r["Quality"]) for r in chunk])
            total += float(torch.nn.functional.cross_entropy(m0(**enc).logits, labels, reduction="sum"))
    return total / len(rows)


def test_mrpc_difference_curve_matches_plain_transformers(mrpc_run, tmp_path):
    from bertviz_landscape.engine.surface import load_surface
    from bertviz_landscape.engine.sweep import landscape

    theta0, theta1 = mrpc_run
    data = {
        "glue_dir": str(GLUE),
        "max_eval_samples": None,
        "subset_seed": 0,
        "max_length": 128,
        "eval_batch_size": 64,
        "cache_dir": str(tmp_path / "cache"),
    }
    res = landscape(
        task="mrpc",
        theta0=theta0,
        theta1=theta1,
        output=tmp_path / "curve.h5",
        grid={"x": {"min": 0.0, "max": 1.0, "num": 3}},
        directions={"name": "difference"},
        data=data,
        splits=["dev"],
        progress=False,
    )
    surf = load_surface(res.surface)
    assert surf.meta["data"]["splits"]["dev"]["num_examples"] == len(_read("dev")) == 408
    for i, alpha in enumerate((0.0, 0.5, 1.0)):
        assert surf.x[i] == alpha
        ref = plain_transformers_dev_loss(theta0, theta1, alpha)
        assert surf["dev_loss"][i] == pytest.approx(ref, rel=1e-4), (alpha, surf["dev_loss"][i], ref)
