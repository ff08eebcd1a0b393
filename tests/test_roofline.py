"""benchmarks/roofline.py: the matmul FLOPs it counts against torch's own count, and its table."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def roofline():
    return load_benchmark("roofline")


@pytest.mark.parametrize(("batch", "length", "labels"), [(3, 11, 2), (2, 17, 3), (1, 5, 1)])
def test_matmul_flops_equal_torchs_count_on_the_tiny_model(roofline, batch, length, labels):
    """A forward pass, and forward + backward, of the tiny BERT classifier: our count from the
    shapes equals FlopCounterMode's count of the matrix products torch actually ran."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=labels,
        attn_implementation="eager",  # every matrix product as a matmul FlopCounterMode counts
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    ids = torch.randint(0, 100, (batch, length))
    with FlopCounterMode(display=False) as forward:
        model(input_ids=ids)
    assert forward.get_total_flops() == roofline.matmul_flops(config, batch, length, labels)
    with FlopCounterMode(display=False) as step:
        model(input_ids=ids).logits.sum().backward()
    # a training step: 3x the forward (each product's backward is two products of its size)
    assert step.get_total_flops() == roofline.matmul_flops(config, batch, length, labels, train=True)


def test_table_rows_from_stage_records(roofline, tmp_path):
    """A stage with its work gets the fraction of the binding limit; one without is 'not counted'."""
    stages = tmp_path / ".stages"
    stages.mkdir()
    (stages / "a.json").write_text(json.dumps({"stage": "plane x", "seconds": 10.0, "work": {"flops": 2e12}}))
    (stages / "b.json").write_text(json.dumps({"stage": "train x", "seconds": 4.0, "work": {"bytes": 8e9}}))
    (stages / "c.json").write_text(json.dumps({"stage": "figures", "seconds": 1.0}))
    limits = {"fp32_flops": 1e12, "bytes_per_s": 4e9}
    table = {r["stage"]: r for r in roofline.rows(tmp_path, limits)}
    assert table["plane x"]["fraction"] == pytest.approx(0.2) and table["plane x"]["bound"] == "matmul"
    assert table["train x"]["fraction"] == pytest.approx(0.5) and table["train x"]["bound"] == "memory"
    assert "fraction" not in table["figures"]
    text = roofline.markdown(list(table.values()), limits)
    assert (
        "| figures | not counted | 1.0 s | — | — |" in text
        and "| plane x | 2 TFLOP | 10.0 s | 0.20 | matmul |" in text
        and "| train x | 8 GB | 4.0 s | 0.50 | memory |" in text
    )


def test_work_shows_the_padding_share(roofline):
    work = {"flops": 2e12, "flops_unpadded": 1.5e12, "bytes": 3.1e9}
    assert roofline.describe_work(work) == "2 TFLOP (25 % padding), 3.1 GB"


@pytest.mark.slow
def test_every_model_stage_of_a_tiny_demo_records_its_work(roofline, tmp_path, monkeypatch):
    """The tiny demo (one seed; training, lines, planes, flatness, layers): each stage's record
    holds its work, equal to torch's own count of the products its models ran
    (FlopCounterMode, the model's module: CKA's own products are not the model's); the table
    has a row with a fraction and a bound for each."""
    import contextlib
    import io

    from conftest import TINY_MODEL, write_glue
    from helpers.demo import tiny_demo_cfg
    from helpers.work import torch_count

    import bertviz_landscape.pipeline.work as pipeline_work
    from bertviz_landscape.cli.demo import demo
    from bertviz_landscape.contracts.checkpoints import save_checkpoint
    from bertviz_landscape.training.data import get_task
    from bertviz_landscape.training.models import build_initial_model, load_tokenizer

    model = build_initial_model(
        "all-minilm-l6-v2", get_task("mrpc"), "scratch", 123, config_overrides=TINY_MODEL
    )
    pretrained = save_checkpoint(
        model.base_model, load_tokenizer("all-minilm-l6-v2"), tmp_path / "pretrained"
    )
    glue = write_glue(tmp_path / "glue", n_train=32, n_dev=16)
    counted: dict[str, int] = {}
    metering, stage_work = pipeline_work.metering, pipeline_work.stage_work

    @contextlib.contextmanager
    def also_torch():
        with torch_count() as torch_flops, metering() as tally:
            yield tally
        models = {k: sum(v.values()) for k, v in torch_flops.get_flop_counts().items() if "." not in k}
        counted[id(tally)] = sum(n for k, n in models.items() if k != "Global")

    def work_and_torch(name, tally):
        return {**stage_work(name, tally), "torch_flops": counted[id(tally)]}

    monkeypatch.setattr(pipeline_work, "metering", also_torch)
    monkeypatch.setattr(pipeline_work, "stage_work", work_and_torch)
    root = tmp_path / "demo"
    flags = {"seeds": "[0]", "figures": "false", "wandb_media": "false", "report": "false"}
    demo(tiny_demo_cfg(root, pretrained, glue, ["flatness", "layers"], **flags), out=io.StringIO())

    records = [json.loads(p.read_text()) for p in sorted((root / ".stages").glob("*.json"))]
    kinds = {r["stage"].split()[0] for r in records}
    assert kinds == {"train", "line", "plane", "flatness", "layers"}
    for r in records:
        work = r["work"]
        assert work["flops"] == work["torch_flops"] > 0, r["stage"]
        assert work["kind"] == r["stage"].split()[0] and work["tokens"] > 0
    parts = {r["stage"].split()[0]: set(r["work"]["bytes_by_part"]) for r in records}
    assert parts["train"] == {"adamw", "snapshot delta"} and parts["plane"] == {"weight update"}

    limits = {"fp32_flops": 1e11, "bytes_per_s": 1e10}
    table = roofline.rows(root, limits)
    assert len(table) == len(records) and all(0 < r["fraction"] and r["bound"] for r in table)
    text = roofline.markdown(table, limits)
    assert all(f"| {r['stage']} | " in text for r in records) and "not counted" not in text
