"""Lightning callback that keeps clustered weights tied during any fit (imports Lightning).

``edgeflow.training.fit`` adds it to every fit, as it adds the pruning ``MaskEnforcer``, so the
clustering survives later training (cluster → QAT): before every optimizer step each weight's
gradient becomes its cluster's summed gradient (``tie_gradients``), after it the codebook is read
back from the weights (``retie``); at fit start the weights are retied once. A no-op on a model
without clustered layers.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from .sharing import retie, tie_gradients


class WeightSharing(pl.Callback):
    """Centroid fine-tuning: tied gradients before each step, codebook update after it."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        retie(pl_module)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        tie_gradients(pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        retie(pl_module)


__all__ = ["WeightSharing"]
