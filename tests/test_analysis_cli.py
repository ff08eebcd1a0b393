"""bertviz-analyze as users call it: the CLI, W&B offline summaries, and bad input (one line,
exit 2, no JSON)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from test_analysis_support import analysis_run, make_run_dir  # noqa: F401  (fixture)

import bertviz_landscape.analysis  # noqa: F401  (the output-name resolver)
from bertviz_landscape.cli.analyze import run as analyze
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.checkpoints import content_hash
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import Surface, load_surface, write_surface


def run_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    script = Path(sys.executable).with_name(
        "bertviz-analyze"
    )  # the installed console script (pyproject [project.scripts])
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "bertviz_landscape.cli.analyze"]
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_cli_runs_trajectory_consistency_and_flatness_on_a_run(analysis_run, tmp_path):
    proc = run_cli(
        "-m",
        "analysis=trajectory,consistency,flatness",
        f"run={analysis_run['run']}",
        f"surface={analysis_run['surface']}",
        f"paths.output_dir={tmp_path}",
        "progress=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("trajectory", "consistency", "flatness"):
        out = json.loads((tmp_path / "analysis" / f"mrpc_scratch_seed7_{name}.json").read_text())
        assert out["analysis"] == name and out["format"] == "bertviz-analysis/1" and len(out["per_run"]) == 1
        assert out["runs"][0]["run"] == str(analysis_run["run"]) and out["runs"][0]["beat_baseline"] is True
        assert all({"mean", "std", "n"} == set(v) for v in out["summary"].values())
    traj = json.loads((tmp_path / "analysis" / "mrpc_scratch_seed7_trajectory.json").read_text())
    assert traj["per_run"][0]["lstsq"][-1] == pytest.approx([1.0, 0.0], abs=1e-6)
    assert Path(traj["per_run"][0]["projection_file"]).is_file()


def test_several_seeds_give_mean_std_n(analysis_run, tmp_path):
    surf = analysis_run["surface"]
    # a second seed's surface: the same grid, a steeper loss along δ1 (so its basin is another width)
    other = load_surface(surf)
    bowl = 5.0 * (other.x - 1.0) ** 2  # broadcasts along x (the last axis) in 1D and 2D
    other.values = {k: v + bowl if k == "train_loss" else v for k, v in other.values.items()}
    # a second seed's run: another θ1 (a plain copy of the run would be one run twice, refused), and
    # its surface records that θ1
    run2 = shutil.copytree(analysis_run["run"], tmp_path / "run_seed2")
    theta1 = RunDir(run2).theta1 / "model.safetensors"
    weights = safetensors.torch.load_file(theta1)
    first = sorted(weights)[0]
    weights[first] = weights[first] + 1e-3
    safetensors.torch.save_file(weights, theta1, metadata={"format": "pt"})
    other.meta["checkpoints"]["theta1"]["sha256"] = content_hash(RunDir(run2).theta1)
    surf2 = write_surface(tmp_path / "seed2.h5", other)
    for d in (Path(surf).parent,):
        for f in d.glob(Path(surf).stem + ".directions.h5"):
            shutil.copy(f, tmp_path / "seed2.directions.h5")

    def flatness(surfaces, runs):
        return analyze(
            compose(
                "analyze",
                [
                    "analysis=flatness",
                    f"surfaces=[{','.join(map(str, surfaces))}]",
                    f"runs=[{','.join(map(str, runs))}]",
                    f"output={tmp_path / 'f.json'}",
                ],
            )
        )

    with pytest.raises(BadInput, match=r"are the same file: one input given twice would count as two seeds"):
        flatness([surf, surf], [analysis_run["run"], run2])  # the same surface as two seeds: n = 2, std 0
    assert not (tmp_path / "f.json").exists()
    res = flatness([surf, surf2], [analysis_run["run"], run2])
    assert len(res["per_run"]) == 2 and len(res["runs"]) == 2
    w = [p["width"]["x"]["0.5"]["units_delta1"] for p in res["per_run"]]
    summary = res["summary"]["width_x_0.5"]
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(np.mean(w))
    assert summary["std"] == pytest.approx(np.std(w, ddof=1)) and w[0] != w[1]
    assert json.loads((tmp_path / "f.json").read_text())["summary"] == res["summary"]


def test_wandb_offline_summary_holds_the_numbers(analysis_run, tmp_path):
    from test_train import read_wandb_run

    cfg = compose(
        "analyze",
        [
            "analysis=consistency",
            f"surface={analysis_run['surface']}",
            f"output={tmp_path / 'c.json'}",
            "wandb.enabled=true",
            f"wandb.dir={tmp_path}",
        ],
    )
    res = analyze(cfg)
    summary = read_wandb_run(tmp_path)["summary"]
    assert summary["consistency/iou_50"] == pytest.approx(res["summary"]["iou_50"]["mean"])
    assert summary["consistency/num_runs"] == 1 and summary["consistency/all_beat_baseline"] is True


def _expect_bad(overrides, tmp_path, match):
    out = tmp_path / "bad.json"
    cfg = compose("analyze", [*overrides, f"output={out}"])
    with pytest.raises(BadInput, match=match):
        analyze(cfg)
    assert not out.exists() and not list(tmp_path.glob(".bad.json.*"))


def test_surface_of_another_run_is_refused(analysis_run, tmp_path):
    other = make_run_dir(tmp_path / "other", analysis_run["tiny"], final=analysis_run["tiny"]["theta2"])
    shutil.copytree(analysis_run["run"] / "snapshots", other / "snapshots")
    _expect_bad(
        ["analysis=trajectory", f"run={other}", f"surface={analysis_run['surface']}"],
        tmp_path,
        rf"surface {analysis_run['surface']} was not computed from run {other}: its theta1 checkpoint hash",
    )


def test_run_without_snapshots_is_refused(analysis_run, tmp_path):
    bare = make_run_dir(tmp_path / "bare", analysis_run["tiny"])
    _expect_bad(
        ["analysis=trajectory", f"run={bare}", f"surface={analysis_run['surface']}"],
        tmp_path,
        rf"run={bare} has no snapshots",
    )


def test_1d_surface_given_to_a_2d_analysis_is_refused(analysis_run, tmp_path):
    s = load_surface(analysis_run["surface"])
    j = int(np.argmin(np.abs(s.y)))
    line = write_surface(
        tmp_path / "line.h5", Surface(s.x, None, {k: v[j] for k, v in s.values.items()}, s.meta)
    )
    _expect_bad(
        ["analysis=trajectory", f"run={analysis_run['run']}", f"surface={line}"],
        tmp_path,
        rf"analysis=trajectory needs a 2D surface .*{line} is 1D",
    )


def test_unknown_layer_name_is_refused(analysis_run, tmp_path):
    _expect_bad(
        [
            "analysis=trajectory",
            f"run={analysis_run['run']}",
            f"surface={analysis_run['surface']}",
            "analysis.pca.params=[layer.9]",
        ],
        tmp_path,
        r"analysis.pca: parameter selector 'layer.9' matches no parameter",
    )


def test_missing_key_is_refused(analysis_run, tmp_path):
    _expect_bad(
        ["analysis=consistency", f"surface={analysis_run['surface']}", "analysis.dev_key=dev_pearson"],
        tmp_path,
        r"has no 'dev_pearson' array \(analysis.dev_key=dev_pearson\)",
    )


def test_cli_bad_input_is_one_line_exit_2_and_no_json(analysis_run, tmp_path):
    out = tmp_path / "x.json"
    proc = run_cli(
        "analysis=trajectory",
        f"run={tmp_path / 'nowhere'}",
        f"surface={analysis_run['surface']}",
        f"output={out}",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bertviz-analyze: error:")]
    assert len(errors) == 1 and "nowhere: directory does not exist" in errors[0]
    assert not out.exists()
