"""make replicate and make replicate-overfit on the pipeline (issue 28 items 2, 5 and "Budgets"): the
learning-rate sweep of both inits runs on the plan's selection seeds only, extends an edge-best rate
once per round, and the comparison trains each init at its chosen rate on the confirmation seeds
only; the replicate's grid, dev sets and Hessian are sized as the issue asks; replicate-overfit
trains overfit_cpu on the confirmation seeds at the sweep's rates, longtrain only, under the same
plan."""

from __future__ import annotations

import dataclasses
import io
import json
import math
from pathlib import Path

import pytest
from conftest import write_glue
from helpers.demo import tiny_demo_cfg

from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts import lr_sweep
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.pipeline.runner import canonical

PLAN = {"pretrained": 3e-4, "scratch": 1e-4}  # where the planted dev metric peaks per init


def planted_dev(init: str, lr: float) -> float:
    """A dev accuracy peaked at PLAN[init] on a log scale: pretrained's peak is the largest rate of
    [3e-5, 1e-4, 3e-4] (an edge: one extension, 9e-4, which is worse), scratch's is interior."""
    return 0.9 - 0.1 * abs(math.log10(lr / PLAN[init]))


def sweep_overrides(root: Path, **more) -> list[str]:
    """The replicate's plan with a small sweep: rates [3e-5, 1e-4, 3e-4] per init on selection seed 0,
    comparison on seeds 1 and 2."""
    over = {
        "output_dir": root,
        "plan.seeds.select": "[0]",
        "plan.seeds.confirm": "[1,2]",
        "seeds": "[1,2]",
        "plan.lr_sweep.rates.pretrained": "[3e-5,1e-4,3e-4]",
        "plan.lr_sweep.rates.scratch": "[3e-5,1e-4,3e-4]",
        "plan.lr_sweep.extend_at_edge": "2",
    } | more
    return [f"{k}={v}" for k, v in over.items()]


def stage_request(stage) -> dict:
    return canonical(stage.request)


# --- the replicate's stage lists (no training) ---------------------------------------------------
def test_the_replicate_sweeps_both_inits_on_the_selection_seeds_then_compares_on_the_confirm_seeds(tmp_path):
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.pipeline.plan import Design, plan_document
    from bertviz_landscape.publish.report import plan as plan_mod

    cfg = compose("replicate", [f"output_dir={tmp_path}"])
    plan = plan_mod.preset("replicate")
    select, confirm = plan["seeds"]["select"], plan["seeds"]["confirm"]
    assert list(cfg.seeds) == confirm and cfg.lr_sweep and not cfg.scratch_lrs
    first = [s.name for s in build_stages(cfg)]
    assert first[-1] == "select lr sst2"
    rates = plan["lr_sweep"]["rates"]
    assert set(first[:-1]) == {
        f"train sst2_{init}_lr{lr:g}_seed{s}"
        for init in ("pretrained", "scratch")
        for lr in rates[init]
        for s in select
    }
    chosen = {"pretrained": 1e-4, "scratch": 3e-4}
    rest = {s.name: s for s in build_stages(cfg, selected=chosen)}
    trained = {n for n in rest if n.startswith("train ")}
    assert trained == {
        f"train {task}_{init}_lr{chosen[init]:g}_seed{s}"
        for task in ("sst2", "mrpc")
        for init in chosen
        for s in confirm
    }
    assert not any(n.endswith(f"_seed{s}") for n in rest for s in select)  # no selection seed is compared
    for init, lr in chosen.items():  # each arm trains at its chosen rate (init.lr), its second task too
        for task in ("sst2", "mrpc"):
            config = stage_request(rest[f"train {task}_{init}_lr{lr:g}_seed{confirm[0]}"])["config"]
            assert (
                config["init"]["name"] == init and config["init"]["lr"] == lr and config["seed"] == confirm[0]
            )
    flat = stage_request(rest[f"flatness sst2_pretrained_lr0.0001_seed{confirm[0]}"])
    assert flat["analysis"]["matched"]["run"].endswith(f"sst2_scratch_lr0.0003_seed{confirm[0]}")
    # the plan the pipeline freezes names both seed sets, and its check refuses a shared one
    doc = plan_document(OmegaConfPlain(cfg))
    assert doc["design"]["select_seeds"] == select and doc["design"]["confirm_seeds"] == confirm
    plan_mod.check(doc)
    with pytest.raises(BadInput, match="share seed"):
        plan_mod.check(doc | {"design": doc["design"] | {"confirm_seeds": [select[0], *confirm]}})
    # seeds other than the plan's confirmation seeds are refused before anything runs
    with pytest.raises(BadInput, match=r"differ from the plan's seeds.confirm"):
        Design.from_config(
            OmegaConfPlain(compose("replicate", [f"output_dir={tmp_path}", "seeds=[0,1,2,3,4]"]))
        )


