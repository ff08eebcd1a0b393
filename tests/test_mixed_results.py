"""Nothing mixed in one results directory (issue 19 §2): two results of one analysis for one run
are refused naming both files, a copied run directory is never two seeds, and the report names
the JSON each number came from."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_changes_only_under, exits_2_with_one_line, tree_state
from test_claims import synthetic

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import AnalysisError, refuse_repeats, run_fingerprint
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.plots.results import Results, draw_all
from bertviz_landscape.publish.report.writer import write_report

EVIDENCE = {"alpha": 0.05, "min_runs": 3, "confidence": 0.95, "matched_loss_rtol": 0.1, "width_eps": 0.1}


def results_dir(root: Path, analyses: dict[str, list[dict]] | None = None) -> Path:
    """The claims fixture (3 seeds per arm, every analysis) as a results directory."""
    (root / "analysis").mkdir(parents=True)
    for name, datas in (analyses or synthetic()).items():
        for d in datas:
            r = d["runs"][0]
            (root / "analysis" / f"{name}_{r['task']}_{r['init']}_seed{r['seed']}.json").write_text(
                json.dumps(d)
            )
    (root / "evidence.json").write_text(json.dumps(EVIDENCE | {"min_epochs": 5}))
    return root


def fake_run(path: Path, weights: bytes, seed: int = 0) -> Path:
    """A run directory as RunDir sees one: run.json, metrics.json and θ1's weight file."""
    rd = RunDir(path)
    rd.theta0.mkdir(parents=True)
    (rd.theta0 / "model.safetensors").write_bytes(b"theta0 weights")
    rd.theta1.mkdir(parents=True)
    (rd.theta1 / "model.safetensors").write_bytes(weights)
    rd.metrics_json.write_text(json.dumps({"task": "sst2", "init": "pretrained"}))
    (path / "run.json").write_text(json.dumps({"task": "sst2", "init": "pretrained", "seed": seed}))
    return path


def nothing_written(root: Path) -> bool:
    return not any((root / n).exists() for n in ("figures", "report.md", "report.html", "claims.json"))


# --------------------------------------------------------------------------- two results of one run
@pytest.mark.parametrize("second", ["analysis/flatness_sst2_pretrained_seed0_hessian.json", "old/a.json"])
def test_two_results_of_one_analysis_for_one_run_are_refused_naming_both(tmp_path, second):
    """Was: the alphabetically first won in the report, the flatness figure drew both bars."""
    root = results_dir(tmp_path / "res")
    first = root / "analysis" / "flatness_sst2_pretrained_seed0.json"
    data = json.loads(first.read_text())
    data["numbers"]["invariant_width"] = 0.99  # other settings, another number for the same run
    (root / second).parent.mkdir(parents=True, exist_ok=True)
    (root / second).write_text(json.dumps(data))
    pair = sorted(["analysis/flatness_sst2_pretrained_seed0.json", second])
    expect = (
        rf"^{re.escape(pair[0])} and {re.escape(pair[1])}: two flatness results of one run "
        r"\(/runs/sst2_pretrained_seed0: sst2, pretrained, seed 0\) in .*: keep one of them"
    )
    before = tree_state(tmp_path)
    for call in (lambda: write_report(root), lambda: draw_all(root)):
        with pytest.raises(BadInput, match=expect):
            call()
        exits_2_with_one_line(call, pair[0], pair[1], "keep one of them")
    assert nothing_written(root)
    assert_changes_only_under(before, tmp_path)  # both JSONs kept: the user chooses


def test_bertviz_plot_refuses_them_in_one_line_with_exit_2(tmp_path):
    root = results_dir(tmp_path / "res")
    shutil.copy(root / "analysis" / "layers_sst2_scratch_seed1.json", root / "analysis" / "copy.json")
    proc = subprocess.run(
        [sys.executable, "-m", "bertviz_landscape.cli.plot", f"results={root}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert lines[-1].startswith(
        "bertviz-plot: error: analysis/copy.json and analysis/layers_sst2_scratch_seed1.json: two layers "
        "results of one run (/runs/sst2_scratch_seed1: sst2, scratch, seed 1)"
    )
    assert nothing_written(root)


# ---------------------------------------------------------------- a copied run is not a second seed
def test_a_copied_run_directory_is_refused_where_analyses_aggregate_seeds(tmp_path):
    run = fake_run(tmp_path / "runs" / "a", b"theta1 weights")
    copy = shutil.copytree(run, tmp_path / "runs" / "a_copy")
    other = fake_run(tmp_path / "runs" / "b", b"another training's weights", seed=1)
    with pytest.raises(
        AnalysisError, match=r"^runs: .*runs/a and .*runs/a_copy are copies of one run \(the "
    ):
        refuse_repeats([str(run), str(copy)], "runs")
    assert run_fingerprint(RunDir(run)) == run_fingerprint(RunDir(copy)) != run_fingerprint(RunDir(other))
    refuse_repeats([str(run), str(other)], "runs")  # two trainings: two seeds


def test_bertviz_analyze_refuses_a_copied_run_as_a_second_seed(tmp_path):
    from bertviz_landscape.cli.analyze import run as analyze
    from bertviz_landscape.cli.compose import compose

    run = fake_run(tmp_path / "a", b"theta1 weights")
    copy = shutil.copytree(run, tmp_path / "b")
    out = tmp_path / "longtrain.json"
    cfg = compose("analyze", ["analysis=longtrain", f"runs=[{run},{copy}]", f"output={out}"])
    with pytest.raises(BadInput, match=r"copies of one run .*would count as two seeds \(n = 2, std 0\)"):
        analyze(cfg)
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: analyze(cfg), str(run), str(copy), "would count as two seeds")
    assert_changes_only_under(before, tmp_path)
    assert not out.exists()


