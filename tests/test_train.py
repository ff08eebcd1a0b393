"""Training runs: θ0/θ1 checkpoints, reproducibility, snapshots, logging, re-runs, bad input."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import evaluate_with_plain_transformers, tiny_train_cfg
from helpers.train import CrashAt, read_wandb_run
from safetensors.torch import load_file

from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.training.callbacks import SnapshotBudgetError
from bertviz_landscape.training.train import train


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


def test_run_writes_documented_outputs(glue_dir, tmp_path):
    result = train(tiny_train_cfg(glue_dir, "logger=csv"), tmp_path / "run")
    run = tmp_path / "run"
    for ckpt in ("init", "final"):
        assert (run / "checkpoints" / ckpt / "config.json").is_file()
        assert (run / "checkpoints" / ckpt / "tokenizer.json").is_file()
    assert json.loads((run / "metrics.json").read_text()) == result
    assert {"val/loss", "val/accuracy", "val/f1"} <= set(result["dev"])
    assert result["steps"] == 3 and result["train_examples"] == 24  # 24 examples / batch 8
    header = (run / "logs" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/loss", "val/accuracy", "train/loss_step"} <= set(header)
    # the trained weights moved away from θ0
    init, final = weights(run / "checkpoints" / "init"), weights(run / "checkpoints" / "final")
    assert any(not torch.equal(init[k], final[k]) for k in init)
    # per-example dev results of every epoch, in the dev set's order: they give back the epoch's accuracy
    (row,) = [json.loads(line) for line in (run / "logs" / "dev_predictions.jsonl").read_text().splitlines()]
    assert row["epoch"] == 1 and row["step"] == 3 and len(row["predictions"]) == len(row["losses"]) == 12
    right = [p == y for p, y in zip(row["predictions"], row["labels"])]
    assert sum(right) / 12 == pytest.approx(result["dev"]["val/accuracy"])
    assert sum(row["losses"]) / 12 == pytest.approx(result["dev"]["val/loss"], rel=1e-5)


def test_scratch_theta0_is_shared_across_tasks(glue_dir, tmp_path):
    train(tiny_train_cfg(glue_dir, "task=mrpc", "callbacks=none"), tmp_path / "mrpc")
    train(tiny_train_cfg(glue_dir, "task=rte", "callbacks=none"), tmp_path / "rte")
    train(tiny_train_cfg(glue_dir, "task=mrpc", "callbacks=none", "init.seed=1"), tmp_path / "other_seed")
    a = weights(tmp_path / "mrpc" / "checkpoints" / "init")
    b = weights(tmp_path / "rte" / "checkpoints" / "init")
    c = weights(tmp_path / "other_seed" / "checkpoints" / "init")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        a["bert.encoder.layer.0.attention.self.query.weight"],
        c["bert.encoder.layer.0.attention.self.query.weight"],
    )


def test_identical_runs_give_identical_metrics(glue_dir, tmp_path):
    first = train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), tmp_path / "a")
    second = train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), tmp_path / "b")
    assert first["dev"] == second["dev"]
    fa, fb = (
        weights(tmp_path / "a" / "checkpoints" / "final"),
        weights(tmp_path / "b" / "checkpoints" / "final"),
    )
    assert all(torch.equal(fa[k], fb[k]) for k in fa)


def test_final_checkpoint_reloads_and_reproduces_dev_metric(glue_dir, tmp_path):
    result = train(tiny_train_cfg(glue_dir, "task=rte", "trainer.max_epochs=2"), tmp_path / "run")
    loss, accuracy = evaluate_with_plain_transformers(
        tmp_path / "run" / "checkpoints" / "final", "rte", glue_dir
    )
    assert accuracy == pytest.approx(result["dev"]["val/accuracy"], abs=1e-6)
    assert loss == pytest.approx(result["dev"]["val/loss"], rel=1e-4)


class RecordWeights(pl.Callback):
    """The exact fp32 weights after every optimiser step, to check the snapshots against."""

    def __init__(self):
        self.by_step = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.by_step[trainer.global_step] = {
            n: p.detach().clone() for n, p in pl_module.model.named_parameters()
        }


def within_stored_dtype(
    rebuilt: torch.Tensor, exact: torch.Tensor, theta0: torch.Tensor, rtol: float
) -> bool:
    """|θ0 + δ̂ − θ_t| ≤ rounding of δ in the stored dtype (relative to δ, plus fp16's subnormal
    spacing) + the float32 rounding of the sum θ0 + δ̂ (relative to θ)."""
    delta = exact - theta0
    return bool(((rebuilt - exact).abs() <= rtol * delta.abs() + 2**-23 * exact.abs() + 3e-8).all())


@pytest.mark.parametrize("dtype,rtol", [("float16", 2**-11), ("bfloat16", 2**-8), ("float32", 2**-24)])
def test_snapshots_reconstruct_weights_at_every_step(glue_dir, tmp_path, monkeypatch, dtype, rtol):
    recorder = RecordWeights()
    original = pl.Trainer.__init__

    def with_recorder(self, *args, callbacks=None, **kwargs):
        original(self, *args, callbacks=[*(callbacks or []), recorder], **kwargs)

    monkeypatch.setattr(pl.Trainer, "__init__", with_recorder)
    run = tmp_path / "run"
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2", f"callbacks.snapshots.dtype={dtype}"), run)
    snaps = Snapshots(run)
    assert snaps.steps == [1, 2, 3, 4, 5, 6] and snaps.meta["dtype"] == dtype
    assert [r.epoch for r in snaps.records] == [0, 0, 0, 1, 1, 1]
    assert all(isinstance(r.loss, float) for r in snaps.records[:-1])
    theta0 = snaps.theta0()
    for step in snaps.steps:
        exact = recorder.by_step[step]
        rebuilt = snaps.weights(step, theta0)
        assert rebuilt.keys() == exact.keys()
        for name, value in exact.items():
            assert within_stored_dtype(rebuilt[name], value, theta0[name], rtol), (step, name)
    final = {k: v.float() for k, v in weights(run / "checkpoints" / "final").items()}
    last = snaps.weights(snaps.steps[-1], theta0)
    for name, value in last.items():
        assert within_stored_dtype(value, final[name], theta0[name], rtol), name


@pytest.mark.parametrize("sketch", [False, True], ids=["deltas", "deltas+sketch"])
def test_snapshot_buffers_are_reused_and_deltas_are_exactly_the_rounded_difference(
    glue_dir, tmp_path, monkeypatch, sketch
):
    """Each stored delta is exactly (θ_t − θ0) rounded once to float16, although the host
    buffers are reused across steps (at most queue_size + 2 sets are ever allocated)."""
    from bertviz_landscape.training.callbacks import WeightSnapshots

    recorder, created = RecordWeights(), []
    original, take = pl.Trainer.__init__, WeightSnapshots._take_buffers

    def counting(self):
        before = self._free.qsize()
        out = take(self)
        if before == 0:
            created.append(id(out))
        return out

    monkeypatch.setattr(WeightSnapshots, "_take_buffers", counting)
    monkeypatch.setattr(
        pl.Trainer,
        "__init__",
        lambda self, *a, callbacks=None, **k: original(
            self, *a, callbacks=[*(callbacks or []), recorder], **k
        ),
    )
    extra = (
        ["callbacks.snapshots.sketch.enabled=true", "callbacks.snapshots.sketch.buckets=64"] if sketch else []
    )
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=4", *extra), tmp_path / "run")
    snaps = Snapshots(tmp_path / "run")
    assert snaps.steps == list(range(1, 13)) and len(created) <= 4 + 2
    theta0 = snaps.theta0()
    for step in snaps.steps:
        stored = snaps.delta(step)
        for name, value in recorder.by_step[step].items():
            assert torch.equal(stored[name], (value - theta0[name]).to(torch.float16)), (step, name)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_delta_pass_is_bit_identical_to_the_rounded_difference(monkeypatch, dtype):
    """The chunked delta pass (through a scratch, into views of a file image) stores exactly
    (θ_t − θ0).to(dtype): tensors below, at and across the chunk and small-tensor sizes, float32
    and bfloat16 parameters (the subtraction in the parameters' dtype, as before)."""
    from bertviz_landscape.contracts.snapshots import DTYPES, SafetensorsImage
    from bertviz_landscape.training.callbacks import weight_snapshots as ws

    monkeypatch.setattr(ws, "CHUNK", 64)
    monkeypatch.setattr(ws, "SMALL", 16)
    gen = torch.Generator().manual_seed(0)
    shapes = {"a": (3,), "b": (16,), "c": (17,), "d": (64,), "e": (65,), "f": (7, 31), "g": (130, 3), "h": ()}
    for param_dtype in (torch.float32, torch.bfloat16):
        theta0 = [torch.randn(s, generator=gen).to(param_dtype) for s in shapes.values()]
        # deltas of every magnitude: fp16's subnormals and overflow, exact zeros
        current = [
            (p0.float() + torch.randn(p0.shape, generator=gen) * 10.0 ** torch.randint(-9, 6, p0.shape)).to(
                param_dtype
            )
            for p0 in theta0
        ]
        current[0] = theta0[0].clone()
        image = SafetensorsImage(shapes, DTYPES[dtype])
        views = image.lay_out({"step": "5", "epoch": "0"})
        for v in views.values():
            v.fill_(float("nan"))  # a reused buffer's old contents never leak through
        ws.round_delta_into(list(views.values()), current, theta0, ws.delta_scratch(current))
        for view, p, p0 in zip(views.values(), current, theta0):
            expected = (p - p0).to(DTYPES[dtype])
            same_bits = torch.equal(
                view.reshape(-1).view(torch.uint8), expected.reshape(-1).view(torch.uint8)
            )
            assert same_bits, (param_dtype, view.shape)


@pytest.mark.parametrize("overlap", [True, False], ids=["overlapped", "on the training thread"])
def test_chunked_deltas_of_a_run_are_exactly_the_rounded_difference(glue_dir, tmp_path, monkeypatch, overlap):
    """A run whose tensors are larger than the delta pass's chunks (the tiny model's are not at
    the real sizes) stores exactly (θ_t − θ0) rounded once to float16 — also when the helper
    thread is slow, so that the training thread must finish the pass before the optimiser
    moves θ (without that wait, a later step's θ would leak into the delta)."""
    import threading
    import time

    from bertviz_landscape.training.callbacks import WeightSnapshots
    from bertviz_landscape.training.callbacks import weight_snapshots as ws

    monkeypatch.setattr(ws, "CHUNK", 100)
    monkeypatch.setattr(ws, "SMALL", 40)
    monkeypatch.setattr(ws, "PIECE", 100)
    monkeypatch.setattr(ws, "GROUP", 3)
    monkeypatch.setattr(WeightSnapshots, "overlap", overlap)
    run_task, helper_tasks = ws.DeltaPass.run, []

    def slow_helper(self, k, out, scratch):
        if threading.current_thread().name == "weight-snapshot-deltas":
            helper_tasks.append(k)
            time.sleep(0.002)
        run_task(self, k, out, scratch)

    monkeypatch.setattr(ws.DeltaPass, "run", slow_helper)
    recorder, original = RecordWeights(), pl.Trainer.__init__
    monkeypatch.setattr(
        pl.Trainer,
        "__init__",
        lambda self, *a, callbacks=None, **k: original(
            self, *a, callbacks=[*(callbacks or []), recorder], **k
        ),
    )
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), tmp_path / "run")
    snaps = Snapshots(tmp_path / "run")
    theta0 = snaps.theta0()
    assert snaps.steps == list(range(1, 7))
    assert max(t.numel() for t in theta0.values()) > 100 and min(t.numel() for t in theta0.values()) <= 40
    assert bool(helper_tasks) == overlap  # the helper did part of the work (and only when overlapping)
    for step in snaps.steps:
        stored = snaps.delta(step)
        for name, value in recorder.by_step[step].items():
            assert torch.equal(stored[name], (value - theta0[name]).to(torch.float16)), (step, name)


