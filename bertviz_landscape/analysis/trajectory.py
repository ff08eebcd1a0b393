"""`analysis=trajectory`: the optimisation path θ_t projected onto a surface's plane, and its PCA.

For every snapshot θ_t of a run (bertviz_landscape.contracts.snapshots), with v = θ_t − c (c: the
surface's centre, θ0 for the paper's axes) and δ1, δ2 read from the surface's own direction
file (so the projection uses exactly the surface's axes):

- the paper's projection (Hao et al.): α_t = ⟨v, δ1⟩/‖δ1‖², β_t = sqrt(max(‖v‖²/‖δ1‖² − α_t², 0));
- the least-squares projection onto span(δ1, δ2): (a_t, b_t) solving the 2×2 normal equations,
  and the distance from the plane ‖v − aδ1 − bδ2‖ relative to ‖v‖ (0 for v = 0);
- the snapshot's recorded training loss beside the surface's `surface_key` interpolated
  (scipy RegularGridInterpolator, linear; null outside the grid) at the paper's (α_t, β_t);
- trajectory PCA (Li et al.): the T×T Gram matrix of the snapshot deltas, streamed chunk by chunk
  (landscape.directions.trajectory_gram, the engine's `directions=pca` machinery), centred and
  diagonalised: explained variance λ_k/(T − 1), its ratio, and each snapshot's coordinates
  u_k[t]·sqrt(λ_k) on the principal directions (the SVD scores of the mean-centred snapshots;
  sign fixed so the last snapshot's coordinate is ≥ 0). With `pca_surface.enabled`, the engine
  computes the `directions=pca` surface centred on θ1 and every snapshot is projected on it too
  (written also as Li et al.'s projection file ``<pca surface stem>.projection.h5``);
- per-epoch points (issue item 5): θ after each epoch (checkpoints/epoch_NNN, else the snapshot at
  the step metrics.json records for that epoch), projected the same way, with the surface's
  dev_error at its paper projection and the dev error the run recorded after that epoch.

- the path loss (`path_loss.enabled`; analysis/path_loss.py): the eval-mode training loss on a fixed
  train subset at θ0, every snapshot and θ1 — the loss along the actual path (the honest height of
  the trajectory on a figure) — with the steps to `path_loss.threshold` and the area under the curve.

``numbers`` (per run; null when the path loss is not enabled): ``steps_to_threshold`` (first step
with J ≤ threshold; null if never reached), ``path_loss_auc`` (mean J over normalised steps
s/S ∈ [0, 1], trapezoid), ``final_path_loss`` (J(θ1)), ``initial_path_loss`` (J(θ0)),
``path_loss_threshold`` (the threshold used), ``max_distance_from_plane``, ``final_distance_from_plane``.

Inner products are over the direction file's parameters (the surface's parameter space), in
float64. Memory stays bounded: the projection reads one snapshot at a time (memory-mapped), the
Gram one chunk of rows of every snapshot at a time (`pca.memory_mb`).

The projection file (HDF5, Li et al.'s projection.py key names plus ours): ``proj_xcoord``,
``proj_ycoord`` (the least-squares coordinates on the surface's δ1, δ2), ``paper_alpha``,
``paper_beta``, ``distance_from_plane``, ``steps``, ``epochs``, ``recorded_train_loss``,
``pca_coordinates`` [T, k], ``pca_explained_variance_ratio``; attributes ``surface``,
``direction_file``, ``run``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from bertviz_landscape.analysis.common import (
    AnalysisError,
    RunInfo,
    analysis_result,
    check_same_group,
    check_surface_matches_run,
    config_list,
    load_surface_checked,
    open_snapshots,
    read_run,
    require_2d,
    run_dir,
    surface_input,
)
from bertviz_landscape.analysis.measures.path_loss import path_loss_of_run
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.analysis.spec import AnalysisSpec, ClaimSpec, Measure, Options, Row, finite
from bertviz_landscape.contracts.atomic import atomic_path
from bertviz_landscape.contracts.checkpoints import read_tensors
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.parameters import select_parameters
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.sections import Settings, free, section
from bertviz_landscape.contracts.sketches import (
    Sketches,
    has_sketches,
    sketched_plane,
    sketched_trajectory_pca,
)
from bertviz_landscape.engine import directions as dirs
from bertviz_landscape.engine.direction_file import beside, check_matches_surface, read_directions
from bertviz_landscape.engine.directions import dot, principal_components, trajectory_gram
from bertviz_landscape.engine.sweep import landscape
from bertviz_landscape.training.data.eval_sets import eval_data

log = logging.getLogger("bertviz_landscape.analysis")


# --- the plane ------------------------------------------------------------------------------
@dataclass
class Plane:
    """The surface's axes: δ1, δ2 over the moved parameters, and the centre's offset from θ0."""

    x: OrderedDict[str, torch.Tensor]
    y: OrderedDict[str, torch.Tensor] | None
    offset: OrderedDict[str, torch.Tensor] | None  # centre − θ0 (None: centred on θ0)
    center: str
    direction_file: Path

    @property
    def names(self) -> list[str]:
        return list(self.x)

    def gram(self) -> np.ndarray:
        if self.y is None:
            return np.array([[dot(self.x, self.x)]])
        d12 = dot(self.x, self.y)
        return np.array([[dot(self.x, self.x), d12], [d12, dot(self.y, self.y)]])


def read_weights(
    checkpoint: str | os.PathLike, names: Sequence[str], shapes: dict[str, torch.Size] | None = None
) -> dict[str, torch.Tensor]:
    """Only the parameters `names` of a save_pretrained checkpoint (float32), memory-mapped; each
    checked against its shape in `shapes` (the plane's, θ0's) when given."""
    from safetensors import safe_open

    files = sorted(Path(checkpoint).glob("*.safetensors"))
    if not files:
        raise AnalysisError(f"checkpoint {checkpoint} has no safetensors weights")
    out: dict[str, torch.Tensor] = {}
    wanted = set(names)
    expected = {n: (tuple(shapes[n]), None) for n in names} if shapes is not None else None
    for f in files:
        with safe_open(str(f), framework="pt") as handle:
            here = [k for k in handle.keys() if k in wanted]
        out |= {k: t.float() for k, t in read_tensors(f, here, expected, error=AnalysisError).items()}
    missing = [n for n in names if n not in out]
    if missing:
        raise AnalysisError(f"checkpoint {checkpoint} lacks parameters {missing[:3]}")
    return out


def surface_direction_file(surface, surface_path) -> Path:
    """The direction file the surface was computed with: its meta's `directions.file`, else
    `<surface stem>.directions.h5` beside it."""

    recorded = (surface.meta.get("directions") or {}).get("file")
    for candidate in ([Path(recorded)] if recorded else []) + [beside(surface_path)]:
        if candidate.is_file():
            return candidate
    raise AnalysisError(
        f"surface {surface_path}: its direction file is missing (looked for {recorded or ''} and "
        f"{beside(surface_path)}); the projection needs the surface's own δ1, δ2"
    )


def plane_of_surface(surface, surface_path, run: RunDir) -> Plane:
    """δ1, δ2 of `surface` from its direction file, and the offset of its centre from θ0."""

    path = surface_direction_file(surface, surface_path)
    try:
        directions, attrs = read_directions(path)
        check_matches_surface(directions, attrs, path, surface, surface_path)
    except BadInput as err:
        raise AnalysisError(str(err)) from None
    names = directions.names
    offset = None
    if directions.center != "theta0":
        source = {"theta1": run.theta1}.get(directions.center)
        if source is None:
            source = Path(
                ((surface.meta.get("checkpoints") or {}).get(directions.center) or {}).get("path", "")
            )
        shapes = {n: t.shape for n, t in directions.x.items()}
        c, t0 = read_weights(source, names, shapes), read_weights(run.theta0, names, shapes)
        offset = OrderedDict((n, c[n] - t0[n]) for n in names)
    plane = Plane(directions.x, directions.y, offset, directions.center, path)
    if plane.y is not None:
        g = plane.gram()
        cos = g[0, 1] / math.sqrt(g[0, 0] * g[1, 1]) if g[0, 0] > 0 and g[1, 1] > 0 else float("nan")
        if not math.isfinite(cos) or abs(cos) > 1 - 1e-9:
            raise AnalysisError(
                f"surface {surface_path}: its axes are parallel or zero (cos(δ1, δ2) = {cos:.9g}; "
                "run2 = run?): no plane to project the trajectory onto"
            )
    return plane


# --- projections ----------------------------------------------------------------------------
def project_point(vx: float, vy: float | None, vv: float, gram: np.ndarray) -> dict:
    """The paper's (α, β), the least-squares (a, b) and the relative distance from the plane, from
    ⟨v, δ1⟩, ⟨v, δ2⟩, ‖v‖² and the axes' Gram matrix."""
    d11 = gram[0, 0]
    alpha = vx / d11
    beta = math.sqrt(max(vv / d11 - alpha * alpha, 0.0))
    if vy is None:
        coef = np.array([alpha])
        rhs = np.array([vx])
    else:
        rhs = np.array([vx, vy])
        coef = np.linalg.solve(gram, rhs)
    resid = max(vv - float(coef @ rhs), 0.0)
    distance = math.sqrt(resid) / math.sqrt(vv) if vv > 0 else 0.0
    return {
        "alpha": alpha,
        "beta": beta,
        "lstsq": [float(c) for c in coef] + ([None] if vy is None else []),
        "distance_from_plane": distance,
        "norm_v": math.sqrt(vv),
    }


