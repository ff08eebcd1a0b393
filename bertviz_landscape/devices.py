"""How a job computes on its device: deterministic algorithms and reduced-precision matmuls.

- ``deterministic=true`` (training: ``trainer.deterministic``; landscape: ``deterministic``) turns
  on ``torch.use_deterministic_algorithms(True)`` and sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8``,
  which cuBLAS reads when it creates its first handle — so it is set here, at the start of the
  job, before anything touches CUDA (Lightning sets it too, but only when the Trainer is built,
  which in a multirun worker that already ran a job on the GPU is too late).
- ``matmul_precision`` (training): ``highest`` keeps fp32 matmuls; ``high`` allows TF32 on
  Ampere and later GPUs (``torch.set_float32_matmul_precision``, and cuDNN's TF32 flag);
  ``medium`` allows bf16 internally. bf16 autocast for training is Lightning's
  ``trainer.precision=bf16-mixed`` (fp32 weights, so the snapshots' deltas stay exact); for the
  landscape, ``precision=bf16|tf32`` (`landscape.evaluator`).
- One job, one GPU: training multiruns put job n on GPU n mod #GPUs (`train.assign_job_device`),
  landscape shards shard n on GPU n mod #GPUs (`landscape.sweep.pick_device`); under SLURM or
  Ray each job sees only the GPU it was given, so both reduce to GPU 0 of that job.
"""

from __future__ import annotations

import logging
import os

import torch

from bertviz_landscape.errors import BadInput

CUBLAS_WORKSPACE = ":4096:8"
MATMUL_PRECISIONS = ("highest", "high", "medium")
log = logging.getLogger(__name__)


def configure_determinism(enabled: bool) -> None:
    """Deterministic algorithms on (with the cuBLAS workspace setting they need) or off."""
    if enabled:
        current = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
        if current not in (":4096:8", ":16:8"):
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                log.warning(
                    "CUDA was initialised before CUBLAS_WORKSPACE_CONFIG was set; cuBLAS may not be deterministic "
                    "in this process (set CUBLAS_WORKSPACE_CONFIG=%s in the environment)",
                    CUBLAS_WORKSPACE,
                )
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.use_deterministic_algorithms(bool(enabled))


def configure_matmul_precision(precision: str) -> None:
    """fp32 matmuls (``highest``) or TF32 (``high``) / bf16 (``medium``) inside them, where the GPU has it."""
    if precision not in MATMUL_PRECISIONS:
        raise BadInput(f"matmul_precision must be one of {MATMUL_PRECISIONS}, got {precision!r}")
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = precision != "highest"
