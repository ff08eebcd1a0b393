"""One spec per analysis (analysis/spec.py): the registry finds every analysis in its own module,
and a new analysis — here a toy one declared in this file — flows into the demo's stages, the
analyze entrypoint, the report's tables and claims, draw_all and the W&B summary without a line
changed anywhere else."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from omegaconf import OmegaConf

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import RunInfo, analysis_result, summarize, summary_scalars
from bertviz_landscape.analysis.measures.evidence import Options
from bertviz_landscape.analysis.spec import (
    AnalysisSpec,
    ClaimSpec,
    Measure,
    Row,
    SummaryEntry,
    summary_entry,
    summary_mean,
)
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.plots import results as figures
from bertviz_landscape.publish.report import claims

ROOT = Path(__file__).resolve().parents[1]
OPTS = Options(width_eps="0.1", min_epochs=5)


# --------------------------------------------------------------------------- the toy analysis
def toy_from_config(cfg) -> dict:
    """A toy analysis: its one number is the configured width (the run is named, not read)."""
    name = Path(str(cfg.run)).name  # <task>_<init>_seed<seed>
    task, init, seed = name.split("_")
    run = RunInfo(str(cfg.run), task, init, int(seed[4:]), "accuracy", 0.8, 0.5, True)
    width = float(cfg.analysis.width)
    numbers = {"toy_width": width, "toy_spread": width / 10, "toy_bounded": 1.0, "toy_extra": 2.0}
    return analysis_result("toy", {"runs": [str(cfg.run)]}, [run], [{}], [{"width": width}], [numbers])


def draw_toy(datas: list[dict], results) -> list[figures.Drawn]:
    """The toy's figure: one bar per JSON (a figure a plots/ module would hold)."""
    if not datas:
        return []
    fig, ax = plt.subplots()
    ax.bar(range(len(datas)), [d["numbers"]["toy_width"] for d in datas])
    return [figures.Drawn("toy_bars", "all", fig, "toy_bars", [d["_path"] for d in datas], "toy widths")]


TOY = AnalysisSpec(
    "toy",
    toy_from_config,
    reads=("run", "line"),
    matched=True,
    rows=(Row("toy_width", "toy basin width"), Row("toy_spread", "  its spread")),
    hidden=("toy_bounded",),
    figures=("toy_bars",),
    claims=(
        ClaimSpec(
            "toy_wider",
            "Toys are wider",
            6,
            (Measure("toy_width", +1, "toy basin width"),),
            "the pretrained toy is wider",
            "the from-scratch toy is wider",
        ),
    ),
)


TOY_YAML = """# bertviz-analyze analysis=toy run=RUN: a toy analysis (tests/test_analysis_registry.py)
name: toy
width: 0.5          # the toy's one number
matched:
  run: null         # the demo: the same seed's scratch run (the spec says matched)
"""


@pytest.fixture
def toy(monkeypatch, tmp_path_factory):
    """The toy analysis registered, its figure known to the figure floor, and its YAML
    (conf/analysis/toy.yaml) in a copy of the config directory: nothing else names it."""
    import shutil

    import bertviz_landscape.contracts.config as config_module

    conf = shutil.copytree(CONF_DIR, tmp_path_factory.mktemp("toy") / "conf")
    (conf / "analysis" / "toy.yaml").write_text(TOY_YAML)
    monkeypatch.setattr(config_module, "CONF_DIR", str(conf))
    registry.register(TOY)
    monkeypatch.setitem(figures.ANALYSIS_FIGURES, "toy_bars", draw_toy)
    yield TOY
    registry.unregister("toy")


def toy_json(init: str, seed: int, width: float, task: str = "sst2") -> dict:
    cfg = OmegaConf.create({"run": f"/runs/{task}_{init}_seed{seed}", "analysis": {"width": width}})
    return toy_from_config(cfg)


# --------------------------------------------------------------------------- the registry
def test_the_registry_finds_every_analysis_in_its_module_with_its_yaml():
    specs = registry.specs()
    assert [s.name for s in specs] == [
        "flatness",
        "trajectory",
        "consistency",
        "layers",
        "longtrain",
        "basins",
    ]
    for spec in specs:
        assert spec.run.__module__ == f"bertviz_landscape.analysis.{spec.name}"
        for conf in (ROOT / "conf", Path(CONF_DIR)):  # the YAML and the packaged copy the wheel holds
            assert OmegaConf.load(conf / "analysis" / f"{spec.name}.yaml").name == spec.name
        assert set(spec.figures) <= figures.figure_names(), spec.name
        assert all(set(c.checks) <= set(claims.CHECKS) for c in spec.claims), spec.name
        assert len({r.key for r in spec.rows}) == len(spec.rows)
    assert Path(CONF_DIR).resolve() == (ROOT / "conf").resolve()  # one copy: the package's conf is a link
    numbers = [c.number for c in registry.claims()]
    assert numbers == sorted(numbers) == [1, 2, 3, 4, 5, 6] and set(claims.CLAIMS) == {
        c.claim for c in registry.claims()
    }


