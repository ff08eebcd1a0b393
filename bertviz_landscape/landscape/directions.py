"""Directions in weight space: the axes δ1 (x) and δ2 (y) of a landscape around a centre point.

A point of the landscape is θ = centre + α·δ1 + β·δ2. Three recipes:

- `difference` (Hao et al.): δ1 = θ1 − θ0, δ2 = θ2 − θ0 (θ2: the same θ0 trained on another
  task), centre θ0, so (0,0) is the start and (1,0) the end of fine-tuning. Optionally δ2 is
  rescaled to ‖δ1‖.
- `random` (Li et al.): seeded Gaussian directions, normalised per filter (each output row
  scaled to the norm of the centre's row), per layer (parameter tensor), or not at all.
- `pca` (Li et al.): the top two principal directions of a run's snapshot deltas θ_t − θ0,
  computed through their small T×T Gram matrix, never a T×P matrix.

Every recipe can be confined to a subset of parameters (see `parameters.select_parameters`);
outside it, and for biases/LayerNorm when `bias_and_norm="exclude"`, the direction is zero.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Sequence

import torch

from bertviz_landscape.errors import LandscapeError
from bertviz_landscape.parameters import is_bias_or_norm, layer_map

Tensors = "OrderedDict[str, torch.Tensor]"
NORMALIZATIONS = ("filter", "layer", "none")


@dataclass
class Directions:
    """δ1 (and δ2) over the moved parameters, plus how they were made and what they measure."""

    recipe: str
    x: "OrderedDict[str, torch.Tensor]"  # name → δ1 slice (float32), only moved parameters
    y: "OrderedDict[str, torch.Tensor] | None" = None
    center: str = "theta0"  # which checkpoint the grid is centred on
    info: dict = field(default_factory=dict)  # recipe parameters (seed, normalisation, ...)

    @property
    def names(self) -> list[str]:
        return list(self.x)

    @property
    def two_d(self) -> bool:
        return self.y is not None

    def summary(self) -> dict:
        """Norms, cosine and per-layer norms: what the surface file records about its axes."""
        out = {"recipe": self.recipe, "center": self.center, "parameters": len(self.x), **self.info}
        out["num_elements"] = int(sum(t.numel() for t in self.x.values()))
        out["norm_x"] = norm(self.x)
        out["layer_norms_x"] = layer_norms(self.x)
        if self.y is not None:
            out["norm_y"] = norm(self.y)
            out["layer_norms_y"] = layer_norms(self.y)
            out["cosine_xy"] = cosine(self.x, self.y)
        return out


def dot(a: dict, b: dict) -> float:
    return float(sum(torch.sum(a[k].double() * b[k].double()) for k in a if k in b))


def norm(a: dict) -> float:
    return math.sqrt(dot(a, a))


def cosine(a: dict, b: dict) -> float:
    na, nb = norm(a), norm(b)
    return dot(a, b) / (na * nb) if na > 0 and nb > 0 else float("nan")


def layer_norms(a: dict) -> dict[str, float]:
    return {layer: math.sqrt(sum(float(a[n].double().pow(2).sum()) for n in names)) for layer, names in layer_map(list(a)).items()}


def _moved(names: Sequence[str], state: dict, bias_and_norm: str) -> list[str]:
    if bias_and_norm not in ("include", "exclude"):
        raise LandscapeError(f"bias_and_norm must be include or exclude, got {bias_and_norm!r}")
    moved = [n for n in names if bias_and_norm == "include" or not is_bias_or_norm(n, state[n])]
    if not moved:
        raise LandscapeError("the direction moves no parameter (selection empty after excluding biases/LayerNorm)")
    return moved


def difference(
    theta0: dict,
    theta1: dict,
    theta2: dict | None,
    names: Sequence[str],
    two_d: bool,
    rescale_y: bool = False,
    bias_and_norm: str = "include",
) -> Directions:
    """The paper's axes: δ1 = θ1 − θ0 and (2D) δ2 = θ2 − θ0, centred on θ0."""
    if two_d and theta2 is None:
        raise LandscapeError("a 2D difference surface needs theta2 (θ0 trained on another task): set theta2=<checkpoint>")
    moved = _moved(names, theta0, bias_and_norm)
    x = OrderedDict((n, theta1[n] - theta0[n]) for n in moved)
    y = OrderedDict((n, theta2[n] - theta0[n]) for n in moved) if two_d else None
    info = {"rescale_y": bool(rescale_y), "bias_and_norm": bias_and_norm}
    if norm(x) == 0:
        raise LandscapeError("theta1 equals theta0 on the selected parameters: δ1 = θ1 − θ0 is zero")
    if y is not None:
        ny = norm(y)
        if ny == 0:
            raise LandscapeError("theta2 equals theta0 on the selected parameters: δ2 = θ2 − θ0 is zero")
        info["norm_y_before_rescale"] = ny
        if rescale_y:
            scale = norm(x) / ny
            y = OrderedDict((n, t * scale) for n, t in y.items())
    return Directions("difference", x, y, "theta0", info)