@pytest.mark.parametrize(
    "setting,cpus,overlapped",
    [("true", 2, True), ("false", 8, False), ("auto", 2, False), ("auto", 8, True)],
)
def test_the_delta_pass_runs_on_a_helper_thread_only_where_the_config_or_a_free_cpu_says(
    glue_dir, tmp_path, monkeypatch, setting, cpus, overlapped
):
    """callbacks.snapshots.overlap: true / false force it; auto overlaps only where the process may
    use more CPUs than torch's threads (2 threads here): on 2 CPUs the helper would take a core
    training's OpenMP team waits on. A value that is none of the three is one line."""
    from bertviz_landscape.training.callbacks import weight_snapshots as ws

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    made = []
    real_init = ws.DeltaPass.__init__
    monkeypatch.setattr(ws.DeltaPass, "__init__", lambda self, *a: (made.append(1), real_init(self, *a))[1])
    train(tiny_train_cfg(glue_dir, f"callbacks.snapshots.overlap={setting}"), tmp_path / "run")
    assert bool(made) == overlapped
    assert Snapshots(tmp_path / "run").steps  # snapshots written either way
    with pytest.raises(
        ws.SnapshotConfigError, match="callbacks.snapshots.overlap must be true, false or auto"
    ):
        ws.overlap_setting("sometimes")