def OmegaConfPlain(cfg) -> dict:  # noqa: N802 (reads as the conversion it is)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def test_the_replicate_grid_dev_sets_and_hessian_are_sized_as_the_issue_asks(tmp_path):
    """≥ 7 × 5 plane points with dev error on ≥ 512 examples; layers and basins on the full dev set;
    the Hessian computes only the registered secondary (normalised λ1): no raw λ1, no trace."""
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.publish.report import plan as plan_mod

    cfg = compose("replicate", [f"output_dir={tmp_path}"])
    rest = {s.name: s for s in build_stages(cfg, selected={"pretrained": 1e-4, "scratch": 3e-4})}
    plane = stage_request(rest["plane sst2_scratch_lr0.0003_seed5"])
    assert plane["grid"]["x"]["num"] * plane["grid"]["y"]["num"] >= 35
    assert plane["grid"]["x"]["num"] >= 7 and plane["grid"]["y"]["num"] >= 5
    assert plane["data"]["max_eval_samples"] >= 512 and plane["per_example"]
    line = stage_request(rest["line sst2_scratch_lr0.0003_seed5"])
    assert line["data"]["max_eval_samples"] == 128  # the line keeps the demo's dev subset
    for name in ("layers", "basins"):
        req = stage_request(rest[f"{name} sst2_scratch_lr0.0003_seed5"])
        assert req["analysis"]["max_eval_samples"] is None and req["data"]["max_eval_samples"] is None
    hessian = stage_request(rest["flatness sst2_pretrained_lr0.0001_seed5"])["analysis"]["hessian"]
    assert hessian["enabled"] and hessian["normalised"] and hessian["k"] == 0 and hessian["samples"] == 0
    assert hessian["num_examples"] == 256
    wider = plan_mod.preset("replicate")["claims"]["wider_optima"]
    assert wider["secondary"] == "hessian_top_eig_normalised"


# --- the sweep's rounds (planted training: no model) -----------------------------------------------
def fake_train(cfg, run):
    """A stand-in for training: run.json and metrics.json whose dev accuracy is `planted_dev`."""
    run = Path(run)
    (run / "checkpoints" / "init").mkdir(parents=True, exist_ok=True)
    RunDir(run).theta1.mkdir(parents=True, exist_ok=True)
    init, lr = str(cfg.init.name), float(cfg.init.lr)
    (run / "run.json").write_text(
        json.dumps(
            {
                "task": str(cfg.task.name),
                "init": init,
                "seed": int(cfg.seed),
                "model": "tiny",
                "config": {"init": {"lr": lr}},
            }
        )
    )
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "task": str(cfg.task.name),
                "init": init,
                "primary_metric": "accuracy",
                "dev": {"val/accuracy": planted_dev(init, lr)},
                "majority_baseline": {"accuracy": 0.5},
                "dev_examples": 872,
            }
        )
    )


