"""Every bad input: a clear error naming the problem, non-zero exit, no surface file written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.landscape import build_tiny, data_cfg, tiny_run  # noqa: F401  (fixture)
from hydra import compose, initialize_config_dir

from bertviz_landscape.cli.landscape import CONFIG_PATH, run
from bertviz_landscape.contracts.errors import BadInput


def compose_cfg(tiny_run, tmp_path, overrides):
    d = data_cfg(tiny_run)
    base = [
        "task=mrpc",
        f"theta0={tiny_run['theta0']}",
        f"theta1={tiny_run['theta1']}",
        f"output={tmp_path / 'out.h5'}",
        f"paths.output_dir={tmp_path}",
        "progress=false",
        f"data.glue_dir={d['glue_dir']}",
        f"data.cache_dir={d['cache_dir']}",
        "data.max_length=32",
        "data.eval_batch_size=4",
        "grid.x.num=2",
    ]
    with initialize_config_dir(config_dir=str(Path(CONFIG_PATH).resolve()), version_base="1.3"):
        return compose("landscape", overrides=base + overrides)


@pytest.fixture(scope="module")
def other_arch(tiny_run):
    return build_tiny(tiny_run["root"] / "wide", overrides={"hidden_size": 48, "num_attention_heads": 2})


@pytest.fixture(scope="module")
def other_vocab(tiny_run):
    dst = tiny_run["root"] / "other_vocab"
    if not dst.exists():
        shutil.copytree(tiny_run["theta1"], dst)
        if (dst / "vocab.txt").exists():
            vocab = (dst / "vocab.txt").read_text().splitlines()
            vocab[1000], vocab[1001] = vocab[1001], vocab[1000]
            (dst / "vocab.txt").write_text("\n".join(vocab) + "\n")
        tok = dst / "tokenizer.json"
        if tok.exists():
            spec = json.loads(tok.read_text())
            v = spec["model"]["vocab"]
            a, b = list(v)[1000], list(v)[1001]
            v[a], v[b] = v[b], v[a]
            tok.write_text(json.dumps(spec))
    return dst


CASES = {
    "different architectures": (lambda r, a, v: [f"theta1={a}"], "different architectures"),
    "different vocabularies": (lambda r, a, v: [f"theta1={v}"], "different vocabularies"),
    "missing checkpoint": (
        lambda r, a, v: [f"theta1={r['root'] / 'nope'}"],
        "theta1: directory .* does not exist",
    ),
    "missing theta0 files": (lambda r, a, v: [f"theta0={r['glue_dir']}"], "theta0: .* has no config.json"),
    "empty grid (no x axis)": (lambda r, a, v: ["grid.x=null"], "empty grid"),
    "num < 1": (lambda r, a, v: ["grid.x.num=0"], r"empty grid: grid.x.num = 0"),
    "min >= max": (
        lambda r, a, v: ["grid.x.min=1.0", "grid.x.max=1.0"],
        r"grid.x.min \(1.0\) must be < grid.x.max",
    ),
    "min >= max on y": (
        lambda r, a, v: ["grid=demo", f"theta2={r['theta2']}", "grid.y.min=2", "grid.y.max=-1"],
        r"grid.y.min",
    ),
    "shard outside range": (
        lambda r, a, v: ["shard=3", "num_shards=3"],
        r"shard index 3 is outside \[0, 3\)",
    ),
    "negative shard": (lambda r, a, v: ["shard=-1", "num_shards=2"], r"shard index -1 is outside"),
    "num_shards < 1": (lambda r, a, v: ["num_shards=0"], "num_shards must be >= 1"),
    "theta2 missing for 2D difference": (lambda r, a, v: ["grid=demo"], "needs theta2"),
    "unknown layer selector": (lambda r, a, v: ["directions.params=layer.9"], "matches no parameter"),
    "unknown precision": (lambda r, a, v: ["precision=fp8"], "unknown precision"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_and_writes_nothing(tiny_run, other_arch, other_vocab, tmp_path, case):
    make, message = CASES[case]
    cfg = compose_cfg(tiny_run, tmp_path, make(tiny_run, other_arch, other_vocab))
    with pytest.raises(BadInput, match=message):
        run(cfg)
    assert not (tmp_path / "out.h5").exists()
    assert not list(tmp_path.glob("*.parts"))


def test_bad_input_exits_nonzero_from_the_command_line(tiny_run, tmp_path):
    """The console path: status 2 and one line naming the problem."""
    cmd = [
        sys.executable,
        "-m",
        "bertviz_landscape.cli.landscape",
        "task=mrpc",
        f"theta0={tiny_run['theta0']}",
        f"theta1={tiny_run['theta1']}",
        "grid=demo",
        f"output={tmp_path / 'out.h5'}",
        f"paths.output_dir={tmp_path}",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 2
    assert "error: a 2D difference surface needs theta2" in proc.stderr
    assert not (tmp_path / "out.h5").exists()
