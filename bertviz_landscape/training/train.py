"""Train one run: pretrained BERT fine-tuned, or the same architecture from scratch, on a GLUE task.

``bertviz-train task=mrpc init=pretrained`` (Hydra; see conf/train.yaml). The Hydra entrypoint
only composes the config; `train(cfg, run_dir)` does the work and can be called from Python.
What a run directory holds is defined in one place: `bertviz_landscape.contracts.rundir`.

A run directory records the configuration that made it (``config.yaml``, and in ``run.json``
a fingerprint of everything that decides θ1); re-running it with a different configuration is
refused unless ``force=true``, so a directory never silently returns another configuration's
results.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from bertviz_landscape.contracts.atomic import check_writable, write_json_atomic, write_text_atomic
from bertviz_landscape.contracts.checkpoints import check_resume_state, is_checkpoint, save_checkpoint
from bertviz_landscape.contracts.devices import (
    configure_determinism,
    configure_matmul_precision,
    log_precision_choice,
)
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.fingerprints import digest
from bertviz_landscape.contracts.locks import held
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.training.callbacks import (
    EpochCheckpoint,
    EpochRecords,
    SnapshotBudgetError,
    SnapshotRequest,
    WeightSnapshots,
    read_dev_per_epoch,
)
from bertviz_landscape.training.data.datamodule import (
    EpochShuffle,
    GlueDataModule,
    TrainingData,
    padding_ratio,
)
from bertviz_landscape.training.data.glue import data_fingerprint
from bertviz_landscape.training.data.tasks import GlueTask, UnknownTaskError, get_task
from bertviz_landscape.training.models import (
    GlueClassifier,
    OptimRequest,
    build_initial_model,
    load_tokenizer,
)
from bertviz_landscape.training.models.initial import check_model_architecture
from bertviz_landscape.training.models.source import check_model_source

log = logging.getLogger("bertviz_landscape.training.train")


def majority_baseline(
    task: GlueTask, train_labels: torch.Tensor, dev_labels: torch.Tensor
) -> dict[str, float]:
    """Dev metrics of always predicting the train split's majority class (mean score for STS-B)."""
    if task.is_regression:
        constant = torch.full_like(dev_labels.float(), float(train_labels.float().mean()))
        return {"mse": float(torch.nn.functional.mse_loss(constant, dev_labels.float()))}
    majority = int(torch.bincount(train_labels.long(), minlength=task.num_labels).argmax())
    metrics = task.make_metrics()
    metrics.update(torch.full_like(dev_labels, majority), dev_labels)
    return {k: float(v) for k, v in metrics.compute().items()} | {"class": majority}


class RunConfigError(BadInput):
    """A run directory made by another configuration, or a configuration that cannot train."""


# config sections that do not change θ1 (where output goes, how it is logged, progress bars)
NOT_FINGERPRINTED = {
    # matmul_precision, like trainer.accelerator, says how the hardware computes, not what is trained
    "": {"logger", "callbacks", "paths", "hydra", "force", "resume", "wandb", "matmul_precision"},
    "data": {"glue_dir", "cache_dir", "num_workers", "eval_batch_size"},
    "trainer": {
        "enable_progress_bar",
        "enable_model_summary",
        "log_every_n_steps",
        "num_sanity_val_steps",
        "limit_val_batches",
        "accelerator",
        "devices",
    },
}


