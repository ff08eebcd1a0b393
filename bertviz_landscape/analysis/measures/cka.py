"""Representation similarity: linear centred kernel alignment (CKA; Kornblith et al. 2019).

For n examples, X (n × p) and Y (n × q) the representations of the same examples by two models
(here one layer's hidden states at θ0 and at θ1), each column centred over the examples:

    CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F)        ∈ [0, 1]

It is 1 for X with itself, and unchanged by an orthogonal transform of either side's features and
by isotropic scaling — so it compares what a layer represents, not its coordinates, which
fine-tuning's small weight changes may rotate. Computed in float64 on the n × n-free form above
(p, q ≤ a few hundred hidden units).

`layer_representations(model, batches)`: per example, each hidden-state layer's mean over its
non-padding tokens (hidden_states[0] = the embeddings' output, [l + 1] = encoder layer l's), eval
mode — the representation whose CKA between θ0 and θ1 layers.py reports per layer.
"""

from __future__ import annotations

import torch

from bertviz_landscape.contracts import work
from bertviz_landscape.training.data.eval_sets import EvalSet


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two representations of the same n examples (rows), float64."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same examples on both sides, got {x.shape[0]} and {y.shape[0]} rows")
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    denom = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / denom) if float(denom) > 0 else float("nan")


def layer_representations(model: torch.nn.Module, batches: EvalSet) -> list[torch.Tensor]:
    """[hidden-state layer k] → (n examples × hidden) means over each example's non-padding tokens."""
    model.eval()
    parts: list[list[torch.Tensor]] = []
    with torch.inference_mode():
        for b in batches.batches:
            work.count_pass(model, b.attention_mask)
            out = model(**b.inputs(), output_hidden_states=True)
            mask = b.attention_mask.unsqueeze(-1).to(out.hidden_states[0].dtype)
            pooled = [(h * mask).sum(1) / mask.sum(1).clamp_min(1.0) for h in out.hidden_states]
            if not parts:
                parts = [[] for _ in pooled]
            for k, p in enumerate(pooled):
                parts[k].append(p.float().cpu())
    return [torch.cat(p) for p in parts]
