"""`make demo`'s pipeline end to end on the tiny config (2-layer BERT, tiny TSVs): every
expected file, each claim sentence following from the numbers in the JSONs, re-running skips
every stage, the W&B runs read back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import TINY_MODEL, write_glue
from helpers.demo import tiny_demo_cfg

from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.pipeline.runner import canonical


def request(stage) -> dict:
    """A stage's request as plain values (what its record digests)."""
    return canonical(stage.request)


def applied(config: dict, override: str) -> bool:
    """Whether the training config has the value the override `key=value` sets."""
    import yaml

    key, value = override.split("=", 1)
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node == yaml.safe_load(value)


@pytest.fixture
def tiny_pretrained_model(tmp_path) -> Path:
    from bertviz_landscape.contracts.checkpoints import save_checkpoint
    from bertviz_landscape.training.data import get_task
    from bertviz_landscape.training.models import build_initial_model, load_tokenizer

    model = build_initial_model(
        "all-minilm-l6-v2", get_task("mrpc"), "scratch", seed=123, config_overrides=TINY_MODEL
    )
    return save_checkpoint(model.base_model, load_tokenizer("all-minilm-l6-v2"), tmp_path / "tiny_pretrained")


def available_analyses() -> list[str]:
    from bertviz_landscape.analysis import registry

    known = registry.names()  # an analysis whose module could not be imported is not registered
    return [n for n in ("trajectory", "consistency", "flatness", "layers", "longtrain") if n in known]


def test_demo_bad_grid_is_a_clear_error(tmp_path):
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.contracts.errors import BadInput

    cfg = compose("demo", [f"output_dir={tmp_path}", "landscape.line.num=11"])
    with pytest.raises(BadInput, match=r"landscape.line: 11 points on \[-0.5, 1.5\] miss α = 0, 1"):
        build_stages(cfg)
    stages = build_stages(compose("demo", [f"output_dir={tmp_path}"]))
    names = [s.name for s in stages]
    main, second = compose("demo").tasks
    assert names[:4] == [
        f"train {main}_pretrained_seed0",
        f"train {main}_scratch_seed0",
        f"train {second}_pretrained_seed0",
        f"train {second}_scratch_seed0",
    ]
    assert (
        names[-3:] == ["figures", "wandb", "report"]
        and f"plane {main}_scratch_seed2" in names
        and f"layers {main}_pretrained_seed1" in names
    )
    for bad in ("seeds=[]", "seeds=[0,0]", "seeds=[a]"):
        with pytest.raises(BadInput, match="seeds="):
            build_stages(compose("demo", [f"output_dir={tmp_path}", bad]))


@pytest.mark.parametrize("init_seed", [None, 1000])
def test_every_seed_is_a_replicate_with_its_own_theta0_head_data_order_and_dropout(tmp_path, init_seed):
    """Seed s trains every (task, init) with seed=s (data order, dropout) and init.seed=s (θ0 from
    scratch, the head pretrained) — or, with the preset's init_seed (the demo's: the runs of an arm
    share θ0, as analysis=basins needs), init.seed=init_seed; its plane's δ2 is the same seed's
    second-task run."""
    from bertviz_landscape.cli.demo import stages as build_stages

    cfg = compose("demo", [f"output_dir={tmp_path}", "seeds=[3,7,11]", f"init_seed={init_seed or 'null'}"])
    stages = {s.name: s for s in build_stages(cfg)}
    main, second = compose("demo").tasks
    for seed in (3, 7, 11):
        for task in (main, second):
            for init in ("pretrained", "scratch"):
                train = request(stages[f"train {task}_{init}_seed{seed}"])
                assert train["config"]["seed"] == seed and train["config"]["init"]["seed"] == (
                    init_seed or seed
                )
                assert train["run"].endswith(f"{task}_{init}_seed{seed}")
        plane = request(stages[f"plane {main}_scratch_seed{seed}"])
        assert plane["run2"].endswith(f"{second}_scratch_seed{seed}")
        assert stages[f"flatness {main}_pretrained_seed{seed}"].outputs[0].name == (
            f"flatness_{main}_pretrained_seed{seed}.json"
        )
    assert compose("demo").seeds and len(compose("demo").seeds) >= 3  # the demo decides (>= 3 per arm)
    # the pretrained flatness is matched against the same seed's scratch run
    matched = request(stages[f"flatness {main}_pretrained_seed7"])["analysis"]["matched"]
    assert matched["run"].endswith(f"{main}_scratch_seed7")
    assert request(stages[f"flatness {main}_scratch_seed7"])["analysis"]["matched"]["run"] is None


