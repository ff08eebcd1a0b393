"""Every figure a directory of results supports, drawn in one call: `draw_all(results, out)`.

A results directory is anything holding surface files (``*.h5``; direction files, shard parts
and trajectory projection files are recognised and skipped), analysis JSONs (format
``bertviz-analysis/1``) and training run directories, at any depth. Figures go to
``<out>/<kind>_<task>[_<init>_<recipe>_<grid>].{png,pdf}``, interactive surfaces to
``<out>/interactive/<...>.html``; ``<out>/figures.json`` lists them:

    {"format": "bertviz-figures/1", "results": dir,
     "figures": [{"kind": "curve1d"|"surface2d"|"surface2d_compare"|"surface3d"|"interactive3d"|
                  "paraview"|<an analysis figure: "layers"|"dev_per_epoch"|"flatness"|...>,
                  "task": str, "init": str|null,
                  "files": [path, ...], "sources": [path, ...], "caption": str}, ...],
     "warnings": [{"surface", "task", "init", "key", "edges", "override", "message"}],
     "skipped": [{"path": str, "reason": str}]}

The surface figures come first (the path of an analysis that declares ``surface_path``, the
trajectory, drawn on each 2D one), then every analysis figure: each AnalysisSpec names its figures
(analysis/spec.py), `ANALYSIS_FIGURES` maps a name to its drawer (`@analysis_figure(name)`).

A warning is a minimum on the grid's edge (`landscape.surface.minimum_on_edge`): logged, listed
here, noted on the figure, and repeated by the report.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import run_fingerprint
from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.names import confine
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import minimum_on_edge, write_vts
from bertviz_landscape.plots import basins, curvature, curves, layers, longtrain, style, surface2d, surface3d
from bertviz_landscape.plots.inputs import (
    SurfaceFile,
    analysis_identity,
    is_analysis_file,
    read_analysis,
    read_surface,
)

log = logging.getLogger(__name__)
FIGURES_FORMAT = "bertviz-figures/1"
EDGE_KEYS = ("train_loss", "dev_error")  # the values whose minimum a grid must not crop


@dataclass
class Results:
    root: Path
    surfaces: list[SurfaceFile] = field(default_factory=list)
    analyses: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))  # name → JSONs
    runs: list[Path] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @classmethod
    def scan(cls, root: str | os.PathLike, exclude: tuple[str | os.PathLike, ...] = ()) -> Results:
        import json

        root = Path(root)
        if not root.is_dir():
            raise BadInput(f"results directory {root} does not exist")
        out = cls(root)
        excluded = [Path(e).resolve() for e in exclude]
        for path in sorted(root.rglob("*")):
            if any(part.startswith(".") or part.endswith(".parts") for part in path.relative_to(root).parts):
                continue
            if any(
                path.is_relative_to(r) for r in out.runs
            ):  # inside a run: its checkpoints, snapshots, W&B files
                continue
            if path.is_dir() and RunDir.is_run(path):
                out.runs.append(path)
                continue
            if not path.is_file() or any(path.resolve().is_relative_to(e) for e in excluded):
                continue
            if path.suffix == ".h5" and not path.name.endswith(".directions.h5"):
                try:
                    out.surfaces.append(read_surface(path))
                except (
                    KeyError,
                    OSError,
                    ValueError,
                    RecursionError,
                ) as err:  # a projection file, a foreign HDF5
                    out.skipped.append({"path": str(path), "reason": _reason(err)})
            elif path.suffix == ".json" and path.stat().st_size < 200_000_000:
                try:
                    head = json.loads(path.read_text())
                except (ValueError, OSError, UnicodeDecodeError, RecursionError) as err:
                    if is_analysis_file(path):  # a corrupt analysis JSON is named, not silently dropped
                        out.skipped.append({"path": str(path), "reason": _reason(err)})
                    continue
                if isinstance(head, dict) and head.get("format") == "bertviz-analysis/1":
                    try:
                        data = read_analysis(path)
                    except (KeyError, ValueError, RecursionError) as err:
                        out.skipped.append({"path": str(path), "reason": _reason(err)})
                        continue
                    out.analyses[str(data["analysis"])].append(data)
        refuse_mixed_analyses(out)
        return out


def figures_dir(results_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Where the figures of `results_dir` go: `out_dir`, default `<results>/figures`
    (`ResultsDir.figures_dir`: a `figures` linked outside the results directory is refused)."""
    return ResultsDir(results_dir).figures_dir(out_dir)