def _normalize(d: torch.Tensor, w: torch.Tensor, how: str) -> torch.Tensor:
    if how == "none":
        return d
    if how == "layer" or d.dim() <= 1:
        return d * (w.norm() / (d.norm() + 1e-10))
    rows_d = d.reshape(d.shape[0], -1)
    rows_w = w.reshape(w.shape[0], -1)
    scale = rows_w.norm(dim=1, keepdim=True) / (rows_d.norm(dim=1, keepdim=True) + 1e-10)
    return (rows_d * scale).reshape(d.shape)


def random_directions(
    center: dict,
    names: Sequence[str],
    two_d: bool,
    seed: int = 0,
    normalization: Literal["filter", "layer", "none"] = "filter",
    bias_and_norm: str = "exclude",
    center_role: str = "theta1",
) -> Directions:
    """Li et al.'s seeded Gaussian directions, normalised to the centre's filters or layers."""
    if normalization not in NORMALIZATIONS:
        raise LandscapeError(f"unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}")
    moved = _moved(names, center, bias_and_norm)
    gen = torch.Generator().manual_seed(int(seed))

    def draw() -> OrderedDict:
        return OrderedDict(
            (n, _normalize(torch.randn(center[n].shape, generator=gen), center[n].cpu(), normalization).to(center[n].device))
            for n in moved
        )

    x = draw()
    y = draw() if two_d else None
    return Directions("random", x, y, center_role, {"seed": int(seed), "normalization": normalization, "bias_and_norm": bias_and_norm})


def pca_directions(
    snapshots,
    names: Sequence[str],
    two_d: bool,
    bias_and_norm: str = "include",
    scale: float | None = None,
    center_role: str = "theta1",
    chunk_elements: int = 1 << 22,
) -> Directions:
    """Top principal directions of the snapshot deltas θ_t − θ0 (Li et al.'s trajectory PCA).

    The T×T Gram matrix G = Σ_p D_p D_pᵀ is accumulated one parameter at a time (D_p: the T
    snapshots of parameter p), centred (PCA removes the mean snapshot), and diagonalised; the
    k-th direction is Σ_t u_k[t]·δ_t / sqrt(λ_k) (unit norm), built in a second pass. `scale`
    rescales the unit directions (e.g. to ‖θ1 − θ0‖) so grid units are comparable to the
    difference recipe.
    """
    records = snapshots.records
    T = len(records)
    if T < 3:
        raise LandscapeError(f"pca directions need at least 3 snapshots; {snapshots.directory} has {T}")
    available = set(snapshots.parameter_names)
    missing = [n for n in names if n not in available]
    if missing:
        raise LandscapeError(f"snapshots in {snapshots.directory} lack parameters {missing[:3]}")
    first = snapshots.delta(records[0].step, list(names))
    moved = _moved(names, {n: first[n] for n in names}, bias_and_norm)
    gram = torch.zeros(T, T, dtype=torch.float64)
    for n in moved:
        numel = first[n].numel()
        for start in range(0, numel, chunk_elements):
            block = torch.stack(
                [snapshots.delta(r.step, [n])[n].reshape(-1)[start:start + chunk_elements].double() for r in records]
            )
            gram += block @ block.T
    center_mat = torch.eye(T, dtype=torch.float64) - 1.0 / T
    gc = center_mat @ gram @ center_mat
    evals, evecs = torch.linalg.eigh(gc)
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order].clamp_min(0), evecs[:, order]
    total = float(evals.sum())
    k = 2 if two_d else 1
    if total <= 0 or float(evals[k - 1]) <= 0:
        raise LandscapeError(f"snapshots in {snapshots.directory} do not span {k} direction(s) (zero variance)")
    weights = [evecs[:, i] / math.sqrt(float(evals[i])) for i in range(k)]
    dirs = [OrderedDict((n, torch.zeros_like(first[n], dtype=torch.float32)) for n in moved) for _ in range(k)]
    for t, (record, delta) in enumerate(snapshots.iter_deltas(list(moved))):
        for i in range(k):
            for n in moved:
                dirs[i][n].add_(delta[n].float(), alpha=float(weights[i][t]))
    if scale is not None:
        for d in dirs:
            factor = scale / norm(d)
            for n in d:
                d[n].mul_(factor)
    info = {
        "snapshots": str(snapshots.directory),
        "num_snapshots": T,
        "explained_variance_ratio": [float(evals[i]) / total for i in range(k)],
        "scale": scale,
        "bias_and_norm": bias_and_norm,
    }
    return Directions("pca", dirs[0], dirs[1] if two_d else None, center_role, info)
