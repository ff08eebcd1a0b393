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
from conftest import (
    assert_changes_only_under,
    exits_2_with_one_line,
    tiny_train_cfg,
    tree_state,
    write_glue,
)

from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.checkpoints import check_resume_state
from bertviz_landscape.contracts.config import run_name
from bertviz_landscape.contracts.errors import EXIT_BAD_INPUT, BadInput, CheckpointError, LandscapeError
from bertviz_landscape.contracts.names import ConfinementError, check_name, confine
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.snapshots import SnapshotError, Snapshots, snapshot_file
from bertviz_landscape.engine.surface import Surface, load_surface, write_surface
from bertviz_landscape.plots.results import draw_all
from bertviz_landscape.training.train import train


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


CRAFTED_IDENTITIES = [
    ("task", "../../../escape"),
    ("init", "/tmp/x"),
    ("model", "../../m"),
    ("seed", "1;rm"),
    ("task", "mrpc\x00/../../x"),  # a NUL: C-level APIs stop there, Python's do not
    ("task", "mrpc\u2215..\u2215x"),  # DIVISION SLASH, a slash to the eye (and to some tools)
    ("init", "scratch\uff0f..\uff0fx"),  # FULLWIDTH SOLIDUS
    ("task", "mrpc\n"),  # a trailing newline ($ in a careless pattern matches before it)
]


@pytest.mark.parametrize("key, value", CRAFTED_IDENTITIES)
def test_crafted_run_json_is_refused_before_it_names_an_output(run_copy, key, value):
    ident = json.loads(run_copy.identity_file.read_text()) | {key: value}
    run_copy.identity_file.write_text(json.dumps(ident))
    before = tree_state(run_copy.root.parents[1])
    for read in (run_copy.read_identity, lambda: run_name(run_copy.root)):  # run_name: the default outputs
        exits_2_with_one_line(read, "run.json", f": {key} ", repr(value)[1:-1][:60])
    assert_changes_only_under(before, run_copy.root.parents[1])  # nothing written, nothing removed


@pytest.mark.parametrize("program", ["landscape", "analyze"])
@pytest.mark.parametrize("key", ["task", "init"])
def test_both_commands_refuse_a_crafted_run_before_naming_a_default_output(run_copy, program, key):
    """The in-process twin of the CLI test below: bertviz-landscape's and bertviz-analyze's `run`
    with the default output (named from run.json's task and init), for each of the two keys."""
    from bertviz_landscape.cli.analyze import run as analyze
    from bertviz_landscape.cli.landscape import run as compute

    ident = json.loads(run_copy.identity_file.read_text()) | {key: "../../../../escape"}
    run_copy.identity_file.write_text(json.dumps(ident))
    box = run_copy.root.parents[1]
    before = tree_state(box.parent)
    out = box / "out"
    overrides = [f"run={run_copy.root}", f"paths.output_dir={out}"]
    if program == "analyze":
        cfg = compose("analyze", [*overrides, "analysis=layers"])
        exits_2_with_one_line(lambda: analyze(cfg), f"run.json: {key} '../../../../escape'")
    else:
        cfg = compose("landscape", [*overrides, "grid=line", "grid.x.num=2"])
        exits_2_with_one_line(lambda: compute(cfg), f"run.json: {key} '../../../../escape'")
    assert_changes_only_under(before, box.parent)  # nothing at all: not even below paths.output_dir


