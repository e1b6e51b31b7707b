"""``fit`` and ``evaluate``: the two calls a stage makes to train or test a model."""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Iterable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from edgeflow.methods.clustering.callback import WeightSharing
from edgeflow.state import StageContext
from edgeflow.training.callbacks import EpochMetricsLogger, MaskEnforcer
from edgeflow.training.schema import TrainingStageConfig
from edgeflow.training.task import ClassificationTask

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LeafSpec.*")
logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)


def _trainer(ctx: StageContext, max_epochs: int, callbacks: list[pl.Callback], progress: bool) -> pl.Trainer:
    tcfg = ctx.trainer
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

    Writes the best checkpoint (weights only) to ``ctx.out_dir``, logs per-epoch ``train_loss``,
    ``val_loss``, ``val_acc`` and ``lr`` under the stage's name, re-applies pruning masks after
    every optimizer step and keeps clustered weights tied (``WeightSharing``). ``loss(model, x, y)``
    replaces the cross-entropy training loss (``ClassificationTask``). Returns ``{"best_val_acc": best, "epochs": epochs_run}`` (the per-epoch
    ``val_acc`` series is in MLflow; ``best_val_acc`` does not collide with it).
    """
    task = ClassificationTask(model, cfg, extra_loss, loss)
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=ctx.out_dir, filename="best", monitor="val_acc", mode="max",
                                              save_top_k=1, save_weights_only=True, enable_version_counter=False)
    all_callbacks: list[pl.Callback] = [MaskEnforcer(), WeightSharing(), EpochMetricsLogger(ctx.log_metrics), checkpoint,
                                        *callbacks]
    if cfg.patience > 0:
        all_callbacks.append(pl.callbacks.EarlyStopping(monitor="val_acc", mode="max", patience=cfg.patience))
    trainer = _trainer(ctx, cfg.max_epochs, all_callbacks, progress=True)
    trainer.fit(task, datamodule=ctx.data)
    if checkpoint.best_model_path:
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        task.load_state_dict(state)
    best = checkpoint.best_model_score
    return {"best_val_acc": float(best) if best is not None else float("nan"), "epochs": float(trainer.current_epoch)}


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
