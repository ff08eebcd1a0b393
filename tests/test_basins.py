"""Shared basins (issue 28 item 4): the loss barrier on the line between two runs' θ1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertviz_landscape.analysis.basins import barrier, interpolation_curve


class _Task:
    """J = the mean over examples of the model's output (a 'loss' that is the planted function)."""

    def loss(self, logits, labels, reduction="sum"):
        return logits.sum()


class _Batch:
    def __init__(self):
        self.labels = torch.zeros(1)
        self.attention_mask = torch.ones(1, 1, dtype=torch.long)  # what the work meter reads

    def inputs(self):
        return {}


class _Set:
    def __init__(self, name):
        self.name, self.batches, self.num_examples = name, [_Batch()], 1


class _Ridge(torch.nn.Module):
    """A planted landscape in θ = (x, y): two valleys at x = ±1 (J = 0.1 and 0.3 at the bottoms)
    separated by a ridge of height `height` above the straight line at x = 0."""

    def __init__(self, height):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(2))
        self.height = height

    def forward(self):
        x = self.w[0]
        line = 0.2 + 0.1 * x  # the chord between the two valleys' floors
        bump = self.height * torch.clamp(1.0 - x.abs(), min=0.0)  # a tent: its top at x = 0, 0 at x = ±1
        return type("Out", (), {"logits": (line + bump).reshape(1, 1)})()


def test_barrier_of_a_run_with_itself_is_zero_and_across_a_planted_ridge_its_height():
    model = _Ridge(height=0.7)
    sets = [_Set("train"), _Set("dev")]
    a = {"w": torch.tensor([-1.0, 0.0])}
    b = {"w": torch.tensor([1.0, 0.0])}
    ts = np.linspace(0.0, 1.0, 9)  # t = 0.5 is the ridge's top
    itself = interpolation_curve(model, _Task(), sets, a, a, ts)
    assert barrier(itself["t"], itself["train_loss"]) == (pytest.approx(0.0, abs=1e-7), 0.0)
    across = interpolation_curve(model, _Task(), sets, a, b, ts)
    assert across["train_loss"][0] == pytest.approx(0.1) and across["dev_loss"][-1] == pytest.approx(0.3)
    height, where = barrier(across["t"], across["dev_loss"])
    assert height == pytest.approx(0.7, abs=1e-6) and where == 0.5
    # a lower ridge gives a lower barrier; the line's own slope is not a barrier
    low = interpolation_curve(_Ridge(height=0.05), _Task(), sets, a, b, ts)
    assert barrier(low["t"], low["train_loss"])[0] == pytest.approx(0.05, abs=1e-6)


def test_barrier_needs_both_ends_and_finite_values():
    assert barrier([0.0, 0.5, 1.0], [0.2, float("nan"), 0.3]) == (None, None)
    assert barrier([0.0, 0.5], [0.2, 0.3]) == (None, None)


def test_the_interpolation_figure_colours_every_pair_by_its_arm():
    """Each pair's curve is drawn in its arm's colour, the one the legend names (not matplotlib's
    colour cycle): every line matches its legend entry."""
    from matplotlib.colors import to_hex

    from bertviz_landscape.plots import style
    from bertviz_landscape.plots.basins import interpolation_curves

    curve = {"t": [0.0, 0.5, 1.0], "train_loss": [0.2, 0.3, 0.2], "dev_loss": [0.3, 0.4, 0.3]}
    datas = [
        {"runs": [{"init": init}], "per_run": [{"curve": curve}, {"curve": curve}]}
        for init in ("pretrained", "scratch")
    ]
    fig, _ = interpolation_curves(datas, "sst2")
    for ax in fig.axes:
        colours = [to_hex(line.get_color()) for line in ax.get_lines()]
        want = [to_hex(style.init_colour(i)) for i in ("pretrained", "pretrained", "scratch", "scratch")]
        assert colours == want
