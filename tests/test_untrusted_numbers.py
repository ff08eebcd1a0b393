"""Files that pass as numbers they are not (issue 29, causes 4-8 and its weak cases): a tensor of
another shape, an empty label, a non-finite loss or target, a killed job, two grids on one output.
Each is one line naming the file, row, key or tensor, a non-zero exit, and nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
from conftest import assert_changes_only_under, exits_2_with_one_line, tree_state
from helpers.analysis import analysis_run  # noqa: F401  (fixture)

from bertviz_landscape.cli.analyze import run as analyze
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.snapshots import Snapshots

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}


# --- 4: every tensor read against θ0 is checked for name, shape and dtype ----------------------
def _non_square(state: dict) -> str:
    return next(n for n, t in sorted(state.items()) if t.dim() == 2 and t.shape[0] != t.shape[1])


def _trajectory(run: Path, surface: Path, out: Path):
    cfg = compose(
        "analyze",
        ["analysis=trajectory", f"run={run}", f"surface={surface}", f"output={out}", "progress=false"],
    )
    return lambda: analyze(cfg)


@pytest.mark.parametrize("how", ["transposed", "transposed-meta-too", "float-as-int", "extra-tensor"])
def test_trajectory_refuses_a_snapshot_tensor_that_is_not_what_it_claims(analysis_run, tmp_path, how):
    """A snapshot tensor that is not what it claims (transposed with the same element count, stored
    as int, an extra tensor): the trajectory command names the file and the tensor, exit 2, no JSON
    (no silently wrong α)."""
    run = Path(shutil.copytree(analysis_run["run"], tmp_path / "box" / "run"))
    snaps = Snapshots(run)
    last = run / "snapshots" / snaps.records[-1].file
    state = safetensors.torch.load_file(last)
    name = _non_square(state)
    if how.startswith("transposed"):
        state[name] = state[name].t().contiguous()
    elif how == "float-as-int":
        state[name] = state[name].to(__import__("torch").int32)
    else:
        state["bert.extra.weight"] = state[name].clone()
    safetensors.torch.save_file(state, last, metadata={"step": "6", "epoch": "1"})
    if how == "transposed-meta-too":  # meta.json edited to claim the transposed shape as well
        meta_path = run / "snapshots" / "meta.json"
        meta = json.loads(meta_path.read_text())
        for p in meta["parameters"]:
            if p["name"] == name:
                p["shape"] = p["shape"][::-1]
        meta_path.write_text(json.dumps(meta))
    out = tmp_path / "box" / "traj.json"
    before = tree_state(tmp_path)
    wanted = {
        "transposed": (str(last), repr(name), "shape"),
        "transposed-meta-too": ("meta.json", repr(name), "θ0"),
        "float-as-int": (str(last), repr(name), "dtype"),
        "extra-tensor": (str(last), "'bert.extra.weight'"),
    }[how]
    exits_2_with_one_line(_trajectory(run, analysis_run["surface"], out), *wanted)
    assert_changes_only_under(before, tmp_path)  # no JSON, no projection file


def test_landscape_trajectory_directions_refuse_a_transposed_snapshot(analysis_run, tmp_path):
    """The PCA directions slice snapshot files without `Snapshots.delta`: checked the same way."""
    from bertviz_landscape.contracts.snapshots import SnapshotError
    from bertviz_landscape.engine.directions import trajectory_gram

    run = Path(shutil.copytree(analysis_run["run"], tmp_path / "run"))
    snaps = Snapshots(run)
    first = run / "snapshots" / snaps.records[0].file
    state = safetensors.torch.load_file(first)
    name = _non_square(state)
    state[name] = state[name].t().contiguous()
    safetensors.torch.save_file(state, first)
    with pytest.raises(SnapshotError, match=rf"{first}: tensor '{name}' has shape"):
        trajectory_gram(Snapshots(run), list(snaps.expected))


def test_direction_file_with_a_transposed_y_axis_is_refused(analysis_run, tmp_path):
    """Every reader of a direction file (the landscape reusing it, the trajectory's plane) opens it
    with `read_directions`: δ2's tensors must be δ1's parameters in δ1's shapes."""
    import h5py

    from bertviz_landscape.engine.direction_file import beside, read_directions

    dirs = Path(shutil.copy(beside(analysis_run["surface"]), tmp_path / "plane.directions.h5"))
    with h5py.File(dirs, "r+") as f:
        name = next(n for n, d in f["ydirection"].items() if d.ndim == 2 and d.shape[0] != d.shape[1])
        data = f["ydirection"][name][...].T.copy()
        del f["ydirection"][name]
        f["ydirection"][name] = data
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: read_directions(dirs), str(dirs), f"ydirection/{name}", "shape")
    assert_changes_only_under(before, tmp_path)


