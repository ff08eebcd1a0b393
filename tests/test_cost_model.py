"""experiments/cost_model.py: the paper's cost at full scale from the measured MiniLM numbers."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "experiments" / "cost_model.py"
spec = importlib.util.spec_from_file_location("cost_model", PATH)
cost_model = importlib.util.module_from_spec(spec)
sys.modules["cost_model"] = cost_model  # dataclasses look their module up
spec.loader.exec_module(cost_model)


def test_parameter_counts_match_the_real_models():
    # the MiniLM the project trains (Lightning's model summary: 22,713,986) and
    # bert-base-uncased + a 2-way head
    assert cost_model.MODELS["minilm"].parameters == 22_713_986
    assert cost_model.MODELS["bert_base"].parameters == 109_483_778


def test_scaling_reproduces_the_measurement_at_the_reference_and_scales_by_flops():
    rows = {
        r["experiment"]: r
        for r in cost_model.estimate(cost_model.MODELS["minilm"], "mrpc", 21, 1, 2**18, False, 3, 25.0)
    }
    train = rows["train (θ0 → θ1, trajectory recorded)"]
    steps = math.ceil(3668 / 32) * 3
    measured = (
        steps
        * cost_model.MEASURED["train_seconds_per_step"]
        * (1 + cost_model.MEASURED["snapshot_overhead"])
        / 3600
    )
    assert train["cpu_hours_scaled"] == pytest.approx(measured, rel=1e-9)  # no scaling at the measured point
    base = {
        r["experiment"]: r
        for r in cost_model.estimate(cost_model.MODELS["bert_base"], "mrpc", 21, 1, 2**18, False, 3, 25.0)
    }
    ratio = (
        base["1D loss curve (train subset + dev)"]["cpu_hours_scaled"]
        / rows["1D loss curve (train subset + dev)"]["cpu_hours_scaled"]
    )
    assert 6 < ratio < 9  # BERT-base is ~7.7× MiniLM's FLOPs per token
    assert base["2D loss + dev-error surface"]["gpu_hours_assumed"] == pytest.approx(
        21 * base["1D loss curve (train subset + dev)"]["gpu_hours_assumed"]
    )


def test_sst2_bert_base_every_step_trajectory_fits_20_gb(capsys):
    rows = cost_model.main(
        ["--model", "bert_base", "--tasks", "sst2", "--every-n", "125", "--buckets", str(2**18)]
    )
    train = rows[0]
    assert train["disk"]["sketches"] == 6315 * (
        4 * 2**18 + 8 * 201 + 128
    )  # 1 MiB + norms of 201 tensors, every step
    assert train["disk"]["snapshots"] == (math.ceil(6315 / 125) + 1) * 2 * 109_483_778
    assert train["disk_bytes"] <= 20e9
    every_step = cost_model.disk_bytes(cost_model.MODELS["bert_base"], 6315, 1, 0, False)
    assert every_step["total"] > 1.3e12  # full float16 deltas every step: the 1.4 TB the sketch avoids
    out = capsys.readouterr().out
    assert "ASSUMED" in out and "measured" in out and "| sst2 | train" in out
