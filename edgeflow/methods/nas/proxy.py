"""Performance estimation of a candidate: short training on a fixed subset of the training data,
reporting each epoch's validation accuracy to the Optuna trial so its pruner can stop bad ones."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import optuna
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Subset

__all__ = ["SubsetData", "ReportToTrial"]


class SubsetData(pl.LightningDataModule):
    """``data`` with its training split cut to a fixed random ``fraction`` (at least one batch),
    drawn with ``seed``; validation and test splits unchanged. ``data`` is set up already."""

    def __init__(self, data: pl.LightningDataModule, fraction: float, seed: int) -> None:
        super().__init__()
        self.data = data
        train = data.train_dataloader()
        self.batch_size = train.batch_size
        n = len(train.dataset)
        keep = min(n, max(int(round(fraction * n)), self.batch_size or 1))
        self.indices = np.sort(np.random.default_rng([seed, 7]).permutation(n)[:keep]).tolist()
        self.dataset = Subset(train.dataset, self.indices)
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(self.seed))

    def val_dataloader(self) -> Any:
        return self.data.val_dataloader()

    def test_dataloader(self) -> Any:
        return self.data.test_dataloader()


class ReportToTrial(pl.Callback):
    """After every validation epoch: ``trial.report(value(val_acc), epoch)``, then raise
    ``optuna.TrialPruned`` if the study's pruner says so (Lightning re-raises it from ``fit``)."""

    def __init__(self, trial: optuna.Trial, value: Callable[[float], float]) -> None:
        self.trial = trial
        self.value = value

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or "val_acc" not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        self.trial.report(self.value(float(trainer.callback_metrics["val_acc"])), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")
