"""The frozen analysis plan (report/plan.py) seen through the report a researcher reads: a results
directory decided under the plan it was run under is confirmatory; one re-decided after the plan was
edited is exploratory and names each changed key (old → new) and when the plan was frozen; and a
"pretrained" arm of one model against a "scratch" arm of another is never compared (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

from test_claims import synthetic

from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.pipeline.demo import freeze_plan
from bertviz_landscape.pipeline.plan import plan_document
from bertviz_landscape.publish.report import claims
from bertviz_landscape.publish.report import plan as plan_mod
from bertviz_landscape.publish.report.writer import TABLE_HEAD, write_report


def _config(**plan_changes) -> dict:
    """A demo configuration as freeze_plan sees it (the resolved Hydra config): the demo's plan,
    `plan_changes` applied, and the design it runs."""
    return {
        "plan": plan_mod.preset("demo") | plan_changes,
        "seeds": [0, 1, 2, 3, 4, 5],
        "tasks": ["sst2"],
        "inits": ["pretrained", "scratch"],
        "analyses": ["flatness", "trajectory", "longtrain", "consistency", "layers"],
    }


def _write_analyses(root: Path, analyses: dict[str, list[dict]]) -> None:
    (root / "analysis").mkdir(parents=True, exist_ok=True)
    for name, datas in analyses.items():
        for d in datas:
            r = d["runs"][0]
            path = root / "analysis" / f"{name}_{r['task']}_{r['init']}_seed{r['seed']}.json"
            path.write_text(json.dumps(d))
    (root / "figures").mkdir(exist_ok=True)
    (root / "figures" / "figures.json").write_text(json.dumps({"figures": []}))


def test_a_report_under_an_edited_plan_is_exploratory_and_names_each_change(tmp_path):
    """Frozen before the runs, the plan makes the report confirmatory; the researcher then edits it
    (the plateau rule exclude → block, α 0.05 → 0.1) and re-runs: the frozen plan stays on disk, the
    demo says what changed, and the report — decided under the edited plan — is exploratory and names
    each changed key with its frozen and its new value, and when the plan was frozen."""
    root = tmp_path / "res"
    root.mkdir()
    said: list[str] = []
    freeze_plan(root, _config(), said.append)  # before any stage runs
    assert not said
    frozen = json.loads((root / plan_mod.PLAN_FILE).read_text())
    _write_analyses(root, synthetic())  # "the runs"

    write_report(root)
    md = (root / "report.md").read_text()
    assert f"SHA-256 `{frozen['sha256'][:16]}`" in md and "**confirmatory**" in md
    assert "exploratory" not in md and "Changed from the frozen plan" not in md

    edited = _config(plateau_runs="block", alpha=0.1)
    freeze_plan(root, edited, said.append)  # the demo run again after the edit
    assert json.loads((root / plan_mod.PLAN_FILE).read_text()) == frozen  # never overwritten
    assert len(said) == 1 and "differs from the one frozen" in said[0]
    assert 'plateau_runs: "exclude" -> "block"' in said[0] and "alpha: 0.05 -> 0.1" in said[0]

    write_report(root, plan_document(edited))
    md = (root / "report.md").read_text()
    assert "**exploratory**" in md and "**confirmatory**" not in md
    assert f"differs from the one frozen on {frozen['frozen_utc']} before the runs" in md
    assert f"(frozen {frozen['frozen_utc']}, `{frozen['sha256'][:16]}`)" in md
    changed = next(line for line in md.splitlines() if line.startswith("Changed from the frozen plan:"))
    shown = changed.replace("\\", "")  # values from a file go in as text: md_text escapes a leading 0.05
    assert '`plateau_runs` "exclude" → "block"' in shown and "`alpha` 0.05 → 0.1" in shown
    assert changed.count("→") == 2  # nothing else named
    status = json.loads((root / "claims.json").read_text())["plan"]
    assert status["mode"] == "exploratory" and status["frozen_sha256"] == frozen["sha256"]
    assert {c["key"]: (c["frozen"], c["now"]) for c in status["changes"]} == {
        "alpha": (0.05, 0.1),
        "plateau_runs": ("exclude", "block"),
    }
    # and the report decided under the edited plan (α = 0.1), not the frozen one
    assert "α = 0.1 family-wise" in md

    write_report(root)  # back to the frozen plan: confirmatory again
    assert "**confirmatory**" in (root / "report.md").read_text()


def _run_dir(path: Path, init: str, seed: int, model: str) -> Path:
    """A finished run directory as the report reads one: run.json (its model), metrics.json, θ0, θ1."""
    rd = RunDir(path)
    for d, w in ((rd.theta0, b"theta0"), (rd.theta1, f"{init}{seed}".encode())):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(w)
    rd.metrics_json.write_text(
        json.dumps(
            {
                "task": "sst2",
                "init": init,
                "primary_metric": "accuracy",
                "dev": {"val/accuracy": 0.8},
                "majority_baseline": {"accuracy": 0.51},
                "dev_examples": 872,
                "steps": 10,
            }
        )
    )
    (path / "run.json").write_text(json.dumps({"task": "sst2", "init": init, "seed": seed, "model": model}))
    return path


def test_arms_of_different_models_are_not_comparable_and_the_runs_table_names_the_models(tmp_path):
    """A results directory whose "pretrained" runs are DistilBERT and whose "scratch" runs are RoBERTa
    (numbers that would otherwise support every claim): every claim is "not comparable" naming both
    models, none gets a verdict or a p, and the Runs table has a model column."""
    root = tmp_path / "res"
    root.mkdir()
    freeze_plan(root, _config())
    models = {"pretrained": "distilbert-base-uncased", "scratch": "FacebookAI/roberta-base"}
    analyses = synthetic()
    for init in models:
        for seed in range(6):
            _run_dir(root / "runs" / f"sst2_{init}_seed{seed}", init, seed, models[init])
    for datas in analyses.values():
        for d in datas:
            r = d["runs"][0]
            r["run"] = str(root / "runs" / f"sst2_{r['init']}_seed{r['seed']}")
    _write_analyses(root, analyses)

    write_report(root)
    md = (root / "report.md").read_text()
    data = json.loads((root / "claims.json").read_text())
    assert {v["claim"] for v in data["verdicts"]} == set(claims.CLAIMS)
    why = (
        "arms of different models (pretrained: distilbert-base-uncased; "
        "from scratch: FacebookAI/roberta-base)"
    )
    for v in data["verdicts"]:
        assert v["verdict"] == claims.NOT_COMPARABLE, (v["claim"], v["sentence"])
        assert why in v["sentence"]
        assert v.get("comparison") is None
    lines = md.splitlines()
    head = lines.index(TABLE_HEAD)
    table = lines[head + 2 : lines.index("", head)]  # the first screen: one row per claim
    assert len(table) == len(claims.CLAIMS) and all("| **not comparable** |" in row for row in table)
    assert not any(w in md for w in ("**supported**", "**contradicted**", "**not resolved**"))
    runs = md.split("## Runs", 1)[1]
    assert "| task | model | init | seed |" in runs
    for init, model in models.items():
        for seed in range(6):
            assert f"| sst2 | {model} | {init} | {seed} |" in runs

    # the same numbers from one model are decided (so the model, not the data, made them not comparable)
    for path in (root / "runs").glob("*/run.json"):
        ident = json.loads(path.read_text())
        path.write_text(json.dumps(ident | {"model": models["pretrained"]}))
    write_report(root)
    decided = json.loads((root / "claims.json").read_text())["verdicts"]
    assert all(v["verdict"] == claims.SUPPORTED for v in decided), [v["sentence"] for v in decided]
