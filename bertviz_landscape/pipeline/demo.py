"""`bertviz-demo` (make demo): the paper's experiments end to end, as a list of stages.

Every (task, init) is run once per seed of ``seeds`` (replicates: from scratch a seed draws θ0
— ``init.seed`` —, pretrained it draws the head; for both it draws the data order and dropout —
``seed``); ``<name>`` below is ``<task>_<init>_seed<seed>``. Stages (one progress line each)::

    train     <name>              runs/<name>/                    bertviz-train (resumes from its last epoch)
    line      <name>              surfaces/<name>_line.h5         1D curve along δ1 (main task)
    plane     <name>              surfaces/<name>_plane.h5        2D train+dev surface on (δ1, δ2),
                                                                 δ2 from the same seed's second-task run
    <analysis> <name>             analysis/<analysis>_<name>.json bertviz-analyze
    figures                       figures/ (+ figures.json)       bertviz-plot
    wandb                         wandb/ (offline runs)           curves, surfaces, artifacts, numbers
    report                        report.md, report.html, results.md (+ the copy at ``results_doc``)

Before the first stage the analysis plan (``plan``: conf/plan/<preset>.yaml, with the design it
registers — seeds, the seeds that select the from-scratch rate, tasks, the analyses' thresholds) is
frozen into ``plan.yaml`` + ``plan.json`` (its SHA-256 and UTC time; report/plan.py). A different
frozen plan is never overwritten: the demo says what changed, and the report, decided under the new
plan, is exploratory and names the change (report/claims.py decides every claim across the seeds).

A stage is skipped when its outputs exist and its record ``.stages/<stage>.json`` (the
stage's full specification and outputs, written atomically after it finishes) matches the
current configuration; otherwise it runs — and the tools it calls resume what an interrupted
run left (training from ``checkpoints/resume.ckpt``, surfaces from their finished points).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import read_run
from bertviz_landscape.cli.analyze import run as analyze
from bertviz_landscape.cli.command import command
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.cli.landscape import run as compute_surface
from bertviz_landscape.contracts.atomic import open_in_place, write_json_atomic
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.fingerprints import file_fingerprint
from bertviz_landscape.contracts.locks import held
from bertviz_landscape.contracts.resultsdir import ANALYSIS, FIGURES, RUNS, SURFACES, ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.plots.results import draw_all
from bertviz_landscape.publish.publisher import log_results, write_report
from bertviz_landscape.publish.report.plan import fmt_value, freeze
from bertviz_landscape.training.data.glue import data_fingerprint
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.train import RunConfigError, train

METRICS_NAME = Path(
    RunDir("run").metrics_json
).name  # a run's results file (the only file of a run the late stages read)

log = logging.getLogger("bertviz_landscape.pipeline.demo")


@dataclass
class Stage:
    name: str
    spec: dict  # everything that decides the outputs
    outputs: list[Path]
    action: Callable[[], object]
    after: list[str] = field(default_factory=list)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system): on a busy shared
    machine it tells what a stage costs when wall time cannot."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _digest(spec: dict, root: Path | None = None) -> str:
    """The stage's fingerprint; paths inside the demo's directory count relative to it (a copied
    or moved demo directory is the same demo)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    if root is not None:
        for prefix in sorted({str(Path(root).resolve()), str(Path(root))}, key=len, reverse=True):
            text = text.replace(prefix, "<output_dir>")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _composed(config_name: str, overrides: list[str]) -> _Lazy:
    """The config a stage composes, as the YAML files say it now (unresolved): an edit to any
    file it reads (conf/experiment/demo.yaml, conf/analysis/*.yaml ...) changes the stage."""

    return _Lazy(lambda: OmegaConf.to_container(compose(config_name, overrides), resolve=False))


