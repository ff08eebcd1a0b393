"""Writes report.md and report.html for a results directory (see the package docstring).

One report, two renderings: `render_markdown` writes the Markdown; `render_html` renders that
same text with a Markdown library (nothing is written twice, so the two cannot drift)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import time
from collections import defaultdict
from pathlib import Path

import markdown

from bertviz_landscape.analysis.common import baseline_verdict
from bertviz_landscape.atomic import write_text_atomic
from bertviz_landscape.report.claims import decide_all, width_bounded
from bertviz_landscape.rundir import RunDir

# (analysis, summary key, row label, format)
ROWS = [
    ("flatness", "width_x_*", "basin width along δ1, ε={eps} (units ‖δ1‖)", "{:.3g}"),
    ("flatness", "area_*", "basin area, ε={eps} (units ‖δ1‖²)", "{:.3g}"),
    ("flatness", "hessian_top", "Hessian top eigenvalue", "{:.4g}"),
    ("flatness", "hessian_trace", "Hessian trace", "{:.3g}"),
    ("consistency", "spearman", "Spearman ρ(train loss, dev error)", "{:.3f}"),
    ("consistency", "iou_25", "IoU of lowest-25% regions", "{:.3f}"),
    (
        "trajectory",
        "max_distance_from_plane",
        "trajectory: max distance from the plane (‖v‖-relative)",
        "{:.3f}",
    ),
    ("trajectory", "pca_top2_explained", "trajectory: PCA top-2 explained variance", "{:.3f}"),
    ("trajectory", "final_alpha", "trajectory: final α", "{:.3f}"),
    ("trajectory", "final_beta", "trajectory: final β", "{:.3f}"),
    ("longtrain", "best", "long training: best dev metric", "{:.3f}"),
    ("longtrain", "last", "long training: last dev metric", "{:.3f}"),
    ("longtrain", "drop_from_best", "long training: drop from best", "{:.3f}"),
]


def _eps(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _fmt(entry, fmt: str) -> str:
    if entry is None:
        return "–"
    if isinstance(entry, (int, float)):
        entry = {"mean": entry, "std": 0.0, "n": 1}
    m = entry.get("mean")
    if m is None or (isinstance(m, float) and not math.isfinite(m)):
        return "–"
    text = fmt.format(float(m))
    n = int(entry.get("n") or 1)
    if n > 1:
        text += " ± " + fmt.format(float(entry.get("std") or 0.0)) + f" (n={n})"
    return text


def _load(root: Path):
    from bertviz_landscape.plots.results import Results

    return Results.scan(root, exclude=(root / "figures",))


def table_rows(analyses: dict[str, list[dict]], task: str) -> list[tuple[str, str, str]]:
    """(label, pretrained, scratch) rows of one task's numbers."""
    per = defaultdict(dict)  # name -> init -> json
    for name, datas in analyses.items():
        for d in datas:
            run = (d.get("runs") or [{}])[0]
            if run.get("task") == task:
                per[name].setdefault(str(run.get("init")), d)
    rows = []
    runs = {}
    for name in per:
        for init, d in per[name].items():
            runs.setdefault(init, (d.get("runs") or [{}])[0])
    if runs:
        metric = next(iter(runs.values())).get("primary_metric", "metric")
        rows.append(
            (
                f"dev {metric} (final)",
                *(_fmt(runs.get(i, {}).get("dev_metric"), "{:.3f}") for i in ("pretrained", "scratch")),
            )
        )
        rows.append(
            (
                "majority baseline",
                *(
                    _fmt(runs.get(i, {}).get("majority_baseline"), "{:.3f}")
                    for i in ("pretrained", "scratch")
                ),
            )
        )
        rows.append(
            (
                "beat the baseline",
                *(
                    {True: "yes", False: "**no**"}.get(runs.get(i, {}).get("beat_baseline"), "–")
                    for i in ("pretrained", "scratch")
                ),
            )
        )
    for name, key, label, fmt in ROWS:
        if name not in per:
            continue
        if key.endswith("*"):
            keys = sorted(
                {
                    k
                    for d in per[name].values()
                    for k in (d.get("summary") or {})
                    if k.startswith(key[:-1]) and _eps(k[len(key) - 1 :])
                },
                key=lambda k: _eps(k[len(key) - 1 :]),
            )
        else:
            keys = [key]
        for k in keys:
            eps = k[len(key) - 1 :] if key.endswith("*") else ""
            vals = [(per[name].get(i) or {}).get("summary", {}).get(k) for i in ("pretrained", "scratch")]
            texts = [_fmt(v, fmt) for v in vals]
            if all(t == "–" for t in texts):  # not computed for either run (e.g. no Hessian trace): no row
                continue
            if k.startswith("width_x_"):  # a basin that extends past the grid: the width is a lower bound
                texts = [
                    ("≥ " + t if t != "–" and not width_bounded(per[name][i], eps) else t)
                    if i in per[name]
                    else t
                    for t, i in zip(texts, ("pretrained", "scratch"))
                ]
            rows.append((label.format(eps=eps), *texts))
    return rows


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