def test_an_edge_best_rate_is_extended_once_and_the_record_names_every_rate_and_seed(tmp_path, monkeypatch):
    from bertviz_landscape.cli import demo as cli_demo
    from bertviz_landscape.pipeline import plan as plan_floor
    from bertviz_landscape.pipeline.demo import run_sweep
    from bertviz_landscape.pipeline.runner import Pipeline
    from bertviz_landscape.publish.report.writer import sweep_lines

    monkeypatch.setattr(plan_floor, "train", fake_train)
    root = tmp_path / "rep"
    cfg = compose("replicate", sweep_overrides(root))
    c = OmegaConfPlain(cfg)
    design = plan_floor.Design.from_config(c)
    requests = cli_demo.requests(c, design)
    out = io.StringIO()
    doc, _ = run_sweep(design, requests, Pipeline(root, out, None, label="demo"))
    console = out.getvalue()
    pre, scr = doc["arms"]["pretrained"], doc["arms"]["scratch"]
    # pretrained's best (3e-4) was the largest: one more half-decade (9e-4), worse, so it stops there
    assert pre["extended"] == [0.0009] and [r["lr"] for r in pre["rates"]] == [3e-5, 1e-4, 3e-4, 9e-4]
    assert pre["chosen_lr"] == 3e-4 and pre["edge"] is None
    assert "select lr sst2 (extension 1)" in console and "select lr sst2 (extension 2)" not in console
    assert "the best pretrained rate is the largest tried: adding 0.0009" in console
    # scratch's best (1e-4) is interior: no extension
    assert scr["extended"] == [] and scr["chosen_lr"] == 1e-4 and len(scr["rates"]) == 3
    # every rate on the selection seed only; the record on disk is the last round's
    assert {s for arm in doc["arms"].values() for r in arm["rates"] for s in r["seeds"]} == {0}
    assert doc["select_seeds"] == [0] and doc["confirm_seeds"] == [1, 2]
    on_disk = lr_sweep.read(root)
    assert on_disk["arms"]["pretrained"]["extended"] == [0.0009]
    assert on_disk["arms"]["pretrained"]["rates"][0]["runs"] == ["runs/sst2_pretrained_lr3e-05_seed0"]
    text = "\n".join(sweep_lines(on_disk))
    assert (
        "| pretrained | 0.0009 (added at the edge) |" in text and "| pretrained | 0.0003 (chosen) |" in text
    )
    assert "selection seeds 0 only (the comparison uses seeds 1, 2)" in text
    assert "pretrained at 0.0003 against scratch at 0.0001" in text
    # a re-run skips every round, the extension's included
    again = io.StringIO()
    doc2, _ = run_sweep(design, requests, Pipeline(root, again, None, label="demo"))
    assert doc2["arms"] == doc["arms"] and "done in" not in again.getvalue()
    assert "select lr sst2 (extension 1)" in again.getvalue()


def test_a_sweep_that_runs_out_of_extensions_says_its_best_may_lie_beyond(tmp_path, monkeypatch):
    from bertviz_landscape.cli import demo as cli_demo
    from bertviz_landscape.pipeline import plan as plan_floor
    from bertviz_landscape.pipeline.demo import run_sweep
    from bertviz_landscape.pipeline.runner import Pipeline
    from bertviz_landscape.publish.report.writer import sweep_lines

    monkeypatch.setattr(plan_floor, "train", fake_train)
    monkeypatch.setitem(PLAN, "pretrained", 1.0)  # ever better upwards: still at the edge after its extension
    root = tmp_path / "rep"
    c = OmegaConfPlain(compose("replicate", sweep_overrides(root, **{"plan.lr_sweep.extend_at_edge": "1"})))
    design = plan_floor.Design.from_config(c)
    doc, _ = run_sweep(
        design, cli_demo.requests(c, design), Pipeline(root, io.StringIO(), None, label="demo")
    )
    assert (
        doc["arms"]["pretrained"]["extended"] == [0.0009] and doc["arms"]["pretrained"]["edge"] == "largest"
    )
    assert "its best rate may lie beyond the sweep" in "\n".join(sweep_lines(doc))


