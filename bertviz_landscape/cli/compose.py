"""Composing the project's configs with Hydra: the one place below the entrypoints that does.

`compose(name, overrides)` composes a config exactly as the entrypoint would (defaults in YAML)
through Hydra's public compose API, leaving Hydra's global state as it found it — so plain
functions, tests and one entrypoint calling another's engine (the demo) all see the same
defaults. `warn_unused_keys` names the keys of a composed config that nothing reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from bertviz_landscape.contracts import config


def compose(config_name: str, overrides: Sequence[str] = (), values: dict | None = None) -> DictConfig:
    """Compose `conf/<config_name>.yaml` with command-line style `overrides`, then merge `values`
    (a nested dict, e.g. {"grid": {...}}) on top; the `hydra` node is dropped."""
    with _hydra_on_conf_dir():
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.pop("hydra", None)
    if values:
        OmegaConf.set_struct(cfg, False)
        cfg = OmegaConf.merge(cfg, OmegaConf.create(values))
    return cfg


@contextlib.contextmanager
def _hydra_on_conf_dir() -> Iterator[None]:
    """Hydra initialised on `config.CONF_DIR` (read at each call) for one compose; a Hydra
    already running (an entrypoint that composes another command's config, a test's own
    `initialize_config_dir`) is put back after."""
    running = GlobalHydra.instance()
    saved = running.hydra if running.is_initialized() else None
    running.clear()
    try:
        with initialize_config_dir(config_dir=config.CONF_DIR, version_base="1.3", job_name="compose"):
            yield
    finally:
        GlobalHydra.instance().clear()
        if saved is not None:
            GlobalHydra.instance().initialize(saved)


# the sections whose keys are fixed by one config file (other groups have options with other keys)
CHECKED_SECTIONS = {"train": ("data", "optim", "trainer", "seed"), "landscape": ("data", "grid")}
OPTIONAL_KEYS = {"landscape": {"task"}}


def unused_keys(cfg: DictConfig, config_name: str) -> list[str]:
    """Keys of `cfg` that the composed defaults of `config_name` do not have (e.g. from `+foo=1`):
    nothing reads them."""
    base = compose(config_name)
    known = set(base.keys())  # `in` would miss a required key ('???', e.g. bertviz-plot's results)
    out = [
        k
        for k in cfg.keys()
        if k not in known and k not in OPTIONAL_KEYS.get(config_name, set()) and k != "hydra"
    ]
    for section in CHECKED_SECTIONS.get(config_name, ()):
        if isinstance(cfg.get(section), DictConfig) and isinstance(base.get(section), DictConfig):
            out += [f"{section}.{k}" for k in cfg[section].keys() if k not in set(base[section].keys())]
    return out


def warn_unused_keys(cfg: DictConfig, config_name: str) -> list[str]:
    """Warn about each of `unused_keys`, naming the nearest key the config has (difflib)."""
    import difflib
    import logging

    keys = unused_keys(cfg, config_name)
    base = compose(config_name) if keys else None
    for key in keys:
        parent, _, leaf = key.rpartition(".")
        section = base.get(parent) if parent else base
        known = [str(k) for k in section.keys()] if isinstance(section, DictConfig) else []
        close = difflib.get_close_matches(leaf, known, n=1)
        hint = f"; did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
        logging.getLogger("bertviz_landscape").warning(
            "config key %r is not used by bertviz-%s (a typo? nothing reads it)%s", key, config_name, hint
        )
    return keys