@pytest.mark.parametrize("program", [pytest.param("landscape", marks=pytest.mark.slow), "analyze"])
def test_cli_with_a_crafted_run_exits_2_and_writes_nothing_outside(run_copy, tmp_path, program):
    ident = json.loads(run_copy.identity_file.read_text()) | {"task": "../../../../escape"}
    run_copy.identity_file.write_text(json.dumps(ident))
    out = tmp_path / "box" / "out"
    before = files_below(tmp_path)
    args = [f"run={run_copy.root}", f"paths.output_dir={out}", "hydra.run.dir=" + str(out / "hydra")]
    if program == "analyze":
        args.append("analysis=layers")
    proc = subprocess.run(
        [sys.executable, "-m", f"bertviz_landscape.cli.{program}", *args],
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
    write_surface(results / "slash.h5", Surface(x, None, values, {"task": "mrpc\u2215..\u2215x"}))
    nul = write_surface(results / "nul.h5", Surface(x, None, values, {"task": "sst2"}))
    nested = write_surface(results / "nested.h5", Surface(x, None, values, {"task": "sst2"}))
    import h5py

    with h5py.File(nul, "a") as f:  # h5py refuses a NUL in a str; a crafted file holds it as bytes
        f.attrs["task"] = np.bytes_(b"mrpc\x00../../x")
    with h5py.File(nested, "a") as f:  # a deeply nested JSON attribute: RecursionError in json.loads
        f.attrs["grid"] = "[" * 100_000 + "]" * 100_000
    (results / "broken.json").write_text('{"format": "bertviz-analysis/1", "analysis": ')  # truncated
    before = tree_state(tmp_path)
    manifest = draw_all(results, interactive=False, formats=("png",))  # exit 0: the bad files are skipped
    new = assert_changes_only_under(before, tmp_path, results / "figures")
    assert new and all(p.is_relative_to(results / "figures") for p in new), new
    skipped = {Path(s["path"]).name: s["reason"] for s in manifest["skipped"]}
    assert "task '../../../escape' is not a plain name" in skipped["evil.h5"]
    assert "task 'mrpc\\x00../../x' is not a plain name" in skipped["nul.h5"]
    assert "is not a plain name" in skipped["slash.h5"] and "nul.h5" in skipped["nul.h5"]
    assert "nested.h5 is corrupt" in skipped["nested.h5"]  # one bad file no longer aborts the plot
    assert "broken.json" in skipped  # a corrupt analysis JSON is named, not dropped silently
    assert all("\n" not in reason for reason in skipped.values())
    assert any(f["task"] == "mrpc" for f in manifest["figures"])  # the good surface is still drawn
    assert not any(f["task"] == "sst2" for f in manifest["figures"])


@pytest.mark.parametrize("how", ["random-bytes", "all-random-bytes", "nested-json", "foreign-h5", "missing"])
def test_corrupt_surface_is_one_error_naming_the_file(tmp_path, how):
    """Every way a surface file can be unreadable is a LandscapeError naming it (was: OSError,
    KeyError or FileNotFoundError for three of them, a traceback wherever a caller did not wrap it)."""
    import h5py

    x = np.linspace(0, 1, 3)
    path = write_surface(tmp_path / "s.h5", Surface(x, None, {"train_loss": x}, {"task": "mrpc"}))
    rng = np.random.default_rng(0)
    if how in ("random-bytes", "all-random-bytes"):
        data = bytearray(path.read_bytes())
        start = len(data) // 3 if how == "random-bytes" else 0
        data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    elif how == "nested-json":
        with h5py.File(path, "a") as f:
            f.attrs["grid"] = "[" * 100_000 + "]" * 100_000
    elif how == "foreign-h5":  # an HDF5 file, but no surface
        path.unlink()
        with h5py.File(path, "w") as f:
            f["weights"] = np.zeros(3)
    else:
        path.unlink()
    before = tree_state(tmp_path)
    with pytest.raises(LandscapeError):
        load_surface(path)
    exits_2_with_one_line(lambda: load_surface(path), f"surface file {path}")
    assert_changes_only_under(before, tmp_path)  # read, never replaced or removed


# --- files a file names -----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["climbs", "absolute", "other-step", "symlink"])
def test_snapshot_index_row_naming_another_file_is_refused(run_copy, trained, where, tmp_path):
    """Was: two rows pointed at another run's snapshots gave a silently wrong trajectory, exit 0.
    `symlink`: the row is the run's own, but its file is a link to another run's snapshot."""
    snaps = Snapshots(run_copy.root)
    first = snaps.records[0]
    elsewhere = RunDir(trained[0]).snapshots / snapshot_file(snaps.records[2].step)
    index = run_copy.snapshots / "index.jsonl"
    if where == "symlink":
        own = run_copy.snapshots / first.file
        own.unlink()
        own.symlink_to(elsewhere)
    else:
        name = {
            "climbs": f"../../../../{Path(trained[0]).name}/snapshots/{elsewhere.name}",
            "absolute": str(elsewhere),
            "other-step": snapshot_file(snaps.records[2].step),
        }[where]
        lines = index.read_text().splitlines()
        lines[0] = json.dumps({"step": first.step, "epoch": first.epoch, "loss": first.loss, "file": name})
        index.write_text("\n".join(lines) + "\n")
    before = tree_state(tmp_path)
    line = exits_2_with_one_line(lambda: Snapshots(run_copy.root), f"{index}: line 1 (step {first.step})")
    assert ("outside" in line) if where == "symlink" else (" names file " in line)
    with pytest.raises(SnapshotError):  # what every reader of the trajectory opens first
        Snapshots(run_copy.root)
    assert_changes_only_under(before, tmp_path)


def test_snapshot_meta_theta0_outside_the_run_is_refused(run_copy, tmp_path):
    meta = run_copy.snapshots / "meta.json"
    shutil.copytree(run_copy.theta0, tmp_path / "foreign_init")
    m = json.loads(meta.read_text()) | {"theta0": str(tmp_path / "foreign_init")}
    meta.write_text(json.dumps(m))
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: Snapshots(run_copy.root).theta0(), "meta.json: theta0", "outside")
    with pytest.raises(ConfinementError, match=r"meta.json: theta0.*outside"):
        Snapshots(run_copy.root).theta0()
    assert_changes_only_under(before, tmp_path)


