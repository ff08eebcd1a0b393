"""A stage's useful work (contracts/work.py, pipeline/work.py) against torch's own count of the
matrix products it ran (torch.utils.flop_counter.FlopCounterMode), on the tiny model."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_train_cfg, write_glue
from helpers.landscape import data_cfg, tiny_run  # noqa: F401  (fixture)
from helpers.work import torch_count

from bertviz_landscape.contracts import work
from bertviz_landscape.contracts.work import PASS_MULTIPLIER, Shape, Tally, metering
from bertviz_landscape.pipeline.work import stage_kind, stage_work

aten = torch.ops.aten


def tiny_model(labels: int = 2):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    config.num_labels = labels
    torch.manual_seed(0)
    return BertForSequenceClassification(config).eval()


def padded_batch(lengths: list[int], width: int):
    ids = torch.randint(1, 100, (len(lengths), width))
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return ids, mask


@pytest.mark.parametrize("kind", ["forward", "train"])
def test_a_pass_padded_and_unpadded_equals_torchs_count(kind):
    """Padded: the batch as the kernels ran it. Unpadded: each sequence alone at its real length —
    the count of the real tokens' products, with no padding at all."""
    model = tiny_model(labels=3)
    ids, mask = padded_batch([11, 7, 3], width=11)
    tally = Tally()
    tally.add_pass(Shape.of(model), mask, kind)

    def run(i, m):
        out = model(input_ids=i, attention_mask=m).logits
        if kind == "train":
            out.sum().backward()

    with torch_count() as padded:
        run(ids, mask)
    with torch_count() as unpadded:
        for row, n in enumerate([11, 7, 3]):
            run(ids[row : row + 1, :n], mask[row : row + 1, :n])
    assert tally.flops == padded.get_total_flops()
    assert tally.flops_unpadded == unpadded.get_total_flops() < tally.flops
    assert (tally.tokens, tally.padded_tokens, tally.sequences) == (21, 33, 3)


def test_a_hessian_vector_product_is_nine_forward_passes():
    """PASS_MULTIPLIER["hvp"]: both of the project's HVP methods, counted by torch."""
    from bertviz_landscape.analysis.measures.hessian import HessianVectorProduct, hessian_parameters
    from bertviz_landscape.training.data.eval_sets import Batch
    from bertviz_landscape.training.data.tasks import get_task

    model = tiny_model()
    ids, mask = padded_batch([11, 7, 3], width=11)
    batch = Batch(ids, mask, None, torch.tensor([0, 1, 0]))
    for method in ("double_backward", "jvp"):
        op = HessianVectorProduct(model, [batch], get_task("mrpc"), hessian_parameters(model), method)
        with torch_count() as counted, metering() as tally:
            op(torch.randn(op.dim))
        assert tally.passes == {"hvp": 1} and tally.flops == counted.get_total_flops(), method
    forward = Tally()
    forward.add_pass(Shape.of(model), mask)
    assert tally.flops == PASS_MULTIPLIER["hvp"] * forward.flops


def test_nothing_is_counted_outside_a_meter_and_meters_nest():
    model = tiny_model()
    _, mask = padded_batch([4, 2], width=4)
    work.count_pass(model, mask)  # no meter open: nothing to count into, no error
    with metering() as outer:
        with metering() as inner:
            work.count_pass(model, mask)
            work.count_bytes("weight update", 10)
        work.count_pass(model, mask)
    assert inner.passes == {"forward": 1} and outer.passes == {"forward": 2}
    assert outer.bytes == {"weight update": 10} and not work.metering_open()


