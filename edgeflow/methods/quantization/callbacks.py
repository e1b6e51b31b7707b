"""Lightning callback for quantization-aware training: freeze observers and BN statistics on schedule."""

from __future__ import annotations

import pytorch_lightning as pl

from edgeflow.methods.quantization.convert import freeze_bn, freeze_observers


class QATCallback(pl.Callback):
    """At the start of epoch ``freeze_observers_epoch`` (0-based) fix all activation ranges and
    weight scales (PACT / LSQ parameters stop learning); at epoch ``freeze_bn_epoch`` switch the
    simulated-folding BatchNorms to their running statistics. ``None`` (or < 0) never freezes."""

    def __init__(self, freeze_observers_epoch: int | None = None, freeze_bn_epoch: int | None = None) -> None:
        self.freeze_observers_epoch = freeze_observers_epoch
        self.freeze_bn_epoch = freeze_bn_epoch
        self.observers_frozen = False
        self.bn_frozen = False

    @staticmethod
    def _due(epoch: int, at: int | None) -> bool:
        return at is not None and at >= 0 and epoch >= at

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        if not self.observers_frozen and self._due(epoch, self.freeze_observers_epoch):
            freeze_observers(pl_module)
            self.observers_frozen = True
        if not self.bn_frozen and self._due(epoch, self.freeze_bn_epoch):
            freeze_bn(pl_module)
            self.bn_frozen = True
