"""`bertviz-train` (conf/train.yaml): Hydra composes the run's config; `training.train.train` trains it."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from bertviz_landscape.cli.command import command
from bertviz_landscape.training.train import USER_ERRORS, assign_job_device, train


def train_job(cfg: DictConfig) -> dict:
    """One Hydra job of bertviz-train: in a multirun its GPU (`assign_job_device`), then `train`
    into the job's output directory."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        assign_job_device(cfg, hydra_cfg.job.num, torch.cuda.device_count())
    return train(cfg, hydra_cfg.runtime.output_dir)


hydra_main = command("bertviz-train", "train", train_job, USER_ERRORS)


def main() -> None:
    hydra_main()


if __name__ == "__main__":
    main()
