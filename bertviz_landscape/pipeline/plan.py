"""The paper's experiment plan: the demo's design and its requests → the stages that run it.

Every (task, arm) is run once per seed of ``seeds`` (replicates: from scratch a seed draws θ0 —
``init.seed`` —, pretrained it draws the head; for both it draws the data order and dropout —
``seed``; with ``init_seed`` set θ0 is drawn from it for every seed, so the runs of an arm share
θ0). ``<name>`` below is ``<task>_<arm>_seed<seed>`` (`run_name`). Stages, one progress line each::

    train     <name>              runs/<name>/                    the training (resumes from its last epoch)
    line      <name>              surfaces/<name>_line.h5         1D curve along δ1 (main task)
    plane     <name>              surfaces/<name>_plane.h5        2D train+dev surface on (δ1, δ2),
                                                                 δ2 from the same seed's second-task run
    <analysis> <name>             analysis/<analysis>_<name>.json one per analysis of the design
    figures                       figures/ (+ figures.json)       every figure the directory supports
    wandb                         wandb/ (offline runs)           curves, surfaces, artifacts, numbers
    report                        report.md, report.html, results.md (+ the copy at ``results_doc``)

`Design` is conf/demo.yaml as plain values (checked once); its analyses are every registered one
(analysis/registry.py) unless the design names them (``analyses``) or leaves some out
(``exclude_analyses``). `Requests` are typed requests composed from the YAML by the cli floor
(cli/demo.py) once per kind: the training config of each (task, arm), the line's and the plane's
`LandscapeRequest`, each analysis's `AnalyzeRequest` with its budget; the plan gives each stage its
own copy with the stage's runs, surfaces, outputs and seeds filled in, and the stage calls the
engine, the analysis or the publisher with it directly. A stage's record digests its request (its
canonical JSON, pipeline/runner.py) and the files it reads (the outputs of the stages it follows).

A scratch learning-rate sweep analysed at its best rate only (``scratch_sweep.analyse=best``) is
two lists of stages: the selection (the main task trained at every rate on the selection seeds,
then ``select scratch lr`` writing lr_sweep.json: pipeline/lr_sweep.py), then everything else at
the chosen rate (`build_stages(..., selected=arm)`).

The learning-rate sweep of both inits (``lr_sweep: true``; the plan's ``lr_sweep`` and ``seeds``,
contracts/lr_sweep.py; make replicate) is rounds of selection stages, then the comparison: round 0
trains the main task for every init at every rate of the plan on the selection seeds
(``<task>_<init>_lr<lr>_seed<s>``), then ``select lr <task>`` records lr_sweep.json (format 2);
while an init's best rate is at an edge of its sweep (and it had fewer than ``extend_at_edge``
extensions) a further round trains one more rate beyond that edge on the selection seeds and
records again (``select lr <task> (extension <k>)``; `sweep_stages`); then everything else runs on
the confirmation seeds only, each init at its chosen rate (`Design.at_rates`). ``rates_from`` (make
replicate-overfit) trains each init at the rate another results directory's sweep chose (the
preset's rate for an init it did not sweep). ``surfaces: false`` trains the main task only and
runs the analyses on the runs alone (no second task, no line or plane).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.contracts import lr_sweep
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.request import LandscapeRequest
from bertviz_landscape.engine.sweep import run_landscape
from bertviz_landscape.pipeline.lr_sweep import record_sweep, write_sweep
from bertviz_landscape.pipeline.runner import Stage
from bertviz_landscape.pipeline.work import metered
from bertviz_landscape.plots.results import draw_all
from bertviz_landscape.publish.publisher import analyze_and_log, log_results, write_report
from bertviz_landscape.publish.wandb_media import log_surface
from bertviz_landscape.training.data.glue import data_fingerprint
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.train import RunConfigError, train

log = logging.getLogger("bertviz_landscape.pipeline")

SELECT_STAGE = "select scratch lr"  # the stage that ends a sweep's first phase
SWEEP_STAGE = "select lr"  # the stage that ends each round of the sweep of both inits
METRICS_NAME = RunDir("run").metrics_json.name  # a run's results file (the one the late stages read)


# --- the names of the demo's files inside its results directory (one place) -----------------------
def run_name(task: str, arm: str, seed: int) -> str:
    """A demo run's (and its surfaces' and analyses') name: `<task>_<init>_seed<seed>`, or
    `<task>_scratch_lr<lr>_seed<seed>` in a scratch learning-rate sweep."""
    return f"{task}_{arm}_seed{seed}"


def run_path(root: Path, name: str) -> Path:
    return ResultsDir(root).run(name)


def surface_path(root: Path, name: str, kind: str) -> Path:
    return ResultsDir(root).surface(f"{name}_{kind}")


def analysis_path(root: Path, analysis: str, name: str) -> Path:
    return ResultsDir(root).analysis_json(analysis, name)


def late_outputs(root: Path) -> dict[str, list[Path]]:
    rd = ResultsDir(root)
    return {"figures": [rd.catalogue], "wandb": [rd.logged], "report": [rd.report_md, rd.report_html]}


# --- the design ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    min: float
    max: float
    num: int

    def check(self, name: str) -> None:
        """θ0 (α=0) and θ1 (α=1) must be grid points: the flatness and the claims read them there."""
        xs = np.linspace(float(self.min), float(self.max), int(self.num))
        missing = [a for a in (0.0, 1.0) if not np.isclose(xs, a).any()]
        if missing:
            raise BadInput(
                f"{name}: {self.num} points on [{self.min}, {self.max}] miss α = "
                f"{', '.join(f'{a:g}' for a in missing)} "
                "(θ0 and θ1 must be grid points; e.g. num=9 on [-0.5, 1.5])"
            )


@dataclass(frozen=True)
class Sweep:
    """The learning-rate sweep of both inits the plan registers (its ``lr_sweep`` and ``seeds``;
    contracts/lr_sweep.py): every rate of an init on every selection seed, one more rate beyond an
    edge at most ``extend_at_edge`` times, then the comparison on the confirmation seeds only."""

    rates: dict[str, tuple[float, ...]]  # init -> the rates tried first (ascending)
    extend_at_edge: int
    select: tuple[int, ...]
    confirm: tuple[int, ...]


def rate_arm(init: str, lr: float) -> str:
    """The label of an init trained at a swept rate: ``<init>_lr<lr>`` (its runs' names say the rate)."""
    return f"{init}_lr{lr:g}"


@dataclass(frozen=True)
class Design:
    """What the demo runs (conf/demo.yaml, plain values; `from_config` checks them)."""

    root: Path
    # (main task, second task): δ1 from the main task, δ2 from the second; (main task,) without surfaces
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    arms: dict[str, tuple[str, float | None]]  # arm label -> (init, learning rate; None: the preset's)
    analyses: tuple[str, ...] = ()
    both_ways: bool = False  # also the second task as a main task (δ2 from the first)
    init_seed: int | None = None  # θ0's seed for every seed; None: init.seed = seed
    select_seeds: tuple[int, ...] | None = None  # a sweep analysed at its best rate: its selection seeds
    figures: bool = True
    wandb_media: bool = True
    report: bool = True
    wandb: dict = field(default_factory=dict)
    plan: dict | None = None  # the analysis plan document (`plan_document`), frozen before the first stage
    results_doc: str | None = None
    notes: tuple[str, ...] = ()
    sweep: Sweep | None = None  # lr_sweep: true — the plan's sweep of both inits, then the comparison
    surfaces: bool = True  # False: the main task only, no line or plane; the analyses read the runs
    # rates_from: {"dir", "doc" (its sweep record, copied into root), "chosen" (init -> rate)}
    rates_from: dict | None = None

    @classmethod
    def from_config(cls, c: Mapping[str, Any]) -> Design:
        """The design of a resolved demo config (conf/demo.yaml as plain values)."""
        tasks = list(c["tasks"])
        surfaces = bool(c.get("surfaces", True))
        if surfaces and len(tasks) != 2:
            raise BadInput(f"tasks={tasks}: give [main task, second task] (the second task's runs give δ2)")
        if not surfaces and len(tasks) != 1:
            raise BadInput(
                f"tasks={tasks}: surfaces=false trains the main task only (no δ2): give tasks=[<main task>]"
            )
        if surfaces:
            ls = c["landscape"]
            Axis(**ls["line"]).check("landscape.line")
            Axis(**ls["plane"]["x"]).check("landscape.plane.x")
        seeds = _seeds(c.get("seeds"))
        inits = list(c["inits"])
        sweep = _sweep(c, inits, seeds)
        taken = _rates_from(c, inits)
        if sweep is not None and taken is not None:
            raise BadInput("lr_sweep=true and rates_from: give one (the sweep chooses the rates itself)")
        arms = _arms(inits, c.get("scratch_lrs"))
        if taken is not None:
            arms = _taken_arms(inits, taken)
        init_seed = c.get("init_seed")
        return cls(
            root=Path(c["output_dir"]),
            tasks=tuple(tasks),
            seeds=tuple(seeds),
            arms=arms,
            analyses=tuple(demo_analyses(c)),
            both_ways=bool(c.get("both_ways")),
            init_seed=None if init_seed is None else int(init_seed),
            select_seeds=_select_seeds(c, arms, seeds),
            figures=bool(c.get("figures", True)),
            wandb_media=bool(c.get("wandb_media", True)),
            report=bool(c.get("report", True)),
            wandb=dict(c.get("wandb") or {}),
            plan=plan_document(c),
            results_doc=c.get("results_doc"),
            notes=tuple(str(n) for n in c.get("report_notes") or []),
            sweep=sweep,
            surfaces=surfaces,
            rates_from=taken,
        )

    @property
    def pairs(self) -> list[tuple[str, str | None]]:
        """(main task, second task) pairs: the main task's surfaces and analyses, δ2 from the
        second's runs; `both_ways` adds the swapped pair. Without surfaces: (main task, None)."""
        if not self.surfaces:
            return [(self.tasks[0], None)]
        main, second = self.tasks
        return [(main, second)] + ([(second, main)] if self.both_ways else [])

    def at_rates(self, chosen: Mapping[str, float]) -> Design:
        """The comparison after a learning-rate sweep: each init at its chosen rate (arms
        ``<init>_lr<lr>``, `rate_arm`), on the confirmation seeds only, no sweep."""
        if self.sweep is None:
            raise BadInput("at_rates: this design has no learning-rate sweep")
        missing = [i for i in self.inits if i not in chosen]
        if missing:
            raise BadInput(f"the learning-rate sweep chose no rate for {', '.join(missing)}")
        arms = {rate_arm(i, float(chosen[i])): (i, float(chosen[i])) for i in self.inits}
        return dataclasses.replace(self, arms=arms, seeds=self.sweep.confirm, sweep=None)

    @property
    def inits(self) -> list[str]:
        """The inits of the arms, in order (each once)."""
        return list(dict.fromkeys(init for init, _ in self.arms.values()))

    @property
    def mains(self) -> list[str]:
        return [m for m, _ in self.pairs]

    @property
    def rates(self) -> list[str]:
        """The scratch arms of a learning-rate sweep (each with its own rate)."""
        return [a for a, (init, lr) in self.arms.items() if init == "scratch" and lr is not None]

    def is_second(self, task: str) -> bool:
        """A task whose runs only span δ2 (trained with ``train.second_task``)."""
        return task not in self.mains

    def init_seed_of(self, seed: int) -> int:
        return seed if self.init_seed is None else self.init_seed

    def matched_control(self, analysis: str, arm: str, arms: Mapping | None = None) -> str | None:
        """The scratch arm a pretrained run is matched against (an analysis whose spec says
        `matched`, e.g. flatness: its training loss at θ1), among `arms` (default: every arm): the
        preset's rate when it is one of them, else the sweep's first; None otherwise."""
        arms = self.arms if arms is None else arms
        if not registry.get(analysis).matched or arms[arm][0] != "pretrained":
            return None
        scratch = [a for a, (init, _) in arms.items() if init == "scratch"]
        return "scratch" if "scratch" in scratch else (scratch[0] if scratch else None)

    def partner(self, analysis: str, seed: int) -> int | None:
        """The next seed, cyclically, for an analysis whose spec pairs runs (`partner`)."""
        if not registry.get(analysis).partner or len(self.seeds) < 2:
            return None
        return self.seeds[(self.seeds.index(seed) + 1) % len(self.seeds)]


def demo_analyses(c: Mapping[str, Any]) -> list[str]:
    """The analyses the demo runs: ``analyses`` when the config lists them (in its order), else every
    registered analysis — those with a budget in ``analysis_overrides`` in its order, then the others
    in the registry's — less ``exclude_analyses``."""
    known = registry.names()
    listed = c.get("analyses")
    if listed is not None:
        names = [registry.get(str(n)).name for n in listed]
    else:
        budgets = [str(n) for n in (c.get("analysis_overrides") or {}) if n in known]
        names = budgets + [n for n in known if n not in budgets]
    excluded = [registry.get(str(n)).name for n in c.get("exclude_analyses") or []]
    return [n for n in names if n not in excluded]


def plan_document(c: Mapping[str, Any]) -> dict | None:
    """The analysis plan this configuration registers: the preset's plan (``plan``) and the design it
    runs — seeds, selection seeds, tasks, inits, learning rates, the analyses and their thresholds.
    With the plan's learning-rate sweep (``lr_sweep: true``) or rates taken from one (``rates_from``)
    the design also names the selection seeds (the plan's ``seeds.select``) and the confirmation
    seeds it runs (``seeds``), so that the plan check refuses a shared seed before anything runs;
    ``rates_from`` adds the directory and each init's rate taken from it."""
    if not c.get("plan"):
        return None
    design = {
        "seeds": list(c.get("seeds") or []),
        "select_seeds": (c.get("scratch_sweep") or {}).get("select_seeds") if c.get("scratch_lrs") else None,
        "scratch_lrs": c.get("scratch_lrs"),
        "tasks": list(c.get("tasks") or []),
        "inits": list(c.get("inits") or []),
        "analyses": demo_analyses(c),
        "analysis_overrides": c.get("analysis_overrides") or {},
    }
    if c.get("lr_sweep") or c.get("rates_from"):
        design["select_seeds"] = list(((c["plan"].get("seeds") or {}).get("select")) or [])
        design["confirm_seeds"] = list(c.get("seeds") or [])
    if c.get("lr_sweep"):
        design["lr_sweep"] = True
    if c.get("rates_from"):
        taken = _rates_from(c, list(c.get("inits") or []))
        design["rates_from"] = str(c["rates_from"])
        design["rates"] = {
            init: (taken or {}).get("chosen", {}).get(init) for init in list(c.get("inits") or [])
        }
        design["experiment"] = (c.get("train") or {}).get("experiment")
    if not c.get("surfaces", True):
        design["surfaces"] = False
    return dict(c["plan"]) | {"design": design}


def _sweep(c: Mapping[str, Any], inits: list[str], seeds: list[int]) -> Sweep | None:
    """``lr_sweep: true``: the plan's sweep of both inits (contracts/lr_sweep.check_config), run on
    its ``seeds.select``; the demo's ``seeds`` must be the plan's ``seeds.confirm`` (the comparison's)."""
    if not c.get("lr_sweep"):
        return None
    plan = c.get("plan") or {}
    cfg, planned = plan.get("lr_sweep"), plan.get("seeds") or {}
    if cfg is None:
        raise BadInput(f"lr_sweep=true: the plan ({plan.get('preset')!r}) registers no lr_sweep")
    if c.get("scratch_lrs"):
        raise BadInput("lr_sweep=true and scratch_lrs: give one (the plan's sweep covers every init)")
    select, confirm = list(planned.get("select") or []), list(planned.get("confirm") or [])
    try:
        lr_sweep.check_config(dict(cfg), select)
    except ValueError as err:
        raise BadInput(f"the plan's {err}") from None
    if list(seeds) != confirm:
        raise BadInput(
            f"seeds={list(seeds)} differ from the plan's seeds.confirm {confirm}: the comparison runs on the "
            "confirmation seeds the plan registers (seeds: ${plan.seeds.confirm})"
        )
    missing = [i for i in inits if i not in cfg["rates"]]
    if missing:
        raise BadInput(f"the plan's lr_sweep.rates has no rates for {', '.join(missing)}")
    return Sweep(
        {i: tuple(sorted(float(r) for r in cfg["rates"][i])) for i in inits},
        int(cfg.get("extend_at_edge", 0)),
        tuple(int(s) for s in select),
        tuple(int(s) for s in confirm),
    )


def _rates_from(c: Mapping[str, Any], inits: list[str]) -> dict | None:
    """``rates_from: <results dir>``: each init's rate chosen by that directory's learning-rate sweep
    (its lr_sweep.json, either format); an init it did not sweep keeps the preset's rate (None).
    None without ``rates_from``; {"doc": None, ...} when the directory has no record (every init at
    the preset's rate)."""
    where = c.get("rates_from")
    if not where:
        return None
    if c.get("scratch_lrs"):
        raise BadInput("rates_from and scratch_lrs: give one")
    doc = lr_sweep.read(where)
    arms = (doc or {}).get("arms") or {}
    chosen = {
        i: float(arms[i]["chosen_lr"]) for i in inits if (arms.get(i) or {}).get("chosen_lr") is not None
    }
    return {"dir": str(where), "doc": doc, "chosen": chosen}


def _taken_arms(inits: list[str], taken: dict) -> dict[str, tuple[str, float | None]]:
    """The arms of ``rates_from``: ``<init>_lr<lr>`` at a rate its sweep chose, else the preset's."""
    chosen = taken["chosen"]
    return {(rate_arm(i, chosen[i]) if i in chosen else i): (i, chosen.get(i)) for i in inits}


def _select_seeds(c: Mapping[str, Any], arms: dict, seeds: list[int]) -> tuple[int, ...] | None:
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
        return tuple(seeds)
    picked = _seeds(chosen)
    if not set(picked) <= set(seeds):
        raise BadInput(f"scratch_sweep.select_seeds={picked}: not a subset of seeds={seeds}")
    return tuple(picked)


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


# --- the requests ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Requests:
    """The requests the stages specialise, composed from the YAML by the cli floor (cli/demo.py)."""

    training: Mapping[tuple[str, str], dict]  # (task, arm) -> its training config (seeds set per stage)
    line: LandscapeRequest  # the 1D curve along δ1 (run and output set per stage)
    plane: LandscapeRequest  # the 2D surface on (δ1, δ2) (run, run2 and output set per stage)
    analyses: Mapping[str, AnalyzeRequest]  # each analysis with the demo's budget (its inputs set per stage)


@dataclass(frozen=True)
class Training:
    """One training run: its config (a composed conf/train.yaml as plain values, interpolations
    kept), its directory and the examples it reads, by content."""

    config: dict
    run: Path
    data: dict | None


def with_value(obj: Any, dotted: str, value: Any) -> Any:
    """A copy of the request (or mapping) `obj` with the key `dotted` (``a.b.c``) set to `value`:
    a dataclass through `dataclasses.replace` (its checks run again), a mapping copied."""
    head, _, rest = dotted.partition(".")
    if rest:
        inner = getattr(obj, head) if dataclasses.is_dataclass(obj) else (obj.get(head) or {})
        value = with_value(inner, rest, value)
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **{head: value})
    out = copy.deepcopy(obj) if isinstance(obj, dict) else dict(obj)
    out[head] = value
    return out


