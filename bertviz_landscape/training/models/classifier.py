"""The LightningModule: a BERT sequence classifier trained with the BERT GLUE recipe.

The same module trains pretrained BERT and BERT from scratch; only θ0 and the learning rate
differ. Loss and metrics come from the task registry, so training and the landscape
evaluator measure the same J.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import pytorch_lightning as pl
import torch
import torchmetrics
from omegaconf import DictConfig
from transformers import PreTrainedModel, get_linear_schedule_with_warmup

from bertviz_landscape.contracts import work
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.parameters import is_bias_or_norm, trainable_parameters
from bertviz_landscape.training.data.tasks import GlueTask
from bertviz_landscape.training.data.tokenize import takes_token_type_ids

log = logging.getLogger(__name__)

# torch.optim.AdamW's kernels, fastest first on a CPU (benchmarks/bench_train.py): "fused" updates
# every tensor in one kernel (4x the per-tensor loop's speed on MiniLM), "foreach" groups them,
# "for-loop" is one tensor at a time. Same update rule; the floating-point rounding differs in
# the last bits, so the kernel is part of a run's configuration (and of its fingerprint).
ADAMW_IMPLEMENTATIONS = ("fused", "foreach", "for-loop")


class OptimConfigError(BadInput):
    """optim settings that cannot work."""


class TrainingDiverged(BadInput):
    """A non-finite training loss (the settings diverge: the learning rate, the data): training
    stops there, and no θ1 or metrics are written."""


def adamw_kernel(implementation: str, device: torch.device, grad_scaler: bool = False) -> dict[str, bool]:
    """torch.optim.AdamW's keyword arguments for `implementation` on `device`; "fused" falls back
    to "foreach" (logged) on a device without a fused kernel, or under fp16's gradient scaler
    (a fused step unscales inside, after gradient clipping would have run on scaled gradients)."""
    if implementation == "fused":
        if device.type in _fused_devices() and not grad_scaler:
            return {"fused": True}
        why = "fp16 gradient scaling" if grad_scaler else f"no fused kernel on {device.type}"
        log.warning("AdamW: %s, using the foreach kernel", why)
        implementation = "foreach"
    return {"foreach": implementation == "foreach", "fused": False}


def _fused_devices() -> tuple[str, ...]:
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices  # private, since torch 2.2

        return tuple(_get_fused_kernels_supported_devices())
    except ImportError:
        return ("cuda",)


def model_inputs(batch: dict[str, torch.Tensor], token_type_ids: bool) -> dict[str, torch.Tensor]:
    """The batch's model inputs: everything but the labels, token type ids only if the model uses them."""
    return {k: v for k, v in batch.items() if k != "labels" and (token_type_ids or k != "token_type_ids")}


@dataclass(frozen=True)
class OptimRequest:
    """The run's optimisation, as conf/optim/adamw.yaml, the init's ``lr`` and the run's ``seed``
    say it (the defaults live there only); validated once, when it is made."""

    lr: float
    weight_decay: float
    warmup_ratio: float
    adam_eps: float
    betas: tuple[float, float]
    seed: int  # dropout's randomness depends only on (seed, step)
    implementation: str  # torch's AdamW kernel: one of ADAMW_IMPLEMENTATIONS

    def __post_init__(self) -> None:
        if self.implementation not in ADAMW_IMPLEMENTATIONS:
            raise OptimConfigError(
                f"optim.implementation must be one of {ADAMW_IMPLEMENTATIONS}, got {self.implementation!r}"
            )

    @classmethod
    def from_config(cls, cfg: DictConfig) -> OptimRequest:
        """From a composed train config: ``optim.*``, ``init.lr`` and ``seed``."""
        o = cfg.optim
        return cls(
            lr=float(cfg.init.lr),
            weight_decay=float(o.weight_decay),
            warmup_ratio=float(o.warmup_ratio),
            adam_eps=float(o.adam_eps),
            betas=tuple(float(b) for b in o.betas),
            seed=int(cfg.seed),
            implementation=str(o.implementation),
        )

    def hparams(self) -> dict:
        """The request as the hyperparameters Lightning saves (checkpoint, hparams.yaml): plain values."""
        return asdict(self) | {"betas": list(self.betas)}


