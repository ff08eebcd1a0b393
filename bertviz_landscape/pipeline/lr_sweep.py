"""The demo's learning-rate sweeps and their record, ``<results>/lr_sweep.json``.

**Both inits** (``lr_sweep: true``, make replicate; format 2, contracts/lr_sweep.py owns it): each
round of the plan's sweep trains the main task at its rates on the selection seeds, then
`record_sweep` reads each run's dev metric and writes the record (`lr_sweep.record`: per init
every rate tried, the seeds each used, the rate chosen, whether it is at an edge); `extensions`
says which init gets one more rate beyond its edge; `sweep_line` is its console line.

**From scratch only** (format 1, ``scratch_lrs`` with ``scratch_sweep.analyse=best``; make demo
with those keys): its first phase trains the main task at every rate on the selection seeds, then
`write_sweep` chooses the rate and writes the record the second phase and the report read::

    {"task", "metric", "rule", "rates": [{"arm", "lr", "seeds", "dev_metric", "beat_baseline",
     "mean", "runs"}, ...], "chosen_arm", "chosen_lr"}

``runs`` are relative to the results directory; ``mean`` is over the finite dev metrics (None
when there is none: that rate is never chosen).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bertviz_landscape.analysis.common import read_run
from bertviz_landscape.contracts import lr_sweep
from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir

RULE = "the rate with the best mean dev metric over the selection seeds"


def write_sweep(root: Path, task: str, rates: dict[str, float], runs: dict[tuple[str, int], Path]) -> dict:
    """lr_sweep.json: each rate's dev metric per seed (the runs' metrics.json), their mean, and the
    rate chosen — the best mean (every GLUE primary metric is higher-is-better); a rate whose runs
    have no finite dev metric is never chosen. `rates`: arm -> learning rate, in the order tried;
    `runs`: (arm, seed) -> run directory."""
    read = {key: read_run(path) for key, path in sorted(runs.items())}  # each run's metrics.json once
    rows = []
    for arm, lr in rates.items():
        infos = [(s, info) for (a, s), info in read.items() if a == arm]
        values = [i.dev_metric for _, i in infos]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        rows.append(
            {
                "arm": arm,
                "lr": lr,
                "seeds": [s for s, _ in infos],
                "dev_metric": values,
                "beat_baseline": [i.beat_baseline for _, i in infos],
                "mean": sum(finite) / len(finite) if finite else None,
                "runs": [os.path.relpath(Path(i.run).resolve(), Path(root).resolve()) for _, i in infos],
            }
        )
    scored = [r for r in rows if r["mean"] is not None]
    if not scored:
        raise BadInput(f"{ResultsDir(root).runs}: no from-scratch run of the sweep has a finite dev metric")
    best = max(scored, key=lambda r: r["mean"])  # the first of equals: rates in the order given
    metrics = sorted({i.primary_metric for i in read.values() if i.primary_metric})
    out = {
        "task": task,
        "metric": metrics[0] if metrics else None,
        "rule": RULE,
        "rates": rows,
        "chosen_arm": best["arm"],
        "chosen_lr": best["lr"],
    }
    write_json_atomic(ResultsDir(root).sweep, out)
    return out


def read_sweep(root: Path) -> dict:
    """The record `write_sweep` wrote in `root`; a BadInput naming the file otherwise."""
    path = ResultsDir(root).sweep
    try:
        out = json.loads(path.read_text())
        return out | {"chosen_arm": str(out["chosen_arm"])}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{path}: not a learning-rate sweep record ({err})") from None


def record_sweep(
    root: Path,
    task: str,
    runs: Mapping[tuple[str, float, int], Path],
    select: Sequence[int],
    confirm: Sequence[int],
    extended: Mapping[str, list[float]] | None = None,
    write: bool = False,
) -> dict:
    """The sweep of both inits as a format-2 record (`lr_sweep.record`) from its runs' metrics.json:
    `runs`: (init, rate, seed) -> run directory; `extended`: per init the rates added beyond an edge.
    With `write` the record is written to <root>/lr_sweep.json (run paths relative to root)."""
    read = {key: read_run(path) for key, path in sorted(runs.items())}
    swept = [
        lr_sweep.SweepRun(
            init, float(lr), int(seed), info.dev_metric, info.beat_baseline, str(runs[(init, lr, seed)])
        )
        for (init, lr, seed), info in read.items()
    ]
    metrics = sorted({i.primary_metric for i in read.values() if i.primary_metric})
    return lr_sweep.record(
        task,
        metrics[0] if metrics else None,
        swept,
        list(select),
        list(confirm),
        {i: list(v) for i, v in (extended or {}).items()},
        root if write else None,
    )


def extensions(doc: dict, extended: Mapping[str, list[float]], limit: int) -> dict[str, float]:
    """Per init whose best rate is at an edge of its sweep and that had fewer than `limit`
    extensions: the rate to train next (`lr_sweep.next_rate`, rounded to 6 significant digits so
    that 3e-4 × 3 is 9e-4)."""
    out = {}
    for init, arm in doc["arms"].items():
        rate = lr_sweep.next_rate(arm)
        if rate is not None and len(extended.get(init) or []) < limit:
            out[init] = float(f"{rate:.6g}")
    return out


def sweep_line(sweep: dict) -> str:
    """One console line: each rate's mean dev metric and the rate analysed (format 2: per init)."""
    if isinstance(sweep.get("arms"), dict):
        return (
            f"learning rates on {sweep['task']} "
            f"(selection seeds {', '.join(map(str, sweep['select_seeds']))}): "
            + "; ".join(
                f"{init} "
                + ", ".join(f"{r['lr']:g} (mean dev {_g(r['mean'])})" for r in arm["rates"])
                + f" -> {arm['chosen_lr']:g}"
                + (f" ({arm['edge']} tried)" if arm.get("edge") else "")
                for init, arm in sweep["arms"].items()
            )
            + f"; comparing on seeds {', '.join(map(str, sweep.get('confirm_seeds') or []))}"
        )
    return (
        f"from-scratch learning rates on {sweep['task']}: "
        + ", ".join(f"{r['lr']:g} (mean dev {_g(r['mean'])})" for r in sweep["rates"])
        + f"; analysing {sweep['chosen_lr']:g}"
    )


def _g(v) -> str:
    return "–" if v is None else f"{v:.4f}"