def inner_products(delta: dict, plane: Plane, chunk: int = 1 << 20) -> tuple[float, float | None, float]:
    """(⟨v, δ1⟩, ⟨v, δ2⟩, ‖v‖²) in float64 for v = δ − offset over the plane's parameters.

    Converted to float64 `chunk` elements at a time into three reused buffers: no per-snapshot
    allocation of double copies of the whole model (which costs page faults, not only memory)."""
    vx, vy, vv = 0.0, (0.0 if plane.y is not None else None), 0.0
    size = min(chunk, max(t.numel() for t in plane.x.values()))
    buf_v, buf_x = torch.empty(size, dtype=torch.float64), torch.empty(size, dtype=torch.float64)
    buf_y = torch.empty(size, dtype=torch.float64) if plane.y is not None else None
    for n in plane.names:
        d, x = delta[n].reshape(-1), plane.x[n].reshape(-1)
        off = plane.offset[n].reshape(-1) if plane.offset is not None else None
        y = plane.y[n].reshape(-1) if plane.y is not None else None
        for start in range(0, d.numel(), size):
            stop = min(start + size, d.numel())
            v = buf_v[: stop - start].copy_(d[start:stop])
            if off is not None:
                v.sub_(off[start:stop])
            vx += float(torch.dot(v, buf_x[: stop - start].copy_(x[start:stop])))
            if y is not None:
                vy += float(torch.dot(v, buf_y[: stop - start].copy_(y[start:stop])))
            vv += float(torch.dot(v, v))
    return vx, vy, vv