@pytest.mark.parametrize("recorded", [True, False], ids=["fingerprint in the JSON", "older JSON: from disk"])
def test_the_report_refuses_the_analyses_of_a_copied_run_as_two_seeds(tmp_path, recorded):
    root = tmp_path / "res"
    run = fake_run(root / "runs" / "sst2_pretrained_seed0", b"theta1 weights")
    copy = shutil.copytree(run, root / "runs" / "sst2_pretrained_seed0_copy")
    analyses = synthetic()
    datas = [d for d in analyses["consistency"] if d["runs"][0]["init"] == "pretrained"]
    for d, path in zip(datas[:2], (run, copy)):  # seeds 0 and "1": the same run under two paths
        d["runs"][0] |= {"run": str(path), "seed": 0}
        if recorded:
            d["runs"][0]["fingerprint"] = run_fingerprint(RunDir(path))
    datas[1]["numbers"]["regret_debiased"] = datas[0]["numbers"]["regret_debiased"]  # the registered metric
    (root / "analysis").mkdir(parents=True)
    for i, d in enumerate(analyses["consistency"]):
        (root / "analysis" / f"consistency_{i}.json").write_text(json.dumps(d))
    with pytest.raises(
        BadInput,
        match=r"^analysis/consistency_0.json and analysis/consistency_1.json: consistency of .*seed0 and of "
        r".*seed0_copy, copies of one run \(same task, init, seed and θ1 weights, fingerprint [0-9a-f]{16}\)",
    ):
        write_report(root)
    assert nothing_written(root)
    # another training with the same seed label is a run of its own
    (copy / "checkpoints" / "final" / "model.safetensors").write_bytes(b"other weights")
    if recorded:
        d = json.loads((root / "analysis" / "consistency_1.json").read_text())
        d["runs"][0]["fingerprint"] = run_fingerprint(RunDir(copy))
        (root / "analysis" / "consistency_1.json").write_text(json.dumps(d))
    assert len(Results.scan(root).analyses["consistency"]) == 12  # six seeds per arm (test_claims.CASES)


# --------------------------------------------------------------------------- which file each number came from
def _table(md: str, heading: str) -> list[list[str]]:
    block = md.split(heading, 1)[1].split("</details>", 1)[0]  # the folded table
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in block.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


def test_the_report_names_the_json_of_every_number(tmp_path):
    root = results_dir(tmp_path / "res")
    write_report(root)
    md = (root / "report.md").read_text()
    rows = _table(md, "Numbers: sst2, per seed</summary>")
    header, body = rows[0][1:], rows[1:]
    keys = {row.label.strip(): row.key for spec in registry.specs() for row in spec.rows}
    source, analysis, checked = None, None, 0
    for label, *cells in body:
        if label.endswith(": source"):
            analysis, source = label.split("**")[1], [c.strip("`") for c in cells]
            continue
        for col, cell in enumerate(cells):  # the number in this cell is the one in the JSON named above it
            data = json.loads((root / source[col]).read_text())
            assert data["analysis"] == analysis and header[col] == f"{data['runs'][0]['init']} seed " + str(
                data["runs"][0]["seed"]
            )
            assert f"{data['numbers'][keys[label]]:.4g}" == cell, (label, header[col], source[col])
            checked += 1
    # one number per registered claim, six since issue 28's basins (train_loss_theta1, constant, has no
    # row), twelve runs each
    assert checked == 6 * 12
    assert "| **flatness**: source | `analysis/flatness_sst2_pretrained_seed0.json` |" in md
    claims = json.loads((root / "claims.json").read_text())
    for v in claims["verdicts"]:
        for entries in v["per_run"].values():
            for e in entries:
                data = json.loads((root / e["source"]).read_text())
                assert data["numbers"][v["measure"]] == e["value"] and not Path(e["source"]).is_absolute()


def test_a_corrupt_analysis_json_is_named_in_the_report_not_dropped_silently(tmp_path):
    """Was: the seed's numbers were missing from the report with no word why (exit 0)."""
    root = results_dir(tmp_path / "res")
    broken = root / "analysis" / "layers_sst2_scratch_seed1.json"
    broken.write_text(broken.read_text()[:100])  # truncated mid-file
    before = tree_state(tmp_path)
    write_report(root)
    md = (root / "report.md").read_text()
    assert "## Files not read" in md
    line = next(x for x in md.splitlines() if "layers_sst2_scratch_seed1.json" in x and x.startswith("- "))
    assert line.startswith("- `analysis/layers_sst2_scratch_seed1.json`: ")
    manifest = json.loads((root / "figures" / "figures.json").read_text())
    assert any(Path(s["path"]).name == broken.name for s in manifest["skipped"])
    outputs = ("figures", "report.md", "report.html", "claims.json", "results.md")
    changed = assert_changes_only_under(before, tmp_path, *(root / n for n in outputs))
    assert broken not in changed  # the corrupt file is left for its owner to look at
