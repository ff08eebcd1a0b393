"""The fixed evaluation sets: the same examples, in the same order, at every point a model is evaluated.

`DataRequest` says which examples (the seeded train/dev subsets, max_length, batch size) — the
landscape's `data` section and every analysis that evaluates a model read it; `EVAL_DATA_KEYS` is
the one list of its keys. `load_eval_sets` tokenises each split once (the tokenizer of a
checkpoint directory) into an `EvalSet`: length-sorted, per-batch-padded batches that stay on the
device.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.sections import Section, check_keywords, section
from bertviz_landscape.training.data.glue import load_glue_split
from bertviz_landscape.training.data.tokenize import takes_token_type_ids, tokenize

log = logging.getLogger(__name__)

# the data keys of an evaluation (DataRequest's fields); a training data section's own keys
# (batch_size, num_workers, …) are accepted beside them and not used
EVAL_DATA_KEYS = (
    "glue_dir",
    "max_train_samples",
    "max_eval_samples",
    "subset_seed",
    "max_length",
    "eval_batch_size",
    "cache_dir",
)
# the keys of conf/data/ that only training reads: the landscape takes them silently (the data group
# is shared); tests/test_cli_checks.py checks that every key of conf/data/glue.yaml is in one list
TRAINING_ONLY_KEYS = ("batch_size", "num_workers", "group_by_length", "length_group_batches")


def eval_data(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The evaluation keys of a data section (a training or analyze config's `data`), the rest dropped."""
    return {k: v for k, v in dict(section or {}).items() if k in EVAL_DATA_KEYS}


# A batch ends where the next (shorter) example would fill less than MIN_FILL of the batch's width
# and leave more than SLACK padding tokens (the slack keeps short sentences together: a batch of
# one 4-token sentence costs more in calls than its padding would). The examples' order is
# unchanged (longest first); only the batch boundaries move, which changes logits by the
# summation order of different matrix shapes. benchmarks/bench_padding.py measures both sides.
MIN_FILL = 0.8
SLACK = 8


def batch_by_width(
    lengths: Sequence[int], batch_size: int, min_fill: float | None = MIN_FILL, slack: int = SLACK
) -> list[range]:
    """Consecutive batches of `lengths` (sorted longest first): at most `batch_size` examples each,
    and, with `min_fill`, a new batch wherever an example is shorter than `min_fill` × the current
    batch's first (longest) example by more than `slack` tokens."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if any(b > a for a, b in zip(lengths, lengths[1:])):
        raise ValueError("lengths must be sorted longest first")
    if min_fill is not None and not 0.0 <= min_fill <= 1.0:
        raise ValueError(f"min_fill must lie in [0, 1], got {min_fill}")
    if slack < 0:
        raise ValueError(f"slack must be >= 0, got {slack}")
    out, start = [], 0
    while start < len(lengths):
        end = min(start + batch_size, len(lengths))
        if min_fill is not None:
            width = lengths[start]
            cut = start + 1
            while cut < end and (lengths[cut] >= min_fill * width or width - lengths[cut] <= slack):
                cut += 1
            end = cut
        out.append(range(start, end))
        start = end
    return out


@dataclass
class Batch:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    labels: torch.Tensor

    def inputs(self, token_type_ids: bool = True) -> dict:
        """The model's inputs; `token_type_ids=False` for models that do not use them."""
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if token_type_ids and self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        return out


@dataclass
class EvalSet:
    """One split's fixed examples as length-sorted, per-batch-padded batches on the device."""

    name: str
    batches: list[Batch]
    num_examples: int

    @classmethod
    def from_tokenized(
        cls,
        name: str,
        rows,
        batch_size: int,
        pad_id: int,
        device="cpu",
        regression=False,
        min_fill: float | None = MIN_FILL,
        slack: int = SLACK,
    ) -> EvalSet:
        """`rows`: a tokenised dataset (input_ids, attention_mask, [token_type_ids], labels); the
        batches as `batch_by_width` cuts the length-sorted examples (`min_fill=None`: every
        `batch_size` examples, padded to the longest)."""
        ids = list(rows["input_ids"])
        tt = list(rows["token_type_ids"]) if "token_type_ids" in rows.column_names else None
        labels = list(rows["labels"])
        order = sorted(range(len(ids)), key=lambda i: (-len(ids[i]), i))  # longest first, stable
        batches = []
        for chunk in batch_by_width([len(ids[i]) for i in order], batch_size, min_fill, slack):
            chunk = [order[k] for k in chunk]
            width = len(ids[chunk[0]])
            inp = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            ttt = torch.zeros((len(chunk), width), dtype=torch.long) if tt is not None else None
            for r, i in enumerate(chunk):
                n = len(ids[i])
                inp[r, :n] = torch.tensor(ids[i])
                mask[r, :n] = 1
                if ttt is not None:
                    ttt[r, :n] = torch.tensor(tt[i])
            lab = torch.tensor([labels[i] for i in chunk], dtype=torch.float32 if regression else torch.long)
            batches.append(
                Batch(
                    inp.to(device),
                    mask.to(device),
                    ttt.to(device) if ttt is not None else None,
                    lab.to(device),
                )
            )
        return cls(name, batches, len(ids))