def project_trajectory(snapshots, plane: Plane) -> list[dict]:
    """`project_point` of every snapshot, one snapshot in memory at a time."""
    missing = [n for n in plane.names if n not in set(snapshots.parameter_names)]
    if missing:
        raise AnalysisError(f"snapshots in {snapshots.directory} lack the surface's parameters {missing[:3]}")
    snapshots.check_theta0()  # meta.json's shapes are θ0's; each file is checked against them on reading
    for n in plane.names:
        if tuple(plane.x[n].shape) != snapshots.expected[n][0]:
            raise AnalysisError(
                f"direction file {plane.direction_file}: tensor {n!r} has shape {list(plane.x[n].shape)}, "
                f"the run's θ0 {list(snapshots.expected[n][0])}"
            )
    gram = plane.gram()
    out = []
    for record in snapshots.records:
        out.append(project_point(*inner_products(snapshots.delta(record.step, plane.names), plane), gram))
    return out


SOURCES = ("auto", "full", "sketch")


def use_sketches(run: RunDir, snapshots, source: str) -> bool:
    """`analysis.source`: full (the snapshots), sketch (the every-step CountSketch,
    bertviz_landscape.contracts.sketches), auto (the sketch when it records more steps than the snapshots)."""

    if source not in SOURCES:
        raise AnalysisError(f"analysis.source must be one of {SOURCES}, got {source!r}")
    if source == "full" or (source == "auto" and not has_sketches(run.root)):
        return False
    if source == "sketch" and not has_sketches(run.root):
        raise AnalysisError(
            f"analysis.source=sketch but {run.sketches} holds no sketches "
            "(train with callbacks.snapshots.sketch.enabled=true)"
        )
    return source == "sketch" or len(Sketches(run.root)) > len(snapshots)


def project_sketched_trajectory(run: RunDir, plane: Plane) -> tuple[list[dict], list]:
    """`project_point` of every sketched step (anchored on the full snapshots), and its records."""

    est = sketched_plane(run.root, plane.x, plane.y, plane.offset)
    gram = plane.gram()
    points = []
    for i in range(len(est["steps"])):
        p = project_point(
            float(est["vx"][i]), None if est["vy"] is None else float(est["vy"][i]), float(est["vv"][i]), gram
        )
        p["alpha_stderr"] = float(est["vx_stderr"][i] / gram[0, 0])
        points.append(p)
    return points, Sketches(run.root).records


def interpolator(surface, key: str):
    """(α, β) → the surface's `key` by linear interpolation on the grid; NaN outside it."""
    from scipy.interpolate import RegularGridInterpolator

    z = np.asarray(surface[key], dtype=np.float64)
    if surface.two_d:
        if len(surface.x) < 2 or len(surface.y) < 2:
            return lambda a, b: math.nan
        f = RegularGridInterpolator((surface.y, surface.x), z, bounds_error=False, fill_value=math.nan)
        return lambda a, b: float(f([[b, a]])[0])
    if len(surface.x) < 2:
        return lambda a, b: math.nan
    f = RegularGridInterpolator((surface.x,), z, bounds_error=False, fill_value=math.nan)
    return lambda a, b: float(f([[a]])[0])


