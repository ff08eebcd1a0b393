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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from bertviz_landscape.algebra import cosine, norm, principal_components
from bertviz_landscape.contracts.checkpoints import check_finite
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.parameters import is_bias_or_norm, layer_map
from bertviz_landscape.contracts.snapshots import SnapshotError

Tensors = "OrderedDict[str, torch.Tensor]"
NORMALIZATIONS = ("filter", "layer", "none")


@dataclass
class Directions:
    """δ1 (and δ2) over the moved parameters, plus how they were made and what they measure."""

    recipe: str
    x: OrderedDict[str, torch.Tensor]  # name → δ1 slice (float32), only moved parameters
    y: OrderedDict[str, torch.Tensor] | None = None
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


def layer_norms(a: dict) -> dict[str, float]:
    """‖a‖ over each layer's parameters (`layer_map`), float64."""
    return {layer: norm({n: a[n] for n in names}) for layer, names in layer_map(list(a)).items()}


def _moved(names: Sequence[str], state: dict, bias_and_norm: str) -> list[str]:
    if bias_and_norm not in ("include", "exclude"):
        raise LandscapeError(f"bias_and_norm must be include or exclude, got {bias_and_norm!r}")
    moved = [n for n in names if bias_and_norm == "include" or not is_bias_or_norm(n, state[n])]
    if not moved:
        raise LandscapeError(
            "the direction moves no parameter (selection empty after excluding biases/LayerNorm)"
        )
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
        raise LandscapeError(
            "a 2D difference surface needs theta2 (θ0 trained on another task): set theta2=<checkpoint>"
        )
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
            (
                n,
                _normalize(torch.randn(center[n].shape, generator=gen), center[n].cpu(), normalization).to(
                    center[n].device
                ),
            )
            for n in moved
        )

    x = draw()
    y = draw() if two_d else None
    return Directions(
        "random",
        x,
        y,
        center_role,
        {"seed": int(seed), "normalization": normalization, "bias_and_norm": bias_and_norm},
    )


def _pieces(shapes: OrderedDict[str, tuple], chunk_elements: int) -> list[list[tuple[str, int, int, int]]]:
    """The parameters cut into chunks of at most `chunk_elements` elements (at least one row):
    each chunk a list of (name, first row, end row, elements)."""
    chunks, current, size = [], [], 0
    for name, shape in shapes.items():
        rows = int(shape[0]) if len(shape) else 1
        row = int(math.prod(shape[1:])) if len(shape) > 1 else 1
        start = 0
        while start < rows:
            room = max(chunk_elements - size, 0)
            take = min(rows - start, max(room // row, 0))
            if take == 0:
                if current:
                    chunks.append(current)
                    current, size = [], 0
                    continue
                take = 1  # one row larger than a whole chunk: it is a chunk of its own
            current.append((name, start, start + take, take * row))
            size += take * row
            start += take
            if size >= chunk_elements:
                chunks.append(current)
                current, size = [], 0
    if current:
        chunks.append(current)
    return chunks


def _read_pieces(snapshots, record, pieces) -> list[torch.Tensor]:
    """The rows `pieces` of one snapshot file, read by slicing (memory-mapped: only those bytes)."""
    from safetensors import safe_open

    path = snapshots.check_file(record.step)  # its tensors' names, shapes and dtypes before slicing
    try:
        with safe_open(str(path), framework="pt") as f:
            out = []
            for name, r0, r1, _ in pieces:
                part = f.get_slice(name)
                piece = part[r0:r1].reshape(-1) if len(part.get_shape()) else f.get_tensor(name).reshape(-1)
                out.append(check_finite(path, name, piece, SnapshotError))
            return out
    except SnapshotError:
        raise
    except Exception as err:  # truncated or corrupt file (safetensors raises its own error types)
        first = str(err).splitlines()[0] if str(err) else ""
        raise SnapshotError(f"{path}: unreadable snapshot ({type(err).__name__}: {first})") from None


def trajectory_gram(
    snapshots, names: Sequence[str], memory_bytes: int = 512 << 20, chunk_elements: int | None = None
) -> torch.Tensor:
    """G[s, t] = ⟨δ_s, δ_t⟩ over the parameters `names`, for the snapshots δ_t = θ_t − θ0 (float64, T×T).

    Streamed: the parameters are cut into chunks of `chunk_elements` elements (default: as many
    as fit `memory_bytes` for all T snapshots in float64) and G accumulates D_c D_cᵀ chunk by
    chunk, each snapshot file opened once per chunk and only the chunk's rows read. Memory is
    T×chunk×8 bytes plus G, whatever the number of parameters.
    """
    records = snapshots.records
    T = len(records)
    if chunk_elements is None:
        chunk_elements = max(1, int(memory_bytes) // (8 * max(T, 1)))
    shape_of = {p["name"]: tuple(p["shape"]) for p in snapshots.meta["parameters"]}
    shapes = OrderedDict((n, shape_of[n]) for n in names)
    gram = torch.zeros(T, T, dtype=torch.float64)
    chunks = _pieces(shapes, int(chunk_elements))
    buffer = torch.empty(
        T, max((sum(p[3] for p in c) for c in chunks), default=0), dtype=torch.float64
    )  # reused by every chunk
    for pieces in chunks:
        width = sum(p[3] for p in pieces)
        block = buffer[:, :width]
        for t, record in enumerate(records):
            offset = 0
            for part in _read_pieces(snapshots, record, pieces):
                block[t, offset : offset + part.numel()].copy_(
                    part
                )  # fp16/bf16 → float64, no intermediate copy
                offset += part.numel()
        gram += block @ block.T
    return gram


def pca_directions(
    snapshots,
    names: Sequence[str],
    two_d: bool,
    bias_and_norm: str = "include",
    scale: float | None = None,
    center_role: str = "theta1",
    chunk_elements: int | None = None,
    memory_bytes: int = 512 << 20,
) -> Directions:
    """Top principal directions of the snapshot deltas θ_t − θ0 (Li et al.'s trajectory PCA).

    The T×T Gram matrix G = Σ_p D_p D_pᵀ is accumulated chunk by chunk (`trajectory_gram`),
    centred (PCA removes the mean snapshot), and diagonalised (`principal_components`); the
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
    evals, evecs = principal_components(trajectory_gram(snapshots, moved, memory_bytes, chunk_elements))
    # the centred eigenvectors sum to zero, so Σ_t u[t]·δ_t is the same from the mean-centred δ_t
    total = float(evals.sum())
    k = 2 if two_d else 1
    if total <= 0 or float(evals[k - 1]) <= 0:
        raise LandscapeError(
            f"snapshots in {snapshots.directory} do not span {k} direction(s) (zero variance)"
        )
    weights = [evecs[:, i] / math.sqrt(float(evals[i])) for i in range(k)]
    dirs = [
        OrderedDict((n, torch.zeros_like(first[n], dtype=torch.float32)) for n in moved) for _ in range(k)
    ]
    for t, (_record, delta) in enumerate(snapshots.iter_deltas(list(moved))):
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
        "explained_variance": [float(evals[i]) / (T - 1) for i in range(k)],  # sklearn's λ/(n − 1)
        "singular_values": [math.sqrt(float(evals[i])) for i in range(k)],
        "scale": scale,
        "bias_and_norm": bias_and_norm,
    }
    return Directions("pca", dirs[0], dirs[1] if two_d else None, center_role, info)
