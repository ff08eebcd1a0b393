"""Curvature at a checkpoint: the top-k Hessian eigenvalues and the Hessian trace of J.

J(θ) is the training loss on a fixed set of examples — the mean over examples of the task's
per-example loss (cross-entropy, MSE for STS-B), exactly the `train_loss` of a landscape
point (the same `EvalSet` batches, model in eval mode, float32). The Hessian is taken with
respect to the moved parameters: the project's trainable parameters
(`parameters.trainable_parameters`), restricted by a selector (`parameters.select_parameters`:
``all``, ``encoder``, ``layer.<i>``, ``head`` …) and by the bias/LayerNorm policy
(``bias_and_norm``: ``include`` — the default, every trainable parameter as in PyHessian — or
``exclude``, Li et al.'s ``ignore=biasbn``).

- **Hessian-vector products** H·v: ``double_backward`` (the default: ``torch.autograd.grad`` of
  the gradient, as PyHessian) or ``jvp`` (`torch.func`: ``jvp(grad(J))`` over `functional_call`,
  forward-over-reverse). Both run one
  batch at a time and sum (Σ_b H_b·v / N), so memory is that of one batch's double-backward
  graph. Fused attention kernels have no second derivative, so the products run with SDPA's
  math backend (same values as the fused kernels up to float rounding). Measured on a 2-core
  CPU, MiniLM, on a heavily shared machine: the two cost about the same, double backward a little
  less in 3 of 4 measurements (16 examples, 2 threads: 18.4 s jvp vs 19.3 s double backward; 4
  examples: 29.0 vs 28.6 s; 8 examples, 1 thread: 14.4 vs 11.3 s; the tiny test BERT: 1.7 vs 1.2 s,
  forward-mode overhead per op dominating tiny matrices).
- **Top-k eigenvalues**: scipy's ARPACK Lanczos (`scipy.sparse.linalg.eigsh`, ``which="LA"``,
  the algebraically largest) on a `LinearOperator` whose matvec is the HVP. Convergence is
  ARPACK's: each returned Ritz value λ has residual ‖Hx − λx‖ ≤ tol·|λ|. The Lanczos basis is
  held in float32 (n × ncv numbers; the HVPs themselves are float32), and the start vector is
  drawn from `seed`, so results are deterministic by seed.
- **Trace**: Hutchinson's estimator with Rademacher vectors z (seeded), tr H ≈ mean(zᵀHz), with
  its standard error std(zᵀHz, ddof=1)/√m.

`hessian_spectrum(...)` returns the "hessian" object of the analysis JSON (see
notes/ANALYSIS_SCHEMA.md, ``analysis=flatness``)::

    top_eigenvalues      [float]  the k largest eigenvalues, descending (those ARPACK converged)
    trace, trace_stderr  float    Hutchinson's estimate and its standard error (null: no samples)
    lanczos_iterations   int      Lanczos steps = Hessian-vector products used by eigsh
    converged            bool     ARPACK converged all k eigenvalues within max_iter restarts
    hutchinson_samples   int      m
    num_examples         int      examples in J
    seconds              float    wall time of the whole computation
    loss                 float    J at the point
    num_parameters       int      dimension of the Hessian
    parameters           {selectors, bias_and_norm}
    hvp, tol, k, ncv, max_iter, seed, hessian_vector_products, seconds_per_hvp, lanczos_seconds,
    hutchinson_seconds
    normalised           {top_eigenvalues, converged, trace, trace_stderr} of |θ|⊙H⊙|θ| (`normalised`:
                         NormalisedHessianVectorProduct — unchanged by function-preserving rescalings)
    density              {nodes, weights (per run), iterations, runs, hessian_vector_products, seconds}:
                         the stochastic Lanczos quadrature of H's spectral density (`density_iterations`
                         > 0; `spectral_density`, drawn with `density_on_grid`)
    groups               {layer: {num_parameters, top_eigenvalue[, top_eigenvalue_normalised],
                         hessian_vector_products}}: the top eigenvalue of each layer group's diagonal
                         block (`groups`; layer groups of parameters.layer_map)
    checkpoint {role, path, sha256}, data {...the examples...}, device   (from `hessian_entry`)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from bertviz_landscape.analysis.common import run_data_request, run_task
from bertviz_landscape.contracts import work
from bertviz_landscape.contracts.checkpoints import check_checkpoint_dir, content_hash, load_model
from bertviz_landscape.contracts.devices import pick_device
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.parameters import (
    is_bias_or_norm,
    layer_map,
    select_parameters,
    trainable_parameters,
)
from bertviz_landscape.training.data.eval_sets import load_eval_sets
from bertviz_landscape.training.data.tasks import get_task

HVP_METHODS = ("jvp", "double_backward")


class HessianError(BadInput):
    """A Hessian request that cannot be computed (bad k, samples, parameters, batches)."""


def _math_attention():
    """SDPA's math backend: the fused CPU/GPU attention kernels have no second derivative."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)
    except ImportError:  # older torch: no fused-kernel selection, nothing to do
        return contextlib.nullcontext()