def test_both_ways_makes_each_task_the_main_one_once_in_one_call(tmp_path):
    """make analyses: with both_ways=true every task gets its surfaces and analyses, δ2 from the
    other task's run of the same seed and init; each run trains once and in full (the second-task
    overrides only shorten runs that only span δ2); figures, W&B and report once at the end."""
    from bertviz_landscape.analysis import registry
    from bertviz_landscape.cli.demo import stages as build_stages

    cfg = compose("demo", [f"output_dir={tmp_path}", "tasks=[mrpc,rte]", "seeds=[0]", "both_ways=true"])
    stages = build_stages(cfg)
    names = [s.name for s in stages]
    by_name = {s.name: s for s in stages}
    assert len(names) == len(set(names))
    trains = [n for n in names if n.startswith("train ")]
    assert sorted(trains) == sorted(
        f"train {t}_{i}_seed0" for t in ("mrpc", "rte") for i in ("pretrained", "scratch")
    )
    for task, other in (("mrpc", "rte"), ("rte", "mrpc")):
        train = request(by_name[f"train {task}_scratch_seed0"])["config"]
        assert not any(applied(train, o) for o in cfg.train.second_task)
        plane = request(by_name[f"plane {task}_scratch_seed0"])
        assert plane["run2"].endswith(f"{other}_scratch_seed0")
        assert plane["output"].endswith(f"surfaces/{task}_scratch_seed0_plane.h5")
        for name in registry.names():  # every registered analysis (conf/demo.yaml analyses: null)
            assert by_name[f"{name} {task}_pretrained_seed0"].outputs[0].name == (
                f"{name}_{task}_pretrained_seed0.json"
            )
    assert names[-3:] == ["figures", "wandb", "report"]
    one_way = [
        s.name
        for s in build_stages(compose("demo", [f"output_dir={tmp_path}", "tasks=[mrpc,rte]", "seeds=[0]"]))
    ]
    assert not any(n.endswith("rte_scratch_seed0") and not n.startswith("train") for n in one_way)
    rte = {
        s.name: s
        for s in build_stages(compose("demo", [f"output_dir={tmp_path}", "tasks=[mrpc,rte]", "seeds=[0]"]))
    }
    assert all(applied(request(rte["train rte_scratch_seed0"])["config"], o) for o in cfg.train.second_task)


def test_the_replicate_preset_has_five_seeds_a_scratch_sweep_and_a_256_example_hessian(tmp_path):
    from bertviz_landscape.cli.demo import stages as build_stages

    cfg = compose("replicate", [f"output_dir={tmp_path}"])
    assert len(cfg.seeds) >= 5 and len(cfg.scratch_lrs) >= 3
    # first every rate on the selection seeds, then the best rate on every seed
    select = cfg.scratch_sweep.select_seeds or cfg.seeds
    first = [s.name for s in build_stages(cfg)]
    assert first[-1] == "select scratch lr sst2"
    assert {f"train sst2_scratch_lr{lr:g}_seed{s}" for lr in cfg.scratch_lrs for s in select} == set(
        first[:-1]
    )
    chosen = f"scratch_lr{cfg.scratch_lrs[1]:g}"
    names = {s.name for s in build_stages(cfg, selected=chosen)}
    assert {f"train sst2_{chosen}_seed{s}" for s in cfg.seeds} <= names
    assert {f"train sst2_pretrained_seed{s}" for s in cfg.seeds} <= names
    assert {f"flatness sst2_{chosen}_seed{s}" for s in cfg.seeds} <= names
    others = {f"scratch_lr{lr:g}" for lr in cfg.scratch_lrs} - {chosen}
    assert not any(o in n for o in others for n in names)
    assert "analysis.hessian.num_examples=256" in cfg.analysis_overrides.flatness


