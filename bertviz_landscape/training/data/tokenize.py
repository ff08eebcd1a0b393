"""Tokenise a GLUE split once and keep it: a disk cache keyed by the source and the tokenizer; and
which of the tokenised columns a model takes (`takes_token_type_ids`)."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
from pathlib import Path

import datasets
from transformers import PretrainedConfig, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from bertviz_landscape.contracts.atomic import atomic_path

MODEL_COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "labels")

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("BVL_CACHE_DIR", Path.home() / ".cache" / "bertviz_landscape")).expanduser()


def _tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    vocab = tokenizer.get_vocab()
    digest = hashlib.sha1(json.dumps(sorted(vocab.items())).encode()).hexdigest()
    lower = tokenizer.do_lower_case if hasattr(tokenizer, "do_lower_case") else ""
    return f"{type(tokenizer).__name__}:{digest}:{lower}"


def tokenize(
    ds: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int = 128,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """Add input_ids/token_type_ids/attention_mask/labels (unpadded; pad per batch).

    The result is cached on disk under `cache_dir` (default $BVL_CACHE_DIR or
    ~/.cache/bertviz_landscape), keyed by the dataset's fingerprint, the vocabulary and
    `max_length`; a second call loads it instead of tokenising again. Pass cache_dir=False
    to skip the cache.
    """
    has_pair = any(b is not None for b in ds["text_b"][:1])

    def encode(batch):
        pair = (batch["text_a"], batch["text_b"]) if has_pair else (batch["text_a"],)
        out = tokenizer(*pair, truncation=True, max_length=max_length, return_token_type_ids=True)
        out["labels"] = batch["label"]
        return out

    def run() -> datasets.Dataset:
        return ds.map(
            encode, batched=True, remove_columns=ds.column_names, desc="tokenise", load_from_cache_file=False
        )

    if cache_dir is False:
        return run()
    key = hashlib.sha1(
        f"{ds._fingerprint}|{_tokenizer_fingerprint(tokenizer)}|{max_length}".encode()
    ).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    target = root / "tokenized" / key
    if target.exists():
        try:
            return datasets.load_from_disk(str(target))
        except Exception as err:  # a corrupt entry (torn copy, disk error): rebuild it, and say so
            log.warning(
                "tokenised cache %s is unreadable (%s: %s); rebuilding it", target, type(err).__name__, err
            )
    tokenized = run()
    with atomic_path(
        target, directory=True
    ) as tmp:  # two processes may race: the last rename wins, same content
        tokenized.save_to_disk(str(tmp))
    return datasets.load_from_disk(str(target))


def takes_token_type_ids(config: PretrainedConfig) -> bool:
    """Whether the sequence classifier of `config` uses token type ids: its forward takes them and
    it has more than one type embedding (RoBERTa's single type, DeBERTa's none, DistilBERT and
    ModernBERT's missing argument: not fed, the same as feeding zeros where the argument exists)."""
    try:
        cls = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        return True
    takes = "token_type_ids" in inspect.signature(cls.forward).parameters
    return takes and int(getattr(config, "type_vocab_size", 2) or 0) > 1
