"""Reparameterisation invariance (Dinh et al. 2017): the tool's invariant flatness measures stay put
under a function-preserving rescaling of one attention layer, while raw λ1 and the ‖δ1‖-unit width
move; and the flatness analysis writes them into its `numbers`."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
from helpers.landscape import tiny_run, write_glue  # noqa: F401  (fixture)

from bertviz_landscape.analysis.flatness import adaptive_request, interval_width, invariant_request
from bertviz_landscape.analysis.measures.hessian import (
    HessianVectorProduct,
    NormalisedHessianVectorProduct,
    top_eigenvalues,
)
from bertviz_landscape.analysis.measures.sharpness import (
    adaptive_sharpness,
    mean_loss,
    random_direction_widths,
)
from bertviz_landscape.engine.directions import Directions
from bertviz_landscape.engine.evaluator import Evaluator
from bertviz_landscape.training.data.eval_sets import EvalSet
from bertviz_landscape.training.data.glue import load_glue_split
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.data.tokenize import tokenize
from bertviz_landscape.training.models.initial import build_initial_model, load_tokenizer

SMALL = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
C = 4.0
EPS = 0.002

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """θ0 and a θ1 trained to a low loss on 12 examples, attention sharp enough to matter (Q, K × 10)."""
    root = tmp_path_factory.mktemp("sharpness")
    task = get_task("mrpc")
    model = build_initial_model("all-minilm-l6-v2", task, "scratch", seed=3, config_overrides=SMALL).eval()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen) * (p.std() + 0.05))
        for layer in model.bert.encoder.layer:
            layer.attention.self.query.weight.mul_(10)
            layer.attention.self.key.weight.mul_(10)
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    rows = load_glue_split(task, "train", write_glue(root / "glue"), cache_dir=str(root / "cache"))
    train = EvalSet.from_tokenized(
        "train", tokenize(rows, tokenizer, 32, cache_dir=False), 6, tokenizer.pad_token_id
    )
    theta0 = OrderedDict((n, p.detach().clone()) for n, p in model.named_parameters())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(40):
        opt.zero_grad()
        loss = sum(task.loss(model(**b.inputs()).logits, b.labels, reduction="sum") for b in train.batches)
        (loss / train.num_examples).backward()
        opt.step()
    return model.eval(), theta0, task, train


def rescaled(model, c: float = C):
    """W_Q, b_Q × c and W_K, b_K / c in encoder layer 0: QKᵀ, hence the logits, unchanged."""
    out = copy.deepcopy(model)
    att = out.bert.encoder.layer[0].attention.self
    with torch.no_grad():
        att.query.weight.mul_(c)
        att.query.bias.mul_(c)
        att.key.weight.div_(c)
        att.key.bias.div_(c)
    return out


def width_along_delta1(model, theta0, task, train) -> dict:
    """Width of {J ≤ J(θ1) + ε} along δ1 = θ1 − θ0 around α = 1, in units of ‖δ1‖ (the descriptive one)."""
    theta1 = OrderedDict((n, p.detach().clone()) for n, p in model.named_parameters())
    delta1 = OrderedDict((n, theta1[n] - theta0[n]) for n in theta1)
    ev = Evaluator(
        copy.deepcopy(model), task, theta0, Directions("difference", delta1), [train], use_cache=False
    )
    alphas = np.linspace(0.0, 2.0, 41)
    values = np.array([ev.evaluate(float(a))["train_loss"] for a in alphas])
    return interval_width(alphas, values, 1.0, values[20] + EPS)


def qk_block_lambda1(model, task, train, normalised: bool) -> float:
    """λ1 of the Hessian's block over the rescaled parameters (layer 0's W_Q, b_Q, W_K, b_K)."""
    names = [
        f"bert.encoder.layer.0.attention.self.{m}.{p}" for m in ("query", "key") for p in ("weight", "bias")
    ]
    op = HessianVectorProduct(model, train.batches, task, names)
    op = NormalisedHessianVectorProduct(op) if normalised else op
    return top_eigenvalues(op, 1, 1e-6, 200, None, 0)["top_eigenvalues"][0]


def moved(a: float, b: float) -> float:
    return abs(a - b) / abs(a)


def test_rescaling_leaves_invariant_measures_and_moves_raw_ones(trained):
    model, theta0, task, train = trained
    other = rescaled(model)
    for b in train.batches:  # the same function
        with torch.no_grad():
            torch.testing.assert_close(
                other(**b.inputs()).logits, model(**b.inputs()).logits, rtol=1e-5, atol=1e-6
            )
    assert mean_loss(other, train, task) == pytest.approx(mean_loss(model, train, task), rel=1e-6)

    inv = invariant_request(draws=5, seed=0, step=0.1, max=1.0, bisect=8)
    w, w2 = (
        random_direction_widths(model, train, task, EPS, inv),
        random_direction_widths(other, train, task, EPS, inv),
    )
    assert (
        w["draws"] == 5 and len(w["widths"]) == 5 and sum(w["bounded"]) >= 3
    )  # the basin ends inside the grid
    assert w["width_std"] is not None and w["width_std"] > 0  # the draws differ: the spread is real
    assert moved(w["width_mean"], w2["width_mean"]) < 0.01  # invariant
    ada = adaptive_request(rho=0.05, steps=3, samples=3)
    a, a2 = adaptive_sharpness(model, train, task, ada), adaptive_sharpness(other, train, task, ada)
    assert a["worst"] > 0 and moved(a["worst"], a2["worst"]) < 0.01
    assert moved(a["average"], a2["average"]) < 0.01 or abs(a["average"] - a2["average"]) < 1e-6
    n1, n2 = qk_block_lambda1(model, task, train, True), qk_block_lambda1(other, task, train, True)
    assert moved(n1, n2) < 0.01  # |θ|⊙H⊙|θ| is invariant

    # the raw measures are not: λ1 of the same block, and the width along δ1 in ‖δ1‖ units
    r1, r2 = qk_block_lambda1(model, task, train, False), qk_block_lambda1(other, task, train, False)
    assert moved(r1, r2) > 0.5
    d1, d2 = width_along_delta1(model, theta0, task, train), width_along_delta1(other, theta0, task, train)
    assert moved(d1["width"], d2["width"]) > 0.05


def test_invariant_measures_leave_the_weights_at_theta(trained):
    model, _, task, train = trained
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    random_direction_widths(model, train, task, EPS, invariant_request(draws=2, step=0.2, bisect=2))
    adaptive_sharpness(model, train, task, adaptive_request(rho=0.05, steps=2, samples=2))
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n]), n
        assert p.requires_grad