def _rel(path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _run_text(run: dict) -> str:
    where = run.get("run") or "no run directory"
    lr = "" if run.get("lr") is None else f", lr {run['lr']}"
    return f"{where}: {run.get('task')}, {run.get('init')}, seed {run.get('seed')}{lr}"


def refuse_mixed_analyses(results: Results) -> None:
    """One result per analysis and run in a results directory, or a BadInput naming both files:

    - two JSONs of one analysis holding the same run (other settings, another surface, a stale copy):
      the report would count one and silently drop the other, a figure would draw both;
    - two runs that are copies of one run (the same task, init, seed and θ1 weights under two
      paths, `analysis.common.run_fingerprint`): they would count as two seeds (n = 2, std 0)."""
    fingerprints: dict[str, str | None] = {}

    def fingerprint(run: dict) -> str | None:
        path = run.get("run")
        if run.get("fingerprint") or not path:
            return run.get("fingerprint")
        if path not in fingerprints:  # a JSON from before runs carried it: the run directory as it is now
            fingerprints[path] = run_fingerprint(RunDir(path)) if RunDir.is_run(path) else None
        return fingerprints[path]

    for name, datas in sorted(results.analyses.items()):
        same_run: dict[tuple, str] = {}
        same_seed: dict[tuple, list[tuple[str, dict]]] = {}
        for data in sorted(datas, key=lambda d: str(d.get("_path"))):
            for run in data.get("runs") or []:
                if not isinstance(run, dict):
                    continue
                ident = tuple(str(run.get(k)) for k in ("task", "init", "seed", "lr"))
                here = _rel(data["_path"], results.root)
                if (*ident, str(run.get("run"))) in same_run:
                    there = same_run[(*ident, str(run.get("run")))]
                    raise BadInput(
                        f"{there} and {here}: two {name} results of one run ({_run_text(run)}) in "
                        f"{results.root}; the report would count one and drop the other: keep one of them "
                        "(move the other out of the results directory)"
                    )
                same_run[(*ident, str(run.get("run")))] = here
                if not run.get("run"):
                    continue
                for there, other in same_seed.get(ident, []):
                    fp = fingerprint(run)
                    if fp is not None and fp == fingerprint(other):
                        raise BadInput(
                            f"{there} and {here}: {name} of {other.get('run')} and of {run.get('run')}, "
                            f"copies of one run (same task, init, seed and θ1 weights, fingerprint {fp}): "
                            "it would count as two seeds (n = 2, std 0); remove the copy"
                        )
                same_seed.setdefault(ident, []).append((here, run))


def _reason(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def grid_name(sf: SurfaceFile) -> str:
    """The grid's name (conf/grid/*.yaml), else plane/line."""
    g = sf.surface.meta.get("grid") or {}
    return str(g.get("name") or ("plane" if sf.surface.two_d else "line"))


def _trajectory_for(results: Results, sf: SurfaceFile) -> dict | None:
    """The path drawn on this surface: the JSON of an analysis whose figures include the surface
    path (the trajectory) made on this surface (its inputs name it), else one of the same run."""
    candidates = [
        d
        for spec in registry.specs()
        if SURFACE_PATH in spec.figures
        for d in results.analyses.get(spec.name, [])
    ]
    for data in candidates:
        surf = str((data.get("inputs") or {}).get("surface") or "")
        if surf and Path(surf).name == sf.path.name:
            return data
    return next((d for d in candidates if analysis_identity(d) == (sf.task, sf.init)), None)


def edge_warnings(results: Results) -> list[dict]:
    """Every surface whose lowest training loss or dev error lies on the grid's edge, each logged
    as a warning naming the override that widens the grid."""
    out = []
    for sf in results.surfaces:
        for key in EDGE_KEYS:
            edge = minimum_on_edge(sf.surface, key)
            if edge is None:
                continue
            entry = {
                "surface": str(sf.path),
                "task": sf.task,
                "init": sf.init,
                "key": key,
                "edges": edge["edges"],
                "override": edge["override"],
                "message": f"{sf.task} · {style.init_label(sf.init)} ({sf.path.name}): {edge['message']}",
            }
            log.warning("%s", entry["message"])
            out.append(entry)
    return out


def _seed_of(data: dict):
    """The seed of a one-run analysis JSON ('?' when it does not say)."""
    runs = data.get("runs") or [{}]
    return runs[0].get("seed", "?")


def draw_all(
    results_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    interactive: bool = True,
    formats: tuple[str, ...] = ("png", "pdf"),
    trajectory_projection: str = "lstsq",
    paraview: bool = False,
) -> dict:
    """Draw every figure `results_dir` supports into `out_dir` (default `<results>/figures`);
    returns (and writes) the figures.json manifest. `trajectory_projection`: ``lstsq`` (where
    the path is on each plane) or ``paper`` (the paper's (α_t, β_t), captioned as a projection).
    `paraview`: also export every 2D surface as ``<out>/paraview/<...>.vts`` (needs pyvista)."""
    if trajectory_projection not in surface2d.PROJECTIONS:
        raise BadInput(
            f"trajectory_projection={trajectory_projection!r}: must be one of "
            + ", ".join(surface2d.PROJECTIONS)
        )
    results_dir = Path(results_dir)
    out = figures_dir(results_dir, out_dir)
    results = Results.scan(results_dir, exclude=(out,))
    figures: list[dict] = []
    warnings = edge_warnings(results)

    used: set[str] = set()

    def add(kind, task, init, fig, stem, sources, caption):
        if stem in used:  # two surfaces of one (task, init, recipe, grid): two seeds, two grid sizes
            stem = f"{stem}_{Path(str(sources[0])).stem}" if sources else stem
            if stem in used:
                raise BadInput(f"figure {stem}: two inputs would write the same figure files ({sources})")
        used.add(stem)
        files = style.save_figure(fig, confine(out.resolve() / stem, out, "figure file name"), formats)
        figures.append(
            {
                "kind": kind,
                "task": task,
                "init": init,
                "files": [str(f) for f in files],
                "sources": [str(s) for s in sources],
                "caption": caption,
            }
        )

    # 1D curves: pretrained vs scratch per (task, recipe)
    lines = defaultdict(list)
    for sf in results.surfaces:
        if not sf.surface.two_d:
            lines[(sf.task, sf.recipe, grid_name(sf))].append(sf)
    for (task, recipe, grid), group in sorted(lines.items()):
        group.sort(key=lambda s: (s.init != "pretrained", s.init))
        fig = curves.loss_curves(group)
        add(
            "curve1d",
            task,
            None,
            fig,
            f"curve1d_{task}_{recipe}_{grid}",
            [s.path for s in group],
            f"{task}: training loss (top panel) and dev error (bottom panel) along δ1 = θ1 − θ0, "
            + " vs ".join(style.init_label(s.init) for s in group)
            + "; θ0 at α=0, θ1 at α=1"
            + (
                "; band: ±1 standard error over the examples"
                if any("train_loss_stderr" in s.surface for s in group)
                else ""
            )
            + "".join(f"; {n}" for n in fig._bertviz_notes if not n.startswith("band")),
        )

    # 2D surfaces: contours (+ trajectory), 3D, interactive
    for sf in results.surfaces:
        if not sf.surface.two_d:
            continue
        stem = f"{sf.task}_{sf.init}_{sf.recipe}_{grid_name(sf)}"
        traj = _trajectory_for(results, sf)
        fig = surface2d.surface_contours(sf, traj, trajectory_projection)
        notes = fig._bertviz_notes
        add(
            "surface2d",
            sf.task,
            sf.init,
            fig,
            f"surface2d_{stem}",
            [sf.path] + ([traj["_path"]] if traj else []),
            f"{sf.task}, {style.init_label(sf.init)}: training loss and dev error on the ({sf.recipe}) plane"
            + (
                ", the trajectory at its least-squares coordinates on it"
                if traj and trajectory_projection == "lstsq"
                else ", the trajectory in the paper's (α_t, β_t) projection"
                if traj
                else ""
            )
            + ". "
            + "; ".join(notes),
        )
        key = "train_loss" if "train_loss" in sf.surface else sf.surface.keys()[0]
        add(
            "surface3d",
            sf.task,
            sf.init,
            surface3d.surface_3d(sf, key, traj, trajectory_projection),
            f"surface3d_{stem}",
            [sf.path] + ([traj["_path"]] if traj else []),
            f"{sf.task}, {style.init_label(sf.init)}: {style.value_label(key)} in 3D"
            + (
                ", the trajectory at its measured (eval-mode) training loss"
                if key == "train_loss" and surface2d.path_heights(traj, sf, trajectory_projection)
                else ""
            ),
        )
        if paraview:  # ParaView's structured grid (Li et al.'s h52vtp.py assumes nx = ny)
            try:
                vts = write_vts(
                    sf.surface, confine(out.resolve() / "paraview" / f"{stem}.vts", out, "figure file name")
                )
            except ImportError as err:
                raise BadInput(f"paraview=true: {err}") from None
            figures.append(
                {
                    "kind": "paraview",
                    "task": sf.task,
                    "init": sf.init,
                    "files": [str(vts)],
                    "sources": [str(sf.path)],
                    "caption": f"{sf.task}, {style.init_label(sf.init)}: the surface as a ParaView grid",
                }
            )
        if interactive:
            html = surface3d.interactive_html(
                sf, out / "interactive" / f"{stem}.html", trajectory=traj, projection=trajectory_projection
            )
            figures.append(
                {
                    "kind": "interactive3d",
                    "task": sf.task,
                    "init": sf.init,
                    "files": [str(html)],
                    "sources": [str(sf.path)],
                    "caption": f"{sf.task}, {style.init_label(sf.init)}: interactive 3D surface (Plotly)",
                }
            )

    # pretrained vs scratch per surface kind: one colour scale and one set of levels per value
    kinds = defaultdict(list)
    for sf in results.surfaces:
        if sf.surface.two_d:
            kinds[(sf.task, sf.recipe, grid_name(sf))].append(sf)
    for (task, recipe, grid), group in sorted(kinds.items()):
        inits = {sf.init for sf in group}
        if len(inits) < 2:
            continue
        group.sort(key=lambda s: (s.init != "pretrained", s.init))
        group = [next(s for s in group if s.init == i) for i in dict.fromkeys(s.init for s in group)]
        trajs = [_trajectory_for(results, sf) for sf in group]
        fig = surface2d.surface_comparison(group, trajs, trajectory_projection)
        add(
            "surface2d_compare",
            task,
            None,
            fig,
            f"surface2d_compare_{task}_{recipe}_{grid}",
            [s.path for s in group] + [t["_path"] for t in trajs if t],
            f"{task}: "
            + " vs ".join(style.init_label(s.init) for s in group)
            + f" on their ({recipe}) planes, one colour scale and one set of contour levels per row. "
            + "; ".join(fig._bertviz_notes),
        )

    # the analyses' own figures (each AnalysisSpec names them; ANALYSIS_FIGURES draws them)
    for spec in registry.specs():
        for kind in sorted(set(spec.figures) - figure_names()):
            log.warning(
                "analysis %s: no figure %r in plots/ (known: %s)", spec.name, kind, sorted(figure_names())
            )
            results.skipped.append({"path": spec.name, "reason": f"no figure {kind!r} in plots/"})
    for kind, drawer in ANALYSIS_FIGURES.items():
        for spec in registry.specs():
            if kind in spec.figures:
                for f in drawer(results.analyses.get(spec.name, []), results):
                    add(f.kind, f.task, None, f.fig, f.stem, f.sources, f.caption)

    manifest = {
        "format": FIGURES_FORMAT,
        "results": str(results_dir),
        "figures": figures,
        "warnings": warnings,
        "skipped": results.skipped,
    }
    write_json_atomic(ResultsDir.catalogue_in(out), manifest)
    log.info("%d figures in %s", len(figures), out)
    return manifest


@dataclass
class Drawn:
    """One figure an analysis's drawer made: saved as ``<out>/<stem>.{png,pdf}`` by draw_all."""

    kind: str
    task: str
    fig: object  # matplotlib Figure
    stem: str
    sources: list
    caption: str


Drawer = Callable[[list[dict], Results], Iterable[Drawn]]  # (the analysis's JSONs, the directory) -> figures

# figure name (AnalysisSpec.figures) -> its drawer, in the order the figures are drawn; "surface_path" (the
# analysis's path drawn on every 2D surface figure) is drawn by the surface figures above
ANALYSIS_FIGURES: dict[str, Drawer] = {}
SURFACE_PATH = "surface_path"


def analysis_figure(kind: str) -> Callable[[Drawer], Drawer]:
    """Register a drawer of the analysis figure `kind` (an AnalysisSpec names it in `figures`)."""

    def decorate(fn: Drawer) -> Drawer:
        ANALYSIS_FIGURES[kind] = fn
        return fn

    return decorate


def figure_names() -> set[str]:
    """Every figure name an AnalysisSpec may declare."""
    return set(ANALYSIS_FIGURES) | {SURFACE_PATH}


@analysis_figure("layers")
def _layers_figures(datas: list[dict], results: Results) -> Iterable[Drawn]:
    """Layer-wise panels per task: bars the mean over seeds, a dot per seed, the first seed's 1D curves."""
    by_task = defaultdict(lambda: defaultdict(list))
    for data in sorted(datas, key=lambda d: str(d.get("_path", ""))):
        task, init = analysis_identity(data)
        by_task[task][init].append(data)
    for task, arms in sorted(by_task.items()):
        fig = layers.layer_panels(dict(arms), task)
        caption = f"{task}: per-layer relative change, roll-back and per-layer 1D curves"
        if any(len(datas) > 1 for datas in arms.values()):
            runs = ", ".join(f"{len(datas)} {init}" for init, datas in arms.items())
            first = ", ".join(f"{init} seed {_seed_of(datas[0])}" for init, datas in arms.items())
            note = f"bars: mean over seeds ({runs} runs), dots: each seed; the 1D curves of {first}"
            plateau = [
                f"{init} seed {_seed_of(d)}"
                for init, datas in arms.items()
                for d, ok in zip(datas, layers.plateau_seeds(datas))
                if not ok
            ]
            if plateau:
                note += (
                    f"; ×, not in the bars' mean: {', '.join(plateau)}, which did not beat the majority "
                    "baseline (the report says how the claims treat it: evidence.plateau_runs)"
                )
            fig.suptitle(f"{task}: layer-wise analysis — {runs} runs")
            caption += f"; {note}"
        sources = [d["_path"] for datas in arms.values() for d in datas]
        yield Drawn("layers", task, fig, f"layers_{task}", sources, caption)


@analysis_figure("basins")
def _basins_figures(datas: list[dict], results: Results) -> Iterable[Drawn]:
    """The interpolation curves between seeds per task (analysis=basins), both arms in one figure."""
    by_task = defaultdict(list)
    for data in sorted(datas, key=lambda d: str(d.get("_path", ""))):
        by_task[analysis_identity(data)[0]].append(data)
    for task, group in sorted(by_task.items()):
        yield Drawn(
            "basins",
            task,
            basins.interpolation_curves(group, task),
            f"basins_{task}",
            [d["_path"] for d in group],
            f"{task}: loss on the straight line between two seeds' θ1 that share θ0 (each run to the next "
            "seed's); the barrier is the rise above the chord between the ends",
        )


@analysis_figure("dev_per_epoch")
def _dev_per_epoch_figures(datas: list[dict], results: Results) -> Iterable[Drawn]:
    """Dev metric per epoch per task: from the analysis JSONs, else the runs' own per-epoch records."""
    series = defaultdict(list)
    sources = defaultdict(list)
    for data in datas:
        s = longtrain.series_from_analysis(data)
        series[s["task"]].append(s)
        sources[s["task"]].append(data["_path"])
    for run in results.runs:
        try:
            s = longtrain.series_from_run(run)
        except (FileNotFoundError, ValueError, KeyError) as err:
            results.skipped.append({"path": str(run), "reason": str(err).splitlines()[0]})
            continue
        if s["values"] and not any(x["init"] == s["init"] for x in series[s["task"]]):
            series[s["task"]].append(s)
            sources[s["task"]].append(str(run))
    for task, group in sorted(series.items()):
        group.sort(key=lambda s: (s["init"] != "pretrained", str(s["init"])))
        yield Drawn(
            "dev_per_epoch",
            task,
            longtrain.dev_per_epoch(group),
            f"dev_per_epoch_{task}",
            sources[task],
            f"{task}: dev {group[0]['metric']} after each epoch (★ best), majority baseline dashed",
        )


@analysis_figure("flatness")
def _flatness_figures(datas: list[dict], results: Results) -> Iterable[Drawn]:
    """Basin widths and curvature of every task, pretrained vs from scratch, in one figure."""
    if datas:
        yield Drawn(
            "flatness",
            "all",
            curvature.curvature_numbers(datas),
            "flatness",
            [d["_path"] for d in datas],
            "basin width/area along the training directions and Hessian curvature, pretrained vs from "
            "scratch",
        )