def _sweep_run(root, name: str, seed: int, dev: float):
    run = root / "runs" / name
    (run / "checkpoints" / "init").mkdir(parents=True)
    (run / "run.json").write_text(
        json.dumps({"task": "sst2", "init": "scratch", "seed": seed, "model": "tiny"})
    )
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "task": "sst2",
                "init": "scratch",
                "primary_metric": "accuracy",
                "dev": {"val/accuracy": dev},
                "majority_baseline": {"accuracy": 0.5},
                "dev_examples": 872,
            }
        )
    )
    return run


def test_a_sweep_analysed_at_its_best_rate_chooses_the_best_mean_and_the_report_names_every_rate(
    tmp_path, monkeypatch
):
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.contracts.errors import BadInput
    from bertviz_landscape.pipeline.lr_sweep import read_sweep, write_sweep
    from bertviz_landscape.publish.report.writer import render_results, sweep_lines

    over = [
        f"output_dir={tmp_path}",
        "seeds=[0,1,2]",
        "scratch_lrs=[1e-4,3e-4,1e-3]",
        "scratch_sweep.analyse=best",
        "scratch_sweep.select_seeds=[0,1]",
    ]
    cfg = compose("demo", over)
    stages = build_stages(cfg)
    assert [s.name for s in stages][-1] == "select scratch lr sst2"
    assert len(stages) == 3 * 2 + 1  # every rate on seeds 0 and 1, no pretrained run, no second task yet
    # a dev metric per (rate, seed): 3e-4 has the best mean though 1e-3 has the best single run
    devs = {"0.0001": (0.55, 0.57), "0.0003": (0.66, 0.64), "0.001": (0.70, 0.51)}
    runs = {}
    for arm, (a, b) in devs.items():
        for seed, dev in ((0, a), (1, b)):
            runs[(f"scratch_lr{arm}", seed)] = _sweep_run(
                tmp_path, f"sst2_scratch_lr{arm}_seed{seed}", seed, dev
            )
    rates = {f"scratch_lr{a}": float(a) for a in devs}
    monkeypatch.chdir(tmp_path.parent)  # a relative output_dir (make replicate's) with absolute run paths
    sweep = write_sweep(Path(tmp_path.name), "sst2", rates, runs)
    assert sweep["rates"][0]["runs"] == [
        "runs/sst2_scratch_lr0.0001_seed0",
        "runs/sst2_scratch_lr0.0001_seed1",
    ]
    assert read_sweep(tmp_path)["chosen_arm"] == sweep["chosen_arm"] == "scratch_lr0.0003"
    assert [r["mean"] for r in sweep["rates"]] == pytest.approx([0.56, 0.65, 0.605])
    rest = {s.name: s for s in build_stages(cfg, selected="scratch_lr0.0003")}
    assert "train sst2_scratch_lr0.0003_seed2" in rest and "train mrpc_scratch_lr0.0003_seed2" in rest
    assert not any("lr0.001" in n or "lr0.0001_" in n for n in rest)
    over_flat = request(rest["flatness sst2_pretrained_seed2"])["analysis"]["matched"]["run"]
    assert over_flat.endswith("sst2_scratch_lr0.0003_seed2")  # matched against the chosen rate
    with pytest.raises(BadInput, match="not one of"):
        build_stages(cfg, selected="scratch_lr0.1")
    text = "\n".join(sweep_lines(sweep))
    for lr in ("0.0001", "0.0003 (chosen)", "0.001"):
        assert f"| {lr} |" in text
    assert "0: 0.7, 1: 0.51" in text and "at 0.0003" in text and "beyond" not in text
    edge = sweep | {"chosen_arm": "scratch_lr0.001", "chosen_lr": 0.001}
    assert "the largest rate tried: the best rate may lie beyond the sweep" in "\n".join(sweep_lines(edge))
    assert "at 0.0003" in render_results(
        {"verdicts": [], "tasks": [], "tables": {}, "evidence": {}, "sweep": sweep}
    )
    with pytest.raises(BadInput, match="select_seeds"):
        build_stages(compose("demo", [*over[:-1], "scratch_sweep.select_seeds=[5]"]))


