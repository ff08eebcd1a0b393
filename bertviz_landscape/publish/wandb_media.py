"""The one W&B writer of the tool's results (offline by default; training logs its own run through
Lightning's logger). One key scheme for the analysis numbers, wherever they are logged:
``analysis/<analysis>/<key>`` (`analysis_key`). One command syncs every run of an experiment — the
landscape/figure runs and the training runs, wherever their directories are below the results
directory: ``wandb sync $(find <results> -type d -name 'offline-run-*')`` (``logged.json``'s
"sync" holds that command with the directories spelled out; `offline_runs(root)` lists them).

`log_surface(path, config, run)` — one surface: its figure as an image (key
``landscape/surface``), its values as a table, 1D curves as native W&B line plots
(``wandb.plot.line``), 2D surfaces as the interactive Plotly 3D (``wandb.Html``), the surface
and its direction file uploaded as an artifact (type ``surface``; files, not references), norms
and cosine in the summary.

`log_analysis(result, options, output)` — one analysis JSON (`bertviz-analyze
wandb.enabled=true`): a run (``job_type="analysis/<analysis>"``) whose summary holds
``analysis/<analysis>/<key>`` = the summary's mean over the runs, ``analysis/<analysis>/<key>_std``,
``analysis/<analysis>/num_runs`` and ``analysis/<analysis>/all_beat_baseline``
(`analysis_scalars`); the JSON attached as a file.

`log_results(root, ...)` — a whole results directory (what `make demo` writes): one W&B run
per (task, init), ``group=<task>``, ``job_type="landscape"``, the init in its name and config,
never in a key: media keys are ``landscape/<task>_<recipe>_<grid>/<what>`` and
``figures/<kind>/<task>_<recipe>_<grid>``, so the pretrained and the scratch run of a task log
the same keys and W&B overlays them in one panel. Each run's config links it to its training
run(s): ``training_runs`` = [{"dir", "wandb_id", "seed", "config" (the run's config.yaml: its
hyper-parameters)}]. Figures drawn for both inits together (1D curves, the pretrained-vs-scratch
panels, layers, dev per epoch) are logged once, in one ``job_type="figures"`` run per task
(``<task>-figures``; figures of all tasks, e.g. flatness, in ``all-figures``): every figure
drawn for no single init. Analysis numbers go to the run summary, analysis by analysis in the
registry's order (`analysis_summary`): ``analysis/<name>/<key>`` = the mean over the runs (seeds)
of each summary scalar, ``numbers/<name>/<key>`` = the mean over the runs of each number the
report's tables show (the analysis's rows; their labels in logged.json). ``<root>/wandb/logged.json``
lists what was logged: {"runs": [{"task", "init", "job_type", "dir", "keys", "surfaces",
"figures", "summary", "numbers", "training_runs"}], "sync": str}.
The figures are the files the figures catalogue (``figures/figures.json``) lists, uploaded as
images; `log_results` draws nothing (the publisher draws the figures first when the catalogue is
missing: bertviz_landscape.publish.publisher). Only `log_surface`, for a single surface outside a
results directory, draws its one figure with `bertviz_landscape.plots`.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.measures.evidence import Options
from bertviz_landscape.analysis.spec import summary_entry, summary_mean
from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.direction_file import beside
from bertviz_landscape.engine.surface import Surface, load_surface
from bertviz_landscape.plots import curves, style, surface2d, surface3d
from bertviz_landscape.plots.inputs import SurfaceFile, analysis_identity, read_surface
from bertviz_landscape.plots.results import Results, grid_name
from bertviz_landscape.publish.report.claims import run_records
from bertviz_landscape.publish.report.plan import resolve as resolve_plan
from bertviz_landscape.publish.report.writer import read_catalogue


def panel_name(sf: SurfaceFile) -> str:
    """The key part a surface logs under: its task, recipe and grid, not its init."""
    return f"{sf.task}_{sf.recipe}_{grid_name(sf)}"


def surface_table(surface: Surface):
    """A wandb.Table with one row per grid point: alpha (beta) and every value."""
    import wandb

    keys = sorted(surface.keys())
    if surface.two_d:
        yy, xx = np.meshgrid(surface.y, surface.x, indexing="ij")  # [ny, nx] like the values
        cols = ["alpha", "beta", *keys]
        data = np.column_stack(
            [xx.ravel(), yy.ravel(), *[np.asarray(surface[k], float).ravel() for k in keys]]
        )
    else:
        cols = ["alpha", *keys]
        data = np.column_stack([np.asarray(surface.x, float), *[np.asarray(surface[k], float) for k in keys]])
    rows = [[None if not np.isfinite(v) else float(v) for v in row] for row in data]
    return wandb.Table(columns=cols, data=rows)


def log_surface_media(
    run,
    path: str | os.PathLike,
    prefix: str = "landscape",
    figure_png: str | None = None,
    interactive_html: str | None = None,
    image_key: str | None = None,
) -> dict:
    """Log one surface file into `run` (image, table, line plots or interactive 3D, artifact) under
    ``<prefix>/<task>_<recipe>_<grid>/...``. `figure_png`: the drawn figure to log as the image
    (None: no image, e.g. a 1D curve whose combined figure is logged once elsewhere), at
    `image_key` (default ``<prefix>/<panel>/figure``); `interactive_html`: a 2D surface's drawn
    interactive 3D page (None: none). Draws nothing."""
    import wandb  # wandb's import costs seconds: only W&B logging needs it

    path = Path(path)
    sf = read_surface(path)
    s = sf.surface
    panel = panel_name(sf)
    logged: dict = {"surface": str(path), "keys": []}
    payload = {}
    if figure_png:
        payload[image_key or f"{prefix}/{panel}/figure"] = wandb.Image(figure_png, caption=sf.label)
    table = surface_table(s)
    payload[f"{prefix}/{panel}/table"] = table
    if not s.two_d:
        for key in ("train_loss", "dev_loss", "dev_error"):
            if key in s:
                payload[f"{prefix}/{panel}/{key}"] = wandb.plot.line(
                    table, "alpha", key, title=f"{sf.task}: {key.replace('_', ' ')} along δ1"
                )
    elif interactive_html:
        with open(interactive_html, encoding="utf-8") as handle:
            payload[f"{prefix}/{panel}/interactive_3d"] = wandb.Html(handle, inject=False)
    run.log(payload)
    logged["keys"] = sorted(payload)
    d = s.meta.get("directions") or {}
    for k in ("norm_x", "norm_y", "cosine_xy"):
        if d.get(k) is not None:
            run.summary[f"{prefix}/{panel}/{k}"] = float(d[k])
            run.summary[k] = float(d[k])
    for key, arr in s.values.items():
        finite = np.asarray(arr, float)[np.isfinite(arr)]
        if finite.size:
            run.summary[f"{prefix}/{panel}/{key}_min"] = float(finite.min())
    name = f"surface-{path.stem}".replace("/", "-")
    artifact = wandb.Artifact(
        name,
        type="surface",
        description=sf.label,
        metadata={k: v for k, v in s.meta.items() if k not in ("directions",)}
        | {"directions": {k: v for k, v in d.items() if not str(k).startswith("layer_norms")}},
    )
    artifact.add_file(str(path))
    direction_file = beside(path)
    if direction_file.is_file():  # uploaded (the size of a model's moved parameters), not a file:// link
        artifact.add_file(str(direction_file), name=direction_file.name)
    run.log_artifact(artifact)
    logged["artifact"] = name
    return logged


def _start(opts: dict, name: str | None, group: str | None, job_type: str, config: dict | None, wandb_dir):
    import wandb  # see log_surface_media

    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(
        project=opts.get("project", "bertviz_landscape"),
        entity=opts.get("entity"),
        name=name,
        group=group,
        mode=opts.get("mode") or os.environ.get("WANDB_MODE", "offline"),
        dir=str(wandb_dir) if wandb_dir else opts.get("dir"),
        job_type=job_type,
        config=config or {},
        reinit="create_new",
    )


def log_surface(path: str | os.PathLike, config: dict | None = None, run=None) -> None:
    """Log the surface at `path` (one surface, no results directory: `bertviz-landscape
    wandb.enabled=true`) to W&B: its figure, drawn by plots into a temporary directory (2D: the
    contours and the interactive 3D; 1D: the curve), as the image ``landscape/surface``, then
    `log_surface_media`. Uses `run`, or starts one (group = the task) from config['wandb']."""
    path = Path(path)
    sf = read_surface(path)
    drawn = Path(tempfile.mkdtemp())
    fig, _caption = surface2d.surface_contours(sf) if sf.surface.two_d else curves.loss_curves([sf])
    png = str(style.save_figure(fig, drawn / path.stem, formats=("png",))[0])
    html = str(surface3d.interactive_html(sf, drawn / f"{path.stem}.html")) if sf.surface.two_d else None
    opts = dict((config or {}).get("wandb") or {})
    own = run is None
    if own:
        task = str(load_surface(path).meta.get("task") or "landscape")
        run = _start(opts, opts.get("name"), task, "landscape", config, opts.get("dir"))
    try:
        log_surface_media(run, path, figure_png=png, interactive_html=html, image_key="landscape/surface")
    finally:
        if own:
            run.finish()


def offline_runs(root: str | os.PathLike) -> list[Path]:
    """Every offline W&B run directory below `root` (landscape, figure and training runs)."""
    return sorted(p for p in Path(root).rglob("offline-run-*") if p.is_dir())


def sync_command(root: str | os.PathLike) -> str:
    """The one command that uploads every run of the experiment in `root`."""
    runs = offline_runs(root)
    return "wandb sync " + " ".join(shlex.quote(str(p)) for p in runs) if runs else ""


def training_link(run: Path) -> dict:
    """A training run as the landscape run's config names it: its directory, W&B id (from its
    offline/online run directory's name, `<mode>-run-<time>-<id>`), seed and config.yaml."""
    rd = RunDir(run)
    ident = rd.read_identity()
    ids = sorted(p.name.rsplit("-", 1)[-1] for p in rd.wandb_runs.glob("*run-*-*") if p.is_dir())
    config = rd.read_config()  # plain data: no tag builds an object, no interpolation resolves
    return {
        "dir": str(rd.root),
        "wandb_id": ids[-1] if ids else None,
        "wandb_ids": ids,
        "seed": ident.get("seed"),
        "config": config,
    }


