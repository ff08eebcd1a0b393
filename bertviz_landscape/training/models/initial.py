"""θ0: the starting point of a run, either pretrained BERT or the same architecture at random.

`init=pretrained` loads the encoder's weights; `init=scratch` builds the same config from a
seeded random initialisation (the architecture's own `_init_weights`, for every supported
architecture: `parameters.SUPPORTED_ARCHITECTURES`). In both cases the task head is initialised
from `seed`, and the encoder's random init depends only on `seed`, so scratch runs on different
tasks share θ0.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from bertviz_landscape.contracts.parameters import UnsupportedArchitecture, check_architecture
from bertviz_landscape.training.data.tasks import GlueTask
from bertviz_landscape.training.models.source import check_model_source, resolve_model_source

INITS = ("pretrained", "scratch")


def load_tokenizer(name_or_path: str):
    return AutoTokenizer.from_pretrained(resolve_model_source(name_or_path), trust_remote_code=False)


def check_model_architecture(
    name_or_path: str, config_overrides: dict[str, Any] | None = None, init: str | None = None
) -> int:
    """The number of transformer blocks of the model `name_or_path` names, or an
    `UnsupportedArchitecture` naming it: from its config alone (weights on the meta device, so
    nothing is loaded or allocated), for entrypoints to call before reading any data. A model that
    cannot load as `init` asks is a `ModelSourceError` (`source.check_model_source`)."""
    source = check_model_source(name_or_path, init, config_overrides)
    config = AutoConfig.from_pretrained(source, trust_remote_code=False, **dict(config_overrides or {}))
    try:
        with torch.device("meta"):
            model = AutoModelForSequenceClassification.from_config(config)
    except ValueError as err:  # no sequence-classification class for this model_type
        raise UnsupportedArchitecture(
            f"architecture {getattr(config, 'model_type', '?')} ({type(config).__name__}) has no sequence "
            f"classifier in transformers: {str(err).splitlines()[0]}"
        ) from None
    return check_architecture(model)


def build_initial_model(
    name_or_path: str,
    task: GlueTask,
    init: Literal["pretrained", "scratch"],
    seed: int = 0,
    config_overrides: dict[str, Any] | None = None,
) -> PreTrainedModel:
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    source = check_model_source(name_or_path, init, config_overrides)
    head = {
        "num_labels": task.num_labels,
        "problem_type": "regression" if task.is_regression else "single_label_classification",
    }
    overrides = dict(config_overrides or {})
    config = AutoConfig.from_pretrained(source, trust_remote_code=False, **head, **overrides)
    # one seeded generator for every random draw of the init (head, and encoder when scratch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if init == "pretrained":
            model = AutoModelForSequenceClassification.from_pretrained(
                source, config=config, trust_remote_code=False
            )
        else:
            model = AutoModelForSequenceClassification.from_config(config)
    check_architecture(model)  # an architecture the layer map does not know: an error before any training
    return model
