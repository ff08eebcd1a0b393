"""Vector algebra over dicts of tensors: the one place inner products, norms, projections and PCA
of weight-space vectors are computed.

A *vector* is a mapping parameter name → tensor (any shape, any floating dtype, any device): a
direction δ, a snapshot delta θ_t − θ0, a model's weights. Every function here follows one rule,
so the same vectors give the same bits wherever they are multiplied:

- **float64 accumulation.** Each tensor is read in chunks of `CHUNK` elements (row-major flat
  order), converted to float64 into reused buffers (no float64 copy of a whole model is made),
  multiplied elementwise in float64 and reduced with ``torch.sum``.
- **one summation order.** The names are visited in sorted order; within a tensor its chunks in
  flat order; the chunks' partial sums are added left to right as Python floats (IEEE float64).
  The result does not depend on the dicts' insertion order: the model's parameter order, a
  direction file's (alphabetical) order and a replay's order all give the same bits.
- **common names.** ⟨a, b⟩ runs over the names both vectors hold; a name in one only contributes
  nothing. Tensors of one name must have the same number of elements.

For a tensor of at most `CHUNK` elements the per-name term is exactly
``torch.sum(a[n].double() * b[n].double())``.

The plane of two directions δ1, δ2 (a landscape's axes) and a vector v in weight space:
`plane_products` gives ⟨v, δ1⟩, ⟨v, δ2⟩, ‖v‖² in one pass over v, `plane_coordinates` turns them
into the paper's (α, β), the least-squares coordinates and the distance from the plane, and
`project` does both. `principal_components` and `pca_of_gram` diagonalise a Gram matrix (Li et
al.'s trajectory PCA); `pca` does it for a list of vectors.

The lowest floor of the package: it imports torch, numpy and the standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

Vector = Mapping[str, torch.Tensor]

CHUNK = 1 << 20  # elements per float64 buffer (8 MiB)


def names(*vectors: Vector) -> list[str]:
    """The names all `vectors` hold, sorted: the summation order of every product here."""
    if not vectors:
        return []
    common = set(vectors[0])
    for v in vectors[1:]:
        common &= set(v)
    return sorted(common)


@torch.no_grad()
def inner_products(
    v: Vector,
    others: Sequence[Vector],
    origin: Vector | None = None,
    with_self: bool = False,
    chunk: int = CHUNK,
) -> tuple[list[float], float | None]:
    """([⟨u, w⟩ for w in others], ‖u‖² or None) for u = v − origin (u = v without an origin), in
    one pass over v.

    ⟨u, w⟩ runs over the names v and w share, ‖u‖² over all of v's names; `origin` must hold
    every name of v (the subtraction is in float64). Summation order: the module docstring."""
    totals = [0.0] * len(others)
    self_total = 0.0
    buffers: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in sorted(v):
        flat = v[name].reshape(-1)
        size = flat.numel()
        pairs = [(i, w[name].reshape(-1)) for i, w in enumerate(others) if name in w]
        if size == 0 or not (pairs or with_self):
            continue
        for _, w in pairs:
            if w.numel() != size:
                raise ValueError(f"{name}: {size} elements in one vector, {w.numel()} in the other")
        off = origin[name].reshape(-1) if origin is not None else None
        device, need = flat.device, min(chunk, size)
        if device not in buffers or buffers[device][0].numel() < need:  # reused by every later name
            buffers[device] = (
                torch.empty(need, dtype=torch.float64, device=device),
                torch.empty(need, dtype=torch.float64, device=device),
            )
        buf_u, buf_p = buffers[device]
        for start in range(0, size, chunk):
            stop = min(start + chunk, size)
            u = buf_u[: stop - start].copy_(flat[start:stop])
            if off is not None:
                u.sub_(off[start:stop])
            product = buf_p[: stop - start]
            for i, w in pairs:
                totals[i] += float(torch.sum(product.copy_(w[start:stop]).mul_(u)))
            if with_self:
                self_total += float(torch.sum(product.copy_(u).mul_(u)))
    return totals, (self_total if with_self else None)


def dot(a: Vector, b: Vector) -> float:
    """⟨a, b⟩ over their common names (float64, sorted names)."""
    return inner_products(a, [b])[0][0]


def norm(a: Vector) -> float:
    """‖a‖ (float64, sorted names)."""
    return math.sqrt(inner_products(a, [], with_self=True)[1])


def cosine(a: Vector, b: Vector) -> float:
    """cos(a, b) = ⟨a, b⟩ / (‖a‖‖b‖); NaN when either is zero."""
    na, nb = norm(a), norm(b)
    return dot(a, b) / (na * nb) if na > 0 and nb > 0 else float("nan")


def gram(vectors: Sequence[Vector]) -> np.ndarray:
    """G[i, j] = ⟨v_i, v_j⟩ (float64, J×J, exactly symmetric): each vector read once per row."""
    J = len(vectors)
    out = np.zeros((J, J), dtype=np.float64)
    for i, v in enumerate(vectors):
        row, vv = inner_products(v, vectors[i + 1 :], with_self=True)
        out[i, i] = vv
        for j, value in enumerate(row, start=i + 1):
            out[i, j] = out[j, i] = value
    return out


# --- the plane of two directions --------------------------------------------------------------
def plane_products(
    v: Vector, x: Vector, y: Vector | None = None, origin: Vector | None = None, chunk: int = CHUNK
) -> tuple[float, float | None, float]:
    """(⟨u, δ1⟩, ⟨u, δ2⟩ or None, ‖u‖²) for u = v − origin over v's names, in one pass over v."""
    dots, uu = inner_products(v, [x] + ([y] if y is not None else []), origin, with_self=True, chunk=chunk)
    return dots[0], (dots[1] if y is not None else None), uu