def hessian_parameters(
    model: torch.nn.Module, params: str | Sequence[str] = "all", bias_and_norm: str = "include"
) -> list[str]:
    """The names of the parameters the Hessian is taken over (model order)."""
    if bias_and_norm not in ("include", "exclude"):
        raise HessianError(f"hessian.bias_and_norm must be include or exclude, got {bias_and_norm!r}")
    trainable = trainable_parameters(model)
    names = select_parameters(list(trainable), params)
    if bias_and_norm == "exclude":
        names = [n for n in names if not is_bias_or_norm(n, trainable[n])]
    if not names:
        raise HessianError("the Hessian has no parameters (selection empty after excluding biases/LayerNorm)")
    return names


class HessianVectorProduct:
    """v ↦ H·v for J = Σ_batches loss_sum(batch) / N over the `names` parameters of `model`.

    The model's own parameters stay where they are (the point θ); vectors are flat float32
    tensors in the order of `names`. Counts its products.
    """

    def __init__(
        self, model: torch.nn.Module, batches, task, names: Sequence[str], method: str = "double_backward"
    ):
        if method not in HVP_METHODS:
            raise HessianError(f"hessian.hvp must be one of {HVP_METHODS}, got {method!r}")
        self.model, self.task, self.method = model, task, method
        self.batches = list(batches)
        if not self.batches:
            raise HessianError("the Hessian needs at least one batch of examples")
        self.num_examples = int(sum(int(b.labels.shape[0]) for b in self.batches))
        params = trainable_parameters(model)
        if any(p.dtype != torch.float32 for p in params.values()):
            raise HessianError("the Hessian is computed in float32: load the model in float32")
        self.names = list(names)
        self.params = [params[n] for n in self.names]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.dim = int(sum(self.sizes))
        self.device = self.params[0].device
        self.products = 0
        self.seconds = 0.0

    def split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [t.view(s) for t, s in zip(torch.split(flat, self.sizes), self.shapes)]

    @contextlib.contextmanager
    def _only_selected_require_grad(self):
        every = list(self.model.parameters())
        before = [p.requires_grad for p in every]
        selected = {id(p) for p in self.params}
        try:
            for p in every:
                p.requires_grad_(self.method == "double_backward" and id(p) in selected)
            yield
        finally:
            for p, flag in zip(every, before):
                p.requires_grad_(flag)

    def _batch_loss(self, batch, values: dict | None = None) -> torch.Tensor:
        if values is None:
            logits = self.model(**batch.inputs()).logits
        else:
            logits = torch.func.functional_call(
                self.model, values, args=(), kwargs=batch.inputs(), strict=False
            ).logits
        return self.task.loss(logits, batch.labels, reduction="sum")

    def loss(self) -> float:
        """J at the point (the mean per-example loss)."""
        total = 0.0
        with torch.inference_mode():
            for b in self.batches:
                work.count_pass(self.model, b.attention_mask)
                total += float(self._batch_loss(b).double())
        return total / self.num_examples

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        started = time.perf_counter()
        vec = self.split(flat.to(self.device, torch.float32))
        result = torch.zeros(self.dim, dtype=torch.float32, device=self.device)
        out = self.split(result)  # views: the products are summed in place, no concatenation
        self.model.eval()
        with _math_attention(), self._only_selected_require_grad():
            if self.method == "double_backward":
                for b in self.batches:
                    work.count_pass(self.model, b.attention_mask, kind="hvp")
                    grads = torch.autograd.grad(self._batch_loss(b), self.params, create_graph=True)
                    hv = torch.autograd.grad(grads, self.params, vec)
                    torch._foreach_add_(out, [h.detach() for h in hv])
            else:
                primals = {n: p.detach() for n, p in zip(self.names, self.params)}
                tangents = dict(zip(self.names, vec))
                for b in self.batches:
                    work.count_pass(self.model, b.attention_mask, kind="hvp")
                    grad_fn = torch.func.grad(lambda values, batch=b: self._batch_loss(batch, values))
                    _, hv = torch.func.jvp(grad_fn, (primals,), (tangents,))
                    torch._foreach_add_(out, [hv[n] for n in self.names])
        result.div_(float(self.num_examples))
        self.products += 1
        self.seconds += time.perf_counter() - started
        return result


