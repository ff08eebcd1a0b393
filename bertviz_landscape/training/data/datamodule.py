"""The LightningDataModule: one GLUE task, tokenised once, padded per batch.

Batches are padded to their longest example, so random batches of short and long sentences
spend most of their compute on padding (SST-2, batch 16: 2.6x the real tokens).
``data.group_by_length=true`` draws batches of similar length instead (`LengthGroupedShuffle`):
the same examples once per epoch, seeded, with the padding mostly gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from bertviz_landscape.training.data.glue import load_glue_split
from bertviz_landscape.training.data.tasks import GlueTask
from bertviz_landscape.training.data.tokenize import MODEL_COLUMNS, tokenize


class EpochShuffle(Sampler[int]):
    """A shuffle that depends only on (seed, epoch): a run resumed at an epoch boundary sees the
    same order as one never interrupted. Lightning calls `set_epoch` before each epoch."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class LengthGroupedShuffle(EpochShuffle):
    """Length-grouped batches (the ``group_by_length`` idea): a seeded random permutation is cut
    into mega-batches of ``mega_batches * batch_size`` examples, each mega-batch is sorted by
    length (longest first; ties keep the permutation's order) and cut into batches, and the
    batches are then shuffled. Every example comes exactly once per epoch, and the order depends
    only on (seed, epoch), as `EpochShuffle`'s.

    It yields indices, so a DataLoader with the same ``batch_size`` (and ``drop_last=False``) cuts
    them into exactly these batches: the one short batch (when the size is not a multiple of
    ``batch_size``) is always last.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega_batches: int = 50) -> None:
        if batch_size < 1 or mega_batches < 1:
            raise ValueError(f"batch_size and mega_batches must be >= 1, got {batch_size}, {mega_batches}")
        super().__init__(len(lengths), seed)
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size, self.mega_batches = int(batch_size), int(mega_batches)

    def batches(self) -> list[list[int]]:
        """This epoch's batches, in the order they are drawn."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator)
        mega = self.mega_batches * self.batch_size
        full, short = [], []
        for start in range(0, self.size, mega):
            chunk = order[start : start + mega]
            # stable sort: equal lengths keep the random order, so the result is one fixed permutation
            chunk = chunk[torch.sort(self.lengths[chunk], descending=True, stable=True).indices]
            for b in range(0, len(chunk), self.batch_size):
                (full if len(chunk) - b >= self.batch_size else short).append(chunk[b : b + self.batch_size])
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()]
        return [b.tolist() for b in shuffled + short]

    def __iter__(self):
        return iter([i for batch in self.batches() for i in batch])


class RankShare(DistributedSampler):
    """Under DDP, this rank's share of an epoch's order: positions rank, rank + N, rank + 2N, ... of
    `order` (an `EpochShuffle`), so that the N ranks' batches of b examples together hold the
    one-process batch of N·b, in the same order (DDP's mean of their mean gradients is then the
    one-process gradient up to float summation order). Like `DistributedSampler` without
    drop_last, the order is padded from its start to a multiple of N. It is a DistributedSampler
    so that Lightning keeps it (Lightning's own wrapper re-shuffles the order with its seed)."""

    def __init__(self, order: EpochShuffle, num_replicas: int, rank: int) -> None:
        super().__init__(range(len(order)), num_replicas=num_replicas, rank=rank, shuffle=False)
        self.order = order

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.order.set_epoch(epoch)

    def __iter__(self):
        indices = list(self.order)
        indices += indices[: self.total_size - len(indices)]
        return iter(indices[self.rank : self.total_size : self.num_replicas])


def padding_ratio(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Tokens the model processes (each batch padded to its longest) per real token."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return padded / sum(lengths[i] for b in batches for i in b)


@dataclass(frozen=True)
class TrainingData:
    """A run's data, as conf/data/glue.yaml says it (the defaults live there only): which examples,
    how they are tokenised and batched; `shuffle_seed` (the run's `seed`) orders the train set."""

    glue_dir: str | None
    max_train_samples: int | None
    max_eval_samples: int | None
    subset_seed: int
    max_length: int
    batch_size: int
    eval_batch_size: int
    num_workers: int
    cache_dir: str | None
    group_by_length: bool
    length_group_batches: int
    shuffle_seed: int

    @classmethod
    def from_config(cls, data: Mapping[str, Any], shuffle_seed: int) -> TrainingData:
        """From a composed `data` section (every key present: the YAML has them all)."""
        count = {
            k: None if data[k] is None else int(data[k]) for k in ("max_train_samples", "max_eval_samples")
        }
        return cls(
            glue_dir=data["glue_dir"],
            subset_seed=int(data["subset_seed"]),
            max_length=int(data["max_length"]),
            batch_size=int(data["batch_size"]),
            eval_batch_size=int(data["eval_batch_size"]),
            num_workers=int(data["num_workers"]),
            cache_dir=data["cache_dir"],
            group_by_length=bool(data["group_by_length"]),
            length_group_batches=int(data["length_group_batches"]),
            shuffle_seed=int(shuffle_seed),
            **count,
        )


class GlueDataModule(pl.LightningDataModule):
    def __init__(self, task: GlueTask, tokenizer: PreTrainedTokenizerBase, data: TrainingData) -> None:
        super().__init__()
        self.task = task
        self.tokenizer = tokenizer
        self.data = data
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.train_set = self.dev_set = None

    def load(self, split: str, max_samples: int | None):
        d = self.data
        ds = load_glue_split(self.task, split, d.glue_dir, max_samples, d.subset_seed, d.cache_dir)
        return tokenize(ds, self.tokenizer, d.max_length, d.cache_dir).with_format(
            "torch", columns=list(MODEL_COLUMNS)
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self.load("train", self.data.max_train_samples)
            self.dev_set = self.load("dev", self.data.max_eval_samples)

    def train_lengths(self) -> list[int]:
        """Tokens per train example (before padding)."""
        return [len(ids) for ids in self.train_set.with_format(None)["input_ids"]]

    def train_sampler(self) -> EpochShuffle:
        d = self.data
        if d.group_by_length:
            return LengthGroupedShuffle(
                self.train_lengths(), d.batch_size, d.shuffle_seed, d.length_group_batches
            )
        return EpochShuffle(len(self.train_set), d.shuffle_seed)

    def train_dataloader(self) -> DataLoader:
        sampler = self.train_sampler()
        trainer = self.trainer  # None outside a Trainer (tests, benchmarks)
        if trainer is not None and trainer.world_size > 1:  # DDP: this rank's share of the order
            sampler = RankShare(sampler, trainer.world_size, trainer.global_rank)
        return DataLoader(
            self.train_set,
            batch_size=self.data.batch_size,
            sampler=sampler,
            collate_fn=self.collate,
            num_workers=self.data.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dev_set,
            batch_size=self.data.eval_batch_size,
            shuffle=False,
            collate_fn=self.collate,
            num_workers=self.data.num_workers,
        )