class Pipeline:
    """Runs stages in order; skips those whose outputs exist and whose record matches."""

    def __init__(self, root: Path, out=None, log_file: Path | None = None):
        self.root = Path(root)
        self.records = ResultsDir(self.root).stages
        self.log_file = (
            log_file  # the stages' own output (progress bars, library logs) goes here, not to the console
        )
        if out is None:
            sys.stdout.flush()
            out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1) if log_file else sys.stdout
        self.out = out
        self.log: list[dict] = []

    @contextlib.contextmanager
    def _captured(self):
        """fds 1 and 2 into the log file while a stage runs (one clean progress line per stage)."""
        if self.log_file is None:
            yield
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush(), sys.stderr.flush()
        with open_in_place(self.log_file, "a") as logf:  # a link planted as the log: refused
            saved = [os.dup(1), os.dup(2)]
            os.dup2(logf.fileno(), 1), os.dup2(logf.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os.dup2(saved[0], 1), os.dup2(saved[1], 2)
                os.close(saved[0]), os.close(saved[1])

    def record_path(self, stage: Stage) -> Path:
        return self.records / f"{stage.name.replace(' ', '__').replace('/', '_')}.json"

    def is_done(self, stage: Stage) -> bool:
        rec = self.record_path(stage)
        if not rec.is_file() or not all(Path(p).exists() for p in stage.outputs):
            return False
        try:
            return json.loads(rec.read_text()).get("digest") == _digest(stage.spec, self.root)
        except ValueError:
            return False

    def run(self, stages: list[Stage]) -> list[dict]:
        total = len(stages)
        started = time.perf_counter()
        for n, stage in enumerate(stages, 1):
            head = f"[demo {n:2d}/{total}] {stage.name:<34}"
            # one process per stage: a second demo on this directory waits, then skips what it finished
            with held(self.records / f".{self.record_path(stage).stem}.lock", f"demo stage {stage.name!r}"):
                if self.is_done(stage):
                    self._print(f"{head} skipped (done)")
                    self.log.append({"stage": stage.name, "status": "skipped", "seconds": 0.0})
                    continue
                tty = getattr(self.out, "isatty", lambda: False)()
                if tty:
                    self._print(f"{head} ...", end="")
                t0, c0 = time.perf_counter(), _cpu_seconds()
                try:
                    with self._captured():
                        stage.action()
                except BaseException as err:
                    where = f" (see {self.log_file})" if self.log_file else ""
                    self._print(
                        f"{chr(13) if tty else ''}{head} FAILED after {time.perf_counter() - t0:.1f} s: "
                        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}{where}"
                    )
                    raise
                seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
                write_json_atomic(
                    self.record_path(stage),
                    {
                        "stage": stage.name,
                        "digest": _digest(stage.spec, self.root),
                        "spec": stage.spec,
                        "outputs": [str(p) for p in stage.outputs],
                        "seconds": round(seconds, 2),
                        "cpu_seconds": round(cpu, 2),
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    },
                )
                self._print(f"{chr(13) if tty else ''}{head} done in {seconds:7.1f} s (cpu {cpu:7.1f} s)")
                self.log.append(
                    {
                        "stage": stage.name,
                        "status": "done",
                        "seconds": round(seconds, 2),
                        "cpu_seconds": round(cpu, 2),
                    }
                )
        self._print(
            f"[demo] all {total} stages finished in {time.perf_counter() - started:.1f} s; results in "
            f"{self.root}"
        )
        return self.log

    def _print(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.out, flush=True)


