"""One landscape, start to finish, as a plain function: `compute_landscape(...)`.

checkpoints → directions → fixed example sets → the shard's missing grid points → parts
directory → (when complete) the surface file. The Hydra entrypoint only turns a config into
this call; tests call it directly.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from bertviz_landscape.data.glue import load_glue_split
from bertviz_landscape.data.tasks import get_task
from bertviz_landscape.landscape import directions as dirs
from bertviz_landscape.landscape.checkpoints import load_checkpoints
from bertviz_landscape.landscape.errors import LandscapeError
from bertviz_landscape.landscape.evaluator import PRECISIONS, EvalSet, Evaluator
from bertviz_landscape.landscape.grid import Grid, check_shard, shard_points
from bertviz_landscape.landscape.parameters import select_parameters
from bertviz_landscape.landscape.shards import PointStore, fingerprint, merge_parts, parts_dir

log = logging.getLogger(__name__)
RECIPES = ("difference", "random", "pca")
SPLITS = ("train", "dev")


@dataclass
class LandscapeResult:
    output: Path
    parts: Path
    surface: Path | None  # the merged surface file, once every shard has finished
    evaluated: int  # points this call evaluated
    skipped: int  # points of this shard already done before the call
    seconds: float
    directions: dict = field(default_factory=dict)


def _get(cfg: Any, key: str, default=None):
    if cfg is None:
        return default
    return cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)


def pick_device(device: str, shard: int) -> torch.device:
    """`auto`: GPU `shard mod #GPUs` when GPUs exist (one device per multirun job), else CPU."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", shard % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(device)


def build_directions(recipe: dict, checkpoints: dict, names: Sequence[str], two_d: bool) -> dirs.Directions:
    name = _get(recipe, "name", "difference")
    params = select_parameters(names, _get(recipe, "params", "all"))
    bias_and_norm = _get(recipe, "bias_and_norm", "include" if name != "random" else "exclude")
    theta0 = checkpoints["theta0"].state
    if name == "difference":
        theta2 = checkpoints["theta2"].state if "theta2" in checkpoints else None
        return dirs.difference(theta0, checkpoints["theta1"].state, theta2, params, two_d, bool(_get(recipe, "rescale_y", False)), bias_and_norm)
    center = _get(recipe, "center", "theta1")
    if center not in checkpoints:
        raise LandscapeError(f"directions.center={center!r} is not one of the given checkpoints {sorted(checkpoints)}")
    if name == "random":
        return dirs.random_directions(
            checkpoints[center].state, params, two_d, int(_get(recipe, "seed", 0)),
            _get(recipe, "normalization", "filter"), bias_and_norm, center,
        )
    from bertviz_landscape.snapshots import Snapshots

    run_dir = _get(recipe, "run_dir") or checkpoints["theta1"].path.parent.parent
    try:
        snaps = Snapshots(run_dir)
    except (FileNotFoundError, ValueError) as err:
        raise LandscapeError(f"pca directions: {err}") from None
    scale_mode = _get(recipe, "scale", "delta")
    scale = dirs.norm({n: checkpoints["theta1"].state[n] - theta0[n] for n in params}) if scale_mode == "delta" else None
    return dirs.pca_directions(snaps, params, two_d, bias_and_norm, scale, center)


def load_eval_sets(task, data: Any, splits: Sequence[str], tokenizer_dir: Path, device) -> list[EvalSet]:
    from bertviz_landscape.data.tokenize import tokenize
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    sets = []
    for split in splits:
        limit = _get(data, "max_train_samples" if split == "train" else "max_eval_samples")
        rows = load_glue_split(task, split, _get(data, "glue_dir"), limit, int(_get(data, "subset_seed", 0)), _get(data, "cache_dir"))
        tok = tokenize(rows, tokenizer, int(_get(data, "max_length", 128)), _get(data, "cache_dir"))
        sets.append(EvalSet.from_tokenized(split, tok, int(_get(data, "eval_batch_size", 64)), tokenizer.pad_token_id or 0, device, task.is_regression))
    return sets


def validate(task: str, theta0, theta1, theta2, recipe, grid_spec, shard, num_shards, precision, splits) -> tuple:
    """Every check of the request that needs no files, before anything is read or written."""
    try:
        task_obj = get_task(task)
    except KeyError as err:
        raise LandscapeError(str(err.args[0])) from None
    grid = Grid.parse(grid_spec)
    shard, num_shards = check_shard(shard, num_shards)
    name = _get(recipe, "name", "difference")
    if name not in RECIPES:
        raise LandscapeError(f"unknown direction recipe {name!r}; expected one of {RECIPES}")
    if precision not in PRECISIONS:
        raise LandscapeError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise LandscapeError(f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}")
    if theta1 in (None, "") and name in ("difference", "pca"):
        raise LandscapeError(f"{name} directions need theta1 (the trained checkpoint): set theta1=<checkpoint>")
    if name == "difference" and grid.two_d and theta2 in (None, ""):
        raise LandscapeError("a 2D difference surface needs theta2 (θ0 trained on another task): set theta2=<checkpoint>")
    # the checkpoints themselves (directories, architectures, vocabularies) are checked by
    # load_checkpoints, before it reads any weights
    return task_obj, grid, shard, num_shards