def test_shared_delta_pass_is_bit_identical_to_the_rounded_difference(monkeypatch):
    """The overlapped pass's tasks, taken by two threads in turn, store (θ_t − θ0).to(dtype)."""
    import threading

    from bertviz_landscape.contracts.snapshots import SafetensorsImage
    from bertviz_landscape.training.callbacks import weight_snapshots as ws

    monkeypatch.setattr(ws, "PIECE", 50)
    monkeypatch.setattr(ws, "GROUP", 2)
    gen = torch.Generator().manual_seed(1)
    shapes = {"a": (3,), "b": (50,), "c": (51,), "d": (7, 31), "e": (0,), "f": ()}
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        theta0 = [torch.randn(s, generator=gen) for s in shapes.values()]
        current = [p0 + torch.randn(p0.shape, generator=gen) * 1e-4 for p0 in theta0]
        delta_pass = ws.DeltaPass(current, theta0)
        image = SafetensorsImage(shapes, dtype)
        views = image.lay_out({"step": "1", "epoch": "0"})
        job = ws.Job(delta_pass, [v.view(-1) for v in views.values()])
        helper = threading.Thread(target=job.work, args=(delta_pass.scratch(),))
        helper.start()
        job.finish(delta_pass.scratch())
        helper.join()
        for view, p, p0 in zip(views.values(), current, theta0):
            assert torch.equal(view, (p - p0).to(dtype)), (dtype, view.shape)