def build_stages(cfg: DictConfig, selected: str | None = None) -> list[Stage]:
    """The demo's stages. With a scratch learning-rate sweep analysed at its best rate only
    (``scratch_sweep.analyse=best``) this is two lists: without `selected`, the selection stages
    (the main task trained at every rate on ``scratch_sweep.select_seeds``, then ``select scratch lr``
    writing lr_sweep.json); with `selected` (the chosen arm, e.g. ``scratch_lr0.0003``), everything
    else, for the pretrained arm and the chosen rate (run_demo runs one, then the other)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    root = Path(c["output_dir"])
    tasks, inits = list(c["tasks"]), list(c["inits"])
    if len(tasks) != 2:
        raise BadInput(f"tasks={tasks}: give [main task, second task] (the second task's runs give δ2)")
    # (main task, second task) pairs: the main task's surfaces and analyses, δ2 from the second's
    # runs; `both_ways` adds the swapped pair (every surface and analysis on both tasks in one call)
    pairs = [(tasks[0], tasks[1])] + ([(tasks[1], tasks[0])] if c.get("both_ways") else [])
    mains = [m for m, _ in pairs]
    seeds = _seeds(c.get("seeds"))
    arms = _arms(inits, c.get("scratch_lrs"))  # arm label -> (init, lr or None: the preset's)
    select_seeds = sweep_select_seeds(c, arms, seeds)
    data = (
        [f"data.glue_dir={c['glue_dir']}"] if c.get("glue_dir") else []
    )  # one data directory for every stage
    if select_seeds is not None:
        rates = [a for a, (init, lr) in arms.items() if init == "scratch" and lr is not None]
        if selected is None:
            return _selection_stages(c, root, tasks[0], arms, rates, select_seeds, data)
        if selected not in rates:
            raise BadInput(
                f"{ResultsDir(root).sweep}: chosen arm {selected!r} is not one of {', '.join(rates)}"
            )
        arms = {a: v for a, v in arms.items() if a not in rates or a == selected}
    inits = list(arms)
    runs = {(t, i, s): ResultsDir(root).run(run_name(t, i, s)) for t in tasks for i in inits for s in seeds}
    surf = {
        (m, kind, i, s): ResultsDir(root).surface(f"{run_name(m, i, s)}_{kind}")
        for m in mains
        for kind in ("line", "plane")
        for i in inits
        for s in seeds
    }
    stages: list[Stage] = [
        _train_stage(c, task, arm, seed, arms, runs[(task, arm, seed)], data, second=task not in mains)
        for seed in seeds
        for task in tasks
        for arm in inits
    ]

    ls = c["landscape"]
    _check_axis("landscape.line", ls["line"])
    _check_axis("landscape.plane.x", ls["plane"]["x"])
    for (main, second), seed in itertools.product(pairs, seeds):
        for init in inits:
            common = [
                f"run={runs[(main, init, seed)]}",
                "overwrite=true",
                "progress=false",
                f"paths.output_dir={root}",
                *data,
                *ls.get("overrides", []),
            ]
            line = dict(ls["line"])
            line_over = common + [
                f"grid.x.min={line['min']}",
                f"grid.x.max={line['max']}",
                f"grid.x.num={line['num']}",
                f"output={surf[(main, 'line', init, seed)]}",
            ]
            p = ls["plane"]
            plane_over = common + [
                f"run2={runs[(second, init, seed)]}",
                "grid=plane",
                f"directions.rescale_y={str(bool(ls.get('rescale_y'))).lower()}",
                *[f"grid.{ax}.{k}={p[ax][k]}" for ax in ("x", "y") for k in ("min", "max", "num")],
                f"output={surf[(main, 'plane', init, seed)]}",
                *(ls.get("plane_overrides") or []),
            ]
            for kind, over in (("line", line_over), ("plane", plane_over)):

                def landscape_action(over=over):
                    compute_surface(compose("landscape", over))

                deps = [runs[(main, init, seed)]] + ([runs[(second, init, seed)]] if kind == "plane" else [])
                stages.append(
                    Stage(
                        f"{kind} {run_name(main, init, seed)}",
                        {
                            "overrides": over,
                            "runs": [_run_stamp(r) for r in deps],
                            "config": _composed("landscape", over),
                        },
                        [surf[(main, kind, init, seed)]],
                        landscape_action,
                    )
                )

    for name in c.get("analyses") or []:
        for main, seed in itertools.product(mains, seeds):
            for init in inits:
                out = ResultsDir(root).analysis_json(name, run_name(main, init, seed))
                over = (
                    analysis_overrides(
                        name,
                        runs[(main, init, seed)],
                        surf[(main, "line", init, seed)],
                        surf[(main, "plane", init, seed)],
                        out,
                    )
                    + data
                )
                over += list((c.get("analysis_overrides") or {}).get(name) or [])
                control = matched_control(name, init, arms)
                if control is not None:  # the pretrained run measured where the same seed's scratch run ends
                    over.append(f"analysis.matched.run={runs[(main, control, seed)]}")
                partner = None
                if registry.get(name).partner and len(seeds) > 1:  # the next seed's run of the same arm
                    partner = seeds[(seeds.index(seed) + 1) % len(seeds)]
                    over.append(f"analysis.partner.run={runs[(main, init, partner)]}")

                def analysis_action(over=over):
                    run_analysis(over)

                stages.append(
                    Stage(
                        f"{name} {run_name(main, init, seed)}",
                        {
                            "overrides": over,
                            "config": _composed("analyze", over),
                            "run": _run_stamp(runs[(main, init, seed)]),
                            "control": None if control is None else _run_stamp(runs[(main, control, seed)]),
                            **(
                                {}
                                if partner is None
                                else {"partner": _run_stamp(runs[(main, init, partner)])}
                            ),
                            "surfaces": [
                                _Lazy(lambda p=surf[(main, k, init, seed)]: _file_stamp(p))
                                for k in ("line", "plane")
                            ],
                        },
                        [out],
                        analysis_action,
                    )
                )

    upstream = [s.name for s in stages]
    if c.get("figures", True):
        stages.append(
            Stage(
                "figures",
                {"after": upstream, "inputs": _tree_stamp(root, (SURFACES, ANALYSIS, RUNS))},
                [ResultsDir(root).catalogue],
                lambda: _figures(root),
            )
        )
    if c.get("wandb_media", True):
        stages.append(
            Stage(
                "wandb",
                {
                    "after": upstream,
                    "inputs": _tree_stamp(root, (SURFACES, ANALYSIS)),
                    "wandb": c.get("wandb"),
                },
                [ResultsDir(root).logged],
                lambda: _wandb(root, c),
            )
        )
    if c.get("report", True):
        stages.append(
            Stage(
                "report",
                {
                    "after": upstream,
                    "inputs": _tree_stamp(root, (SURFACES, ANALYSIS, FIGURES)),
                    "plan": plan_document(c),
                    "results_doc": c.get("results_doc"),
                    "notes": list(c.get("report_notes") or []),
                },
                [ResultsDir(root).report_md, ResultsDir(root).report_html],
                lambda: _report(root, plan_document(c), c.get("results_doc")),
            )
        )
    return stages


def _train_stage(
    c: dict, task: str, arm: str, seed: int, arms: dict, run_dir: Path, data: list[str], second: bool
) -> Stage:
    """bertviz-train of one (task, arm, seed). A seed is a replicate: from scratch it draws θ0
    (init.seed), pretrained the head (init.seed), and for both the data order and dropout (seed);
    the second task's run of a seed shares that seed's θ0. With the preset's ``init_seed`` set, θ0
    is drawn from it for every seed (runs of one arm share θ0; a seed draws the data order and
    dropout only: what analysis=basins needs)."""
    tr = c["train"]
    overrides = [
        f"experiment={tr['experiment']}",
        f"task={task}",
        f"init={arms[arm][0]}",
        *([f"init.lr={arms[arm][1]}"] if arms[arm][1] is not None else []),
        f"seed={seed}",
        f"init.seed={seed if c.get('init_seed') is None else int(c['init_seed'])}",
        *data,
        *tr.get("overrides", []),
    ]
    if second:
        overrides += list(tr.get("second_task") or [])

    def train_action():
        try:
            train(compose("train", overrides), run_dir)
        except RunConfigError:  # the demo's settings changed since this run: the demo's own run is retrained
            log.warning("%s was trained with other settings; retraining it", run_dir)
            train(compose("train", [*overrides, "force=true"]), run_dir)

    return Stage(
        f"train {run_name(task, arm, seed)}",
        {
            "overrides": overrides,
            "run": str(run_dir),
            "config": _composed("train", overrides),
            "data": _train_data(overrides),
        },
        [RunDir(run_dir).metrics_json, RunDir(run_dir).theta1],
        train_action,
    )


def sweep_select_seeds(c: dict, arms: dict, seeds: list[int]) -> list[int] | None:
    """The seeds that train every rate when a sweep is analysed at its best rate only; None when
    every arm is analysed (no sweep, or ``scratch_sweep.analyse=all``)."""
    sweep = c.get("scratch_sweep") or {}
    mode = sweep.get("analyse", "all")
    if mode not in ("all", "best"):
        raise BadInput(f"scratch_sweep.analyse={mode!r}: give all or best")
    if mode == "all" or not any(init == "scratch" and lr is not None for init, lr in arms.values()):
        return None
    chosen = sweep.get("select_seeds")
    if chosen is None:
        return seeds
    picked = _seeds(chosen)
    if not set(picked) <= set(seeds):
        raise BadInput(f"scratch_sweep.select_seeds={picked}: not a subset of seeds={seeds}")
    return picked


def _selection_stages(
    c: dict, root: Path, main: str, arms: dict, rates: list[str], seeds: list[int], data: list[str]
) -> list[Stage]:
    runs = {(a, s): ResultsDir(root).run(run_name(main, a, s)) for a in rates for s in seeds}
    stages = [
        _train_stage(c, main, a, s, arms, runs[(a, s)], data, second=False) for s in seeds for a in rates
    ]
    stages.append(
        Stage(
            f"{SELECT_STAGE} {main}",
            {"runs": [_run_stamp(r) for r in runs.values()], "rule": "best mean dev metric"},
            [ResultsDir(root).sweep],
            lambda: write_sweep(root, main, {a: arms[a][1] for a in rates}, runs),
        )
    )
    return stages


SELECT_STAGE = (
    "select scratch lr"  # the stage that ends the sweep's first phase (run_demo then runs the rest)
)


def write_sweep(root: Path, task: str, rates: dict[str, float], runs: dict[tuple[str, int], Path]) -> dict:
    """lr_sweep.json: each rate's dev metric per seed (the runs' metrics.json), their mean, and the
    rate chosen — the best mean (every GLUE primary metric is higher-is-better); a rate whose runs
    have no finite dev metric is never chosen."""
    read = {key: read_run(path) for key, path in sorted(runs.items())}  # each run's metrics.json once
    rows = []
    for arm, lr in rates.items():
        infos = [(s, info) for (a, s), info in read.items() if a == arm]
        values = [i.dev_metric for _, i in infos]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        rows.append(
            {
                "arm": arm,
                "lr": lr,
                "seeds": [s for s, _ in infos],
                "dev_metric": values,
                "beat_baseline": [i.beat_baseline for _, i in infos],
                "mean": sum(finite) / len(finite) if finite else None,
                "runs": [os.path.relpath(Path(i.run).resolve(), Path(root).resolve()) for _, i in infos],
            }
        )
    scored = [r for r in rows if r["mean"] is not None]
    if not scored:
        raise BadInput(f"{ResultsDir(root).runs}: no from-scratch run of the sweep has a finite dev metric")
    best = max(scored, key=lambda r: r["mean"])  # the first of equals: rates in the order given
    metrics = sorted({i.primary_metric for i in read.values() if i.primary_metric})
    out = {
        "task": task,
        "metric": metrics[0] if metrics else None,
        "rule": "the rate with the best mean dev metric over the selection seeds",
        "rates": rows,
        "chosen_arm": best["arm"],
        "chosen_lr": best["lr"],
    }
    write_json_atomic(ResultsDir(root).sweep, out)
    return out


def read_sweep(root: Path) -> dict:
    path = ResultsDir(root).sweep
    try:
        out = json.loads(path.read_text())
        return out | {"chosen_arm": str(out["chosen_arm"])}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{path}: not a learning-rate sweep record ({err})") from None


def run_name(task: str, arm: str, seed: int) -> str:
    """A demo run's (and its surfaces' and analyses') name: `<task>_<init>_seed<seed>`, or
    `<task>_scratch_lr<lr>_seed<seed>` in a scratch learning-rate sweep."""
    return f"{task}_{arm}_seed{seed}"


def _arms(inits: list[str], scratch_lrs) -> dict[str, tuple[str, float | None]]:
    """Each arm's label -> (init, learning rate): with `scratch_lrs` (a sweep, ≥ 2 rates) one scratch
    arm per rate, labelled scratch_lr<lr> (the report compares pretrained against the best rate)."""
    out: dict[str, tuple[str, float | None]] = {}
    for init in inits:
        if init == "scratch" and scratch_lrs:
            try:
                rates = [float(x) for x in scratch_lrs]
            except (TypeError, ValueError):
                raise BadInput(f"scratch_lrs={scratch_lrs}: give a list of learning rates") from None
            if len(set(rates)) != len(rates) or any(r <= 0 for r in rates):
                raise BadInput(f"scratch_lrs={scratch_lrs}: give distinct positive learning rates")
            out |= {f"scratch_lr{r:g}": ("scratch", r) for r in rates}
        else:
            out[init] = (init, None)
    return out


def _seeds(value) -> list[int]:
    """The demo's seeds (replicates of every (task, init)): a non-empty list of distinct integers."""
    if isinstance(value, (int, str)) or value is None:
        value = [value]
    try:
        seeds = [int(s) for s in value]
    except (TypeError, ValueError):
        raise BadInput(f"seeds={value}: give a list of integers, e.g. seeds=[0,1,2]") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise BadInput(f"seeds={value}: give a non-empty list of distinct integers, e.g. seeds=[0,1,2]")
    return seeds