class NormalisedHessianVectorProduct:
    """v ↦ |θ|⊙H(|θ|⊙v): the Hessian in the coordinates u_i = θ_i/|θ_i| of each weight's own scale
    (the elementwise-adaptive normalisation of Kwon et al. 2021; Tsuzuku et al. 2020's normalised
    sharpness). A rescaling θ' = Dθ (D diagonal, positive, function-preserving) gives H' = D⁻¹HD⁻¹
    and |θ'| = D|θ|, so this operator — hence its eigenvalues and trace — is unchanged, while H's
    are not."""

    def __init__(self, hvp: HessianVectorProduct):
        self.inner = hvp
        self.scale = torch.cat([p.detach().abs().reshape(-1) for p in hvp.params]).to(torch.float32)
        self.dim, self.num_examples = hvp.dim, hvp.num_examples

    @property
    def products(self) -> int:
        return self.inner.products

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        v = flat.to(self.scale.device, torch.float32) * self.scale
        return self.inner(v).mul_(self.scale)


def default_ncv(k: int, n: int) -> int:
    """Lanczos vectors kept: max(2k+1, k+8) (scipy's default is max(2k+1, 20)): the first
    convergence check comes after ncv products, and a network's outlying top eigenvalues
    converge in a few steps, so fewer vectors cost fewer products (and n × ncv less memory)."""
    return min(n, max(2 * k + 1, k + 8))


