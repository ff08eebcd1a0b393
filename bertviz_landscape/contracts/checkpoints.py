"""θ0, θ1, θ2 on disk: the one module that writes, reads, validates and hashes checkpoints.

A checkpoint is a Hugging Face ``save_pretrained`` directory of an
``AutoModelForSequenceClassification`` plus its tokenizer (a run's ``checkpoints/init`` = θ0,
``checkpoints/final`` = θ1; see `bertviz_landscape.contracts.rundir`). It is written atomically
(complete or absent). Checkpoints that meet in one landscape must share the architecture and
the vocabulary; each is identified by its path and a content hash of its weight files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bertviz_landscape.contracts.atomic import atomic_path
from bertviz_landscape.contracts.errors import CheckpointError
from bertviz_landscape.contracts.fingerprints import update_with_file
from bertviz_landscape.contracts.parameters import parameter_state, trainable_parameters

WEIGHT_FILES = ("*.safetensors", "*.bin")  # what save_pretrained writes (safetensors) or older ones did

# config fields that must agree for two checkpoints to live in one weight space
ARCHITECTURE_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "type_vocab_size",
    "num_labels",
)


# --- write ----------------------------------------------------------------------------------
def save_checkpoint(model, tokenizer, path: str | os.PathLike) -> Path:
    """Write model + tokenizer to `path` so that it appears complete or not at all."""
    with atomic_path(path, directory=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(path)


# --- inspect --------------------------------------------------------------------------------
def has_weights(path: str | os.PathLike) -> bool:
    return any(any(Path(path).glob(pattern)) for pattern in WEIGHT_FILES)


def is_checkpoint(path: str | os.PathLike) -> bool:
    """A complete save_pretrained directory: a config and weights."""
    return (Path(path) / "config.json").is_file() and has_weights(path)


def content_hash(path: str | os.PathLike) -> str:
    """sha256 over the checkpoint's weight files (names and bytes), in name order."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted({f for pattern in WEIGHT_FILES for f in path.glob(pattern)})
    for f in files:
        digest.update(f.name.encode())
        update_with_file(digest, f)
    return digest.hexdigest()


def vocab_hash(path: str | os.PathLike) -> str | None:
    path = Path(path)
    vocab = path / "vocab.txt"
    if vocab.is_file():
        return hashlib.sha1(vocab.read_bytes()).hexdigest()
    tok = path / "tokenizer.json"
    if tok.is_file():
        model = json.loads(tok.read_text()).get("model", {})
        return hashlib.sha1(json.dumps(model.get("vocab"), sort_keys=True).encode()).hexdigest()
    return None


def refuse_custom_code(path: str | os.PathLike) -> None:
    """A local model directory whose config.json names a model_type transformers does not know (with
    an ``auto_map``: one that asks to run the directory's own Python code) is a CheckpointError
    naming it — before transformers would ask "trust remote code?" on a terminal and wait. The
    tool never runs a checkpoint's code; every load also says ``trust_remote_code=False``."""
    config_path = Path(path) / "config.json"
    if not config_path.is_file():
        return
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, OSError):
        return  # read_architecture names a garbage config
    if not isinstance(config, dict) or not config.get("model_type"):
        return
    from transformers import CONFIG_MAPPING

    model_type = config["model_type"]
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        code = (
            "; its auto_map asks to run the checkpoint's own code, which is never done"
            if "auto_map" in config
            else ""
        )
        raise CheckpointError(
            f"{config_path}: model_type {str(model_type)[:60]!r} is not an architecture transformers "
            f"knows{code}"
        )


def read_architecture(path: str | os.PathLike) -> dict:
    config_path = Path(path) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path}: not valid JSON ({err})") from None
    if not isinstance(config, dict) or not config.get("model_type"):
        raise CheckpointError(f"{config_path}: no model_type (not a transformers model config)")
    refuse_custom_code(path)
    arch = {k: config.get(k) for k in ARCHITECTURE_KEYS}
    if arch["num_labels"] is None:
        arch["num_labels"] = len(config.get("id2label") or {}) or 2
    return arch