# --- trajectory PCA -------------------------------------------------------------------------
def trajectory_pca(
    snapshots,
    names: Sequence[str],
    components: int = 2,
    memory_bytes: int = 512 << 20,
    chunk_elements: int | None = None,
) -> dict:
    """Li et al.'s trajectory PCA of the snapshot deltas through their streamed T×T Gram matrix.

    Returns {"explained_variance" (λ_k/(T − 1)), "explained_variance_ratio", "coordinates"
    [[c_1, …, c_k] per snapshot], "singular_values", "num_snapshots", "seconds"}.
    """

    T = len(snapshots)
    if T < 2:
        raise AnalysisError(f"trajectory PCA needs at least 2 snapshots; {snapshots.directory} has {T}")
    started = time.perf_counter()
    evals, evecs = principal_components(trajectory_gram(snapshots, names, memory_bytes, chunk_elements))
    k = max(1, min(int(components), T - 1))
    total = float(evals.sum())
    coords = evecs[:, :k] * evals[:k].sqrt()
    signs = torch.where(coords[-1] < 0, -1.0, 1.0).double()
    coords = coords * signs
    return {
        "explained_variance": (evals[:k] / (T - 1)).tolist(),
        "explained_variance_ratio": (evals[:k] / total).tolist() if total > 0 else [math.nan] * k,
        "singular_values": evals[:k].sqrt().tolist(),
        "coordinates": coords.tolist(),
        "num_snapshots": T,
        "seconds": time.perf_counter() - started,
    }


# --- per-epoch points -----------------------------------------------------------------------
def epoch_states(run: RunDir, snapshots, names: Sequence[str]):
    """(epoch, source, {name: θ_e − θ0}, the epoch's dev record) for every epoch: its kept checkpoint,
    else the snapshot at the step metrics.json records for that epoch (`snapshots` may be None;
    epochs with neither are skipped)."""
    checkpoints = run.epoch_checkpoints()
    per_epoch = {}
    if run.metrics_json.is_file():
        per_epoch = {
            int(r["epoch"]): r for r in run.read_metrics().get("dev_per_epoch") or [] if "epoch" in r
        }
    epochs = sorted(set(checkpoints) | set(per_epoch))
    theta0 = read_weights(run.theta0, names) if checkpoints else None
    steps = set(snapshots.steps) if snapshots is not None else set()
    for e in epochs:
        if e in checkpoints:
            w = read_weights(checkpoints[e], names)
            yield e, str(checkpoints[e]), {n: w[n] - theta0[n] for n in names}, per_epoch.get(e)
        elif e in per_epoch and per_epoch[e].get("step") in steps:
            step = int(per_epoch[e]["step"])
            yield e, f"snapshot step {step}", snapshots.delta(step, list(names)), per_epoch.get(e)


def _recorded_dev_error(row: dict | None, primary: str | None) -> float | None:
    if not row or primary is None:
        return None
    value = row.get(f"val/{primary}", row.get(primary))
    return None if value is None else 1.0 - float(value)


def project_epochs(run: RunDir, snapshots, plane: Plane, surface, primary: str | None) -> list[dict]:
    """Every epoch's θ (`epoch_states`) projected on the plane: the paper's (α, β), least squares,
    the distance from the plane, the surface's dev_error there and the dev error the run recorded."""
    dev_at = interpolator(surface, "dev_error") if "dev_error" in surface else None
    gram, points = plane.gram(), []
    for epoch, source, delta, row in epoch_states(run, snapshots, plane.names):
        p = project_point(*inner_products(delta, plane), gram)
        points.append(
            {
                "epoch": epoch,
                "source": source,
                "alpha": p["alpha"],
                "beta": p["beta"],
                "lstsq": p["lstsq"],
                "distance_from_plane": p["distance_from_plane"],
                "dev_error": dev_at(p["alpha"], p["beta"]) if dev_at else None,
                "recorded_dev_error": _recorded_dev_error(row, primary),
            }
        )
    return points


# --- the analysis ---------------------------------------------------------------------------
@section
class PcaOptions(Settings):
    """`analysis.pca` (conf/analysis/trajectory.yaml)."""

    enabled: bool = True
    components: int = 2
    params: Any = free("all")
    bias_and_norm: str = "include"
    memory_mb: float = 512


