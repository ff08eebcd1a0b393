"""Length-grouped batching (data.group_by_length) and the AdamW kernel: same examples, less padding,
deterministic for a seed, and runs that repeat and resume bit-exactly."""

from __future__ import annotations

import random

import pytest
import torch
from conftest import WORDS, tiny_train_cfg, write_glue
from safetensors.torch import load_file

from bertviz_landscape.training.data import get_task
from bertviz_landscape.training.data.datamodule import EpochShuffle, LengthGroupedShuffle, padding_ratio
from bertviz_landscape.training.models import load_tokenizer
from bertviz_landscape.training.models.classifier import OptimConfigError, adamw_kernel
from bertviz_landscape.training.train import build_datamodule, train


def sst2_like_lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [min(64, max(3, int(rng.lognormvariate(2.4, 0.6)))) for _ in range(n)]


def test_every_example_exactly_once_per_epoch_short_batch_last():
    lengths = sst2_like_lengths(203)
    sampler = LengthGroupedShuffle(lengths, batch_size=8, seed=3, mega_batches=5)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = sampler.batches()
        assert sorted(i for b in batches for i in b) == list(range(203))
        assert [len(b) for b in batches] == [8] * 25 + [3]
        assert list(sampler) == [i for b in batches for i in b] and len(sampler) == 203


def test_order_depends_only_on_seed_and_epoch():
    lengths = sst2_like_lengths(300)

    def order(seed, epoch):
        sampler = LengthGroupedShuffle(lengths, 16, seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(1, 0) == order(1, 0) and order(1, 2) == order(1, 2)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)


def test_batches_are_sorted_within_a_mega_batch_and_shuffled_across():
    lengths = sst2_like_lengths(640)
    sampler = LengthGroupedShuffle(lengths, batch_size=16, seed=0, mega_batches=40)  # one mega-batch
    batches = sampler.batches()
    spans = [(min(lengths[i] for i in b), max(lengths[i] for i in b)) for b in batches]
    # sorted batches do not overlap in length (they may share a boundary length)
    ordered = sorted(spans, key=lambda s: (s[1], s[0]))
    assert all(lo_next >= hi for (_, hi), (lo_next, _) in zip(ordered, ordered[1:]))
    assert spans != ordered and spans != ordered[::-1]  # not drawn longest-first or shortest-first


def test_padding_falls_from_random_to_grouped_batches():
    lengths = sst2_like_lengths(6400)
    order = list(EpochShuffle(len(lengths), 42))
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    grouped = LengthGroupedShuffle(lengths, 16, 42).batches()
    assert padding_ratio(lengths, random_batches) > 1.8
    assert padding_ratio(lengths, grouped) < 1.05
    # fewer batches per mega-batch: more randomness, more padding (but still far below random)
    assert padding_ratio(lengths, grouped) < padding_ratio(
        lengths, LengthGroupedShuffle(lengths, 16, 42, 2).batches()
    )


def write_varied_sst2(root, n: int = 40):
    write_glue(root)
    for split, count in (("train", n), ("dev", 12)):
        rows = ["sentence\tlabel"] + [
            f"{' '.join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(2 + (i * 7) % 13))} \t{i % 2}"
            for i in range(count)
        ]
        (root / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_dataloader_gives_the_samplers_batches_with_less_padding(tmp_path):
    glue = write_varied_sst2(tmp_path / "glue")
    padded = {}
    for grouped in (False, True):
        cfg = tiny_train_cfg(
            glue, "task=sst2", f"data.group_by_length={grouped}", "data.length_group_batches=5"
        )
        dm = build_datamodule(cfg, get_task("sst2"), load_tokenizer(cfg.model.name_or_path))
        dm.setup("fit")
        loader = dm.train_dataloader()
        batches = list(loader)
        padded[grouped] = sum(b["input_ids"].numel() for b in batches)
        real = sum(int(b["attention_mask"].sum()) for b in batches)
        assert real == sum(dm.train_lengths())
        if grouped:
            lengths = dm.train_lengths()
            expected = loader.sampler.batches()
            assert [b["input_ids"].shape for b in batches] == [
                (len(e), max(lengths[i] for i in e)) for e in expected
            ]
    assert padded[True] < 0.8 * padded[False]


def weights(path):
    return load_file(str(path / "checkpoints" / "final" / "model.safetensors"))


@pytest.mark.parametrize("implementation", ["fused", "foreach", "for-loop"])
def test_grouped_runs_repeat_bit_exactly_for_each_adamw_kernel(tmp_path, implementation):
    glue = write_varied_sst2(tmp_path / "glue")
    overrides = ("task=sst2", "data.group_by_length=true", f"optim.implementation={implementation}")
    a = train(tiny_train_cfg(glue, *overrides), tmp_path / "a")
    b = train(tiny_train_cfg(glue, *overrides), tmp_path / "b")
    assert a["dev"] == b["dev"] and a["steps"] == b["steps"] == 5
    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_adamw_kernels_agree_to_rounding_and_the_kernel_is_in_the_fingerprint(tmp_path):
    glue = write_varied_sst2(tmp_path / "glue")
    runs = {}
    for kernel in ("fused", "for-loop"):
        runs[kernel] = train(
            tiny_train_cfg(glue, "task=sst2", f"optim.implementation={kernel}"), tmp_path / kernel
        )
    assert runs["fused"]["fingerprint"] != runs["for-loop"]["fingerprint"]
    wa, wb = weights(tmp_path / "fused"), weights(tmp_path / "for-loop")
    assert all(torch.allclose(wa[k], wb[k], rtol=1e-4, atol=1e-6) for k in wa)


def test_adamw_kernel_choice_and_bad_value(glue_dir, tmp_path):
    assert adamw_kernel("fused", torch.device("cpu")) == {"fused": True}
    assert adamw_kernel("fused", torch.device("cpu"), grad_scaler=True) == {"foreach": True, "fused": False}
    assert adamw_kernel("for-loop", torch.device("cpu")) == {"foreach": False, "fused": False}
    with pytest.raises(OptimConfigError, match="optim.implementation must be one of"):
        train(tiny_train_cfg(glue_dir, "optim.implementation=turbo"), tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists()
