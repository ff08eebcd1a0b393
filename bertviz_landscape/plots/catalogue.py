"""The one catalogue of figures: every figure kind a results directory can have — the surface
figures and each analysis's own — registered here by name, each with its drawer.

    FIGURES = {kind: Entry(draw, reads)}     in the order `results.draw_all` draws them
    draw(datas, ctx) -> [Drawn, ...]         datas: the JSONs of the analysis that names the figure
                                             (AnalysisSpec.figures), [] for a surface figure
    Drawn(kind, task, name, figure, caption, sources, init, seed, files)

A drawer calls a plots/ function, which returns ``(figure, caption)``, and says where its figure
goes: ``name`` is the file stem, named once — ``<kind>_<what>`` where `what` is, for one surface,
``<task>_<init>[_seed<N>]_<recipe>_<grid>`` (`surface_names`: the seed when its run says it; a
`_2`, `_3` only where two surfaces would still share a name), for a group of surfaces
``<task>[_seed<N>]_<recipe>_<grid>``, for an analysis ``<task>`` (``flatness``: every task).
Interactive pages and ParaView grids are ``interactive/<what>.html`` and ``paraview/<what>.vts``.

A new figure: its plots/ function and an `@figure(kind)` drawer here; an analysis names `kind` in
its spec's ``figures``. `SURFACE_PATH` ("surface_path") is the name an analysis declares to have
its path drawn on every 2D surface figure (the trajectory).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertviz_landscape.analysis import registry
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.names import confine
from bertviz_landscape.engine.surface import write_vts
from bertviz_landscape.plots import basins, curvature, curves, layers, longtrain, style, surface2d, surface3d
from bertviz_landscape.plots.inputs import SurfaceFile, analysis_identity

SURFACE_PATH = "surface_path"


@dataclass(frozen=True)
class Drawn:
    """One figure a drawer made: `figure` (a matplotlib Figure) is saved as ``<out>/<name>.{png,pdf}``
    by draw_all; a drawer that writes its own file (an HTML page, a VTS grid) gives `files` instead."""

    kind: str
    task: str
    name: str
    figure: Any
    caption: str
    sources: list
    init: str | None = None
    seed: int | None = None
    files: list = field(default_factory=list)


@dataclass
class Context:
    """What every drawer may read: the scanned results directory (plots.results.Results), where
    files go, and the figure options."""

    results: Any
    out: Path
    projection: str = "lstsq"
    interactive: bool = True
    paraview: bool = False
    names: dict = field(default_factory=dict)  # surface path -> its name (surface_names)

    def name(self, sf: SurfaceFile) -> str:
        return self.names.get(str(sf.path)) or surface_name(sf)


Drawer = Callable[[list[dict], Context], Iterable[Drawn]]


@dataclass(frozen=True)
class Entry:
    """A figure kind's drawer; `reads` "surfaces" (drawn for every directory) or "analysis" (drawn
    for each analysis whose spec names the kind, with its JSONs)."""

    draw: Drawer
    reads: str = "analysis"


FIGURES: dict[str, Entry] = {}


def figure(kind: str, reads: str = "analysis") -> Callable[[Drawer], Drawer]:
    """Register the drawer of figure `kind` (in the order figures are drawn)."""

    def decorate(fn: Drawer) -> Drawer:
        FIGURES[kind] = Entry(fn, reads)
        return fn

    return decorate


def figure_names() -> set[str]:
    """Every figure name an AnalysisSpec may declare."""
    return {k for k, e in FIGURES.items() if e.reads == "analysis"} | {SURFACE_PATH}


# --------------------------------------------------------------------------- names
def grid_name(sf: SurfaceFile) -> str:
    """The grid's name (conf/grid/*.yaml), else plane/line."""
    g = sf.surface.meta.get("grid") or {}
    return str(g.get("name") or ("plane" if sf.surface.two_d else "line"))


def surface_name(sf: SurfaceFile) -> str:
    """``<task>_<init>[_seed<N>]_<recipe>_<grid>``: one surface, said once."""
    seed = "" if sf.seed is None else f"_seed{sf.seed}"
    return f"{sf.task}_{sf.init}{seed}_{sf.recipe}_{grid_name(sf)}"


def surface_names(surfaces: list[SurfaceFile]) -> dict[str, str]:
    """{path: name} of every surface, unique: `surface_name`, and `_2`, `_3`, … (in path order) for
    surfaces that would still share one (no seed recorded, two grids of one name)."""
    out, seen = {}, defaultdict(int)
    for sf in sorted(surfaces, key=lambda s: str(s.path)):
        base = surface_name(sf)
        seen[base] += 1
        out[str(sf.path)] = base if seen[base] == 1 else f"{base}_{seen[base]}"
    return out


