"""The five commands share one skeleton (bertviz_landscape/cli/command.py): each warns about a config key
nothing reads, and reports bad input as one line `bertviz-<cmd>: error: ...` with exit status 2.
In-process (the Hydra-decorated entrypoint's own function on a composed config); the real process
start, with the run's log file, is tests/test_reliability.py's `test_cli_one_line_errors_and_train_log`."""

from __future__ import annotations

import importlib
import logging

import pytest
from conftest import write_glue

from bertviz_landscape.cli.compose import compose

COMMANDS = {
    # program: (module holding the entrypoint, its attribute, config, overrides giving bad input, the message)
    "bertviz-train": (
        "bertviz_landscape.cli.train",
        "hydra_main",
        "train",
        ["trainer.max_epochs=0"],
        "max_epochs",
    ),
    "bertviz-landscape": (
        "bertviz_landscape.cli.landscape",
        "main",
        "landscape",
        [],
        "task is not given",
    ),
    "bertviz-analyze": (
        "bertviz_landscape.cli.analyze",
        "main",
        "analyze",
        [],
        "needs run=<run dir>",
    ),
    "bertviz-plot": (
        "bertviz_landscape.cli.plot",
        "main",
        "plot",
        ["results=/nonexistent/x"],
        "no such directory",
    ),
    "bertviz-demo": ("bertviz_landscape.cli.demo", "main", "demo", ["tasks=[mrpc]"], "tasks=['mrpc']"),
}


@pytest.fixture
def fake_hydra_job(monkeypatch, tmp_path):
    """What bertviz-train reads of the running Hydra job: a single run into tmp_path/run."""
    from hydra.types import RunMode

    class Job:
        mode = RunMode.RUN

        class job:
            num = 0

        class runtime:
            output_dir = str(tmp_path / "run")

    monkeypatch.setattr("hydra.core.hydra_config.HydraConfig.get", staticmethod(lambda: Job))


@pytest.mark.parametrize("program", list(COMMANDS))
def test_every_command_warns_about_unused_keys_and_reports_bad_input_in_one_line(
    program, tmp_path, capsys, caplog, fake_hydra_job
):
    module, attr, config, bad, message = COMMANDS[program]
    entry = getattr(importlib.import_module(module), attr)
    extra = (
        [f"data.glue_dir={write_glue(tmp_path / 'glue')}", "model=tiny", "logger=none"]
        if config == "train"
        else []
    )
    if config == "demo":
        extra = [f"output_dir={tmp_path / 'demo'}"]
    cfg = compose(config, [*bad, *extra, "+typo_key=1"])
    levels = {n: logging.getLogger(n).level for n in ("bertviz_landscape", "pytorch_lightning", "lightning")}
    try:
        with caplog.at_level(logging.WARNING, logger="bertviz_landscape"), pytest.raises(SystemExit) as exit_:
            entry.__wrapped__(cfg)  # the function hydra.main wraps: the skeleton's own steps
    finally:
        for name, level in levels.items():  # the demo quiets the libraries' logs
            logging.getLogger(name).setLevel(level)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"{program}: error:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err, err
    warned = [r.getMessage() for r in caplog.records if "is not used by bertviz-" in r.getMessage()]
    assert len(warned) == 1 and "'typo_key'" in warned[0], (
        caplog.text
    )  # only the typo: required keys are known


def test_every_command_is_made_by_the_one_skeleton():
    """Not five hand-written handlers: each entrypoint is cli.command's (its Hydra function is the
    skeleton's `main`), so the bad-input path and the unused-key warning cannot drift apart."""
    for module, attr, *_ in COMMANDS.values():
        entry = getattr(importlib.import_module(module), attr)
        assert entry.__wrapped__.__module__ == "bertviz_landscape.cli.command", module
        assert entry.__wrapped__.__qualname__ == "command.<locals>.main", module


def test_a_required_key_is_not_an_unused_one():
    """bertviz-plot's `results: ???` is required, not unknown: giving it warns about nothing."""
    from bertviz_landscape.cli.compose import unused_keys

    assert unused_keys(compose("plot", ["results=/somewhere"]), "plot") == []
    assert unused_keys(compose("plot", ["results=/somewhere", "+typo_key=1"]), "plot") == ["typo_key"]