def build_report(root: str | os.PathLike) -> dict:
    """Everything the report says, as data: tasks, tables, verdicts, figures."""
    root = Path(root)
    results = _load(root)
    manifest_path = root / "figures" / "figures.json"
    if not manifest_path.is_file():
        from bertviz_landscape.plots.results import draw_all

        draw_all(root, root / "figures")
    manifest = json.loads(manifest_path.read_text())
    analyses = {k: list(v) for k, v in results.analyses.items()}
    verdicts = decide_all(analyses)
    tasks = sorted({v.task for v in verdicts} | {sf.task for sf in results.surfaces})
    tables = {t: surface_rows(results, t) + table_rows(analyses, t) for t in tasks}
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
                "metric": metric,
                "dev": dev,
                "baseline": base,
                "beat": beat,
                "steps": m.get("steps"),
                "examples": m.get("train_examples"),
                "seconds": m.get("wall_seconds"),
            }
        )
    return {
        "root": str(root),
        "tasks": tasks,
        "tables": tables,
        "verdicts": verdicts,
        "figures": manifest.get("figures", []),
        "warnings": manifest.get("warnings", []),
        "runs": sorted(runs, key=lambda r: (str(r["task"]), str(r["init"]))),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _rel(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def render_markdown(rep: dict) -> str:
    root = Path(rep["root"])
    out = [f"# Report: {root.name}", "", f"Generated {rep['generated']} from `{root}` by bertviz-plot.", ""]
    out += ["## Runs", ""]
    if rep["runs"]:
        out += [
            "| task | init | dev metric | majority baseline | beat it? | steps | train examples | wall s |",
            "|---|---|---|---|---|---|---|---|",
        ]
    else:
        out.append("No training run directories under this directory.")
    for r in rep["runs"]:
        beat = {True: "yes", False: "**no**"}.get(r.get("beat"), "–")
        f = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        out.append(
            f"| {r['task']} | {r['init']} | {r['metric']} {f(r['dev'])} | {f(r['baseline'])} | {beat} | {r['steps']} | {r['examples']} | {r['seconds']} |"
        )
    out += ["", "## The paper's claims, decided by the numbers", ""]
    for v in rep["verdicts"]:
        out.append(f"- **{v.title}** ({v.task}): {v.sentence}")
    if not rep["verdicts"]:
        out.append("- No analysis JSONs found: run bertviz-analyze first (or `make demo`).")
    out += [
        "",
        "The decision rules are in `bertviz_landscape/report/claims.py` (a difference must exceed 2 standard errors; "
        "a run that did not beat its majority baseline — for accuracy by more than 2 binomial standard errors on the dev set — leaves a claim unresolved, except easier optimisation, which is about training loss and flags it).",
        "",
    ]
    if rep.get("warnings"):
        out += ["## Warnings", ""]
        out += [f"- {w['message']}" for w in rep["warnings"]]
        out.append("")
    for task in rep["tasks"]:
        rows = rep["tables"].get(task) or []
        if not rows:
            continue
        out += [f"## Numbers: {task}", "", "| | pretrained | from scratch |", "|---|---|---|"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        out.append("")
    out += ["## Figures", ""]
    for fig in rep["figures"]:
        png = next((f for f in fig["files"] if f.endswith(".png")), None)
        if png:
            out += [f"**{fig['caption']}**", "", f"![{fig['kind']}]({_rel(png, root)})", ""]
        elif fig["kind"] == "interactive3d":
            out += [f"- [{fig['caption']}]({_rel(fig['files'][0], root)})"]
    out.append("")
    return "\n".join(out)


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}code{background:#f6f6f6}"
)
IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]+)(")')


def _inline_image(match: re.Match, root: Path) -> str:
    """A relative PNG under the report's directory as a data: URI (the page carries its figures)."""
    src = html.unescape(match.group(2))
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


def render_html(markdown_text: str, root: str | os.PathLike) -> str:
    """report.html rendered from report.md's text by a Markdown library (Python-Markdown with its
    `tables` extension): the same tables, sentences and figures, one source. Figures are embedded
    as data: URIs (the page opens alone); links to the interactive 3D pages stay relative to the
    report's directory, so they survive moving that directory."""
    root = Path(root)
    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    body = IMG_SRC.sub(lambda m: _inline_image(m, root), body)
    title = html.escape(f"Report: {root.name}")
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{title}</title>"
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(root: str | os.PathLike) -> tuple[Path, Path]:
    """Write `<root>/report.md` and `<root>/report.html` (atomically); returns their paths."""
    root = Path(root)
    rep = build_report(root)
    text = render_markdown(rep)
    page_text = render_html(text, root)  # both rendered before either is written
    md = write_text_atomic(root / "report.md", text)
    page = write_text_atomic(root / "report.html", page_text)
    return md, page
