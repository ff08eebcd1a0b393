"""Files from colleagues and downloads (issue 19): names read from files never become paths
outside their root, files a file names are confined to their directory, a checkpoint never runs
a pickle of code; each case is one line naming the file and the key, nothing written elsewhere."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_cfg, write_glue

from bertviz_landscape.checkpoints import check_resume_state
from bertviz_landscape.config import compose, run_name
from bertviz_landscape.errors import EXIT_BAD_INPUT, BadInput, CheckpointError
from bertviz_landscape.landscape.surface import Surface, load_surface, write_surface
from bertviz_landscape.names import ConfinementError, check_name, confine
from bertviz_landscape.plots.results import draw_all
from bertviz_landscape.rundir import RunDir
from bertviz_landscape.snapshots import SnapshotError, Snapshots, snapshot_file
from bertviz_landscape.train import train


def files_below(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished run with snapshots (2 epochs); tests copy it before crafting files."""
    root = tmp_path_factory.mktemp("trained")
    glue = write_glue(root / "glue")
    train(tiny_train_cfg(glue, "trainer.max_epochs=2"), root / "run")
    return root / "run", glue


@pytest.fixture
def run_copy(trained, tmp_path):
    src, glue = trained
    dst = tmp_path / "box" / "runs" / "run"
    shutil.copytree(src, dst)
    return RunDir(dst)


# --- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, ok",
    [
        ("mrpc", True),
        ("sst2", True),
        ("pretrained", True),
        ("stsb-v1.2", True),
        ("../../escape", False),
        ("/etc/passwd", False),
        ("a/b", False),
        ("..", False),
        (".hidden", False),
        ("x" * 65, False),
        ("", False),
        (3, False),
    ],
)
def test_only_plain_names_pass(value, ok, tmp_path):
    if ok:
        assert check_name(value, "task", tmp_path / "run.json") == value
    else:
        with pytest.raises(BadInput, match=r"run.json: task .* is not a plain name"):
            check_name(value, "task", tmp_path / "run.json")


def test_confine_refuses_paths_that_climb_out_or_link_out(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    assert confine("sub/x", root, "w") == (root / "sub" / "x").resolve()
    for bad in ("../x", str(tmp_path / "elsewhere"), "sub/../../x"):
        with pytest.raises(ConfinementError, match="outside"):
            confine(bad, root, "w")
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ConfinementError, match="outside"):
        confine("link/x", root, "w")


@pytest.mark.parametrize(
    "key, value", [("task", "../../../escape"), ("init", "/tmp/x"), ("model", "../../m"), ("seed", "1;rm")]
)
def test_crafted_run_json_is_refused_before_it_names_an_output(run_copy, key, value):
    ident = json.loads(run_copy.identity_file.read_text()) | {key: value}
    run_copy.identity_file.write_text(json.dumps(ident))
    with pytest.raises(BadInput, match=rf"run.json: {key} "):
        run_copy.read_identity()
    with pytest.raises(BadInput, match=rf"run.json: {key} "):
        run_name(run_copy.root)  # the landscape's and analyses' default output names


@pytest.mark.parametrize("program", [pytest.param("landscape", marks=pytest.mark.slow), "analysis"])
def test_cli_with_a_crafted_run_exits_2_and_writes_nothing_outside(run_copy, tmp_path, program):
    ident = json.loads(run_copy.identity_file.read_text()) | {"task": "../../../../escape"}
    run_copy.identity_file.write_text(json.dumps(ident))
    out = tmp_path / "box" / "out"
    before = files_below(tmp_path)
    args = [f"run={run_copy.root}", f"paths.output_dir={out}", "hydra.run.dir=" + str(out / "hydra")]
    if program == "analysis":
        args.append("analysis=layers")
    proc = subprocess.run(
        [sys.executable, "-m", f"bertviz_landscape.{program}", *args],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])},
        timeout=300,
    )
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "run.json: task '../../../../escape'" in errors[0]
    assert "Traceback" not in proc.stderr
    new = files_below(tmp_path) - before
    assert all(p.is_relative_to(out) for p in new), new  # at most Hydra's own log dir


def test_crafted_surface_task_cannot_name_figures_outside_and_is_skipped(tmp_path):
    results = tmp_path / "box" / "results"
    results.mkdir(parents=True)
    x = np.linspace(-0.5, 1.5, 5)
    values = {"train_loss": x**2, "dev_loss": x**2 + 0.1, "dev_error": np.full(5, 0.3)}
    write_surface(results / "good_pretrained_difference_line.h5", Surface(x, None, values, {"task": "mrpc"}))
    write_surface(results / "evil.h5", Surface(x, None, values, {"task": "../../../escape"}))
    (results / "broken.json").write_text('{"format": "bertviz-analysis/1", "analysis": ')  # truncated
    before = files_below(tmp_path)
    manifest = draw_all(results, interactive=False, formats=("png",))
    new = files_below(tmp_path) - before
    assert new and all(p.is_relative_to(results / "figures") for p in new), new
    skipped = {Path(s["path"]).name: s["reason"] for s in manifest["skipped"]}
    assert "task '../../../escape' is not a plain name" in skipped["evil.h5"]
    assert "broken.json" in skipped  # a corrupt analysis JSON is named, not dropped silently
    assert any(f["task"] == "mrpc" for f in manifest["figures"])  # the good surface is still drawn


