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
  landscape shards shard n on GPU n mod #GPUs (`pick_device`); under SLURM or
  Ray each job sees only the GPU it was given, so both reduce to GPU 0 of that job.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from bertviz_landscape.contracts.errors import BadInput

CUBLAS_WORKSPACE = ":4096:8"
MATMUL_PRECISIONS = ("highest", "high", "medium")
log = logging.getLogger(__name__)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_support(device: torch.device, flags: set[str] | None = None) -> tuple[bool, str]:
    """Whether bf16 compute pays on `device`, and why: on a GPU when it has bf16 kernels; on a CPU
    only with AMX-BF16 (a bf16 GEMM at ~8x fp32's speed on a 2-core Sapphire Rapids; with AVX-512
    BF16 alone, or without either, bf16 is emulated or converted and runs slower than fp32)."""
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "the GPU has bf16 kernels" if ok else "this GPU has no bf16 kernels"
    if device.type != "cpu":
        return False, f"no bf16 measurement for {device.type}"
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return True, "this CPU has AMX-BF16 (bf16 matmuls in the tile unit)"
    if "avx512_bf16" in flags:
        return False, "this CPU has AVX-512 BF16 but no AMX: bf16 matmuls are not faster than fp32"
    return False, "this CPU has neither AMX-BF16 nor AVX-512 BF16: bf16 is emulated, slower than fp32"


def log_precision_choice(precision: str, device: torch.device) -> None:
    """Say in the log which precision trains and whether bf16 pays on this hardware (never switch it)."""
    ok, why = bf16_support(device)
    if "bf16" in precision:
        if ok:
            log.info("precision %s on %s, as configured: %s", precision, device, why)
        else:
            log.warning(
                "precision %s on %s, as configured, but %s; it will likely be slower", precision, device, why
            )
    else:
        hint = "; trainer.precision=bf16-mixed (experiment=demo_bf16) would use it" if ok else ""
        log.info("precision %s on %s, as configured (%s%s)", precision, device, why, hint)


def configure_determinism(enabled: bool) -> None:
    """Deterministic algorithms on (with the cuBLAS workspace setting they need) or off."""
    if enabled:
        current = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
        if current not in (":4096:8", ":16:8"):
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                log.warning(
                    "CUDA was initialised before CUBLAS_WORKSPACE_CONFIG was set; cuBLAS may not be "
                    "deterministic "
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


def pick_device(device: str, shard: int) -> torch.device:
    """`auto`: GPU `shard mod #GPUs` when GPUs exist (one device per multirun job), else CPU."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", shard % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(device)
