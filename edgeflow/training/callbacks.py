"""Lightning callbacks every edgeflow fit uses."""

from __future__ import annotations

from typing import Callable

import pytorch_lightning as pl

from edgeflow.methods.pruning.masks import apply_masks


class MaskEnforcer(pl.Callback):
    """Re-applies pruning masks at the start of the fit and after every optimizer step.

    Any stage that trains therefore keeps the sparsity earlier stages created (prune → QAT).
    """

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        apply_masks(pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        apply_masks(pl_module)


class EpochMetricsLogger(pl.Callback):
    """Sends ``train_loss``, ``val_acc``, ``val_loss`` and ``lr`` to the tracker once per epoch."""

    def __init__(self, log_metrics: Callable[[dict[str, float], int | None], None]) -> None:
        self.log_metrics = log_metrics

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if k in ("train_loss", "val_acc", "val_loss")}
        if trainer.optimizers:
            metrics["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.log_metrics(metrics, trainer.current_epoch)
