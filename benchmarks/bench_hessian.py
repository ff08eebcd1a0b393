"""`make bench`: Hessian top eigenvalue and trace, ours (analysis/hessian.py) vs PyHessian.

The real MiniLM (6 layers, hidden 384) with a fresh 2-class head, a fixed subset of real MRPC
train examples (seeded, max_length 128), the same `EvalSet` batches for both, model in eval mode,
float32, every trainable parameter (22.7M). What is made equal, so the comparison is fair:

- **the loss**: J = mean per-example cross-entropy over the subset. Ours sums per-batch sums / N;
  PyHessian's dataloader mode averages per-batch mean losses weighted by batch size — the same J
  (asserted below: both products of the same vector agree).
- **the examples and batches**: the same padded batches, in the same order (PyHessian gets the
  token ids, mask and segment ids packed into one tensor, unpacked by a thin wrapper module).
- **the attention kernel**: SDPA's math backend for both (fused kernels have no double backward).
- **the tolerance**: `--tol` for both. It does not mean the same thing: PyHessian stops its power
  iteration when the eigenvalue estimate changes by < tol (relative) between two iterations,
  which says nothing about the error; ARPACK stops when each Ritz value's residual
  ‖Hx − λx‖ ≤ tol·|λ|. So accuracy is *measured*, not assumed: the relative residual
  ‖Hx − λx‖/|λ| of each method's eigenvector (one extra product each, not timed) bounds the
  distance to the nearest true eigenvalue.
- **the trace**: Hutchinson with the same number of Rademacher samples for both (PyHessian's
  tol = 0 so it draws exactly `--samples`; its default relative-change stop is not an error
  bound either); both standard errors are std(zᵀHz, ddof=1)/√m.

- **the spectral density** (stochastic Lanczos quadrature, PyHessian's `density(iter, n_v=1)` vs
  ours `spectral_density`): the same Rademacher start vector v (PyHessian's own draw, reproduced),
  the same number of Lanczos steps. Exactness is measured against what the quadrature must
  reproduce: with m steps, Σ_i w_i λ_i^k = vᵀH^k v for every k < 2m; the reference moments
  vᵀH^k v (k = 1 … 4) come from k extra products (float64 accumulation, not timed), and each
  method's relative moment error is printed, with its largest node against our λ1. PyHessian
  calls `torch.eig`, which current torch no longer has: it gets `torch.linalg.eigh` of its (symmetric)
  tridiagonal in the old return format, which only helps it.

Time is wall-clock on this machine; a Hessian-vector product's cost dominates everything, so
the product count is printed beside each time.

    python benchmarks/bench_hessian.py [--examples 64] [--max-length 128] [--tol 1e-3]
                                       [--samples 10] [--threads 2] [--density-iter 20]
                                       [--only eigen,trace,density]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch


class Packed(torch.nn.Module):
    """PyHessian calls model(inputs) with one tensor: (batch, 3, length) → the classifier's logits."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(input_ids=x[:, 0], attention_mask=x[:, 1], token_type_ids=x[:, 2]).logits


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=64, help="MRPC train examples (seeded subset)")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument(
        "--max-iter", type=int, default=100, help="PyHessian: power iterations; ours: ARPACK restarts"
    )
    ap.add_argument("--samples", type=int, default=10, help="Hutchinson samples (both)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--hvp",
        default="double_backward",
        choices=["double_backward", "jvp"],
        help="our Hessian-vector product",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--density-iter", type=int, default=20, help="Lanczos steps of the SLQ density (both)")
    ap.add_argument("--only", default="eigen,trace,density", help="comma-separated parts to run")
    ap.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "/work/shared/data/glue"))
    ap.add_argument("--output", default="outputs/bench/bench_hessian.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from bertviz_landscape.analysis.measures.hessian import (
        HessianVectorProduct,
        _math_attention,
        hessian_parameters,
        hutchinson_trace,
        spectral_density,
        top_eigenvalues,
    )
    from bertviz_landscape.training.data.eval_sets import EvalSet
    from bertviz_landscape.training.data.glue import load_glue_split
    from bertviz_landscape.training.data.tasks import get_task
    from bertviz_landscape.training.data.tokenize import tokenize
    from bertviz_landscape.training.models.initial import build_initial_model, load_tokenizer

    try:
        from pyhessian import hessian as PyHessian
    except ImportError:
        raise SystemExit(
            "bench_hessian: PyHessian is not installed (pip install -e '.[bench]', or pip install --no-deps "
            "pyhessian)"
        ) from None

    task = get_task("mrpc")
    model = build_initial_model("all-minilm-l6-v2", task, "pretrained", seed=args.seed).eval()
    tokenizer = load_tokenizer("all-minilm-l6-v2")
    rows = load_glue_split(task, "train", args.glue_dir, args.examples, args.seed)
    evalset = EvalSet.from_tokenized(
        "train", tokenize(rows, tokenizer, args.max_length), args.batch_size, tokenizer.pad_token_id
    )
    names = hessian_parameters(model)
    ours = HessianVectorProduct(model, evalset.batches, task, names, args.hvp)
    print(
        f"MiniLM, {ours.dim / 1e6:.1f}M parameters; {evalset.num_examples} MRPC train examples, batches "
        f"{[tuple(b.input_ids.shape) for b in evalset.batches]}; {args.threads} threads; tol {args.tol}, "
        f"{args.samples} Hutchinson samples",
        flush=True,
    )

    packed = Packed(model)
    loader = [
        (torch.stack([b.input_ids, b.attention_mask, b.token_type_ids], 1), b.labels) for b in evalset.batches
    ]
    with _math_attention():
        ph = PyHessian(packed, torch.nn.CrossEntropyLoss(), dataloader=loader, cuda=False)
    ph_products = {"n": 0}
    inner = ph.dataloader_hv_product

    def counted(v):
        ph_products["n"] += 1
        with _math_attention():
            return inner(v)

    ph.dataloader_hv_product = counted
    ph_params = [p for p in packed.parameters() if p.requires_grad]
    assert [id(p) for p in ph_params] == [id(p) for p in ours.params], (
        "PyHessian and ours must take the same parameters"
    )

    # --- one product of the same vector: cost of each method's HVP, and the same J ---------
    v = torch.randn(ours.dim, generator=torch.Generator().manual_seed(1))
    methods = {
        m: HessianVectorProduct(model, evalset.batches, task, names, m) for m in ("jvp", "double_backward")
    }
    methods["pyhessian"] = lambda x: flat(counted(list(ours.split(x.clone())))[1])
    per_hvp, products = {}, {}
    methods[args.hvp](v)  # warm-up (allocator, kernels): not timed
    for _ in range(2):  # interleaved, best of two: the machine's load drifts
        for name, fn in methods.items():
            t = time.perf_counter()
            products[name] = fn(v)
            key = "pyhessian" if name == "pyhessian" else f"ours_{name}"
            per_hvp[key] = min(per_hvp.get(key, math.inf), time.perf_counter() - t)
    hv_ours, hv_ph = products[args.hvp], products["pyhessian"]
    ph_products["n"] = 0
    agree = float((hv_ph - hv_ours).norm() / hv_ours.norm())
    print(
        "one Hessian-vector product: "
        + ", ".join(f"{k} {s:.1f} s" for k, s in per_hvp.items())
        + f"; ours vs PyHessian ‖Δ‖/‖Hv‖ = {agree:.1e}",
        flush=True,
    )

    def residual(vec: torch.Tensor, lam: float) -> float:
        vec = vec / vec.norm()
        return float((ours(vec) - lam * vec).norm() / abs(lam))

    parts = set(args.only.split(","))
    result = {
        "model": f"all-minilm-l6-v2 + 2-class head (seed {args.seed:d})",
        "num_parameters": ours.dim,
        "examples": evalset.num_examples,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "ours_hvp": args.hvp,
        "hvp_seconds": per_hvp,
        "hvp_agreement": agree,
    }
    if "density" in parts:
        result["density"] = density_comparison(
            args, ours, ph, ph_products, packed, spectral_density, _math_attention
        )
    if not {"eigen", "trace"} <= parts:
        write(result, args.output)
        return

    # --- top eigenvalue --------------------------------------------------------------------
    torch.manual_seed(args.seed)
    t = time.perf_counter()
    eig = top_eigenvalues(ours, 1, args.tol, args.max_iter, None, args.seed, vectors=True)
    ours_eig_s = time.perf_counter() - t
    ours_lam = eig["top_eigenvalues"][0]
    ours_res = residual(torch.from_numpy(np.ascontiguousarray(eig["eigenvectors"][:, 0])).float(), ours_lam)
    print(
        f"ours: λ1 = {ours_lam:.6g} in {ours_eig_s:.0f} s, {eig['lanczos_iterations']} products, converged "
        f"{eig['converged']}, "
        f"relative residual {ours_res:.1e}",
        flush=True,
    )

    # ours at a looser tolerance: how many products ours needs for PyHessian's accuracy
    loose_tol = args.tol * 10
    t = time.perf_counter()
    loose = top_eigenvalues(ours, 1, loose_tol, args.max_iter, None, args.seed, vectors=True)
    loose_s = time.perf_counter() - t
    loose_lam = loose["top_eigenvalues"][0]
    loose_res = residual(
        torch.from_numpy(np.ascontiguousarray(loose["eigenvectors"][:, 0])).float(), loose_lam
    )
    print(
        f"ours at tol {loose_tol:g}: λ1 = {loose_lam:.6g} in {loose_s:.0f} s, {loose['lanczos_iterations']} "
        "products, "
        f"relative residual {loose_res:.1e}",
        flush=True,
    )

    torch.manual_seed(args.seed)
    t = time.perf_counter()
    with _math_attention():
        ph_vals, ph_vecs = ph.eigenvalues(maxIter=args.max_iter, tol=args.tol, top_n=1)
    ph_eig_s, ph_eig_n = time.perf_counter() - t, ph_products["n"]
    ph_lam = float(ph_vals[0])
    ph_res = residual(flat(ph_vecs[0]).detach().float(), ph_lam)
    print(
        f"PyHessian: λ1 = {ph_lam:.6g} in {ph_eig_s:.0f} s, {ph_eig_n} products, relative residual "
        f"{ph_res:.1e}",
        flush=True,
    )

    # --- trace -----------------------------------------------------------------------------
    t = time.perf_counter()
    tr = hutchinson_trace(ours, args.samples, args.seed)
    ours_tr_s = time.perf_counter() - t
    ph_products["n"] = 0
    torch.manual_seed(args.seed)
    t = time.perf_counter()
    with _math_attention():
        # tol = -inf: exactly `samples` draws (its stop divides by the running mean, so any finite tol
        # stops at once when the trace estimate is negative, as it can be at a saddle)
        ph_samples = ph.trace(maxIter=args.samples, tol=float("-inf"))
    ph_tr_s = time.perf_counter() - t
    ph_tr, ph_se = float(np.mean(ph_samples)), float(np.std(ph_samples, ddof=1) / math.sqrt(len(ph_samples)))
    print(
        f"trace: ours {tr['trace']:.6g} ± {tr['trace_stderr']:.3g} in {ours_tr_s:.0f} s; "
        f"PyHessian {ph_tr:.6g} ± {ph_se:.3g} in {ph_tr_s:.0f} s ({tr['hutchinson_samples']} vs "
        f"{len(ph_samples)} samples)",
        flush=True,
    )

    result |= {
        "tol": args.tol,
        "samples": args.samples,
        "top_eigenvalue": {
            "ours": {
                "value": ours_lam,
                "seconds": ours_eig_s,
                "products": eig["lanczos_iterations"],
                "relative_residual": ours_res,
                "converged": eig["converged"],
                "ncv": eig["ncv"],
            },
            "ours_loose": {
                "tol": loose_tol,
                "value": loose_lam,
                "seconds": loose_s,
                "products": loose["lanczos_iterations"],
                "relative_residual": loose_res,
                "converged": loose["converged"],
            },
            "pyhessian": {
                "value": ph_lam,
                "seconds": ph_eig_s,
                "products": ph_eig_n,
                "relative_residual": ph_res,
            },
        },
        "trace": {
            "ours": {
                "value": tr["trace"],
                "stderr": tr["trace_stderr"],
                "seconds": ours_tr_s,
                "samples": args.samples,
            },
            "pyhessian": {"value": ph_tr, "stderr": ph_se, "seconds": ph_tr_s, "samples": len(ph_samples)},
        },
    }
    out = write(result, args.output)
    print()
    print("| quantity | ours | PyHessian |")
    print("|---|---|---|")
    print(f"| top eigenvalue λ1 | {ours_lam:.5g} | {ph_lam:.5g} |")
    print(f"| relative residual ‖Hx−λx‖/λ | {ours_res:.1e} | {ph_res:.1e} |")
    print(
        f"| λ1 time (products) | {ours_eig_s:.0f} s ({eig['lanczos_iterations']}) | {ph_eig_s:.0f} s "
        f"({ph_eig_n}) |"
    )
    print(
        f"| ours at tol {loose_tol:g}: λ1, residual, time (products) | {loose_lam:.5g}, {loose_res:.1e}, "
        f"{loose_s:.0f} s ({loose['lanczos_iterations']}) | |"
    )
    print(f"| trace ± stderr | {tr['trace']:.5g} ± {tr['trace_stderr']:.2g} | {ph_tr:.5g} ± {ph_se:.2g} |")
    print(f"| trace time ({args.samples} samples) | {ours_tr_s:.0f} s | {ph_tr_s:.0f} s |")
    print(
        f"| one product | {per_hvp['ours_jvp']:.1f} s (jvp), {per_hvp['ours_double_backward']:.1f} s (double "
        f"backward) | {per_hvp['pyhessian']:.1f} s |"
    )
    print(f"\nwritten: {out}")