def test_a_scratch_learning_rate_sweep_is_one_arm_per_rate(tmp_path):
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.contracts.errors import BadInput

    cfg = compose("demo", [f"output_dir={tmp_path}", "seeds=[0,1,2]", "scratch_lrs=[1e-4,3e-4,1e-3]"])
    stages = {s.name: s for s in build_stages(cfg)}
    main = cfg.tasks[0]
    for lr in ("0.0001", "0.0003", "0.001"):
        over = request(stages[f"train {main}_scratch_lr{lr}_seed2"])["config"]
        assert over["init"]["name"] == "scratch" and over["init"]["lr"] == float(lr) and over["seed"] == 2
        assert f"consistency {main}_scratch_lr{lr}_seed2" in stages
    preset = compose("train", [f"experiment={cfg.train.experiment}", f"task={main}", "init=pretrained"])
    assert request(stages[f"train {main}_pretrained_seed2"])["config"]["init"]["lr"] == preset.init.lr
    with pytest.raises(BadInput, match="scratch_lrs="):
        build_stages(compose("demo", [f"output_dir={tmp_path}", "scratch_lrs=[1e-4,1e-4]"]))


@pytest.mark.slow
def test_demo_end_to_end_on_the_tiny_config(tmp_path, tiny_pretrained_model, monkeypatch):
    from bertviz_landscape.cli.demo import demo as run_demo
    from bertviz_landscape.plots.results import Results
    from bertviz_landscape.publish.report import claims

    monkeypatch.setenv("WANDB_MODE", "offline")
    glue = write_glue(tmp_path / "glue", n_train=32, n_dev=16)
    root = tmp_path / "demo"
    analyses = available_analyses()
    cfg = tiny_demo_cfg(root, tiny_pretrained_model, glue, analyses, seeds="[0,1,2]")
    console = io.StringIO()
    log = run_demo(cfg, out=console)
    lines = console.getvalue().splitlines()
    assert all(entry["status"] == "done" for entry in log)
    assert len(lines) == len(log) + 1 and all(" done in " in line for line in lines[:-1])

    for seed in (0, 1, 2):
        for task in ("mrpc", "rte"):
            for init in ("pretrained", "scratch"):
                assert (root / "runs" / f"{task}_{init}_seed{seed}" / "metrics.json").is_file()
        for init in ("pretrained", "scratch"):
            for kind in ("line", "plane"):
                assert (root / "surfaces" / f"mrpc_{init}_seed{seed}_{kind}.h5").is_file()
            for name in analyses:
                assert (root / "analysis" / f"{name}_mrpc_{init}_seed{seed}.json").is_file()
    from bertviz_landscape.contracts.rundir import RunDir

    def theta0(init, seed):
        d = RunDir(root / "runs" / f"mrpc_{init}_seed{seed}").theta0
        return b"".join(p.read_bytes() for p in sorted(Path(d).glob("*.safetensors")))

    # conf/demo.yaml's init_seed: the runs of an arm share θ0 (a seed draws the data order and dropout only),
    # the pairs analysis=basins needs
    assert theta0("scratch", 0) and theta0("scratch", 0) == theta0("scratch", 1) == theta0("scratch", 2)
    assert theta0("scratch", 0) != theta0("pretrained", 0)
    # the analysis plan is frozen before any stage runs (plan.json: its SHA-256, UTC time) and kept
    import yaml

    from bertviz_landscape.publish.report import plan as plan_mod

    frozen = json.loads(ResultsDir(root).plan_json.read_text())
    assert frozen["plan"]["min_runs"] == 3 and frozen["sha256"] == plan_mod.digest(frozen["plan"])
    assert yaml.safe_load(ResultsDir(root).plan_yaml.read_text()) == frozen["plan"]
    runs_made = min(p.stat().st_mtime for p in (root / "runs").rglob("metrics.json"))
    assert ResultsDir(root).plan_json.stat().st_mtime <= runs_made
    assert not (root / "evidence.json").exists()
    manifest = json.loads((root / "figures" / "figures.json").read_text())
    kinds = {f["kind"] for f in manifest["figures"]}
    expected = {"curve1d", "surface2d", "surface3d", "interactive3d", "dev_per_epoch"}
    expected |= {"flatness"} if "flatness" in analyses else set()
    expected |= {"layers"} if "layers" in analyses else set()
    assert expected <= kinds, kinds
    for fig in manifest["figures"]:
        assert all(Path(f).is_file() for f in fig["files"])
    assert any(
        "trajectory" in s for f in manifest["figures"] if f["kind"] == "surface2d" for s in f["sources"]
    ) == ("trajectory" in analyses)

    # each claim sentence in the report is the one the numbers in the JSONs give, across 3 seeds
    md = (root / "report.md").read_text()
    from bertviz_landscape.publish.report.writer import _with_rates

    results = Results.scan(root, exclude=(root / "figures",))
    plan, status = plan_mod.resolve(root)  # the report decides under the frozen plan: confirmatory
    assert status.mode == "confirmatory" and status.sha256 == frozen["sha256"]
    assert f"SHA-256 `{frozen['sha256'][:16]}`" in md and "**confirmatory**" in md
    verdicts = claims.decide_all(_with_rates(dict(results.analyses)), plan=plan)
    assert {v.claim for v in verdicts} == set(claims.CLAIMS)
    for v in verdicts:
        assert f"**{v.title}** ({v.task}): {v.sentence}" in md
        assert v.verdict != claims.DESCRIPTIVE, v.sentence  # 3 runs per arm reach the plan's min_runs
        assert "descriptive only" not in v.sentence
        if v.numbers.get("comparison"):
            assert v.numbers["comparison"]["a"]["n"] == 3 == v.numbers["comparison"]["b"]["n"]
    assert (root / "results.md").read_text().strip() in md
    assert "| | pretrained seed 0 | pretrained seed 1 | pretrained seed 2 |" in md
    html = (root / "report.html").read_text()
    claim_figures = md.count(": the deciding metric per seed](")  # one per decidable claim, beside the table
    assert claim_figures == len(list((root / "figures" / "claims").glob("claim_*.png")))
    assert html.count("data:image/png;base64,") == claim_figures + len(
        [f for f in manifest["figures"] if f["kind"] != "interactive3d"]
    )

    # W&B: one run per (task, init) (how several seeds' surfaces are laid out in it is wandb_media's)
    logged = json.loads((root / "wandb" / "logged.json").read_text())["runs"]
    logged = [r for r in logged if r["job_type"] == "landscape"]  # beside the task's one figures run
    assert sorted({(r["task"], r["init"]) for r in logged}) == [("mrpc", "pretrained"), ("mrpc", "scratch")]

    # a re-run skips every stage
    console = io.StringIO()
    log = run_demo(cfg, out=console)
    assert all(entry["status"] == "skipped" for entry in log), log