def test_untouched_run_still_projects(analysis_run, tmp_path):
    """The control for the cases above: the same copy, unedited, gives α = 1 at θ1."""
    run = Path(shutil.copytree(analysis_run["run"], tmp_path / "run"))
    res = _trajectory(run, analysis_run["surface"], tmp_path / "t.json")()
    assert res["per_run"][0]["alpha"][-1] == pytest.approx(1.0, abs=1e-6)
    assert RunDir(run).snapshots.is_dir()


# --- 5: an empty or NaN label cell is refused, never a class; non-finite targets too -----------
def _spec_csv(tmp_path: Path, labels: list[str], problem: str = "classification", header=None) -> Path:
    """A CSV task spec `reviews` whose train file has `labels` (one row each) in column `stars`."""
    import csv

    from conftest import sentence

    folder = tmp_path / "tasks"
    folder.mkdir(exist_ok=True)
    for split in ("train", "dev"):
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header or ["review", "stars"])
            w.writerows([sentence(i), label] for i, label in enumerate(labels))
    spec = {
        "name": "reviews",
        "source": {"format": "csv", "train": "train.csv", "dev": "dev.csv"},
        "columns": {"text": "review", "label": "stars"},
        "problem": problem,
    }
    if problem == "regression":
        spec["metrics"] = ["pearson"]
    (folder / "reviews.yaml").write_text(json.dumps(spec))
    return folder / "reviews.yaml"


@pytest.mark.parametrize("cell", ["", "NaN", "nan", " ", "#N/A"])
def test_csv_task_spec_with_an_empty_or_nan_label_is_refused(tmp_path, cell):
    """An empty or NaN label in a CSV task is refused, not taken as a third class beside neg/pos."""
    from bertviz_landscape.training.data.glue import load_glue_split
    from bertviz_landscape.training.data.sources import task_from_spec_file

    spec = _spec_csv(tmp_path, ["neg", "pos", "neg", cell, "pos", "neg"])
    train = spec.parent / "train.csv"
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: task_from_spec_file(spec), str(train), "line 5", "'stars'")
    given = json.loads(spec.read_text()) | {"labels": ["neg", "pos"]}
    spec.write_text(json.dumps(given))  # with the labels given, the split's reader refuses it too
    task = task_from_spec_file(spec)
    exits_2_with_one_line(lambda: load_glue_split(task, "train"), str(train), "line 5", "'stars'")
    assert_changes_only_under(before, tmp_path, spec)


@pytest.mark.parametrize(
    "task, folder, cell", [("sst2", "SST-2", ""), ("rte", "RTE", "NaN"), ("sst2", "SST-2", "nan")]
)
def test_glue_tsv_with_an_empty_or_nan_label_stops_training_before_it_starts(tmp_path, task, folder, cell):
    from conftest import tiny_train_cfg, write_glue

    from bertviz_landscape.training.train import train

    glue = write_glue(tmp_path / "glue")
    path = glue / folder / "train.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + f"\t{cell}"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    before = tree_state(tmp_path)
    why = "empty label" if not cell else f"missing value {cell!r}"  # said as such, not "not one of"
    exits_2_with_one_line(lambda: train(tiny_train_cfg(glue, f"task={task}"), out), str(path), "line 4", why)
    assert not (out / "metrics.json").exists() and not (out / "checkpoints" / "final").exists()
    changed = assert_changes_only_under(before, tmp_path, out)
    assert not any("final" in p.parts for p in changed)


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", "NaN", "Infinity"])
def test_non_finite_regression_target_is_refused_naming_the_row(tmp_path, cell):
    """A non-finite regression target ('inf', 'nan') is refused with an error naming the row."""
    from bertviz_landscape.training.data.glue import load_glue_split
    from bertviz_landscape.training.data.sources import task_from_spec_file

    spec = _spec_csv(tmp_path, ["0.5", "1.5", cell, "2.0"], problem="regression")
    task = task_from_spec_file(spec)
    line = exits_2_with_one_line(
        lambda: load_glue_split(task, "train"), str(spec.parent / "train.csv"), "line 4"
    )
    assert "None" not in line


