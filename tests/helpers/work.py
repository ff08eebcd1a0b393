"""torch's own count of the matrix products a pass ran (FlopCounterMode), with the fused CPU
attention kernel counted: what the work tests compare the work model against."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, bmm_flop

aten = torch.ops.aten


def _sdpa_cpu(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """The fused CPU attention kernel (FlopCounterMode has no formula for it): QKᵀ and scores·V."""
    b, heads, s, d = query
    return bmm_flop((b * heads, s, d), (b * heads, d, s)) + bmm_flop((b * heads, s, s), (b * heads, s, d))


def _sdpa_cpu_backward(grad_out, query, *args, out_shape=None, **kwargs) -> int:
    """Its backward's useful products (the math path's four; the kernel also recomputes QKᵀ)."""
    return 2 * _sdpa_cpu(query, query, query)


def torch_count() -> FlopCounterMode:
    """FlopCounterMode that also counts the fused CPU attention kernel the models use (SDPA)."""
    return FlopCounterMode(
        display=False,
        custom_mapping={
            aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward,
        },
    )
