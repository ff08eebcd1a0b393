"""One landscape, start to finish, as a plain function: `compute_landscape(request)`.

request → runs resolved → checkpoints checked and hashed → the parts directory of this exact
landscape → (points to do?) weights loaded, the direction file loaded or computed once, fixed
example sets, this shard's missing points → (all done) the surface file, with the direction
file beside it. `mode=merge` only merges: it loads no weights. The Hydra entrypoint turns a
config into a `LandscapeRequest`; tests and analyses call `landscape(**values)`, which composes
the same YAML defaults.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bertviz_landscape.contracts.atomic import check_writable
from bertviz_landscape.contracts.checkpoints import (
    check_checkpoint_dir,
    check_compatible,
    content_hash,
    load_checkpoints,
)
from bertviz_landscape.contracts.devices import configure_determinism, pick_device
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.fingerprints import digest, sha256_file
from bertviz_landscape.contracts.locks import BusyError, held, held_by_another, held_directory
from bertviz_landscape.contracts.parameters import select_parameters
from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.engine import directions as dirs
from bertviz_landscape.engine.direction_file import (
    beside,
    check_against,
    read_directions,
    write_directions,
)
from bertviz_landscape.engine.evaluator import Evaluator
from bertviz_landscape.engine.grid import shard_points
from bertviz_landscape.engine.request import (
    DirectionsRequest,
    LandscapeRequest,
    landscape_request,
    resolve_runs,
)
from bertviz_landscape.engine.shards import PointStore, merge_parts, parts_dir
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.training.data.eval_sets import load_eval_sets
from bertviz_landscape.training.data.glue import data_fingerprint
from bertviz_landscape.training.data.tasks import get_task

log = logging.getLogger(__name__)


@dataclass
class LandscapeResult:
    output: Path
    parts: Path
    surface: Path | None  # the merged surface file, once every shard has finished
    evaluated: int  # points this call evaluated
    skipped: int  # points of this shard already done before the call
    seconds: float
    directions: dict = field(default_factory=dict)
    direction_file: Path | None = None


def build_directions(recipe: DirectionsRequest, checkpoints: dict, two_d: bool) -> dirs.Directions:
    """Compute δ1 (and δ2) from the loaded checkpoints: the one place a recipe is evaluated."""
    names = list(checkpoints["theta0"].state)
    params = select_parameters(names, list(recipe.params))
    theta0 = checkpoints["theta0"].state
    if recipe.name == "difference":
        theta2 = checkpoints["theta2"].state if "theta2" in checkpoints else None
        return dirs.difference(
            theta0, checkpoints["theta1"].state, theta2, params, two_d, recipe.rescale_y, recipe.bias_and_norm
        )
    if recipe.center not in checkpoints:
        raise LandscapeError(
            f"directions.center={recipe.center!r} is not one of the given checkpoints {sorted(checkpoints)}"
        )
    if recipe.name == "random":
        return dirs.random_directions(
            checkpoints[recipe.center].state,
            params,
            two_d,
            recipe.seed,
            recipe.normalization,
            recipe.bias_and_norm,
            recipe.center,
        )

    try:
        snaps = Snapshots(recipe.run_dir)
    except (FileNotFoundError, ValueError) as err:
        raise LandscapeError(f"pca directions: {err}") from None
    scale = (
        dirs.norm({n: checkpoints["theta1"].state[n] - theta0[n] for n in params})
        if recipe.scale == "delta"
        else None
    )
    return dirs.pca_directions(snaps, params, two_d, recipe.bias_and_norm, scale, recipe.center)


def obtain_directions(
    req: LandscapeRequest, checkpoints: dict, parts: Path, key: str
) -> tuple[dirs.Directions, Path]:
    """The landscape's directions: from `directions.file`, else the parts directory's direction
    file, else computed now (once, under a lock) and saved there for every other shard."""
    hashes = {role: c.sha256 for role, c in checkpoints.items()}
    if req.directions.file is not None:
        recipe, attrs = read_directions(req.directions.file)
        center = checkpoints.get(recipe.center)
        check_against(
            recipe,
            attrs,
            req.directions.file,
            checkpoints["theta0"].state,
            req.grid.two_d,
            center.sha256 if center else None,
        )
        if recipe.center not in checkpoints:
            raise LandscapeError(
                f"direction file {req.directions.file} is centred on {recipe.center}, which is not given"
            )
        return recipe, req.directions.file
    path = parts / "directions.h5"
    # shards that start together compute the directions once: the others wait, then load them
    with held(parts / ".directions.lock", f"the direction file in {parts}", wait=True):
        if path.is_file():
            recipe, _ = read_directions(path)
            log.info("directions loaded from %s", path)
        else:
            started = time.perf_counter()
            recipe = build_directions(req.directions, checkpoints, req.grid.two_d)
            write_directions(path, recipe, key, hashes)
            log.info("directions computed in %.1f s and saved to %s", time.perf_counter() - started, path)
    return recipe, path


def _checkpoint_paths(req: LandscapeRequest) -> dict[str, Path]:
    """Every given checkpoint directory, checked (exists, complete, same architecture and
    vocabulary) before any weights are read."""
    paths = {"theta0": check_checkpoint_dir("theta0", req.theta0)}
    for role in ("theta1", "theta2"):
        if getattr(req, role) is not None:
            paths[role] = check_checkpoint_dir(role, getattr(req, role))
    check_compatible(paths)
    return paths


def landscape_key(req: LandscapeRequest, hashes: dict[str, str]) -> str:
    """The fingerprint of everything that decides a point's value: the parts directory's name."""
    recipe = req.directions.describe()
    if req.directions.file is not None:
        recipe = {"file_sha256": sha256_file(req.directions.file)}
    return digest(
        {
            "task": req.task,
            "checkpoints": hashes,
            "directions": recipe,
            "grid": req.grid.points(),
            # the examples by content, not data.glue_dir's path: edited TSVs are another landscape
            "data": req.data.describe()
            | {
                "splits": list(req.splits),
                "glue_dir": data_fingerprint(get_task(req.task), req.data.glue_dir, tuple(req.splits)),
            },
            "precision": req.precision,
        }
        | ({"per_example": True} if req.per_example else {})  # stored per point: its own parts directory
    )


def compute_landscape(
    request: LandscapeRequest, on_point: Callable[[int, dict], None] | None = None
) -> LandscapeResult:
    """Evaluate this shard's missing points of the landscape and merge when all are done
    (`request.mode == "merge"`: merge only)."""
    started = time.perf_counter()
    req = resolve_runs(request)
    for what, note in req.notes.items():
        log.info("%s: %s", what, note)
    task = get_task(req.task)
    paths = _checkpoint_paths(req)
    hashes = {role: content_hash(p) for role, p in paths.items()}
    if "theta2" in hashes and hashes["theta2"] in (hashes.get("theta1"), hashes.get("theta0")):
        same = "theta1" if hashes["theta2"] == hashes.get("theta1") else "theta0"
        log.warning(
            "theta2 has the same weights as %s (run2 = run?): δ2 is %s, the plane is degenerate",
            same,
            "δ1 (cos = 1)" if same == "theta1" else "zero",
        )
    key = landscape_key(req, hashes)
    store = PointStore(parts_dir(req.output, key), req.shard, req.num_shards)
    check_writable(req.output)
    existing = _existing_surface(req, key)
    if existing is None:  # another configuration computing into this output now: never two at once
        _check_no_other_configuration(req, key)
    if req.overwrite and req.mode != "merge":  # overwrite discards the points of what it replaces
        for other in store.directory.parent.glob("*"):
            if other.is_dir() and other.name != key and (other / "spec.json").is_file():
                log.info("overwrite=true: discarding the finished points in %s", other)
                _remove_empty_parts(other)
    if existing is not None:
        log.info("%s already holds this landscape; nothing to do", req.output)
        return LandscapeResult(
            req.output,
            store.directory,
            req.output,
            0,
            len(shard_points(req.grid, req.shard, req.num_shards)),
            time.perf_counter() - started,
            direction_file=beside(req.output),
        )

    if req.mode == "merge":
        if not (store.directory / "spec.json").is_file():
            raise LandscapeError(f"nothing computed yet for this configuration (no {store.directory})")
        surface = _merge(req, key, store, require_complete=True)
        return LandscapeResult(
            req.output,
            store.directory,
            surface,
            0,
            0,
            time.perf_counter() - started,
            direction_file=beside(req.output),
        )

    mine = shard_points(req.grid, req.shard, req.num_shards)
    done = store.done() if store.directory.exists() else {}
    todo = [k for k in mine if k not in done]
    log.info(
        "shard %d/%d: %d points, %d already done, %d to evaluate",
        req.shard,
        req.num_shards,
        len(mine),
        len(mine) - len(todo),
        len(todo),
    )

    evaluator, summary, direction_path = None, {}, None
    created = not store.directory.exists()
    try:
        if todo or not (store.directory / "spec.json").exists():
            # a second copy of this shard (a requeued job) says so, waits, then finds the points done
            lock = store.directory / f".shard-{store.shard:04d}-of-{store.num_shards:04d}.lock"
            with contextlib.ExitStack() as stack:
                _claim_shard(req, key, lock, stack)
                done = store.done() if store.directory.exists() else {}
                todo = [k for k in mine if k not in done]
                evaluator, summary, direction_path = _evaluate(req, task, store, key, todo, on_point)
    except BaseException:
        if (
            created and store.directory.exists() and not store.done()
        ):  # nothing finished: leave nothing behind
            _remove_empty_parts(store.directory)
        raise
    surface = _merge(req, key, store, require_complete=False) if req.merge else None
    return LandscapeResult(
        req.output,
        store.directory,
        surface,
        evaluator.evaluations if evaluator else 0,
        len(mine) - len(todo),
        time.perf_counter() - started,
        summary,
        direction_path,
    )


def _claim_shard(req: LandscapeRequest, key: str, lock: Path, stack: contextlib.ExitStack) -> None:
    """Take this shard's lock into `stack`, under the claim on the output's directory and only
    when no other configuration is computing into the same output (a LandscapeError otherwise):
    two grids never race on one surface file, while the shards of one configuration run side by
    side (the claim is held only for the check). A copy of this very shard (a requeued job) is
    waited for outside the claim."""
    what = f"shard {req.shard}/{req.num_shards} (already running in another process)"
    while True:
        with held_directory(req.output.parent, f"the directory of {req.output}"):
            _check_no_other_configuration(req, key)
            try:
                stack.enter_context(held(lock, what, wait=False))
                return
            except BusyError:
                pass
        with held(lock, what, wait=True):  # the other copy has finished (or died): claim again
            pass


def _check_no_other_configuration(req: LandscapeRequest, key: str) -> None:
    """A LandscapeError when a live process computes another configuration into `req.output`
    (it holds a shard lock in another directory of ``<output>.parts``)."""
    root = parts_dir(req.output, key).parent
    if not root.is_dir():
        return
    for other in sorted(root.iterdir()):
        if other.name == key or not other.is_dir():
            continue
        for lock in sorted(other.glob(".shard-*.lock")):
            who = held_by_another(lock)
            if who is not None:
                raise LandscapeError(
                    f"{req.output} is being computed with another configuration by {who} (parts "
                    f"{other}); nothing is written: choose another output=, or re-run when it has "
                    "finished (overwrite=true to replace its surface)"
                )


def _merge(req: LandscapeRequest, key: str, store: PointStore, require_complete: bool) -> Path | None:
    """Merge this configuration's points into `req.output` under the claim on its directory,
    checking again what the output holds now: another configuration's surface, finished since
    this one started, is never replaced silently (overwrite=true says to)."""
    with held_directory(req.output.parent, f"the directory of {req.output}"):
        existing = _existing_surface(req, key)
        if existing is not None:  # another shard of this configuration merged it already
            return existing
        return merge_parts(store.directory, req.output, require_complete=require_complete)


def _existing_surface(req: LandscapeRequest, key: str) -> Path | None:
    """The output when it already holds exactly this landscape; an error when it holds another
    one (unless overwrite=true), so a re-run never silently replaces a finished surface."""
    if not req.output.is_file():
        return None
    try:
        old = load_surface(req.output).meta
    except (OSError, KeyError, ValueError):
        old = {}
    if old.get("key") == key and req.mode == "compute":
        return req.output
    if old.get("key") == key or req.overwrite:
        return None
    fields = {
        "grid": req.grid.points(),
        "directions": req.directions.describe(),
        "task": req.task,
        "precision": req.precision,
    }
    before = {
        "grid": {k: v for k, v in (old.get("grid") or {}).items() if k != "name"},
        "directions": (old.get("directions") or {}).get("request"),
        "task": old.get("task"),
        "precision": (old.get("evaluation") or {}).get("precision"),
    }
    differ = [k for k in fields if before.get(k) != fields[k]] or ["checkpoints or data"]
    raise LandscapeError(
        f"{req.output} already holds a surface of another configuration ({', '.join(differ)} differ); "
        "it is kept: choose another output= or set overwrite=true"
    )


def _remove_empty_parts(directory: Path) -> None:
    import shutil

    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.parent.rmdir()  # <output>.parts, when no other configuration has parts there
    except OSError:
        pass


def _evaluate(req: LandscapeRequest, task, store: PointStore, key: str, todo: list[int], on_point):
    """Load weights and directions, write the spec, evaluate the points `todo`."""
    dev = pick_device(req.device, req.shard)
    model, checkpoints = load_checkpoints(req.theta0, req.theta1, req.theta2)
    if model.config.num_labels != task.num_labels:
        raise LandscapeError(
            f"checkpoint theta0 has {model.config.num_labels} outputs but task {task.name} needs "
            f"{task.num_labels}"
        )
    recipe, direction_path = obtain_directions(req, checkpoints, store.directory, key)
    summary = recipe.summary()
    center = checkpoints[recipe.center].state
    sets = load_eval_sets(task, req.data, req.splits, checkpoints["theta0"].path, dev)
    model.to(dev)
    evaluator = Evaluator(
        model,
        task,
        {k: v.to(dev) for k, v in center.items()},
        recipe,
        sets,
        req.precision,
        req.hidden_state_cache,
    )
    data_meta = req.data.describe() | {
        "splits": {s.name: {"num_examples": s.num_examples, "batches": len(s.batches)} for s in sets}
    }
    meta = {
        "key": key,
        "task": task.name,
        "primary_metric": task.primary_metric,
        "directions": summary
        | {
            "request": req.directions.describe(),
            "file": str(beside(req.output) if req.directions.file is None else req.directions.file),
        },
        "checkpoints": {r: c.describe() for r, c in checkpoints.items()},
        "runs": {"run": str(req.run) if req.run else None, "run2": str(req.run2) if req.run2 else None},
        "data": data_meta,
        "grid": req.grid.describe(),
        "evaluation": {
            "precision": req.precision,
            "hidden_state_cache": evaluator.caches is not None,
            "device": str(dev),
        },
    }
    store.write_spec(
        {
            "output": str(req.output),
            "grid": req.grid.describe(),
            "value_keys": evaluator.value_keys(),
            "meta": meta,
            "per_example": bool(req.per_example),
        }
    )
    iterator = todo
    if req.progress and todo:
        from tqdm.auto import tqdm

        iterator = tqdm(
            todo, desc=f"landscape shard {req.shard}/{req.num_shards}", unit="pt", dynamic_ncols=True
        )
    for k in iterator:
        alpha, beta = req.grid.coordinate(k)
        values = evaluator.evaluate(alpha, beta)
        per_example = None
        if req.per_example:  # the surface's per_example group (surface.py): losses and 0/1 correctness
            per_example = {f"{split}_loss": t.tolist() for split, t in evaluator.last_per_example.items()}
            per_example |= {
                f"{split}_correct": t.float().tolist() for split, t in evaluator.last_correct.items()
            }
        store.append(k, values, per_example)
        if on_point is not None:
            on_point(k, values)
        if not all(math.isfinite(v) for v in values.values()):
            log.warning("point %d (α=%g, β=%g) has non-finite values: %s", k, alpha, beta, values)
    return evaluator, summary, direction_path


def landscape(on_point: Callable[[int, dict], None] | None = None, **values) -> LandscapeResult:
    """`compute_landscape` of the request conf/landscape.yaml gives with `values` on top
    (`landscape_request`):
    ``landscape(run=RUN, grid={"x": {"min": 0, "max": 1, "num": 3}}, progress=False)``."""
    return compute_landscape(landscape_request(**values), on_point=on_point)


def run_landscape(request: LandscapeRequest) -> LandscapeResult:
    """`compute_landscape` as a job runs it: ``deterministic`` set first (before any CUDA work),
    then the shard, its outcome logged (the surface written, or this shard's points)."""
    if request.deterministic:
        configure_determinism(True)
    result = compute_landscape(request)
    if result.surface:
        log.info("surface written: %s (directions: %s)", result.surface, result.direction_file)
    else:
        log.info(
            "shard %s/%s done (%d evaluated, %d already present); parts in %s — the last shard merges",
            request.shard,
            request.num_shards,
            result.evaluated,
            result.skipped,
            result.parts,
        )
    return result