@pytest.mark.parametrize("meta", ["{not json", "[1, 2]", '{"format": "other/1"}', "[" * 100_000])
def test_garbage_snapshot_meta_names_the_file(run_copy, tmp_path, meta):
    """Like a sketch's meta.json: one line naming it (was: a JSONDecodeError traceback where a reader
    opens the snapshots directly, e.g. longtrain's epoch points and the sketches' anchors)."""
    path = run_copy.snapshots / "meta.json"
    path.write_text(meta)
    before = tree_state(tmp_path)
    with pytest.raises(SnapshotError):
        Snapshots(run_copy.root)
    exits_2_with_one_line(lambda: Snapshots(run_copy.root), f"{path}: ")
    assert_changes_only_under(before, tmp_path)


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
        exits_2_with_one_line(lambda p=path: check_resume_state(p), f"{path}: cannot read the resume state")
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
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # torch's default no longer protects
    marker = tmp_path / "pwned"
    with open(tmp_path / "crafted.ckpt", "wb") as f:
        pickle.dump({"state_dict": _Payload(marker), "loops": {}, "global_step": 0}, f)
    for bad in (good[: len(good) // 2], (tmp_path / "crafted.ckpt").read_bytes()):
        run.resume_checkpoint.write_bytes(bad)
        before = tree_state(tmp_path)
        exits_2_with_one_line(
            lambda: train(tiny_train_cfg(glue, "trainer.max_epochs=2"), run.root),
            f"{run.resume_checkpoint}: cannot read the resume state",
            "resume=false",
        )
        # θ0, the snapshots, the logs and the resume state itself: as they were (the lock aside)
        assert_changes_only_under(before, tmp_path, run.lock_file)
        assert not marker.exists()
    result = train(tiny_train_cfg(glue, "trainer.max_epochs=2", "resume=false"), run.root)
    assert result["epochs"] == 2 and not run.resume_checkpoint.exists()


def test_compose_resolves_a_crafted_run_name_into_one_bad_input(run_copy):
    from bertviz_landscape.contracts.errors import bad_input_cause

    ident = json.loads(run_copy.identity_file.read_text()) | {"init": "../x"}
    run_copy.identity_file.write_text(json.dumps(ident))
    cfg = compose("landscape", [f"run={run_copy.root}"])
    with pytest.raises(Exception) as info:
        cfg.output  # noqa: B018  (resolving it is the point)
    assert "run.json: init '../x'" in str(bad_input_cause(info.value))
    exits_2_with_one_line(lambda: cfg.output, "run.json: init '../x'")  # the resolver's error: exit 2 too


def test_a_task_spec_name_or_task_argument_that_is_a_path_is_refused(tmp_path):
    from bertviz_landscape.training.data.sources import task_from_spec
    from bertviz_landscape.training.data.tasks import UnknownTaskError, get_task

    (tmp_path / "train.csv").write_text("text,label\na,0\nb,1\n")
    spec = {"name": "../../escape", "source": {"format": "csv", "train": "train.csv", "dev": "train.csv"}}
    spec["columns"] = {"text": "text", "label": "label"}
    with pytest.raises(BadInput, match=r"my.yaml: name '../../escape' is not a plain name"):
        task_from_spec(spec, tmp_path, "my.yaml")
    for crafted in ("mrpc\x00", "a\u2215b", "\u2024\u2024"):  # NUL, DIVISION SLASH, ONE DOT LEADER x2
        exits_2_with_one_line(
            lambda c=crafted: task_from_spec(spec | {"name": c}, tmp_path, "my.yaml"),
            "my.yaml: name",
            "is not a plain name",
        )
    with pytest.raises(UnknownTaskError, match="a task name is a plain name"):
        get_task("../../etc/escape")


@pytest.mark.parametrize("how", ["garbage-json-attribute", "nested-json-attribute", "random-bytes"])
def test_corrupt_direction_file_is_one_error_naming_it(tmp_path, how):
    """A direction file (directions.file=, or beside a surface) with a garbage attribute or random
    bytes: one line naming it (was: a JSONDecodeError or RecursionError traceback)."""
    import h5py
    import torch

    from bertviz_landscape.engine.direction_file import read_directions, write_directions
    from bertviz_landscape.engine.directions import Directions

    path = write_directions(
        tmp_path / "d.h5", Directions("random", {"w": torch.ones(3, 4)}, None, "theta1", {"seed": 0}), "k", {}
    )
    if how == "random-bytes":
        data = bytearray(path.read_bytes())
        data[:] = np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    else:
        with h5py.File(path, "a") as f:
            f.attrs["info"] = "{not json" if how.startswith("garbage") else "[" * 100_000 + "]" * 100_000
    before = tree_state(tmp_path)
    with pytest.raises(LandscapeError):
        read_directions(path)
    exits_2_with_one_line(lambda: read_directions(path), f"direction file {path}")
    assert_changes_only_under(before, tmp_path)