def test_stsb_tsv_inf_score_is_refused(tmp_path):
    from conftest import write_glue

    from bertviz_landscape.training.data import get_task
    from bertviz_landscape.training.data.glue import load_glue_split

    glue = write_glue(tmp_path / "glue")
    path = glue / "STS-B" / "dev.tsv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\tinf"
    path.write_text("\n".join(lines) + "\n")
    exits_2_with_one_line(
        lambda: load_glue_split(get_task("stsb"), "dev", glue), str(path), "line 3", "finite"
    )


def test_csv_task_spec_with_a_duplicated_header_column_is_refused(tmp_path):
    """A CSV task spec whose header names a column twice is refused (no column chosen silently)."""
    from bertviz_landscape.training.data.sources import task_from_spec_file

    spec = _spec_csv(tmp_path, ["neg", "pos", "neg", "pos"], header=["review", "stars"])
    train = spec.parent / "train.csv"
    rows = train.read_text().splitlines()
    train.write_text("\n".join([rows[0] + ",stars"] + [r + ",pos" for r in rows[1:]]) + "\n")
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: task_from_spec_file(spec), str(train), "'stars'", "more than once")
    assert_changes_only_under(before, tmp_path)


# --- 6: a non-finite training loss stops training; non-finite weights are refused -------------
def test_diverging_training_stops_with_one_line_and_writes_no_theta1(tmp_path):
    """Diverging training (init.lr=1e30) stops with one line (exit 2) and writes no θ1, so
    no landscape, analysis or plot runs on NaN weights."""
    from conftest import tiny_train_cfg, write_glue

    from bertviz_landscape.training.train import train

    glue = write_glue(tmp_path / "glue")
    run = tmp_path / "run"
    line = exits_2_with_one_line(
        lambda: train(tiny_train_cfg(glue, "init.lr=1e30", "trainer.max_epochs=2"), run),
        "training loss is",
        "at step",
    )
    assert "nan" in line or "inf" in line
    assert not (run / "checkpoints" / "final").exists() and not (run / "metrics.json").exists()
    assert not (run / "checkpoints" / "resume.ckpt").exists()  # no diverged epoch to resume from


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import tiny_train_cfg, write_glue

    from bertviz_landscape.training.train import train

    root = tmp_path_factory.mktemp("tiny_run")
    glue = write_glue(root / "glue")
    train(tiny_train_cfg(glue), root / "run")
    return root / "run", glue


def _poison(checkpoint: Path, value: float) -> str:
    path = checkpoint / "model.safetensors"
    state = safetensors.torch.load_file(path)
    name = _non_square(state)
    state[name][0, 0] = value
    safetensors.torch.save_file(state, path, metadata={"format": "pt"})
    return name


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_landscape_refuses_a_theta1_with_non_finite_weights(tiny_run, tmp_path, value):
    from bertviz_landscape.cli.landscape import run as compute

    run = Path(shutil.copytree(tiny_run[0], tmp_path / "box" / "run"))
    name = _poison(RunDir(run).theta1, value)
    out = tmp_path / "box" / "out.h5"
    cfg = compose(
        "landscape",
        [
            f"run={run}",
            f"output={out}",
            "grid=line",
            "grid.x.num=3",
            f"data.glue_dir={tiny_run[1]}",
            "progress=false",
        ],
    )
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: compute(cfg), str(RunDir(run).theta1), repr(name), "non-finite")
    assert_changes_only_under(before, tmp_path)


def test_layers_analysis_refuses_a_theta1_with_non_finite_weights(tiny_run, tmp_path):
    """Every analysis that loads θ1 as a model (layers, Hessian, path loss) goes through
    `checkpoints.load_model`, which refuses non-finite weights by name."""
    run = Path(shutil.copytree(tiny_run[0], tmp_path / "box" / "run"))
    name = _poison(RunDir(run).theta1, float("nan"))
    out = tmp_path / "box" / "layers.json"
    cfg = compose("analyze", ["analysis=layers", f"run={run}", f"output={out}", "progress=false"])
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: analyze(cfg), str(RunDir(run).theta1), repr(name), "non-finite")
    assert_changes_only_under(before, tmp_path)