def top_eigenvalues(
    hvp: HessianVectorProduct,
    k: int,
    tol: float,
    max_iter: int,
    ncv: int | None,
    seed: int,
    vectors: bool = False,
) -> dict:
    """ARPACK Lanczos (eigsh, which='LA') on H: the k largest eigenvalues, descending (with
    `vectors`, also "eigenvectors": an n × k float32 array, columns in the same order)."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    n = hvp.dim
    if not 1 <= k < n:
        raise HessianError(f"hessian.k must be between 1 and {n - 1} (the Hessian is {n}×{n}), got {k}")
    if ncv is not None and not k < ncv <= n:
        raise HessianError(f"hessian.ncv must be in ({k}, {n}], got {ncv}")
    ncv = default_ncv(k, n) if ncv is None else int(ncv)

    def matvec(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        return hvp(torch.from_numpy(x)).cpu().numpy()

    operator = LinearOperator((n, n), matvec=matvec, dtype=np.float32)
    v0 = np.random.default_rng(seed).uniform(-1.0, 1.0, n).astype(np.float32)
    start, products = time.perf_counter(), hvp.products
    vecs = None
    try:
        found = eigsh(
            operator, k=k, which="LA", tol=tol, maxiter=max_iter, ncv=ncv, v0=v0, return_eigenvectors=vectors
        )
        converged = True
    except ArpackNoConvergence as err:
        found, converged = ((err.eigenvalues, err.eigenvectors) if vectors else err.eigenvalues), False
    if vectors:
        found, vecs = found
    values = np.asarray(found, dtype=np.float64).reshape(-1)
    order = np.argsort(-values)
    out = {
        "top_eigenvalues": [float(values[i]) for i in order],
        "converged": converged,
        "lanczos_iterations": hvp.products - products,
        "ncv": ncv,
        "lanczos_seconds": time.perf_counter() - start,
    }
    if vectors:
        out["eigenvectors"] = np.asarray(vecs)[:, order]
    return out


def hutchinson_trace(hvp: HessianVectorProduct, samples: int, seed: int) -> dict:
    """tr H ≈ mean over m Rademacher z of zᵀHz, with the standard error of that mean."""
    if samples == 0:
        return {"trace": None, "trace_stderr": None, "hutchinson_samples": 0, "hutchinson_seconds": 0.0}
    if samples < 2:
        raise HessianError(
            f"hessian.hutchinson_samples must be 0 (no trace) or >= 2 (for a standard error), got {samples}"
        )
    gen = torch.Generator().manual_seed(int(seed))
    start = time.perf_counter()
    values = []
    for _ in range(samples):
        z = torch.randint(0, 2, (hvp.dim,), generator=gen).to(torch.float32).mul_(2).sub_(1)
        values.append(float(torch.dot(z, hvp(z).to(z.device))))  # z is ±1: a signed sum of Hz's entries
    arr = np.asarray(values)
    return {
        "trace": float(arr.mean()),
        "trace_stderr": float(arr.std(ddof=1) / math.sqrt(samples)),
        "hutchinson_samples": samples,
        "hutchinson_seconds": time.perf_counter() - start,
    }


def lanczos(hvp, start: torch.Tensor, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """`iterations` Lanczos steps on H from `start` with full reorthogonalisation (classical
    Gram–Schmidt against the whole basis as matrix products over a float32 basis held on the
    vector's device, repeated once when the pass cancelled more than 1/√2 of the vector's norm —
    Kahan–Parlett's "twice is enough"): the
    tridiagonal's diagonal α and off-diagonal β. Stops early (fewer steps) when β vanishes (the
    Krylov space is invariant: its Ritz values are exact eigenvalues)."""
    n = hvp.dim
    m = min(int(iterations), n)
    v = start.to(torch.float32).reshape(-1)
    v = v / v.norm()
    basis = torch.empty((m, n), dtype=torch.float32, device=v.device)
    alphas, betas = [], []
    for i in range(m):
        basis[i] = v
        w = hvp(v).to(v.device, torch.float32)
        alphas.append(float(torch.dot(w.double(), v.double())))
        before = float(w.double().norm())
        for _ in range(2):  # w ← w − V(Vᵀw) over the basis so far; again only when it cancelled much
            coef = basis[: i + 1] @ w
            w = w - coef @ basis[: i + 1]
            beta = float(w.double().norm())
            if beta > 0.7071 * before:  # Kahan–Parlett: a second pass only after a large cancellation
                break
            before = beta
        if i == m - 1 or beta <= 1e-10 * max(abs(alphas[-1]), 1.0):
            break
        betas.append(beta)
        v = w / beta
    return np.asarray(alphas, dtype=np.float64), np.asarray(betas, dtype=np.float64)


def spectral_density(
    hvp, iterations: int = 100, runs: int = 1, seed: int = 0, start: torch.Tensor | None = None
) -> dict:
    """Stochastic Lanczos quadrature (Lin, Saad & Yang 2016; Ghorbani et al. 2019, PyHessian's
    `density`): for each of `runs` normalised Rademacher start vectors v (seeded; or `start`),
    `iterations` Lanczos steps give T = UΛUᵀ; the nodes λ_i = Λ and weights w_i = U[0, i]² are
    the Gauss quadrature of v's spectral measure Σ_j (q_jᵀv)² δ(λ − λ_j), exact for polynomials of
    degree < 2·iterations. The density estimate is the average over runs of Σ_i w_i·g_σ(t − λ_i)
    (`density_on_grid`). Returns {"nodes": [[...]] per run, "weights": [[...]], "iterations",
    "runs", "hessian_vector_products", "seconds"}."""
    if int(iterations) < 1 or int(runs) < 1:
        raise HessianError(f"density iterations and runs must be >= 1, got {iterations}, {runs}")
    started, products = time.perf_counter(), hvp.products
    gen = torch.Generator().manual_seed(int(seed))
    nodes, weights = [], []
    for r in range(int(runs)):
        if start is not None and r == 0:
            v = start
        else:
            v = torch.randint(0, 2, (hvp.dim,), generator=gen).to(torch.float32).mul_(2).sub_(1)
        a, b = lanczos(hvp, v, int(iterations))
        lam, vecs = eigh_tridiagonal(a, b) if len(a) > 1 else (a.copy(), np.ones((1, 1)))
        nodes.append([float(x) for x in lam])
        weights.append([float(x) for x in vecs[0, :] ** 2])
    return {
        "nodes": nodes,
        "weights": weights,
        "iterations": int(iterations),
        "runs": int(runs),
        "hessian_vector_products": hvp.products - products,
        "seconds": time.perf_counter() - started,
    }


def density_on_grid(
    nodes: list[list[float]], weights: list[list[float]], grid: np.ndarray, sigma: float
) -> np.ndarray:
    """The SLQ density on `grid`: mean over runs of Σ_i w_i·N(t; λ_i, σ²) (integrates to ≈ 1)."""
    grid = np.asarray(grid, dtype=np.float64)
    out = np.zeros_like(grid)
    for lam, w in zip(nodes, weights):
        lam, w = np.asarray(lam)[:, None], np.asarray(w)[:, None]
        out += np.sum(w * np.exp(-((grid[None, :] - lam) ** 2) / (2 * sigma**2)), axis=0)
    return out / (len(nodes) * math.sqrt(2 * math.pi) * sigma)


@dataclass(frozen=True)
class HessianRequest:
    """`analysis.hessian` as conf/analysis/flatness.yaml says it (its defaults live there only):
    `max_iter`: ARPACK's restarts of the Lanczos factorisation (each about ncv − k products);
    `ncv`: Lanczos vectors kept (None: `default_ncv`, max(2k+1, k+8)); `samples`: Hutchinson's."""

    k: int
    tol: float
    max_iter: int
    ncv: int | None
    samples: int
    seed: int
    params: str | tuple[str, ...]
    bias_and_norm: str
    hvp: str
    normalised: bool
    groups: bool
    density_iterations: int
    density_runs: int

    @classmethod
    def from_config(cls, h: Mapping[str, Any]) -> HessianRequest:
        params, density = h["params"], h["density"] or {}
        return cls(
            k=int(h["k"]),
            tol=float(h["tol"]),
            max_iter=int(h["max_iter"]),
            ncv=None if h["ncv"] is None else int(h["ncv"]),
            samples=int(h["samples"]),
            seed=int(h["seed"]),
            params=str(params) if isinstance(params, str) else tuple(str(p) for p in params),
            bias_and_norm=str(h["bias_and_norm"]),
            hvp=str(h["hvp"]),
            normalised=bool(h["normalised"]),
            groups=bool(h["groups"]),
            density_iterations=int(density.get("iterations") or 0),
            density_runs=int(density.get("runs") or 1),
        )