def fingerprint_config(cfg: DictConfig) -> dict:
    """The part of the config that decides θ1 (and the trajectory)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    out = {k: v for k, v in c.items() if k not in NOT_FINGERPRINTED[""]}
    for section, drop in NOT_FINGERPRINTED.items():
        if section and isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in drop}
    if isinstance(out.get("trainer"), dict) and out["trainer"].get("strategy") == "auto":
        del out["trainer"]["strategy"]  # one process: the fingerprint of runs made before the key existed
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def planned_steps(cfg: DictConfig, train_examples: int) -> int:
    """Optimiser steps the run will take (for the snapshot budget)."""
    t = cfg.trainer
    batches = math.ceil(train_examples / int(cfg.data.batch_size))
    limit = t.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool):
        batches = min(batches, limit)
    elif isinstance(limit, float):
        batches = int(batches * limit)
    steps = math.ceil(batches / int(t.get("accumulate_grad_batches") or 1)) * int(t.get("max_epochs") or 1)
    if t.get("max_steps") not in (None, -1):
        steps = min(steps, int(t.max_steps)) if t.get("max_epochs") is not None else int(t.max_steps)
    return max(steps, 1)


def check_run_config(cfg: DictConfig, run: RunDir) -> dict:
    """The run's identity for `cfg`; a RunConfigError when the directory holds a run of another
    configuration (unless force=true) or when the config cannot train at all."""
    t = cfg.trainer
    if t.get("max_epochs") is not None and int(t.max_epochs) < 1:
        raise RunConfigError(f"trainer.max_epochs must be >= 1, got {t.max_epochs}")
    if t.get("max_steps") not in (None, -1) and int(t.max_steps) < 1:
        raise RunConfigError(f"trainer.max_steps must be >= 1 (or -1 for no limit), got {t.max_steps}")
    if t.get("max_epochs") is None and t.get("max_steps") in (None, -1):
        raise RunConfigError(
            "neither trainer.max_epochs nor trainer.max_steps is set: the run would never end"
        )
    check_data_config(cfg.data)
    config = fingerprint_config(cfg)
    # the examples by content (the TSVs' hashes, not data.glue_dir's path): other data is another run
    data = data_fingerprint(get_task(cfg.task.name), cfg.data.get("glue_dir"))
    identity = {
        "task": cfg.task.name,
        "init": cfg.init.name,
        "seed": cfg.seed,
        "model": cfg.model.name_or_path,
        "fingerprint": digest({"config": config, "data": data}),
        "config": config,
        "data": data,
    }
    old = run.read_identity()
    # a run recorded before its data were fingerprinted is compared by its config alone
    expected = identity["fingerprint"] if "data" in old else digest(config)
    if old and old.get("fingerprint") != expected and not cfg.get("force", False):
        a = _flat({"config": old.get("config") or {}, "data": old.get("data") or {}})
        b = _flat({"config": config, "data": data if "data" in old else {}})
        diff = [
            f"{k.removeprefix('config.')}: {a.get(k)!r} -> {b.get(k)!r}"
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)
        ]
        raise RunConfigError(
            f"run directory {run.root} holds a run of another configuration "
            f"({'; '.join(diff[:4]) or 'fingerprint differs'}); "
            "use another directory (hydra.run.dir=...) or force=true to replace it"
        )
    return identity


def check_data_config(d: DictConfig) -> None:
    """data.* values that cannot work, named before anything is read or written."""
    for key, least in (("max_length", 2), ("batch_size", 1), ("eval_batch_size", 1)):
        value = d.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise RunConfigError(f"data.{key} must be an integer >= {least}, got {value!r}")
    for key in ("max_train_samples", "max_eval_samples"):
        value = d.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise RunConfigError(f"data.{key} must be null or an integer >= 1, got {value!r}")


def build_loggers(cfg: DictConfig, run_dir: Path, run_name: str, resumed: bool = False) -> list:
    loggers = []
    run = RunDir(run_dir)
    if cfg.logger.get("csv"):
        # a resumed run logs beside the first part (CSVLogger would delete logs/metrics.csv)
        version = f"resume-{len(list(run.logs.glob('resume-*')))}" if resumed else ""
        loggers.append(CSVLogger(save_dir=str(run.root), name=run.logs.name, version=version))
    wb = cfg.logger.get("wandb")
    if wb:
        os.environ.setdefault("WANDB_SILENT", "true")
        logger = WandbLogger(
            project=wb.project,
            entity=wb.get("entity"),
            group=wb.get("group"),
            tags=list(wb.get("tags") or []),
            name=f"{run_name}-resumed" if resumed else run_name,
            save_dir=str(run.wandb_dir),
            offline=wb.mode == "offline",
            mode=wb.mode,
        )
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        loggers.append(logger)
    return loggers


def build_datamodule(cfg: DictConfig, task: GlueTask, tokenizer) -> GlueDataModule:
    """The run's data (`cfg.data`; the train order is seeded by `cfg.seed`)."""
    return GlueDataModule(task, tokenizer, TrainingData.from_config(cfg.data, shuffle_seed=cfg.seed))


def log_batching(datamodule: GlueDataModule) -> None:
    """How much of the compute goes to padding with this run's batches (epoch 0)."""
    lengths = datamodule.train_lengths()
    b = datamodule.data.batch_size
    order = list(EpochShuffle(len(lengths), datamodule.data.shuffle_seed))
    random_ratio = padding_ratio(lengths, [order[i : i + b] for i in range(0, len(order), b)])
    if datamodule.data.group_by_length:
        sampler = datamodule.train_sampler()
        log.info(
            "train batches: length-grouped (mega-batches of %d batches), %.2f tokens processed per real "
            "token (random batches: %.2f)",
            datamodule.data.length_group_batches,
            padding_ratio(lengths, sampler.batches()),
            random_ratio,
        )
    else:
        log.info("train batches: random, %.2f tokens processed per real token (padding)", random_ratio)


