"""Shared fixtures: tiny GLUE files written by the test, tiny configs, isolated caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.training.data import get_task, load_glue_split

REAL_GLUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"
REAL_GLUE = Path(os.environ.get("GLUE_DIR", REAL_GLUE))

WORDS = "the a cat dog sat ran on under mat log quickly slowly red blue big small".split()

TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


CHECKOUT = Path(__file__).resolve().parents[1]


def outputs_listing(root: Path = CHECKOUT) -> set[str] | None:
    """The entries of `root`/outputs two levels deep (a command's `<kind>/<time>` run directories),
    None when there is no outputs/."""
    out = root / "outputs"
    if not out.exists():
        return None
    return {str(p.relative_to(out)) for pattern in ("*", "*/*") for p in out.glob(pattern)}


@pytest.fixture(autouse=True, scope="session")
def _isolated_env(tmp_path_factory):
    """Caches, W&B and the commands' default output directory (paths.output_dir, BVL_OUTPUT_DIR) in
    the session's temporary directory; at the end, the checkout has gained no outputs/ entry."""
    before = outputs_listing()
    os.environ["BVL_OUTPUT_DIR"] = str(tmp_path_factory.mktemp("outputs"))
    cache = tmp_path_factory.mktemp("cache")
    os.environ["BVL_CACHE_DIR"] = str(cache / "bvl")
    os.environ["HF_DATASETS_CACHE"] = str(cache / "hf_datasets")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ["WANDB_DIR"] = str(cache / "wandb")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    yield
    after = outputs_listing()
    gained = sorted((after or set()) - (before or set())) or (
        ["outputs/"] if after is not None and before is None else []
    )
    assert not gained, f"the tests left files in the checkout's outputs/: {gained[:10]}"


def require_extra(module: str, extra: str):
    """Import an optional extra's module, or skip saying which extra installs it — or fail, with
    BVL_REQUIRE_EXTRAS=1 (.ci/run installs every extra, so a skip there would hide a test that rots)."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
        why = f"{module} is not installed: pip install 'bertviz-landscape[{extra}]'"
        if os.environ.get("BVL_REQUIRE_EXTRAS"):
            pytest.fail(why)
        pytest.skip(why)
    return importlib.import_module(module)


def sentence(i: int, n: int = 6) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(n))


def write_glue(root: Path, n_train: int = 24, n_dev: int = 12) -> Path:
    """Tiny files in GLUE's original layout (with MRPC's BOM and a literal quote)."""
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = {
            "MRPC": ["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
            + [f'{i % 2}\t{100 + i}\t{200 + i}\t{sentence(i)} " quoted\t{sentence(i + 1)}' for i in range(n)],
            "RTE": ["index\tsentence1\tsentence2\tlabel"]
            + [
                f"{i}\t{sentence(i)}\t{sentence(i + 2)}\t{'entailment' if i % 3 else 'not_entailment'}"
                for i in range(n)
            ],
            "SST-2": ["sentence\tlabel"] + [f"{sentence(i, 4)} \t{(i // 2) % 2}" for i in range(n)],
            "STS-B": [
                "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
            ]
            + [
                f"{i}\tmain\tMSR\t2012\t{i:04d}\tnone\tnone\t"
                f"{sentence(i)}\t{sentence(i + 3)}\t{(i % 11) / 2:.3f}"
                for i in range(n)
            ],
        }
        for task, lines in rows.items():
            (root / task).mkdir(parents=True, exist_ok=True)
            (root / task / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def glue_dir(tmp_path) -> Path:
    return write_glue(tmp_path / "glue")


def compose_train(overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=overrides or [])


def tiny_train_cfg(glue_dir: Path, *overrides: str) -> DictConfig:
    """A 2-layer, hidden-32 BERT from scratch on the tiny files: seconds per run on a CPU. Its
    snapshots are every step (the default is every 10 since issue 31), unless the test picks."""
    own = ("callbacks=", "experiment=", "callbacks.snapshots.every_n_steps=")
    every_step = [] if any(o.startswith(own) for o in overrides) else ["callbacks.snapshots.every_n_steps=1"]
    cfg = compose_train(
        [
            *every_step,
            "model=tiny",
            "init=scratch",
            "logger=none",
            f"data.glue_dir={glue_dir}",
            "data.batch_size=8",
            "data.eval_batch_size=8",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            *overrides,
        ]
    )
    return cfg


@pytest.fixture
def tiny_pretrained(tmp_path) -> Path:
    """A saved tiny BERT to stand in for pretrained weights (model.name_or_path=<this dir>)."""
    from bertviz_landscape.contracts.checkpoints import save_checkpoint
    from bertviz_landscape.training.data import get_task
    from bertviz_landscape.training.models import build_initial_model, load_tokenizer

    model = build_initial_model(
        "all-minilm-l6-v2", get_task("mrpc"), "scratch", seed=123, config_overrides=TINY_MODEL
    )
    return save_checkpoint(model.base_model, load_tokenizer("all-minilm-l6-v2"), tmp_path / "tiny_pretrained")


def evaluate_with_plain_transformers(
    checkpoint: Path, task_name: str, glue_dir: Path, max_samples: int | None = None
) -> tuple[float, float]:
    """Mean dev loss and accuracy, with no project code but the TSV reader."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    dev = load_glue_split(get_task(task_name), "dev", glue_dir, max_samples=max_samples)
    with torch.no_grad():
        enc = tokenizer(
            list(dev["text_a"]),
            list(dev["text_b"]),
            truncation=True,
            max_length=128,
            padding=True,
            return_tensors="pt",
        )
        logits = model(**enc).logits
    labels = torch.tensor(list(dev["label"]))
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(-1) == labels).float().mean().item()


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: one thread is ~10x faster than two on a shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- issue 19's four checks: exit status 2, one line naming the file or key, nothing written
# outside the intended directory, nothing finished lost or silently reused ---------------------
def exits_2_with_one_line(function, *names: str, program: str = "bertviz-test") -> str:
    """Call `function()` the way every entrypoint calls its plain function
    (`errors.exit_on_bad_input`, what `cli.command` wraps each command's `run` in); assert it exits
    with status 2, printing exactly one error line ``<program>: error: ...`` (a library's progress
    bar may share stderr) that contains each of `names` (the file, the key), and no traceback.
    The line."""
    import contextlib
    import io

    from bertviz_landscape.contracts.errors import EXIT_BAD_INPUT, exit_on_bad_input

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as info:
        exit_on_bad_input(program, function)
    text = stderr.getvalue()
    assert info.value.code == EXIT_BAD_INPUT, text
    lines = [line for line in text.splitlines() if ": error: " in line]  # not progress bars
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), text
    assert "Traceback" not in text
    for name in names:
        assert str(name) in lines[0], (name, lines[0])
    return lines[0]


def tree_state(root: Path) -> dict[Path, str]:
    """Every file below `root` (symlinks as their target's name) → a digest of its content."""
    import hashlib

    out: dict[Path, str] = {}
    for p in Path(root).rglob("*"):
        if p.is_symlink():
            out[p] = "link:" + os.readlink(p)
        elif p.is_file():
            out[p] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def changes(before: dict[Path, str], root: Path) -> set[Path]:
    """The files below `root` created, changed or removed since `tree_state(root)` was `before`."""
    after = tree_state(root)
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def assert_changes_only_under(before: dict[Path, str], root: Path, *allowed: Path) -> set[Path]:
    """Nothing below `root` changed except below one of `allowed` (none: nothing changed at all);
    the changed files."""
    changed = changes(before, root)
    stray = {p for p in changed if not any(p.is_relative_to(a) for a in allowed)}
    assert not stray, sorted(stray)
    return changed
