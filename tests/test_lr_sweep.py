"""Fair rates for both arms (issue 28 item 5): the plan's selection and confirmation seeds are disjoint
and the plan check refuses overlapping ones before anything is frozen; the learning-rate sweep of
both inits (contracts/lr_sweep.py) is chosen on the selection seeds only, extended when its best
is at an edge, and the report names every rate tried and the seeds each was trained on."""

from __future__ import annotations

import json

import pytest

from bertviz_landscape.contracts import lr_sweep
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.publish.report import plan as plan_mod
from bertviz_landscape.publish.report.writer import render_results, sweep_lines

REPLICATE = plan_mod.preset("replicate")


# --- seeds ---------------------------------------------------------------------------------------
def test_the_replicate_plan_selects_and_confirms_on_disjoint_seeds():
    seeds = REPLICATE["seeds"]
    assert seeds["select"] and len(seeds["confirm"]) >= 5
    assert not set(seeds["select"]) & set(seeds["confirm"])
    plan_mod.check(REPLICATE)  # passes the check freeze applies
    for preset in ("demo", "replicate"):
        plan_mod.check(plan_mod.preset(preset))


def test_the_plan_check_refuses_overlapping_seeds_and_freeze_writes_nothing(tmp_path):
    doc = REPLICATE | {"seeds": {"select": [0, 1], "confirm": [1, 2, 3, 4, 5]}}
    with pytest.raises(
        BadInput, match=r"seeds.select \[0, 1\] and seeds.confirm \[1, 2, 3, 4, 5\] share seed \[1\]"
    ):
        plan_mod.check(doc)
    with pytest.raises(BadInput, match="share seed"):
        plan_mod.freeze(tmp_path, doc)
    assert not ResultsDir(tmp_path).plan_json.exists() and not ResultsDir(tmp_path).plan_yaml.exists()
    plan_mod.freeze(tmp_path, REPLICATE)  # disjoint: frozen
    assert ResultsDir(tmp_path).plan_json.is_file()


def test_the_design_s_selection_and_confirmation_seeds_are_checked_too():
    """The pipeline writes the seeds it runs into the plan's ``design``: they must be disjoint as well."""
    ok = REPLICATE | {"design": {"select_seeds": [0, 1], "confirm_seeds": [5, 6, 7]}}
    plan_mod.check(ok)
    bad = REPLICATE | {"design": {"select_seeds": [0, 1], "confirm_seeds": [0, 5, 6]}}
    with pytest.raises(BadInput, match=r"design.select_seeds \[0, 1\] and design.confirm_seeds"):
        plan_mod.check(bad)


@pytest.mark.parametrize(
    "seeds, message",
    [
        ({"select": [0, 0], "confirm": [5]}, "names a seed twice"),
        ({"select": "0,1", "confirm": [5]}, "list of integer seeds"),
        ([0, 1], "must be {select"),
    ],
)
def test_malformed_seeds_are_refused(seeds, message):
    with pytest.raises(BadInput, match=message):
        plan_mod.check(REPLICATE | {"seeds": seeds})


# --- the sweep's configuration -------------------------------------------------------------------
def test_the_plan_sweeps_at_least_three_rates_for_both_inits():
    cfg = REPLICATE["lr_sweep"]
    assert set(cfg["rates"]) == {"pretrained", "scratch"}
    assert all(len(set(r)) >= 3 for r in cfg["rates"].values())
    assert cfg["extend_at_edge"] >= 1


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"rates": {"pretrained": [1e-5, 2e-5], "scratch": [1e-4, 3e-4, 1e-3]}}, "≥ 3 distinct"),
        ({"rates": {"scratch": [1e-4, 1e-4, 3e-4]}}, "≥ 3 distinct"),
        ({"rates": {"scratch": [-1e-4, 1e-4, 3e-4]}}, "positive"),
        ({"rates": {"scratch": [1e-4, 3e-4, 1e-3]}, "extend_at_edge": -1}, "extend_at_edge"),
        ({"rates": {}}, "needs rates"),
    ],
)
def test_a_sweep_of_fewer_than_three_rates_is_refused_by_the_plan_check(cfg, message):
    with pytest.raises(BadInput, match=message):
        plan_mod.check(REPLICATE | {"lr_sweep": cfg})


# --- choosing a rate --------------------------------------------------------------------------------
def _runs(init, devs: dict[float, tuple], seeds=(0, 1)):
    return [
        lr_sweep.SweepRun(init, lr, s, d, d is not None and d > 0.6, f"/r/{init}_lr{lr:g}_seed{s}")
        for lr, ds in devs.items()
        for s, d in zip(seeds, ds)
    ]


