"""End to end per architecture: train one epoch, the 1D curve against plain transformers, the layers analysis.

Each tiny random classifier (tests/tiny_archs.py) stands in for a pretrained model
(`model.name_or_path=<dir>`, `init=pretrained`), trains one epoch on a tiny MRPC, and then:
its dev loss at α = 0.5 of the difference curve equals θ0 + 0.5(θ1 − θ0) evaluated with plain
transformers on the same examples, and the layers analysis lists the right blocks.
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_train_cfg, write_glue
from tiny_archs import ARCHS, BLOCKS, HAS_POOLER, save_tiny

from bertviz_landscape.analysis.layers import layers
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.engine.sweep import landscape
from bertviz_landscape.training.data.glue import load_glue_split
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.data.tokenize import takes_token_type_ids
from bertviz_landscape.training.train import train

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # ~10 s per architecture


def plain_dev_loss(theta0, theta1, alpha, glue_dir) -> float:
    """Mean dev cross-entropy at θ0 + α(θ1 − θ0): plain transformers, one padded batch."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    m = AutoModelForSequenceClassification.from_pretrained(str(theta0)).eval()
    s1 = AutoModelForSequenceClassification.from_pretrained(str(theta1)).state_dict()
    m.load_state_dict(
        {k: v + alpha * (s1[k] - v) if v.is_floating_point() else v for k, v in m.state_dict().items()}
    )
    tok = AutoTokenizer.from_pretrained(str(theta0))
    dev = load_glue_split(get_task("mrpc"), "dev", glue_dir)
    enc = tok(
        list(dev["text_a"]),
        list(dev["text_b"]),
        truncation=True,
        max_length=128,
        padding=True,
        return_tensors="pt",
    )
    if not takes_token_type_ids(AutoConfig.from_pretrained(str(theta0))):
        enc.pop("token_type_ids", None)
    with torch.no_grad():
        logits = m(**enc).logits
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor(list(dev["label"]))))


@pytest.mark.parametrize("arch", ARCHS)
def test_trains_and_landscapes_every_architecture(arch, tmp_path):
    glue = write_glue(tmp_path / "glue")
    source = save_tiny(arch, tmp_path / f"tiny-{arch}")
    run = tmp_path / "run"
    cfg = tiny_train_cfg(
        glue,
        "init=pretrained",
        "init.lr=3e-3",  # steps that move the loss well beyond the comparison's tolerance
        f"model.name_or_path={source}",
        "model.config_overrides={}",
        "callbacks=none",
    )
    train(cfg, run)
    theta0, theta1 = run / "checkpoints" / "init", run / "checkpoints" / "final"
    data = {"glue_dir": str(glue), "max_length": 128, "eval_batch_size": 5, "cache_dir": str(tmp_path / "c")}
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
    assert surf.x[1] == 0.5
    ref = plain_dev_loss(theta0, theta1, 0.5, glue)
    assert surf["dev_loss"][1] == pytest.approx(ref, rel=1e-6), (arch, surf["dev_loss"][1], ref)
    # training moved the loss far beyond the tolerance: the comparison can tell α = 0.5 from its neighbours
    assert abs(surf["dev_loss"][0] - surf["dev_loss"][2]) > 1e-2 * ref

    out = layers(
        [run],
        alpha={"min": 0.0, "max": 1.0, "num": 2},
        max_train_samples=None,
        max_eval_samples=None,
        data=data,
        device="cpu",
        rollback=False,
    )
    entry = out["per_run"][0]
    blocks = [f"layer.{i}" for i in range(BLOCKS[arch])]
    assert entry["layers"] == ["embeddings", *blocks, *(["pooler"] if HAS_POOLER.get(arch) else []), "head"]
    # ALBERT's one parameter group runs at every depth: the analysis says what its layers mean
    assert ("parameter_sharing" in entry) == (arch == "albert")
    # α = 1 of every per-layer curve is θ1 itself: the same dev loss as the curve's end point
    for layer in entry["layers"]:
        assert entry["curves"][layer]["dev_loss"][1] == pytest.approx(surf["dev_loss"][2], rel=1e-5)
