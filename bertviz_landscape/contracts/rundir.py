"""The run directory: the one place that names every path inside a training run.

Training writes it, the snapshot callback, the landscape, the analyses, the plots, the Makefile
and `experiments/` read it — all through `RunDir`. Layout::

    config.yaml              the resolved Hydra config that made the run
    run.json                 the run's identity: task, init, seed, model, fingerprint of
                             everything that affects θ1
    checkpoints/init/        θ0 (save_pretrained dir + tokenizer)
    checkpoints/final/       θ1
    checkpoints/epoch_NNN/   θ after epoch NNN (1-based), when `callbacks.epoch_checkpoints` is on
    checkpoints/resume.ckpt  Lightning state at the last finished epoch, while training
    snapshots/               θ_t − θ0 every n steps (bertviz_landscape.contracts.snapshots)
    sketches/                a CountSketch of θ_t − θ0 at every step (bertviz_landscape.contracts.sketches)
    logs/metrics.csv         per-step / per-epoch metrics (CSV logger)
    logs/dev_per_epoch.jsonl dev metrics after every epoch (callbacks.epochs)
    metrics.json             final dev metrics, per-epoch dev metrics, majority baseline, steps
    wandb/                   the offline W&B run
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from bertviz_landscape.contracts.atomic import is_temp_name, write_json_atomic
from bertviz_landscape.contracts.checkpoints import is_checkpoint
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.names import check_model_name, check_name

INIT = "checkpoints/init"
FINAL = "checkpoints/final"
RESUME = "checkpoints/resume.ckpt"
EPOCH = "checkpoints/epoch_{epoch:03d}"
SNAPSHOTS = "snapshots"
SKETCHES = "sketches"
LOGS = "logs"
METRICS_CSV = "logs/metrics.csv"
DEV_PER_EPOCH = "logs/dev_per_epoch.jsonl"
DEV_PREDICTIONS = (
    "logs/dev_predictions.jsonl"  # per-example dev predictions after every epoch (callbacks/epochs.py)
)
METRICS_JSON = "metrics.json"
CONFIG = "config.yaml"
IDENTITY = "run.json"
LOCK = ".train.lock"
WANDB = "wandb"  # W&B's own folder below its save_dir
# where the training's writers put their temporaries (`.<name>.<hex>.tmp`, bertviz_landscape.contracts.atomic)
WRITTEN = ("", "checkpoints", SNAPSHOTS, SKETCHES, LOGS)


class RunDir:
    """Paths inside one training run's directory (`RunDir(path).theta1`, ...)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)

    # --- paths -----------------------------------------------------------------------------
    @property
    def theta0(self) -> Path:
        return self.root / INIT

    @property
    def theta1(self) -> Path:
        return self.root / FINAL

    @property
    def resume_checkpoint(self) -> Path:
        return self.root / RESUME

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.root / EPOCH.format(epoch=epoch)

    def epoch_checkpoints(self) -> dict[int, Path]:
        """epoch (1-based) → checkpoint directory, for the epochs that were kept."""
        found = {}
        pattern = re.compile(re.escape(Path(EPOCH).name.split("{")[0]) + r"(\d+)$")
        for p in (self.root / Path(EPOCH).parent).glob(Path(EPOCH).name.split("{")[0] + "*"):
            m = pattern.match(p.name)
            if m and p.is_dir():
                found[int(m.group(1))] = p
        return dict(sorted(found.items()))

    @property
    def snapshots(self) -> Path:
        return self.root / SNAPSHOTS

    @property
    def sketches(self) -> Path:
        return self.root / SKETCHES

    @property
    def logs(self) -> Path:
        return self.root / LOGS

    @property
    def dev_per_epoch(self) -> Path:
        return self.root / DEV_PER_EPOCH

    @property
    def dev_predictions(self) -> Path:
        return self.root / DEV_PREDICTIONS

    @property
    def metrics_json(self) -> Path:
        return self.root / METRICS_JSON

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def identity_file(self) -> Path:
        return self.root / IDENTITY

    @property
    def lock_file(self) -> Path:
        """Held (flock) by the one training that writes this directory (bertviz_landscape.contracts.locks)."""
        return self.root / LOCK

    @property
    def wandb_dir(self) -> Path:
        """Where W&B writes (its `save_dir`; the run lands in `wandb/` below it)."""
        return self.root

    @property
    def wandb_runs(self) -> Path:
        """The folder below `wandb_dir` that holds the run's W&B run directories (`offline-run-*`)."""
        return self.wandb_dir / WANDB

    # --- contents --------------------------------------------------------------------------
    def discard_results(self) -> list[Path]:
        """Delete what a training writes after θ0 (metrics.json first, so a crash midway never
        leaves a run that looks complete): θ1, epoch checkpoints, the resume state, snapshots,
        sketches, per-epoch records. A fresh start calls it, so none of them outlives its run."""
        doomed = [
            self.metrics_json,
            self.theta1,
            *self.epoch_checkpoints().values(),
            self.resume_checkpoint,
            self.snapshots,
            self.sketches,
            self.dev_per_epoch,
        ]
        removed = []
        for p in doomed:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
            else:
                continue
            removed.append(p)
        return removed

    def remove_temporaries(self) -> list[Path]:
        """Delete the temporaries of atomic writes that a dead writer left (a `kill -9` in the
        middle of a snapshot leaves `.step_….safetensors.<hex>.tmp`); call it holding `lock_file`."""
        removed = []
        for sub in WRITTEN:
            folder = self.root / sub
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if is_temp_name(p):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                    removed.append(p)
        return removed

    def is_complete(self) -> bool:
        return self.metrics_json.is_file() and is_checkpoint(self.theta1)

    def read_metrics(self) -> dict:
        if not self.metrics_json.is_file():
            raise FileNotFoundError(f"run {self.root}: no {METRICS_JSON} (the run has not finished)")
        return json.loads(self.metrics_json.read_text())

    def read_identity(self) -> dict:
        """run.json ({} when absent); its task, init, seed and model checked, since they become
        parts of output names (a BadInput naming the file and the key otherwise)."""
        if not self.identity_file.is_file():
            return {}
        try:
            ident = json.loads(self.identity_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BadInput(f"{self.identity_file}: not valid JSON ({err})") from None
        if not isinstance(ident, dict):
            raise BadInput(f"{self.identity_file}: not a JSON object")
        for key in ("task", "init"):
            if key in ident:
                check_name(ident[key], key, self.identity_file)
        if "seed" in ident and (isinstance(ident["seed"], bool) or not isinstance(ident["seed"], int)):
            raise BadInput(f"{self.identity_file}: seed {str(ident['seed'])[:40]!r} is not an integer")
        if "model" in ident:
            check_model_name(ident["model"], "model", self.identity_file)
        return ident

    def write_identity(self, identity: dict) -> None:
        write_json_atomic(self.identity_file, identity)

    def read_config(self) -> dict:
        """The resolved config that made the run ({} for runs made before it was recorded).

        Training writes it resolved, so it is read as plain data: a YAML tag that would build an
        object (``!!python/...``) or an interpolation (``${oc.env:...}``, any resolver) is a
        BadInput naming the file and the key — a file never reads the environment or runs a
        resolver."""
        if not self.config.is_file():
            return {}
        from omegaconf import OmegaConf

        try:
            loaded = OmegaConf.to_container(OmegaConf.load(self.config), resolve=False)
        except Exception as err:  # yaml's ConstructorError/ScannerError, UnicodeDecodeError, omegaconf's
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BadInput(f"{self.config}: not a plain YAML config ({first[:160]})") from None
        if not isinstance(loaded, dict):
            raise BadInput(f"{self.config}: not a mapping of config keys")
        _refuse_interpolations(loaded, self.config)
        return loaded

    @property
    def name(self) -> str:
        """`<task>_<init>_seed<seed>` from the run's identity, else the directory's name."""
        ident = self.read_identity()
        if {"task", "init", "seed"} <= set(ident):
            return f"{ident['task']}_{ident['init']}_seed{ident['seed']}"
        return self.root.name

    @classmethod
    def of_checkpoint(cls, checkpoint: str | os.PathLike) -> RunDir | None:
        """The run that holds `checkpoint` (its checkpoints/init, final or epoch_NNN), else None."""
        p = Path(checkpoint).expanduser().resolve()
        if p.parent.name == Path(INIT).parent.name:
            return cls(p.parent.parent)
        return None

    @staticmethod
    def is_run(path: str | os.PathLike) -> bool:
        return (Path(path) / INIT).is_dir()

    @classmethod
    def open(
        cls, path: str | os.PathLike | None, key: str = "run", error: type[BadInput] = BadInput
    ) -> RunDir:
        """The training run at `path` (the one opener of a run given as `key=`): an `error` (a
        BadInput of the caller's kind) naming `key` when it is not given, missing or not a run."""
        if path in (None, "", "???"):
            raise error(f"{key} is not given: set {key}=<training run directory>")
        p = Path(str(path)).expanduser()
        if not p.is_dir():
            raise error(f"{key}={p}: directory does not exist")
        if not cls.is_run(p):
            raise error(f"{key}={p}: not a training run directory (no {INIT})")
        return cls(p)

    # --- what the run says about itself: the task and max_length every later stage takes -----
    def task(self) -> str | None:
        """The task the run was trained on: run.json's, else its config.yaml's (None: neither says)."""
        task = self.read_identity().get("task") or (self.read_config().get("task") or {}).get("name")
        return None if task in (None, "") else str(task)

    def max_length(self) -> int | None:
        """The run's data.max_length (its config.yaml; None for runs made before it was recorded)."""
        length = (self.read_config().get("data") or {}).get("max_length")
        return None if length is None else int(length)


def _refuse_interpolations(node, path: Path, key: str = "") -> None:
    """A BadInput naming the first key of a loaded config whose value is an interpolation."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, value in items:
        where = f"{key}.{k}" if key and isinstance(k, str) else f"{key}[{k}]" if key else str(k)
        if isinstance(value, str) and "${" in value:
            raise BadInput(
                f"{path}: key {where} holds an interpolation {value[:60]!r}; a run's config.yaml is "
                "written resolved and is never resolved again (no environment variables, no resolvers)"
            )
        _refuse_interpolations(value, path, where)
