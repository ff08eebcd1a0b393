"""Reliability: corrupt files, full disks and contradictory requests give one line naming the
file or key, exit status 2, nothing temporary or partial left, nothing finished lost; a run
directory or a surface file never silently returns another configuration's results."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_cfg
from test_landscape_support import data_cfg, tiny_run  # noqa: F401  (fixture)

from bertviz_landscape.contracts.errors import BadInput, CheckpointError, LandscapeError, OutputError
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.engine.sweep import landscape
from bertviz_landscape.training.train import RunConfigError, train

LINE = {"x": {"min": 0.0, "max": 1.0, "num": 3}}


def leftovers(root: Path) -> list[Path]:
    """Temporary files of atomic writes (`.<name>.<hex>.tmp`) anywhere below `root`."""
    return [p for p in root.rglob(".*.tmp")]


def curve(tiny_run, out, **kw):
    values = dict(
        task="mrpc",
        theta0=tiny_run["theta0"],
        theta1=tiny_run["theta1"],
        output=out,
        grid=LINE,
        directions={"name": "difference"},
        data=data_cfg(tiny_run),
        splits=["dev"],
        progress=False,
    )
    return landscape(**(values | kw))


# --- training: a run directory is one configuration -------------------------------------------
@pytest.mark.parametrize(
    "override, key",
    [
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("trainer.max_epochs=-2", "trainer.max_epochs"),
        ("trainer.max_steps=0", "trainer.max_steps"),
    ],
)
def test_zero_or_negative_epochs_or_steps_are_bad_input(glue_dir, tmp_path, override, key):
    run = RunDir(tmp_path / "run")
    with pytest.raises(RunConfigError, match=key):
        train(tiny_train_cfg(glue_dir, override, "callbacks=none"), run.root)
    assert not run.theta0.exists() and not run.metrics_json.exists()


def test_rerun_with_another_configuration_is_refused_unless_forced(glue_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    first = train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root)
    assert (
        train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root) == first
    )  # same config: the finished run
    with pytest.raises(
        RunConfigError, match=r"another configuration \(init.lr: 0.0001 -> 0.001\).*force=true"
    ):
        train(tiny_train_cfg(glue_dir, "callbacks=none", "init.lr=1e-3"), run.root)
    assert run.read_metrics() == first  # nothing of the finished run is touched
    forced = train(tiny_train_cfg(glue_dir, "callbacks=none", "init.lr=1e-3", "force=true"), run.root)
    assert forced["fingerprint"] != first["fingerprint"] == json.loads(json.dumps(first))["fingerprint"]


def test_snapshot_budget_is_checked_before_anything_is_written(glue_dir, tmp_path):
    from bertviz_landscape.training.callbacks import SnapshotBudgetError

    run = RunDir(tmp_path / "run")
    with pytest.raises(SnapshotBudgetError, match="max_disk_gb"):
        train(tiny_train_cfg(glue_dir, "callbacks.snapshots.max_disk_gb=1e-9"), run.root)
    assert not run.theta0.exists() and not run.config.exists()


def run_train_cli(*args, cwd):
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "bertviz_landscape.cli.train", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    "extra,message",
    [
        (["trainer.max_epochs=0"], "trainer.max_epochs must be >= 1"),
        pytest.param(
            ["callbacks.snapshots.dtype=int8"],
            "callbacks.snapshots.dtype must be one of",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            ["data.max_train_samples=0"],
            "data.max_train_samples must be null or an integer >= 1",
            marks=pytest.mark.slow,
        ),
    ],
)  # one process start each (~10 s): one in make test, all in make test-all
def test_cli_one_line_errors_and_train_log(glue_dir, tmp_path, extra, message):
    base = [
        "model=tiny",
        "init=scratch",
        "logger=none",
        f"data.glue_dir={glue_dir}",
        "trainer.accelerator=cpu",
    ]
    run = tmp_path / "run"
    proc = run_train_cli(*base, *extra, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, (extra, proc.stderr[-2000:])
    errors = [line for line in proc.stderr.splitlines() if line.startswith("bertviz-train: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert message in (run / "train.log").read_text()  # the error is in the run's log too
    assert not RunDir(run).theta0.exists()


def test_read_only_run_directory_is_one_error_before_any_work(glue_dir, tmp_path, monkeypatch):
    """A run directory on a read-only place (simulated at the access() layer: tests run as root,
    for whom chmod does not bite): an OutputError naming it, nothing written."""
    from bertviz_landscape.contracts import atomic

    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    real = os.access
    monkeypatch.setattr(atomic.os, "access", lambda p, mode: False if Path(p) == run.root else real(p, mode))
    with pytest.raises(OutputError, match=rf"cannot write {run.root}.*is not writable"):
        train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root)
    assert list(run.root.iterdir()) == []


def test_unused_config_key_is_warned_about(glue_dir, tmp_path, caplog):
    from bertviz_landscape.cli.compose import compose, unused_keys

    assert unused_keys(compose("train", ["+foo=1", "+data.shufle=true"]), "train") == ["foo", "data.shufle"]
    assert (
        unused_keys(compose("train", ["experiment=overfit", "model=tiny", "callbacks=none"]), "train") == []
    )
    assert unused_keys(compose("landscape", ["task=mrpc", "+grid.z=1"]), "landscape") == ["grid.z"]


# --- data -------------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_tsv_that_is_not_utf8_names_the_file(glue_dir, encoding):
    from bertviz_landscape.training.data import GlueDataError, get_task, load_glue_split

    path = glue_dir / "MRPC" / "train.tsv"
    path.write_bytes(path.read_text().lstrip("\ufeff").replace("the", "thé", 1).encode(encoding))
    with pytest.raises(GlueDataError, match=r"MRPC/train.tsv: not UTF-8"):
        load_glue_split(get_task("mrpc"), "train", glue_dir)


def test_directory_in_place_of_a_tsv_says_so(glue_dir):
    from bertviz_landscape.training.data import GlueDataError, get_task, load_glue_split

    path = glue_dir / "MRPC" / "dev.tsv"
    path.unlink()
    path.mkdir()
    with pytest.raises(GlueDataError, match=r"MRPC/dev.tsv' is a directory"):
        load_glue_split(get_task("mrpc"), "dev", glue_dir)


def test_corrupt_tokenised_cache_entry_is_rebuilt(tiny_run, tmp_path, caplog):
    from transformers import AutoTokenizer

    from bertviz_landscape.training.data import get_task, load_glue_split
    from bertviz_landscape.training.data.tokenize import tokenize

    rows = load_glue_split(get_task("mrpc"), "dev", tiny_run["glue_dir"])
    tok = AutoTokenizer.from_pretrained(str(tiny_run["theta0"]))
    first = list(tokenize(rows, tok, 32, str(tmp_path))["input_ids"])
    entry = next((tmp_path / "tokenized").iterdir())
    for f in entry.glob("*.arrow"):
        f.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        again = tokenize(rows, tok, 32, str(tmp_path))
    assert "unreadable" in caplog.text and str(entry) in caplog.text
    assert list(again["input_ids"]) == first


# --- snapshots --------------------------------------------------------------------------------
@pytest.fixture
def snapshot_run(glue_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    train(tiny_train_cfg(glue_dir, "trainer.max_epochs=2"), run.root)
    return run


@pytest.fixture
def tmpfs_dir():
    """A fresh directory on a real tmpfs (/dev/shm on Linux), removed afterwards; skips elsewhere."""
    try:
        with open("/proc/mounts") as mounts:
            kinds = {f[1]: f[2] for f in (line.split() for line in mounts) if len(f) > 2}
    except OSError:
        kinds = {}
    if kinds.get("/dev/shm") != "tmpfs" or not os.access("/dev/shm", os.W_OK):
        pytest.skip("no writable tmpfs at /dev/shm")
    where = Path(tempfile.mkdtemp(prefix="bvl-test-", dir="/dev/shm"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize(
    "mode",
    ["O_DIRECT", "refused at open", "refused at write", "tmpfs"],
    ids=["O_DIRECT", "refused at open (fallback)", "refused at write (fallback)", "on a real tmpfs"],
)
def test_a_snapshot_file_image_writes_the_bytes_write_safetensors_writes(
    tmp_path, monkeypatch, request, mode
):
    """The callback's page-aligned file image, written unbuffered (or, where the file system
    refuses O_DIRECT — tmpfs before Linux 6.6 at open, a device with another alignment at the
    write — buffered), is byte for byte the file `write_safetensors` writes, also after its
    header grows (a reused image, a step with more digits); on a real tmpfs too, whichever of
    the two it takes there."""
    import torch
    from safetensors import safe_open

    from bertviz_landscape.contracts import snapshots as snapshot_module
    from bertviz_landscape.contracts.snapshots import SafetensorsImage, write_image, write_safetensors

    direct = getattr(os, "O_DIRECT", 0)
    if not direct and mode.startswith("refused"):
        pytest.skip("no O_DIRECT on this platform: nothing to refuse")
    where = request.getfixturevalue("tmpfs_dir") if mode == "tmpfs" else tmp_path
    real_open, real_write, opened, direct_fds = os.open, os.write, [], set()

    def watched_open(path, flags, *args):
        if mode == "refused at open" and flags & direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        fd = real_open(path, flags, *args)
        opened.append(bool(flags & direct))
        (direct_fds.add if flags & direct else direct_fds.discard)(fd)  # a closed fd's number is reused
        return fd

    def watched_write(fd, data):
        if mode == "refused at write" and fd in direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(snapshot_module.os, "open", watched_open)
    monkeypatch.setattr(snapshot_module.os, "write", watched_write)
    shapes = {"embeddings.weight": (1000, 7), "layer.bias": (3,), "scalar": (), "head.weight": (5, 2049)}
    image = SafetensorsImage(shapes, torch.float16)
    gen = torch.Generator().manual_seed(0)
    for step in (7, 12345678901234):
        metadata = {"step": str(step), "epoch": "0"}
        views = image.lay_out(metadata)
        for view in views.values():
            view.copy_(torch.randn(view.shape, generator=gen))
        opened.clear()
        write_image(where / "image.safetensors", image)
        if mode == "O_DIRECT" and direct:
            assert opened == [True]  # unbuffered, no second open
        elif mode == "refused at open":
            assert opened == [False]  # the buffered open only
        elif mode == "refused at write":
            assert opened == [True, False]  # unbuffered refused mid-write, then the whole file buffered
        write_safetensors(where / "plain.safetensors", views, metadata)
        written = (where / "image.safetensors").read_bytes()
        assert written == (where / "plain.safetensors").read_bytes()
        assert len(written) == image.size and image.size % 4096  # cut back from the padded write
        with safe_open(str(where / "image.safetensors"), framework="pt") as f:
            assert f.metadata() == metadata
            assert all(torch.equal(f.get_tensor(k), v) for k, v in views.items())


def test_snapshot_write_errors_other_than_a_refused_o_direct_are_not_swallowed(tmp_path, monkeypatch):
    """Only EINVAL (O_DIRECT refused) falls back to a buffered write; a full disk at the
    unbuffered write is the error it is, not retried buffered."""
    import torch

    from bertviz_landscape.contracts import snapshots as snapshot_module
    from bertviz_landscape.contracts.snapshots import SafetensorsImage, write_image

    if not getattr(os, "O_DIRECT", 0):
        pytest.skip("no O_DIRECT on this platform")
    real_open, real_write, direct_fds, calls = os.open, os.write, set(), []

    def watched_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        if flags & os.O_DIRECT:
            direct_fds.add(fd)
        calls.append("open")
        return fd

    def full_disk(fd, data):
        if fd not in direct_fds:
            return real_write(fd, data)
        calls.append("write")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot_module.os, "open", watched_open)
    monkeypatch.setattr(snapshot_module.os, "write", full_disk)
    image = SafetensorsImage({"w": (300, 7)}, torch.float16)
    image.lay_out({"step": "1", "epoch": "0"})["w"].fill_(1.0)
    with pytest.raises(OSError, match="No space left"):
        write_image(tmp_path / "f.safetensors", image)
    assert calls == ["open", "write"]  # no buffered retry


def test_missing_or_truncated_snapshot_is_an_error_naming_the_file(snapshot_run, caplog):
    from bertviz_landscape.contracts.snapshots import SnapshotError, Snapshots

    snaps = Snapshots(snapshot_run.root)
    n = len(snaps)
    index = snapshot_run.snapshots / "index.jsonl"
    # a torn last line (the documented crash case) is skipped, and the log says so
    with open(index, "a") as f:
        f.write('{"step": 99, "epo')
    with caplog.at_level(logging.WARNING):
        assert len(Snapshots(snapshot_run.root)) == n
    assert "torn last line" in caplog.text
    # a truncated file: reading it names it
    victim = snapshot_run.snapshots / snaps.records[1].file
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(SnapshotError, match=victim.name):
        Snapshots(snapshot_run.root).delta(snaps.records[1].step)
    # a listed file that is missing: opening the trajectory names it
    victim.unlink()
    with pytest.raises(SnapshotError, match=rf"{victim.name}: listed in .*index.jsonl .* but missing"):
        Snapshots(snapshot_run.root)


def test_pca_directions_refuse_a_trajectory_with_a_missing_snapshot(snapshot_run, tmp_path, glue_dir):
    from bertviz_landscape.contracts.snapshots import Snapshots

    snaps = Snapshots(snapshot_run.root)
    (snapshot_run.snapshots / snaps.records[2].file).unlink()
    with pytest.raises(BadInput, match=snaps.records[2].file):
        landscape(
            run=snapshot_run.root,
            directions={"name": "pca"},
            grid={"x": {"min": -1, "max": 1, "num": 2}},
            output=tmp_path / "pca.h5",
            data={"glue_dir": str(glue_dir)},
            splits=["dev"],
            progress=False,
        )
    assert not (tmp_path / "pca.h5").exists() and not list(tmp_path.glob("pca.h5.parts/*"))


# --- checkpoints ------------------------------------------------------------------------------
def _corrupt(ckpt: Path, how: str) -> str:
    weights = ckpt / "model.safetensors"
    if how == "empty weights":
        weights.write_bytes(b"")
        return "model.safetensors|cannot read its weights"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:1000])
        return "cannot read its weights"
    if how == "garbage config.json":
        (ckpt / "config.json").write_text("{not json")
        return "config.json: not valid JSON"
    if how == "config.json without model_type":
        cfg = json.loads((ckpt / "config.json").read_text())
        cfg.pop("model_type")
        (ckpt / "config.json").write_text(json.dumps(cfg))
        return "config.json: no model_type"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["empty weights", "truncated weights", "garbage config.json", "config.json without model_type"]
)
def test_corrupt_checkpoint_is_one_error_naming_the_file(tiny_run, tmp_path, how):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run["theta1"], broken)
    message = _corrupt(broken, how)
    with pytest.raises(CheckpointError, match=message) as err:
        curve(tiny_run, tmp_path / "s.h5", theta1=broken)
    assert str(broken) in str(err.value)
    assert (
        not (tmp_path / "s.h5").exists()
        and not list(tmp_path.glob("s.h5.parts/*"))
        and not leftovers(tmp_path)
    )


# --- surfaces ---------------------------------------------------------------------------------
def test_existing_surface_of_another_configuration_is_kept(tiny_run, tmp_path):
    out = tmp_path / "s.h5"
    first = load_surface(curve(tiny_run, out).surface)
    again = curve(tiny_run, out)  # the same request: nothing to do
    assert again.evaluated == 0 and again.surface == out
    with pytest.raises(LandscapeError, match="another configuration .*grid.* it is kept.*overwrite=true"):
        curve(tiny_run, out, grid={"x": {"min": -1.0, "max": 1.0, "num": 3}})
    np.testing.assert_array_equal(load_surface(out).x, first.x)  # the old surface is intact
    replaced = curve(tiny_run, out, grid={"x": {"min": -1.0, "max": 1.0, "num": 3}}, overwrite=True)
    assert replaced.evaluated == 3 and list(load_surface(out).x) == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("where", ["directory", "under a file"])
def test_unwritable_output_is_found_before_any_point_is_evaluated(tiny_run, tmp_path, where):
    if where == "directory":
        out = tmp_path / "out.h5"
        out.mkdir()
        message = "is a directory"
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out.h5"
        message = "cannot create"
    evaluated = []
    with pytest.raises(OutputError, match=message):
        curve(tiny_run, out, on_point=lambda k, v: evaluated.append(k))
    assert evaluated == []


def test_full_disk_while_writing_the_surface_keeps_the_finished_points(tiny_run, tmp_path, monkeypatch):
    """ENOSPC injected at the file layer: one error naming the surface file, no temporary file
    left, every finished point kept; a re-run completes without evaluating again."""
    import h5py

    from bertviz_landscape.engine import surface as surface_module

    real = h5py.File

    def full_disk(path, mode="r", *a, **k):
        if (
            mode == "w" and str(path).endswith(".tmp") and Path(path).name.startswith(".s.h5.")
        ):  # the surface, not the direction file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, mode, *a, **k)

    out = tmp_path / "s.h5"
    monkeypatch.setattr(surface_module.h5py, "File", full_disk)
    with pytest.raises(OutputError, match=r"cannot write .*s.h5: No space left on device"):
        curve(tiny_run, out)
    assert not out.exists() and not leftovers(tmp_path)
    monkeypatch.setattr(surface_module.h5py, "File", real)
    again = curve(tiny_run, out)
    assert again.evaluated == 0 and again.skipped == 3 and out.is_file()


def test_file_size_limit_while_h5py_writes_is_one_error_not_a_crash(tmp_path):
    """A real short write inside HDF5 (RLIMIT_FSIZE, as a full disk would do it, no root needed):
    one OutputError naming the file, no segmentation fault, no temporary file left."""
    script = f"""