@section
class PcaSurfaceOptions(Settings):
    """`analysis.pca_surface` (conf/analysis/trajectory.yaml)."""

    enabled: bool = False
    grid: dict = field(
        default_factory=lambda: {
            "x": {"min": -1.0, "max": 1.0, "num": 11},
            "y": {"min": -1.0, "max": 1.0, "num": 11},
        }
    )
    splits: tuple[str, ...] = ("train",)
    output: str | None = None


@section
class PathLossOptions(Settings):
    """`analysis.path_loss` (conf/analysis/trajectory.yaml)."""

    enabled: bool = False
    examples: int | None = 256
    batch_size: int = 32
    threshold: float | None = 0.3
    every: int = 1


@section
class TrajectoryOptions(Settings):
    """conf/analysis/trajectory.yaml."""

    name: str = "trajectory"
    projection_file: str | None = None
    source: str = "auto"
    surface_key: str = "train_loss"
    pca: PcaOptions = PcaOptions()
    pca_surface: PcaSurfaceOptions = PcaSurfaceOptions()
    epoch_points: bool = True
    path_loss: PathLossOptions = PathLossOptions()


@dataclass(frozen=True)
class PcaRequest:
    """`analysis.pca`: the trajectory PCA (Li et al.) of the snapshot deltas."""

    enabled: bool
    components: int
    params: tuple[str, ...]
    bias_and_norm: str
    memory_bytes: int  # analysis.pca.memory_mb, in bytes


@dataclass(frozen=True)
class PcaSurfaceRequest:
    """`analysis.pca_surface`: the directions=pca surface centred on θ1, through the engine."""

    enabled: bool
    grid: dict | None
    splits: tuple[str, ...]
    output: Path | None
    data: dict | None  # the analyze config's data section
    device: str
    progress: bool


@dataclass(frozen=True)
class PathLossRequest:
    """`analysis.path_loss` (analysis/path_loss.py): J along the actual path on fixed train examples."""

    enabled: bool
    examples: int | None
    batch_size: int
    threshold: float | None
    every: int
    data: Any  # the analyze config's data section
    device: str


@dataclass(frozen=True)
class TrajectoryRequest:
    """analysis=trajectory as conf/analyze.yaml and conf/analysis/trajectory.yaml say it (the
    defaults live there only): built once by `from_config`, or by `trajectory_request`."""

    runs: tuple[str, ...]
    surfaces: tuple[str, ...]
    output: Path
    projection_file: Path | None
    surface_key: str
    source: str
    epoch_points: bool
    pca: PcaRequest
    pca_surface: PcaSurfaceRequest
    path_loss: PathLossRequest

    @classmethod
    def from_config(cls, cfg) -> TrajectoryRequest:
        """From an `AnalyzeRequest` for analysis=trajectory."""
        a = cfg.analysis
        data = cfg.data.to_dict() if cfg.get("data") else None
        device = str(cfg.device)
        params = a.pca.params
        ps, pl = a.pca_surface, a.path_loss
        return cls(
            runs=tuple(config_list(cfg, "run", "runs")),
            surfaces=tuple(config_list(cfg, "surface", "surfaces")),
            output=Path(str(cfg.output)),
            projection_file=Path(str(a.projection_file)) if a.projection_file else None,
            surface_key=str(a.surface_key),
            source=str(a.source),
            epoch_points=bool(a.epoch_points),
            pca=PcaRequest(
                enabled=bool(a.pca.enabled),
                components=int(a.pca.components),
                params=(str(params),) if isinstance(params, str) else tuple(str(p) for p in params),
                bias_and_norm=str(a.pca.bias_and_norm),
                memory_bytes=int(float(a.pca.memory_mb) * (1 << 20)),
            ),
            pca_surface=PcaSurfaceRequest(
                enabled=bool(ps.enabled),
                grid=dict(ps.grid) if ps.grid else None,
                splits=tuple(ps.splits),
                output=Path(str(ps.output)) if ps.output else None,
                data=data,
                device=device,
                progress=bool(cfg.progress),
            ),
            path_loss=PathLossRequest(
                enabled=bool(pl.enabled),
                examples=None if pl.examples is None else int(pl.examples),
                batch_size=int(pl.batch_size),
                threshold=None if pl.threshold is None else float(pl.threshold),
                every=int(pl.every),
                data=data,
                device=device,
            ),
        )


def trajectory_request(
    runs: Sequence[str | os.PathLike], surfaces: Sequence[str | os.PathLike], output, **values: Any
) -> TrajectoryRequest:
    """The request bertviz-analyze would build for `runs[i]` on `surfaces[i]`, with `values` on
    top of the YAML: the analysis's keys (``surface_key=``, ``source=``, ``pca={"enabled": False}``,
    ``path_loss={...}``, …) and the analyze config's ``data=``, ``device=``, ``progress=``."""
    top = {k: values.pop(k) for k in ("data", "device", "progress") if k in values}
    req = AnalyzeRequest(
        **top,
        runs=[str(r) for r in runs],
        surfaces=[str(s) for s in surfaces],
        output=str(output),
        analysis={"name": "trajectory", **values},
    )
    return TrajectoryRequest.from_config(req)