@pytest.mark.parametrize("two_d", [False, True])
def test_landscape_work_equals_torchs_count(tiny_run, tmp_path, two_d):  # noqa: F811
    """A line and a plane on the tiny model: the work entry's FLOPs are every matrix product the
    landscape ran (grid points × batches, the cache's fill and check), and its bytes the weight
    update of every point."""
    from bertviz_landscape.contracts.parameters import trainable_parameters
    from bertviz_landscape.engine.sweep import landscape

    grid = {"x": {"min": -0.5, "max": 1.5, "num": 3}}
    extra = {}
    if two_d:
        grid["y"] = {"min": -1.0, "max": 1.0, "num": 3}
        extra["theta2"] = tiny_run["theta2"]
    with torch_count() as counted, metering() as tally:
        landscape(
            task="mrpc",
            theta0=tiny_run["theta0"],
            theta1=tiny_run["theta1"],
            output=tmp_path / "s.h5",
            grid=grid,
            directions={"name": "difference"},
            data=data_cfg(tiny_run),
            progress=False,
            **extra,
        )
    entry = stage_work("plane x" if two_d else "line x", tally)
    assert entry["kind"] == ("plane" if two_d else "line")
    assert entry["flops"] == counted.get_total_flops() > 0
    points = 9 if two_d else 3
    batches = 3 + 3  # train: 12 examples, dev: 9, at eval_batch_size=4
    assert entry["passes"] == {"forward": points * batches}
    assert 0 < entry["flops_unpadded"] < entry["flops"]  # the tiny MRPC pads
    from transformers import AutoModelForSequenceClassification

    numel = sum(
        p.numel()
        for p in trainable_parameters(
            AutoModelForSequenceClassification.from_pretrained(tiny_run["theta0"])
        ).values()
    )
    xs, ys = [-0.5, 0.5, 1.5], ([-1.0, 0.0, 1.0] if two_d else [0.0])
    # p ← centre (8 bytes a parameter) with no direction used, else 12 per direction (p = c + α·δ1)
    per_point = [12 * ((x != 0) + (y != 0)) or 8 for x in xs for y in ys]
    assert entry["bytes_by_part"] == {"weight update": numel * sum(per_point)} and entry["bytes"] == (
        numel * sum(per_point)
    )


def test_landscape_work_counts_the_hidden_state_cache(tiny_run, tmp_path):  # noqa: F811
    """A direction confined to the top layer: the cache runs the layers below once per batch, and
    each point only the layers above — the count follows what ran, not the full model."""
    from bertviz_landscape.engine.sweep import landscape

    def run(layers_only: bool):
        with torch_count() as counted, metering() as tally:
            landscape(
                task="mrpc",
                theta0=tiny_run["theta0"],
                theta1=tiny_run["theta1"],
                output=tmp_path / f"s{layers_only}.h5",
                grid={"x": {"min": 0.0, "max": 1.0, "num": 3}},
                directions={"name": "difference", **({"params": "layer.1"} if layers_only else {})},
                data=data_cfg(tiny_run),
                progress=False,
            )
        return counted.get_total_flops(), tally

    full_counted, full = run(False)
    top_counted, top = run(True)
    assert full.flops == full_counted and top.flops == top_counted
    assert top.flops < full.flops


def test_training_work_equals_torchs_count(tmp_path):
    """A tiny training run: train steps (3× a forward), validation forwards, AdamW's 28 bytes per
    parameter per step and each snapshot's delta pass."""
    from bertviz_landscape.contracts.parameters import trainable_parameters
    from bertviz_landscape.contracts.rundir import RunDir
    from bertviz_landscape.contracts.snapshots import Snapshots
    from bertviz_landscape.training.train import train

    glue = write_glue(tmp_path / "glue", n_train=24, n_dev=12)
    cfg = tiny_train_cfg(glue, "callbacks.snapshots.every_n_steps=2", "callbacks.snapshots.dtype=bfloat16")
    with torch_count() as counted, metering() as tally:
        train(cfg, tmp_path / "run")
    entry = stage_work("train mrpc_scratch_seed0", tally)
    assert entry["kind"] == "train" and entry["flops"] == counted.get_total_flops()
    steps = 3  # 24 examples, batch 8, one epoch
    assert entry["passes"]["train"] == steps and entry["passes"]["forward"] >= 2  # validation batches
    run = RunDir(tmp_path / "run")
    from transformers import AutoModelForSequenceClassification

    numel = sum(
        p.numel()
        for p in trainable_parameters(AutoModelForSequenceClassification.from_pretrained(run.theta1)).values()
    )
    snapshots = len(Snapshots(run.snapshots).steps)
    assert entry["bytes_by_part"] == {
        "adamw": 28 * numel * steps,
        "snapshot delta": (8 + 2) * numel * snapshots,
    }


def test_stage_kinds():
    assert [
        stage_kind(n) for n in ("train sst2_scratch_seed0", "plane sst2_x", "flatness sst2_x", "report")
    ] == [
        "train",
        "plane",
        "flatness",
        "report",
    ]