import resource, signal, sys
import numpy as np
from bertviz_landscape.contracts.errors import OutputError
from bertviz_landscape.engine.surface import Surface, write_surface
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
x, y = np.linspace(-1, 1, 200), np.linspace(-1, 1, 150)
arrays = {{"train_loss": np.random.rand(150, 200), "dev_loss": np.random.rand(150, 200)}}
surface = Surface(x, y, arrays, {{"task": "mrpc"}})
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
try:
    write_surface({str(tmp_path / "big.h5")!r}, surface)
except OutputError as err:
    print("ERROR", err)
    sys.exit(2)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "ERROR cannot write" in proc.stdout and "big.h5" in proc.stdout
    assert not (tmp_path / "big.h5").exists() and not leftovers(tmp_path)


def test_full_disk_while_appending_a_point_keeps_the_earlier_points(tiny_run, tmp_path, monkeypatch):
    from bertviz_landscape.engine.shards import PointStore

    real, calls = PointStore._append, []

    def fails_on_third(self, k, values, *rest):
        calls.append(k)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, k, values, *rest)

    monkeypatch.setattr(PointStore, "_append", fails_on_third)
    with pytest.raises(OutputError, match=r"points-0000-of-0001.jsonl: No space left on device"):
        curve(tiny_run, tmp_path / "s.h5")
    monkeypatch.setattr(PointStore, "_append", real)
    res = curve(tiny_run, tmp_path / "s.h5")
    assert (res.evaluated, res.skipped) == (1, 2)


