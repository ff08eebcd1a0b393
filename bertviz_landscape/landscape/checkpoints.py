"""θ0, θ1, θ2: checkpoint directories from training runs, loaded and checked against each other.

A checkpoint is a Hugging Face ``save_pretrained`` directory of an
``AutoModelForSequenceClassification`` (``checkpoints/init`` = θ0, ``checkpoints/final`` = θ1
of a training run). Checkpoints that meet in one landscape must share the architecture and the
vocabulary; each is identified in the surface file by its path and a content hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bertviz_landscape.checkpoints import WEIGHT_FILES, has_weights
from bertviz_landscape.landscape.errors import LandscapeError
from bertviz_landscape.landscape.parameters import parameter_state

# config fields that must agree for two checkpoints to live in one weight space
ARCHITECTURE_KEYS = (
    "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "vocab_size", "max_position_embeddings", "type_vocab_size", "num_labels",
)


@dataclass
class Checkpoint:
    role: str  # theta0 / theta1 / theta2
    path: Path
    sha256: str
    architecture: dict
    vocab_sha1: str | None
    state: "dict[str, torch.Tensor]"  # float32 trainable parameters

    def describe(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "vocab_sha1": self.vocab_sha1}


def content_hash(path: Path) -> str:
    """sha256 over the checkpoint's weight files (names and bytes), in name order."""
    digest = hashlib.sha256()
    files = sorted({f for pattern in WEIGHT_FILES for f in path.glob(pattern)})
    for f in files:
        digest.update(f.name.encode())
        with open(f, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def _vocab_hash(path: Path) -> str | None:
    vocab = path / "vocab.txt"
    if vocab.is_file():
        return hashlib.sha1(vocab.read_bytes()).hexdigest()
    tok = path / "tokenizer.json"
    if tok.is_file():
        model = json.loads(tok.read_text()).get("model", {})
        return hashlib.sha1(json.dumps(model.get("vocab"), sort_keys=True).encode()).hexdigest()
    return None


def check_checkpoint_dir(role: str, path: str | os.PathLike | None) -> Path:
    if path in (None, "", "???"):
        raise LandscapeError(f"checkpoint {role} is not given (set {role}=<checkpoint directory>)")
    p = Path(str(path)).expanduser().resolve()
    if not p.is_dir():
        raise LandscapeError(f"checkpoint {role}: directory {str(p)!r} does not exist")
    if not (p / "config.json").is_file():
        raise LandscapeError(f"checkpoint {role}: {str(p)!r} has no config.json (not a save_pretrained directory)")
    if not has_weights(p):
        raise LandscapeError(f"checkpoint {role}: {str(p)!r} has no weight files (*.safetensors or *.bin)")
    return p


def read_architecture(path: Path) -> dict:
    config = json.loads((path / "config.json").read_text())
    arch = {k: config.get(k) for k in ARCHITECTURE_KEYS}
    if arch["num_labels"] is None:
        arch["num_labels"] = len(config.get("id2label") or {}) or 2
    return arch


def check_compatible(checkpoints: dict[str, Path]) -> None:
    """Same architecture and vocabulary for every checkpoint, else a LandscapeError naming both."""
    items = list(checkpoints.items())
    role0, path0 = items[0]
    arch0, vocab0 = read_architecture(path0), _vocab_hash(path0)
    for role, path in items[1:]:
        arch = read_architecture(path)
        diff = {k: (arch0[k], arch[k]) for k in ARCHITECTURE_KEYS if arch0[k] != arch[k]}
        if diff:
            detail = ", ".join(f"{k}: {a} vs {b}" for k, (a, b) in diff.items())
            raise LandscapeError(f"checkpoints {role0} and {role} have different architectures ({detail})")
        vocab = _vocab_hash(path)
        if vocab0 and vocab and vocab0 != vocab:
            raise LandscapeError(f"checkpoints {role0} and {role} have different vocabularies (tokenizer files differ)")


def load_model(path: Path):
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval()


def load_checkpoints(theta0, theta1=None, theta2=None):
    """Validate and load: returns (model at θ0, {role: Checkpoint}).

    Raises LandscapeError for a missing directory or mismatched architectures/vocabularies
    before any weights are read.
    """
    paths = {"theta0": check_checkpoint_dir("theta0", theta0)}
    for role, value in (("theta1", theta1), ("theta2", theta2)):
        if value not in (None, ""):
            paths[role] = check_checkpoint_dir(role, value)
    check_compatible(paths)
    model = None
    out: dict[str, Checkpoint] = {}
    for role, path in paths.items():
        m = load_model(path)
        if model is None:
            model = m
        state = parameter_state(m)
        if out:
            ref = out["theta0"].state
            if list(state) != list(ref) or any(state[k].shape != ref[k].shape for k in ref):
                raise LandscapeError(f"checkpoints theta0 and {role} have different parameters (names or shapes)")
        out[role] = Checkpoint(role, path, content_hash(path), read_architecture(path), _vocab_hash(path), state)
    return model, out
