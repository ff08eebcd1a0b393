"""Hessian eigenvalues (Lanczos) and trace (Hutchinson) against a dense Hessian of a tiny BERT."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_landscape_support import tiny_run, write_glue  # noqa: F401  (fixture)

from bertviz_landscape.analysis.flatness import hessian_request
from bertviz_landscape.analysis.measures.hessian import (
    HessianError,
    HessianVectorProduct,
    _math_attention,
    hessian_parameters,
    hessian_spectrum,
)
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.training.data.eval_sets import EvalSet
from bertviz_landscape.training.data.glue import load_glue_split
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.data.tokenize import tokenize
from bertviz_landscape.training.models.initial import build_initial_model, load_tokenizer

# smaller than the suite's tiny BERT, so that a dense Hessian over the pooler + head (306
# parameters) is cheap; `all` has a few thousand parameters besides the embeddings
SMALL = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
SUBSET = ["pooler", "head"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("hessian")
    task = get_task("mrpc")
    model = build_initial_model("all-minilm-l6-v2", task, "scratch", seed=3, config_overrides=SMALL).eval()
    with torch.no_grad():  # move off the symmetric init so the Hessian is not near-degenerate
        gen = torch.Generator().manual_seed(5)
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen) * (p.std() + 0.05))
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    rows = load_glue_split(task, "train", write_glue(root / "glue"), cache_dir=str(root / "cache"))
    evalset = EvalSet.from_tokenized(
        "train", tokenize(rows, tokenizer, 32, cache_dir=False), 6, tokenizer.pad_token_id
    )
    return model, task, evalset


def dense_hessian(model, task, evalset, names) -> np.ndarray:
    params = dict(model.named_parameters())
    base = [params[n].detach() for n in names]
    sizes = [p.numel() for p in base]

    def loss(flat):
        values = {n: t.view(p.shape) for n, t, p in zip(names, torch.split(flat, sizes), base)}
        total = sum(
            task.loss(
                torch.func.functional_call(model, values, (), b.inputs(), strict=False).logits,
                b.labels,
                reduction="sum",
            )
            for b in evalset.batches
        )
        return total / evalset.num_examples

    x0 = torch.cat([p.reshape(-1) for p in base]).double()
    model.double()
    try:
        with _math_attention():
            h = torch.autograd.functional.hessian(loss, x0, vectorize=True)
    finally:
        model.float()
    return h.numpy()


def test_eigenvalues_and_trace_match_a_dense_hessian(setup):
    model, task, evalset = setup
    names = hessian_parameters(model, SUBSET)
    dense = dense_hessian(model, task, evalset, names)
    assert np.allclose(dense, dense.T, atol=1e-10)
    exact = np.sort(np.linalg.eigvalsh(dense))[::-1]
    assert exact[0] > 1e-3  # a non-trivial curvature to measure

    k = 4
    out = hessian_spectrum(
        model,
        evalset,
        task,
        hessian_request(
            k=k, tol=1e-5, max_iter=200, samples=100, seed=0, params=SUBSET, ncv=40, normalised=False
        ),
    )
    assert out["num_parameters"] == dense.shape[0] == 306
    assert out["num_examples"] == evalset.num_examples == 12
    assert out["converged"] and out["lanczos_iterations"] > 0
    np.testing.assert_allclose(out["top_eigenvalues"], exact[:k], rtol=1e-2)
    np.testing.assert_allclose(
        out["top_eigenvalues"], exact[:k], rtol=1e-4
    )  # float32 HVPs: far better than 1%

    # Hutchinson: the exact trace within 3 stated standard errors, and the stated standard error
    # is the true one: Var(zᵀHz) = 2(‖H‖_F² − Σ H_ii²) for Rademacher z
    trace = float(np.trace(dense))
    assert abs(out["trace"] - trace) <= 3 * out["trace_stderr"]
    true_stderr = math.sqrt(2 * (np.sum(dense**2) - np.sum(np.diag(dense) ** 2)) / 100)
    assert out["trace_stderr"] == pytest.approx(true_stderr, rel=0.25)
    assert out["hutchinson_samples"] == 100
    for key in (
        "top_eigenvalues",
        "trace",
        "trace_stderr",
        "lanczos_iterations",
        "converged",
        "hutchinson_samples",
        "num_examples",
        "seconds",
    ):
        assert key in out


def test_both_hvp_methods_agree_with_finite_differences_on_every_parameter(setup):
    """H·v over all trainable parameters (embeddings, attention, LayerNorm, head) equals the
    central difference of the gradient, for forward-over-reverse and double backward alike."""
    model, task, evalset = setup
    names = hessian_parameters(model, "all")
    jvp = HessianVectorProduct(model, evalset.batches, task, names, "jvp")
    dbl = HessianVectorProduct(model, evalset.batches, task, names, "double_backward")
    v = torch.randn(jvp.dim, generator=torch.Generator().manual_seed(0))
    hv_j, hv_d = jvp(v), dbl(v)
    assert torch.allclose(hv_j, hv_d, rtol=1e-4, atol=1e-6 * float(hv_j.abs().max()))

    params = [dict(model.named_parameters())[n] for n in names]
    model.double()
    try:

        def grad_at(shift):
            with torch.no_grad():
                for p, d in zip(params, jvp.split(shift.double())):
                    p.add_(d)
            with _math_attention():  # the loss in float64 throughout (task.loss rounds logits to float32)
                loss = (
                    sum(
                        torch.nn.functional.cross_entropy(
                            model(**b.inputs()).logits, b.labels, reduction="sum"
                        )
                        for b in evalset.batches
                    )
                    / evalset.num_examples
                )
                g = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, d in zip(params, jvp.split(shift.double())):
                    p.sub_(d)
            return torch.cat([t.reshape(-1) for t in g])

        eps = 1e-4
        fd = (grad_at(eps * v) - grad_at(-eps * v)) / (2 * eps)
    finally:
        model.float()
    rel = float((hv_j.double() - fd).norm() / fd.norm())
    assert rel < 1e-3, rel


def test_deterministic_by_seed_and_bias_norm_policy(setup):
    model, task, evalset = setup
    kw = dict(k=1, tol=1e-4, ncv=8, samples=4, params=SUBSET, normalised=False)
    a = hessian_spectrum(model, evalset, task, hessian_request(seed=1, **kw))
    b = hessian_spectrum(model, evalset, task, hessian_request(seed=1, **kw))
    assert (
        a["top_eigenvalues"] == b["top_eigenvalues"]
        and a["trace"] == b["trace"]
        and a["lanczos_iterations"] == b["lanczos_iterations"]
    )
    c = hessian_spectrum(model, evalset, task, hessian_request(seed=2, **(kw | {"k": 0})))
    assert c["trace"] != a["trace"] and c["top_eigenvalues"] == [] and c["lanczos_iterations"] == 0
    excl = hessian_spectrum(
        model,
        evalset,
        task,
        hessian_request(seed=1, bias_and_norm="exclude", **(kw | {"k": 0, "samples": 0})),
    )
    assert excl["num_parameters"] == 16 * 16 + 2 * 16  # pooler.dense.weight + classifier.weight
    assert excl["parameters"] == {"selectors": SUBSET, "bias_and_norm": "exclude"}
    assert excl["trace"] is None and excl["loss"] == pytest.approx(a["loss"])


def test_bad_requests_are_clear_errors(setup):
    model, task, evalset = setup
    with pytest.raises(HessianError, match="hessian.k"):
        hessian_spectrum(model, evalset, task, hessian_request(k=400, params=SUBSET))
    with pytest.raises(HessianError, match="hutchinson_samples"):
        hessian_spectrum(model, evalset, task, hessian_request(k=1, samples=1, params=SUBSET))
    with pytest.raises(BadInput, match="layer.7"):
        hessian_spectrum(model, evalset, task, hessian_request(params=["layer.7"]))
    with pytest.raises(HessianError, match="bias_and_norm"):
        hessian_spectrum(model, evalset, task, hessian_request(params=SUBSET, bias_and_norm="maybe"))


def test_flatness_with_hessian_enabled_measures_theta1_of_the_run(tiny_run, tmp_path):
    """`bertviz-analyze analysis=flatness run=RUN analysis.hessian.enabled=true`: θ1 of the run, the
    seeded train subset, the summary's hessian_top/hessian_trace; no surface needed."""
    from test_analysis_support import make_run_dir
    from test_landscape_support import data_cfg
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import bertviz_landscape.analysis  # noqa: F401  (the output-name resolver)
    from bertviz_landscape.cli.analyze import run as analyze
    from bertviz_landscape.cli.compose import compose
    from bertviz_landscape.contracts.checkpoints import content_hash

    run = make_run_dir(tmp_path / "run", tiny_run)
    data = [f"data.{k}={'null' if v is None else v}" for k, v in data_cfg(tiny_run).items()]
    cfg = compose(
        "analyze",
        [
            "analysis=flatness",
            f"run={run}",
            f"output={tmp_path / 'f.json'}",
            "device=cpu",
            "analysis.hessian.enabled=true",
            "analysis.hessian.k=1",
            "analysis.hessian.samples=2",
            "analysis.hessian.num_examples=5",
            "analysis.hessian.params=[head]",
            *data,
        ],
    )
    res = analyze(cfg)
    h = res["per_run"][0]["hessian"]
    assert h["num_examples"] == 5 and h["num_parameters"] == 2 * 32 + 2 and h["hutchinson_samples"] == 2
    assert (
        h["converged"] and len(h["top_eigenvalues"]) == 1 and h["top_eigenvalues"][0] > 0
    )  # CE is convex in the head
    assert h["checkpoint"]["sha256"] == content_hash(run / "checkpoints" / "final")
    assert res["summary"]["hessian_top"]["mean"] == pytest.approx(h["top_eigenvalues"][0])
    assert res["summary"]["hessian_trace"]["mean"] == pytest.approx(h["trace"])
    # J is θ1's mean train loss on the same 5 seeded examples, computed with plain transformers
    model = AutoModelForSequenceClassification.from_pretrained(str(run / "checkpoints" / "final")).eval()
    tok = AutoTokenizer.from_pretrained(str(run / "checkpoints" / "final"))
    rows = load_glue_split(get_task("mrpc"), "train", tiny_run["glue_dir"], 5, 0)
    enc = tok(
        list(rows["text_a"]),
        list(rows["text_b"]),
        truncation=True,
        max_length=32,
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        plain = torch.nn.functional.cross_entropy(
            model(**enc).logits, torch.tensor(list(rows["label"]))
        ).item()
    assert h["loss"] == pytest.approx(plain, rel=1e-5)


def test_spectral_density_is_the_quadrature_of_the_dense_spectrum(setup):
    """SLQ on the pooler + head block: with the same start vector v, the quadrature's moments
    Σ w_i λ_i^k equal vᵀH^k v (k < 2·iterations) of the dense Hessian, the extreme nodes are its extreme
    eigenvalues, and the weights sum to 1."""
    from bertviz_landscape.analysis.measures.hessian import density_on_grid, spectral_density

    model, task, evalset = setup
    names = hessian_parameters(model, SUBSET)
    h = dense_hessian(model, task, evalset, names)
    op = HessianVectorProduct(model, evalset.batches, task, names)
    v = torch.randint(0, 2, (op.dim,), generator=torch.Generator().manual_seed(3)).float().mul_(2).sub_(1)
    res = spectral_density(op, iterations=40, runs=2, seed=0, start=v)
    lam, w = np.array(res["nodes"][0]), np.array(res["weights"][0])
    assert w.sum() == pytest.approx(1.0, abs=1e-6) and res["hessian_vector_products"] == 80
    u = v.double().numpy() / np.linalg.norm(v.double().numpy())
    hk = u.copy()
    for k in range(1, 5):
        hk = h @ hk
        exact = float(u @ hk)
        scale = max(abs(float(np.max(np.linalg.eigvalsh(h)))) ** k, 1e-12)
        assert float(np.sum(w * lam**k)) == pytest.approx(exact, abs=1e-4 * scale), k
    eig = np.linalg.eigvalsh(h)
    assert lam.max() == pytest.approx(eig.max(), rel=1e-3) and lam.min() == pytest.approx(
        eig.min(), abs=1e-3 * abs(eig).max()
    )
    grid = np.linspace(eig.min() - 1, eig.max() + 1, 2001)
    dens = density_on_grid(res["nodes"], res["weights"], grid, sigma=0.05)
    assert float(np.sum(dens) * (grid[1] - grid[0])) == pytest.approx(1.0, abs=1e-3)
