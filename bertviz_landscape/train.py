"""Train one run: pretrained BERT fine-tuned, or the same architecture from scratch, on a GLUE task.

``bertviz-train task=mrpc init=pretrained`` (Hydra; see conf/train.yaml). The Hydra entrypoint
only composes the config; `train(cfg, run_dir)` does the work and can be called from Python.

A run directory holds::

    checkpoints/init/   θ0 (save_pretrained dir + tokenizer)
    checkpoints/final/  θ1
    checkpoints/resume.ckpt  Lightning state at the last finished epoch, while training (resume=true)
    snapshots/          θ_t − θ0 every n steps (bertviz_landscape.snapshots)
    logs/metrics.csv    per-step / per-epoch metrics (logger=csv or wandb)
    metrics.json        final dev metrics, majority-class baseline, steps, wall time
    wandb/              the offline W&B run (logger=wandb); upload later with `wandb sync`
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from bertviz_landscape.callbacks import EpochCheckpoint, SnapshotBudgetError, WeightSnapshots
from bertviz_landscape.config import CONF_DIR
from bertviz_landscape.checkpoints import is_checkpoint, save_checkpoint
from bertviz_landscape.data.datamodule import GlueDataModule
from bertviz_landscape.data.glue import GlueDataError
from bertviz_landscape.data.tasks import GlueTask, UnknownTaskError, get_task
from bertviz_landscape.models import GlueClassifier, build_initial_model, load_tokenizer
from bertviz_landscape.snapshots import write_json_atomic

log = logging.getLogger("bertviz_landscape.train")


def majority_baseline(task: GlueTask, train_labels: torch.Tensor, dev_labels: torch.Tensor) -> dict[str, float]:
    """Dev metrics of always predicting the train split's majority class (mean score for STS-B)."""
    if task.is_regression:
        constant = torch.full_like(dev_labels.float(), float(train_labels.float().mean()))
        return {"mse": float(torch.nn.functional.mse_loss(constant, dev_labels.float()))}
    majority = int(torch.bincount(train_labels.long(), minlength=task.num_labels).argmax())
    metrics = task.make_metrics()
    metrics.update(torch.full_like(dev_labels, majority), dev_labels)
    return {k: float(v) for k, v in metrics.compute().items()} | {"class": majority}


def build_loggers(cfg: DictConfig, run_dir: Path, run_name: str, resumed: bool = False) -> list:
    loggers = []
    if cfg.logger.get("csv"):
        # a resumed run logs beside the first part (CSVLogger would delete logs/metrics.csv)
        version = f"resume-{len(list((run_dir / 'logs').glob('resume-*')))}" if resumed else ""
        loggers.append(CSVLogger(save_dir=str(run_dir), name="logs", version=version))
    wb = cfg.logger.get("wandb")
    if wb:
        os.environ.setdefault("WANDB_SILENT", "true")
        logger = WandbLogger(
            project=wb.project, entity=wb.get("entity"), group=wb.get("group"), tags=list(wb.get("tags") or []),
            name=f"{run_name}-resumed" if resumed else run_name, save_dir=str(run_dir), offline=wb.mode == "offline", mode=wb.mode,
        )
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        loggers.append(logger)
    return loggers


