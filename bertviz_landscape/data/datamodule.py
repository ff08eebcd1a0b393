"""The LightningDataModule: one GLUE task, tokenised once, padded per batch.

Batches are padded to their longest example, so random batches of short and long sentences
spend most of their compute on padding (SST-2, batch 16: 2.6x the real tokens).
``data.group_by_length=true`` draws batches of similar length instead (`LengthGroupedShuffle`):
the same examples once per epoch, seeded, with the padding mostly gone.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from bertviz_landscape.data.glue import load_glue_split
from bertviz_landscape.data.tasks import GlueTask
from bertviz_landscape.data.tokenize import MODEL_COLUMNS, tokenize


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


def padding_ratio(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Tokens the model processes (each batch padded to its longest) per real token."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return padded / sum(lengths[i] for b in batches for i in b)


class GlueDataModule(pl.LightningDataModule):
    def __init__(
        self,
        task: GlueTask,
        tokenizer: PreTrainedTokenizerBase,
        glue_dir: str | None = None,
        max_train_samples: int | None = None,
        max_eval_samples: int | None = None,
        subset_seed: int = 0,
        max_length: int = 128,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        shuffle_seed: int = 0,
        cache_dir: str | None = None,
        group_by_length: bool = False,
        length_group_batches: int = 50,
    ) -> None:
        super().__init__()
        self.task = task
        self.tokenizer = tokenizer
        self.glue_dir = glue_dir
        self.max_train_samples = max_train_samples
        self.max_eval_samples = max_eval_samples
        self.subset_seed = subset_seed
        self.max_length = max_length
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.shuffle_seed = shuffle_seed
        self.cache_dir = cache_dir
        self.group_by_length = group_by_length
        self.length_group_batches = length_group_batches
        self.collate = DataCollatorWithPadding(tokenizer, return_tensors="pt")
        self.train_set = self.dev_set = None

    def load(self, split: str, max_samples: int | None):
        ds = load_glue_split(self.task, split, self.glue_dir, max_samples, self.subset_seed, self.cache_dir)
        return tokenize(ds, self.tokenizer, self.max_length, self.cache_dir).with_format(
            "torch", columns=list(MODEL_COLUMNS)
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self.load("train", self.max_train_samples)
            self.dev_set = self.load("dev", self.max_eval_samples)

    def train_lengths(self) -> list[int]:
        """Tokens per train example (before padding)."""
        return [len(ids) for ids in self.train_set.with_format(None)["input_ids"]]

    def train_sampler(self) -> EpochShuffle:
        if self.group_by_length:
            return LengthGroupedShuffle(
                self.train_lengths(), self.batch_size, self.shuffle_seed, self.length_group_batches
            )
        return EpochShuffle(len(self.train_set), self.shuffle_seed)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=self.train_sampler(),
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dev_set,
            batch_size=self.eval_batch_size,
            shuffle=False,
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )
