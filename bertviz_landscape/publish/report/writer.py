"""Writes report.md and report.html for a results directory (see the package docstring).

One report, two renderings: `render_markdown` writes the Markdown; `render_html` renders that
same text with a Markdown library (nothing is written twice, so the two cannot drift). Every
string from a file reaches both as text, never as markup (report/markup.py)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import time
from pathlib import Path
from urllib.parse import quote, unquote

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import baseline_verdict
from bertviz_landscape.analysis.measures.evidence import aggregate
from bertviz_landscape.contracts.atomic import (
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
    write_texts_atomic,
)
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import FIGURES, ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.plots.results import Results
from bertviz_landscape.publish.report import plan as plan_mod
from bertviz_landscape.publish.report.claims import ARMS, RunRecord, decide_all, run_records
from bertviz_landscape.publish.report.markup import md_code, md_text, md_url, to_html


def rows() -> list[tuple[str, str, str]]:
    """(analysis, number, row label): the per-run numbers the table shows, in the analyses' order
    and each analysis's `rows` order (a number no run has gets no row); numbers not listed follow
    under their own names, except each analysis's `hidden` ones."""
    return [(spec.name, row.key, row.label) for spec in registry.specs() for row in spec.rows]


def hidden() -> set[tuple[str, str]]:
    return {(spec.name, key) for spec in registry.specs() for key in spec.hidden}


def _g(v) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _num(v, fmt: str) -> str:
    """A number from a file as `fmt`; '–' for none; anything else (a string where a number
    belongs) as escaped text."""
    if v is None:
        return "–"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return format(v, fmt)
    return md_text(v)


def aggregate_text(values: list[float], confidence: float) -> str:
    """'mean ± std (n = k, 95% CI [lo, hi])' of one arm's runs ('–' without a value)."""
    agg = aggregate(values, confidence)
    if agg.n == 0:
        return "–"
    if agg.n == 1:
        return f"{_g(agg.mean)} (n = 1)"
    ci = f"{confidence:.0%} CI [{_g(agg.ci_low)}, {_g(agg.ci_high)}]"
    return f"{_g(agg.mean)} ± {_g(agg.std)} (n = {agg.n}, {ci})"


def _run_key(r: RunRecord) -> tuple:
    return (
        ARMS.index(r.init) if r.init in ARMS else 9,
        r.init,
        r.lr or 0.0,
        -1 if r.seed is None else r.seed,
    )


def number_tables(
    records: dict[str, list[RunRecord]], task: str, confidence: float, root: Path | None = None
):
    """(aggregate rows (label, pretrained, scratch), per-seed header, per-seed rows) of one task.
    Before an analysis's first per-seed row, its source row: the JSON each run's numbers of that
    analysis came from (relative to `root`)."""
    mine = {name: [r for r in recs if r.task == task] for name, recs in records.items()}
    listed = rows()
    unshown = hidden() | {(a, k) for a, k, _ in listed}
    keys = [(a, k, label) for a, k, label in listed if any(k in r.numbers for r in mine.get(a, []))]
    keys += sorted(
        {
            (a, k, f"{md_text(a)}: {md_text(k)}")
            for a, recs in mine.items()
            for r in recs
            for k in r.numbers
            if (a, k) not in unshown
        }
    )
    runs: dict = {}
    for recs in mine.values():
        for r in recs:
            runs.setdefault((r.init, r.lr, r.seed), r)
    cols = sorted(runs.values(), key=_run_key)
    agg_rows, seed_rows = [], []
    sourced: set[str] = set()
    seen_values: set = set()
    for a, k, label in keys:
        recs = mine.get(a, [])
        texts = [
            aggregate_text(
                [r.numbers[k] for r in recs if r.init == i and r.numbers.get(k) is not None], confidence
            )
            for i in ARMS
        ]
        if all(t == "–" for t in texts):  # measured for no run (e.g. a layer the analysis skipped): no row
            continue
        values = tuple(
            (r.init, r.lr, r.seed, r.numbers.get(k))
            for r in sorted(recs, key=_run_key)
            if r.numbers.get(k) is not None
        )
        if (
            len({v[-1] for v in values}) == 1 and len(values) > 1
        ):  # a setting (e.g. bootstrap_samples): no row
            continue
        if (
            values in seen_values
        ):  # the same number under another name (dev_mistake_change = dev_error_change)
            continue
        seen_values.add(values)
        agg_rows.append((label, *texts))
        of_col = [
            next((r for r in recs if (r.init, r.lr, r.seed) == (col.init, col.lr, col.seed)), None)
            for col in cols
        ]
        if a not in sourced:
            sourced.add(a)
            seed_rows.append(
                (
                    f"**{md_text(a)}**: source",
                    *(md_code(_rel(r.source, root)) if r is not None and r.source else "–" for r in of_col),
                )
            )
        seed_rows.append((label, *(_g(None if r is None else r.numbers.get(k)) for r in of_col)))
    several = len({(c.init, c.lr) for c in cols}) > len({c.init for c in cols})  # a learning-rate sweep
    header = [md_text(col.label if several else f"{col.init} seed {col.seed}") for col in cols]
    return agg_rows, header, seed_rows


def _load(root: Path):
    return Results.scan(root, exclude=(ResultsDir(root).figures,))


def surface_rows(results, task: str) -> list[tuple[str, str, str]]:
    rows = []
    for label, key, fmt in (
        ("cos(δ1, δ2) of the 2D plane", "cosine_xy", "{:.3f}"),
        ("‖δ1‖ = ‖θ1 − θ0‖", "norm_x", "{:.3g}"),
    ):
        vals = {}
        for sf in results.surfaces:
            if sf.task == task and sf.surface.two_d:
                v = (sf.surface.meta.get("directions") or {}).get(key)
                if v is not None:
                    vals.setdefault(sf.init, float(v))
        if vals:
            rows.append(
                (label, *(fmt.format(vals[i]) if i in vals else "–" for i in ("pretrained", "scratch")))
            )
    return rows


def load_notes(root: Path) -> list[str]:
    """The preset's notes for its report (<root>/report_notes.json, a list of sentences; none when
    absent): what the preset chose and why, e.g. why it has no second task."""
    path = ResultsDir(root).notes
    if not path.is_file():
        return []
    try:
        notes = json.loads(path.read_text())
    except ValueError as err:
        raise BadInput(f"{path}: not valid JSON ({err})") from None
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise BadInput(f"{path}: expected a list of sentences")
    return notes


