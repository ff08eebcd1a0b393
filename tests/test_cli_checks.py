"""Issue 31: a newcomer's typos and model/data mistakes, through the command or the API a user
calls — each one line naming the problem and the nearest valid spelling, exit status 2 — and
the command line checked before the heavy stack loads."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import yaml
from conftest import exits_2_with_one_line, tiny_train_cfg

from bertviz_landscape import api
from bertviz_landscape.cli import commands
from bertviz_landscape.cli.command import check_command_line
from bertviz_landscape.contracts.errors import exit_on_bad_input


def run_command(monkeypatch, capsys, entry, *args: str):
    """`entry()` (a console script of bertviz_landscape.cli.commands) with `args`: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["bertviz-x", *args])
    with pytest.raises(SystemExit) as info:
        entry()
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    ("entry", "args", "wanted"),
    [
        (commands.train, ["trainer.max_epoch=2"], "did you mean trainer.max_epochs?"),
        (commands.train, ["max_epochs=2"], "did you mean trainer.max_epochs?"),
        (commands.train, ["-m", "task=mrpc,rte", "trainer.max_epoch=2"], "did you mean trainer.max_epochs?"),
        (commands.train, ["model=tiyn"], "did you mean model=tiny?"),
        (commands.train, ["init=scrach"], "did you mean init=scratch?"),
        (commands.landscape, ["gird=plane"], "did you mean grid?"),
        (commands.landscape, ["grid.x.nmu=3"], "did you mean grid.x.num?"),
        (commands.analyze, ["analysis=flatnes"], "did you mean analysis=flatness?"),
        (commands.demo, ["seed=[0]"], "did you mean seeds?"),
        (commands.plot, ["result=x"], "did you mean results?"),
    ],
)
def test_a_typo_on_the_command_line_is_one_line_with_the_right_spelling(
    monkeypatch, capsys, entry, args, wanted
):
    code, _, err = run_command(monkeypatch, capsys, entry, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and ": error: " in lines[0], err
    assert wanted in lines[0] and "+" not in lines[0].split("did you mean")[1], lines[0]
    assert "To append to your config" not in err


def test_an_open_mapping_gets_the_plus_advice_only_there(monkeypatch, capsys):
    """model.config_overrides takes any key of the model's config: there `+key=` is the answer."""
    code, _, err = run_command(monkeypatch, capsys, commands.train, "model.config_overrides.hidden_sise=3")
    assert code == 2 and "+model.config_overrides.hidden_sise=3" in err, err


def test_a_typo_fails_before_torch_is_imported():
    """Fail fast: the check runs on the YAML alone (Hydra + OmegaConf), not after torch loads."""
    code = (
        "import sys; sys.argv = ['bertviz-train', 'trainer.max_epoch=2']\n"
        "from bertviz_landscape import commands\n"
        "try:\n    commands.train()\nexcept SystemExit as e:\n"
        "    print('exit', e.code, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "exit 2 False False", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("entry", "program", "groups", "keys"),
    [
        (commands.train, "bertviz-train", ["task", "model", "init", "trainer", "callbacks"], ["seed="]),
        (commands.landscape, "bertviz-landscape", ["directions", "grid"], ["run=", "run2=", "grid.name="]),
        (commands.analyze, "bertviz-analyze", ["analysis"], ["run="]),
        (commands.plot, "bertviz-plot", [], ["results="]),
        (commands.demo, "bertviz-demo", ["plan"], ["seeds=", "tasks="]),
    ],
)
def test_help_lists_the_commands_own_groups_and_keys(monkeypatch, capsys, entry, program, groups, keys):
    code, out, _ = run_command(monkeypatch, capsys, entry, "--help")
    assert code == 0 and out.startswith(program), out
    for group in groups:
        assert f"\n  {group} " in out, (group, out)
    for key in keys:
        assert f"\n  {key}" in out, (key, out)
    if program == "bertviz-train":  # not Hydra's generic list of every group under conf/
        assert "\n  analysis " not in out and "\n  grid " not in out and "Powered by Hydra" not in out


def write_spec(folder, name="reviews"):
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rows = "review,stars\n" + "".join(f"text number {i},{'pos' if i % 2 else 'neg'}\n" for i in range(12))
    (folder / "data" / "train.csv").write_text(rows)
    (folder / "data" / "dev.csv").write_text(rows)
    spec = {"name": name, "source": {"train": "data/train.csv", "dev": "data/dev.csv"}}
    spec["columns"] = {"text": "review", "label": "stars"}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec))


