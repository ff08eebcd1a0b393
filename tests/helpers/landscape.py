"""Shared builders for the landscape tests: tiny BERT checkpoints and a tiny GLUE directory.

The test modules import the `tiny_run` fixture and the builders from this module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY_MODEL as TINY  # the 2-layer, hidden-32 BERT of every unit test

MRPC_ROWS = [
    (1, "The cat sat on the mat.", "A cat was sitting on the mat."),
    (0, "Stocks fell sharply on Monday.", "The weather was sunny in Paris."),
    (1, "He bought a new car yesterday.", "Yesterday he purchased a new automobile."),
    (0, "The meeting was postponed.", "Apples are rich in vitamins and fibre, doctors say."),
    (1, "She won the race easily.", "She easily won the race."),
    (0, "The company reported record profits this quarter.", "A dog barked."),
    (1, "Rain is expected tomorrow.", "Tomorrow it is expected to rain."),
    (0, "The museum opens at nine.", "Football season starts in August with many matches."),
    (1, "They finished the project on time.", "The project was completed on schedule by them."),
    (0, "Prices rose by ten percent.", "The river flooded the village last spring after heavy rain."),
    (1, "The plane landed safely.", "The aircraft touched down without incident."),
    (0, "Voters went to the polls.", "The recipe needs two eggs."),
]


def write_glue(root: Path, rows=MRPC_ROWS) -> Path:
    d = root / "MRPC"
    d.mkdir(parents=True, exist_ok=True)
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    for split, part in (("train", rows), ("dev", rows[::-1][:9])):
        with open(d / f"{split}.tsv", "w") as f:
            f.write(header)
            for i, (label, a, b) in enumerate(part):
                f.write(f"{label}\t{i}\t{i + 100}\t{a}\t{b}\n")
    return root


def build_tiny(
    path: Path,
    seed: int = 0,
    overrides: dict | None = None,
    move_from=None,
    scale: float = 0.05,
    move_seed: int = 1,
):
    """Save a tiny scratch BERT for MRPC; with `move_from`, θ = that checkpoint + a seeded move."""
    from bertviz_landscape.training.data.tasks import get_task
    from bertviz_landscape.training.models.initial import build_initial_model, load_tokenizer

    model = build_initial_model(
        "all-minilm-l6-v2", get_task("mrpc"), "scratch", seed, {**TINY, **(overrides or {})}
    )
    if move_from is not None:
        from transformers import AutoModelForSequenceClassification

        model = AutoModelForSequenceClassification.from_pretrained(str(move_from))
        gen = torch.Generator().manual_seed(move_seed)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * scale * (p.detach().std() + 0.02))
    model.save_pretrained(str(path))
    load_tokenizer("all-minilm-l6-v2").save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """{theta0, theta1, theta2, glue_dir, cache_dir}: a tiny 'run' on a tiny MRPC."""
    root = tmp_path_factory.mktemp("tiny_run")
    theta0 = build_tiny(root / "init")
    theta1 = build_tiny(root / "final", move_from=theta0, move_seed=1)
    theta2 = build_tiny(root / "other", move_from=theta0, move_seed=2)
    glue = write_glue(root / "glue")
    return {
        "theta0": theta0,
        "theta1": theta1,
        "theta2": theta2,
        "glue_dir": glue,
        "cache_dir": root / "cache",
        "root": root,
    }


def data_cfg(run, **kw) -> dict:
    cfg = {
        "glue_dir": str(run["glue_dir"]),
        "max_train_samples": None,
        "max_eval_samples": None,
        "subset_seed": 0,
        "max_length": 32,
        "eval_batch_size": 4,
        "cache_dir": str(run["cache_dir"]),
    }
    cfg.update(kw)
    return cfg


def copy_checkpoint(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
