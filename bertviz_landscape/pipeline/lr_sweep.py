"""The from-scratch learning-rate sweep's record, ``<results>/lr_sweep.json``.

When the demo analyses a sweep at its best rate only (``scratch_sweep.analyse=best``), its first
phase trains the main task at every rate on the selection seeds, then `write_sweep` chooses the
rate and writes the record the second phase and the report read::

    {"task", "metric", "rule", "rates": [{"arm", "lr", "seeds", "dev_metric", "beat_baseline",
     "mean", "runs"}, ...], "chosen_arm", "chosen_lr"}

``runs`` are relative to the results directory; ``mean`` is over the finite dev metrics (None
when there is none: that rate is never chosen).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from bertviz_landscape.analysis.common import read_run
from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.publish.report.writer import SWEEP_FILE

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
        raise BadInput(f"{Path(root) / 'runs'}: no from-scratch run of the sweep has a finite dev metric")
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
    write_json_atomic(Path(root) / SWEEP_FILE, out)
    return out


def read_sweep(root: Path) -> dict:
    """The record `write_sweep` wrote in `root`; a BadInput naming the file otherwise."""
    path = Path(root) / SWEEP_FILE
    try:
        out = json.loads(path.read_text())
        return out | {"chosen_arm": str(out["chosen_arm"])}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{path}: not a learning-rate sweep record ({err})") from None


def sweep_line(sweep: dict) -> str:
    """One console line: each rate's mean dev metric and the rate analysed."""
    return (
        f"from-scratch learning rates on {sweep['task']}: "
        + ", ".join(f"{r['lr']:g} (mean dev {_g(r['mean'])})" for r in sweep["rates"])
        + f"; analysing {sweep['chosen_lr']:g}"
    )


def _g(v) -> str:
    return "–" if v is None else f"{v:.4f}"