def test_task_equals_a_spec_name_selects_the_spec_on_the_search_path(tmp_path, monkeypatch):
    write_spec(tmp_path)
    monkeypatch.setenv("BVL_TASK_PATH", str(tmp_path))
    assert check_command_line("bertviz-train", "train", ["task=reviews", "model=tiny"]) == [
        "task.name=reviews",
        "model=tiny",
    ]
    assert check_command_line("bertviz-train", "train", ["-m", "task=mrpc,reviews"]) == [
        "-m",
        "task.name=mrpc,reviews",
    ]
    assert check_command_line("bertviz-train", "train", ["task=rte"]) == ["task=rte"]  # a preset stays


def test_task_equals_a_spec_name_trains(tmp_path, monkeypatch, glue_dir):
    from bertviz_landscape.training.train import train

    write_spec(tmp_path / "specs")
    monkeypatch.setenv("BVL_TASK_PATH", str(tmp_path / "specs"))
    args = check_command_line("bertviz-train", "train", ["task=reviews"])
    metrics = train(tiny_train_cfg(glue_dir, *args), tmp_path / "run")
    assert metrics["task"] == "reviews", metrics


def test_an_unknown_task_names_the_nearest_spec(tmp_path, monkeypatch, glue_dir):
    from bertviz_landscape.training.train import USER_ERRORS, train

    write_spec(tmp_path / "specs")
    monkeypatch.setenv("BVL_TASK_PATH", str(tmp_path / "specs"))
    cfg = tiny_train_cfg(glue_dir, "task.name=reveiws")
    line = exits_2_with_one_line(
        lambda: exit_on_bad_input("bertviz-train", train, cfg, tmp_path / "run", errors=USER_ERRORS),
        "did you mean reviews?",
        program="bertviz-train",
    )
    assert "reviews" in line.split("task specs:")[1]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_api_keywords_are_strict(tmp_path):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'gird'; did you mean 'grid'\?"):
        api.loss_curve(tmp_path, gird={"x": {"num": 3}})
    with pytest.raises(TypeError, match=r"'trainer_max_epochs'"):
        api.train_run(tmp_path, task="mrpc", trainer_max_epochs=1)
    with pytest.raises(TypeError, match=r"did you mean 'analysis'\?"):
        api.analyze("flatness", analyis={})
    with pytest.raises(TypeError, match=r"did you mean 'report'\?"):
        api.draw(tmp_path, reprot=False)


def test_a_model_path_that_does_not_exist_is_one_line(tmp_path, glue_dir):
    from bertviz_landscape.training.train import train

    cfg = tiny_train_cfg(glue_dir, f"model.name_or_path={tmp_path / 'no_such_model'}")
    exits_2_with_one_line(lambda: train(cfg, tmp_path / "run"), "no_such_model", "no such directory")
    assert not (tmp_path / "run").exists()


def test_a_preset_that_cannot_load_pretrained_weights_is_one_line(tmp_path, glue_dir, tiny_pretrained):
    from bertviz_landscape.training.train import train

    cfg = tiny_train_cfg(glue_dir, "init=pretrained")  # model=tiny: MiniLM's weights, resized
    exits_2_with_one_line(lambda: train(cfg, tmp_path / "run"), "init=pretrained", "hidden_size 384 -> 32")
    assert not (tmp_path / "run").exists()
    # a saved model of the preset's shape loads (README: model=tiny init=pretrained model.name_or_path=...)
    from bertviz_landscape.training.models.source import check_model_source

    assert check_model_source(str(tiny_pretrained), "pretrained", {"hidden_size": 32, "num_hidden_layers": 2})


def test_offline_without_a_glue_directory_fails_at_once_naming_glue_dir(tmp_path, monkeypatch):
    import time

    from bertviz_landscape.training.train import train

    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tiny_train_cfg(tmp_path, "data.glue_dir=null")
    start = time.perf_counter()
    exits_2_with_one_line(lambda: train(cfg, tmp_path / "run"), "GLUE_DIR", "offline")
    assert time.perf_counter() - start < 10  # no hub retries (they took 33 s)


