"""Deterministic replay: exact every-step projections onto directions known only after training.

A run's data order is seeded per epoch and its dropout per step, so training again from the
run's recorded configuration (``config.yaml``) retraces the same θ_t — bit for bit on a CPU
(the resume path relies on the same property). `replay_projection(run_dir, directions)` does
that retraining with a callback that, after every optimiser step, computes the exact inner
products ⟨θ_t − θ0, δ_j⟩ (float32 delta, float64 sum) and ‖θ_t − θ0‖², and returns the
paper's α_t, β_t, the least-squares plane coordinates and the distance from the plane —
what the full every-step deltas would give, with no disk beyond one run's checkpoints.

Cost: one more training run per set of directions (the sketch route, `bertviz_landscape.contracts.sketches`,
costs nothing after training but is an estimate). The replay checks itself: θ0 must equal the
run's ``checkpoints/init`` and the replayed θ1 its ``checkpoints/final`` (``theta1_identical``
and ``theta1_max_abs_diff`` in the result). On a GPU exact replay needs
``trainer.deterministic=true`` and the same hardware and software; it is unmeasured there.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from bertviz_landscape.algebra import dot, gram
from bertviz_landscape.contracts.checkpoints import read_tensors, weight_specs
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.parameters import trainable_parameters
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.sketches import project
from bertviz_landscape.training.train import train


class ReplayError(BadInput):
    """A run that cannot be replayed (no recorded config) or whose replay left its trajectory."""


class ExactProjections(pl.Callback):
    """After every optimiser step: ⟨θ_t − θ0, δ_j⟩ and ‖θ_t − θ0‖², exactly."""

    def __init__(self, directions: Sequence[Mapping[str, torch.Tensor]]) -> None:
        self.directions = [dict(d) for d in directions]
        self.rows: list[dict] = []
        self._last = 0

    def on_train_start(self, trainer, pl_module) -> None:
        named = trainable_parameters(getattr(pl_module, "model", pl_module))
        self._names = list(named)
        self._params = list(named.values())
        self._theta0 = [p.detach().clone() for p in self._params]
        device = self._params[0].device
        self.directions = [{n: t.to(device) for n, t in d.items()} for d in self.directions]
        unknown = sorted({n for d in self.directions for n in d} - set(self._names))
        if unknown:
            raise ReplayError(f"directions name parameters the run does not train: {unknown[:3]}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._last:
            return
        self._last = step
        with torch.no_grad():
            deltas = dict(
                zip(self._names, torch._foreach_sub([p.detach() for p in self._params], self._theta0))
            )
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.rows.append(
                {
                    "step": step,
                    "epoch": trainer.current_epoch,
                    "loss": None if loss is None else float(loss),
                    "dots": [dot(deltas, d) for d in self.directions],
                    "norm_sq": dot(deltas, deltas),
                }
            )


def replay_config(run: RunDir, overrides: Mapping | None = None):
    """The run's recorded config, set to write nothing but checkpoints (no logger, snapshots, resume)."""
    recorded = run.read_config()
    if not recorded:
        raise ReplayError(f"{run.config}: missing; only runs that record their config can be replayed")
    cfg = OmegaConf.create(recorded)
    OmegaConf.set_struct(cfg, False)
    cfg.logger = {}
    cfg.callbacks = OmegaConf.merge(
        cfg.get("callbacks") or {}, {"snapshots": {"enabled": False}, "epochs": {"keep_weights": False}}
    )
    cfg.resume = False
    cfg.force = False
    cfg.trainer.enable_progress_bar = False
    cfg.trainer.enable_model_summary = False
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.create(dict(overrides)))
    return cfg


def replay_projection(
    run_dir,
    directions: Sequence[Mapping[str, torch.Tensor]],
    workdir: str | None = None,
    overrides: Mapping | None = None,
    keep: bool = False,
) -> dict:
    """Retrain `run_dir` from θ0 with its seed and record exact projections onto `directions`
    (δ1 first, optionally δ2) at every step; see the module doc. `overrides` (a nested dict) goes
    on top of the recorded config — only settings that do not change θ_t (e.g.
    ``{"data": {"glue_dir": ...}}``, ``{"trainer": {"accelerator": "cpu"}}``)."""

    run = RunDir(run_dir)
    cfg = replay_config(run, overrides)
    recorder = ExactProjections(directions)
    scratch = Path(tempfile.mkdtemp(prefix="replay-", dir=workdir))
    try:
        train(cfg, scratch / "run", extra_callbacks=[recorder])
        replayed = RunDir(scratch / "run")
        theta0_same, _ = _compare(replayed.theta0, run.theta0)
        theta1_same, theta1_diff = _compare(replayed.theta1, run.theta1)
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if not theta0_same:
        raise ReplayError(
            f"replaying {run.root} started from another θ0 than {run.theta0}: the run's config does not "
            "rebuild it"
        )
    rows = recorder.rows
    dots = np.array([r["dots"] for r in rows], dtype=np.float64).reshape(len(rows), len(directions))
    norm_sq = np.array([r["norm_sq"] for r in rows], dtype=np.float64)
    out = project(dots, norm_sq, gram(directions))
    out |= {
        "steps": [r["step"] for r in rows],
        "epochs": [r["epoch"] for r in rows],
        "loss": [r["loss"] for r in rows],
        "dots": dots,
        "norm_sq": norm_sq,
        "theta1_identical": theta1_same,
        "theta1_max_abs_diff": theta1_diff,
        "workdir": str(scratch) if keep else None,
    }
    return out


def _weights(path: Path, expected: dict | None = None) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        state.update(read_tensors(f, None, expected))
    return state


def _weights_names(path: Path) -> set[str]:
    return set(weight_specs(path))


def _compare(a: Path, b: Path) -> tuple[bool, float]:
    """(bitwise equal, largest absolute difference) of two checkpoints' weights (`b`'s tensors
    checked against `a`'s names, shapes and dtypes)."""
    sa = _weights(a)
    if sa.keys() != _weights_names(b):
        return False, float("inf")
    sb = _weights(b, {k: (tuple(t.shape), t.dtype) for k, t in sa.items()})
    same = all(torch.equal(sa[k], sb[k]) for k in sa)
    diff = max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa) if sa else 0.0
    return same, diff
