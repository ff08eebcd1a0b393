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
metric and the rate chosen, then the rest. The plan's sweep of both inits (``lr_sweep: true``)
runs its rounds (`run_sweep`: extended at an edge), says each init's rates and the rate chosen,
then the comparison on the confirmation seeds at those rates; ``rates_from`` copies the sweep
record it took the rates from into this directory (`copy_sweep`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.pipeline.lr_sweep import extensions, read_sweep, record_sweep, sweep_line
from bertviz_landscape.pipeline.plan import (
    SELECT_STAGE,
    Design,
    Requests,
    build_stages,
    plan_document,
    rate_arm,
    run_name,
    sweep_stages,
)
from bertviz_landscape.pipeline.runner import Pipeline
from bertviz_landscape.publish.report.plan import fmt_value, freeze


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
            f"[demo] the analysis plan differs from the one frozen in {ResultsDir(root).plan_json} "
            "(not overwritten): "
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
    pipeline = Pipeline(root, out, ResultsDir(root).demo_log if quiet else None, label="demo")
    freeze_document(root, design.plan, pipeline.say)
    write_json_atomic(ResultsDir(root).notes, list(design.notes) + rates_notes(design))
    if design.rates_from is not None:  # the rates another directory's sweep chose: its record, for the report
        copy_sweep(design, pipeline.say)
    if design.sweep is not None:  # the plan's sweep of both inits, then the comparison at the chosen rates
        doc, done = run_sweep(design, requests, pipeline)
        chosen = {init: arm["chosen_lr"] for init, arm in doc["arms"].items()}
        return done + pipeline.run(build_stages(design, requests, selected=chosen))
    done = pipeline.run(stages)
    if stages and stages[-1].name.startswith(SELECT_STAGE):  # the sweep's best rate, then the rest
        sweep = read_sweep(root)
        pipeline.say(f"[demo] {sweep_line(sweep)}")
        done += pipeline.run(build_stages(design, requests, selected=sweep["chosen_arm"]))
    return done


def run_sweep(design: Design, requests: Requests, pipeline: Pipeline) -> tuple[dict, list[dict]]:
    """The plan's learning-rate sweep of both inits (``design.sweep``), in rounds: every rate on the
    selection seeds and its record; then, while an init's best rate is at an edge and it had fewer
    than ``extend_at_edge`` extensions, one more rate beyond that edge and the record again. Each
    round's choice is made from the runs' metrics (the same record its stage writes), so a re-run
    skips every finished round. Returns the last record and the stages' log."""
    sweep = design.sweep
    main = design.tasks[0]
    rates = {init: list(r) for init, r in sweep.rates.items()}
    extended: dict[str, list[float]] = {init: [] for init in rates}
    new, done, round_ = rates, [], 0
    while True:
        done += pipeline.run(sweep_stages(design, requests, rates, new, extended, round_))
        runs = {
            (init, lr, s): ResultsDir(design.root).run(run_name(main, rate_arm(init, lr), s))
            for init, rs in rates.items()
            for lr in rs
            for s in sweep.select
        }
        doc = record_sweep(design.root, main, runs, sweep.select, sweep.confirm, extended)
        more = extensions(doc, extended, sweep.extend_at_edge)
        if not more:
            break
        for init, rate in more.items():
            edge = doc["arms"][init]["edge"]
            pipeline.say(
                f"[demo] the best {init} rate is the {edge} tried: adding {rate:g} on the selection seeds"
            )
            rates[init] = sorted(rates[init] + [rate])
            extended[init] = extended[init] + [rate]
        new, round_ = {init: [rate] for init, rate in more.items()}, round_ + 1
    pipeline.say(f"[demo] {sweep_line(doc)}")
    return doc, done


def rates_notes(design: Design) -> list[str]:
    """``rates_from``: a sentence for the report: the rate each init trained at, and where it came from."""
    taken = design.rates_from
    if taken is None:
        return []
    at = {init: lr for init, lr in design.arms.values()}
    said = "; ".join(
        f"{init} at {lr:g} (chosen by the sweep in {taken['dir']})"
        if lr is not None
        else f"{init} at the preset's rate"
        for init, lr in at.items()
    )
    if taken["doc"] is None:
        said += f" — {taken['dir']} holds no learning-rate sweep record"
    return [f"Learning rates: {said}."]


def copy_sweep(design: Design, say=print) -> None:
    """``rates_from``: that directory's lr_sweep.json copied into this one (the report names every rate
    tried, the seeds each used and the rates these runs train at); with none there, a line saying
    every init trains at the preset's rate."""
    taken = design.rates_from
    if taken["doc"] is None:
        say(f"[demo] {taken['dir']} has no learning-rate sweep record: every init at the preset's rate")
        return
    write_json_atomic(ResultsDir(design.root).sweep, taken["doc"] | {"copied_from": taken["dir"]})
    say(
        f"[demo] rates from {taken['dir']}'s sweep: "
        + ", ".join(f"{i} {lr:g}" for i, lr in taken["chosen"].items())
        + (
            f" (the preset's rate for {', '.join(i for i in design.inits if i not in taken['chosen'])})"
            if any(i not in taken["chosen"] for i in design.inits)
            else ""
        )
    )
