"""The LightningModule: a BERT sequence classifier trained with the BERT GLUE recipe.

The same module trains pretrained BERT and BERT from scratch; only θ0 and the learning rate
differ. Loss and metrics come from the task registry, so training and the landscape
evaluator measure the same J.
"""

from __future__ import annotations

import inspect

import pytorch_lightning as pl
import torch
import torchmetrics
from transformers import PretrainedConfig, PreTrainedModel, get_linear_schedule_with_warmup
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

from bertviz_landscape.data.tasks import GlueTask
from bertviz_landscape.parameters import is_bias_or_norm, trainable_parameters


def takes_token_type_ids(config: PretrainedConfig) -> bool:
    """Whether the sequence classifier of `config` uses token type ids: its forward takes them and
    it has more than one type embedding (RoBERTa's single type, DeBERTa's none, DistilBERT and
    ModernBERT's missing argument: not fed, the same as feeding zeros where the argument exists)."""
    try:
        cls = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        return True
    takes = "token_type_ids" in inspect.signature(cls.forward).parameters
    return takes and int(getattr(config, "type_vocab_size", 2) or 0) > 1


def model_inputs(batch: dict[str, torch.Tensor], token_type_ids: bool) -> dict[str, torch.Tensor]:
    """The batch's model inputs: everything but the labels, token type ids only if the model uses them."""
    return {k: v for k, v in batch.items() if k != "labels" and (token_type_ids or k != "token_type_ids")}


class GlueClassifier(pl.LightningModule):
    def __init__(
        self,
        model: PreTrainedModel,
        task: GlueTask,
        lr: float = 2e-5,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        adam_eps: float = 1e-6,
        betas: tuple[float, float] = (0.9, 0.999),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model", "task"])
        # from_pretrained returns eval mode; Lightning keeps whatever mode it is given
        self.model = model.train()
        self.task = task
        self.token_type_ids = takes_token_type_ids(model.config)
        self.val_metrics = task.make_metrics(prefix="val/")
        self.val_loss = torchmetrics.MeanMetric()

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**model_inputs(batch, self.token_type_ids)).logits

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # dropout's randomness depends only on (seed, step), as the data order depends only on
        # (seed, epoch) (EpochShuffle): a resumed run continues exactly as if never stopped
        torch.manual_seed(self.hparams.seed * 1_000_003 + self.global_step)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.task.loss(self(batch), batch["labels"])
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch["labels"])
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch)
        labels = batch["labels"]
        # mean over examples, not over batches: weight each batch's mean by its size
        self.val_loss.update(self.task.loss(logits, labels), weight=len(labels))
        self.val_metrics.update(self.task.predictions(logits), labels)

    def on_validation_epoch_end(self) -> None:
        self.log("val/loss", self.val_loss.compute(), prog_bar=True)
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.val_loss.reset()
        self.val_metrics.reset()

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, param in trainable_parameters(self.model).items():  # biases and LayerNorm: no weight decay
            (no_decay if is_bias_or_norm(name, param) else decay).append(param)
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.hparams.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.hparams.lr,
            eps=self.hparams.adam_eps,
            betas=tuple(self.hparams.betas),
        )
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.hparams.warmup_ratio * total), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