def test_an_unknown_analysis_is_one_line_naming_the_known_ones():
    from bertviz_landscape.contracts.errors import BadInput

    with pytest.raises(
        BadInput,
        match=r"analysis='nope': unknown analysis "
        r"\(known: basins, consistency, flatness, layers, longtrain, trajectory\)",
    ):
        registry.get("nope")


def test_a_spec_reads_a_run_and_at_most_one_surface():
    with pytest.raises(ValueError, match="at most one of 'line', 'plane'"):
        AnalysisSpec("bad", toy_from_config, reads=("run", "line", "plane"))
    with pytest.raises(ValueError, match="declared twice"):
        registry.register(AnalysisSpec("flatness", toy_from_config))


# --------------------------------------------------------------------------- a new analysis flows everywhere
def test_a_new_analysis_becomes_demo_stages_from_its_spec(toy, tmp_path):
    from bertviz_landscape.cli.demo import stages as build_stages
    from bertviz_landscape.pipeline.runner import canonical

    cfg = compose("demo", [f"output_dir={tmp_path}", "seeds=[0]", "analyses=[toy]", "glue_dir=null"])
    stages = {s.name: s for s in build_stages(cfg)}
    main = cfg.tasks[0]
    pre, scr = stages[f"toy {main}_pretrained_seed0"], stages[f"toy {main}_scratch_seed0"]
    assert pre.outputs == [tmp_path / "analysis" / f"toy_{main}_pretrained_seed0.json"]
    # what it reads (its run and its surface: the line), then its matched control (a pretrained run only)
    request = canonical(pre.request)
    assert request["analysis"]["name"] == "toy"
    assert request["output"] == str(tmp_path / "analysis" / f"toy_{main}_pretrained_seed0.json")
    assert request["run"] == str(tmp_path / "runs" / f"{main}_pretrained_seed0")
    assert request["surface"] == str(tmp_path / "surfaces" / f"{main}_pretrained_seed0_line.h5")
    assert request["analysis"]["matched"]["run"] == str(tmp_path / "runs" / f"{main}_scratch_seed0")
    assert canonical(scr.request)["analysis"]["matched"]["run"] is None
    assert list(stages)[-3:] == ["figures", "wandb", "report"]


def test_a_registered_analysis_reaches_the_demo_report_figures_and_wandb_with_no_other_file_touched(
    toy, tmp_path, monkeypatch
):
    """Acceptance: the toy's module (its spec, registered here) and its YAML (conf/analysis/toy.yaml,
    in the fixture's config copy) are all it takes — the default demo (no ``analyses=``) plans its
    stages and registers it in the plan's design; run, its JSONs feed the figures catalogue, the
    report's tables and the W&B summaries."""
    import io

    from bertviz_landscape.cli.demo import stages as demo_stages
    from bertviz_landscape.pipeline.plan import plan_document
    from bertviz_landscape.pipeline.runner import Pipeline

    monkeypatch.setenv("WANDB_MODE", "offline")
    root = tmp_path / "demo"
    cfg = compose("demo", [f"output_dir={root}", "glue_dir=null"])
    main = cfg.tasks[0]
    design = plan_document(OmegaConf.to_container(cfg, resolve=True))["design"]
    assert design["analyses"][-1] == "toy" and set(registry.names()) == set(design["analyses"])
    stages = demo_stages(cfg)
    toys = [s for s in stages if s.name.startswith("toy ")]
    assert sorted(s.name for s in toys) == sorted(
        f"toy {main}_{init}_seed{seed}" for init in ("pretrained", "scratch") for seed in cfg.seeds
    )
    late = stages[-3:]
    assert [s.name for s in late] == ["figures", "wandb", "report"]
    assert all(t.outputs[0] in s.inputs for t in toys for s in late)  # a new toy JSON re-runs them
    # the toy's stages and the late ones, for real (the toy reads no file: no training needed)
    log = Pipeline(root, out=io.StringIO()).run([*toys, *late])
    assert [e["status"] for e in log] == ["done"] * len(toys + late)
    analysis = json.loads((root / "analysis" / f"toy_{main}_pretrained_seed0.json").read_text())
    assert analysis["numbers"]["toy_width"] == 0.5  # conf/analysis/toy.yaml's width
    manifest = json.loads((root / "figures" / "figures.json").read_text())
    assert [len(f["sources"]) for f in manifest["figures"] if f["kind"] == "toy_bars"] == [len(toys)]
    md = (root / "report.md").read_text()
    assert "**toy widths**" in md and "![toy_bars](figures/toy_bars.png)" in md  # its figure
    claim = "- **Toys are wider** (sst2): descriptive only: the claim is not registered in the plan"
    assert f"{claim} — toy basin width: pretrained 0.5 ± 0 (n = 3" in md  # its claim, on its numbers
    logged = json.loads((root / "wandb" / "logged.json").read_text())["runs"]
    summaries = {(r["init"], r["job_type"]): r for r in logged}
    for init in ("pretrained", "scratch"):
        assert summaries[(init, "landscape")]["summary"]["numbers/toy/toy_width"] == 0.5
    assert any(k.startswith("figures/toy_bars/") for k in summaries[(None, "figures")]["keys"])