def trajectory_of_run(
    run_path: str | os.PathLike,
    surface_path: str | os.PathLike,
    projection_file: str | os.PathLike,
    req: TrajectoryRequest,
    pca_surface: PcaSurfaceRequest,
) -> tuple[RunInfo, dict, dict]:
    """One run on its surface: (run info, per_run entry, inputs entry). Writes the projection file.
    `req.source`: the trajectory from the full snapshots, the every-step sketch, or auto
    (`use_sketches`); `pca_surface`: the request's, with this run's output."""
    surface_key, source, pca_params, pca_bias_and_norm = (
        req.surface_key,
        req.source,
        req.pca.params,
        req.pca.bias_and_norm,
    )

    info = read_run(run_path)
    run = run_dir(run_path)
    surface = load_surface_checked(surface_path)
    require_2d(surface, surface_path, "trajectory")
    check_surface_matches_run(surface, surface_path, run)
    if surface_key not in surface:
        raise AnalysisError(
            f"surface {surface_path} has no {surface_key!r} array (analysis.surface_key); it has "
            f"{', '.join(sorted(surface.keys()))}"
        )
    snaps = open_snapshots(run, need="the trajectory")
    plane = plane_of_surface(surface, surface_path, run)
    sketched = use_sketches(run, snaps, source)
    if sketched:
        points, records = project_sketched_trajectory(run, plane)
    else:
        points, records = project_trajectory(snaps, plane), snaps.records
    at = interpolator(surface, surface_key)

    try:
        pca_names = select_parameters(snaps.parameter_names, list(pca_params))
        # the first full snapshot (sketched records are every step; full ones every n steps)
        first = snaps.delta(snaps.records[0].step, pca_names)
        pca_names = dirs._moved(pca_names, first, pca_bias_and_norm)
    except BadInput as err:
        raise AnalysisError(f"analysis.pca: {err}") from None
    if not req.pca.enabled:  # projections only
        pca = {
            "explained_variance": None,
            "explained_variance_ratio": None,
            "coordinates": None,
            "enabled": False,
            "source": None,
        }
    elif sketched and set(pca_names) == set(snaps.parameter_names):  # the sketch covers all parameters only
        pca = sketched_trajectory_pca(run.root, req.pca.components)
    else:
        pca = trajectory_pca(snaps, pca_names, req.pca.components, req.pca.memory_bytes)
        pca["source"] = "full"
    pca["params"] = list(pca_params)
    pca["bias_and_norm"] = pca_bias_and_norm
    pca["surface"] = None
    if pca_surface.enabled:
        pca_path = compute_pca_surface(run, pca_surface, pca_params, pca_bias_and_norm)
        pca["surface"] = str(pca_path)
        pca_surf = load_surface_checked(pca_path, "pca surface")
        pca_plane = plane_of_surface(pca_surf, pca_path, run)
        on_pca = project_trajectory(snaps, pca_plane)
        pca["surface_coordinates"] = [p["lstsq"] for p in on_pca]
        pca["surface_distance_from_plane"] = [p["distance_from_plane"] for p in on_pca]
        key = surface_key if surface_key in pca_surf else pca_surf.splits[0] + "_loss"
        pca_at = interpolator(pca_surf, key)
        pca["surface_value_key"] = key
        pca["surface_value_at_coordinates"] = [pca_at(*p["lstsq"]) for p in on_pca]
        pca["projection_file"] = str(
            write_li_projection(
                pca_path.with_name(f"{pca_path.stem}.projection.h5"), on_pca, pca_path, pca_plane
            )
        )

    epochs_out = project_epochs(run, snaps, plane, surface, info.primary_metric) if req.epoch_points else []

    per_run = {
        "steps": [r.step for r in records],
        "epochs": [r.epoch for r in records],
        "recorded_train_loss": [r.loss for r in records],
        "alpha": [p["alpha"] for p in points],
        "beta": [p["beta"] for p in points],
        "lstsq": [p["lstsq"] for p in points],
        "distance_from_plane": [p["distance_from_plane"] for p in points],
        "norm_v": [p["norm_v"] for p in points],
        "source": "sketch" if sketched else "full",
        "alpha_stderr": [p.get("alpha_stderr", 0.0) for p in points],
        "surface_key": surface_key,
        "surface_train_loss_at_projection": [at(p["alpha"], p["beta"]) for p in points],
        "surface_train_loss_at_lstsq": [at(*p["lstsq"]) for p in points],
        "pca": pca,
        "epoch_points": epochs_out,
        "plane": {
            "direction_file": str(plane.direction_file),
            "center": plane.center,
            "norm_delta1": math.sqrt(plane.gram()[0, 0]),
            "norm_delta2": math.sqrt(plane.gram()[1, 1]),
            "cosine_delta1_delta2": float(
                plane.gram()[0, 1] / math.sqrt(plane.gram()[0, 0] * plane.gram()[1, 1])
            ),
        },
        "projection_file": str(Path(projection_file).resolve()),
    }
    write_projection_file(projection_file, per_run, surface_path, plane, run)
    return info, per_run, surface_input(surface, surface_path)