# --- the two phases end to end on the tiny model -------------------------------------------------------
@pytest.mark.slow
def test_the_two_phase_sweep_end_to_end_on_the_tiny_model(tmp_path, tiny_pretrained, monkeypatch):
    """Real (tiny) training; the sweep's dev metric is planted (`planted_dev`) so that the pretrained
    best is at an edge: one extension, then the comparison on the confirmation seeds at the chosen rates."""
    from bertviz_landscape.analysis.common import read_run
    from bertviz_landscape.cli.demo import demo as run_demo
    from bertviz_landscape.pipeline import lr_sweep as pipeline_sweep

    def planted(path, key="run"):
        info = read_run(path, key)
        return dataclasses.replace(info, dev_metric=planted_dev(info.init, info.lr), beat_baseline=True)

    monkeypatch.setattr(pipeline_sweep, "read_run", planted)
    monkeypatch.setenv("WANDB_MODE", "offline")
    glue = write_glue(tmp_path / "glue", n_train=32, n_dev=16)
    root = tmp_path / "rep"
    over = dict(o.split("=", 1) for o in sweep_overrides(root)[1:])
    cfg = tiny_demo_cfg(
        root, tiny_pretrained, glue, ["flatness"], config="replicate", wandb_media="false", **over
    )
    console = io.StringIO()
    run_demo(cfg, out=console)
    doc = lr_sweep.read(root)
    chosen = {init: arm["chosen_lr"] for init, arm in doc["arms"].items()}
    assert chosen == {"pretrained": 3e-4, "scratch": 1e-4}
    assert doc["arms"]["pretrained"]["extended"] == [0.0009] and doc["arms"]["scratch"]["extended"] == []
    # the sweep trained the main task only, on the selection seed only
    runs = sorted(p.name for p in ResultsDir(root).runs.iterdir())
    swept = {
        f"mrpc_{i}_lr{lr:g}_seed0" for i, arm in doc["arms"].items() for lr in (r["lr"] for r in arm["rates"])
    }
    compared = {f"{t}_{i}_lr{chosen[i]:g}_seed{s}" for t in ("mrpc", "rte") for i in chosen for s in (1, 2)}
    assert set(runs) == swept | compared
    # the compared runs (every analysis JSON, every value in the claims) are on the confirmation seeds only
    analysed = {p.name for p in ResultsDir(root).analysis.glob("flatness_*.json")}
    assert analysed == {f"flatness_mrpc_{i}_lr{chosen[i]:g}_seed{s}.json" for i in chosen for s in (1, 2)}
    claims = json.loads(ResultsDir(root).claims.read_text())
    in_claims = [r for c in claims["verdicts"] for arm in (c.get("per_run") or {}).values() for r in arm]
    assert in_claims and {r["seed"] for r in in_claims} == {1, 2}
    assert {r["lr"] for r in in_claims} <= set(chosen.values())
    # the report names every rate tried, the seeds each used and the chosen rates
    report = ResultsDir(root).report_md.read_text()
    for init, arm in doc["arms"].items():
        for r in arm["rates"]:
            assert f"| {init} | {r['lr']:g}" in report
    assert "selection seeds 0 only (the comparison uses seeds 1, 2)" in report
    assert "pretrained at 0.0003 against scratch at 0.0001" in report and "(added at the edge)" in report
    # a re-run skips every stage of every round
    again = io.StringIO()
    run_demo(cfg, out=again)
    assert "done in" not in again.getvalue()


# --- make replicate-overfit --------------------------------------------------------------------------
def write_sweep_record(root: Path, chosen: dict[str, float]) -> None:
    runs = [
        lr_sweep.SweepRun(
            init, lr, s, 0.8 - abs(math.log10(lr / chosen[init])), True, str(root / "runs" / f"{init}{lr}{s}")
        )
        for init in chosen
        for lr in (1e-4, 3e-4, 1e-3)
        for s in (0, 1)
    ]
    lr_sweep.record("sst2", "accuracy", runs, [0, 1], [5, 6, 7, 8, 9], None, root)