def _with_rates(analyses: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The analyses with each run entry's learning rate and model (from its run directory) when it
    has none."""
    cache: dict = {}

    def ident(path):
        if path not in cache:
            try:
                cache[path] = RunDir(path).read_identity()
            except (OSError, ValueError):
                cache[path] = {}
        return cache[path]

    def lr(path):
        return ((ident(path).get("config") or {}).get("init") or {}).get("lr")

    def fill(r):
        if r.get("run") and r.get("lr") is None:
            r = r | {"lr": lr(r["run"])}
        if r.get("run") and not r.get("model") and ident(r["run"]).get("model"):
            r = r | {"model": ident(r["run"])["model"]}
        return r

    out = {}
    for name, datas in analyses.items():
        out[name] = [d | {"runs": [fill(r) for r in d.get("runs") or []]} for d in datas]
    return out


def read_catalogue(root: str | os.PathLike) -> dict:
    """The figures catalogue of `root` (figures/figures.json; a `figures` linked outside is refused);
    a BadInput naming it when it is missing or not JSON: the figures are drawn before the report
    (bertviz_landscape.publish.publisher)."""
    path = ResultsDir.catalogue_in(ResultsDir(root).figures_dir())
    if not path.is_file():
        raise BadInput(f"{path}: no figures catalogue; draw the figures first (bertviz-plot results={root})")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: not valid JSON ({err})") from None


def build_report(root: str | os.PathLike, plan_doc: dict | None = None) -> dict:
    """Everything the report says, as data: tasks, tables, verdicts, the figures of the catalogue
    (figures/figures.json, drawn before). Decided under `plan_doc` (else the directory's frozen
    plan; report/plan.py says when it is exploratory). ``claim_figures`` ("<claim>/<task>" → the
    figure's path relative to `root`) is empty: the publisher draws them from the verdicts."""
    root = Path(root)
    plan, status = plan_mod.resolve(root, plan_doc)
    rule, opts = plan.rule, plan.opts
    results = _load(root)
    manifest = read_catalogue(root)
    analyses = _with_rates({k: list(v) for k, v in results.analyses.items()})
    verdicts = decide_all(analyses, plan=plan)
    records = {name: run_records(name, datas, opts) for name, datas in analyses.items()}
    tasks = sorted({v.task for v in verdicts} | {sf.task for sf in results.surfaces})
    tables, seeds = {}, {}
    for v in verdicts:  # claims.json names each value's JSON relative to the results directory
        for entries in (v.numbers.get("per_run") or {}).values():
            for e in entries:
                e["source"] = _rel(e["source"], root) if e.get("source") else None
    for t in tasks:
        agg, header, per_seed = number_tables(records, t, rule.confidence, root)
        tables[t] = surface_rows(results, t) + agg
        seeds[t] = {"header": header, "rows": per_seed}
    runs = []
    for run in results.runs:
        try:
            m = RunDir(run).read_metrics()
        except (FileNotFoundError, ValueError):
            continue
        metric = m.get("primary_metric", "accuracy")
        dev = (m.get("dev") or {}).get(f"val/{metric}")
        base = (m.get("majority_baseline") or {}).get(metric)
        beat = baseline_verdict(  # the analyses' rule (beyond the dev set's noise)
            metric, m.get("dev") or {}, m.get("majority_baseline") or {}, m.get("dev_examples")
        )[2]
        runs.append(
            {
                "run": str(run),
                "task": m.get("task"),
                "init": m.get("init"),
                "model": (RunDir(run).read_identity() or {}).get("model"),
                "seed": (RunDir(run).read_identity() or {}).get("seed"),
                "metric": metric,
                "dev": dev,
                "baseline": base,
                "beat": beat,
                "steps": m.get("steps"),
                "examples": m.get("train_examples"),
                "seconds": m.get("wall_seconds"),
            }
        )
    sweep = None
    if (sweep_path := ResultsDir(root).sweep).is_file():
        try:
            sweep = json.loads(sweep_path.read_text())
        except ValueError as err:
            raise BadInput(f"{sweep_path}: not valid JSON ({err})") from None
    return {
        "root": str(root),
        "claim_figures": {},
        "sweep": sweep,
        "notes": load_notes(root),
        "tasks": tasks,
        "tables": tables,
        "per_seed": seeds,
        "evidence": plan.doc,
        "plan": status.as_dict() | {"preset": plan.doc.get("preset")},
        "verdicts": verdicts,
        "figures": manifest.get("figures", []),
        "warnings": manifest.get("warnings", []),
        # files the numbers could not come from (a corrupt analysis JSON, a foreign .h5): named, not dropped
        "skipped": [{"path": _rel(s["path"], root), "reason": s["reason"]} for s in results.skipped],
        "runs": sorted(runs, key=lambda r: (str(r["task"]), str(r["init"]), str(r["seed"]), str(r["run"]))),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _rel(path: str, root: Path | None) -> str:
    if root is None:
        return str(path)
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


TABLE_HEAD = (
    "| claim | verdict | registered metric | pretrained | scratch | difference [interval] | p (test, Holm) | "
    "n per arm | main caveat |"
)


def _cell(text) -> str:
    """A claims-table cell as text (its parts may quote names from files): escaped, one line."""
    return "–" if text in (None, "") else md_text(text)


def _one_line(text: str) -> str:
    """A claim's sentence on one line of report.md (a name from a file never starts a line)."""
    return " ".join(str(text).split("\n"))


def plan_lines(rep: dict) -> list[str]:
    """Which plan decided, its hash, and whether the report is confirmatory or exploratory (what
    changed, when)."""
    st = rep.get("plan") or {}
    sha = st.get("sha256") or ""
    frozen = st.get("frozen_sha256")
    out = [
        f"**Analysis plan** {md_code(st.get('preset') or '?')}, SHA-256 {md_code(str(sha)[:16])}"
        + (
            f" (frozen {md_text(st.get('frozen_utc'))}, {md_code(str(frozen)[:16])})"
            if frozen and frozen != sha
            else ""
        )
        + (f", frozen {md_text(st.get('frozen_utc'))} before the runs" if frozen and frozen == sha else "")
        + f": **{md_text(st.get('mode', 'exploratory'))}**"
        + (f" — {md_text(st['reason'])}" if st.get("reason") else "")
        + "."
    ]
    changes = st.get("changes") or []
    if changes:
        shown = changes[:12]
        out.append(
            "Changed from the frozen plan: "
            + "; ".join(
                f"{md_code(c['key'])} {md_text(plan_mod.fmt_value(c['frozen']))} → "
                f"{md_text(plan_mod.fmt_value(c['now']))}"
                for c in shown
            )
            + (f"; and {len(changes) - len(shown)} more" if len(changes) > len(shown) else "")
            + "."
        )
    return out + [""]


def method_sentence(ev: dict) -> str:
    plateau = ev.get("plateau_runs", "block")
    parts = [
        f"Method (the plan): per claim its registered metric and direction; α = {ev.get('alpha')}",
        "family-wise, Holm over every registered claim (an undecidable one enters with p = 1);",
        "exact permutation tests over every relabelling of the runs (seeds) — of the difference of",
        "means, its p the larger of the permutation p and Welch's (unequal spread), or on Gehan ranks",
        "where a value is censored (a width at its grid's end: a lower bound) — with three decisions:",
        "two-sided p = 2 × the smaller one-sided p, supported when that side is the paper's",
        "prediction, contradicted when it is the mirror, so any verdict has probability ≤ α under",
        "the null (tests/test_calibration.py). Equal means with both skew and unequal spread cannot",
        f"be tested at these n by any test. Fewer than {ev.get('min_runs')} runs per arm: descriptive",
        "only. Effect: the Hodges–Lehmann shift with its exact interval (achieved level stated).",
        "Runs that did not beat their majority baseline are excluded (named), except where failing"
        " to train is the claim's outcome."
        if plateau == "exclude"
        else "A plateau run leaves a claim not resolved (rule `block`).",
    ]
    return " ".join(parts)


def render_results(rep: dict, claim_urls: dict[str, str] | None = None) -> str:
    """The results section: the claims table (the first screen), one figure per claim of the metric
    that decides it, then the details folded: every claim's sentence and every task's numbers.
    `claim_urls` ("<claim>/<task>" -> link target) places the claims' figures elsewhere (a copy of
    the section beside its own copies of the figures); by default they lie in the results directory."""
    ev = rep.get("evidence") or {}
    conf = float(ev.get("confidence", 0.95))
    out = ["## The paper's claims, decided across seeds", ""]
    out += plan_lines(rep)
    if rep["verdicts"]:
        out += [TABLE_HEAD, "|---|---|---|---|---|---|---|---|---|"]
        several = len({v.task for v in rep["verdicts"]}) > 1
        for v in rep["verdicts"]:
            row = v.numbers.get("row") or {}
            title = v.title + (f" ({v.task})" if several else "")
            cells = [title, row.get("metric"), row.get("pretrained"), row.get("scratch")]
            cells += [row.get("difference"), row.get("p"), row.get("n"), row.get("caveat")]
            cells = [_cell(c) for c in cells]
            cells.insert(1, f"**{_cell(v.verdict)}**")
            out.append("| " + " | ".join(cells) + " |")
    else:
        out.append("- No analysis JSONs found: run bertviz-analyze first (or `make demo`).")
    out += ["", method_sentence(ev), ""]
    for v in rep["verdicts"]:
        fig = (rep.get("claim_figures") or {}).get(f"{v.claim}/{v.task}")
        if claim_urls is not None:
            url = claim_urls.get(f"{v.claim}/{v.task}")
        else:
            url = md_url(fig, rep["root"]) if fig else None
        if url:
            out += [f"![{md_text(v.title)}: the deciding metric per seed]({url})", ""]
    out += ['<details markdown="1"><summary>Details: each claim in full</summary>', ""]
    for v in rep["verdicts"]:
        out.append(f"- **{v.title}** ({md_text(v.task)}): {_one_line(v.sentence)}")  # to_html keeps it text
    out += ["", "</details>", ""]
    if rep.get("notes"):
        out += ["### About this preset", ""] + [f"- {md_text(n)}" for n in rep["notes"]] + [""]
    out += sweep_lines(rep.get("sweep"))
    for task in rep["tasks"]:
        rows = rep["tables"].get(task) or []
        if rows:
            out += [
                f'<details markdown="1"><summary>Numbers: {md_text(task)} '
                f"(mean ± sd over seeds, n, {conf:.0%} bootstrap CI)</summary>",
                "",
                "| | pretrained | from scratch |",
                "|---|---|---|",
            ]
            out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
            out += ["", "</details>", ""]
        seeds = (rep.get("per_seed") or {}).get(task) or {}
        if seeds.get("rows"):
            out += [
                f'<details markdown="1"><summary>Numbers: {md_text(task)}, per seed</summary>',
                "",
                "Each analysis's **source** row names the JSON its numbers below come from, per run "
                "(relative to the results directory).",
                "",
                "| | " + " | ".join(seeds["header"]) + " |",
                "|---|" + "---|" * len(seeds["header"]),
            ]
            out += ["| " + " | ".join(row) + " |" for row in seeds["rows"]]
            out += ["", "</details>", ""]
    return "\n".join(out)


def sweep_lines(sweep: dict | None) -> list[str]:
    """The learning-rate sweep (lr_sweep.json): every rate tried, its dev metric per seed, the rate
    compared — of both inits (format 2, contracts/lr_sweep.py: `arm_sweep_lines`), or of the
    from-scratch arm only (format 1, bertviz-demo with scratch_sweep.analyse=best)."""
    if not sweep:
        return []
    if isinstance(sweep, dict) and isinstance(sweep.get("arms"), dict):
        return arm_sweep_lines(sweep)
    metric = md_text(sweep.get("metric") or "metric")
    out = [
        f"From-scratch learning rates tried on {md_text(sweep.get('task'))} (dev {metric} per seed; "
        f"{md_text(sweep.get('rule', 'best mean'))}):",
        "",
        f"| learning rate | mean dev {metric} | per seed | beat the majority baseline |",
        "|---|---|---|---|",
    ]
    for r in sweep.get("rates") or []:
        per_seed = ", ".join(
            f"{md_text(s)}: {_num(v, '.4g')}" for s, v in zip(r.get("seeds") or [], r.get("dev_metric") or [])
        )
        beat = sum(1 for b in r.get("beat_baseline") or [] if b)
        chosen = " (chosen)" if r.get("arm") == sweep.get("chosen_arm") else ""
        out.append(
            f"| {_num(r.get('lr'), 'g')}{chosen} | {_num(r.get('mean'), '.4g')} | {per_seed} | "
            f"{beat}/{len(r.get('seeds') or [])} |"
        )
    tried = sorted(float(r["lr"]) for r in sweep.get("rates") or [] if isinstance(r.get("lr"), (int, float)))
    edge = ""
    if len(tried) > 1 and sweep.get("chosen_lr") in (tried[0], tried[-1]):
        side = "largest" if sweep.get("chosen_lr") == tried[-1] else "smallest"
        edge = f" It is the {side} rate tried: the best rate may lie beyond the sweep."
    out += [
        "",
        "The claims compare the pretrained runs against the from-scratch runs at "
        f"{_num(sweep.get('chosen_lr'), 'g')}; "
        f"surfaces and analyses were computed at that rate only.{edge}",
        "",
    ]
    return out


def _seeds_text(seeds) -> str:
    return ", ".join(md_text(s) for s in seeds) if isinstance(seeds, list) and seeds else "–"


def arm_sweep_lines(sweep: dict) -> list[str]:
    """A format-2 sweep (both inits): per init every rate tried, the seeds each was trained on with
    their dev metric, the mean, the rate chosen; which seeds selected and which the comparison uses;
    an arm whose best rate is still at an edge of its sweep is named."""
    metric = md_text(sweep.get("metric") or "metric")
    out = [
        f"Learning rates tried on {md_text(sweep.get('task'))}, each init on the selection seeds "
        f"{_seeds_text(sweep.get('select_seeds'))} only"
        + (
            f" (the comparison uses seeds {_seeds_text(sweep.get('confirm_seeds'))})"
            if sweep.get("confirm_seeds")
            else ""
        )
        + f"; {md_text(sweep.get('rule', 'best mean'))}:",
        "",
        f"| init | learning rate | mean dev {metric} | seeds: dev {metric} | beat the majority baseline |",
        "|---|---|---|---|---|",
    ]
    chosen, notes = [], []
    for init, arm in sweep["arms"].items():
        if not isinstance(arm, dict):
            continue
        added = {float(x) for x in arm.get("extended") or [] if isinstance(x, (int, float))}
        for r in arm.get("rates") or []:
            if not isinstance(r, dict):
                continue
            per_seed = ", ".join(
                f"{md_text(s)}: {_num(v, '.4g')}"
                for s, v in zip(r.get("seeds") or [], r.get("dev_metric") or [])
            )
            beat = sum(1 for b in r.get("beat_baseline") or [] if b)
            mark = " (chosen)" if r.get("lr") == arm.get("chosen_lr") else ""
            mark += (
                " (added at the edge)" if isinstance(r.get("lr"), (int, float)) and r["lr"] in added else ""
            )
            out.append(
                f"| {md_text(init)} | {_num(r.get('lr'), 'g')}{mark} | {_num(r.get('mean'), '.4g')} | "
                f"{per_seed or '–'} | {beat}/{len(r.get('seeds') or [])} |"
            )
        chosen.append(f"{md_text(init)} at {_num(arm.get('chosen_lr'), 'g')}")
        if arm.get("edge") in ("smallest", "largest"):
            notes.append(
                f" The {md_text(init)} rate chosen is the {md_text(arm['edge'])} tried after "
                f"{len(added)} extension{'s' if len(added) != 1 else ''}: its best rate may lie beyond "
                "the sweep."
            )
    out += ["", "The claims compare " + " against ".join(chosen) + "." + "".join(notes), ""]
    return out


def render_markdown(rep: dict) -> str:
    """report.md: the claims first (render_results), then the runs, warnings, files not read and
    figures. Every string from a file goes in through `md_text`/`md_code`/`md_url` (text, never
    markup); `figure_links(rep)` are the only links and images it makes."""
    root = Path(rep["root"])
    out = [f"# Report: {md_text(root.name)}", "", render_results(rep), ""]
    out += [f"Generated {rep['generated']} from {md_code(root)} by bertviz-plot.", "", "## Runs", ""]
    if rep["runs"]:
        out += [
            "| task | model | init | seed | dev metric | majority baseline | beat it? | steps | "
            "train examples | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
    else:
        out.append("No training run directories under this directory.")
    for r in rep["runs"]:
        beat = {True: "yes", False: "**no**"}.get(r.get("beat"), "–")
        cells = [md_text(r["task"]), md_text(r.get("model") or "–"), md_text(r["init"])]
        cells += [md_text(r.get("seed", "–")), f"{md_text(r['metric'])} {_num(r['dev'], '.3f')}"]
        cells += [_num(r["baseline"], ".3f"), beat]
        cells += [md_text(r["steps"]), md_text(r["examples"]), md_text(r["seconds"])]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if rep.get("warnings"):
        out += ["## Warnings", ""]
        out += [f"- {md_text(w.get('message') if isinstance(w, dict) else w)}" for w in rep["warnings"]]
        out.append("")
    if rep.get("skipped"):
        out += ["## Files not read", "", "No number or figure above comes from these files:", ""]
        out += [f"- {md_code(s['path'])}: {md_text(s['reason'])}" for s in rep["skipped"]]
        out.append("")
    out += ["## Figures", ""]
    for fig, kind, url in _figure_targets(rep):
        if kind == "png":
            out += [f"**{md_text(fig['caption'])}**", "", f"![{md_text(fig['kind'])}]({url})", ""]
        else:  # the blank line ends the item: the next figure's caption is its own paragraph
            out += [f"- [{md_text(fig['caption'])}]({url})", ""]
    out.append("")
    return "\n".join(out)


def _figure_targets(rep: dict):
    """(figure, "png" | "interactive", link target) of every figure the report shows: its PNG, or
    the page of an interactive one, when that file lies inside the results directory."""
    root = Path(rep["root"])
    for fig in rep["figures"]:
        files = [str(f) for f in fig.get("files") or []]
        png = next((f for f in files if f.endswith(".png")), None)
        if png:
            url = md_url(png, root)
            if url:
                yield fig, "png", url
        elif fig.get("kind") == "interactive3d" and files:
            url = md_url(files[0], root)
            if url:
                yield fig, "interactive", url


def figure_links(rep: dict) -> set[str]:
    """The link targets and image sources report.md makes (what `render_html` keeps): the
    figures' and the claims' figures."""
    claims = {md_url(f, rep["root"]) for f in (rep.get("claim_figures") or {}).values()}
    return {url for _, _, url in _figure_targets(rep)} | {u for u in claims if u}


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}code{background:#f6f6f6}"
)
IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')


def _inline_image(match: re.Match, root: Path) -> str:
    """A relative PNG under the report's directory as a data: URI (the page carries its figures)."""
    src = unquote(html.unescape(match.group(2)))  # markup.md_url percent-encoded it
    path = (root / src).resolve()
    if (
        "://" in src
        or src.startswith("data:")
        or not path.is_relative_to(root.resolve())
        or not path.is_file()
    ):
        return match.group(0)
    data = base64.b64encode(path.read_bytes()).decode()
    return f"{match.group(1)}data:image/png;base64,{data}{match.group(3)}"


def render_html(markdown_text: str, root: str | os.PathLike, links=()) -> str:
    """report.html rendered from report.md's text by a Markdown library (Python-Markdown with its
    `tables` extension, through `markup.to_html`: raw HTML is text, and only `links` (the
    figures' `figure_links`) stay links and images): the same tables, sentences and figures, one
    source. Figures are embedded as data: URIs (the page opens alone); links to the interactive
    3D pages stay relative to the report's directory, so they survive moving that directory."""
    root = Path(root)
    body = to_html(markdown_text, links)
    body = IMG_SRC.sub(lambda m: _inline_image(m, root), body)
    title = html.escape(f"Report: {root.name}")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{title}</title>"
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def claim_figure_link(root: str | os.PathLike, png: str | os.PathLike) -> str:
    """A claim's figure as ``claim_figures`` names it: relative to the results directory."""
    return _rel(str(png), Path(root))


def write_files(rep: dict, results_copy: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write the report `rep` (build_report's, its claims' figures drawn) into its results directory:
    `report.md`, `report.html`, `results.md` (the results section; also to `results_copy`, e.g.
    docs/results/demo.md, when given) and `claims.json` (the verdicts as data) atomically; returns
    the first two. Draws nothing."""
    root = Path(rep["root"])
    where = ResultsDir(root)
    section = render_results(rep) + "\n"
    write_text_atomic(where.results_md, section)
    write_json_atomic(  # the verdicts as data: per-seed values, the comparison, the adjusted p (for figures)
        where.claims,
        {
            "evidence": rep["evidence"],
            "plan": rep["plan"],
            "verdicts": [
                {"claim": v.claim, "task": v.task, "verdict": v.verdict, "sentence": v.sentence, **v.numbers}
                for v in rep["verdicts"]
            ],
        },
    )
    if results_copy:  # e.g. docs/results/demo.md, its claims' figures in docs/results/figures/demo/
        copy = Path(results_copy)
        copy.parent.mkdir(parents=True, exist_ok=True)
        urls = {}
        for key, rel in (rep.get("claim_figures") or {}).items():
            src = root / rel
            if src.is_file():
                dst = copy.parent / FIGURES / copy.stem / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(dst, src.read_bytes())
                urls[key] = quote(dst.relative_to(copy.parent).as_posix(), safe="/-._~")
        write_text_atomic(copy, render_results(rep, urls) + "\n")
    text = render_markdown(rep)
    page_text = render_html(text, root, figure_links(rep))  # both rendered before either is written
    md, page = write_texts_atomic({where.report_md: text, where.report_html: page_text})  # as a pair
    return md, page