def write_projection_file(
    path: str | os.PathLike, per_run: dict, surface_path, plane: Plane, run: RunDir
) -> Path:
    """The projection HDF5: Li et al.'s proj_xcoord/proj_ycoord plus our arrays (module docstring)."""

    def arr(values):
        return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "bertviz-projection/1"
            f.attrs["surface"] = str(Path(surface_path).resolve())
            f.attrs["direction_file"] = str(plane.direction_file)
            f.attrs["run"] = str(run.root)
            f["proj_xcoord"] = arr(p[0] for p in per_run["lstsq"])
            f["proj_ycoord"] = arr(p[1] for p in per_run["lstsq"])
            f["paper_alpha"] = arr(per_run["alpha"])
            f["paper_beta"] = arr(per_run["beta"])
            f["distance_from_plane"] = arr(per_run["distance_from_plane"])
            f["steps"] = np.asarray(per_run["steps"], dtype=np.int64)
            f["epochs"] = np.asarray(per_run["epochs"], dtype=np.int64)
            f["recorded_train_loss"] = arr(per_run["recorded_train_loss"])
            if per_run["pca"]["coordinates"] is not None:
                f["pca_coordinates"] = np.asarray(per_run["pca"]["coordinates"], dtype=np.float64)
                f["pca_explained_variance_ratio"] = arr(per_run["pca"]["explained_variance_ratio"])
    return Path(path)