def analysis_key(analysis: str, key: str) -> str:
    """The W&B key of an analysis number: ``analysis/<analysis>/<key>`` (the one scheme)."""
    return f"analysis/{analysis}/{key}"


def analysis_scalars(result: dict) -> dict[str, float]:
    """The flat numbers one analysis JSON puts in a W&B run summary: ``analysis/<name>/<key>`` = the
    summary's mean over the runs, ``.../<key>_std``, plus ``.../num_runs`` and, when every run's
    baseline verdict is known, ``.../all_beat_baseline``."""
    name = result["analysis"]
    out: dict[str, float | int | bool] = {analysis_key(name, "num_runs"): len(result.get("runs", []))}
    for key in result.get("summary") or {}:
        entry = summary_entry(result, key)
        if entry is not None:
            out[analysis_key(name, key)] = entry.mean
            out[analysis_key(name, f"{key}_std")] = entry.std
    flag = (result.get("baseline") or {}).get("all_beat_baseline")
    if flag is not None:
        out[analysis_key(name, "all_beat_baseline")] = bool(flag)
    return out


def log_analysis(result: dict, options: dict, output: str | os.PathLike | None = None) -> Path:
    """Put one analysis JSON's numbers in a W&B run's summary (`analysis_scalars`; offline unless
    ``options["mode"]`` or WANDB_MODE says otherwise); the JSON at `output` is attached as a file.
    Returns the finished run's directory."""
    first = (result.get("runs") or [{}])[0]
    name = options.get(
        "name"
    ) or f"{first.get('task') or 'analysis'}_{first.get('init') or ''}_{result['analysis']}".replace(
        "__", "_"
    )
    directory = options.get("dir")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
    run = _start(
        options | {"project": options.get("project") or "bertviz_landscape"},
        name,
        None,
        f"analysis/{result['analysis']}",
        {"analysis": result["analysis"], "inputs": result.get("inputs"), "runs": result.get("runs")},
        directory,
    )
    try:
        run.summary.update(analysis_scalars(result))
        if output is not None and Path(output).is_file():
            run.save(str(output), base_path=str(Path(output).parent), policy="now")
        run_dir_path = Path(run.dir).parent
    finally:
        run.finish()
    return run_dir_path


