"""The evaluation sets' batches: length-sorted examples cut where the padding would grow (issue 32)."""

from __future__ import annotations

import datasets
import pytest
import torch

from bertviz_landscape.training.data.eval_sets import MIN_FILL, EvalSet, batch_by_width


def test_without_min_fill_every_batch_size_examples_make_a_batch():
    assert [list(r) for r in batch_by_width([9, 8, 5, 5, 2], 2, None)] == [[0, 1], [2, 3], [4]]


def test_a_batch_ends_where_the_next_example_would_fill_less_than_min_fill_of_its_width():
    lengths = [20, 19, 16, 15, 12, 12, 12, 5, 4, 1]
    got = [list(r) for r in batch_by_width(lengths, 64, 0.8, slack=0)]
    # 16 = 0.8 × 20 stays; 15 starts a batch; 12 = 0.8 × 15 stays; 5 < 9.6 cuts; 4 ≥ 4.0 stays; 1 cuts
    assert got == [[0, 1, 2], [3, 4, 5, 6], [7, 8], [9]]
    assert [i for r in got for i in r] == list(range(len(lengths)))  # the order is kept
    for r in got:
        assert all(lengths[i] >= 0.8 * lengths[r[0]] for i in r)


def test_batch_size_still_caps_a_batch_of_equal_lengths():
    assert [len(r) for r in batch_by_width([7] * 10, 4, MIN_FILL)] == [4, 4, 2]


def test_the_slack_keeps_short_examples_together():
    lengths = [40, 30, 12, 9, 6, 5, 4]
    assert [list(r) for r in batch_by_width(lengths, 64, 0.8, slack=8)] == [[0], [1], [2, 3, 4, 5, 6]]
    assert len(batch_by_width(lengths, 64, 0.8, slack=0)) == 6  # [40] [30] [12] [9] [6, 5] [4]


@pytest.mark.parametrize(
    "lengths, batch_size, fill, slack",
    [
        ([3, 5], 2, 0.8, 8),
        ([5, 3], 0, 0.8, 8),
        ([5, 3], 2, 1.5, 8),
        ([5, 3], 2, -0.1, 8),
        ([5, 3], 2, 0.8, -1),
    ],
)
def test_unsorted_lengths_or_bad_settings_are_refused(lengths, batch_size, fill, slack):
    with pytest.raises(ValueError):
        batch_by_width(lengths, batch_size, fill, slack)


def test_an_eval_set_keeps_its_example_order_and_pads_less():
    lengths = [30, 3, 28, 5, 6, 29, 4, 27]
    rows = datasets.Dataset.from_dict(
        {
            "input_ids": [list(range(1, n + 1)) for n in lengths],
            "attention_mask": [[1] * n for n in lengths],
            "labels": list(range(len(lengths))),
        }
    )
    old = EvalSet.from_tokenized("dev", rows, 4, 0, min_fill=None)
    new = EvalSet.from_tokenized("dev", rows, 4, 0, slack=0)
    assert len(EvalSet.from_tokenized("dev", rows, 4, 0).batches) == 2  # 6 … 3: within the default slack
    for s in (old, new):
        assert s.num_examples == len(lengths)
        for b in s.batches:  # each row holds its example's tokens, then padding
            assert b.input_ids.shape[1] == int(b.attention_mask.sum(1).max())
    labels = [torch.cat([b.labels for b in s.batches]).tolist() for s in (old, new)]
    assert labels[0] == labels[1] == [0, 5, 2, 7, 4, 3, 6, 1]  # longest first, either way

    def padded(s):
        return sum(b.attention_mask.numel() - int(b.attention_mask.sum()) for b in s.batches)

    # sorted 30 29 28 27 | 6 5 4 3: before, two batches of 4 (6 + 6 pad tokens); now 6, 5 stay
    # (5 ≥ 0.8 × 6), 4 and 3 (< 0.8 × 4) each start a batch: 30 29 28 27 | 6 5 | 4 | 3 (6 + 1 pad)
    assert (len(old.batches), padded(old)) == (2, 12)
    assert (len(new.batches), padded(new)) == (4, 7)
