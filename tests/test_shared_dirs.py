"""Two processes, one directory (issue 19): one training per run directory, one process per demo
stage, a dead writer's temporaries removed on the next start, and a fresh start (force=true)
keeps nothing of the run it replaces."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from conftest import assert_changes_only_under, exits_2_with_one_line, tiny_train_cfg, tree_state

from bertviz_landscape.contracts.locks import BusyError, held, holder
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.pipeline.runner import Pipeline, Stage
from bertviz_landscape.training.train import train


def test_a_second_holder_waits_or_is_told_who_holds_it(tmp_path):
    lock = tmp_path / "x.lock"
    with held(lock, "thing"):
        assert f"pid {os.getpid()}" in holder(lock)
        with pytest.raises(BusyError, match=rf"thing is in use by pid {os.getpid()} on .* \(lock .*x.lock\)"):
            with held(lock, "thing", wait=False):
                pass
    order = []

    def second():
        with held(lock, "thing"):
            order.append("second")

    with held(lock, "thing"):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first done")
    t.join(5)
    assert order == ["first done", "second"]  # the waiter ran only after the holder let go


def test_second_training_into_a_busy_run_directory_exits_naming_the_holder(glue_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    with held(run.lock_file, "another training"):
        with pytest.raises(BusyError, match=rf"run directory {run.root} is in use by pid {os.getpid()}"):
            train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root)
        exits_2_with_one_line(
            lambda: train(tiny_train_cfg(glue_dir, "callbacks=none", "init.lr=1e-3"), run.root),
            f"run directory {run.root} is in use by pid {os.getpid()}",
        )
        assert [p.name for p in run.root.iterdir()] == [run.lock_file.name]  # nothing else written
    first = train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root)  # free again: it trains
    assert run.read_metrics() == first


def test_dead_writers_temporaries_are_removed_when_the_run_resumes(glue_dir, tmp_path):
    import pytorch_lightning as pl

    class Interrupt(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            raise KeyboardInterrupt

    run = RunDir(tmp_path / "run")
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), run.root, extra_callbacks=[Interrupt()])
    torn = [
        run.snapshots / ".step_00000009.safetensors.0badf00d.tmp",  # kill -9 mid-snapshot
        run.root / "checkpoints" / ".final.deadbeef.tmp",  # a half-written checkpoint directory
    ]
    torn[0].write_bytes(b"\0" * 1000)
    torn[1].mkdir()
    (torn[1] / "model.safetensors").write_bytes(b"\0" * 10)
    keep = run.snapshots / "notes.txt"
    keep.write_text("mine")
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), run.root)
    assert not any(p.exists() for p in torn) and keep.read_text() == "mine"
    assert not list(run.root.rglob(".*.tmp"))


def test_force_with_fewer_epochs_keeps_no_epoch_checkpoint_of_the_old_run(glue_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    keep = "callbacks.epochs.keep_weights=true"
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2", keep), run.root)
    assert sorted(run.epoch_checkpoints()) == [1, 2]
    steps_before = json.loads(run.metrics_json.read_text())["steps"]
    before = tree_state(tmp_path)
    forced = train(tiny_train_cfg(glue_dir, "trainer.max_epochs=1", keep, "force=true"), run.root)
    assert sorted(run.epoch_checkpoints()) == [1]  # epoch 2 was the old run's: gone
    assert forced["steps"] == steps_before // 2
    rows = [json.loads(line) for line in run.dev_per_epoch.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]
    index = [json.loads(line) for line in (run.snapshots / "index.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in index) == forced["steps"]
    assert_changes_only_under(before, tmp_path, run.root)  # force discards the old run, nothing else


def test_two_demos_on_one_directory_run_each_stage_once(tmp_path):
    calls = []
    out_file = tmp_path / "out.txt"

    def action():
        calls.append(threading.current_thread().name)
        time.sleep(0.5)
        out_file.write_text("done")

    def stages():
        return [Stage("train x", {"a": 1}, [out_file], action)]

    logs = {}

    def demo(name):
        with open(os.devnull, "w") as devnull:
            logs[name] = Pipeline(tmp_path, out=devnull).run(stages())

    threads = [threading.Thread(target=demo, args=(n,), name=n) for n in ("one", "two")]
    threads[0].start()
    time.sleep(0.1)
    threads[1].start()
    for t in threads:
        t.join(10)
    assert calls == ["one"]  # the second demo waited for the stage, then found it done
    assert logs["two"][0]["status"] == "skipped"