def test_analyses_refuse_a_snapshot_with_non_finite_weights(analysis_run, tmp_path):
    run = Path(shutil.copytree(analysis_run["run"], tmp_path / "box" / "run"))
    last = run / "snapshots" / Snapshots(run).records[-1].file
    state = safetensors.torch.load_file(last)
    name = _non_square(state)
    state[name][1, 1] = float("nan")
    safetensors.torch.save_file(state, last)
    before = tree_state(tmp_path)
    exits_2_with_one_line(
        _trajectory(run, analysis_run["surface"], tmp_path / "box" / "t.json"),
        str(last),
        repr(name),
        "non-finite",
    )
    assert_changes_only_under(before, tmp_path)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_check_finite_refuses_one_nan_or_inf_anywhere_and_passes_finite_values_whose_sum_overflows(dtype):
    """The one-pass check (a sum) catches a single NaN, +inf or -inf at any position, and a finite
    tensor whose sum overflows (the largest values of its dtype) still passes: it is counted."""
    import torch

    from bertviz_landscape.contracts.checkpoints import check_finite
    from bertviz_landscape.contracts.errors import CheckpointError

    dt = getattr(torch, dtype)
    big = torch.full((4, 3), torch.finfo(dt).max, dtype=dt)
    assert check_finite("f.safetensors", "w", big) is big
    assert check_finite("f.safetensors", "w", -big) is not None
    for bad in (float("nan"), float("inf"), float("-inf")):
        for where in ((0, 0), (3, 2), (2, 1)):
            t = torch.randn(4, 3).to(dt)
            t[where] = bad
            with pytest.raises(CheckpointError, match=r"f.safetensors: tensor 'w' holds 1 non-finite"):
                check_finite("f.safetensors", "w", t)
    both = torch.zeros(5, dtype=dt)
    both[1], both[3] = float("inf"), float("-inf")  # their sum is NaN: still refused, both counted
    with pytest.raises(CheckpointError, match="holds 2 non-finite"):
        check_finite("f.safetensors", "w", both)


# --- 7: a killed training exits non-zero, writes nothing final, and resumes --------------------
def _train_cli(glue: Path, run: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bertviz_landscape.cli.train",
        "model=tiny",
        "init=scratch",
        "logger=none",
        f"data.glue_dir={glue}",
        "data.batch_size=8",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"hydra.run.dir={run}",
        *extra,
    ]


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)], ids=["SIGTERM", "SIGINT"]
)
def test_killed_training_exits_nonzero_and_a_rerun_resumes(tmp_path, signum):
    """Training killed by a signal (a scheduler's SIGTERM) exits nonzero, and a rerun resumes."""
    from conftest import write_glue

    glue = write_glue(tmp_path / "glue", n_train=48, n_dev=8)
    run = tmp_path / "run"
    command = _train_cli(glue, run, "trainer.max_epochs=15")
    # Ctrl-C's default action in the child even where pytest runs as a background job (`cmd &` in a
    # non-interactive shell ignores SIGINT, the child inherits that, and Python then never installs
    # its handler: the signal would be lost and training finish with 0)
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    resume = run / "checkpoints" / "resume.ckpt"
    deadline = time.monotonic() + 120
    while not resume.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first epoch is done: steps are running
    assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert proc.returncode == 128 + signum, (proc.returncode, err[-2000:])
    lines = [line for line in err.splitlines() if "bertviz-train: error:" in line]
    assert len(lines) == 1 and signal.Signals(signum).name in lines[0] and "Traceback" not in err, err[-2000:]
    assert not (run / "metrics.json").exists() and not (run / "checkpoints" / "final").exists()
    assert resume.is_file()
    done = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming the interrupted run" in done.stderr + done.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 15 and metrics["steps"] == 15 * 6


# --- 8: two grids never race on one output ----------------------------------------------------
def _landscape_cli(run: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bertviz_landscape.cli.landscape",
        f"run={run}",
        f"output={out}",
        "grid=line",
        "progress=false",
        f"hydra.run.dir={out.parent / 'hydra'}",
        *extra,
    ]