def _omega(config: dict):
    cfg = OmegaConf.create(config)
    OmegaConf.set_struct(cfg, True)
    return cfg


def _examples(config: dict) -> dict | None:
    """The examples a training config reads, by content (the TSVs' hashes, as the run's own
    fingerprint takes them): data edited in place re-run the stage."""
    cfg = _omega(config)
    try:
        return data_fingerprint(get_task(cfg.task.name), cfg.data.get("glue_dir"))
    except OSError:  # a missing data file: the training says so
        return None


def compute_surface(request: LandscapeRequest):
    """A landscape stage: the engine's surface, then (``wandb.enabled``) its W&B media."""
    result = run_landscape(request)
    if result.surface and request.wandb.enabled:
        log_surface(result.surface, request.to_dict())
    return result


# --- the stages -----------------------------------------------------------------------------------
def build_stages(design: Design, requests: Requests, selected: str | Mapping | None = None) -> list[Stage]:
    """The demo's stages. With a scratch learning-rate sweep analysed at its best rate only
    (``design.select_seeds``) this is two lists: without `selected`, the selection stages (the main
    task trained at every rate on the selection seeds, then ``select scratch lr`` writing
    lr_sweep.json); with `selected` (the chosen arm, e.g. ``scratch_lr0.0003``), everything else,
    for the pretrained arm and the chosen rate (run_demo runs one, then the other). With the plan's
    sweep of both inits (``design.sweep``): without `selected`, its first round (`sweep_stages`);
    with `selected` ({init: chosen rate}), the comparison on the confirmation seeds (`Design.at_rates`)."""
    if design.sweep is not None:
        if selected is None:
            return sweep_stages(design, requests, {i: list(r) for i, r in design.sweep.rates.items()})
        if not isinstance(selected, Mapping):
            raise BadInput(f"the learning-rate sweep of both inits chooses a rate per init, got {selected!r}")
        design = design.at_rates(selected)
    root, seeds, arms = design.root, list(design.seeds), design.arms
    if design.select_seeds is not None:
        if selected is None:
            return _selection_stages(design, requests)
        if selected not in design.rates:
            raise BadInput(
                f"{ResultsDir(root).sweep}: chosen arm {selected!r} is not one of {', '.join(design.rates)}"
            )
        arms = {a: v for a, v in arms.items() if a not in design.rates or a == selected}
    tasks, inits = design.tasks, list(arms)
    runs = {(t, i, s): run_path(root, run_name(t, i, s)) for t in tasks for i in inits for s in seeds}
    surf = {
        (m, kind, i, s): surface_path(root, run_name(m, i, s), kind)
        for m in design.mains
        for kind in ("line", "plane")
        for i in inits
        for s in seeds
        if design.surfaces
    }
    stages = [
        train_stage(design, requests, task, arm, seed, runs[(task, arm, seed)])
        for seed in seeds
        for task in tasks
        for arm in inits
    ]
    for (main, second), seed in itertools.product(design.pairs if design.surfaces else [], seeds):
        for init in inits:
            name = run_name(main, init, seed)
            run, run2 = runs[(main, init, seed)], runs[(second, init, seed)]
            line = dataclasses.replace(requests.line, run=run, output=surf[(main, "line", init, seed)])
            plane = dataclasses.replace(
                requests.plane, run=run, run2=run2, output=surf[(main, "plane", init, seed)]
            )
            for kind, request, reads in (("line", line, [run]), ("plane", plane, [run, run2])):
                stages.append(
                    Stage(
                        f"{kind} {name}",
                        request,
                        [surf[(main, kind, init, seed)]],
                        lambda request=request: compute_surface(request),
                        inputs=[RunDir(r).metrics_json for r in reads],
                    )
                )

    for analysis in design.analyses:
        for main, seed in itertools.product(design.mains, seeds):
            for init in inits:
                name = run_name(main, init, seed)
                out = analysis_path(root, analysis, name)
                run = runs[(main, init, seed)]
                line, plane = surf.get((main, "line", init, seed)), surf.get((main, "plane", init, seed))
                request = with_value(requests.analyses[analysis], "output", str(out))
                given = {"run": ("run", run), "line": ("surface", line), "plane": ("surface", plane)}
                for kind in registry.get(analysis).reads:  # its run and the surface it reads (if any)
                    key, path = given[kind]
                    if path is not None:
                        request = with_value(request, key, str(path))
                reads = [run]
                control = design.matched_control(analysis, init, arms)
                if control is not None:  # the pretrained run measured where the same seed's scratch run ends
                    request = with_value(request, "analysis.matched.run", str(runs[(main, control, seed)]))
                    reads.append(runs[(main, control, seed)])
                partner = design.partner(analysis, seed)
                if partner is not None:  # the next seed's run of the same arm
                    request = with_value(request, "analysis.partner.run", str(runs[(main, init, partner)]))
                    reads.append(runs[(main, init, partner)])
                stages.append(
                    Stage(
                        f"{analysis} {name}",
                        request,
                        [out],
                        lambda request=request: analyze_and_log(request),
                        inputs=[*(RunDir(r).metrics_json for r in reads), *(p for p in (line, plane) if p)],
                    )
                )
    # train, line, plane and analysis stages record their useful work (pipeline/work.py)
    return [metered(s) for s in stages] + late_stages(design, stages)


