"""GPU-ready on a CPU: one job per GPU (device counts mocked), deterministic mode and its cuBLAS
setting before CUDA, TF32 only when asked, bf16 autocast for training through Lightning."""

from __future__ import annotations

import os

import pytest
import torch
from conftest import tiny_train_cfg

from bertviz_landscape.contracts.devices import (
    CUBLAS_WORKSPACE,
    configure_determinism,
    configure_matmul_precision,
    pick_device,
)
from bertviz_landscape.contracts.errors import BadInput


def test_landscape_shard_n_runs_on_gpu_n_mod_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [pick_device("auto", s) for s in range(6)] == [torch.device("cuda", i) for i in (0, 1, 2, 3, 0, 1)]
    assert pick_device("cpu", 3) == torch.device("cpu")  # an explicit device is kept
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # SLURM / Ray: the job sees only its own GPU
    assert {pick_device("auto", s) for s in range(4)} == {torch.device("cuda", 0)}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto", 5) == torch.device("cpu")


def test_training_job_n_runs_on_gpu_n_mod_count_in_a_hydra_multirun(glue_dir, monkeypatch):
    """The entrypoint's multirun path, with a 3-GPU machine mocked: job n gets devices=[n mod 3]."""
    from bertviz_landscape.cli import train as train_module

    seen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    monkeypatch.setattr(
        train_module,
        "train",
        lambda cfg, run_dir, **kw: seen.append((list(cfg.trainer.devices), cfg.trainer.accelerator)),
    )

    class Job:
        def __init__(self, num):
            self.num = num

    from hydra.types import RunMode

    for num in range(4):

        class Cfg:
            mode = RunMode.MULTIRUN
            job = Job(num)

            class runtime:
                output_dir = "/nonexistent"

        monkeypatch.setattr("hydra.core.hydra_config.HydraConfig.get", staticmethod(lambda c=Cfg: c))
        train_module.hydra_main.__wrapped__(tiny_train_cfg(glue_dir, "trainer.accelerator=auto"))
    assert seen == [([0], "gpu"), ([1], "gpu"), ([2], "gpu"), ([0], "gpu")]


def test_deterministic_mode_sets_the_cublas_workspace_first(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    try:
        configure_determinism(True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
        assert torch.are_deterministic_algorithms_enabled()
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")  # the other valid setting is kept
        configure_determinism(True)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
        configure_determinism(False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


def test_tf32_only_when_asked():
    before = torch.get_float32_matmul_precision()
    try:
        configure_matmul_precision("high")
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
        configure_matmul_precision("highest")
        assert torch.get_float32_matmul_precision() == "highest" and not torch.backends.cudnn.allow_tf32
        with pytest.raises(BadInput, match="matmul_precision"):
            configure_matmul_precision("tf32")
    finally:
        torch.set_float32_matmul_precision(before)
        torch.backends.cudnn.allow_tf32 = True


def test_training_configures_determinism_before_the_trainer(glue_dir, tmp_path, monkeypatch):
    """train() sets the cuBLAS workspace and deterministic algorithms from trainer.deterministic,
    and the fp32 default, before Lightning builds its Trainer; bf16 autocast trains (bf16-mixed)
    with fp32 weights, so the snapshots stay fp32-exact deltas."""
    import pytorch_lightning as pl

    from bertviz_landscape.contracts.snapshots import Snapshots
    from bertviz_landscape.training.train import train

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    seen = {}
    original = pl.Trainer.__init__

    def spy(self, *a, **k):
        seen.update(
            env=os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            det=torch.are_deterministic_algorithms_enabled(),
            matmul=torch.get_float32_matmul_precision(),
            precision=k.get("precision"),
        )
        original(self, *a, **k)

    monkeypatch.setattr(pl.Trainer, "__init__", spy)
    train(tiny_train_cfg(glue_dir, "trainer.precision=bf16-mixed"), tmp_path / "run")
    assert seen == {"env": CUBLAS_WORKSPACE, "det": True, "matmul": "highest", "precision": "bf16-mixed"}
    snaps = Snapshots(tmp_path / "run")
    assert snaps.delta(snaps.steps[-1])["classifier.weight"].abs().sum() > 0