# --------------------------------------------------------------------------- the trajectory on a surface
def trajectory_for(results, sf: SurfaceFile) -> dict | None:
    """The path drawn on this surface: the JSON of an analysis whose figures include the surface
    path (the trajectory) made on this surface (its inputs name it), else one of the same run."""
    candidates = [
        d
        for spec in registry.specs()
        if SURFACE_PATH in spec.figures
        for d in results.analyses.get(spec.name, [])
    ]
    for data in candidates:
        inputs = data.get("inputs") or {}
        named = [inputs.get("surface")] + list(inputs.get("surfaces") or [])
        for entry in named:
            path = entry.get("path") if isinstance(entry, dict) else entry
            if path and Path(str(path)).name == sf.path.name:
                return data
    same = [d for d in candidates if analysis_identity(d) == (sf.task, sf.init)]
    seeded = [d for d in same if ((d.get("runs") or [{}])[0]).get("seed") == sf.seed]
    return next(iter(seeded or same), None)


# --------------------------------------------------------------------------- surface figures
def _planes(ctx: Context) -> list[SurfaceFile]:
    return [sf for sf in ctx.results.surfaces if sf.surface.two_d]


@figure("curve1d", reads="surfaces")
def _curve1d(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """1D curves: every arm (and seed) of one (task, recipe, grid) in one figure."""
    lines = defaultdict(list)
    for sf in ctx.results.surfaces:
        if not sf.surface.two_d:
            lines[(sf.task, sf.recipe, grid_name(sf))].append(sf)
    for (task, recipe, grid), group in sorted(lines.items()):
        group.sort(key=lambda s: (s.init != "pretrained", s.init, -1 if s.seed is None else s.seed))
        fig, caption = curves.loss_curves(group)
        yield Drawn("curve1d", task, f"curve1d_{task}_{recipe}_{grid}", fig, caption, [s.path for s in group])


def _traj_sources(traj: dict | None) -> list:
    return [traj["_path"]] if traj and traj.get("_path") else []


@figure("surface2d", reads="surfaces")
def _surface2d(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Per 2D surface: training-loss and dev-error contours with the trajectory."""
    for sf in _planes(ctx):
        traj = trajectory_for(ctx.results, sf)
        fig, caption = surface2d.surface_contours(sf, traj, ctx.projection)
        yield Drawn(
            "surface2d",
            sf.task,
            f"surface2d_{ctx.name(sf)}",
            fig,
            caption,
            [sf.path, *_traj_sources(traj)],
            sf.init,
            sf.seed,
        )


@figure("surface3d", reads="surfaces")
def _surface3d(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Per 2D surface: the training loss (else its first value) in 3D, the path at its measured loss."""
    for sf in _planes(ctx):
        traj = trajectory_for(ctx.results, sf)
        key = "train_loss" if "train_loss" in sf.surface else sf.surface.keys()[0]
        fig, caption = surface3d.surface_3d(sf, key, traj, ctx.projection)
        yield Drawn(
            "surface3d",
            sf.task,
            f"surface3d_{ctx.name(sf)}",
            fig,
            caption,
            [sf.path, *_traj_sources(traj)],
            sf.init,
            sf.seed,
        )


@figure("interactive3d", reads="surfaces")
def _interactive3d(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Per 2D surface: the Plotly page (``interactive/<name>.html``), when asked for."""
    if not ctx.interactive:
        return
    for sf in _planes(ctx):
        traj = trajectory_for(ctx.results, sf)
        name = ctx.name(sf)
        path = confine(ctx.out.resolve() / "interactive" / f"{name}.html", ctx.out, "figure file name")
        html = surface3d.interactive_html(sf, path, trajectory=traj, projection=ctx.projection)
        who = f"{sf.task}, {style.init_label(sf.init)}{surface2d.seed_text(sf)}"
        caption = f"{who}: interactive 3D surface (Plotly)"
        yield Drawn(
            "interactive3d",
            sf.task,
            f"interactive/{name}",
            None,
            caption,
            [sf.path],
            sf.init,
            sf.seed,
            [html],
        )


@figure("paraview", reads="surfaces")
def _paraview(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Per 2D surface: ParaView's structured grid (``paraview/<name>.vts``; needs pyvista), when asked for."""
    if not ctx.paraview:
        return
    for sf in _planes(ctx):
        name = ctx.name(sf)
        try:  # (Li et al.'s h52vtp.py assumes nx = ny)
            vts = write_vts(
                sf.surface,
                confine(ctx.out.resolve() / "paraview" / f"{name}.vts", ctx.out, "figure file name"),
            )
        except ImportError as err:
            raise BadInput(f"paraview=true: {err}") from None
        caption = (
            f"{sf.task}, {style.init_label(sf.init)}{surface2d.seed_text(sf)}: the surface as a ParaView grid"
        )
        yield Drawn(
            "paraview", sf.task, f"paraview/{name}", None, caption, [sf.path], sf.init, sf.seed, [vts]
        )


def _one_per_arm(group: list[SurfaceFile]) -> list[SurfaceFile]:
    """One surface per init (pretrained first): the lowest seed every arm has, else each arm's first."""
    group = sorted(group, key=lambda s: (s.init != "pretrained", s.init, -1 if s.seed is None else s.seed))
    inits = list(dict.fromkeys(s.init for s in group))
    shared = set.intersection(*({s.seed for s in group if s.init == i} for i in inits)) - {None}
    seed = min(shared) if shared else None
    return [next(s for s in group if s.init == i and (seed is None or s.seed == seed)) for i in inits]


@figure("surface2d_compare", reads="surfaces")
def _surface2d_compare(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Pretrained vs scratch per surface kind: one colour scale and one set of levels per value."""
    kinds = defaultdict(list)
    for sf in _planes(ctx):
        kinds[(sf.task, sf.recipe, grid_name(sf))].append(sf)
    for (task, recipe, grid), group in sorted(kinds.items()):
        if len({sf.init for sf in group}) < 2:
            continue
        group = _one_per_arm(group)
        trajs = [trajectory_for(ctx.results, sf) for sf in group]
        fig, caption = surface2d.surface_comparison(group, trajs, ctx.projection)
        seeds = {sf.seed for sf in group}
        seed = f"_seed{seeds.pop()}" if len(seeds) == 1 and None not in seeds else ""
        yield Drawn(
            "surface2d_compare",
            task,
            f"surface2d_compare_{task}{seed}_{recipe}_{grid}",
            fig,
            caption,
            [s.path for s in group] + [t["_path"] for t in trajs if t and t.get("_path")],
        )


# --------------------------------------------------------------------------- the analyses' figures
def _by_task(datas: list[dict]) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for data in sorted(datas, key=lambda d: str(d.get("_path", ""))):
        out[analysis_identity(data)[0]].append(data)
    return dict(sorted(out.items()))


@figure("layers")
def _layers(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Layer-wise panels per task: bars the mean over seeds, a dot per seed, the first seed's 1D curves."""
    for task, group in _by_task(datas).items():
        arms = defaultdict(list)
        for data in group:
            arms[analysis_identity(data)[1]].append(data)
        fig, caption = layers.layer_panels(dict(arms), task)
        yield Drawn("layers", task, f"layers_{task}", fig, caption, [d["_path"] for d in group])


@figure("basins")
def _basins(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """The interpolation curves between seeds per task (analysis=basins), both arms in one figure."""
    for task, group in _by_task(datas).items():
        fig, caption = basins.interpolation_curves(group, task)
        yield Drawn("basins", task, f"basins_{task}", fig, caption, [d["_path"] for d in group])


@figure("dev_per_epoch")
def _dev_per_epoch(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Dev metric per epoch per task: from the analysis JSONs, else the runs' own per-epoch records."""
    series, sources = defaultdict(list), defaultdict(list)
    for data in datas:
        s = longtrain.series_from_analysis(data)
        series[s["task"]].append(s)
        sources[s["task"]].append(data["_path"])
    for run in ctx.results.runs:
        try:
            s = longtrain.series_from_run(run)
        except (FileNotFoundError, ValueError, KeyError) as err:
            ctx.results.skipped.append({"path": str(run), "reason": str(err).splitlines()[0]})
            continue
        if s["values"] and not any(x["init"] == s["init"] for x in series[s["task"]]):
            series[s["task"]].append(s)
            sources[s["task"]].append(str(run))
    for task, group in sorted(series.items()):
        group.sort(key=lambda s: (s["init"] != "pretrained", str(s["init"])))
        fig, caption = longtrain.dev_per_epoch(group)
        yield Drawn("dev_per_epoch", task, f"dev_per_epoch_{task}", fig, caption, sources[task])


@figure("flatness")
def _flatness(datas: list[dict], ctx: Context) -> Iterable[Drawn]:
    """Basin widths, areas and curvature of every task and arm in one figure."""
    if datas:
        fig, caption = curvature.curvature_numbers(datas)
        yield Drawn("flatness", "all", "flatness", fig, caption, [d["_path"] for d in datas])
