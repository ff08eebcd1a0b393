"""The results in W&B (offline by default; ``wandb sync <dir>/wandb/offline-run-*`` uploads).

`log_surface(path, config, run)` — one surface: its figure as an image (key
``landscape/surface``), its values as a table, 1D curves as native W&B line plots
(``wandb.plot.line``), 2D surfaces as the interactive Plotly 3D (``wandb.Html``), the surface
and its direction file as an artifact (type ``surface``), norms and cosine in the summary.

`log_results(root, ...)` — a whole results directory (what `make demo` writes): one W&B run
per (task, init), ``group=<task>`` so the pretrained and the scratch run of a task sit side
by side (training runs use the same group), ``job_type="landscape"``; each holds its surfaces
(as above), its figures as images and the analysis numbers in the run summary
(``analysis/<name>/<key>`` = the mean over runs). ``<root>/wandb/logged.json`` lists what was logged:
{"runs": [{"task", "init", "dir", "surfaces": [...], "figures": [...], "summary": {...}}]}.
Figures come from `bertviz_landscape.plots`; nothing here draws.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from bertviz_landscape.atomic import write_json_atomic
from bertviz_landscape.landscape.surface import Surface, load_surface
from bertviz_landscape.plots import curves, style, surface2d, surface3d
from bertviz_landscape.plots.inputs import analysis_identity, read_surface
from bertviz_landscape.plots.results import Results


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
    """Log one surface file into `run` (image, table, line plots or interactive 3D, artifact).
    The image goes to `image_key` (default ``<prefix>/<surface stem>/figure``)."""
    import wandb

    path = Path(path)
    sf = read_surface(path)
    s = sf.surface
    stem = path.stem
    logged: dict = {"surface": str(path), "keys": []}
    if figure_png is None:
        fig = surface2d.surface_contours(sf) if s.two_d else curves.loss_curves([sf])
        tmp = Path(tempfile.mkdtemp()) / f"{stem}.png"
        figure_png = str(style.save_figure(fig, tmp.with_suffix(""), formats=("png",))[0])
    table = surface_table(s)
    payload = {
        image_key or f"{prefix}/{stem}/figure": wandb.Image(figure_png, caption=sf.label),
        f"{prefix}/{stem}/table": table,
    }
    if not s.two_d:
        for key in ("train_loss", "dev_loss", "dev_error"):
            if key in s:
                payload[f"{prefix}/{stem}/{key}"] = wandb.plot.line(
                    table, "alpha", key, title=f"{sf.label}: {key.replace('_', ' ')} along δ1"
                )
    else:
        if interactive_html is None:
            interactive_html = str(surface3d.interactive_html(sf, Path(tempfile.mkdtemp()) / f"{stem}.html"))
        payload[f"{prefix}/{stem}/interactive_3d"] = wandb.Html(
            open(interactive_html, encoding="utf-8"), inject=False
        )
    run.log(payload)
    logged["keys"] = sorted(payload)
    d = s.meta.get("directions") or {}
    for k in ("norm_x", "norm_y", "cosine_xy"):
        if d.get(k) is not None:
            run.summary[f"{prefix}/{stem}/{k}"] = float(d[k])
            run.summary[k] = float(d[k])
    for key, arr in s.values.items():
        finite = np.asarray(arr, float)[np.isfinite(arr)]
        if finite.size:
            run.summary[f"{prefix}/{stem}/{key}_min"] = float(finite.min())
    name = f"surface-{stem}".replace("/", "-")
    artifact = wandb.Artifact(
        name,
        type="surface",
        description=sf.label,
        metadata={k: v for k, v in s.meta.items() if k not in ("directions",)}
        | {"directions": {k: v for k, v in d.items() if not str(k).startswith("layer_norms")}},
    )
    artifact.add_file(str(path))
    direction_file = path.with_name(f"{path.stem}.directions.h5")
    if (
        direction_file.is_file()
    ):  # a reference (path + checksum), not a copy: direction files are the size of a model
        artifact.add_reference(direction_file.resolve().as_uri(), name=direction_file.name)
    run.log_artifact(artifact)
    logged["artifact"] = name
    return logged


def _start(opts: dict, name: str | None, group: str | None, job_type: str, config: dict | None, wandb_dir):
    import wandb

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
    """Log the surface at `path` to W&B. Uses `run`, or starts one (group = the task) from config['wandb']."""
    opts = dict((config or {}).get("wandb") or {})
    own = run is None
    if own:
        task = str(load_surface(path).meta.get("task") or "landscape")
        run = _start(opts, opts.get("name"), task, "landscape", config, opts.get("dir"))
    try:
        log_surface_media(run, path, image_key="landscape/surface")
    finally:
        if own:
            run.finish()


def log_results(
    root: str | os.PathLike, wandb_cfg: dict | None = None, wandb_dir: str | os.PathLike | None = None
) -> dict:
    """Log a results directory: one W&B run per (task, init), grouped by task (see module doc)."""
    import json

    import wandb

    root = Path(root)
    wandb_dir = Path(wandb_dir or root)
    results = Results.scan(root, exclude=(root / "figures", root / "wandb"))
    manifest_path = root / "figures" / "figures.json"
    figures = json.loads(manifest_path.read_text())["figures"] if manifest_path.is_file() else []
    groups: dict[tuple[str, str], dict] = {}
    for sf in results.surfaces:
        groups.setdefault((sf.task, sf.init), {"surfaces": [], "analyses": []})["surfaces"].append(sf)
    for datas in results.analyses.values():
        for d in datas:
            groups.setdefault(analysis_identity(d), {"surfaces": [], "analyses": []})["analyses"].append(d)
    logged = []
    for (task, init), g in sorted(groups.items()):
        run = _start(
            dict(wandb_cfg or {}),
            f"{task}_{init}-landscape",
            task,
            "landscape",
            {"task": task, "init": init, "results": str(root)},
            wandb_dir,
        )
        entry = {
            "task": task,
            "init": init,
            "dir": str(Path(run.dir).parent),
            "surfaces": [],
            "figures": [],
            "summary": {},
        }
        try:
            for sf in g["surfaces"]:
                fig = next(
                    (
                        f
                        for f in figures
                        if sf.path.name
                        and str(sf.path) in f.get("sources", [])
                        and f["kind"] in ("surface2d", "curve1d")
                    ),
                    None,
                )
                png = next((p for p in (fig or {}).get("files", []) if p.endswith(".png")), None)
                html = next(
                    (
                        p
                        for f in figures
                        if f["kind"] == "interactive3d" and str(sf.path) in f.get("sources", [])
                        for p in f["files"]
                    ),
                    None,
                )
                entry["surfaces"].append(
                    log_surface_media(run, sf.path, figure_png=png, interactive_html=html)
                )
            for f in figures:  # the other figures of this (task, init), and the task's shared ones
                if f["kind"] in ("surface2d", "curve1d", "interactive3d") or f.get("task") not in (
                    task,
                    "all",
                ):
                    continue
                if f.get("init") not in (None, init):
                    continue
                png = next((p for p in f["files"] if p.endswith(".png")), None)
                if png:
                    run.log({f"figures/{f['kind']}": wandb.Image(png, caption=f["caption"])})
                    entry["figures"].append(png)
            for d in g["analyses"]:
                for key, val in (d.get("summary") or {}).items():
                    mean = val.get("mean") if isinstance(val, dict) else val
                    if isinstance(mean, (int, float)) and np.isfinite(mean):
                        run.summary[f"analysis/{d['analysis']}/{key}"] = float(mean)
                        entry["summary"][f"analysis/{d['analysis']}/{key}"] = float(mean)
                for r in (d.get("runs") or [])[:1]:
                    for k in ("dev_metric", "majority_baseline", "beat_baseline"):
                        if r.get(k) is not None:
                            run.summary[f"run/{k}"] = r[k]
        finally:
            run.finish()
        logged.append(entry)
    out = {"runs": logged}
    write_json_atomic(root / "wandb" / "logged.json", out)
    return out