def test_each_arm_chooses_its_best_mean_on_the_selection_seeds_and_an_edge_is_extended():
    """Pretrained: 1e-4 has the best mean (interior). From scratch: 3e-4, the largest rate, has the
    best mean — an edge; the next rate is one grid step beyond (9e-4 from 1e-4 → 3e-4), and once it
    is trained and worse, the best is interior."""
    pre = _runs("pretrained", {3e-5: (0.84, 0.85), 1e-4: (0.87, 0.86), 3e-4: (0.80, 0.90)})
    scr = _runs("scratch", {3e-5: (0.55, 0.56), 1e-4: (0.62, 0.60), 3e-4: (0.70, 0.66)})
    doc = lr_sweep.record("sst2", "accuracy", pre + scr, [0, 1], [5, 6, 7, 8, 9])
    assert doc["format"] == lr_sweep.FORMAT and doc["select_seeds"] == [0, 1]
    assert doc["confirm_seeds"] == [5, 6, 7, 8, 9]
    p, s = doc["arms"]["pretrained"], doc["arms"]["scratch"]
    assert p["chosen_lr"] == 1e-4 and p["edge"] is None and lr_sweep.next_rate(p) is None
    assert [r["mean"] for r in p["rates"]] == pytest.approx([0.845, 0.865, 0.85])  # 0.90 alone does not win
    assert s["chosen_lr"] == 3e-4 and s["edge"] == "largest"
    assert lr_sweep.next_rate(s) == pytest.approx(9e-4)
    low = lr_sweep.choose(_runs("scratch", {1e-4: (0.7, 0.7), 3e-4: (0.6, 0.6), 1e-3: (0.5, 0.5)}), [0, 1])
    assert low["edge"] == "smallest" and lr_sweep.next_rate(low) == pytest.approx(1e-4 / 3)
    more = scr + _runs("scratch", {9e-4: (0.52, 0.50)})
    again = lr_sweep.record("sst2", "accuracy", pre + more, [0, 1], [5], extended={"scratch": [9e-4]})
    assert again["arms"]["scratch"]["chosen_lr"] == 3e-4 and again["arms"]["scratch"]["edge"] is None


def test_a_sweep_run_on_a_confirmation_seed_or_a_rate_missing_a_seed_is_refused():
    good = _runs("scratch", {1e-4: (0.6, 0.6), 3e-4: (0.7, 0.7), 1e-3: (0.5, 0.5)})
    with pytest.raises(BadInput, match=r"runs on seeds \[5\], which are not selection seeds"):
        lr_sweep.choose(good + _runs("scratch", {1e-4: (0.9,)}, seeds=(5,)), [0, 1])
    with pytest.raises(BadInput, match="not on every selection seed"):
        lr_sweep.choose(good[:-1], [0, 1])
    with pytest.raises(BadInput, match="also confirm"):
        lr_sweep.record("sst2", "accuracy", good, [0, 1], [1, 2])


def test_the_record_round_trips_and_the_report_names_every_rate_and_its_seeds(tmp_path):
    pre = _runs("pretrained", {3e-5: (0.84, 0.85), 1e-4: (0.87, 0.86), 3e-4: (0.80, 0.90)})
    scr = _runs("scratch", {3e-5: (0.55, 0.56), 1e-4: (0.62, 0.60), 3e-4: (0.70, 0.66), 9e-4: (0.5, 0.52)})
    doc = lr_sweep.record(
        "sst2", "accuracy", pre + scr, [0, 1], [5, 6, 7, 8, 9], extended={"scratch": [9e-4]}, root=tmp_path
    )
    assert lr_sweep.read(tmp_path) == json.loads(ResultsDir(tmp_path).sweep.read_text()) == doc
    text = "\n".join(sweep_lines(doc))
    assert "each init on the selection seeds 0, 1 only (the comparison uses seeds 5, 6, 7, 8, 9)" in text
    for init, lr in (
        ("pretrained", "3e-05"),
        ("pretrained", "0.0001 (chosen)"),
        ("scratch", "0.0003 (chosen)"),
    ):
        assert f"| {init} | {lr} |" in text
    assert "| scratch | 0.0009 (added at the edge) | 0.51 | 0: 0.5, 1: 0.52 | 0/2 |" in text
    assert "| pretrained | 0.0003 | 0.85 | 0: 0.8, 1: 0.9 | 2/2 |" in text
    assert "The claims compare pretrained at 0.0001 against scratch at 0.0003." in text
    assert "beyond the sweep" not in text
    edge = json.loads(json.dumps(doc))
    edge["arms"]["scratch"] |= {"chosen_lr": 9e-4, "edge": "largest"}
    assert "The scratch rate chosen is the largest tried after 1 extension: its best rate may lie beyond" in (
        "\n".join(sweep_lines(edge))
    )
    assert "each init on the selection seeds 0, 1 only" in render_results(
        {"verdicts": [], "tasks": [], "tables": {}, "evidence": {}, "sweep": doc}
    )


def test_a_format_1_record_is_read_as_the_scratch_arm():
    old = {
        "task": "sst2",
        "metric": "accuracy",
        "rule": "best mean",
        "rates": [
            {"arm": "scratch_lr0.0003", "lr": 3e-4, "seeds": [0, 1], "dev_metric": [0.6, 0.62], "mean": 0.61}
        ],
        "chosen_arm": "scratch_lr0.0003",
        "chosen_lr": 3e-4,
    }
    doc = lr_sweep.normalise(old)
    assert doc["arms"]["scratch"]["chosen_lr"] == 3e-4 and doc["select_seeds"] == [0, 1]
    assert doc["confirm_seeds"] is None
    with pytest.raises(BadInput, match="not a learning-rate sweep"):
        lr_sweep.normalise({"nothing": 1})