# --- validate -------------------------------------------------------------------------------
def check_checkpoint_dir(role: str, path: str | os.PathLike | None) -> Path:
    """The checkpoint directory `role` (theta0/theta1/theta2) as an absolute path, or a
    CheckpointError naming what is wrong with it."""
    if path in (None, "", "???"):
        raise CheckpointError(
            f"checkpoint {role} is not given (set {role}=<checkpoint directory> or run=<run dir>)"
        )
    p = Path(str(path)).expanduser().resolve()
    if not p.is_dir():
        raise CheckpointError(f"checkpoint {role}: directory {str(p)!r} does not exist")
    if not (p / "config.json").is_file():
        raise CheckpointError(
            f"checkpoint {role}: {str(p)!r} has no config.json (not a save_pretrained directory)"
        )
    if not has_weights(p):
        raise CheckpointError(f"checkpoint {role}: {str(p)!r} has no weight files (*.safetensors or *.bin)")
    return p


def check_compatible(checkpoints: dict[str, Path]) -> None:
    """Same architecture and vocabulary for every checkpoint, else a CheckpointError naming both."""
    items = list(checkpoints.items())
    role0, path0 = items[0]
    arch0, vocab0 = read_architecture(path0), vocab_hash(path0)
    for role, path in items[1:]:
        arch = read_architecture(path)
        diff = {k: (arch0[k], arch[k]) for k in ARCHITECTURE_KEYS if arch0[k] != arch[k]}
        if diff:
            detail = ", ".join(f"{k}: {a} vs {b}" for k, (a, b) in diff.items())
            raise CheckpointError(f"checkpoints {role0} and {role} have different architectures ({detail})")
        vocab = vocab_hash(path)
        if vocab0 and vocab and vocab0 != vocab:
            raise CheckpointError(
                f"checkpoints {role0} and {role} have different vocabularies (tokenizer files differ)"
            )


# --- read -----------------------------------------------------------------------------------
@dataclass
class Checkpoint:
    role: str  # theta0 / theta1 / theta2
    path: Path
    sha256: str
    architecture: dict
    vocab_sha1: str | None
    state: dict[str, torch.Tensor]  # float32 trainable parameters

    def describe(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "vocab_sha1": self.vocab_sha1}


