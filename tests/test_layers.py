"""analysis=layers on a tiny run: roll-backs and curves against plain transformers, relative
change by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_analysis_support import make_run_dir
from test_landscape_support import build_tiny, data_cfg, tiny_run  # noqa: F401  (fixture)

import bertviz_landscape.analysis  # noqa: F401  (the output-name resolver)
from bertviz_landscape.analysis.layers import layers, rollback_sets
from bertviz_landscape.cli.analyze import run as analyze
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.training.data.glue import load_glue_split
from bertviz_landscape.training.data.tasks import get_task

LAYERS = ["embeddings", "layer.0", "layer.1", "pooler", "head"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def result(tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    # a large seeded move, so that θ0, θ1 and every roll-back have clearly different losses
    final = build_tiny(root / "final", move_from=tiny_run["theta0"], scale=0.5, move_seed=3)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(final))
    with torch.no_grad():  # a head that reads the pooled state loudly: logits of order 1
        model.classifier.weight.copy_(
            torch.randn(model.classifier.weight.shape, generator=torch.Generator().manual_seed(4))
        )
    model.save_pretrained(str(final))
    run = make_run_dir(root / "run", tiny_run, final=final)
    out = layers(
        [run],
        alpha={"min": 0.0, "max": 1.0, "num": 3},
        max_train_samples=None,
        max_eval_samples=None,
        data=data_cfg(tiny_run),
        device="cpu",
    )
    return run, out


def plain_losses(checkpoint, state: dict | None, glue_dir) -> dict:
    """Mean train and dev cross-entropy and dev accuracy with plain transformers (weights from
    `state` when given), no project code but the TSV reader."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    if state is not None:
        model.load_state_dict(state, strict=False)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    out = {}
    for split in ("train", "dev"):
        rows = load_glue_split(get_task("mrpc"), split, glue_dir)
        enc = tokenizer(
            list(rows["text_a"]),
            list(rows["text_b"]),
            truncation=True,
            max_length=32,
            padding=True,
            return_tensors="pt",
        )
        labels = torch.tensor(list(rows["label"]))
        with torch.no_grad():
            logits = model(**enc).logits
        out[f"{split}_loss"] = torch.nn.functional.cross_entropy(logits, labels).item()
        out[f"{split}_losses"] = torch.nn.functional.cross_entropy(logits, labels, reduction="none").double()
        out[f"{split}_accuracy"] = (logits.argmax(-1) == labels).float().mean().item()
        out[f"{split}_wrong"] = (logits.argmax(-1) != labels).double()
    return out


def by_kind(entry, kind, k=None, layer=None):
    found = [
        r
        for r in entry["rollback"]
        if r["kind"] == kind and (k is None or r["k"] == k) and (layer is None or r["layers"] == [layer])
    ]
    assert len(found) == 1, (kind, k, layer)
    return found[0]