def compute_landscape(
    task: str,
    theta0: str | os.PathLike,
    theta1: str | os.PathLike | None,
    output: str | os.PathLike,
    grid: Any,
    directions: Any = None,
    data: Any = None,
    theta2: str | os.PathLike | None = None,
    shard: int = 0,
    num_shards: int = 1,
    splits: Sequence[str] = SPLITS,
    precision: str = "fp32",
    use_cache: bool = True,
    device: str = "auto",
    progress: bool = True,
    merge: bool = True,
    on_point: Callable[[int, dict], None] | None = None,
    evaluate: bool = True,
) -> LandscapeResult:
    """Evaluate this shard's missing points of the landscape and merge when all are done.

    `grid`: {"x": {min, max, num}, "y": {...} (2D)}; `directions`: {"name": difference|random|pca,
    "params": selectors, ...}; `data`: the data config (glue_dir, max_train_samples,
    max_eval_samples, subset_seed, max_length, eval_batch_size, cache_dir).
    """
    started = time.perf_counter()
    directions = directions or {"name": "difference"}
    splits = list(splits)
    task_obj, grid_obj, shard, num_shards = validate(task, theta0, theta1, theta2, directions, grid, shard, num_shards, precision, splits)
    output = Path(str(output)).expanduser().resolve()
    dev = pick_device(device, shard)

    model, checkpoints = load_checkpoints(theta0, theta1, theta2)
    if model.config.num_labels != task_obj.num_labels:
        raise LandscapeError(f"checkpoint theta0 has {model.config.num_labels} outputs but task {task_obj.name} needs {task_obj.num_labels}")
    recipe = build_directions(directions, checkpoints, list(checkpoints["theta0"].state), grid_obj.two_d)
    summary = recipe.summary()
    center = checkpoints[recipe.center].state

    data_meta = {k: _get(data, k) for k in ("glue_dir", "max_train_samples", "max_eval_samples", "subset_seed", "max_length")}
    spec_values = {
        "task": task_obj.name,
        "checkpoints": {r: c.describe() for r, c in checkpoints.items()},
        "directions": {k: v for k, v in summary.items() if not k.startswith("layer_norms")} | {"request": dict(directions)},
        "grid": grid_obj.describe(),
        "data": data_meta | {"splits": splits},
        "precision": precision,
    }
    key = fingerprint({**spec_values, "checkpoints": {r: c["sha256"] for r, c in spec_values["checkpoints"].items()}})
    store = PointStore(parts_dir(output, key), shard, num_shards)
    mine = shard_points(grid_obj, shard, num_shards)
    done = store.done() if store.directory.exists() else {}
    todo = [k for k in mine if k not in done] if evaluate else []
    log.info("shard %d/%d: %d points, %d already done, %d to evaluate", shard, num_shards, len(mine), len(mine) - len(todo), len(todo))

    evaluator = None
    if evaluate and (todo or not (store.directory / "spec.json").exists()):
        sets = load_eval_sets(task_obj, data, splits, checkpoints["theta0"].path, dev)
        model.to(dev)
        data_meta["splits"] = {s.name: {"num_examples": s.num_examples, "batches": len(s.batches)} for s in sets}
        evaluator = Evaluator(model, task_obj, {k: v.to(dev) for k, v in center.items()}, recipe, sets, precision, use_cache)
        meta = {
            "task": task_obj.name,
            "primary_metric": task_obj.primary_metric,
            "directions": summary,
            "checkpoints": spec_values["checkpoints"],
            "data": data_meta,
            "grid": grid_obj.describe(),
            "evaluation": {"precision": precision, "hidden_state_cache": evaluator.caches is not None, "device": str(dev)},
        }
        store.write_spec({"output": str(output), "grid": grid_obj.describe(), "value_keys": evaluator.value_keys(), "meta": meta})
        iterator = todo
        if progress and todo:
            from tqdm.auto import tqdm

            iterator = tqdm(todo, desc=f"landscape shard {shard}/{num_shards}", unit="pt", dynamic_ncols=True)
        for k in iterator:
            alpha, beta = grid_obj.coordinate(k)
            values = evaluator.evaluate(alpha, beta)
            store.append(k, values)
            if on_point is not None:
                on_point(k, values)
            if not all(math.isfinite(v) for v in values.values()):
                log.warning("point %d (α=%g, β=%g) has non-finite values: %s", k, alpha, beta, values)
    surface = merge_parts(store.directory, output, require_complete=False) if merge else None
    return LandscapeResult(
        output, store.directory, surface, evaluator.evaluations if evaluator else 0,
        len(mine) - len(todo), time.perf_counter() - started, summary,
    )