@pytest.mark.slow  # two landscapes, one through the CLI: ~90 s on the shared 2-core VM
def test_a_second_grid_on_a_busy_output_refuses_and_the_first_finishes(tiny_run, tmp_path):
    """Two bertviz-landscape processes with different grids and the same output=: the second refuses
    with one line while the first computes, and the first's surface is whole."""
    from bertviz_landscape.cli.landscape import run as compute
    from bertviz_landscape.contracts.locks import held_by_another
    from bertviz_landscape.engine.surface import load_surface

    run, _ = tiny_run
    out = tmp_path / "box" / "s.h5"
    first = subprocess.Popen(
        _landscape_cli(run, out, "grid.x.num=24", "splits=[train]"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    parts = out.with_name(out.name + ".parts")
    while first.poll() is None and time.monotonic() < deadline:
        if any(held_by_another(lock) for lock in parts.glob("*/.shard-*.lock")):
            break  # the first one is computing its points
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()[1].decode()[-2000:]
    try:
        cfg = compose(
            "landscape", [f"run={run}", f"output={out}", "grid=line", "grid.x.num=5", "progress=false"]
        )
        exits_2_with_one_line(lambda: compute(cfg), str(out), "another configuration")
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()[-2000:]
    assert len(load_surface(out).x) == 24  # the first one's surface, whole
    assert len([p for p in parts.iterdir() if p.is_dir()]) == 1  # the second wrote no points


def test_a_surface_finished_by_another_grid_meanwhile_is_never_replaced(tiny_run, tmp_path):
    """The other order: another grid's surface lands on the output while this one computes (here:
    written from this landscape's own per-point callback, after its start-up checks passed). The
    merge checks again under the claim and refuses; this grid's finished points are kept."""
    from bertviz_landscape.engine.surface import load_surface
    from bertviz_landscape.engine.sweep import landscape

    run, _ = tiny_run
    out = tmp_path / "s.h5"
    other = tmp_path / "other" / "s.h5"
    landscape(
        run=run, output=other, grid={"x": {"min": 0, "max": 1, "num": 4}}, splits=["train"], progress=False
    )

    def land(k, row):
        if k == 0:
            shutil.copy(other, out)

    grid = {"x": {"min": 0, "max": 1, "num": 3}}
    exits_2_with_one_line(
        lambda: landscape(run=run, output=out, grid=grid, splits=["train"], progress=False, on_point=land),
        str(out),
        "another configuration",
    )
    assert len(load_surface(out).x) == 4  # the other grid's surface, not replaced
    parts = out.with_name(out.name + ".parts")
    assert [p.name for p in parts.iterdir()], "this grid's finished points are kept"
    done = landscape(
        run=run, output=out, grid=grid, splits=["train"], progress=False, mode="merge", overwrite=True
    )
    assert done.evaluated == 0 and len(load_surface(out).x) == 3  # overwrite=true: merged, nothing recomputed


def test_a_grid_refuses_while_another_process_holds_another_grids_shard_lock(tiny_run, tmp_path):
    """The fast twin of the two-process test above: a real lock, held by another process, on a
    shard of another configuration's points in `<output>.parts`; the landscape refuses at once."""
    from bertviz_landscape.cli.landscape import run as compute

    run, _ = tiny_run
    out = tmp_path / "s.h5"
    lock = out.with_name(out.name + ".parts") / "0123456789abcdef" / ".shard-0000-of-0001.lock"
    script = (
        "import sys, time\n"
        "from bertviz_landscape.contracts.locks import held\n"
        f"with held({str(lock)!r}, 'another grid'):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", script], env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = tree_state(tmp_path)
        cfg = compose(
            "landscape", [f"run={run}", f"output={out}", "grid=line", "grid.x.num=3", "progress=false"]
        )
        line = exits_2_with_one_line(lambda: compute(cfg), str(out), "another configuration")
        assert f"pid {holder.pid}" in line
        assert_changes_only_under(before, tmp_path)  # no points, no surface
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    compute(cfg)  # the lock let go (its holder finished): this grid computes
    assert out.is_file()


# --- weak cases -------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", ["x", "y"])
def test_a_grid_axis_of_one_point_is_refused_at_the_grid(tiny_run, tmp_path, axis):
    """A grid axis of one point (grid.x.num=1) is refused when the grid is read, before any point is
    computed or plotted."""
    from bertviz_landscape.cli.landscape import run as compute

    run, _ = tiny_run
    out = tmp_path / "s.h5"
    grid = ["grid=line", "grid.x.num=1"] if axis == "x" else [f"run2={run}", "grid=plane", "grid.y.num=1"]
    cfg = compose("landscape", [f"run={run}", f"output={out}", *grid, "progress=false"])
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: compute(cfg), f"grid.{axis}.num = 1", "at least 2 points")
    assert_changes_only_under(before, tmp_path)


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "${{oc.env:BVL_SECRET_FOR_TEST}}",
        "${{bvl.run_name:x,y,z}}",
    ],
    ids=["python-tag", "oc.env", "resolver"],
)
def test_a_run_config_yaml_with_a_tag_or_interpolation_is_one_line(tiny_run, tmp_path, monkeypatch, value):
    """A run's config YAML holding a tag or an interpolation is one line naming it: no traceback, and
    no environment variable resolved from a file."""
    from bertviz_landscape.cli.landscape import run as compute

    monkeypatch.setenv("BVL_SECRET_FOR_TEST", "128")
    run = Path(shutil.copytree(tiny_run[0], tmp_path / "box" / "run"))
    marker = tmp_path / "ran"
    config = RunDir(run).config
    text = config.read_text()
    assert "max_length: 128" in text
    config.write_text(text.replace("max_length: 128", "max_length: " + value.format(marker=marker), 1))
    out = tmp_path / "box" / "s.h5"
    cfg = compose("landscape", [f"run={run}", f"output={out}", "grid=line", "grid.x.num=3", "progress=false"])
    before = tree_state(tmp_path)
    line = exits_2_with_one_line(lambda: compute(cfg), str(config))
    assert ("data.max_length" in line) if "$" in value else ("not a plain YAML config" in line)
    assert_changes_only_under(before, tmp_path)
    assert not marker.exists()