def unreadable_weight_file(path: str | os.PathLike) -> Path | None:
    """The first weight file of checkpoint `path` that does not open (truncated, corrupt), else None."""
    from safetensors import safe_open

    for f in sorted(Path(path).glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():
                    handle.get_slice(key)
            if f.stat().st_size < 8:
                return f
        except Exception:  # safetensors raises its own error types
            return f
    return None


# safetensors' dtype names of the floating tensors a checkpoint, a snapshot or a direction holds
FLOAT_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def read_tensors(
    path: str | os.PathLike,
    names: list[str] | None = None,
    expected: dict[str, tuple[tuple[int, ...], torch.dtype | None]] | None = None,
    *,
    error: type[Exception] = CheckpointError,
) -> dict[str, torch.Tensor]:
    """The tensors `names` (default: all) of the safetensors file `path`, each checked from the
    header before its bytes are read: where `expected` gives one (``{name: (shape, dtype or
    None)}``) that name, shape and dtype; a tensor the file lacks, or one `expected` does not
    list, is refused too; a named or expected tensor must be a float (a checkpoint's integer
    buffers pass only when all tensors are read without expectations). Every float read must be
    finite. Anything else is `error` naming the file and the tensor: a transposed tensor with the
    same element count never passes as the other."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            wanted = list(names) if names is not None else keys
            missing = [n for n in wanted if n not in set(keys)]
            if missing:
                raise error(f"{path}: has no tensor {missing[0]!r}")
            out = {}
            for name in wanted:
                piece = f.get_slice(name)
                shape, dtype = tuple(int(d) for d in piece.get_shape()), str(piece.get_dtype())
                dtype = FLOAT_DTYPES.get(dtype, dtype)
                if names is not None or expected is not None or isinstance(dtype, torch.dtype):
                    check_tensor(path, name, shape, dtype, expected, error)
                out[name] = f.get_tensor(name)
                if out[name].is_floating_point():
                    check_finite(path, name, out[name], error)
            return out
    except error:
        raise
    except Exception as err:  # truncated or corrupt file (safetensors raises its own error types)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise error(f"{path}: unreadable tensor file ({type(err).__name__}: {first[:160]})") from None


def check_tensor(
    path: str | os.PathLike,
    name: str,
    shape: tuple[int, ...],
    dtype: torch.dtype | str,
    expected: dict[str, tuple[tuple[int, ...], torch.dtype | None]] | None,
    error: type[Exception] = CheckpointError,
) -> None:
    """One tensor `name` of file `path` against what it claims to be (see `read_tensors`)."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise error(f"{path}: tensor {name!r} has dtype {dtype}, not a floating-point weight")
    if expected is None:
        return
    if name not in expected:
        raise error(f"{path}: tensor {name!r} is not one of the parameters it should hold")
    want_shape, want_dtype = expected[name]
    if tuple(shape) != tuple(want_shape):
        raise error(
            f"{path}: tensor {name!r} has shape {list(shape)}, expected {list(want_shape)} "
            "(the parameter's shape in θ0)"
        )
    if want_dtype is not None and dtype != want_dtype:
        raise error(f"{path}: tensor {name!r} has dtype {dtype}, expected {want_dtype}")


def check_finite(
    path: str | os.PathLike, name: str, tensor: torch.Tensor, error: type[Exception] = CheckpointError
) -> torch.Tensor:
    """`tensor` (parameter `name` of `path`) when every value is finite; else `error` naming both:
    a diverged training's NaN weights never pass as a landscape's centre or a trajectory's point.

    One summing pass decides (3-20x faster than isfinite().all() on this CPU; every snapshot read
    is checked): a NaN or ±inf anywhere makes the sum non-finite. A non-finite sum of finite
    values (overflow) is told apart by counting exactly, so no finite tensor is refused."""
    half = tensor.dtype in (torch.float16, torch.bfloat16)
    if math.isfinite(float(torch.sum(tensor, dtype=torch.float32 if half else None))):
        return tensor
    bad = int((~torch.isfinite(tensor)).sum())
    if bad:
        raise error(f"{path}: tensor {name!r} holds {bad} non-finite value(s) (NaN or inf): a diverged run?")
    return tensor


def weight_specs(path: str | os.PathLike) -> dict[str, tuple[tuple[int, ...], None]]:
    """{name: (shape, None)} of every tensor in checkpoint `path`'s safetensors files, from their
    headers alone (no weights read); a CheckpointError naming an unreadable file."""
    from safetensors import safe_open

    specs: dict[str, tuple[tuple[int, ...], None]] = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        try:
            with safe_open(str(f), framework="pt") as handle:
                for key in handle.keys():
                    specs[key] = (tuple(int(d) for d in handle.get_slice(key).get_shape()), None)
        except Exception as err:  # safetensors raises its own error types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"checkpoint {f}: cannot read its header ({first[:160]})") from None
    return specs


def load_model(path: str | os.PathLike):
    """The sequence classifier at `path`, float32, eval mode; a CheckpointError naming the file
    when its weights or config cannot be read."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    read_architecture(path)  # a garbage or model_type-less config.json fails here, by name
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), dtype=torch.float32, trust_remote_code=False
        )
    except Exception as err:  # OSError, safetensors' SafetensorError, ValueError ...: a corrupt file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        where = unreadable_weight_file(path)
        raise CheckpointError(
            f"checkpoint {where or path}: cannot read its weights ({first[:200]})"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    for name, parameter in trainable_parameters(model).items():  # a diverged run's θ1 is no centre
        check_finite(f"checkpoint {path}", name, parameter.detach())
    return model.eval()


def check_resume_state(path: str | os.PathLike) -> Path:
    """A Lightning resume checkpoint that loads with ``weights_only=True`` (tensors and plain
    containers only: a crafted pickle runs no code, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    says); a CheckpointError naming the file otherwise (truncated, corrupt, or holding code)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # UnpicklingError, RuntimeError (truncated zip), EOFError, OSError ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: cannot read the resume state ({first[:160]}); resume=false starts the run afresh"
        ) from None
    if not isinstance(state, dict) or not {"state_dict", "loops", "global_step"} <= set(state):
        raise CheckpointError(
            f"{path}: not a Lightning resume checkpoint (no state_dict/loops/global_step); "
            "resume=false starts the run afresh"
        )
    return path


def load_checkpoints(theta0, theta1=None, theta2=None):
    """Validate and load: returns (model at θ0, {role: Checkpoint}).

    Raises CheckpointError for a missing directory or mismatched architectures/vocabularies
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
                raise CheckpointError(
                    f"checkpoints theta0 and {role} have different parameters (names or shapes)"
                )
        out[role] = Checkpoint(
            role, path, content_hash(path), read_architecture(path), vocab_hash(path), state
        )
    return model, out
