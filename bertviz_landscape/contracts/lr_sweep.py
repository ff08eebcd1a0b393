"""The learning-rate sweep of both inits: its configuration (the plan's ``lr_sweep``) and its record
(``lr_sweep.json`` in a results directory, format ``bertviz-lr-sweep/2``). This module owns both; the
pipeline runs the sweep's training stages and calls `record`, the report reads it with `read` (issue
28 item 5: a fair rate for each arm, chosen on seeds the confirmatory comparison does not use).

**The configuration** (conf/plan/replicate.yaml, frozen with the plan before anything trains)::

    lr_sweep:
      rates:                       # ≥ 3 distinct positive rates per init, each on every selection seed
        pretrained: [3.0e-5, 1.0e-4, 3.0e-4]
        scratch: [3.0e-5, 1.0e-4, 3.0e-4]
      extend_at_edge: 2            # when an arm's best rate is its smallest or largest, train one more rate
                                   # beyond that edge (× or ÷ the grid's step), at most this many times
      rule: best_mean_dev          # the rate with the best mean dev primary metric over the selection seeds

and the plan's ``seeds.select`` (the sweep's seeds) and ``seeds.confirm`` (the comparison's; disjoint:
report/plan.check refuses a plan where they share a seed).

**The record** ``lr_sweep.json``::

    {"format": "bertviz-lr-sweep/2", "task": "sst2", "metric": "accuracy",
     "rule": "...", "select_seeds": [0, 1], "confirm_seeds": [5, 6, 7, 8, 9],
     "arms": {"<init>": {"rates": [{"lr", "seeds", "dev_metric", "beat_baseline", "mean", "runs"}, ...],
                         "chosen_lr": 1e-4, "edge": null | "smallest" | "largest",
                         "extended": [rates added because the best was at an edge]}}}

one row per rate tried (ascending), each with the seeds it was trained on and each seed's dev metric,
whether it beat the majority baseline, their mean and the run directories (relative to the results
directory). ``edge`` is set when the chosen rate is still at an edge of the rates tried (the sweep
ran out of extensions: the report says the best rate may lie beyond). The format-1 record (the
from-scratch sweep only: ``rates`` with ``arm``, ``chosen_arm``, ``chosen_lr``) is read as one arm,
``scratch``, without seeds of the comparison.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir

FORMAT = "bertviz-lr-sweep/2"
RULE = "the rate with the best mean dev metric over the selection seeds (extended while it is at an edge)"
MIN_RATES = 3


@dataclass(frozen=True)
class SweepRun:
    """One training of the sweep, as the pipeline reads it from the run's metrics.json."""

    init: str
    lr: float
    seed: int
    dev_metric: float | None
    beat_baseline: bool | None
    run: str  # its directory


