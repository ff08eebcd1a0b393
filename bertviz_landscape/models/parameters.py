"""Which weights count: the parameter set shared by snapshots, checkpoints and landscapes."""

from __future__ import annotations

from collections import OrderedDict

import torch


def trainable_parameters(model: torch.nn.Module) -> "OrderedDict[str, torch.nn.Parameter]":
    """name → parameter for every trainable parameter, tied ones counted once (named_parameters
    de-duplicates by identity), frozen ones excluded. The names are a Hugging Face checkpoint's keys."""
    return OrderedDict((n, p) for n, p in model.named_parameters() if p.requires_grad)
