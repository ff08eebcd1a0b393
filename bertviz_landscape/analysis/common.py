"""What every analysis shares: reading runs and surfaces, the JSON contract, writing it, W&B.

The analysis JSON (format ``bertviz-analysis/1``; written atomically to ``output=``)::

    {"analysis": "<name>", "format": "bertviz-analysis/1",
     "inputs": {"runs": [path], "surfaces": [{"path", "sha256", "checkpoints": {role: sha256}}], ...},
     "runs": [{"run", "task", "init", "seed", "beat_baseline", "dev_metric", "majority_baseline",
               "primary_metric", "fingerprint"}, ...],  # one per run analysed (same order as per_run)
     "per_run": [{...the analysis's numbers and arrays...}, ...],
     "summary": {"<scalar>": {"mean", "std", "n"}, ...},   # over runs; std with ddof=1 (0 for n = 1)
     "baseline": {"all_beat_baseline": bool|null, "not_beating_baseline": [run, ...]},
     "numbers": {"<name>": float|null, ...} | null,
     ...analysis-specific top-level keys}

``numbers`` (issue 14's contract with the decision code): the flat per-run quantities a claim may
decide on, named and documented in each analysis module's docstring. Each ``per_run[i]["numbers"]``
holds run i's; the top-level ``numbers`` is that dict when the JSON has exactly one run (one JSON per
run, the pipeline's case), else null. A number that was not measured is absent or null.

``beat_baseline``: the run's final dev primary metric is better than the majority-class
predictor's (metrics.json ``majority_baseline``) — for accuracy by more than twice its binomial
standard error on the dev set, 2·sqrt(p(1−p)/n) at the baseline's p (RTE: 0.527 + 0.060 on 277
examples; a scratch run at 0.542 is still on the plateau) — (for regression, whose constant predictor has
no correlation, the dev MSE is below the constant's MSE). A run that did not beat it sits on the
constant-predictor plateau: its "wide basin" is that plateau, and every comparison flags it.
Non-finite numbers are written as JSON ``null``. The summary's ``n`` counts the runs whose value
is finite.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertviz_landscape.analysis.spec import summary_entry
from bertviz_landscape.contracts.atomic import check_writable, write_json_atomic
from bertviz_landscape.contracts.checkpoints import WEIGHT_FILES, content_hash
from bertviz_landscape.contracts.config import run_name
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.fingerprints import digest, file_fingerprint, sha256_file
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.training.data.eval_sets import DataRequest, eval_data

FORMAT = "bertviz-analysis/1"
log = logging.getLogger("bertviz_landscape.analysis")


class AnalysisError(BadInput):
    """Bad analysis input (a run, a surface, a key, a request); no JSON is written."""


# --- runs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    """One run's identity and whether it beat its majority-class baseline (the JSON's "runs")."""

    run: str | None
    task: str | None
    init: str | None
    seed: int | None
    primary_metric: str | None
    dev_metric: float | None
    majority_baseline: float | None
    beat_baseline: bool | None
    fingerprint: str | None = None  # its θ1 weights by content (run_fingerprint): a copied run has the same
    model: str | None = None  # run.json's model: the claims never compare arms of different models

    def entry(self) -> dict:
        return jsonable(asdict(self))


def run_dir(path: str | os.PathLike | None, key: str = "run") -> RunDir:
    """The training run at `path`; an AnalysisError naming `key` when it is not one."""
    return RunDir.open(path, key, AnalysisError)


def run_fingerprint(run: RunDir) -> str | None:
    """The run's θ1 weight files by content (fingerprints.file_fingerprint of each, names included):
    a copied run directory has the same one, another training (another seed) another. None without θ1."""
    files = sorted({f for pattern in WEIGHT_FILES for f in run.theta1.glob(pattern)})
    if not files:
        return None
    return digest({f.name: file_fingerprint(f) for f in files})


def baseline_verdict(
    primary: str, dev: dict, baseline: dict, n_dev: int | None = None
) -> tuple[float | None, float | None, bool | None]:
    """(dev metric, the majority baseline's value of it, whether the run beat it).

    `dev`: metrics.json's "dev" ({"val/<metric>": v}); `baseline`: its "majority_baseline";
    `n_dev`: the dev examples. Higher is better for every GLUE primary metric; accuracy must
    exceed the baseline by 2·sqrt(p(1−p)/n_dev) (its binomial standard error at the baseline's p)
    when n_dev is known, so a run a few examples above the majority does not count as learned.
    For regression (baseline {"mse": m}: a constant has no Pearson correlation) the run beat the
    baseline when its dev MSE (val/loss) < m and, when n_dev is known, its correlation (the
    primary metric) exceeds 2/sqrt(n_dev), twice a zero correlation's standard error — a model that
    learned only the mean is on the plateau however small its MSE gain.
    """
    value = dev.get(f"val/{primary}", dev.get(primary))
    value = None if value is None else float(value)
    if primary in baseline:
        base = float(baseline[primary])
        margin = (
            2.0 * math.sqrt(base * (1.0 - base) / n_dev)
            if primary == "accuracy" and n_dev and 0.0 <= base <= 1.0
            else 0.0
        )
        beat = None if value is None or not math.isfinite(value) else bool(value > base + margin)
        return value, base, beat
    if "mse" in baseline:
        mse = dev.get("val/loss", dev.get("val/mse"))
        base = float(baseline["mse"])
        beat = None if mse is None or not math.isfinite(float(mse)) else bool(float(mse) < base)
        if beat and n_dev and primary in ("pearson", "spearman"):
            beat = value is not None and math.isfinite(value) and value > 2.0 / math.sqrt(n_dev)
        return value, base, beat
    return value, None, None


def read_run(path: str | os.PathLike, key: str = "run") -> RunInfo:
    """A finished run's identity and baseline verdict (run.json + metrics.json)."""
    rd = run_dir(path, key)
    ident = rd.read_identity()
    if not rd.metrics_json.is_file():
        raise AnalysisError(f"{key}={rd.root}: no {rd.metrics_json.name} (the run has not finished)")
    try:
        metrics = rd.read_metrics()
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnalysisError(f"{rd.metrics_json}: not valid JSON ({err})") from None
    primary = metrics.get("primary_metric")
    value, base, beat = baseline_verdict(
        primary, metrics.get("dev") or {}, metrics.get("majority_baseline") or {}, metrics.get("dev_examples")
    )
    seed = ident.get("seed")
    return RunInfo(
        str(rd.root),
        ident.get("task") or metrics.get("task"),
        ident.get("init") or metrics.get("init"),
        None if seed is None else int(seed),
        primary,
        value,
        base,
        beat,
        run_fingerprint(rd),
        ident.get("model"),
    )


def unknown_run(task: str | None = None, primary: str | None = None) -> RunInfo:
    """A surface made from bare checkpoints: no run says whether it beat its baseline."""
    return RunInfo(None, task, None, None, primary, None, None, None)


def check_same_group(runs: Sequence[RunInfo]) -> None:
    """Several runs are summarised together only when they share (task, init)."""
    groups = {(r.task, r.init) for r in runs if r.task is not None or r.init is not None}
    if len(groups) > 1:
        listing = ", ".join(f"{r.run} ({r.task}, {r.init})" for r in runs)
        raise AnalysisError(
            f"runs of different (task, init) cannot be summarised together: {listing}; analyse each group on "
            "its own"
        )


def open_snapshots(run: RunDir, key: str = "run", need: str = "the analysis") -> Snapshots:
    """The run's snapshots (θ_t − θ0), or an AnalysisError naming `key`, the run and what `need`s them."""
    if not (run.snapshots / "meta.json").is_file():
        raise AnalysisError(
            f"{key}={run.root} has no snapshots ({run.snapshots}/meta.json missing): {need} needs the "
            "trajectory (train with callbacks.snapshots.enabled=true)"
        )
    try:
        snaps = Snapshots(run.root)
    except (FileNotFoundError, ValueError) as err:
        raise AnalysisError(f"{key}={run.root}: {err}") from None
    if len(snaps) == 0:
        raise AnalysisError(f"{key}={run.root}: snapshots/index.jsonl lists no snapshot")
    return snaps


# --- surfaces -------------------------------------------------------------------------------
def load_surface_checked(path: str | os.PathLike | None, key: str = "surface"):
    """`load_surface(path)`, with any unreadable file an AnalysisError naming it."""

    if path in (None, "", "???"):
        raise AnalysisError(f"{key} is not given: set {key}=<surface .h5 from bertviz-landscape>")
    try:
        return load_surface(Path(str(path)).expanduser())
    except (FileNotFoundError, KeyError, OSError, ValueError) as err:
        raise AnalysisError(f"{key}={path}: {err.args[0] if err.args else err}") from None


def require_2d(surface, path, analysis: str, what: str = "") -> None:
    if not surface.two_d:
        raise AnalysisError(
            f"analysis={analysis}{what} needs a 2D surface (δ1 and δ2); {path} is 1D (grid=line): "
            "compute it with grid=plane"
        )


def require_key(surface, path, key: str, option: str) -> np.ndarray:
    if key not in surface:
        raise AnalysisError(
            f"surface {path} has no {key!r} array ({option}={key}); it has "
            f"{', '.join(sorted(surface.keys()))}"
        )
    return np.asarray(surface[key], dtype=np.float64)


def surface_hashes(surface) -> dict[str, str]:
    """role → sha256 of the checkpoints the surface was computed from (its meta)."""
    return {
        role: c.get("sha256")
        for role, c in (surface.meta.get("checkpoints") or {}).items()
        if isinstance(c, dict)
    }


def check_surface_matches_run(
    surface, surface_path, run: RunDir, roles: Iterable[str] = ("theta0", "theta1")
) -> None:
    """The surface must have been computed from this run's θ0 and θ1 (content hashes), else an
    AnalysisError naming the surface, the role and the run: projecting one run's trajectory on
    another run's surface would draw a path on a plane it does not lie in."""

    recorded = surface_hashes(surface)
    if not recorded:
        raise AnalysisError(
            f"surface {surface_path} records no checkpoint hashes (meta 'checkpoints'); "
            f"cannot check it belongs to run {run.root}"
        )
    paths = {"theta0": run.theta0, "theta1": run.theta1}
    for role in roles:
        if role not in recorded or not recorded[role]:
            continue
        if not paths[role].is_dir():
            raise AnalysisError(
                f"run {run.root} has no {paths[role].relative_to(run.root)} to check surface {surface_path} "
                "against"
            )
        actual = content_hash(paths[role])
        if actual != recorded[role]:
            raise AnalysisError(
                f"surface {surface_path} was not computed from run {run.root}: its {role} checkpoint hash "
                f"{recorded[role][:12]}… differs from the run's {paths[role].name} ({actual[:12]}…)"
            )


def surface_run(surface) -> str | None:
    """The run a surface was computed from: the run holding its θ1 checkpoint (meta checkpoints'
    paths), None for checkpoints outside a run directory."""
    run = (surface.meta.get("runs") or {}).get("run")
    if run and RunDir.is_run(run):
        return run
    for role in ("theta1", "theta0"):
        path = ((surface.meta.get("checkpoints") or {}).get(role) or {}).get("path")
        rd = RunDir.of_checkpoint(path) if path else None
        if rd is not None and RunDir.is_run(rd.root) and rd.metrics_json.is_file():
            return str(rd.root)
    return None


def surface_input(surface, path) -> dict:
    return {
        "path": str(Path(str(path)).expanduser().resolve()),
        "sha256": sha256_file(Path(str(path)).expanduser()),
        "checkpoints": surface_hashes(surface),
        "dimensions": 2 if surface.two_d else 1,
    }


# --- the JSON -------------------------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN/inf → None, numpy scalars/arrays → Python numbers/lists."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def summarize(scalars: Sequence[dict[str, Any]]) -> dict[str, dict]:
    """{key: {"mean", "std", "n"}} over runs, for every key any run has; std with ddof=1 (the
    spread across seeds; 0 with one run); non-finite or missing values are left out of n."""
    keys: list[str] = []
    for row in scalars:
        keys += [k for k in row if k not in keys]
    out = {}
    for key in keys:
        values = [
            float(r[key])
            for r in scalars
            if r.get(key) is not None and not isinstance(r.get(key), bool) and math.isfinite(float(r[key]))
        ]
        n = len(values)
        mean = float(np.mean(values)) if n else None
        std = float(np.std(values, ddof=1)) if n > 1 else (0.0 if n == 1 else None)
        out[key] = {"mean": mean, "std": std, "n": n}
    return out


def analysis_result(
    name: str,
    inputs: dict,
    runs: Sequence[RunInfo],
    per_run: Sequence[dict],
    scalars: Sequence[dict],
    numbers: Sequence[dict] | None = None,
    **extra: Any,
) -> dict:
    """The analysis JSON: the shared keys, per-run results, the summary of each run's scalars,
    each run's `numbers` (module docstring)."""
    if len(per_run) != len(runs) or len(scalars) != len(runs):
        raise ValueError("one per_run and one scalars entry per run")
    if numbers is not None:
        if len(numbers) != len(runs):
            raise ValueError("one numbers entry per run")
        per_run = [dict(entry, numbers=dict(nums)) for entry, nums in zip(per_run, numbers)]
    flagged = [r.run or f"(bare checkpoints: {r.task})" for r in runs if r.beat_baseline is not True]
    verdicts = [r.beat_baseline for r in runs]
    baseline = {
        "all_beat_baseline": None if any(v is None for v in verdicts) else all(verdicts),
        "not_beating_baseline": flagged,
        "note": (
            "a run that did not beat its majority-class baseline sits on the constant-predictor plateau; its "
            "flatness numbers measure that plateau"
        )
        if flagged
        else None,
    }
    out = {
        "analysis": name,
        "format": FORMAT,
        "inputs": inputs,
        "runs": [r.entry() for r in runs],
        "per_run": list(per_run),
        "summary": summarize(scalars),
        "baseline": baseline,
        "numbers": dict(numbers[0]) if numbers is not None and len(numbers) == 1 else None,
    }
    out.update(extra)
    return jsonable(out)


def input_identity(result: dict) -> dict:
    """What an analysis JSON was computed from: its analysis, runs and surfaces (by path)."""
    inputs = result.get("inputs") or {}
    surfaces = inputs.get("surfaces") or ([inputs["surface"]] if inputs.get("surface") else [])
    return {
        "analysis": result.get("analysis"),
        "runs": sorted(
            str(r) for r in inputs.get("runs") or [r.get("run") for r in result.get("runs") or []]
        ),
        "surfaces": sorted(str(s.get("path") if isinstance(s, dict) else s) for s in surfaces),
    }


def write_result(path: str | os.PathLike, result: dict, overwrite: bool = False) -> Path:
    """Write the analysis JSON atomically (complete or absent). An existing JSON of other inputs
    (two runs of one (task, init, seed) in one output directory) is kept, an AnalysisError naming
    both, unless `overwrite`."""
    path = Path(path)
    if path.is_file() and not overwrite:
        try:
            old = json.loads(path.read_text())
        except (ValueError, OSError, RecursionError):
            old = None  # a torn or foreign file: replaced
        if isinstance(old, dict) and old.get("format") == result.get("format"):
            before, now = input_identity(old), input_identity(jsonable(result))
            if before != now:
                what = next(k for k in ("analysis", "runs", "surfaces") if before[k] != now[k])
                raise AnalysisError(
                    f"{path} already holds the {old.get('analysis')} of other {what} ({before[what]} vs "
                    f"{now[what]}); it is kept: choose another output= or set overwrite=true"
                )
    return write_json_atomic(path, jsonable(result))


def prepare_output(path: str | os.PathLike | None) -> Path:
    """The output path, checked writable before any work is done for it."""
    if path in (None, "", "???"):
        raise AnalysisError("output is not given: set output=<analysis .json>")
    return check_writable(Path(str(path)).expanduser().resolve())


def summary_scalars(result: dict) -> dict[str, float]:
    """The flat numbers a W&B run summary gets: `<analysis>/<key>` = mean, `.../<key>_std`, plus
    the baseline flag and the number of runs."""
    name = result["analysis"]
    out: dict[str, Any] = {f"{name}/num_runs": len(result.get("runs", []))}
    for key in result.get("summary") or {}:
        entry = summary_entry(result, key)
        if entry is not None:
            out[f"{name}/{key}"] = entry.mean
            out[f"{name}/{key}_std"] = entry.std
    flag = (result.get("baseline") or {}).get("all_beat_baseline")
    if flag is not None:
        out[f"{name}/all_beat_baseline"] = bool(flag)
    return out


def log_to_wandb(result: dict, options: dict, output: str | os.PathLike | None = None):
    """Put the analysis's numbers in a W&B run's summary (offline unless WANDB_MODE says
    otherwise); the JSON is attached as a file. Returns the finished run's directory."""
    import wandb

    first = (result.get("runs") or [{}])[0]
    name = options.get(
        "name"
    ) or f"{first.get('task') or 'analysis'}_{first.get('init') or ''}_{result['analysis']}".replace(
        "__", "_"
    )
    directory = options.get("dir")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=options.get("project") or "bertviz_landscape",
        entity=options.get("entity"),
        name=name,
        mode=options.get("mode") or os.environ.get("WANDB_MODE", "offline"),
        dir=directory,
        job_type=f"analysis/{result['analysis']}",
        reinit=True,
        config={"analysis": result["analysis"], "inputs": result.get("inputs"), "runs": result.get("runs")},
    )
    try:
        run.summary.update(summary_scalars(result))
        if output is not None and Path(output).is_file():
            run.save(str(output), base_path=str(Path(output).parent), policy="now")
        run_dir_path = Path(run.dir).parent
    finally:
        run.finish()
    return run_dir_path


def config_list(cfg, one: str, many: str) -> list[str]:
    """`cfg[one]` (when set) followed by the list `cfg[many]`: `run=A` or `runs=[A,B]` (or both)."""
    values = [str(v) for v in (cfg.get(many) or [])]
    if cfg.get(one) not in (None, "", "???"):
        values = [str(cfg.get(one))] + values
    refuse_repeats(values, f"{one}/{many}")
    return values


def refuse_repeats(paths: Sequence[str], key: str) -> None:
    """The same run or surface given twice (by path, a file by content, a run directory by its θ1
    weights: a copy) would count as two seeds (n = 2, std 0): an AnalysisError naming both."""
    seen: dict[str, str] = {}
    for p in paths:
        path = Path(p).expanduser()
        ids = [f"path:{path.resolve()}"]
        if path.is_file():
            ids.append(f"content:{file_fingerprint(path)}")
        elif path.is_dir() and RunDir.is_run(path) and (fp := run_fingerprint(RunDir(path))):
            ids.append(f"run:{fp}")
        for ident in ids:
            if ident in seen:
                how = {
                    "path": "the same file",
                    "content": "identical files",
                    "run": f"copies of one run (the same θ1 weights, fingerprint {ident[4:]})",
                }[ident.split(":")[0]]
                raise AnalysisError(
                    f"{key}: {seen[ident]} and {p} are {how}: one input given twice would count as "
                    "two seeds (n = 2, std 0)"
                )
            seen[ident] = p


# --- the default output name ----------------------------------------------------------------
def input_name(run: Any = None, runs: Any = None, surface: Any = None, surfaces: Any = None) -> str:
    """`<task>_<init>_seed<seed>` of the (first) run, else the (first) surface's stem."""

    def first(value, many):
        if value not in (None, "", "???", "None"):
            return str(value)
        many = (
            list(many)
            if isinstance(many, (list, tuple)) or hasattr(many, "__iter__") and not isinstance(many, str)
            else []
        )
        return str(many[0]) if many else None

    r = first(run, runs or [])
    if r is not None and RunDir.is_run(r):
        return run_name(r)
    s = first(surface, surfaces or [])
    if s is not None:
        return Path(s).stem
    return "analysis"


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("bvl.analysis_input"):
        OmegaConf.register_new_resolver("bvl.analysis_input", input_name)


# --- the examples of analyses that evaluate a model (A2: hessian, layers) --------------------
def run_task(run: RunDir) -> str:
    """The task a run was trained on (run.json, else its config.yaml)."""
    task = run.task()
    if not task:
        raise AnalysisError(
            f"run {run.root}: neither {run.identity_file.name} nor {run.config.name} says its task"
        )
    return task


def run_data_request(data: Any, run: RunDir, **overrides: Any):
    """The landscape's `DataRequest` for the analyze config's `data` section (glue_dir, the
    seeded subsets, eval_batch_size …) with `overrides` on top (None values ignored);
    ``max_length: null`` takes the run's. The same subset_seed gives the landscape's examples
    (a smaller max_train_samples is a prefix-subset of a larger one)."""
    from dataclasses import replace

    values = eval_data(data.to_dict() if isinstance(data, DataRequest) else data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    req = DataRequest.from_config(values)
    if req.max_length is None:
        length = run.max_length()
        if length is None:
            raise AnalysisError(
                f"data.max_length is not given and run {run.root} has no {run.config.name} saying it: set "
                "data.max_length=<n>"
            )
        req = replace(req, max_length=int(length))
    return req