def _check_axis(name: str, axis: dict) -> None:
    """θ0 (α=0) and θ1 (α=1) must be grid points: the flatness and the claims read the surface there."""
    import numpy as np

    xs = np.linspace(float(axis["min"]), float(axis["max"]), int(axis["num"]))
    missing = [a for a in (0.0, 1.0) if not np.isclose(xs, a).any()]
    if missing:
        raise BadInput(
            f"{name}: {axis['num']} points on [{axis['min']}, {axis['max']}] miss α = "
            f"{', '.join(f'{a:g}' for a in missing)} "
            "(θ0 and θ1 must be grid points; e.g. num=9 on [-0.5, 1.5])"
        )


def analysis_overrides(name: str, run: Path, line: Path, plane: Path, out: Path) -> list[str]:
    """The bertviz-analyze overrides of one analysis of the demo's main-task run: what its spec
    reads (analysis/spec.py), in its order — the run, and its surface (the line or the plane)."""
    given = {"run": f"run={run}", "line": f"surface={line}", "plane": f"surface={plane}"}
    return [f"analysis={name}", f"output={out}", *(given[r] for r in registry.get(name).reads)]


def matched_control(name: str, arm: str, arms: dict[str, tuple[str, float | None]]) -> str | None:
    """The scratch arm a pretrained run is matched against (an analysis whose spec says `matched`,
    e.g. flatness: its training loss at θ1): the preset's rate when it is one of the arms, else the
    first rate of the sweep; None otherwise."""
    if not registry.get(name).matched or arms[arm][0] != "pretrained":
        return None
    scratch = [a for a, (init, _) in arms.items() if init == "scratch"]
    return "scratch" if "scratch" in scratch else (scratch[0] if scratch else None)