def hessian_spectrum(model: torch.nn.Module, batches, task, req: HessianRequest) -> dict:
    """Top-k eigenvalues (Lanczos) and trace (Hutchinson) of the Hessian of J at the model's
    current weights. `batches`: an `EvalSet` or its `.batches` (the fixed examples); `task`: the
    GlueTask whose loss J is. Returns the analysis JSON's "hessian" object (keys in the module
    docstring)."""
    k, tol, max_iter, hutchinson_samples, seed, ncv = (
        req.k,
        req.tol,
        req.max_iter,
        req.samples,
        req.seed,
        req.ncv,
    )
    params, bias_and_norm, hvp, normalised, groups = (
        list(req.params) if isinstance(req.params, tuple) else req.params,
        req.bias_and_norm,
        req.hvp,
        req.normalised,
        req.groups,
    )
    density_iterations, density_runs = req.density_iterations, req.density_runs
    started = time.perf_counter()
    if hasattr(batches, "batches"):
        batches = batches.batches
    if tol < 0 or not math.isfinite(tol):
        raise HessianError(f"hessian.tol must be a finite number >= 0, got {tol}")
    if int(max_iter) < 1:
        raise HessianError(f"hessian.max_iter must be >= 1, got {max_iter}")
    if int(hutchinson_samples) == 1 or int(hutchinson_samples) < 0:
        raise HessianError(
            "hessian.hutchinson_samples must be 0 (no trace) or >= 2 (for a standard error), got "
            f"{hutchinson_samples}"
        )
    names = hessian_parameters(model, params, bias_and_norm)
    model.eval()
    op = HessianVectorProduct(model, batches, task, names, hvp)
    out: dict = {"loss": op.loss()}
    if k > 0:
        out |= top_eigenvalues(op, int(k), float(tol), int(max_iter), ncv, int(seed))
    else:
        out |= {
            "top_eigenvalues": [],
            "converged": True,
            "lanczos_iterations": 0,
            "ncv": None,
            "lanczos_seconds": 0.0,
        }
    out |= hutchinson_trace(op, int(hutchinson_samples), int(seed))
    if normalised:  # the |θ|-normalised Hessian (NormalisedHessianVectorProduct): rescaling-invariant
        nop = NormalisedHessianVectorProduct(op)
        top = top_eigenvalues(nop, max(int(k), 1), float(tol), int(max_iter), ncv, int(seed))
        tr = hutchinson_trace(nop, int(hutchinson_samples), int(seed))
        out["normalised"] = {
            "top_eigenvalues": top["top_eigenvalues"],
            "converged": top["converged"],
            "trace": tr["trace"],
            "trace_stderr": tr["trace_stderr"],
        }
    if density_iterations:  # the stochastic Lanczos quadrature spectral density of H
        out["density"] = spectral_density(op, int(density_iterations), int(density_runs), int(seed))
    if groups:  # the top eigenvalue of each layer group's diagonal block of H (and of the normalised H)
        out["groups"] = {}
        for layer, members in layer_map(names).items():
            sub = HessianVectorProduct(model, batches, task, members, hvp)
            if sub.dim < 2:
                continue
            entry = {"num_parameters": sub.dim}
            entry["top_eigenvalue"] = top_eigenvalues(sub, 1, float(tol), int(max_iter), None, int(seed))[
                "top_eigenvalues"
            ][0]
            if normalised:
                entry["top_eigenvalue_normalised"] = top_eigenvalues(
                    NormalisedHessianVectorProduct(sub), 1, float(tol), int(max_iter), None, int(seed)
                )["top_eigenvalues"][0]
            entry["hessian_vector_products"] = sub.products
            out["groups"][layer] = entry
    out |= {
        "num_examples": op.num_examples,
        "num_parameters": op.dim,
        "parameters": {
            "selectors": [params] if isinstance(params, str) else list(params),
            "bias_and_norm": bias_and_norm,
        },
        "hvp": hvp,
        "k": int(k),
        "tol": float(tol),
        "max_iter": int(max_iter),
        "seed": int(seed),
        "hessian_vector_products": op.products,
        "seconds_per_hvp": op.seconds / op.products if op.products else None,
        "seconds": time.perf_counter() - started,
    }
    return out