@section
class DataRequest(Section):
    """Which examples every grid point is evaluated on (the same ones, in the same order). The
    defaults are the landscape's and the analyses' data section (conf/data/glue.yaml with
    conf/landscape.yaml's and conf/analyze.yaml's `data:` on top)."""

    glue_dir: str | None = field(default_factory=lambda: os.environ.get("GLUE_DIR"))
    max_train_samples: int | None = 1024
    max_eval_samples: int | None = None
    subset_seed: int = 0
    max_length: int | None = None  # None: the run's max_length
    eval_batch_size: int = 64
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        def count(key):
            v = getattr(self, key)
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or int(v) < 1:
                raise LandscapeError(f"data.{key} must be a positive integer or null, got {v!r}")
            return int(v)

        for key in ("max_train_samples", "max_eval_samples", "max_length"):
            object.__setattr__(self, key, count(key))
        object.__setattr__(self, "eval_batch_size", count("eval_batch_size") or 1)
        try:
            object.__setattr__(self, "subset_seed", int(self.subset_seed or 0))
        except (TypeError, ValueError):
            raise LandscapeError(f"data.subset_seed must be an integer, got {self.subset_seed!r}") from None

    @classmethod
    def merged(cls, base, values: Mapping[str, Any]) -> DataRequest:
        """`values` on top of `base`: the evaluation keys, and the training-only keys of the shared
        data group (accepted, not used)."""
        check_keywords("DataRequest", values, (*EVAL_DATA_KEYS, *TRAINING_ONLY_KEYS))
        return super().merged(base, eval_data(values))

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> DataRequest:
        """The request from a data section (a composed config's, plain): an unknown key is warned
        about (the command line's unused-key check names it too), the training-only keys ignored;
        a key not given is null (as the section it comes from says)."""
        known = set(EVAL_DATA_KEYS) | set(TRAINING_ONLY_KEYS)
        for key in sorted(set(d) - known):
            log.warning(
                "data.%s is not used by the landscape (its data keys: %s)", key, ", ".join(sorted(known))
            )
        return cls(**{k: d.get(k) for k in EVAL_DATA_KEYS})

    from_mapping = from_config

    def describe(self) -> dict:
        return {
            "glue_dir": self.glue_dir,
            "max_train_samples": self.max_train_samples,
            "max_eval_samples": self.max_eval_samples,
            "subset_seed": self.subset_seed,
            "max_length": self.max_length,
        }


def load_eval_sets(
    task, data: DataRequest, splits: Sequence[str], tokenizer_dir: Path, device
) -> list[EvalSet]:
    """One `EvalSet` per split: the request's seeded subset of `task`'s split, tokenised with the
    tokenizer in `tokenizer_dir` (a checkpoint directory: its config says whether the model takes
    token type ids; the column is dropped when it does not), its batches on `device`."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=False)
    # a checkpoint directory: its config says whether the model uses token type ids
    config_file = Path(tokenizer_dir) / "config.json"
    token_types = (
        takes_token_type_ids(AutoConfig.from_pretrained(str(tokenizer_dir), trust_remote_code=False))
        if config_file.is_file()
        else True
    )
    sets = []
    for split in splits:
        limit = data.max_train_samples if split == "train" else data.max_eval_samples
        rows = load_glue_split(task, split, data.glue_dir, limit, data.subset_seed, data.cache_dir)
        tok = tokenize(rows, tokenizer, data.max_length, data.cache_dir)
        if not token_types and "token_type_ids" in tok.column_names:
            tok = tok.remove_columns("token_type_ids")
        sets.append(
            EvalSet.from_tokenized(
                split, tok, data.eval_batch_size, tokenizer.pad_token_id or 0, device, task.is_regression
            )
        )
    return sets