class NativeThreads(pl.Callback):
    """The process's threads that Python's threading does not know (OpenMP workers and the like),
    when fitting starts (before any callback's on_train_start) and at the end of each step."""

    def __init__(self) -> None:
        self.at_start: set[int] = set()
        self.later: set[int] = set()

    @staticmethod
    def native() -> set[int]:
        import threading

        python = {t.native_id for t in threading.enumerate()}
        return {int(t) for t in os.listdir("/proc/self/task")} - python

    def on_fit_start(self, trainer, pl_module):
        self.at_start = self.native()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.later |= self.native()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc: a thread list")
@pytest.mark.parametrize("every", [1, 4])
def test_snapshot_threads_start_no_thread_team_of_their_own(glue_dir, tmp_path, monkeypatch, every):
    """The snapshot callback's helper threads never run a parallel op: a second OpenMP team beside
    training's makes libgomp stop spin-waiting in every team (more threads than cores), a constant
    cost on every step (issue 32). Under deterministic algorithms even torch.empty of the helper's
    scratch ran in parallel (it fills with NaN). With the callback's threads started, and each
    snapshot taken, no thread outside Python's appears beyond those training had at its start."""
    from bertviz_landscape.training.callbacks import WeightSnapshots

    monkeypatch.setattr(WeightSnapshots, "overlap", True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a team of two, also on a one-core machine (the count, not the speed)
    try:
        torch.ones(1 << 20).add_(1)  # training's own team exists before the run
        watch = NativeThreads()
        with_callback(monkeypatch, watch)
        cfg = tiny_train_cfg(glue_dir, f"callbacks.snapshots.every_n_steps={every}", "trainer.max_epochs=2")
        assert cfg.trainer.deterministic  # the setting under which torch.empty fills in parallel
        train(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    assert Snapshots(tmp_path / "run").steps  # snapshots were taken (the helper worked)
    assert watch.later <= watch.at_start, f"threads started during training: {watch.later - watch.at_start}"


def with_callback(monkeypatch, callback: pl.Callback) -> None:
    original = pl.Trainer.__init__
    monkeypatch.setattr(
        pl.Trainer,
        "__init__",
        lambda self, *a, callbacks=None, **k: original(
            self, *a, callbacks=[*(callbacks or []), callback], **k
        ),
    )


def test_a_run_where_the_file_system_refuses_o_direct_stores_every_snapshot(glue_dir, tmp_path, monkeypatch):
    """Where O_DIRECT is refused (tmpfs before Linux 6.6, some network file systems), every
    snapshot file is written buffered instead: the whole trajectory, exactly the rounded
    differences, no temporary left; the refusal is met at every file, never an error."""
    from bertviz_landscape.contracts import snapshots as snapshot_module

    direct, real_open, refused = getattr(os, "O_DIRECT", 0), os.open, []
    if not direct:
        pytest.skip("no O_DIRECT on this platform: nothing to refuse")

    def no_direct(path, flags, *args):
        if flags & direct:
            refused.append(Path(path).name)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(snapshot_module.os, "open", no_direct)
    recorder = RecordWeights()
    with_callback(monkeypatch, recorder)
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), tmp_path / "run")
    snaps = Snapshots(tmp_path / "run")
    theta0 = snaps.theta0()
    assert snaps.steps == list(range(1, 7)) and len(refused) == 6
    assert all(".step_0000000" in name and name.endswith(".tmp") for name in refused)
    for step in snaps.steps:
        stored = snaps.delta(step)
        for name, value in recorder.by_step[step].items():
            assert torch.equal(stored[name], (value - theta0[name]).to(torch.float16)), (step, name)
    assert not list((tmp_path / "run").rglob(".*.tmp"))


