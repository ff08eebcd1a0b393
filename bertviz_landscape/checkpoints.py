"""θ0 and θ1 on disk: plain Hugging Face `save_pretrained` directories, written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

WEIGHT_FILES = ("*.safetensors", "*.bin")  # what save_pretrained writes (safetensors) or older ones did


def save_checkpoint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | os.PathLike) -> Path:
    """Write model + tokenizer to `path` so that it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def has_weights(path: str | os.PathLike) -> bool:
    return any(any(Path(path).glob(pattern)) for pattern in WEIGHT_FILES)


def is_checkpoint(path: str | os.PathLike) -> bool:
    """A complete save_pretrained directory: a config and weights."""
    return (Path(path) / "config.json").is_file() and has_weights(path)