def test_pipeline_skips_finished_stages_and_reruns_changed_or_missing_ones(tmp_path):
    """A stage is skipped only when its outputs exist and its record matches its settings and
    the files it reads as they are now (read when the stage is reached, not when it was built)."""
    from bertviz_landscape.pipeline.runner import Pipeline, Stage

    calls = []
    run = tmp_path / "run"

    def make(name, out, spec, action):
        return Stage(name, spec, [out], action)

    trainings = []

    def train():
        calls.append("train")
        trainings.append(1)
        run.mkdir(exist_ok=True)
        # each training's metrics.json differs (a real one holds its fingerprint and wall time)
        (run / "metrics.json").write_text(f'{{"training": {len(trainings):d}}}')
        (tmp_path / "a.txt").write_text("a")

    def curve():
        calls.append("curve")
        (tmp_path / "b.txt").write_text("b")

    def stages(lr="1"):
        return [
            make("train x", tmp_path / "a.txt", {"lr": lr}, train),
            Stage("curve x", {"run": str(run)}, [tmp_path / "b.txt"], curve, inputs=[run / "metrics.json"]),
        ]

    out = io.StringIO()
    log = Pipeline(tmp_path, out).run(stages())
    assert [e["status"] for e in log] == ["done", "done"] and calls == ["train", "curve"]
    assert (
        "cpu" in out.getvalue()
        and json.loads((tmp_path / ".stages" / "curve__x.json").read_text())["outputs"]
    )
    assert [e["status"] for e in Pipeline(tmp_path, io.StringIO()).run(stages())] == ["skipped", "skipped"]
    (tmp_path / "b.txt").unlink()  # an output gone: that stage again
    assert [e["status"] for e in Pipeline(tmp_path, io.StringIO()).run(stages())] == ["skipped", "done"]
    calls.clear()
    log = Pipeline(tmp_path, io.StringIO()).run(
        stages(lr="2")
    )  # other settings: retrain, and the curve of the new run
    assert [e["status"] for e in log] == ["done", "done"] and calls == ["train", "curve"]


