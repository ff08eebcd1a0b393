"""The one skeleton of the five commands (bertviz-train, -landscape, -analyze, -plot, -demo).

    hydra_main = command("bertviz-landscape", "landscape", run)

`command` makes the Hydra entrypoint of conf/<config_name>.yaml (Hydra's own command line:
overrides, ``-m`` multiruns, launchers; the job's name, and so its log file, is the config's
``hydra.job.name``). Every command then does the same: it warns about each config key that
nothing reads (`config.warn_unused_keys`), calls its plain function ``run(cfg)`` — the one tests
call with a composed config — and reports bad input as one line ``bertviz-<cmd>: error: ...`` on
stderr and in the log, exit status 2 (`errors.exit_on_bad_input`). Bad input is a `BadInput`
(also raised inside a config resolver) or one of the command's `user_errors`; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.cli.compose import CHECKED_SECTIONS, compose, warn_unused_keys
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.errors import EXIT_BAD_INPUT, BadInput, exit_on_bad_input


def command(
    program: str,
    config_name: str,
    run: Callable[[DictConfig], Any],
    user_errors: tuple[type[BaseException], ...] = (),
) -> Callable[..., Any]:
    """The Hydra entrypoint `program` over conf/`config_name`.yaml that calls `run(cfg)`."""

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)
    def main(cfg: DictConfig) -> Any:
        warn_unused_keys(cfg, config_name)
        return exit_on_bad_input(program, run, cfg, errors=user_errors)

    return main


# --- the command line, checked before the heavy stack (torch, transformers, Lightning) loads -----
# Hydra's flags this check understands; any other flag (--cfg, --info, --shell-completion, ...)
# leaves the command line to Hydra unchecked.
_FLAGS = {"-m", "--multirun"}
_FLAGS_WITH_VALUE = {"--config-name", "-cn"}


def check_command_line(program: str, config_name: str, argv: Sequence[str]) -> list[str]:
    """The command line `argv` (without the program) checked against conf/`config_name`.yaml the
    way Hydra will compose it, before anything heavy is imported: ``--help`` prints the command's
    own help and exits 0; an unknown key or config-group option is one line naming the nearest
    valid spelling (difflib), exit 2. Returns the arguments to hand to Hydra: ``task=<name>``
    of a task spec file (no conf/task preset) becomes ``task.name=<name>`` (`data/tasks.py` finds
    the spec on $BVL_TASK_PATH)."""
    import sys

    argv = list(argv)
    overrides, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--help", "-h"):
            print(command_help(program, _config_name(argv, config_name)))
            sys.exit(0)
        if arg in _FLAGS_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("--config-name="):
            i += 1
            continue
        if arg.startswith("-") and arg not in _FLAGS:
            return argv  # a Hydra flag this check does not model: Hydra's own handling
        if not arg.startswith("-"):
            overrides.append(arg)
        i += 1
    config_name = _config_name(argv, config_name)
    try:
        rewritten = _task_spec_overrides(config_name, overrides)
        _compose_first_job(config_name, rewritten)
    except BadInput as err:
        print(f"{program}: error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    swap = dict(zip(overrides, rewritten))
    return [swap.get(a, a) for a in argv]


def _config_name(argv: list[str], default: str) -> str:
    for i, arg in enumerate(argv):
        if arg in _FLAGS_WITH_VALUE and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config-name="):
            return arg.split("=", 1)[1]
    return default


def _parse(overrides: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(overrides)


def _group_options(group: str) -> list[str]:
    folder = Path(CONF_DIR) / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _task_spec_overrides(config_name: str, overrides: list[str]) -> list[str]:
    """``task=<name>`` for a name that is no conf/task preset selects the task by name
    (``task.name=<name>``: a GLUE alias or a task spec file on $BVL_TASK_PATH), where `task` is a
    config group of the command."""
    base = compose(config_name)
    if not isinstance(base.get("task"), DictConfig) or "name" not in base.task:
        return overrides
    presets = set(_group_options("task"))
    out = []
    for text, parsed in zip(overrides, _parse(overrides)):
        if parsed.key_or_group == "task" and not parsed.is_add() and not parsed.is_delete():
            values = list(parsed.sweep_string_iterator()) if parsed.is_sweep_override() else [parsed.value()]
            if any(str(v) not in presets for v in values):
                text = "task.name=" + text.split("=", 1)[1]
        out.append(text)
    return out


def _compose_first_job(config_name: str, overrides: list[str]) -> None:
    """Compose the first job of the command line (a sweep's first value); Hydra's errors for an
    unknown key or option become one BadInput line with the nearest valid spelling."""
    from hydra.errors import ConfigCompositionException, MissingConfigException

    first = []
    for text, parsed in zip(overrides, _parse(overrides)):
        if parsed.key_or_group.split(".")[0].split("/")[0] == "hydra":
            continue  # Hydra's own settings (run dir, launcher): Hydra checks them
        if parsed.is_sweep_override():
            key = text.split("=", 1)[0]
            text = f"{key}={next(iter(parsed.sweep_string_iterator()))}"
        first.append(text)
    try:
        compose(config_name, first)
    except MissingConfigException as err:
        found = re.search(r"Could not find '([^']+)/([^'/]+)'", str(err))
        if not found:
            raise BadInput(str(err).splitlines()[0]) from None
        group, option = found.groups()
        options = _group_options(group)
        raise BadInput(
            f"unknown {group} {option!r} ({group}={option}): {_did_you_mean(option, options, f'{group}=')}"
            f"the options of {group}: {', '.join(options)}"
        ) from None
    except ConfigCompositionException as err:
        found = re.search(r"Could not override '([^']+)'", str(err))
        if not found:
            raise BadInput(str(err).splitlines()[0]) from None
        raise BadInput(_unknown_key_message(config_name, found.group(1), first)) from None


def _unknown_key_message(config_name: str, key: str, overrides: list[str]) -> str:
    """One line for `key`, which the composed config does not have: the nearest key, or the
    keys of its section (an open mapping such as model.config_overrides takes ``+key=``)."""
    import difflib

    groups = [o for o in overrides if "=" in o and (Path(CONF_DIR) / o.split("=", 1)[0].lstrip("+")).is_dir()]
    try:
        base = compose(config_name, groups)
    except Exception:
        base = compose(config_name)
    keys = _flat_keys(base)
    text = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == key), key)
    line = f"unknown config key {key!r} ({text}): nothing reads it"
    parent, _, leaf = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)  # the same section first
    if close:
        return f"{line}; did you mean {parent + '.' if parent else ''}{close[0]}?"
    ancestors = {key.rsplit(".", n)[0] for n in range(1, key.count(".") + 1)}
    close = difflib.get_close_matches(key, [k for k in keys if k not in ancestors], n=1, cutoff=0.8)
    close = close or [k for k in keys if k.rpartition(".")[2] == leaf][:1]  # the key, in its section
    if close:  # another section
        return f"{line}; did you mean {close[0]}?"
    section = OmegaConf.select(base, parent) if parent else base
    if parent and isinstance(section, DictConfig) and len(section) == 0:
        return f"{line}; {parent} is an open mapping: add a key with +{text.lstrip('+')}"
    if isinstance(section, DictConfig):
        return f"{line}; the keys of {parent or config_name + '.yaml'}: {', '.join(map(str, section.keys()))}"
    return line


def _flat_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    out = []
    for k in cfg.keys():
        full = f"{prefix}{k}"
        out.append(full)
        node = cfg._get_node(k)
        if isinstance(node, DictConfig):
            out += _flat_keys(node, full + ".")
    return out


def _did_you_mean(word: str, choices: Sequence[str], prefix: str = "") -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {prefix}{close[0]}? " if close else ""


def command_help(program: str, config_name: str) -> str:
    """``<program> --help``: the usage lines of conf/`config_name`.yaml, the config groups this
    command composes (the option in use and the others), and its own keys with their comments."""
    path = Path(CONF_DIR) / f"{config_name}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    usage = []
    for line in lines:
        if not line.startswith("#"):
            break
        usage.append(line.lstrip("#").rstrip()[1:] if line.startswith("# ") else line.lstrip("#"))
    cfg = compose(config_name)
    groups = _groups_of(lines)
    out = [f"{program} (conf/{config_name}.yaml): key=value overrides, Hydra's -m for a multirun", ""]
    out += [u for u in usage if u.strip()] + [""]
    if groups:
        out.append("config groups (group=option; the one in use first):")
        for group, default in groups:
            others = [o for o in _group_options(group) if o != default]
            out.append(
                f"  {group:<11} {default or '(none)'}" + (f"   also: {', '.join(others)}" if others else "")
            )
        out.append("")
    out.append("main keys (key=value; the default, then what it does):")
    for line in lines:
        found = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*(?:#\s*(.*))?$", line)
        if not found or found.group(1) in ("defaults", "hydra") or found.group(1) not in cfg.keys():
            continue
        key, value, comment = found.groups()
        if not value and key in CHECKED_SECTIONS.get(config_name, ()):
            continue  # listed key by key below
        value = value or "{...}"
        out.append(f"  {key}={value}" + (f"   # {comment}" if comment else ""))
    for section in CHECKED_SECTIONS.get(config_name, ()):
        node = cfg.get(section)
        if isinstance(node, DictConfig):
            for key in node.keys():
                if not isinstance(node._get_node(key), DictConfig):
                    value = node._get_node(key)._value()
                    shown = _YAML_WORDS[value] if value is None or isinstance(value, bool) else value
                    out.append(f"  {section}.{key}={shown}")
    out += [
        "",
        "any nested key works the same way (e.g. trainer.max_epochs=3); `--cfg job` prints the whole",
        "composed config, `--hydra-help` Hydra's own flags. Docs: docs/guide/ (make docs).",
    ]
    return "\n".join(out)


_YAML_WORDS = {None: "null", True: "true", False: "false"}


def _groups_of(lines: list[str]) -> list[tuple[str, str | None]]:
    """The config groups of a config file's defaults list: (group, default option)."""
    out, inside = [], False
    for line in lines:
        if line.startswith("defaults:"):
            inside = True
            continue
        if inside:
            found = re.match(r"^\s+-\s+(?:optional\s+)?([\w/]+):\s*([\w.-]+)", line)
            if found and found.group(1) not in ("hydra", "override hydra/launcher"):
                group, option = found.groups()
                out.append((group, None if option == "null" else option))
            elif not line.startswith(" "):
                break
    return out