def test_rollback_of_none_is_theta1_and_of_all_is_theta0(result, tiny_run):
    run, out = result
    entry = out["per_run"][0]
    assert entry["layers"] == LAYERS
    for kind, ckpt in (("none", run / "checkpoints" / "final"), ("all", run / "checkpoints" / "init")):
        plain = plain_losses(ckpt, None, tiny_run["glue_dir"])
        r = by_kind(entry, kind)
        assert r["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-5, abs=1e-6)
        assert r["dev_loss"] == pytest.approx(plain["dev_loss"], rel=1e-5, abs=1e-6)
        assert r["dev_accuracy"] == pytest.approx(plain["dev_accuracy"])
        assert r["dev_error"] == pytest.approx(1 - plain["dev_accuracy"])
    assert by_kind(entry, "none")["train_loss_change"] == 0.0
    # θ0 and θ1 differ, so rolling everything back changes the loss, by more than its noise
    change = by_kind(entry, "all")["train_loss"] - by_kind(entry, "none")["train_loss"]
    assert abs(change) > 0.05
    # its paired standard error: of the per-example differences, same examples at both points
    diff = (
        plain_losses(run / "checkpoints" / "init", None, tiny_run["glue_dir"])["train_losses"]
        - plain_losses(run / "checkpoints" / "final", None, tiny_run["glue_dir"])["train_losses"]
    )
    se = float(diff.std(correction=1)) / math.sqrt(diff.numel())
    assert by_kind(entry, "all")["train_loss_change"] == pytest.approx(change)
    assert by_kind(entry, "all")["train_loss_change_stderr"] == pytest.approx(se, rel=1e-4)
    assert by_kind(entry, "all")["train_loss_change_exceeds_noise"] is (abs(change) > 2 * se)


def test_single_and_top_k_rollbacks_and_curves_match_plain_transformers(result, tiny_run):
    """Roll-backs confined to upper layers run from the hidden-state cache; they must equal a
    plain forward pass of the rolled-back weights."""
    run, out = result
    entry = out["per_run"][0]
    theta0 = load_file(str(run / "checkpoints" / "init" / "model.safetensors"))
    theta1 = load_file(str(run / "checkpoints" / "final" / "model.safetensors"))

    def rolled(prefixes):
        return {k: (theta0[k] if any(p in k for p in prefixes) else v) for k, v in theta1.items()}

    single = plain_losses(run / "checkpoints" / "final", rolled(["encoder.layer.1."]), tiny_run["glue_dir"])
    r = by_kind(entry, "single", layer="layer.1")
    assert r["train_loss"] == pytest.approx(single["train_loss"], rel=1e-5)
    assert r["dev_loss"] == pytest.approx(single["dev_loss"], rel=1e-5)
    top2 = plain_losses(
        run / "checkpoints" / "final", rolled(["pooler.", "classifier."]), tiny_run["glue_dir"]
    )
    r = by_kind(entry, "top_k", k=2)
    assert r["layers"] == ["pooler", "head"]
    assert r["train_loss"] == pytest.approx(top2["train_loss"], rel=1e-5)
    bottom1 = plain_losses(run / "checkpoints" / "final", rolled(["embeddings."]), tiny_run["glue_dir"])
    assert by_kind(entry, "bottom_k", k=1)["dev_loss"] == pytest.approx(bottom1["dev_loss"], rel=1e-5)
    # a curve moves only its layer: α = 1 is θ1, α = 0 is that layer rolled back
    none = by_kind(entry, "none")
    for layer in LAYERS:
        curve = entry["curves"][layer]
        assert curve["alpha"] == [0.0, 0.5, 1.0]
        assert curve["train_loss"][2] == pytest.approx(none["train_loss"], rel=1e-5)
        assert curve["train_loss"][0] == pytest.approx(
            by_kind(entry, "single", layer=layer)["train_loss"], rel=1e-6
        )
        assert len(curve["dev_error"]) == len(curve["dev_loss"]) == 3
    # every kind, k = 1 … n−1 for bottom and top
    n = len(LAYERS)
    assert [r["kind"] for r in entry["rollback"]] == [s["kind"] for s in rollback_sets(LAYERS)]
    assert len(entry["rollback"]) == 1 + n + 2 * (n - 1) + 1
    assert all(isinstance(r["train_loss_change_stderr"], float) for r in entry["rollback"])


def test_depth_trends_and_paired_dev_changes(result, tiny_run):
    """numbers: the single roll-backs' dev-error change paired over the same dev examples (by hand
    with plain transformers), and Spearman ρ over depth (embeddings 0, layer.0 1, layer.1 2)."""
    from scipy.stats import spearmanr

    run, out = result
    entry, n = out["per_run"][0], out["numbers"]
    theta0 = load_file(str(run / "checkpoints" / "init" / "model.safetensors"))
    theta1 = load_file(str(run / "checkpoints" / "final" / "model.safetensors"))
    base = plain_losses(run / "checkpoints" / "final", None, tiny_run["glue_dir"])
    rolled = plain_losses(
        run / "checkpoints" / "final",
        {k: (theta0[k] if "encoder.layer.1." in k else v) for k, v in theta1.items()},
        tiny_run["glue_dir"],
    )
    diff = rolled["dev_wrong"] - base["dev_wrong"]
    r = by_kind(entry, "single", layer="layer.1")
    assert r["dev_mistake_change"] == pytest.approx(float(diff.mean()))
    assert r["dev_error_change"] == pytest.approx(
        base["dev_accuracy"] - rolled["dev_accuracy"]
    )  # primary: accuracy
    se = float(diff.std(correction=1)) / math.sqrt(diff.numel())
    assert r["dev_mistake_change_stderr"] == pytest.approx(se)
    assert n["rollback_dev_mistake_change_layer.1_stderr"] == pytest.approx(se)
    below = ["embeddings", "layer.0", "layer.1"]
    singles = {x: by_kind(entry, "single", layer=x) for x in below}
    want = spearmanr([0, 1, 2], [singles[x]["train_loss_change"] for x in below]).statistic
    assert n["rollback_train_depth_trend"] == pytest.approx(want)
    rises = [entry["curves"][x]["train_loss"][0] - entry["curves"][x]["train_loss"][2] for x in below]
    assert n["curve_rise_depth_trend"] == pytest.approx(spearmanr([0, 1, 2], rises).statistic)
    changes = [singles[x]["dev_error_change"] for x in below]
    if len(set(changes)) > 1:
        assert n["rollback_depth_trend"] == pytest.approx(spearmanr([0, 1, 2], changes).statistic)
    else:
        assert n["rollback_depth_trend"] is None  # no variation over depth: no trend to rank
    rel = [entry["relative_change"][x] for x in below]
    assert n["relative_change_depth_trend"] == pytest.approx(spearmanr([0, 1, 2], rel).statistic)
    assert -1.0 <= n["curve_rise_depth_trend"] <= 1.0


def test_relative_change_and_cosine_by_hand(result):
    run, out = result
    entry = out["per_run"][0]
    theta0 = load_file(str(run / "checkpoints" / "init" / "model.safetensors"))
    theta1 = load_file(str(run / "checkpoints" / "final" / "model.safetensors"))
    for layer, prefix in (
        ("layer.0", "bert.encoder.layer.0."),
        ("head", "classifier."),
        ("embeddings", "bert.embeddings."),
    ):
        keys = [k for k in theta0 if k.startswith(prefix)]
        num = sum(float(((theta1[k].double() - theta0[k].double()) ** 2).sum()) for k in keys)
        den = sum(float((theta0[k].double() ** 2).sum()) for k in keys)
        dot = sum(float((theta1[k].double() * theta0[k].double()).sum()) for k in keys)
        n1 = sum(float((theta1[k].double() ** 2).sum()) for k in keys)
        assert entry["relative_change"][layer] == pytest.approx(
            math.sqrt(num / den), rel=1e-6
        )  # δ1 is formed in float32
        assert entry["cosine"][layer] == pytest.approx(dot / math.sqrt(den * n1), rel=1e-6)
    s = out["summary"]
    assert s["relative_change_layer.0"] == {
        "mean": pytest.approx(entry["relative_change"]["layer.0"]),
        "std": 0.0,
        "n": 1,
    }
    assert (
        "rollback_bottom_2_dev_error" in s
        and "rollback_top_1_train_loss" in s
        and "rollback_single_head_dev_error" in s
    )
    assert out["runs"][0]["task"] == "mrpc" and out["analysis"] == "layers"


def test_cli_config_and_unknown_layer(tiny_run, tmp_path):
    run = make_run_dir(tmp_path / "run", tiny_run)
    data = [f"data.{k}={'null' if v is None else v}" for k, v in data_cfg(tiny_run).items()]
    out = tmp_path / "layers.json"
    cfg = compose(
        "analyze",
        [
            "analysis=layers",
            f"run={run}",
            f"output={out}",
            "device=cpu",
            "progress=false",
            "analysis.alpha.num=2",
            "analysis.alpha.min=0",
            "analysis.alpha.max=1",
            "analysis.layers=[head]",
            "analysis.rollback=false",
            "analysis.max_train_samples=null",
            *data,
        ],
    )
    res = analyze(cfg)
    written = json.loads(out.read_text())
    assert written["per_run"][0]["curves"].keys() == {"head"} and written["per_run"][0]["curves"]["head"][
        "alpha"
    ] == [0.0, 1.0]
    assert "rollback" not in res["per_run"][0] and written["summary"] == res["summary"]

    bad = tmp_path / "bad.json"
    cfg = compose(
        "analyze",
        ["analysis=layers", f"run={run}", f"output={bad}", "device=cpu", "analysis.layers=[layer.9]", *data],
    )
    with pytest.raises(
        BadInput, match=r"unknown layer 'layer.9'; this model has embeddings, layer.0, layer.1, pooler, head"
    ):
        analyze(cfg)
    assert not bad.exists()


def test_rollback_spans_false_keeps_the_singles_and_the_depth_trend(result, tiny_run, tmp_path):
    """analysis.rollback_spans=false (the demo's budget): only none, each single layer and all are
    evaluated, each equal to the full analysis's value, and the depth trend is unchanged."""
    run, full = result
    data = [f"data.{k}={'null' if v is None else v}" for k, v in data_cfg(tiny_run).items()]
    out = tmp_path / "layers.json"
    cfg = compose(
        "analyze",
        [
            "analysis=layers",
            f"run={run}",
            f"output={out}",
            "device=cpu",
            "progress=false",
            "analysis.curves=false",
            "analysis.rollback_spans=false",
            "analysis.max_train_samples=null",
            *data,
        ],
    )
    res = analyze(cfg)
    entry, reference = res["per_run"][0], full["per_run"][0]
    assert [r["kind"] for r in entry["rollback"]] == ["none", *["single"] * len(LAYERS), "all"]
    for r in entry["rollback"]:
        layer = r["layers"][0] if r["kind"] == "single" else None
        assert r["dev_loss"] == pytest.approx(
            by_kind(reference, r["kind"], layer=layer)["dev_loss"], rel=1e-6
        )
    trend, expected = res["numbers"]["rollback_depth_trend"], full["numbers"]["rollback_depth_trend"]
    assert trend == (pytest.approx(expected) if expected is not None else None)
    assert not any(k.startswith(("rollback_bottom_", "rollback_top_")) for k in res["summary"])


def plain_pooled_hidden(checkpoint, state, glue_dir) -> list[torch.Tensor]:
    """Per hidden-state layer, the dev examples' mean over non-padding tokens, plain transformers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint)).eval()
    model.load_state_dict(state, strict=False)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    rows = load_glue_split(get_task("mrpc"), "dev", glue_dir)
    enc = tokenizer(
        list(rows["text_a"]),
        list(rows["text_b"]),
        truncation=True,
        max_length=32,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states
    mask = enc["attention_mask"].unsqueeze(-1).float()
    return [((h * mask).sum(1) / mask.sum(1)).double() for h in hidden]


def test_cka_per_layer_and_the_dev_loss_slope_by_hand(result, tiny_run):
    """Issue 28 item 2: CKA(θ0, θ1) of each layer's dev hidden states equals the HSIC form on Gram
    matrices computed with plain transformers; the single roll-backs' dev-loss change is the plain dev
    loss's; the registered slope is their least-squares slope over depth."""
    run, out = result
    entry, n = out["per_run"][0], out["numbers"]
    theta0 = load_file(str(run / "checkpoints" / "init" / "model.safetensors"))
    theta1 = load_file(str(run / "checkpoints" / "final" / "model.safetensors"))
    final = run / "checkpoints" / "final"
    h0 = plain_pooled_hidden(final, theta0, tiny_run["glue_dir"])
    h1 = plain_pooled_hidden(final, theta1, tiny_run["glue_dir"])

    def hsic_cka(x, y):
        k, m = x @ x.T, y @ y.T
        c = torch.eye(len(x), dtype=x.dtype) - 1.0 / len(x)
        kc, mc = c @ k @ c, c @ m @ c
        return float((kc * mc).sum() / torch.sqrt((kc * kc).sum() * (mc * mc).sum()))

    below = ["embeddings", "layer.0", "layer.1"]
    for i, layer in enumerate(below):
        assert entry["cka"][layer] == pytest.approx(hsic_cka(h0[i], h1[i]), abs=1e-5), layer
        assert n[f"cka_{layer}"] == entry["cka"][layer]
    assert entry["cka"]["embeddings"] != pytest.approx(1.0, abs=1e-9)  # the run moved its embeddings
    base = plain_losses(final, None, tiny_run["glue_dir"])
    rolled = plain_losses(
        final,
        {k: (theta0[k] if "encoder.layer.1." in k else v) for k, v in theta1.items()},
        tiny_run["glue_dir"],
    )
    r = by_kind(entry, "single", layer="layer.1")
    assert r["dev_loss_change"] == pytest.approx(rolled["dev_loss"] - base["dev_loss"], abs=1e-5)
    changes = [by_kind(entry, "single", layer=x)["dev_loss_change"] for x in below]
    slope = float(np.polyfit([0, 1, 2], changes, 1)[0])
    assert n["rollback_dev_loss_slope"] == pytest.approx(slope)
    assert n["cka_depth_slope"] == pytest.approx(
        float(np.polyfit([0, 1, 2], [entry["cka"][x] for x in below], 1)[0])
    )