def write_li_projection(path: str | os.PathLike, points: list[dict], surface_path, plane: Plane) -> Path:
    """The trajectory on the PCA surface as Li et al.'s projection file: ``proj_xcoord``,
    ``proj_ycoord`` (least-squares coordinates on the surface's PCA directions, centred on its
    centre) and ``distance_from_plane`` — with the PCA surface and its direction file (which holds
    ``explained_variance_ratio_``) what their ``plot_2D.py --surf_file --dir_file --proj_file``
    (plot_contour_trajectory) reads."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "bertviz-projection/1"
            f.attrs["surface"] = str(Path(surface_path).resolve())
            f.attrs["direction_file"] = str(plane.direction_file)
            f["proj_xcoord"] = np.asarray([float(p["lstsq"][0]) for p in points], dtype=np.float64)
            f["proj_ycoord"] = np.asarray([float(p["lstsq"][1]) for p in points], dtype=np.float64)
            f["distance_from_plane"] = np.asarray(
                [p["distance_from_plane"] for p in points], dtype=np.float64
            )
    return Path(path)


def compute_pca_surface(
    run: RunDir, req: PcaSurfaceRequest, params: Sequence[str], bias_and_norm: str
) -> Path:
    """The `directions=pca` surface centred on θ1 (through the engine: conf/landscape.yaml's defaults)."""

    values = {
        "run": str(run.root),
        "output": str(req.output),
        "grid": dict(req.grid or {}),
        "splits": list(req.splits),
        "directions": {
            "name": "pca",
            "params": list(params),
            "bias_and_norm": bias_and_norm,
            "center": "theta1",
        },
        "device": req.device,
        "progress": req.progress,
    }
    if req.data:
        values["data"] = eval_data(req.data)
    result = landscape(**values)
    if result.surface is None:
        raise AnalysisError(f"the pca surface {req.output} was not completed")
    return result.surface


def trajectory(
    runs: Sequence[str | os.PathLike], surfaces: Sequence[str | os.PathLike], output, **values: Any
) -> dict:
    """The trajectory analysis JSON for `runs[i]` on `surfaces[i]` (several seeds of one (task,
    init)); `values` on top of the YAML as `trajectory_request` takes them."""
    return compute_trajectory(trajectory_request(runs, surfaces, output, **values))


def compute_trajectory(req: TrajectoryRequest) -> dict:
    """The trajectory analysis JSON of the request (module docstring)."""
    runs, surfaces, projection_file = list(req.runs), list(req.surfaces), req.projection_file
    if not runs:
        raise AnalysisError("analysis=trajectory needs run=<run dir> (or runs=[...])")
    if len(surfaces) != len(runs):
        raise AnalysisError(
            f"analysis=trajectory needs one surface per run (each run's own δ1): {len(runs)} runs, "
            f"{len(surfaces)} surfaces"
        )
    output = req.output
    infos, per_run, inputs = [], [], []
    for i, (run, surface) in enumerate(zip(runs, surfaces)):
        suffix = f".{i}" if len(runs) > 1 else ""
        proj = (
            Path(projection_file)
            if projection_file and len(runs) == 1
            else output.with_name(f"{output.stem}{suffix}.projection.h5")
        )
        pca_surface = req.pca_surface
        if pca_surface.enabled:
            pca_out = (
                pca_surface.output
                if pca_surface.output and len(runs) == 1
                else output.with_name(f"{output.stem}{suffix}.pca_surface.h5")
            )
            pca_surface = replace(pca_surface, output=Path(pca_out))
        info, entry, surf_in = trajectory_of_run(run, surface, proj, req, pca_surface)
        pl = req.path_loss
        entry["path_loss"] = None
        if pl.enabled:
            entry["path_loss"] = path_loss_of_run(
                pl.data, run_dir(run), pl.examples, pl.batch_size, pl.threshold, pl.every, pl.device
            )
        infos.append(info)
        per_run.append(entry)
        inputs.append(surf_in)
    check_same_group(infos)
    numbers = []
    for entry in per_run:
        curve = entry["path_loss"] or {}
        numbers.append(
            {
                "steps_to_threshold": curve.get("steps_to_threshold"),
                "path_loss_auc": curve.get("path_loss_auc"),
                "final_path_loss": curve.get("final_path_loss"),
                "initial_path_loss": curve.get("initial_path_loss"),
                "path_loss_threshold": curve.get("threshold"),
                "max_distance_from_plane": max(entry["distance_from_plane"]),
                "final_distance_from_plane": entry["distance_from_plane"][-1],
            }
        )
    scalars = []
    for entry in per_run:
        ratios = entry["pca"]["explained_variance_ratio"] or [math.nan]
        scalars.append(
            {
                "max_distance_from_plane": max(entry["distance_from_plane"]),
                "final_distance_from_plane": entry["distance_from_plane"][-1],
                "final_alpha": entry["alpha"][-1],
                "final_beta": entry["beta"][-1],
                "final_lstsq_a": entry["lstsq"][-1][0],
                "final_lstsq_b": entry["lstsq"][-1][1],
                "pca_top2_explained": float(sum(ratios[:2])),
                "num_snapshots": len(entry["steps"]),
            }
        )
    return analysis_result(
        "trajectory", {"runs": [i.run for i in infos], "surfaces": inputs}, infos, per_run, scalars, numbers
    )


def trajectory_from_config(cfg) -> dict:
    return compute_trajectory(TrajectoryRequest.from_config(cfg))


def legacy_numbers(data: dict, per_run: dict, opts: Options) -> dict:
    """What a JSON without the path loss still tells: ``recorded_final_train_loss``, the mean of the
    last quarter (at least 2) of the recorded minibatch training losses."""
    losses = np.asarray([finite(x) for x in per_run.get("recorded_train_loss") or []], dtype=float)
    losses = losses[np.isfinite(losses)]
    if losses.size < 2:
        return {}
    return {"recorded_final_train_loss": float(losses[-max(2, losses.size // 4) :].mean())}


SPEC = AnalysisSpec(
    "trajectory",
    trajectory_from_config,
    reads=("run", "plane"),
    rows=(
        Row("path_loss_auc", "path loss: area under the curve"),
        Row("steps_to_threshold", "path loss: steps to the threshold"),
        Row("final_path_loss", "path loss: final"),
        Row("recorded_final_train_loss", "recorded training loss, last quarter"),
    ),
    figures=("surface_path",),  # the path on every 2D surface figure of the run
    claims=(
        ClaimSpec(
            "easier_optimisation",
            "Pre-training eases optimisation",
            2,
            (
                Measure(
                    "path_loss_auc",
                    -1,
                    "area under the eval-mode training-loss curve along the path "
                    "(mean over normalised steps)",
                ),
                Measure(
                    "recorded_final_train_loss",
                    -1,
                    "training loss at the end of training, mean of the last quarter of the recorded "
                    "minibatch losses (fallback: dropout on, minibatch noise)",
                    fallback=True,
                ),
            ),
            "training is easier from the pretrained start",
            "training is easier from scratch",
            (("final_path_loss", "final eval-mode training loss"),),
            checks=("threshold_reached",),
            keeps_plateau_runs=True,  # failing to leave the plateau is what "harder to optimise" means
        ),
    ),
    legacy=legacy_numbers,
    order=20,
    options=TrajectoryOptions,
)