def write(result: dict, output: str) -> Path:
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return out


def density_comparison(args, ours, ph, ph_products, packed, spectral_density, math_attention) -> dict:
    """SLQ density, ours vs PyHessian, from PyHessian's own start vector (module docstring)."""
    # torch.eig is removed from torch (it raises); PyHessian's density calls it on its tridiagonal

    def eig(t, eigenvectors=True):
        lam, vec = torch.linalg.eigh(t)
        return torch.stack([lam, torch.zeros_like(lam)], 1), vec

    torch.eig = eig
    params = [p for p in packed.parameters() if p.requires_grad]
    torch.manual_seed(args.seed)
    v = [torch.randint_like(p, high=2) for p in params]  # PyHessian's draw, reproduced
    for t in v:
        t[t == 0] = -1
    start = flat(v).float()
    m = int(args.density_iter)
    t0 = time.perf_counter()
    mine = spectral_density(ours, m, 1, args.seed, start=start)
    ours_s = time.perf_counter() - t0
    print(f"density (ours): {m} Lanczos steps in {ours_s:.0f} s", flush=True)
    ph_products["n"] = 0
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    with math_attention():
        ph_nodes, ph_weights = ph.density(iter=m, n_v=1)
    ph_s, ph_n = time.perf_counter() - t0, ph_products["n"]
    # the reference moments vᵀH^k v (v normalised), k = 1 … 4, float64 accumulation (not timed)
    u = start / start.norm()
    moments, w = [], u.clone()
    for _ in range(4):
        w = ours(w)
        moments.append(float(torch.dot(u.double(), w.double())))

    def errors(nodes, weights):
        lam, wt = np.asarray(nodes, dtype=np.float64), np.asarray(weights, dtype=np.float64)
        return [
            abs(float(np.sum(wt * lam ** (k + 1))) - mk) / max(abs(mk), 1e-30) for k, mk in enumerate(moments)
        ]

    out = {
        "iterations": m,
        "reference_moments": moments,
        "ours": {
            "seconds": ours_s,
            "products": mine["hessian_vector_products"],
            "moment_relative_errors": errors(mine["nodes"][0], mine["weights"][0]),
            "max_node": max(mine["nodes"][0]),
            "weights_sum": float(np.sum(mine["weights"][0])),
        },
        "pyhessian": {
            "seconds": ph_s,
            "products": ph_n,
            "moment_relative_errors": errors(ph_nodes[0], ph_weights[0]),
            "max_node": float(max(ph_nodes[0])),
            "weights_sum": float(np.sum(ph_weights[0])),
        },
    }
    for who in ("ours", "pyhessian"):
        r = out[who]
        print(
            f"density ({who}): {m} Lanczos steps in {r['seconds']:.0f} s ({r['products']} products); moment "
            "errors "
            + ", ".join(f"k={k + 1} {e:.1e}" for k, e in enumerate(r["moment_relative_errors"]))
            + f"; largest node {r['max_node']:.6g}; weights sum {r['weights_sum']:.6f}",
            flush=True,
        )
    return out


if __name__ == "__main__":
    main()