@pytest.mark.parametrize("how", ["random-bytes", "nested-json"])
def test_corrupt_surface_is_one_error_naming_the_file(tmp_path, how):
    import h5py

    x = np.linspace(0, 1, 3)
    path = write_surface(tmp_path / "s.h5", Surface(x, None, {"train_loss": x}, {"task": "mrpc"}))
    if how == "random-bytes":
        data = bytearray(path.read_bytes())
        rng = np.random.default_rng(0)
        start = len(data) // 3
        data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    else:
        with h5py.File(path, "a") as f:
            f.attrs["grid"] = "[" * 100_000 + "]" * 100_000
    with pytest.raises((BadInput, OSError, KeyError), match="s.h5"):
        load_surface(path)


# --- files a file names -----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["climbs", "absolute", "other-step"])
def test_snapshot_index_row_naming_another_file_is_refused(run_copy, trained, where):
    snaps = Snapshots(run_copy.root)
    first = snaps.records[0]
    elsewhere = RunDir(trained[0]).snapshots / snapshot_file(snaps.records[2].step)
    name = {
        "climbs": f"../../../../{Path(trained[0]).name}/snapshots/{elsewhere.name}",
        "absolute": str(elsewhere),
        "other-step": snapshot_file(snaps.records[2].step),
    }[where]
    index = run_copy.snapshots / "index.jsonl"
    lines = index.read_text().splitlines()
    lines[0] = json.dumps({"step": first.step, "epoch": first.epoch, "loss": first.loss, "file": name})
    index.write_text("\n".join(lines) + "\n")
    with pytest.raises(SnapshotError, match=r"index.jsonl: line 1 \(step \d+\) names file"):
        Snapshots(run_copy.root)


def test_snapshot_meta_theta0_outside_the_run_is_refused(run_copy, tmp_path):
    meta = run_copy.snapshots / "meta.json"
    shutil.copytree(run_copy.theta0, tmp_path / "foreign_init")
    m = json.loads(meta.read_text()) | {"theta0": str(tmp_path / "foreign_init")}
    meta.write_text(json.dumps(m))
    with pytest.raises(ConfinementError, match=r"meta.json: theta0.*outside"):
        Snapshots(run_copy.root).theta0()


# --- checkpoints never unpickle code ----------------------------------------------------------
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_resume_state_is_saved_without_code_and_a_crafted_pickle_runs_nothing(
    run_copy, tmp_path, monkeypatch
):
    import torch

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch's default no longer protects
    marker = tmp_path / "pwned"
    crafted = tmp_path / "resume.ckpt"
    with open(crafted, "wb") as f:
        pickle.dump({"state_dict": _Payload(marker)}, f)
    torch.save(
        {"state_dict": {}, "loops": {}, "global_step": 0, "x": _Payload(marker)}, tmp_path / "zip.ckpt"
    )
    for path in (crafted, tmp_path / "zip.ckpt"):
        with pytest.raises(
            CheckpointError, match=rf"{path.name}: cannot read the resume state.*resume=false"
        ):
            check_resume_state(path)
    assert not marker.exists()


def test_truncated_or_crafted_resume_ckpt_stops_training_with_one_line(trained, tmp_path, monkeypatch):
    """A run interrupted after epoch 1 resumes from its resume.ckpt; a truncated or crafted one is
    named (resume=false recovers), and the run's θ0 and snapshots are untouched."""
    import pytorch_lightning as pl

    class Interrupt(pl.Callback):
        def on_train_epoch_end(self, trainer, module):
            raise KeyboardInterrupt

    glue = trained[1]
    run = RunDir(tmp_path / "run")
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(tiny_train_cfg(glue, "trainer.max_epochs=2"), run.root, extra_callbacks=[Interrupt()])
    assert check_resume_state(run.resume_checkpoint)  # what we save loads with weights_only=True
    good = run.resume_checkpoint.read_bytes()
    run.resume_checkpoint.write_bytes(good[: len(good) // 2])
    snaps_before = sorted(p.name for p in run.snapshots.iterdir())
    with pytest.raises(CheckpointError, match=r"resume.ckpt: cannot read the resume state.*resume=false"):
        train(tiny_train_cfg(glue, "trainer.max_epochs=2"), run.root)
    assert sorted(p.name for p in run.snapshots.iterdir()) == snaps_before and run.theta0.is_dir()
    result = train(tiny_train_cfg(glue, "trainer.max_epochs=2", "resume=false"), run.root)
    assert result["epochs"] == 2 and not run.resume_checkpoint.exists()


def test_compose_resolves_a_crafted_run_name_into_one_bad_input(run_copy):
    from bertviz_landscape.errors import bad_input_cause

    ident = json.loads(run_copy.identity_file.read_text()) | {"init": "../x"}
    run_copy.identity_file.write_text(json.dumps(ident))
    cfg = compose("landscape", [f"run={run_copy.root}"])
    with pytest.raises(Exception) as info:
        cfg.output  # noqa: B018  (resolving it is the point)
    assert "run.json: init '../x'" in str(bad_input_cause(info.value))


def test_a_task_spec_name_or_task_argument_that_is_a_path_is_refused(tmp_path):
    from bertviz_landscape.data.sources import task_from_spec
    from bertviz_landscape.data.tasks import UnknownTaskError, get_task

    (tmp_path / "train.csv").write_text("text,label\na,0\nb,1\n")
    spec = {"name": "../../escape", "source": {"format": "csv", "train": "train.csv", "dev": "train.csv"}}
    spec["columns"] = {"text": "text", "label": "label"}
    with pytest.raises(BadInput, match=r"my.yaml: name '../../escape' is not a plain name"):
        task_from_spec(spec, tmp_path, "my.yaml")
    with pytest.raises(UnknownTaskError, match="a task name is a plain name"):
        get_task("../../etc/escape")