def plane_coordinates(vx: float, vy: float | None, vv: float, gram_xy: np.ndarray) -> dict:
    """A vector's place relative to the plane of δ1, δ2, from ⟨v, δ1⟩, ⟨v, δ2⟩ (None: δ1 only),
    ‖v‖² and the axes' Gram matrix [[⟨δ1, δ1⟩, ⟨δ1, δ2⟩], [⟨δ2, δ1⟩, ⟨δ2, δ2⟩]]:

    - the paper's (Hao et al.) α = ⟨v, δ1⟩/‖δ1‖², β = sqrt(max(‖v‖²/‖δ1‖² − α², 0));
    - ``lstsq``: the least-squares coordinates (a, b) solving the 2×2 normal equations (with δ1
      only: [α, None]);
    - ``distance_from_plane``: ‖v − aδ1 − bδ2‖ / ‖v‖ = sqrt(max(‖v‖² − (a, b)·(⟨v, δ1⟩, ⟨v, δ2⟩), 0))
      / ‖v‖ (0 for v = 0);
    - ``norm_v``: ‖v‖.
    """
    d11 = gram_xy[0, 0]
    alpha = vx / d11
    beta = math.sqrt(max(vv / d11 - alpha * alpha, 0.0))
    if vy is None:
        coef = np.array([alpha])
        rhs = np.array([vx])
    else:
        rhs = np.array([vx, vy])
        coef = np.linalg.solve(gram_xy, rhs)
    resid = max(vv - float(coef @ rhs), 0.0)
    distance = math.sqrt(resid) / math.sqrt(vv) if vv > 0 else 0.0
    return {
        "alpha": alpha,
        "beta": beta,
        "lstsq": [float(c) for c in coef] + ([None] if vy is None else []),
        "distance_from_plane": distance,
        "norm_v": math.sqrt(vv),
    }


def project(v: Vector, x: Vector, y: Vector | None = None, origin: Vector | None = None) -> dict:
    """`plane_coordinates` of v − origin in the plane of x (δ1) and y (δ2)."""
    axes = [x] + ([y] if y is not None else [])
    return plane_coordinates(*plane_products(v, x, y, origin), gram(axes))


# --- PCA --------------------------------------------------------------------------------------
def principal_components(gram_tt) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA from the uncentred Gram matrix of T points: (λ, U), λ descending (≥ 0), U's columns the
    eigenvectors of the centred Gram C G C (C = I − 1/T). With D_c the mean-centred points
    (T×P) and D_c = U S Vᵀ its SVD: λ = S², and the points' coordinates on the principal
    directions are U·sqrt(λ); the k-th unit direction is D_cᵀ u_k / sqrt(λ_k)."""
    g = torch.as_tensor(gram_tt).double()
    T = g.shape[0]
    center_mat = torch.eye(T, dtype=torch.float64) - 1.0 / T
    gc = center_mat @ g @ center_mat
    gc = (gc + gc.T) / 2
    evals, evecs = torch.linalg.eigh(gc)
    order = torch.argsort(evals, descending=True)
    return evals[order].clamp_min(0), evecs[:, order]


def pca_of_gram(gram_tt, components: int = 2) -> dict:
    """Li et al.'s PCA of T points from their T×T Gram matrix (`principal_components`), k =
    max(1, min(components, T − 1)) components: {"explained_variance" (λ_k/(T − 1), sklearn's),
    "explained_variance_ratio" (λ_k / Σλ; NaN when Σλ = 0), "singular_values" (sqrt(λ_k)),
    "coordinates" [[c_1, …, c_k] per point] (u_k[t]·sqrt(λ_k), each component's sign fixed so the
    last point's coordinate is ≥ 0), "num_snapshots" (T)}."""
    evals, evecs = principal_components(gram_tt)
    T = evals.shape[0]
    k = max(1, min(int(components), T - 1))
    total = float(evals.sum())
    coords = evecs[:, :k] * evals[:k].sqrt()
    signs = torch.where(coords[-1] < 0, -1.0, 1.0).double()
    coords = coords * signs
    return {
        "explained_variance": (evals[:k] / (T - 1)).tolist(),
        "explained_variance_ratio": (evals[:k] / total).tolist() if total > 0 else [math.nan] * k,
        "singular_values": evals[:k].sqrt().tolist(),
        "coordinates": coords.tolist(),
        "num_snapshots": T,
    }


def pca(vectors: Sequence[Vector], components: int = 2) -> dict:
    """`pca_of_gram` of the vectors' Gram matrix (the PCA of the points v_t, centred on their mean)."""
    return pca_of_gram(gram(vectors), components)
