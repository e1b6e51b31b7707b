"""The LightningModule that trains any ``nn.Module`` classifier with a config's optimiser settings."""

from __future__ import annotations

from typing import Callable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import Metric

from edgeflow.core.accuracy import percent_correct
from edgeflow.training.schema import TrainingStageConfig


class ExactAccuracy(Metric):
    """Top-1 accuracy in percent from integer counts: ``update`` adds a batch's correct predictions and
    samples (int64, summed across devices); ``compute`` is ``percent_correct(correct, total)`` as a
    float64 tensor, so ``float()`` of it is that exact Python float (no float32 mean of batch means)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("correct", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor) -> None:
        self.correct += (logits.argmax(1) == target).sum()
        self.total += target.numel()

    def compute(self) -> Tensor:
        return torch.tensor(percent_correct(int(self.correct), int(self.total)), dtype=torch.float64)


class ClassificationTask(pl.LightningModule):
    """Cross-entropy training of ``model``; logs ``train_loss``, ``val_loss``, ``val_acc`` (percent).

    Accuracies (``val_acc``, ``test_acc``) are ``ExactAccuracy`` metrics: exact ``100 · correct /
    total`` over the epoch, the value the int8 runtime's profiler computes for the same predictions.
    ``extra_loss(model)`` (optional) returns a scalar added to the training loss, for regularisers
    such as the BN-scale L1 penalty of network slimming or hardware-cost terms. ``loss(model, x, y)``
    (optional) replaces the cross-entropy training loss (distillation, weighted early-exit losses);
    validation and test stay cross-entropy of ``model(x)``.
    """

    def __init__(self, model: nn.Module, cfg: TrainingStageConfig,
                 extra_loss: Callable[[nn.Module], Tensor] | None = None,
                 loss: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.extra_loss = extra_loss
        self.loss = loss
        self.accuracy = nn.ModuleDict({"val": ExactAccuracy(), "test": ExactAccuracy()})

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        self._loss_sum = torch.zeros((), dtype=torch.float64)
        self._loss_count = 0

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = self.loss(self.model, x, y) if self.loss is not None else F.cross_entropy(self.model(x), y)
        self._loss_sum += loss.detach().double() * len(y)  # summed here: self.log per step costs more than the step
        self._loss_count += len(y)
        if self.extra_loss is not None:
            loss = loss + self.extra_loss(self.model)
        return loss

    def on_train_epoch_end(self) -> None:
        """``train_loss``: the epoch's mean training loss, weighted by batch size."""
        if self._loss_count:
            self.log("train_loss", (self._loss_sum / self._loss_count).float(), prog_bar=True)

    def _eval_step(self, batch: tuple[Tensor, Tensor], prefix: str) -> None:
        x, y = batch
        logits = self.model(x)
        self.log(f"{prefix}_loss", F.cross_entropy(logits, y), on_epoch=True, batch_size=len(y))
        acc = self.accuracy[prefix]
        acc.update(logits, y)
        self.log(f"{prefix}_acc", acc, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self):  # noqa: ANN201 - Lightning's union return type
        cfg = self.cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                  nesterov=cfg.momentum > 0)
        elif cfg.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.scheduler == "none":
            return opt
        if cfg.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_epochs)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if cfg.scheduler == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.max_epochs // 3), gamma=0.1)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        steps = int(self.trainer.estimated_stepping_batches)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
