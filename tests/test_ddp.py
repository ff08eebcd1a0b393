"""Multi-process training without a GPU: Lightning DDP on the CPU (gloo), two processes, through
the command line (Lightning re-runs the command for rank 1 inside rank 0's fit)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import write_glue
from safetensors.torch import load_file

from bertviz_landscape.contracts.snapshots import Snapshots

# the same run either way: no dropout (each rank would draw its own masks), random batches (not
# length-grouped: a rank's half-batch must hold the same examples as the one-process batch), a
# snapshot every step, the tiny model from scratch with a seeded init, two epochs
COMMON = [
    "model=tiny",
    "init=scratch",
    "logger=none",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.max_epochs=3",
    "data.group_by_length=false",
    "data.eval_batch_size=8",
    "callbacks.snapshots.every_n_steps=1",
    "callbacks.epochs.dev_predictions=false",
    "+model.config_overrides.hidden_dropout_prob=0.0",
    "+model.config_overrides.attention_probs_dropout_prob=0.0",
]
GLOBAL_BATCH = 8
# θ1 after 18 AdamW steps: DDP averages the two ranks' mean gradients over 4 examples each, the
# one-process run takes the mean over the same 8; they differ by float32 summation order only
# (~1e-7 relative per step, amplified by AdamW's normalisation of tiny second moments)
ATOL, RTOL = 2e-5, 1e-4


def command(run: Path, glue: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bertviz_landscape.cli.train",
        *COMMON,
        f"data.glue_dir={glue}",
        f"hydra.run.dir={run}",
        *overrides,
    ]


def environment() -> dict[str, str]:
    root = str(Path(__file__).parents[1])
    return os.environ | {
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",  # two ranks on a 2-core machine: one thread each
    }


def layout(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}


def theta1(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "final" / "model.safetensors"))


DDP = ["trainer.strategy=ddp", "trainer.devices=2", f"data.batch_size={GLOBAL_BATCH // 2}"]


@pytest.mark.slow
def test_two_cpu_processes_train_like_one(tmp_path):
    """Two processes (DDP, gloo, half the batch each) end where one process with the whole batch
    ends; snapshots, checkpoints and records are written once, by rank 0, in the same layout; a
    DDP run killed after its first epoch resumes and ends at the same θ1."""
    glue = write_glue(tmp_path / "glue", n_train=48, n_dev=16)
    one, two = tmp_path / "one", tmp_path / "two"
    env = environment()
    subprocess.run(command(one, glue, f"data.batch_size={GLOBAL_BATCH}"), env=env, check=True, timeout=600)
    subprocess.run(command(two, glue, *DDP), env=env, check=True, timeout=600)

    # rank 1 logs to its own file (Lightning names its Hydra job train_ddp_process_1); nothing else differs
    assert layout(two) - layout(one) == {"train_ddp_process_1.log"}
    assert layout(one) - layout(two) == set()
    snaps_one, snaps_two = Snapshots(one), Snapshots(two)
    assert snaps_two.steps == snaps_one.steps == list(range(1, 19))  # 48 / 8 = 6 steps x 3 epochs
    index = (two / "snapshots" / "index.jsonl").read_text().splitlines()
    assert len(index) == len(set(index)) == 18  # each snapshot recorded once
    a, b = theta1(one), theta1(two)
    assert a.keys() == b.keys()
    theta0 = load_file(str(one / "checkpoints" / "init" / "model.safetensors"))
    for name in a:
        assert (
            not torch.equal(a[name], theta0[name]) or "position_ids" in name or a[name].dtype != torch.float32
        )
        torch.testing.assert_close(b[name], a[name], atol=ATOL, rtol=RTOL, msg=name)
    for step in (1, 9, 18):  # the trajectory too
        for name, delta in snaps_two.delta(step).items():
            torch.testing.assert_close(delta, snaps_one.delta(step)[name], atol=ATOL, rtol=RTOL)

    # resume: kill both ranks once the first epoch's resume state is there, run the command again
    three = tmp_path / "three"
    proc = subprocess.Popen(command(three, glue, *DDP), env=env, start_new_session=True)
    resume = three / "checkpoints" / "resume.ckpt"
    deadline = time.monotonic() + 600
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if not resume.exists():
        pytest.fail("the DDP run ended before its first epoch's resume state was seen")
    assert not (three / "checkpoints" / "final").exists()
    done = subprocess.run(command(three, glue, *DDP), env=env, timeout=600, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming the interrupted run" in (three / "train.log").read_text()
    assert Snapshots(three).steps == list(range(1, 19))
    for name, value in theta1(three).items():
        torch.testing.assert_close(value, a[name], atol=ATOL, rtol=RTOL, msg=name)


def test_rank_shares_interleave_to_the_one_process_order():
    """N ranks' shares, batch b each, together hold the one-process batches of N·b in order, for
    every epoch (set_epoch reaches the shuffle); an order not divisible by N is padded from its
    start, as DistributedSampler pads."""
    from bertviz_landscape.training.data.datamodule import EpochShuffle, RankShare

    for size, n, b in ((48, 2, 4), (50, 4, 3)):
        one = EpochShuffle(size, seed=7)
        shares = [RankShare(EpochShuffle(size, seed=7), n, r) for r in range(n)]
        for epoch in (0, 1, 2):
            one.set_epoch(epoch)
            for s in shares:
                s.set_epoch(epoch)
            order = list(one)
            padded = order + order[: -size % n]
            lists = [list(s) for s in shares]
            assert all(len(x) == len(padded) // n for x in lists)
            merged = [x[i] for i in range(len(lists[0])) for x in lists]
            assert merged == padded
            batches = [sum((x[k : k + b] for x in lists), []) for k in range(0, len(lists[0]), b)]
            assert [sorted(batch) for batch in batches] == [
                sorted(padded[k : k + n * b]) for k in range(0, len(padded), n * b)
            ]
        assert list(shares[0]) != list(EpochShuffle(size, seed=7))[::n]  # epoch 2 is not epoch 0's order


def test_one_process_runs_keep_their_fingerprint_and_ddp_runs_get_their_own():
    """trainer.strategy is new: with its default (auto) a run's fingerprint is what it was before
    the key existed (run directories made earlier are not refused); ddp makes another run."""
    from conftest import compose_train

    from bertviz_landscape.contracts.fingerprints import digest
    from bertviz_landscape.training.train import fingerprint_config

    one = fingerprint_config(compose_train(["model=tiny"]))
    assert "strategy" not in one["trainer"]
    ddp = fingerprint_config(compose_train(["model=tiny", "trainer.strategy=ddp"]))
    assert ddp["trainer"]["strategy"] == "ddp" and digest(ddp) != digest(one)
