"""Cluster launchers exercised for real: submitit (the project's `slurm_local`: submitit's local
executor, the SLURM code path) and Ray (`ray_local`: a Ray instance the launcher starts, the
`ray_cluster` code path). A 2D grid split over two shards equals the single-process surface, and
a training multirun of two runs equals the same runs trained in one process. GPU requests of the
presets are overridden to 0 here (a CPU-only machine): `hydra.launcher.gpus_per_node=0`,
`hydra.launcher.ray.remote.num_gpus=0`.

The plugins are optional extras (`pip install bertviz-landscape[slurm]` / `[ray]`); without them
these tests are skipped, saying which extra to install (they fail instead with BVL_REQUIRE_EXTRAS=1,
as in .ci/run, which installs the extras).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import require_extra, write_glue
from helpers.landscape import tiny_run  # noqa: F401  (fixture)
from helpers.shards import assert_same_surface, cli_args, reference  # noqa: F401  (fixture)
from safetensors.torch import load_file

from bertviz_landscape.engine.surface import load_surface

pytestmark = pytest.mark.slow

LAUNCHERS = {
    # name: (the plugin module, the extra that installs it, overrides for a CPU-only 2-core machine)
    "slurm_local": (
        "hydra_plugins.hydra_submitit_launcher",
        "slurm",
        [
            "hydra/launcher=slurm_local",
            "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.timeout_min=20",
        ],
    ),
    "ray_local": (
        "hydra_plugins.hydra_ray_launcher",
        "ray",
        [
            "hydra/launcher=ray_local",
            "hydra.launcher.ray.remote.num_gpus=0",
            "hydra.launcher.ray.remote.num_cpus=1",
            "+hydra.launcher.ray.init.num_cpus=2",
        ],
    ),
}


def launcher(name: str) -> list[str]:
    module, extra, overrides = LAUNCHERS[name]
    require_extra(module, extra)  # the launcher's Hydra plugin
    return overrides


def run_module(module: str, args: list[str], cwd, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("name", list(LAUNCHERS))
def test_sharded_grid_equals_single_process_surface(name, tiny_run, reference, tmp_path):
    overrides = launcher(name)
    out = tmp_path / "sharded.h5"
    proc = run_module(
        "bertviz_landscape.cli.landscape",
        [
            "-m",
            "shard=0,1",
            "num_shards=2",
            *overrides,
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
            *cli_args(tiny_run, out, tmp_path),
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    assert out.is_file(), "the last shard to finish merges"
    assert_same_surface(load_surface(out), reference)
    parts = next((tmp_path / "sharded.h5.parts").iterdir())
    assert len(list(parts.glob("points-*.jsonl"))) == 2  # two shards, each in its own job


TRAIN = [
    "model=tiny",
    "init=scratch",
    "logger=none",
    "data.batch_size=8",
    "data.eval_batch_size=8",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.snapshots.every_n_steps=2",
]


@pytest.fixture(scope="module")
def reference_multirun(tmp_path_factory):
    """The same two-run multirun in one process (Hydra's basic launcher), with the same thread
    count as the launched jobs (OMP_NUM_THREADS=1): floating-point results depend on it."""
    root = tmp_path_factory.mktemp("basic")
    glue = write_glue(root / "glue")
    proc = run_module(
        "bertviz_landscape.cli.train",
        [
            "-m",
            "task=mrpc,rte",
            *TRAIN,
            f"data.glue_dir={glue}",
            "hydra/launcher=basic",
            f"hydra.sweep.dir={root / 'sweep'}",
        ],
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"glue": glue, "sweep": root / "sweep"}


@pytest.mark.parametrize("name", list(LAUNCHERS))
def test_training_multirun_equals_runs_in_one_process(name, reference_multirun, tmp_path):
    overrides = launcher(name)
    sweep = tmp_path / "sweep"
    proc = run_module(
        "bertviz_landscape.cli.train",
        [
            "-m",
            "task=mrpc,rte",
            *TRAIN,
            f"data.glue_dir={reference_multirun['glue']}",
            *overrides,
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-4000:])
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0_mrpc_scratch", "1_rte_scratch"]
    for job in jobs:
        ref_job = reference_multirun["sweep"] / job.name
        got = load_file(str(job / "checkpoints" / "final" / "model.safetensors"))
        ref = load_file(str(ref_job / "checkpoints" / "final" / "model.safetensors"))
        assert all(torch.equal(got[k], ref[k]) for k in ref), (
            f"{job.name}: θ1 differs from the same run in one process"
        )
        assert (
            json.loads((job / "metrics.json").read_text())["dev"]
            == json.loads((ref_job / "metrics.json").read_text())["dev"]
        )
        assert len(list((job / "snapshots").glob("step_*.safetensors"))) == len(
            list((ref_job / "snapshots").glob("step_*.safetensors"))
        )