def _custom_code_checkpoint(source: Path, dest: Path) -> Path:
    """A copy of checkpoint `source` whose config.json asks for its own code (auto_map) for a
    model_type transformers does not know; the code would leave a marker file if it ever ran."""
    shutil.copytree(source, dest)
    config = json.loads((dest / "config.json").read_text())
    config |= {
        "model_type": "evilbert",
        "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModelForSequenceClassification": "evil.EvilModel"},
    }
    (dest / "config.json").write_text(json.dumps(config))
    (dest / "evil.py").write_text(f"open({str(dest / 'RAN')!r}, 'w').write('ran')\n")
    return dest


def test_custom_code_checkpoint_is_refused_in_one_line_by_train_and_landscape(tiny_run, tmp_path):
    from conftest import tiny_train_cfg

    from bertviz_landscape.cli.landscape import run as compute
    from bertviz_landscape.training.train import train

    run, glue = tiny_run
    evil = _custom_code_checkpoint(RunDir(run).theta1, tmp_path / "evil")
    before = tree_state(tmp_path)
    cfg = tiny_train_cfg(glue, "init=pretrained", f"model.name_or_path={evil}")
    exits_2_with_one_line(
        lambda: train(cfg, tmp_path / "run"), str(evil / "config.json"), "'evilbert'", "auto_map"
    )
    land = compose(
        "landscape",
        [
            f"theta0={RunDir(run).theta0}",
            f"theta1={evil}",
            "task=mrpc",
            f"output={tmp_path / 's.h5'}",
            "grid=line",
        ],
    )
    exits_2_with_one_line(lambda: compute(land), str(evil / "config.json"), "auto_map")
    assert_changes_only_under(before, tmp_path)
    assert not (evil / "RAN").exists()


@pytest.mark.slow  # a CLI process on the shared VM: ~25 s
def test_custom_code_checkpoint_never_reaches_the_trust_remote_code_prompt(tiny_run, tmp_path):
    """A checkpoint with custom code is refused before transformers could ask "Do you wish to run the
    custom code? [y/N]". Here stdin is a pipe that never answers: one line, exit 2, no question."""
    run, _ = tiny_run
    evil = _custom_code_checkpoint(RunDir(run).theta1, tmp_path / "evil")
    out = tmp_path / "s.h5"
    command = [
        sys.executable,
        "-m",
        "bertviz_landscape.cli.landscape",
        f"theta0={RunDir(run).theta0}",
        f"theta1={evil}",
        "task=mrpc",
        f"output={out}",
        "grid=line",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)  # stdin stays open: nobody answers
    finally:
        proc.kill()
    text = stdout.decode() + stderr.decode()
    assert proc.returncode == 2, text[-2000:]
    assert "custom code" not in text.lower() or "never done" in text, text[-2000:]
    assert "[y/N]" not in text and "Do you wish" not in text
    errors = [line for line in text.splitlines() if "bertviz-landscape: error:" in line]
    assert len(errors) == 1 and str(evil / "config.json") in errors[0] and "Traceback" not in text
    assert not out.exists() and not (evil / "RAN").exists()