def late_stages(design: Design, upstream: list[Stage]) -> list[Stage]:
    """figures, wandb, report: each reads every output of the stages before it (runs by their
    metrics.json)."""
    root, outputs = design.root, late_outputs(design.root)
    made = [Path(p) for s in upstream for p in s.outputs if Path(p).suffix in (".h5", ".json")]
    numbers = [p for p in made if p.name != METRICS_NAME]  # the surfaces and analyses
    out = []
    if design.figures:
        out.append(
            Stage(
                "figures",
                {"after": [s.name for s in upstream]},
                outputs["figures"],
                lambda: draw_all(root, ResultsDir(root).figures),
                inputs=made,
            )
        )
    if design.wandb_media:
        out.append(
            Stage(
                "wandb",
                {"after": [s.name for s in upstream], "wandb": design.wandb},
                outputs["wandb"],
                lambda: log_results(root, wandb_cfg=design.wandb, wandb_dir=root),
                inputs=numbers,
            )
        )
    if design.report:
        out.append(
            Stage(
                "report",
                {
                    "after": [s.name for s in upstream],
                    "plan": design.plan,
                    "results_doc": design.results_doc,
                    "notes": list(design.notes),
                },
                outputs["report"],
                lambda: write_report(root, design.plan, design.results_doc),
                inputs=[*numbers, *outputs["figures"], ResultsDir(root).sweep],
            )
        )
    return out