def test_a_failing_stage_is_named_and_leaves_no_record(tmp_path):
    from bertviz_landscape.pipeline.runner import Pipeline, Stage

    def boom():
        raise RuntimeError("disk on fire")

    out = io.StringIO()
    with pytest.raises(RuntimeError):
        Pipeline(tmp_path, out).run([Stage("train x", {}, [tmp_path / "a"], boom)])
    assert "train x" in out.getvalue() and "FAILED" in out.getvalue() and "disk on fire" in out.getvalue()
    assert not (tmp_path / ".stages" / "train__x.json").exists()


@pytest.mark.slow
def test_demo_with_a_sweep_analysed_at_its_best_rate_end_to_end(tmp_path, tiny_pretrained_model, monkeypatch):
    from bertviz_landscape.cli.demo import demo as run_demo
    from bertviz_landscape.pipeline.lr_sweep import read_sweep
    from bertviz_landscape.plots.results import Results

    monkeypatch.setenv("WANDB_MODE", "offline")
    glue = write_glue(tmp_path / "glue", n_train=32, n_dev=16)
    root = tmp_path / "demo"
    cfg = tiny_demo_cfg(
        root,
        tiny_pretrained_model,
        glue,
        ["flatness"],
        seeds="[0,1]",
        scratch_lrs="[1e-3,3e-3]",
        **{"scratch_sweep.analyse": "best", "scratch_sweep.select_seeds": "[0]", "wandb_media": "false"},
    )
    console = io.StringIO()
    run_demo(cfg, out=console)
    sweep = read_sweep(root)
    chosen = sweep["chosen_arm"]
    assert [r["seeds"] for r in sweep["rates"]] == [[0], [0]]
    assert "analysing" in console.getvalue()
    # the chosen rate trained on both seeds, the other on the selection seed only
    trained = sorted(p.name for p in (root / "runs").iterdir() if p.name.startswith("mrpc_scratch"))
    other = next(r["arm"] for r in sweep["rates"] if r["arm"] != chosen)
    assert trained == sorted([f"mrpc_{chosen}_seed0", f"mrpc_{chosen}_seed1", f"mrpc_{other}_seed0"])
    flat = {Path(d["_path"]).name for d in Results.scan(root).analyses["flatness"]}
    assert flat == {f"flatness_mrpc_{a}_seed{s}.json" for a in ("pretrained", chosen) for s in (0, 1)}
    report = (root / "report.md").read_text()
    assert "learning rates tried on mrpc" in report and "(chosen)" in report
    # a re-run skips every stage of both phases
    again = io.StringIO()
    run_demo(cfg, out=again)
    assert "done in" not in again.getvalue()