def test_replicate_overfit_trains_overfit_cpu_on_the_confirm_seeds_at_the_sweep_s_rates(tmp_path):
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.pipeline.plan import plan_document
    from bertviz_landscape.publish.report import plan as plan_mod

    rep = tmp_path / "replicate"
    write_sweep_record(rep, {"pretrained": 1e-4, "scratch": 3e-4})
    cfg = compose("replicate_overfit", [f"output_dir={tmp_path / 'overfit'}", f"rates_from={rep}"])
    confirm = plan_mod.preset("replicate")["seeds"]["confirm"]
    stages = {s.name: s for s in build_stages(cfg)}
    at = {"pretrained": "0.0001", "scratch": "0.0003"}
    expected_runs = {f"sst2_{i}_lr{at[i]}_seed{s}" for i in at for s in confirm}
    assert list(stages) == [
        *(f"train {n}" for n in sorted(expected_runs, key=lambda n: (int(n.rsplit("seed", 1)[1]), n))),
        *(f"longtrain {n}" for n in sorted(expected_runs, key=lambda n: (int(n.rsplit("seed", 1)[1]), n))),
        "figures",
        "wandb",
        "report",
    ]
    config = stage_request(stages[f"train sst2_scratch_lr0.0003_seed{confirm[0]}"])["config"]
    assert config["trainer"]["max_epochs"] == 20 and config["data"]["max_train_samples"] == 1024
    assert config["data"]["max_eval_samples"] is None and config["init"]["lr"] == 3e-4
    assert config["callbacks"]["epochs"]["dev_predictions"]
    longtrain = stage_request(stages[f"longtrain sst2_pretrained_lr0.0001_seed{confirm[0]}"])
    assert longtrain["surface"] is None and longtrain["analysis"]["early_epoch"] == 3
    report = stage_request(stages["report"])
    assert report["plan"]["preset"] == "replicate"
    assert report["plan"]["claims"]["robust_to_overfitting"]["early_epoch"] == 3
    doc = plan_document(OmegaConfPlain(cfg))
    assert doc["design"]["rates"] == {"pretrained": 1e-4, "scratch": 3e-4}
    assert doc["design"]["confirm_seeds"] == confirm and doc["design"]["select_seeds"] == [0, 1]
    plan_mod.check(doc)
    # without a sweep record: both inits at the preset's rate (overfit_cpu's 1e-4), plain run names
    bare = compose("replicate_overfit", [f"output_dir={tmp_path / 'o2'}", f"rates_from={tmp_path / 'none'}"])
    names = [s.name for s in build_stages(bare)]
    assert (
        f"train sst2_pretrained_seed{confirm[0]}" in names
        and f"train sst2_scratch_seed{confirm[-1]}" in names
    )
    train = stage_request({s.name: s for s in build_stages(bare)}[f"train sst2_pretrained_seed{confirm[0]}"])
    assert train["config"]["init"]["lr"] == 1e-4
    with pytest.raises(BadInput, match="surfaces=false trains the main task only"):
        build_stages(compose("replicate_overfit", [f"output_dir={tmp_path}", "tasks=[sst2,mrpc]"]))


@pytest.mark.slow
def test_replicate_overfit_end_to_end_on_the_tiny_model(tmp_path, tiny_pretrained):
    """The preset's no-surface path runs: the sweep's rates, longtrain only, figures and the report,
    which names the rates tried (the copied record) and the rate each init trained at."""
    from bertviz_landscape.cli.demo import demo as run_demo

    glue = write_glue(tmp_path / "glue", n_train=32, n_dev=16)
    rep = tmp_path / "rep"
    runs = [
        lr_sweep.SweepRun(i, lr, 0, 0.8 if lr == 3e-4 else 0.7, True, str(rep / "runs" / f"{i}{lr}"))
        for i in ("pretrained", "scratch")
        for lr in (1e-4, 3e-4, 1e-3)
    ]
    lr_sweep.record("mrpc", "accuracy", runs, [0], [1, 2], None, rep)
    root = tmp_path / "overfit"
    over = {
        "tasks": "[mrpc]",
        "plan.seeds.select": "[0]",
        "plan.seeds.confirm": "[1,2]",
        "seeds": "[1,2]",
        "rates_from": str(rep),
        "analysis_overrides.longtrain": "['analysis.early_epoch=1']",
        "plan.claims.robust_to_overfitting.early_epoch": "1",
        "wandb_media": "false",
    }
    cfg = tiny_demo_cfg(root, tiny_pretrained, glue, ["longtrain"], config="replicate_overfit", **over)
    console = io.StringIO()
    run_demo(cfg, out=console)
    assert sorted(p.name for p in ResultsDir(root).runs.iterdir()) == [
        f"mrpc_{i}_lr0.0003_seed{s}" for i in ("pretrained", "scratch") for s in (1, 2)
    ]
    assert not ResultsDir(root).surfaces.exists() or not any(ResultsDir(root).surfaces.iterdir())
    assert len(list(ResultsDir(root).analysis.glob("longtrain_*.json"))) == 4
    report = ResultsDir(root).report_md.read_text()
    assert "Analysis plan** `replicate`" in report
    assert "Learning rates: pretrained at 0.0003 (chosen by the sweep in" in report
    assert "each init on the selection seeds 0 only (the comparison uses seeds 1, 2)" in report