KILLED_MID_SNAPSHOT = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from conftest import tiny_train_cfg
from bertviz_landscape.contracts import snapshots
from bertviz_landscape.training.train import train

real = snapshots.write_image

def killed_mid_write(path, image):
    if ".step_00000005." in str(path):  # half of step 5's file on disk, then SIGKILL: no cleanup runs
        data = image.file_bytes()
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, image)

snapshots.write_image = killed_mid_write
train(tiny_train_cfg(Path(sys.argv[2]), "trainer.max_epochs=2"), Path(sys.argv[3]))
"""


def test_a_run_killed_while_writing_a_snapshot_resumes_without_its_temporary(
    glue_dir, tmp_path, monkeypatch, caplog
):
    """kill -9 while the writer thread is in the middle of a snapshot file: the half-written
    temporary stays behind (nothing can clean up in a killed process) and the index never lists
    it; the next run of the directory removes it, saying so, resumes from the last epoch and
    ends with the whole trajectory, each delta exactly the rounded difference."""
    import logging
    import signal

    run = tmp_path / "run"
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    }
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_MID_SNAPSHOT, str(Path(__file__).parent), str(glue_dir), str(run)],
        env=env | {"PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (temporary,) = list((run / "snapshots").glob(".step_00000005.safetensors.*.tmp"))
    assert Snapshots(run).steps[-1] == 4 and (run / "checkpoints" / "resume.ckpt").is_file()

    recorder = RecordWeights()
    with_callback(monkeypatch, recorder)
    with caplog.at_level(logging.WARNING):
        train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), run)
    assert f"removed {temporary}" in caplog.text and "left by a writer that died" in caplog.text
    assert not list(run.rglob(".*.tmp"))
    snaps = Snapshots(run)
    theta0 = snaps.theta0()
    assert snaps.steps == list(range(1, 7)) and sorted(recorder.by_step) == [4, 5, 6]  # resumed at 3
    for step in (4, 5, 6):
        stored = snaps.delta(step)
        for name, value in recorder.by_step[step].items():
            assert torch.equal(stored[name], (value - theta0[name]).to(torch.float16)), (step, name)


def test_snapshot_every_n_steps_keeps_the_last_step(glue_dir, tmp_path):
    train(
        tiny_train_cfg(glue_dir, "trainer.max_epochs=2", "callbacks.snapshots.every_n_steps=4"),
        tmp_path / "run",
    )
    assert Snapshots(tmp_path / "run").steps == [4, 6]


def test_snapshot_index_survives_a_crash(glue_dir, tmp_path):
    run = tmp_path / "run"
    train(tiny_train_cfg(glue_dir), run)
    index = run / "snapshots" / "index.jsonl"
    # a crash mid-append leaves a torn line; a crash mid-write leaves a temp file, no entry
    index.write_text(index.read_text() + '{"step": 9, "epo')
    (run / "snapshots" / ".step_00000009.safetensors.tmp").write_bytes(b"partial")
    snaps = Snapshots(run)
    assert snaps.steps == [1, 2, 3]
    assert snaps.delta(3)["classifier.weight"].dtype == torch.float16


def test_disk_budget_is_checked_before_training(glue_dir, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(SnapshotBudgetError, match=r"snapshots would take .* GB .*max_disk_gb=1e-06"):
        train(tiny_train_cfg(glue_dir, "callbacks.snapshots.max_disk_gb=1e-6"), run)
    assert not (run / "checkpoints" / "final").exists()
    assert not list((run / "snapshots").glob("step_*"))


def test_finished_run_is_not_trained_again(glue_dir, tmp_path):
    run = tmp_path / "run"
    first = train(tiny_train_cfg(glue_dir), run)
    stamp = (run / "checkpoints" / "final" / "model.safetensors").stat().st_mtime_ns
    assert train(tiny_train_cfg(glue_dir), run) == first
    assert (run / "checkpoints" / "final" / "model.safetensors").stat().st_mtime_ns == stamp
    train(tiny_train_cfg(glue_dir, "force=true"), run)
    assert (run / "checkpoints" / "final" / "model.safetensors").stat().st_mtime_ns != stamp


def test_stsb_is_regression_with_pearson_and_spearman(glue_dir, tmp_path):
    result = train(tiny_train_cfg(glue_dir, "task=stsb", "callbacks=none"), tmp_path / "run")
    assert {"val/loss", "val/pearson", "val/spearman"} <= set(result["dev"])
    assert set(result["majority_baseline"]) == {"mse"}
    config = json.loads((tmp_path / "run" / "checkpoints" / "final" / "config.json").read_text())
    assert config["problem_type"] == "regression" and len(config["id2label"]) == 1


def test_wandb_offline_run_has_config_and_metrics(glue_dir, tmp_path):
    train(tiny_train_cfg(glue_dir, "logger=wandb"), tmp_path / "run")
    run = read_wandb_run(tmp_path / "run")
    assert run["config"]["task"]["name"] == "mrpc" and run["config"]["init"]["name"] == "scratch"
    summary = json.dumps(run)
    assert "val/accuracy" in summary and "baseline/majority_accuracy" in summary
    assert (tmp_path / "run" / "logs" / "metrics.csv").is_file()


def run_cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "bertviz_landscape.cli.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_bad_input_exits_nonzero_with_named_error_and_writes_nothing(glue_dir, tmp_path):
    path = glue_dir / "RTE" / "train.tsv"
    path.write_text(path.read_text().replace("not_entailment", "contradiction", 1))
    run = tmp_path / "run"
    proc = run_cli(
        "task=rte",
        "model=tiny",
        "init=scratch",
        "logger=none",
        f"data.glue_dir={glue_dir}",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "RTE/train.tsv: line 2, column 'label': label 'contradiction' is not one of" in proc.stderr
    assert not (run / "checkpoints").exists() and not (run / "snapshots").exists()


# a process start each; make test keeps test_cli_bad_input_exits_nonzero_with_named_error_and_writes_nothing
@pytest.mark.slow
def test_cli_unknown_task_is_a_clear_error(tmp_path):
    proc = run_cli("task=imdb", "logger=none", cwd=tmp_path)
    assert proc.returncode != 0 and "task/imdb" in proc.stderr and "mrpc" in proc.stderr


# make test-all; multirun stays in make test through the landscape shards (test_landscape_shards)
@pytest.mark.slow
def test_multirun_joblib_gives_one_offline_wandb_run_per_job(glue_dir, tmp_path, tiny_pretrained):
    sweep = tmp_path / "sweep"
    proc = run_cli(
        "-m",
        "task=mrpc,rte",
        "init=pretrained,scratch",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model=tiny",
        f"model.name_or_path={tiny_pretrained}",
        f"data.glue_dir={glue_dir}",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "callbacks.snapshots.every_n_steps=3",
        "logger=wandb",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == [
        "0_mrpc_pretrained",
        "1_mrpc_scratch",
        "2_rte_pretrained",
        "3_rte_scratch",
    ]
    runs = [read_wandb_run(job) for job in jobs]
    assert len({r["dir"] for r in runs}) == 4  # four separate W&B runs
    assert [(r["config"]["task"]["name"], r["config"]["init"]["name"]) for r in runs] == [
        ("mrpc", "pretrained"),
        ("mrpc", "scratch"),
        ("rte", "pretrained"),
        ("rte", "scratch"),
    ]
    for job in jobs:
        assert (job / "checkpoints" / "final" / "config.json").is_file() and (job / "metrics.json").is_file()


@pytest.mark.slow
def test_cli_unknown_task_name_in_config_is_a_clear_error(tmp_path):
    proc = run_cli("task.name=imdb", "logger=none", cwd=tmp_path)
    assert proc.returncode == 2
    assert "bertviz-train: error: unknown task 'imdb'; known tasks: cola, mnli, mnli-mm, mrpc" in proc.stderr
    assert "a imdb.yaml task spec in $BVL_TASK_PATH" in proc.stderr


@pytest.mark.parametrize("grouped", [False, True], ids=["random-batches", "length-grouped"])
def test_interrupted_run_resumes_from_last_epoch_and_ends_at_the_same_theta1(
    glue_dir, tmp_path, monkeypatch, grouped
):
    overrides = ("trainer.max_epochs=3", "logger=csv", f"data.group_by_length={grouped}")
    reference = train(tiny_train_cfg(glue_dir, *overrides), tmp_path / "uninterrupted")

    original = pl.Trainer.__init__
    monkeypatch.setattr(
        pl.Trainer,
        "__init__",
        lambda self, *a, callbacks=None, **k: original(
            self, *a, callbacks=[*(callbacks or []), CrashAt(5)], **k
        ),
    )
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_train_cfg(glue_dir, *overrides), run)
    assert (run / "checkpoints" / "resume.ckpt").is_file() and not (run / "checkpoints" / "final").exists()
    init_stamp = (run / "checkpoints" / "init" / "model.safetensors").stat().st_mtime_ns
    monkeypatch.setattr(pl.Trainer, "__init__", original)

    resumed = train(tiny_train_cfg(glue_dir, *overrides), run)
    assert resumed["dev"] == reference["dev"] and resumed["steps"] == reference["steps"] == 9
    final, expected = (
        weights(run / "checkpoints" / "final"),
        weights(tmp_path / "uninterrupted" / "checkpoints" / "final"),
    )
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    # θ0 was kept, the trajectory is whole and equals the uninterrupted one, the resume state is gone
    assert (run / "checkpoints" / "init" / "model.safetensors").stat().st_mtime_ns == init_stamp
    snaps, ref_snaps = Snapshots(run), Snapshots(tmp_path / "uninterrupted")
    assert snaps.steps == ref_snaps.steps == list(range(1, 10))
    for step in (3, 5, 9):
        a, b = snaps.delta(step), ref_snaps.delta(step)
        assert all(torch.equal(a[k], b[k]) for k in b)
    assert not (run / "checkpoints" / "resume.ckpt").exists()
    assert (run / "logs" / "metrics.csv").is_file() and (run / "logs" / "resume-0" / "metrics.csv").is_file()


def test_multirun_jobs_spread_over_gpus(glue_dir):
    from bertviz_landscape.training.train import assign_job_device

    devices = []
    for job in range(5):
        cfg = tiny_train_cfg(glue_dir, "trainer.accelerator=auto")
        assign_job_device(cfg, job, gpu_count=4)
        devices.append(list(cfg.trainer.devices))
    assert devices == [[0], [1], [2], [3], [0]]
    cpu = tiny_train_cfg(glue_dir, "trainer.accelerator=cpu")
    assign_job_device(cpu, 3, gpu_count=4)  # an explicit choice is kept
    assert cpu.trainer.devices == 1
    single = tiny_train_cfg(glue_dir, "trainer.accelerator=auto")
    assign_job_device(single, 3, gpu_count=1)
    assert single.trainer.devices == 1
