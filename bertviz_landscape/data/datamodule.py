"""The LightningDataModule: one GLUE task, tokenised once, padded per batch."""

from __future__ import annotations

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

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(self.train_set), self.shuffle_seed),
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
