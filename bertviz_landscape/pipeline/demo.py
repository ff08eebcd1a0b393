"""`bertviz-demo` (make demo): the paper's experiments end to end (pipeline/plan.py's stages, run by
pipeline/runner.py).

Before the first stage the analysis plan (``plan``: conf/plan/<preset>.yaml, with the design it
registers — seeds, the seeds that select the from-scratch rate, tasks, the analyses' thresholds) is
frozen into ``plan.yaml`` + ``plan.json`` (its SHA-256 and UTC time; report/plan.py). A different
frozen plan is never overwritten: the demo says what changed, and the report, decided under the new
plan, is exploratory and names the change (report/claims.py decides every claim across the seeds).
The preset's ``report_notes`` are written for the report. Then every stage runs unless it is done
(its outputs exist and its record matches its requests and inputs); the tools it calls resume what
an interrupted run left (training from ``checkpoints/resume.ckpt``, surfaces from their finished
points). A sweep analysed at its best rate runs its selection stages, says each rate's mean dev
metric and the rate chosen, then the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.pipeline.lr_sweep import read_sweep, sweep_line
from bertviz_landscape.pipeline.plan import SELECT_STAGE, Design, Requests, build_stages, plan_document
from bertviz_landscape.pipeline.runner import Pipeline
from bertviz_landscape.publish.report.plan import PLAN_FILE, fmt_value, freeze
from bertviz_landscape.publish.report.writer import NOTES_FILE

LOG_NAME = "demo.log"  # <output_dir>/demo.log: the stages' own output


def freeze_plan(root: Path, c: Mapping, say=print) -> None:
    """Freeze the plan a demo configuration `c` registers (`plan.plan_document`) into <root>."""
    freeze_document(root, plan_document(c), say)


def freeze_document(root: Path, plan: dict | None, say=print) -> None:
    """Freeze the plan document `plan` into <root> before the first stage; a different frozen plan
    stays and its changes are said (the report under the new plan is exploratory and names them)."""
    if plan is None:
        return
    changed = freeze(root, plan)
    if changed:
        say(
            f"[demo] the analysis plan differs from the one frozen in {root / PLAN_FILE} (not overwritten): "
            + "; ".join(f"{k}: {fmt_value(a)} -> {fmt_value(b)}" for k, a, b in changed[:8])
            + (f"; +{len(changed) - 8} more" if len(changed) > 8 else "")
            + " — the report will be exploratory"
        )


def run_demo(design: Design, requests: Requests, out=None, quiet: bool = True) -> list[dict]:
    """Run every stage of the demo (skipping finished ones); `quiet`: the stages' own output goes
    to <output_dir>/demo.log, the console gets one line per stage."""
    root = design.root
    root.mkdir(parents=True, exist_ok=True)
    stages = build_stages(design, requests)
    pipeline = Pipeline(root, out, root / LOG_NAME if quiet else None, label="demo")
    freeze_document(root, design.plan, pipeline.say)
    write_json_atomic(root / NOTES_FILE, list(design.notes))
    done = pipeline.run(stages)
    if stages and stages[-1].name.startswith(SELECT_STAGE):  # the sweep's best rate, then the rest
        sweep = read_sweep(root)
        pipeline.say(f"[demo] {sweep_line(sweep)}")
        done += pipeline.run(build_stages(design, requests, selected=sweep["chosen_arm"]))
    return done