class GlueClassifier(pl.LightningModule):
    def __init__(self, model: PreTrainedModel, task: GlueTask, optim: OptimRequest) -> None:
        super().__init__()
        self.optim = optim
        self.save_hyperparameters(optim.hparams())
        # from_pretrained returns eval mode; Lightning keeps whatever mode it is given
        self.model = model.train()
        self.task = task
        self.token_type_ids = takes_token_type_ids(model.config)
        self.val_metrics = task.make_metrics(prefix="val/")
        self.val_loss = torchmetrics.MeanMetric()
        self._unchecked_loss: tuple[int, int, torch.Tensor] | None = None  # (step, epoch, loss)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = model_inputs(batch, self.token_type_ids)
        if work.metering_open():  # a training step's pass is followed by its backward
            mask = inputs.get("attention_mask")
            kind = "train" if self.training and torch.is_grad_enabled() else "forward"
            work.count_pass(self.model, torch.ones_like(inputs["input_ids"]) if mask is None else mask, kind)
        return self.model(**inputs).logits

    def on_before_optimizer_step(self, optimizer) -> None:
        # AdamW's state traffic: every parameter with a gradient read and written once per step
        if work.metering_open():
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            work.count_bytes("adamw", work.ADAMW_BYTES * sum(p.numel() for p in params))

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # dropout's randomness depends only on (seed, step), as the data order depends only on
        # (seed, epoch) (EpochShuffle): a resumed run continues exactly as if never stopped
        torch.manual_seed(self.optim.seed * 1_000_003 + self.global_step)
        self.check_finite_loss()

    def check_finite_loss(self) -> None:
        """Stop at the first non-finite training loss (a TrainingDiverged naming the step and the
        loss). The previous step's loss is checked when the next step starts (and at the end of
        each epoch and of training, before θ1 is written): by then the device has computed it, so
        the check costs no wait for the current step's forward pass."""
        if self._unchecked_loss is None:
            return
        step, epoch, loss = self._unchecked_loss
        self._unchecked_loss = None
        if not bool(torch.isfinite(loss)):
            raise TrainingDiverged(
                f"training loss is {float(loss)} at step {step} (epoch {epoch}): training stopped, "
                "no θ1 written (the settings diverge: lower optim.lr, or check the data)"
            )

    def on_validation_start(self) -> None:  # an epoch's last step, before its records are written
        self.check_finite_loss()

    def on_train_epoch_end(self) -> None:
        self.check_finite_loss()

    def on_train_end(self) -> None:
        self.check_finite_loss()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.task.loss(self(batch), batch["labels"])
        self._unchecked_loss = (self.global_step + 1, self.current_epoch, loss.detach())
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["labels"])
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        logits = self(batch)
        labels = batch["labels"]
        # mean over examples, not over batches: weight each batch's mean by its size
        self.val_loss.update(self.task.loss(logits, labels), weight=len(labels))
        predictions = self.task.predictions(logits)
        self.val_metrics.update(predictions, labels)
        # per example, in the dev set's fixed order, for the callbacks (EpochRecords: McNemar between epochs)
        return {
            "predictions": predictions.detach(),
            "labels": labels.detach(),
            "losses": self.task.loss(logits.float(), labels, reduction="none").detach(),
        }

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss.compute(), prog_bar=True)
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.val_loss.reset()
        self.val_metrics.reset()

    def _grad_scaler(self):
        return getattr(self.trainer.precision_plugin, "scaler", None)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        # Lightning's mixed-precision plugin refuses to clip for a fused optimizer, because with fp16's
        # gradient scaler the gradients are still scaled at that point; bf16 has no scaler, so the
        # gradients are the true ones and are clipped as under fp32 (Lightning's own clip_grad_norm_)
        if (
            gradient_clip_val
            and self._grad_scaler() is None
            and getattr(optimizer, "defaults", {}).get("fused")
        ):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if gradient_clip_algorithm in (None, "norm"):
                torch.nn.utils.clip_grad_norm_(params, gradient_clip_val)
            else:
                torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, param in trainable_parameters(self.model).items():  # biases and LayerNorm: no weight decay
            (no_decay if is_bias_or_norm(name, param) else decay).append(param)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.optim.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.optim.lr,
            eps=self.optim.adam_eps,
            betas=self.optim.betas,
            **adamw_kernel(self.optim.implementation, self.device, self._grad_scaler() is not None),
        )
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.optim.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