def analysis_summary(analyses: list[dict], opts: Options) -> tuple[dict[str, float], dict[str, dict]]:
    """The W&B summary of one (task, init)'s analysis JSONs, analysis by analysis in the registry's
    order (then any analysis this version does not know, by name): ``analysis/<name>/<key>`` = the
    mean of the JSONs' summary means (one JSON per seed: the mean over the seeds), and
    ``numbers/<name>/<key>`` = the mean over the runs of each number the report's tables show (the
    analysis's rows); `numbers` gives each of those its label and n."""
    by_name: dict[str, list[dict]] = defaultdict(list)
    for d in analyses:
        by_name[str(d.get("analysis"))].append(d)
    known = registry.names()
    summary: dict[str, float] = {}
    numbers: dict[str, dict] = {}
    for name in [n for n in known if n in by_name] + sorted(n for n in by_name if n not in known):
        values: dict[str, list[float]] = defaultdict(list)
        for d in by_name[name]:
            for key in d.get("summary") or {}:
                mean = summary_mean(d, key)
                if mean is not None:
                    values[key].append(mean)
        summary |= {analysis_key(name, key): float(np.mean(vals)) for key, vals in values.items()}
        if name not in known:
            continue
        records = run_records(name, by_name[name], opts)
        for row in registry.get(name).rows:
            vals = [r.numbers[row.key] for r in records if r.numbers.get(row.key) is not None]
            if vals:
                key = f"numbers/{name}/{row.key}"
                summary[key] = float(np.mean(vals))
                numbers[key] = {"label": row.label.strip(), "mean": summary[key], "n": len(vals)}
    return summary, numbers


