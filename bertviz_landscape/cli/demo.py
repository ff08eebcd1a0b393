"""`bertviz-demo` (conf/demo.yaml): Hydra composes the demo's config and, once per kind, the
requests its stages specialise; pipeline/demo.py runs them.

The design is conf/demo.yaml as plain values (`plan.Design.from_config`); the requests are
composed as each command would compose them and typed as each command types them
(`LandscapeRequest`, `AnalyzeRequest`): the training config of each (task, arm) (conf/train.yaml's
plain values, as `train` takes them) —
``experiment=<train.experiment> task=<task> init=<init>`` (+ ``init.lr`` of a sweep's rate),
``data.glue_dir``, ``train.overrides`` and, for a task whose runs only span δ2,
``train.second_task`` —; the 1D curve's and the 2D plane's landscape requests (the grids of
``landscape.line`` / ``landscape.plane``, ``landscape.overrides``, the plane's ``rescale_y`` and
``plane_overrides``); and each analysis's request (``analysis=<name>`` with its budget,
``analysis_overrides.<name>``). The plan fills in each stage's runs, surfaces, outputs and seeds.
"""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.cli.command import command
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.engine.request import LandscapeRequest
from bertviz_landscape.pipeline.demo import run_demo
from bertviz_landscape.pipeline.plan import Design, Requests, build_stages
from bertviz_landscape.pipeline.runner import Stage


def _container(config_name: str, overrides: list[str], resolve: bool = False) -> dict:
    return OmegaConf.to_container(compose(config_name, overrides), resolve=resolve)


def requests(c: dict, design: Design) -> Requests:
    """The requests of the demo's stages, composed once per kind from the resolved demo config `c`."""
    data = (
        [f"data.glue_dir={c['glue_dir']}"] if c.get("glue_dir") else []
    )  # one data directory for every stage
    tr = c["train"]
    training = {}
    for task in design.tasks:
        for arm, (init, lr) in design.arms.items():
            training[(task, arm)] = _container(
                "train",
                [
                    f"experiment={tr['experiment']}",
                    f"task={task}",
                    f"init={init}",
                    *([f"init.lr={lr}"] if lr is not None else []),
                    *data,
                    *tr.get("overrides", []),
                    *(list(tr.get("second_task") or []) if design.is_second(task) else []),
                ],
            )
    ls = c["landscape"]
    common = [
        "overwrite=true",
        "progress=false",
        f"paths.output_dir={design.root}",
        *data,
        *ls.get("overrides", []),
    ]
    line, plane = ls["line"], ls["plane"]
    line_over = common + [f"grid.x.{k}={line[k]}" for k in ("min", "max", "num")]
    plane_over = common + [
        "grid=plane",
        f"directions.rescale_y={str(bool(ls.get('rescale_y'))).lower()}",
        *[f"grid.{ax}.{k}={plane[ax][k]}" for ax in ("x", "y") for k in ("min", "max", "num")],
        *(ls.get("plane_overrides") or []),
    ]
    budgets = c.get("analysis_overrides") or {}
    return Requests(
        training=training,
        line=LandscapeRequest.from_mapping(_container("landscape", line_over, resolve=True)),
        plane=LandscapeRequest.from_mapping(_container("landscape", plane_over, resolve=True)),
        analyses={
            name: AnalyzeRequest.from_mapping(
                _container("analyze", [f"analysis={name}", *data, *(budgets.get(name) or [])], resolve=True)
            )
            for name in design.analyses
        },
    )


def stages(cfg: DictConfig, selected: str | None = None) -> list[Stage]:
    """The stages of a composed demo config (`plan.build_stages`; `selected`: a sweep's chosen arm)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    design = Design.from_config(c)
    return build_stages(design, requests(c, design), selected)


def demo(cfg: DictConfig, out=None, quiet: bool = True) -> list[dict]:
    """The demo of a composed demo config: its design, its requests, every stage run."""
    c = OmegaConf.to_container(cfg, resolve=True)
    design = Design.from_config(c)
    return run_demo(design, requests(c, design), out=out, quiet=quiet)


def run_quietly(cfg: DictConfig) -> list[dict]:
    """`demo` with the libraries' logs at WARNING (the console gets one line per stage)."""
    for name in ("bertviz_landscape", "pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("WANDB_SILENT", "true")
    return demo(cfg)


main = command("bertviz-demo", "demo", run_quietly)


if __name__ == "__main__":
    main()
