"""`bertviz-plot results=<dir>` (conf/plot.yaml): the Hydra edge of the publisher
(`bertviz_landscape.publish.publisher.publish`): every figure the directory supports, then the
report and, with ``wandb.enabled=true``, the W&B media. Bad input: one line, exit 2.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.publish.publisher import publish


def run(cfg: DictConfig) -> dict:
    """The config → publisher call, without Hydra's runtime (tests call this with a composed cfg).
    Returns the figures catalogue."""
    enabled = cfg.get("wandb") and cfg.wandb.get("enabled")
    wandb = OmegaConf.to_container(cfg.wandb, resolve=True) if enabled else None
    return publish(
        cfg.results,
        cfg.output if cfg.get("output") else None,
        interactive=bool(cfg.interactive),
        formats=tuple(cfg.formats),
        trajectory_projection=str(cfg.trajectory_projection),
        paraview=bool(cfg.get("paraview", False)),
        report=bool(cfg.get("report", True)),
        plan=OmegaConf.to_container(cfg.plan, resolve=True) if cfg.get("plan") else None,
        wandb=wandb,
    )


def run_and_say(cfg: DictConfig) -> dict:
    """`run`, then one line saying how many figures and where."""
    manifest = run(cfg)
    where = cfg.output or ResultsDir(cfg.results).figures
    print(f"bertviz-plot: {len(manifest['figures'])} figures in {where}")
    return manifest


main = command("bertviz-plot", "plot", run_and_say)


if __name__ == "__main__":
    main()