def test_every_data_key_is_known_to_the_landscape():
    """No "data.group_by_length is not used by the landscape" on every call: each key of the data
    group is an evaluation key or a training-only one."""
    from bertviz_landscape.contracts.config import CONF_DIR
    from bertviz_landscape.training.data.eval_sets import EVAL_DATA_KEYS, TRAINING_ONLY_KEYS

    keys = set(yaml.safe_load(open(f"{CONF_DIR}/data/glue.yaml")))
    assert keys <= set(EVAL_DATA_KEYS) | set(TRAINING_ONLY_KEYS), keys - set(EVAL_DATA_KEYS)


def test_the_landscape_warns_about_nothing_the_user_did_not_set(caplog):
    from bertviz_landscape.cli.compose import compose
    from bertviz_landscape.training.data.eval_sets import DataRequest

    cfg = compose("landscape", ["task=mrpc"])
    with caplog.at_level(logging.WARNING, logger="bertviz_landscape"):
        DataRequest.from_config(dict(cfg.data))
    assert not [r for r in caplog.records if "not used" in r.getMessage()], caplog.text


def test_the_snapshot_size_is_printed_before_training(tmp_path, glue_dir, caplog):
    from bertviz_landscape.cli.compose import compose
    from bertviz_landscape.training.train import train

    assert compose("train").callbacks.snapshots.every_n_steps > 1  # a first run stays small
    cfg = tiny_train_cfg(glue_dir)
    with caplog.at_level(logging.INFO, logger="bertviz_landscape"):
        train(cfg, tmp_path / "run")
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("snapshots: ~")]
    assert said and "callbacks.snapshots.every_n_steps=<n>" in said[0], caplog.text
    first_step = [
        r for r in caplog.records if "train batches" in r.getMessage() or "snapshots: ~" in r.getMessage()
    ]
    assert first_step, caplog.text


def test_without_network_and_without_a_glue_directory_fails_at_once(tmp_path, monkeypatch):
    """Not marked offline, but the hub's host does not answer: the same one line, no retries."""
    import time

    from bertviz_landscape.training.train import train

    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://unreachable.invalid")
    cfg = tiny_train_cfg(tmp_path, "data.glue_dir=null")
    start = time.perf_counter()
    exits_2_with_one_line(lambda: train(cfg, tmp_path / "run"), "GLUE_DIR", "not reachable")
    assert time.perf_counter() - start < 10


def test_an_appended_typo_is_warned_with_the_right_spelling(caplog):
    """``+trainer.max_epoch=2`` (Hydra's own advice) composes; the warning names the key meant."""
    from bertviz_landscape.cli.compose import compose, warn_unused_keys

    with caplog.at_level(logging.WARNING, logger="bertviz_landscape"):
        warn_unused_keys(compose("train", ["+trainer.max_epoch=2"]), "train")
    assert "did you mean trainer.max_epochs?" in caplog.text, caplog.text


def test_the_docs_task_spec_table_covers_every_key_the_reader_accepts():
    """docs/_hooks/task_spec.py (run by `make docs`) builds the own-data page's table from
    data/sources.py; every key the reader accepts is a row."""
    import importlib.util
    from pathlib import Path

    from bertviz_landscape.training.data import sources

    hook = Path(__file__).resolve().parents[1] / "docs" / "_hooks" / "task_spec.py"
    spec = importlib.util.spec_from_file_location("task_spec_hook", hook)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.on_page_markdown(f"x\n{module.MARKER}\n")
    for key in [*sources.SPEC_KEYS, *(f"source.{k}" for k in module.SOURCE_KEYS), "columns.pair"]:
        assert f"| `{key}` |" in table, key
    for fmt in sources.FORMATS:
        assert f"`{fmt}`" in table


def test_the_pretrained_shape_check_reads_an_architectures_own_key_names(tmp_path):
    """DistilBERT saves hidden_size as `dim` (transformers' attribute_map): overrides equal to the saved
    shape pass, a different one is refused naming the saved value (was: every override looked
    changed, `None -> 32`, and a tiny pretrained DistilBERT could not load)."""
    import json

    from bertviz_landscape.training.models.source import ModelSourceError, check_model_source

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "distilbert", "dim": 32, "n_layers": 2}))
    check_model_source(str(tmp_path), "pretrained", {"hidden_size": 32, "num_hidden_layers": 2})
    with pytest.raises(ModelSourceError, match="hidden_size 32 -> 64"):
        check_model_source(str(tmp_path), "pretrained", {"hidden_size": 64})