def launched_rank() -> int:
    """This process's global rank when a multi-process launcher started it (Lightning's DDP
    re-runs the command with LOCAL_RANK=1.., torchrun and SLURM set RANK / SLURM_PROCID), else 0."""
    from lightning_fabric.utilities.rank_zero import _get_rank

    return _get_rank() or 0


def train(cfg: DictConfig, run_dir: str | os.PathLike, extra_callbacks: Sequence[pl.Callback] = ()) -> dict:
    """Train one (task, init) run into `run_dir`; returns the final metrics (also in metrics.json).
    `extra_callbacks` run after the project's own (e.g. `replay`'s exact projection recorder).

    Under DDP (``trainer.strategy=ddp trainer.devices=N``) rank 0 owns the run directory (the
    lock, config, θ0, θ1, metrics; the callbacks write on rank 0 only); the other ranks, started
    by Lightning inside rank 0's ``fit``, train beside it and write nothing."""
    run = RunDir(run_dir)
    if launched_rank() != 0:
        return _train(cfg, run, check_run_config(cfg, run), extra_callbacks, writer=False)
    # an architecture the layer map does not know: one line before any data is read (config only)
    overrides = OmegaConf.to_container(cfg.model.config_overrides, resolve=True)
    check_model_architecture(cfg.model.name_or_path, overrides)
    check_run_config(cfg, run)
    check_model_source(cfg.model.name_or_path, cfg.init.get("name"), overrides)  # before anything is written
    if run.is_complete() and not cfg.get("force", False):
        log.info("run in %s is already complete; skipping (force=true to train again)", run.root)
        return run.read_metrics()
    check_writable(run.identity_file)  # a read-only or full place fails here, before any work
    # one training per run directory: a second one exits with one line naming the holder
    with held(run.lock_file, f"run directory {run.root}", wait=False):
        identity = check_run_config(cfg, run)  # again, under the lock: another one may have finished
        if run.is_complete() and not cfg.get("force", False):
            log.info("run in %s is already complete; skipping (force=true to train again)", run.root)
            return run.read_metrics()
        for leftover in run.remove_temporaries():  # no live writer holds the lock: a dead one's
            log.warning("removed %s, left by a writer that died", leftover)
        return _train(cfg, run, identity, extra_callbacks)


