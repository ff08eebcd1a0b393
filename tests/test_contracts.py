"""The stage contracts: one owner per artefact, presets that compose, configs in the wheel."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_landscape_support import tiny_run  # noqa: F401  (fixture)

from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.config import CONF_DIR

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bertviz_landscape"
RUN_DIR_LITERALS = (
    "checkpoints/init",
    "checkpoints/final",
    "checkpoints/resume.ckpt",
    "checkpoints/epoch_",
    "snapshots/",
    "resume.ckpt",
    "metrics.json",
    "logs/metrics.csv",
    "dev_per_epoch.jsonl",
    "dev_predictions.jsonl",
    "run.json",
    "config.yaml",
)


def _string_constants(path: Path) -> list[str]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    ]


def test_run_directory_literals_live_only_in_rundir():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        for s in _string_constants(path):
            for lit in RUN_DIR_LITERALS:
                if lit == s or (len(lit) > 10 and lit in s):
                    offenders.append(f"{path.relative_to(ROOT)}: {s!r}")
        # a path joined by hand: <dir> / "snapshots" (the bare word is also a config key)
        offenders += [
            f"{path.relative_to(ROOT)}: {m}"
            for m in re.findall(r'/\s*"(?:snapshots|checkpoints|logs)"', path.read_text())
        ]
    for path in [ROOT / "Makefile", *(ROOT / "experiments").glob("*.sh")]:
        text = path.read_text()
        offenders += [
            f"{path.relative_to(ROOT)}: {lit}"
            for lit in ("checkpoints/init", "checkpoints/final")
            if lit in text
        ]
    assert not offenders, (
        "run-directory paths named outside bertviz_landscape/contracts/rundir.py:\n" + "\n".join(offenders)
    )


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_preset_composes_for_training(experiment):
    cfg = compose("train", [f"experiment={experiment}"])
    assert cfg.task.name and cfg.init.name and cfg.trainer.max_epochs >= 1
    assert cfg.logger.wandb.project == cfg.wandb.project  # one W&B project for the whole tool


@pytest.mark.parametrize("model", _options("model"))
@pytest.mark.parametrize("init", _options("init"))
def test_every_model_and_init_preset_composes(model, init):
    cfg = compose("train", [f"model={model}", f"init={init}"])
    assert cfg.model.name_or_path and cfg.init.lr > 0


@pytest.mark.parametrize("grid", _options("grid"))
@pytest.mark.parametrize("directions", _options("directions"))
def test_every_grid_and_direction_preset_builds_a_request(grid, directions, tmp_path):
    from bertviz_landscape.engine.request import LandscapeRequest

    cfg = compose(
        "landscape", [f"grid={grid}", f"directions={directions}", "task=mrpc", f"paths.output_dir={tmp_path}"]
    )
    req = LandscapeRequest.from_config(cfg)
    assert req.directions.name == directions and req.grid.two_d == (
        cfg.grid.get("y") is not None and cfg.grid.y.get("num") is not None
    )
    assert req.output.parent == (tmp_path / "surfaces").resolve()
    assert req.output.name == f"mrpc_{directions}_{grid}.h5"


def test_giving_y_makes_the_default_grid_2d():
    from bertviz_landscape.engine.request import LandscapeRequest

    req = LandscapeRequest.from_config(
        compose("landscape", ["task=mrpc", "grid.y.min=-1", "grid.y.max=1", "grid.y.num=3"])
    )
    assert req.grid.two_d and (req.grid.x.num, req.grid.y.num) == (21, 3)
    assert req.grid.shape == (3, 21)  # the surface's layout, rows are y
    from bertviz_landscape.contracts.errors import LandscapeError

    with pytest.raises(LandscapeError, match="grid.y.max, grid.y.num not given"):
        LandscapeRequest.from_config(compose("landscape", ["task=mrpc", "grid.y.min=-1"]))


def test_default_surface_name_carries_the_run(tmp_path):
    """Pretrained and scratch landscapes of one task do not overwrite each other by default."""
    from bertviz_landscape.contracts.atomic import write_json_atomic
    from bertviz_landscape.contracts.rundir import RunDir
    from bertviz_landscape.engine.request import LandscapeRequest

    names = set()
    for init in ("pretrained", "scratch"):
        run = RunDir(tmp_path / init)
        run.theta0.mkdir(parents=True)
        write_json_atomic(run.identity_file, {"task": "mrpc", "init": init, "seed": 42})
        req = LandscapeRequest.from_config(
            compose("landscape", [f"run={run.root}", f"paths.output_dir={tmp_path}"])
        )
        names.add(req.output.name)
    assert names == {"mrpc_pretrained_seed42_difference_line.h5", "mrpc_scratch_seed42_difference_line.h5"}


@pytest.mark.slow
def test_wheel_installs_and_finds_its_configs(tmp_path, tiny_run):
    """`pip install .` (not editable): the configs ship in the wheel; the CLI works from any directory."""
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheel_dir),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(wheel_dir.glob("bertviz_landscape-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # the fresh venv sees the dependencies of this one, but not its (editable) bertviz_landscape
    site = next((venv / "lib").glob("python*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("BVL_CONF_DIR", "PYTHONPATH")} | {
        "PYTHONPATH": str(target)
    }
    py = str(venv / "bin" / "python")
    where = subprocess.run(
        [py, "-c", "import bertviz_landscape.contracts.config as c; print(c.__file__); print(c.CONF_DIR)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert where.returncode == 0, where.stderr
    module_file, conf_dir = where.stdout.split()
    assert module_file.startswith(str(target)) and conf_dir.startswith(str(target)), where.stdout
    helped = subprocess.run(
        [py, "-m", "bertviz_landscape.cli.landscape", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert helped.returncode == 0 and "landscape" in helped.stdout, helped.stderr[-2000:]
    # and computes a tiny surface from there, with the configs of the wheel
    out = tmp_path / "tiny.h5"
    surface = subprocess.run(
        [
            py,
            "-m",
            "bertviz_landscape.cli.landscape",
            "task=mrpc",
            f"theta0={tiny_run['theta0']}",
            f"theta1={tiny_run['theta1']}",
            f"data.glue_dir={tiny_run['glue_dir']}",
            "data.max_length=32",
            f"data.cache_dir={tmp_path / 'cache'}",
            "grid.x.num=3",
            "splits=[dev]",
            f"output={out}",
            f"paths.output_dir={tmp_path / 'outputs'}",
            "progress=false",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert surface.returncode == 0, surface.stderr[-2000:]
    from bertviz_landscape.engine import load_surface

    assert list(load_surface(out).x) == [-0.5, 0.5, 1.5] and np.isfinite(load_surface(out)["dev_loss"]).all()
