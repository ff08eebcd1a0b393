"""Parameters and the layer map: which weights count, and how their names map to the paper's layers.

The one place that knows (a) which parameters count — for snapshots, checkpoints, directions
and every analysis — (b) which layer a parameter name belongs to, and (c) the bias/LayerNorm
rule (Li et al.'s `ignore=biasbn`; also the weight-decay exemption of the BERT recipe).

Parameters are those of ``model.named_parameters()`` that require grad (tied parameters once,
frozen ones excluded), i.e. the keys of a Hugging Face checkpoint and of the snapshot files.
Every parameter belongs to one *layer* of the paper's layer-wise analysis:

``embeddings`` · ``layer.0`` … ``layer.{L-1}`` (the encoder's ordered transformer blocks, 0-based) ·
``pooler`` · ``head`` (the task classifier)

and a *depth* along the forward pass (embeddings 0, layer i → i+1, pooler L+1, head L+2), which
tells the evaluator how much of the forward pass a direction confined to those layers leaves
unchanged.

The map from names to layers, per architecture (every `AutoModelForSequenceClassification` in
`SUPPORTED_ARCHITECTURES`; ``<base>`` is the model's base prefix, ``bert.``, ``roberta.``, …):

- blocks: ``<base>.encoder.layer.<i>.`` (BERT, RoBERTa/XLM-R, ELECTRA, DeBERTa-v2/v3),
  ``<base>.transformer.layer.<i>.`` (DistilBERT), ``<base>.layers.<i>.`` (ModernBERT),
  ``<base>.encoder.albert_layer_groups.<g>.`` (ALBERT: one block per *parameter group*, applied
  num_hidden_layers / num_hidden_groups times — see `shared_block_note`);
- ``pooler``: what runs between the last block and the task head: BERT/ALBERT's ``pooler``,
  DeBERTa's ``pooler`` (ContextPooler), ModernBERT's ``final_norm`` and prediction ``head``;
- ``head``: ``classifier.*`` (RoBERTa/ELECTRA's two-layer head included) and DistilBERT's
  ``pre_classifier``;
- ``embeddings``: the rest of the base model — the embeddings and what feeds every block
  (ELECTRA's ``embeddings_project``, ALBERT's ``embedding_hidden_mapping_in``, DeBERTa's relative
  position embeddings ``encoder.rel_embeddings`` and their LayerNorm), so depth 0 is conservative.

`check_architecture(model)` checks this against the model's module structure (its ordered
list of transformer blocks, found as the outermost `nn.ModuleList` of identical parameterised
modules): every block's parameters must map to that block's layer. An architecture where they
do not is an `UnsupportedArchitecture` error naming it, raised before any training or evaluation.

Selectors restrict a direction to a subset: ``all``, ``embeddings``, ``encoder``, ``layer.<i>``,
``layers.<i>-<j>`` (inclusive), ``pooler``, ``head``; a list is their union.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import torch

from bertviz_landscape.contracts.errors import BadInput, LandscapeError

# a transformer block: <...>.layer.<i>. | <...>.layers.<i>. | ALBERT's <...>.albert_layer_groups.<g>.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|albert_layer_groups)\.(\d+)\.")
_HEAD_ROOTS = ("classifier", "pre_classifier", "score")  # top-level modules of the task head
_POOLER = re.compile(r"(?:^|\.)(?:pooler|final_norm)\.|^head\.")

# model_type → architecture name, for the tests' and README's table; see check_architecture
SUPPORTED_ARCHITECTURES = {
    "bert": "BERT",
    "roberta": "RoBERTa",
    "xlm-roberta": "XLM-R",
    "distilbert": "DistilBERT",
    "electra": "ELECTRA",
    "albert": "ALBERT",
    "deberta-v2": "DeBERTa-v2/v3",
    "modernbert": "ModernBERT",
}
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
    """The number of transformer blocks (distinct parameter sets: ALBERT's shared layer counts once)."""
    found = [int(layer[6:]) for n in names if (layer := layer_of(n)).startswith("layer.")]
    return max(found) + 1 if found else 0


def layer_of(name: str) -> str:
    """The paper's layer a parameter belongs to: embeddings, layer.<i>, pooler or head."""
    if name.split(".", 1)[0] in _HEAD_ROOTS:
        return "head"
    if _POOLER.search(name):
        return "pooler"
    if m := _LAYER.search(name):
        return f"layer.{int(m.group(1))}"
    return "embeddings"


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


class UnsupportedArchitecture(BadInput):
    """A model whose module structure the layer map does not know."""


def _architecture(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    kind = getattr(config, "model_type", None) or "unknown model_type"
    return f"{kind} ({type(model).__name__})"


def transformer_blocks(model: torch.nn.Module) -> tuple[str, list[torch.nn.Module]]:
    """(prefix, blocks): the encoder's ordered transformer blocks, found from the module structure.

    The outermost `nn.ModuleList` whose items are modules of one class with parameters, e.g.
    ``bert.encoder.layer``, ``distilbert.transformer.layer``, ``model.layers``,
    ``albert.encoder.albert_layer_groups``. ("", []) when the model has none.
    """
    for prefix, module in model.named_modules():
        if not isinstance(module, torch.nn.ModuleList) or len(module) == 0:
            continue
        kinds = {type(m) for m in module}
        if len(kinds) == 1 and all(any(True for _ in m.parameters()) for m in module):
            return prefix, list(module)
    return "", []


def check_architecture(model: torch.nn.Module) -> int:
    """The number of transformer blocks, after checking that the layer map knows this model.

    Every block's trainable parameters must map to its layer (``layer.<i>``) and nothing else may;
    otherwise an `UnsupportedArchitecture` naming the architecture (model_type and class).
    """
    prefix, blocks = transformer_blocks(model)
    names = list(trainable_parameters(model))
    supported = ", ".join(sorted(set(SUPPORTED_ARCHITECTURES.values())))
    if not blocks:
        raise UnsupportedArchitecture(
            f"architecture {_architecture(model)} is not supported: no ordered list of transformer "
            f"blocks in its module structure (supported: {supported})"
        )
    in_blocks = set()
    ids = {id(p): n for n, p in trainable_parameters(model).items()}
    for i, block in enumerate(blocks):
        for p in block.parameters():
            name = ids.get(id(p))
            if name is None:
                continue
            in_blocks.add(name)
            if layer_of(name) != f"layer.{i}":
                raise UnsupportedArchitecture(
                    f"architecture {_architecture(model)} is not supported: parameter {name!r} of block "
                    f"{prefix}.{i} maps to {layer_of(name)!r}, not layer.{i} (supported: {supported})"
                )
    stray = [n for n in names if n not in in_blocks and layer_of(n).startswith("layer.")]
    if stray:
        raise UnsupportedArchitecture(
            f"architecture {_architecture(model)} is not supported: parameter {stray[0]!r} looks like "
            f"a block's but is outside {prefix} (supported: {supported})"
        )
    return len(blocks)


def shared_block_note(config) -> str | None:
    """What the layer-wise analyses mean when blocks share parameters (ALBERT); None otherwise.

    `config`: the model's Hugging Face config (or a dict of it)."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    groups, applied = get("num_hidden_groups"), get("num_hidden_layers")
    if get("model_type") != "albert" or not groups or not applied:
        return None
    return (
        f"ALBERT shares parameters across depth: {applied} layers use {groups} parameter group(s), so "
        f"layer.<g> is a parameter group applied {applied // groups} times; its change, curve and roll-back "
        "move every application at once, and 'lower vs upper layers' cannot be separated within a group"
    )
