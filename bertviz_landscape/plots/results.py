"""Every figure a directory of results supports, drawn in one call: `draw_all(results, out)`.

A results directory is anything holding surface files (``*.h5``; the tool's own direction files,
trajectory projection files and shard parts are recognised and skipped without a word), analysis
JSONs (format ``bertviz-analysis/1``) and training run directories, at any depth. Each figure kind
of the catalogue (plots/catalogue.py: the surface figures, then each analysis's own) is drawn to
``<out>/<name>.{png,pdf}`` (names: catalogue.py), interactive surfaces to
``<out>/interactive/<name>.html``; ``<out>/figures.json`` lists them:

    {"format": "bertviz-figures/1", "results": dir,
     "figures": [{"kind": "curve1d"|"surface2d"|"surface2d_compare"|"surface3d"|"interactive3d"|
                  "paraview"|<an analysis figure: "layers"|"dev_per_epoch"|"flatness"|...>,
                  "task": str, "init": str|null, "seed": int|null,
                  "files": [path, ...], "sources": [path, ...], "caption": str}, ...],
     "warnings": [{"surface", "task", "init", "key", "edges", "override", "message"}],
     "skipped": [{"path": str, "reason": str}]}

A warning is a minimum on the grid's edge (`landscape.surface.minimum_on_edge`): logged, listed
here, noted on the figure, and repeated by the report.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import run_fingerprint
from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.names import confine
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import minimum_on_edge
from bertviz_landscape.plots import catalogue, style, surface2d
from bertviz_landscape.plots.catalogue import SURFACE_PATH, Drawn, figure_names, grid_name  # noqa: F401
from bertviz_landscape.plots.inputs import SurfaceFile, is_analysis_file, read_analysis, read_surface

log = logging.getLogger(__name__)
FIGURES_FORMAT = "bertviz-figures/1"
EDGE_KEYS = ("train_loss", "dev_error")  # the values whose minimum a grid must not crop
OWN_FORMATS = ("bertviz-projection/1",)  # HDF5 files the tool writes that are not surfaces (trajectory.py)


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
                if own_file(path):  # a trajectory's projection file: the tool's own, read by no figure
                    continue
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


def own_file(path: Path) -> bool:
    """Whether the HDF5 file at `path` is one the tool writes beside its surfaces that no figure
    reads (a trajectory's ``*.projection.h5``, format ``bertviz-projection/1``)."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("format", "")) in OWN_FORMATS
    except (OSError, ValueError):
        return False


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
                # a run directory names the run (its lr is in its JSON only since runs carry their budget:
                # an older JSON of the same run must still meet it); without one, the rate tells sweeps apart
                keys = ("task", "init", "seed") if run.get("run") else ("task", "init", "seed", "lr")
                ident = tuple(str(run.get(k)) for k in keys)
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
    ctx = catalogue.Context(
        results, out, trajectory_projection, interactive, paraview, catalogue.surface_names(results.surfaces)
    )
    for spec in registry.specs():
        for kind in sorted(set(spec.figures) - figure_names()):
            log.warning(
                "analysis %s: no figure %r in plots/ (known: %s)", spec.name, kind, sorted(figure_names())
            )
            results.skipped.append({"path": spec.name, "reason": f"no figure {kind!r} in plots/"})
    used: set[str] = set()
    for kind, entry in catalogue.FIGURES.items():
        if entry.reads == "surfaces":
            batches = [[]]
        else:  # each analysis that names the figure, with its JSONs
            batches = [results.analyses.get(s.name, []) for s in registry.specs() if kind in s.figures]
        for datas in batches:
            for drawn in entry.draw(datas, ctx):
                if drawn.name in used:
                    raise BadInput(
                        f"figure {drawn.name}: two figures would write the same files ({drawn.sources})"
                    )
                used.add(drawn.name)
                files = drawn.files
                if drawn.figure is not None:
                    stem = confine(out.resolve() / drawn.name, out, "figure file name")
                    files = style.save_figure(drawn.figure, stem, formats)
                figures.append(
                    {
                        "kind": drawn.kind,
                        "task": drawn.task,
                        "init": drawn.init,
                        "seed": drawn.seed,
                        "files": [str(f) for f in files],
                        "sources": [str(s) for s in drawn.sources],
                        "caption": drawn.caption,
                    }
                )

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
