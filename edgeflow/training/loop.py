"""``fit`` and ``evaluate``: the two calls a stage makes to train or test a model.

What a fit costs beyond the training itself is kept small (``benchmarks/lightning_overhead.py``):
the best weights are kept in memory and written once (``best.ckpt``) when the fit ends, not at every
improvement; the per-epoch metrics go to the tracker in one write at the end; the progress bar
refreshes every ``PROGRESS_REFRESH`` batches; the clustering callback joins only a fit whose model
has clustered layers; the training loss is summed by the task, not through ``self.log`` per step.
"""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Iterable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from edgeflow.methods.clustering.callback import WeightSharing
from edgeflow.methods.clustering.sharing import clustered_layers
from edgeflow.state import StageContext
from edgeflow.training.callbacks import EpochMetricsLogger, MaskEnforcer
from edgeflow.training.schema import TrainingStageConfig
from edgeflow.training.task import ClassificationTask

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)


PROGRESS_REFRESH = 10  # batches between progress-bar updates


class BestWeights(pl.Callback):
    """Keeps, in memory, the weights of the epoch with the highest ``val_acc`` (the first of equals,
    as ``ModelCheckpoint(mode="max")``); NaN never counts as best."""

    def __init__(self) -> None:
        self.score: float | None = None
        self.state: dict[str, Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get("val_acc")
        if trainer.sanity_checking or value is None or torch.isnan(value):
            return
        if self.score is None or float(value) > self.score:
            self.score = float(value)
            self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


def _trainer(ctx: StageContext, max_epochs: int, callbacks: list[pl.Callback], progress: bool) -> pl.Trainer:
    tcfg = ctx.trainer
    if progress and tcfg.progress_bar:
        callbacks = [*callbacks, pl.callbacks.TQDMProgressBar(refresh_rate=PROGRESS_REFRESH)]
    return pl.Trainer(
        max_epochs=max_epochs, accelerator=tcfg.accelerator, devices=tcfg.devices,
        deterministic=tcfg.deterministic, enable_progress_bar=progress and tcfg.progress_bar,
        enable_model_summary=False, logger=False, callbacks=callbacks, num_sanity_val_steps=0,
        default_root_dir=str(ctx.out_dir),
    )


def fit(model: nn.Module, ctx: StageContext, cfg: TrainingStageConfig, *, callbacks: Iterable[pl.Callback] = (),
        extra_loss: Callable[[nn.Module], Tensor] | None = None,
        loss: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None) -> dict[str, float]:
    """Train ``model`` in place on ``ctx.data`` and restore its best-validation weights.

    Writes the best checkpoint (weights only, ``best.ckpt``) to ``ctx.out_dir``, logs per-epoch ``train_loss``,
    ``val_loss``, ``val_acc`` and ``lr`` under the stage's name, re-applies pruning masks after
    every optimizer step and keeps clustered weights tied (``WeightSharing``). ``loss(model, x, y)``
    replaces the cross-entropy training loss (``ClassificationTask``). Returns ``{"best_val_acc": best, "epochs": epochs_run}`` (the per-epoch
    ``val_acc`` series is in MLflow; ``best_val_acc`` does not collide with it).
    """
    task = ClassificationTask(model, cfg, extra_loss, loss)
    best = BestWeights()
    rows: list[tuple[dict[str, float], int | None]] = []
    all_callbacks: list[pl.Callback] = [MaskEnforcer(), EpochMetricsLogger(lambda values, step: rows.append((values, step))),
                                        best, *callbacks]
    if clustered_layers(model):
        all_callbacks.insert(1, WeightSharing())
    if cfg.patience > 0:
        all_callbacks.append(pl.callbacks.EarlyStopping(monitor="val_acc", mode="max", patience=cfg.patience))
    trainer = _trainer(ctx, cfg.max_epochs, all_callbacks, progress=True)
    try:
        trainer.fit(task, datamodule=ctx.data)
    finally:
        _log_rows(ctx, rows)
    if best.state is not None:
        task.load_state_dict(best.state)
        torch.save({"state_dict": best.state}, ctx.out_dir / "best.ckpt")  # model.checkpoint reads it
    score = best.score
    return {"best_val_acc": score if score is not None else float("nan"), "epochs": float(trainer.current_epoch)}


def _log_rows(ctx: StageContext, rows: list[tuple[dict[str, float], int | None]]) -> None:
    """The fit's per-epoch rows in one write (``StageContext.log_metric_rows``); a context of a
    caller's own with only ``log_metrics`` gets them one call per epoch."""
    if hasattr(ctx, "log_metric_rows"):
        ctx.log_metric_rows(rows)
    else:
        for values, step in rows:
            ctx.log_metrics(values, step)


def evaluate(model: nn.Module, ctx: StageContext, split: str = "test") -> dict[str, float]:
    """Accuracy (percent) and mean cross-entropy of ``model`` on ``split`` (``test`` or ``val``)."""
    task = ClassificationTask(model, TrainingStageConfig(kind="evaluate"))
    trainer = _trainer(ctx, 1, [], progress=False)
    loader = ctx.data.test_dataloader() if split == "test" else ctx.data.val_dataloader()
    if split == "test":
        (result,) = trainer.test(task, dataloaders=loader, verbose=False)
    else:
        (result,) = trainer.validate(task, dataloaders=loader, verbose=False)
        result = {k.replace("val_", "test_"): v for k, v in result.items()}
    prefix = "test" if split == "test" else "val"
    return {f"{prefix}_acc": float(result["test_acc"]), f"{prefix}_loss": float(result["test_loss"])}