def _train(
    cfg: DictConfig, run: RunDir, identity: dict, extra_callbacks: Sequence[pl.Callback], writer: bool = True
) -> dict:
    run_dir = run.root
    task = get_task(cfg.task.name)
    started = time.time()
    # before anything touches CUDA: cuBLAS reads its workspace setting once (contracts/devices.py)
    configure_determinism(bool(cfg.trainer.get("deterministic", False)))
    configure_matmul_precision(str(cfg.get("matmul_precision", "highest")))
    pl.seed_everything(cfg.seed, workers=True)
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    datamodule = build_datamodule(cfg, task, tokenizer)
    datamodule.setup("fit")  # bad data fails here, before anything is written
    log_batching(datamodule)
    labels = [
        torch.tensor(list(ds.with_format(None)["labels"]))
        for ds in (datamodule.train_set, datamodule.dev_set)
    ]
    baseline = majority_baseline(task, *labels)

    model = build_initial_model(
        cfg.model.name_or_path,
        task,
        cfg.init.name,
        seed=cfg.init.seed,
        config_overrides=OmegaConf.to_container(cfg.model.config_overrides, resolve=True),
    )
    module = GlueClassifier(model, task, OptimRequest.from_config(cfg))
    resume_path = run.resume_checkpoint
    resume = bool(cfg.get("resume", True))
    resumed = resume and not cfg.get("force", False) and resume_path.is_file() and is_checkpoint(run.theta0)
    if resumed:
        check_resume_state(resume_path)  # before any work: loads with weights_only=True, or names the file
        log.info("resuming the interrupted run in %s from %s", run_dir, resume_path)

    callbacks = []
    snap = cfg.callbacks.get("snapshots")
    if snap and snap.get("enabled", True):
        snapshots = WeightSnapshots(SnapshotRequest.from_config(snap), dirpath=run.snapshots)
        if not resumed:  # the disk budget, before checkpoints/init is written
            snapshots.check_budget(model, planned_steps(cfg, len(datamodule.train_set)))
        callbacks.append(snapshots)
    epochs = cfg.callbacks.get("epochs") or {}
    callbacks.append(
        EpochRecords(
            run.dev_per_epoch,
            run.epoch_checkpoint if epochs.get("keep_weights") else None,
            tokenizer,
            run.dev_predictions if epochs.get("dev_predictions") else None,
        )
    )
    if resume:
        callbacks.append(EpochCheckpoint(resume_path))  # after the snapshots: they flush first
    callbacks.extend(extra_callbacks)
    run_name = f"{task.name}_{cfg.init.name}"
    loggers = build_loggers(cfg, run.root, run_name, resumed)
    trainer = pl.Trainer(
        default_root_dir=str(run.root),
        logger=loggers or False,
        callbacks=callbacks,
        **OmegaConf.to_container(cfg.trainer, resolve=True),
    )
    log_precision_choice(str(cfg.trainer.precision), trainer.strategy.root_device)
    if not resumed and writer:
        # a fresh start (first, forced, or resume=false): nothing of an earlier run may pass as this one's
        for old in run.discard_results():
            log.info("discarded %s of the earlier run", old)
        run.logs.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.config, OmegaConf.to_yaml(cfg, resolve=True))
        run.write_identity(identity)
        save_checkpoint(model, tokenizer, run.theta0)
    try:
        try:
            trainer.fit(
                module,
                datamodule=datamodule,
                ckpt_path=str(resume_path) if resumed else None,
                weights_only=True,  # the resume state is tensors and plain containers: no pickle of code runs
            )
        except SIGTERMException:
            killed(run, trainer.global_step, signal.SIGTERM)
        except SystemExit as err:  # Lightning turns Ctrl-C (SIGINT) into sys.exit(1) after its teardown
            if err.code == 1 and trainer.interrupted:
                killed(run, trainer.global_step, signal.SIGINT)
            raise
        if writer:
            save_checkpoint(model, tokenizer, run.theta1)
        dev = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        result = {
            "task": task.name,
            "init": cfg.init.name,
            "model": cfg.model.name_or_path,
            "primary_metric": task.primary_metric,
            "dev": dev,
            "majority_baseline": baseline,
            "steps": trainer.global_step,
            "epochs": trainer.current_epoch,
            "train_examples": len(datamodule.train_set),
            "dev_examples": len(datamodule.dev_set),
            "dev_per_epoch": read_dev_per_epoch(run.dev_per_epoch),
            "fingerprint": identity["fingerprint"],
            "wall_seconds": round(time.time() - started, 2),
        }
        if not writer:  # another rank of a DDP run: rank 0 writes θ1 and the results
            return result
        for logger in loggers:
            logger.log_metrics({f"baseline/majority_{k}": v for k, v in baseline.items()})
        write_json_atomic(run.metrics_json, result)
        resume_path.unlink(missing_ok=True)  # θ1 and the results are saved; nothing left to resume
    finally:
        for logger in loggers:
            if isinstance(logger, WandbLogger):  # one W&B run per job, also in a multirun's reused worker
                logger.experiment.finish()
    log.info("dev %s | majority baseline %s", dev, baseline)
    return result


def killed(run: RunDir, step: int, signum: int) -> None:
    """A training stopped by `signum` (a scheduler's SIGTERM, Ctrl-C): one line, and the exit
    status of a process killed by it (128 + signum: 143, 130), never 0; Lightning's own exception
    carries no code. Nothing final is written; a re-run resumes from the last epoch's state."""
    import sys

    name = signal.Signals(signum).name
    message = (
        f"training in {run.root} stopped by {name} at step {step}: no θ1 or {run.metrics_json.name} written; "
        "run the same command again to resume"
    )
    log.error("%s", message)
    print(f"bertviz-train: error: {message}", file=sys.stderr)
    raise SystemExit(128 + signum)


def assign_job_device(cfg: DictConfig, job_num: int, gpu_count: int) -> None:
    """In a multirun on a machine with several GPUs, job n trains on GPU n mod #GPUs (instead of
    every job on GPU 0), unless the config already chose devices."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if gpu_count > 1 and cfg.trainer.get("devices") == 1 and accelerator in ("auto", "gpu", "cuda"):
        with open_dict(cfg):
            cfg.trainer.devices = [job_num % gpu_count]
            cfg.trainer.accelerator = "gpu"


# bad input besides BadInput, reported as one line and exit status 2 (also in the run's train.log);
# anything else is a bug and keeps its traceback
USER_ERRORS = (SnapshotBudgetError, UnknownTaskError, OSError)
