"""Flatness at matched loss (issue 28 item 1): the point of a run's own path whose training loss
equals a target, between two recorded snapshots."""

from __future__ import annotations

import math

import pytest

from bertviz_landscape.analysis.measures.path_loss import matched_bracket, matched_point


def planted(step: float) -> float:
    """A planted path: J falls fast early and slowly later (convex in the step)."""
    return 0.6 * math.exp(-step / 20.0) + 0.1


def test_the_matched_point_lies_within_one_step_of_the_target_on_a_planted_path():
    """Snapshots every 16 steps; the weights move linearly in the step between snapshots, so J on the
    segment between two snapshots is J(s_lower + w·16). The matched step is within one step of where
    the planted loss crosses the target, and its loss is the target."""
    steps = list(range(0, 129, 16))
    losses = [planted(s) for s in steps]
    true_step = 37.3
    target = planted(true_step)
    bracket = matched_bracket(steps, losses, target)
    assert (bracket["lower"]["step"], bracket["upper"]["step"]) == (32, 48)
    lo, hi = bracket["lower"]["step"], bracket["upper"]["step"]
    calls = []

    def loss_at(w: float) -> float:
        calls.append(w)
        return planted(lo + w * (hi - lo))

    w, value, evaluations = matched_point(loss_at, losses[2], losses[3], target, iterations=8)
    step = lo + w * (hi - lo)
    assert abs(step - true_step) <= 1.0
    assert abs(planted(step) - target) <= abs(planted(step + 1) - planted(step))  # within one step's change
    assert value == pytest.approx(target, abs=1e-4) and evaluations == len(calls) <= 9
    # the losses' linear interpolation alone (no evaluation) misses it by more than a step here
    w0, _, none = matched_point(loss_at, losses[2], losses[3], target, iterations=0)
    assert none == 0 and abs(lo + w0 * (hi - lo) - true_step) > 1.0
    assert bracket["step"] == pytest.approx(lo + w0 * (hi - lo))


def test_bracket_edges():
    assert matched_bracket([0, 10, 20], [0.5, 0.4, 0.3], 0.2) is None  # never reached
    start = matched_bracket([0, 10], [0.2, 0.1], 0.3)  # θ0 already at or below: the matched point is θ0
    assert start["lower"] is None and start["step"] == 0.0
    exact = matched_bracket([0, 10, 20], [0.5, 0.3, 0.2], 0.3)
    assert exact["step"] == pytest.approx(10.0)