def run_analysis(overrides: list[str]):
    return analyze(compose("analyze", overrides))


def _train_data(overrides: list[str]) -> _Lazy:
    """The examples a train stage reads, by content (the TSVs' hashes, as the run's own fingerprint
    takes them): data edited in place re-run the stage, so a finished demo never reports on stale runs."""

    def stamp() -> dict:
        cfg = compose("train", overrides)
        return data_fingerprint(get_task(cfg.task.name), cfg.data.get("glue_dir"))

    return _Lazy(stamp)


def _file_stamp(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        return {"path": str(path), "exists": False}
    return {"path": str(path), **file_fingerprint(path)}  # by content: a copy is the same file


class _Lazy:
    """A part of a stage's spec read from the disk when the digest is taken (json.dumps(default=str)
    calls str()), not when the stages are built — a run trained by an earlier stage of the same
    pipeline is seen as it is once that stage has finished."""

    def __init__(self, fn):
        self.fn = fn

    def __str__(self) -> str:
        return json.dumps(self.fn(), sort_keys=True, default=str)


def _run_stamp(run: Path) -> _Lazy:
    return _Lazy(lambda: {"run": str(run), "metrics": _file_stamp(RunDir(run).metrics_json)})


def _tree_stamp(root: Path, subdirs: tuple[str, ...]) -> _LazyStamp:
    """The contents of the files a late stage reads, taken when the digest is taken."""
    return _LazyStamp(root, subdirs)


class _LazyStamp:
    def __init__(self, root: Path, subdirs: tuple[str, ...]):
        self.root, self.subdirs = root, subdirs

    def __str__(self) -> str:  # json.dumps(default=str) calls this when the digest is taken
        parts = []
        for sub in self.subdirs:
            d = self.root / sub
            if d.is_dir():
                for p in sorted(d.rglob("*")):
                    if (
                        p.is_file()
                        and p.suffix in (".h5", ".json")
                        and not any(x.startswith(".") for x in p.relative_to(self.root).parts)
                    ):
                        if sub == RUNS and p.name != METRICS_NAME:
                            continue
                        parts.append(f"{p.relative_to(self.root)}:{json.dumps(_known_fingerprint(p))}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


_FINGERPRINTS: dict[tuple, dict] = {}  # this process's file_fingerprint by (path, inode, size, mtime)


def _known_fingerprint(path: Path) -> dict:
    """file_fingerprint(path), hashed once per version of the file in this process: the late
    stages (figures, W&B, report) stamp the same surfaces and analyses (was ~4 s each)."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = file_fingerprint(path)
    return _FINGERPRINTS[key]


def _figures(root: Path) -> None:
    draw_all(root, ResultsDir(root).figures)


def _wandb(root: Path, c: dict) -> None:
    log_results(root, wandb_cfg=c.get("wandb") or {}, wandb_dir=root)


def _report(root: Path, plan: dict | None, results_doc: str | None) -> None:
    write_report(root, plan, results_doc)


def plan_document(c: dict) -> dict | None:
    """The analysis plan this configuration registers: the preset's plan (``plan``) and the design it
    runs — seeds, selection seeds, tasks, inits, learning rates, the analyses and their thresholds."""
    if not c.get("plan"):
        return None
    design = {
        "seeds": list(c.get("seeds") or []),
        "select_seeds": (c.get("scratch_sweep") or {}).get("select_seeds") if c.get("scratch_lrs") else None,
        "scratch_lrs": c.get("scratch_lrs"),
        "tasks": list(c.get("tasks") or []),
        "inits": list(c.get("inits") or []),
        "analyses": list(c.get("analyses") or []),
        "analysis_overrides": c.get("analysis_overrides") or {},
    }
    return dict(c["plan"]) | {"design": design}


def freeze_plan(root: Path, c: dict, say=print) -> None:
    """Freeze the plan into <root> before the first stage; a different frozen plan stays and its
    changes are said (the report under the new plan is exploratory and names them)."""
    doc = plan_document(c)
    if doc is None:
        return
    changed = freeze(root, doc)
    if changed:
        say(
            f"[demo] the analysis plan differs from the one frozen in {ResultsDir(root).plan_json} "
            "(not overwritten): "
            + "; ".join(f"{k}: {fmt_value(a)} -> {fmt_value(b)}" for k, a, b in changed[:8])
            + (f"; +{len(changed) - 8} more" if len(changed) > 8 else "")
            + " — the report will be exploratory"
        )


def run_demo(cfg: DictConfig, out=None, quiet: bool = True) -> list[dict]:
    """Run every stage of the demo (skipping finished ones); `quiet`: the stages' own output goes
    to <output_dir>/demo.log, the console gets one line per stage."""
    root = Path(cfg.output_dir)
    root.mkdir(parents=True, exist_ok=True)
    stages = build_stages(cfg)
    pipeline = Pipeline(root, out, ResultsDir(root).demo_log if quiet else None)
    freeze_plan(root, OmegaConf.to_container(cfg, resolve=True), pipeline._print)
    write_json_atomic(ResultsDir(root).notes, [str(n) for n in cfg.get("report_notes") or []])
    done = pipeline.run(stages)
    if stages and stages[-1].name.startswith(SELECT_STAGE):  # the sweep's best rate, then the rest
        sweep = read_sweep(root)
        pipeline._print(
            f"[demo] from-scratch learning rates on {sweep['task']}: "
            + ", ".join(f"{r['lr']:g} (mean dev {_g(r['mean'])})" for r in sweep["rates"])
            + f"; analysing {sweep['chosen_lr']:g}"
        )
        done += pipeline.run(build_stages(cfg, selected=sweep["chosen_arm"]))
    return done


def _g(v) -> str:
    return "–" if v is None else f"{v:.4f}"


def run_quietly(cfg: DictConfig) -> list[dict]:
    """`run_demo` with the libraries' logs at WARNING (the console gets one line per stage)."""
    for name in ("bertviz_landscape", "pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("WANDB_SILENT", "true")
    return run_demo(cfg)


main = command("bertviz-demo", "demo", run_quietly)


if __name__ == "__main__":
    main()