def check_config(cfg: dict, select: Sequence[int]) -> None:
    """The plan's ``lr_sweep`` (module docstring): ≥ 3 distinct positive rates per init, a
    non-negative ``extend_at_edge``, and selection seeds to train them on; ValueError naming the key."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("rates"), dict) or not cfg["rates"]:
        raise ValueError("lr_sweep needs rates: {<init>: [rate, ...]} (≥ 3 per init)")
    for init, rates in cfg["rates"].items():
        try:
            values = [float(r) for r in rates]
        except (TypeError, ValueError):
            raise ValueError(
                f"lr_sweep.rates.{init} must be a list of learning rates, got {rates!r}"
            ) from None
        if len(values) < MIN_RATES or len(set(values)) != len(values):
            raise ValueError(f"lr_sweep.rates.{init}: give ≥ {MIN_RATES} distinct rates, got {rates!r}")
        if any(not (math.isfinite(v) and v > 0) for v in values):
            raise ValueError(f"lr_sweep.rates.{init}: rates must be positive, got {rates!r}")
    extend = cfg.get("extend_at_edge", 0)
    if isinstance(extend, bool) or not isinstance(extend, int) or extend < 0:
        raise ValueError(f"lr_sweep.extend_at_edge must be an integer ≥ 0, got {extend!r}")
    if not list(select or []):
        raise ValueError("lr_sweep needs selection seeds (the plan's seeds.select)")


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(finite) / len(finite) if finite else None


def choose(runs: Sequence[SweepRun], select: Sequence[int]) -> dict:
    """One arm's sweep: a row per rate (ascending), the rate with the best mean dev metric (the
    smaller of equals), and ``edge`` when that is the smallest or largest rate tried. Refuses a run
    on a seed outside `select` (a comparison seed must never choose a rate) and a rate not trained on
    every selection seed; a rate without a finite dev metric is never chosen."""
    select = list(select)
    stray = sorted({r.seed for r in runs} - set(select))
    if stray:
        raise BadInput(
            f"learning-rate sweep: runs on seeds {stray}, which are not selection seeds {select} — a rate "
            "must be chosen on seeds the confirmatory comparison does not use"
        )
    by_lr: dict[float, list[SweepRun]] = {}
    for r in runs:
        by_lr.setdefault(float(r.lr), []).append(r)
    rows = []
    for lr in sorted(by_lr):
        mine = sorted(by_lr[lr], key=lambda r: r.seed)
        if sorted(r.seed for r in mine) != sorted(select):
            raise BadInput(
                f"learning-rate sweep: rate {lr:g} trained on seeds {[r.seed for r in mine]}, not on every "
                f"selection seed {select}"
            )
        rows.append(
            {
                "lr": lr,
                "seeds": [r.seed for r in mine],
                "dev_metric": [r.dev_metric for r in mine],
                "beat_baseline": [r.beat_baseline for r in mine],
                "mean": _mean([r.dev_metric for r in mine]),
                "runs": [r.run for r in mine],
            }
        )
    scored = [r for r in rows if r["mean"] is not None]
    if not scored:
        raise BadInput("learning-rate sweep: no rate has a finite dev metric")
    best = max(scored, key=lambda r: (r["mean"], -r["lr"]))
    rates = [r["lr"] for r in rows]
    edge = None
    if len(rates) > 1 and best["lr"] in (rates[0], rates[-1]):
        edge = "smallest" if best["lr"] == rates[0] else "largest"
    return {"rates": rows, "chosen_lr": best["lr"], "edge": edge}


def next_rate(arm: dict) -> float | None:
    """The rate to add when an arm's best is at an edge: one step of the grid (the ratio of the two
    rates nearest that edge) beyond it; None when the best is interior."""
    rates = [r["lr"] for r in arm["rates"]]
    if arm.get("edge") == "largest":
        return rates[-1] * (rates[-1] / rates[-2])
    if arm.get("edge") == "smallest":
        return rates[0] / (rates[1] / rates[0])
    return None


def record(
    task: str,
    metric: str | None,
    runs: Sequence[SweepRun],
    select: Sequence[int],
    confirm: Sequence[int],
    extended: dict[str, list[float]] | None = None,
    root: str | os.PathLike | None = None,
) -> dict:
    """The ``lr_sweep.json`` document of every init's sweep (`choose` per init); `extended`: per init,
    the rates added beyond an edge; with `root`, run paths relative to it and the file written there."""
    shared = sorted(set(select) & set(confirm))
    if shared:
        raise BadInput(f"learning-rate sweep: selection seeds {list(select)} also confirm ({shared})")
    arms = {}
    for init in dict.fromkeys(r.init for r in runs):
        mine = [r for r in runs if r.init == init]
        if root is not None:
            base = Path(root).resolve()
            mine = [
                SweepRun(
                    r.init,
                    r.lr,
                    r.seed,
                    r.dev_metric,
                    r.beat_baseline,
                    os.path.relpath(Path(r.run).resolve(), base),
                )
                for r in mine
            ]
        arms[init] = choose(mine, select) | {"extended": list((extended or {}).get(init) or [])}
    doc = {
        "format": FORMAT,
        "task": task,
        "metric": metric,
        "rule": RULE,
        "select_seeds": list(select),
        "confirm_seeds": list(confirm),
        "arms": arms,
    }
    if root is not None:
        write_json_atomic(ResultsDir(root).sweep, doc)
    return doc


def normalise(doc: dict) -> dict:
    """A sweep record of either format as format 2 (module docstring); BadInput when it is neither."""
    if not isinstance(doc, dict):
        raise BadInput("not a learning-rate sweep record (a JSON object)")
    if isinstance(doc.get("arms"), dict):
        return doc
    if isinstance(doc.get("rates"), list):  # format 1: the from-scratch sweep only
        rows = [r for r in doc["rates"] if isinstance(r, dict)]
        seeds = sorted({s for r in rows for s in (r.get("seeds") or []) if isinstance(s, int)})
        return {
            "format": "bertviz-lr-sweep/1",
            "task": doc.get("task"),
            "metric": doc.get("metric"),
            "rule": doc.get("rule"),
            "select_seeds": seeds,
            "confirm_seeds": None,
            "arms": {
                "scratch": {"rates": rows, "chosen_lr": doc.get("chosen_lr"), "edge": None, "extended": []}
            },
        }
    raise BadInput("not a learning-rate sweep record (no 'arms' or 'rates')")


def read(root: str | os.PathLike) -> dict | None:
    """<root>/lr_sweep.json as format 2 (`normalise`), or None when the directory has none."""
    path = ResultsDir(root).sweep
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: not valid JSON ({err})") from None
    try:
        return normalise(doc)
    except BadInput as err:
        raise BadInput(f"{path}: {err}") from None