def train(cfg: DictConfig, run_dir: str | os.PathLike) -> dict:
    """Train one (task, init) run into `run_dir`; returns the final metrics (also in metrics.json)."""
    run_dir = Path(run_dir)
    result_path = run_dir / "metrics.json"
    if result_path.exists() and is_checkpoint(run_dir / "checkpoints" / "final") and not cfg.get("force", False):
        log.info("run in %s is already complete; skipping (force=true to train again)", run_dir)
        return json.loads(result_path.read_text())

    task = get_task(cfg.task.name)
    started = time.time()
    pl.seed_everything(cfg.seed, workers=True)
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    d = cfg.data
    datamodule = GlueDataModule(
        task, tokenizer, glue_dir=d.glue_dir, max_train_samples=d.max_train_samples,
        max_eval_samples=d.max_eval_samples, subset_seed=d.subset_seed, max_length=d.max_length,
        batch_size=d.batch_size, eval_batch_size=d.eval_batch_size, num_workers=d.num_workers,
        shuffle_seed=cfg.seed, cache_dir=d.cache_dir,
    )
    datamodule.setup("fit")  # bad data fails here, before anything is written
    labels = [torch.tensor(list(ds.with_format(None)["labels"])) for ds in (datamodule.train_set, datamodule.dev_set)]
    baseline = majority_baseline(task, *labels)

    model = build_initial_model(
        cfg.model.name_or_path, task, cfg.init.name, seed=cfg.init.seed,
        config_overrides=OmegaConf.to_container(cfg.model.config_overrides, resolve=True),
    )
    module = GlueClassifier(model, task, lr=cfg.init.lr, seed=cfg.seed, **OmegaConf.to_container(cfg.optim, resolve=True))
    resume_path = run_dir / "checkpoints" / "resume.ckpt"
    resume = bool(cfg.get("resume", True))
    resumed = resume and not cfg.get("force", False) and resume_path.is_file() \
        and is_checkpoint(run_dir / "checkpoints" / "init")
    if resumed:
        log.info("resuming the interrupted run in %s from %s", run_dir, resume_path)

    callbacks = []
    snap = cfg.callbacks.get("snapshots")
    if snap and snap.get("enabled", True):
        callbacks.append(WeightSnapshots(
            dirpath=str(run_dir / "snapshots"), every_n_steps=snap.every_n_steps, dtype=snap.dtype,
            max_disk_gb=snap.get("max_disk_gb"), min_free_gb=snap.get("min_free_gb", 1.0),
        ))
    if resume:
        callbacks.append(EpochCheckpoint(resume_path))  # after the snapshots: they flush first
    run_name = f"{task.name}_{cfg.init.name}"
    loggers = build_loggers(cfg, run_dir, run_name, resumed)
    trainer = pl.Trainer(
        default_root_dir=str(run_dir), logger=loggers or False, callbacks=callbacks,
        **OmegaConf.to_container(cfg.trainer, resolve=True),
    )
    if not resumed:
        save_checkpoint(model, tokenizer, run_dir / "checkpoints" / "init")
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(resume_path) if resumed else None)
        save_checkpoint(model, tokenizer, run_dir / "checkpoints" / "final")
        dev = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        result = {
            "task": task.name, "init": cfg.init.name, "model": cfg.model.name_or_path,
            "primary_metric": task.primary_metric, "dev": dev, "majority_baseline": baseline,
            "steps": trainer.global_step, "epochs": trainer.current_epoch,
            "train_examples": len(datamodule.train_set), "dev_examples": len(datamodule.dev_set),
            "wall_seconds": round(time.time() - started, 2),
        }
        for logger in loggers:
            logger.log_metrics({f"baseline/majority_{k}": v for k, v in baseline.items()})
        write_json_atomic(result_path, result)
        resume_path.unlink(missing_ok=True)  # θ1 and the results are saved; nothing left to resume
    finally:
        for logger in loggers:
            if isinstance(logger, WandbLogger):  # one W&B run per job, also in a multirun's reused worker
                logger.experiment.finish()
    log.info("dev %s | majority baseline %s", dev, baseline)
    return result


def assign_job_device(cfg: DictConfig, job_num: int, gpu_count: int) -> None:
    """In a multirun on a machine with several GPUs, job n trains on GPU n mod #GPUs (instead of
    every job on GPU 0), unless the config already chose devices."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if gpu_count > 1 and cfg.trainer.get("devices") == 1 and accelerator in ("auto", "gpu", "cuda"):
        with open_dict(cfg):
            cfg.trainer.devices = [job_num % gpu_count]
            cfg.trainer.accelerator = "gpu"


# bad input, reported as one line and exit status 2; anything else is a bug and keeps its traceback
USER_ERRORS = (GlueDataError, SnapshotBudgetError, UnknownTaskError, OSError)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        assign_job_device(cfg, hydra_cfg.job.num, torch.cuda.device_count())
    try:
        train(cfg, hydra_cfg.runtime.output_dir)
    except USER_ERRORS as err:
        print(f"bertviz-train: error: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    hydra_main()


if __name__ == "__main__":
    main()