def test_a_new_analysis_runs_through_bertviz_analyze(toy, tmp_path):
    from bertviz_landscape.cli.analyze import run as analyze

    out = tmp_path / "toy.json"
    cfg = compose(
        "analyze",
        [f"run={tmp_path / 'sst2_scratch_seed4'}", f"output={out}"],
        {"analysis": {"name": "toy", "width": 0.25}},
    )
    result = analyze(cfg)
    assert json.loads(out.read_text())["numbers"]["toy_width"] == 0.25 == result["numbers"]["toy_width"]


def test_a_new_analysis_has_its_rows_claim_figure_and_wandb_numbers(toy, tmp_path):
    from bertviz_landscape.publish.report.writer import write_report
    from bertviz_landscape.publish.wandb_media import analysis_summary

    root = tmp_path / "res"
    (root / "analysis").mkdir(parents=True)
    widths = {"pretrained": [0.52, 0.55, 0.50], "scratch": [0.31, 0.29, 0.34]}
    for init, values in widths.items():
        for seed, w in enumerate(values):
            path = root / "analysis" / f"toy_sst2_{init}_seed{seed}.json"
            path.write_text(json.dumps(toy_json(init, seed, w)))
    write_report(root)
    md = (root / "report.md").read_text()
    # the report's tables: its rows with their labels, an unlisted number under its name, no hidden one
    assert "| toy basin width | 0.5233 ± 0.02517 (n = 3, 95% CI [" in md
    assert "|   its spread | 0.05233 ± " in md
    # a constant number (toy_extra = 2.0 in every run) is a setting: no row (issue 27)
    assert "toy: toy_extra" not in md and "toy_bounded" not in md
    assert "| toy basin width | 0.52 | 0.55 | 0.5 | 0.31 | 0.29 | 0.34 |" in md  # per seed
    # its claim, decided with the others (the paper's five have no JSONs here)
    # a claim the frozen/default plan does not register is described, never decided (issue 27)
    assert "- **Toys are wider** (sst2): descriptive only: the claim is not registered in the plan" in md
    verdicts = json.loads((root / "claims.json").read_text())["verdicts"]
    assert [v["claim"] for v in verdicts][-1] == "toy_wider"
    # its figure, in the manifest and the report
    manifest = json.loads((root / "figures" / "figures.json").read_text())
    (fig,) = [f for f in manifest["figures"] if f["kind"] == "toy_bars"]
    assert len(fig["sources"]) == 6 and all(Path(f).is_file() for f in fig["files"])
    assert "**toy widths**" in md
    # its numbers in the W&B run summary of each (task, init), with their labels
    pre = [json.loads(p.read_text()) for p in sorted((root / "analysis").glob("toy_sst2_pretrained_*"))]
    summary, numbers = analysis_summary(pre, OPTS)
    assert summary["numbers/toy/toy_width"] == pytest.approx(0.52333, abs=1e-4)
    assert summary["analysis/toy/width"] == pytest.approx(0.52333, abs=1e-4)  # the mean over the seeds
    assert numbers["numbers/toy/toy_width"] == {
        "label": "toy basin width",
        "mean": summary["numbers/toy/toy_width"],
        "n": 3,
    }
    assert "numbers/toy/toy_extra" not in summary  # the rows are the report's


def test_without_the_toy_nothing_of_it_remains(tmp_path):
    assert "toy" not in registry.names() and "toy_bars" not in figures.ANALYSIS_FIGURES
    assert "toy_wider" not in claims.CLAIMS


def test_one_reader_of_a_summary_entry_reads_what_summarize_writes():
    """summary_entry is the one parser of {mean, std, n} (figures, report numbers, W&B summaries)."""
    data = {"summary": summarize([{"w": 1.0, "gone": None}, {"w": 3.0, "gone": float("nan")}])}
    data["summary"] |= {"bare": 2.5, "inf": {"mean": float("inf"), "std": 0.0, "n": 1}}
    assert summary_entry(data, "w") == SummaryEntry(2.0, 2.0**0.5, 2)
    assert summary_entry(data, "bare") == SummaryEntry(2.5, 0.0, 1)  # an old JSON's bare number
    assert summary_entry(data, "gone") is None and summary_entry(data, "inf") is None
    assert summary_entry(data, "absent") is None and summary_entry({}, "w") is None
    assert summary_mean(data, "w") == 2.0 and summary_mean(data, "gone") is None
    flat = summary_scalars({"analysis": "toy", "runs": [{}, {}], "summary": data["summary"]})
    assert flat["toy/w"] == 2.0 and flat["toy/w_std"] == 2.0**0.5 and "toy/gone" not in flat