@pytest.mark.slow  # two processes on one shard (~17 s): make test-all
def test_same_shard_started_twice_waits_and_evaluates_nothing_twice(tiny_run, tmp_path):
    """A requeued job whose first copy still runs: the second waits for the first, then finds
    the points done, and says so. The first copy holds its first point until the second has
    said that it waits (no race on start-up times)."""
    import time

    out, release = tmp_path / "s.h5", tmp_path / "release"
    script = f"""
import sys, json, time, pathlib
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_landscape_support import data_cfg
from bertviz_landscape.engine.sweep import landscape
run = { ({k: str(v) for k, v in tiny_run.items()})!r}
release = pathlib.Path({str(release)!r})
def hold(k, v):
    deadline = time.time() + 240
    while not release.exists() and time.time() < deadline:
        time.sleep(0.1)
res = landscape(task="mrpc", theta0=run["theta0"], theta1=run["theta1"], output={str(out)!r},
                grid={LINE!r}, directions={{"name": "difference"}},
                data=data_cfg({{"glue_dir": run["glue_dir"], "cache_dir": run["cache_dir"]}}),
                splits=["dev"], progress=False, merge=False,
                on_point=hold if sys.argv[1] == "first" else None)
print("EVALUATED", res.evaluated)
"""
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    logs = {name: open(tmp_path / f"{name}.err", "w+") for name in ("first", "second")}
    first = subprocess.Popen(
        [sys.executable, "-c", script, "first"],
        stdout=subprocess.PIPE,
        stderr=logs["first"],
        text=True,
        env=env,
    )
    deadline = time.time() + 240
    while not list(tmp_path.glob("s.h5.parts/*/points-*.jsonl")) and time.time() < deadline:
        time.sleep(0.2)  # the first copy has evaluated a point and is holding
    second = subprocess.Popen(
        [sys.executable, "-c", script, "second"],
        stdout=subprocess.PIPE,
        stderr=logs["second"],
        text=True,
        env=env,
    )
    while (
        "already running in another process" not in (tmp_path / "second.err").read_text()
        and time.time() < deadline
    ):
        time.sleep(0.2)
    release.touch()
    (out1, _), (out2, _) = first.communicate(timeout=300), second.communicate(timeout=300)
    err2 = (tmp_path / "second.err").read_text()
    assert "EVALUATED 3" in out1, (tmp_path / "first.err").read_text()[-2000:]
    assert "EVALUATED 0" in out2, err2[-2000:]
    assert "already running in another process" in err2


def test_merge_with_nothing_computed_says_so(tiny_run, tmp_path):
    with pytest.raises(LandscapeError, match="nothing computed yet for this configuration"):
        curve(tiny_run, tmp_path / "s.h5", mode="merge")
