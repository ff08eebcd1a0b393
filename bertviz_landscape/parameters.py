"""Parameters and the layer map: which weights count, and how their names map to the paper's layers.

The one place that knows (a) which parameters count — for snapshots, checkpoints, directions
and every analysis — (b) which layer a parameter name belongs to, and (c) the bias/LayerNorm
rule (Li et al.'s `ignore=biasbn`; also the weight-decay exemption of the BERT recipe).

Parameters are those of ``model.named_parameters()`` that require grad (tied parameters once,
frozen ones excluded), i.e. the keys of a Hugging Face checkpoint and of the snapshot files.
Every parameter belongs to one *layer* of the paper's layer-wise analysis:

``embeddings`` · ``layer.0`` … ``layer.{L-1}`` (Hugging Face's 0-based encoder layers) ·
``pooler`` · ``head`` (the task classifier)

and a *depth* along the forward pass (embeddings 0, layer i → i+1, pooler L+1, head L+2), which
tells the evaluator how much of the forward pass a direction confined to those layers leaves
unchanged.

Selectors restrict a direction to a subset: ``all``, ``embeddings``, ``encoder``, ``layer.<i>``,
``layers.<i>-<j>`` (inclusive), ``pooler``, ``head``; a list is their union.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch

from bertviz_landscape.errors import LandscapeError

_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")
_NORM = re.compile(r"(LayerNorm|layer_norm|layernorm|\bnorm\b|\.ln_)", re.IGNORECASE)

State = "OrderedDict[str, torch.Tensor]"


def trainable_parameters(model: torch.nn.Module) -> OrderedDict[str, torch.nn.Parameter]:
    """name → parameter for every trainable parameter, tied ones counted once (named_parameters
    de-duplicates by identity), frozen ones excluded. The names are a Hugging Face checkpoint's keys."""
    return OrderedDict((n, p) for n, p in model.named_parameters() if p.requires_grad)


def parameter_state(model: torch.nn.Module) -> OrderedDict[str, torch.Tensor]:
    """A float32 copy of every trainable parameter (detached, on the model's device)."""
    return OrderedDict((n, p.detach().float().clone()) for n, p in trainable_parameters(model).items())


def num_layers(names: Iterable[str]) -> int:
    found = [int(m.group(1)) for n in names if (m := _LAYER.search(n))]
    return max(found) + 1 if found else 0


def layer_of(name: str) -> str:
    """The paper's layer a parameter belongs to: embeddings, layer.<i>, pooler or head."""
    if m := _LAYER.search(name):
        return f"layer.{int(m.group(1))}"
    if "embeddings" in name:
        return "embeddings"
    if "pooler" in name:
        return "pooler"
    return "head"


def depth_of(name: str, n_layers: int) -> int:
    layer = layer_of(name)
    if layer == "embeddings":
        return 0
    if layer.startswith("layer."):
        return int(layer.split(".")[1]) + 1
    return n_layers + 1 if layer == "pooler" else n_layers + 2


def is_bias_or_norm(name: str, tensor: torch.Tensor) -> bool:
    """Biases and LayerNorm weights: the parameters Li et al.'s `ignore=biasbn` leaves out."""
    return tensor.dim() <= 1 or name.endswith(".bias") or bool(_NORM.search(name))


def layer_names(names: Sequence[str]) -> list[str]:
    """The model's layers in forward order: embeddings, layer.0 … layer.{L-1}, pooler, head."""
    return list(layer_map(names))


def check_layer(names: Sequence[str], layer: str) -> str:
    """`layer` if the model has it, else a LandscapeError listing the layers it has."""
    known = layer_names(names)
    if layer not in known:
        raise LandscapeError(f"unknown layer {layer!r}; this model has {', '.join(known)}")
    return layer


def layer_map(names: Sequence[str]) -> OrderedDict[str, list[str]]:
    """layer → its parameter names, in forward order."""
    n = num_layers(names)
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for name in sorted(names, key=lambda s: depth_of(s, n)):
        groups.setdefault(layer_of(name), []).append(name)
    return groups


def _matches(selector: str, layer: str, n_layers: int) -> bool:
    if selector == "all":
        return True
    if selector == "encoder":
        return layer.startswith("layer.")
    if selector in ("embeddings", "pooler", "head"):
        return layer == selector
    if m := re.fullmatch(r"layer\.(-?\d+)", selector):
        i = int(m.group(1))
        i = i + n_layers if i < 0 else i  # layer.-1: the top layer
        return layer == f"layer.{i}"
    if m := re.fullmatch(r"layers\.(\d+)-(\d+)", selector):
        lo, hi = int(m.group(1)), int(m.group(2))
        return layer.startswith("layer.") and lo <= int(layer.split(".")[1]) <= hi
    raise LandscapeError(
        f"unknown parameter selector {selector!r}; use all, embeddings, encoder, layer.<i>, "
        "layers.<i>-<j>, pooler or head"
    )


def select_parameters(names: Sequence[str], selectors: str | Sequence[str] | None = "all") -> list[str]:
    """The parameter names a direction may move (in model order)."""
    if selectors is None:
        selectors = ["all"]
    if isinstance(selectors, str):
        selectors = [selectors]
    selectors = [str(s) for s in selectors]
    n = num_layers(names)
    for s in selectors:  # validate every selector, and that it names something that exists
        if not any(_matches(s, layer_of(name), n) for name in names):
            raise LandscapeError(
                f"parameter selector {s!r} matches no parameter of this model ({n} encoder layers)"
            )
    return [name for name in names if any(_matches(s, layer_of(name), n) for s in selectors)]