def _figure_png(fig: dict) -> str | None:
    return next((p for p in fig.get("files", []) if p.endswith(".png")), None)


def _panel_of_figure(fig: dict, panels: dict[str, str]) -> str:
    for src in fig.get("sources", []):
        if src in panels:
            return panels[src]
    return str(fig.get("task") or "all")


def log_results(
    root: str | os.PathLike, wandb_cfg: dict | None = None, wandb_dir: str | os.PathLike | None = None
) -> dict:
    """Log a results directory: one W&B run per (task, init) and one figures run per task (see
    the module doc). Its figures are the catalogue's (figures/figures.json, drawn before: a
    BadInput naming it when missing); nothing is drawn here."""
    import wandb  # see log_surface_media

    root = Path(root)
    where = ResultsDir(root)
    wandb_dir = Path(wandb_dir or root)
    opts = resolve_plan(root)[0].opts  # the plan the report reads the numbers with
    results = Results.scan(root, exclude=(where.figures, where.wandb))
    figures = read_catalogue(root)["figures"]
    panels = {str(sf.path): panel_name(sf) for sf in results.surfaces}
    groups: dict[tuple[str, str], dict] = {}
    for sf in results.surfaces:
        groups.setdefault((sf.task, sf.init), {"surfaces": [], "analyses": []})["surfaces"].append(sf)
    for datas in results.analyses.values():
        for d in datas:
            groups.setdefault(analysis_identity(d), {"surfaces": [], "analyses": []})["analyses"].append(d)
    trained: dict[tuple[str, str], list[dict]] = {}
    for run_path in results.runs:
        ident = RunDir(run_path).read_identity()
        trained.setdefault((str(ident.get("task")), str(ident.get("init"))), []).append(
            training_link(run_path)
        )
    logged = []
    for (task, init), g in sorted(groups.items()):
        links = trained.get((task, init), [])
        run = _start(
            dict(wandb_cfg or {}),
            f"{task}_{init}-landscape",
            task,
            "landscape",
            {
                "task": task,
                "init": init,
                "results": str(root),
                "training_runs": links,
                "training_run_ids": [x["wandb_id"] for x in links if x["wandb_id"]],
            },
            wandb_dir,
        )
        entry = {
            "task": task,
            "init": init,
            "job_type": "landscape",
            "dir": str(Path(run.dir).parent),
            "surfaces": [],
            "figures": [],
            "keys": [],
            "summary": {},
            "training_runs": [x["dir"] for x in links],
        }
        try:
            for sf in g["surfaces"]:
                own = [
                    f for f in figures if str(sf.path) in f.get("sources", []) and f.get("init") == sf.init
                ]
                png = next((_figure_png(f) for f in own if f["kind"] == "surface2d"), None)
                html = next((f["files"][0] for f in own if f["kind"] == "interactive3d"), None)
                media = log_surface_media(
                    run, sf.path, figure_png=png if sf.surface.two_d else None, interactive_html=html
                )
                entry["surfaces"].append(media)
                entry["keys"] += media["keys"]
            for f in figures:  # this init's other figures (the 3D views), keyed without the init
                if (
                    f.get("init") != init
                    or f.get("task") != task
                    or f["kind"] in ("surface2d", "interactive3d")
                ):
                    continue
                png = _figure_png(f)
                if png:
                    key = f"figures/{f['kind']}/{_panel_of_figure(f, panels)}"
                    run.log({key: wandb.Image(png, caption=f["caption"])})
                    entry["figures"].append(png)
                    entry["keys"].append(key)
            summary, numbers = analysis_summary(g["analyses"], opts)
            for key, value in summary.items():
                run.summary[key] = value
            entry["summary"] = summary
            entry["numbers"] = numbers
            for d in g["analyses"]:
                for r in (d.get("runs") or [])[:1]:
                    for k in ("dev_metric", "majority_baseline", "beat_baseline"):
                        if r.get(k) is not None:
                            run.summary[f"run/{k}"] = r[k]
        finally:
            run.finish()
        entry["keys"] = sorted(set(entry["keys"]))
        logged.append(entry)
    shared: dict[str, list[dict]] = {}
    for f in figures:  # drawn for both inits together: logged once, in the task's figures run
        if f.get("init") is None and _figure_png(f):
            shared.setdefault(str(f.get("task") or "all"), []).append(f)
    for task, figs in sorted(shared.items()):
        run = _start(
            dict(wandb_cfg or {}),
            f"{task}-figures",
            task,
            "figures",
            {"task": task, "results": str(root), "training_runs": trained_for(trained, task)},
            wandb_dir,
        )
        entry = {"task": task, "init": None, "job_type": "figures", "dir": str(Path(run.dir).parent)}
        entry |= {
            "figures": [],
            "keys": [],
            "surfaces": [],
            "summary": {},
            "numbers": {},
            "training_runs": [],
        }
        try:
            for f in figs:
                key = f"figures/{f['kind']}/{_panel_of_figure(f, panels)}"
                run.log({key: wandb.Image(_figure_png(f), caption=f["caption"])})
                entry["figures"].append(_figure_png(f))
                entry["keys"].append(key)
        finally:
            run.finish()
        logged.append(entry)
    out = {"runs": logged, "sync": sync_command(root)}
    write_json_atomic(where.logged, out)
    return out


def trained_for(trained: dict[tuple[str, str], list[dict]], task: str) -> list[str]:
    """The training run directories of one task (every init), for a figures run's config."""
    return [x["dir"] for (t, _), links in sorted(trained.items()) if task in ("all", t) for x in links]