def train_stage(design: Design, requests: Requests, task: str, arm: str, seed: int, run: Path) -> Stage:
    """The training of one (task, arm, seed). A seed is a replicate: from scratch it draws θ0
    (init.seed), pretrained the head (init.seed), and for both the data order and dropout (seed);
    the second task's run of a seed shares that seed's θ0. With the design's ``init_seed`` θ0 is
    drawn from it for every seed (runs of one arm share θ0; a seed draws the data order and
    dropout only: what analysis=basins needs)."""
    config = with_value(training_config(design, requests, task, arm), "seed", seed)
    config = with_value(config, "init.seed", design.init_seed_of(seed))
    request = Training(config, run, _examples(config))

    def action():
        try:
            train(_omega(config), run)
        except RunConfigError:  # the demo's settings changed since this run: the demo's own run is retrained
            log.warning("%s was trained with other settings; retraining it", run)
            train(_omega(with_value(config, "force", True)), run)

    return Stage(
        f"train {run_name(task, arm, seed)}", request, [RunDir(run).metrics_json, RunDir(run).theta1], action
    )


def training_config(design: Design, requests: Requests, task: str, arm: str) -> dict:
    """The training config of (task, arm): the one composed for it, else (an arm at a rate chosen
    after composing: a sweep's) its init's with ``init.lr`` set to the arm's rate — what composing
    with ``init.lr=<rate>`` gives."""
    if (task, arm) in requests.training:
        return requests.training[(task, arm)]
    init, lr = design.arms[arm]
    if (task, init) not in requests.training:
        raise BadInput(f"no training config for {task} {arm} (nor for its init {init})")
    base = requests.training[(task, init)]
    return base if lr is None else with_value(base, "init.lr", float(lr))