def hessian_entry(cfg, run) -> dict:
    """`analysis=flatness` with `analysis.hessian.enabled`: the Hessian of J at the run's θ1
    (checkpoints/final) over the first `hessian.num_examples` of the landscape's seeded train
    subset (`data.subset_seed`; null: `data.max_train_samples`), in batches of `hessian.batch_size`."""

    h = cfg.analysis.hessian
    task = get_task(run_task(run))
    theta1 = check_checkpoint_dir("theta1", run.theta1)
    data = run_data_request(
        cfg.get("data"), run, max_train_samples=h.get("num_examples"), eval_batch_size=h.get("batch_size")
    )
    device = pick_device(str(cfg.get("device", "auto")), 0)
    model = load_model(theta1)
    if model.config.num_labels != task.num_labels:
        raise HessianError(
            f"checkpoint {theta1} has {model.config.num_labels} outputs but task {task.name} needs "
            f"{task.num_labels}"
        )
    model.to(device)
    (train,) = load_eval_sets(task, data, ["train"], theta1, device)
    out = hessian_spectrum(model, train, task, HessianRequest.from_config(h))
    out["checkpoint"] = {"role": "theta1", "path": str(theta1), "sha256": content_hash(theta1)}
    out["data"] = data.describe() | {"split": "train", "eval_batch_size": data.eval_batch_size}
    out["device"] = str(device)
    return out