def sweep_stages(
    design: Design,
    requests: Requests,
    rates: Mapping[str, list[float]],
    new: Mapping[str, list[float]] | None = None,
    extended: Mapping[str, list[float]] | None = None,
    round_: int = 0,
) -> list[Stage]:
    """One round of the plan's learning-rate sweep of both inits (``design.sweep``): the main task
    trained at each `new` rate (default: every rate) of each init on every selection seed, then the
    record of every rate tried so far (`rates`, `extended`: those added beyond an edge) in
    lr_sweep.json (pipeline/lr_sweep.py `record_sweep`): ``select lr <task>`` in round 0,
    ``select lr <task> (extension <k>)`` after."""
    sweep = design.sweep
    if sweep is None:
        raise BadInput("sweep_stages: this design has no learning-rate sweep")
    root, main = design.root, design.tasks[0]
    new = rates if new is None else new
    arms = {rate_arm(i, lr): (i, lr) for i, rs in rates.items() for lr in rs}
    at = dataclasses.replace(design, arms=arms, seeds=sweep.select)
    runs = {
        (i, lr, s): run_path(root, run_name(main, rate_arm(i, lr), s))
        for i, lr in arms.values()
        for s in sweep.select
    }
    stages = [
        metered(train_stage(at, requests, main, rate_arm(i, lr), s, runs[(i, lr, s)]))
        for i, rs in new.items()
        for lr in rs
        for s in sweep.select
    ]
    extended = {i: list((extended or {}).get(i) or []) for i in rates}
    name = f"{SWEEP_STAGE} {main}" + (f" (extension {round_})" if round_ else "")
    stages.append(
        Stage(
            name,
            {
                "runs": {f"{i} {lr:g} {s}": str(r) for (i, lr, s), r in runs.items()},
                "select": list(sweep.select),
                "confirm": list(sweep.confirm),
                "extended": extended,
                "rule": lr_sweep.RULE,
            },
            [ResultsDir(root).sweep],
            lambda: record_sweep(root, main, runs, sweep.select, sweep.confirm, extended, write=True),
            inputs=[RunDir(r).metrics_json for r in runs.values()],
        )
    )
    return stages


def _selection_stages(design: Design, requests: Requests) -> list[Stage]:
    root, main, rates = design.root, design.tasks[0], design.rates
    seeds = list(design.select_seeds or ())
    runs = {(a, s): run_path(root, run_name(main, a, s)) for a in rates for s in seeds}
    stages = [metered(train_stage(design, requests, main, a, s, runs[(a, s)])) for s in seeds for a in rates]
    stages.append(
        Stage(
            f"{SELECT_STAGE} {main}",
            {"runs": [str(r) for r in runs.values()], "rule": "best mean dev metric"},
            [ResultsDir(root).sweep],
            lambda: write_sweep(root, main, {a: design.arms[a][1] for a in rates}, runs),
            inputs=[RunDir(r).metrics_json for r in runs.values()],
        )
    )
    return stages
