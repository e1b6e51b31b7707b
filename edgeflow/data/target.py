"""Users' own data (``dataset._target_``) and the one place a run reads a datamodule's shape.

Contract for a user's datamodule (any ``LightningDataModule``; ``prepare_data`` and ``setup`` are
called before the first stage):

- ``train_dataloader``, ``val_dataloader`` and ``test_dataloader`` yield ``(x, y)`` batches: ``x``
  floating point ``[B, *input_shape]``, ``y`` integer class indices ``[B]``.
- **input shape**: its ``input_shape`` attribute (a sequence without the batch dim), else the
  declared ``dataset.input_shape``, else the shape of the first test batch's ``x`` without its
  batch dim.
- **class count**: its ``num_classes`` attribute, else the declared ``dataset.num_classes``; one of
  the two is required (no count is guessed from labels).
- Where an attribute and a declared value both exist they must agree. The first test batch is
  always checked against the shape (``ConfigError`` naming the key otherwise).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from edgeflow.core.errors import ConfigError
from edgeflow.core.targets import TARGET_KEY, call_arguments, resolve
from edgeflow.data.schemas import TargetDatasetConfig

__all__ = ["build_target_datamodule", "data_shape"]

KEY = f"dataset.{TARGET_KEY}"


def build_target_datamodule(cfg: TargetDatasetConfig, seed: int = 0) -> pl.LightningDataModule:
    """``cfg.target(**cfg.kwargs, [seed=seed], [input_shape=...], [num_classes=...])``, not yet set up."""
    fn = resolve(cfg.target, KEY)
    args = call_arguments(fn, cfg.target, cfg.kwargs, {"seed": int(seed), **cfg.declared()}, "dataset")
    datamodule = fn(**args)
    if not isinstance(datamodule, pl.LightningDataModule):
        raise ConfigError(KEY, f"{cfg.target}(...) returned a {type(datamodule).__name__}, "
                               "not a pytorch_lightning.LightningDataModule")
    return datamodule


def data_shape(datamodule: pl.LightningDataModule, cfg: Any) -> tuple[tuple[int, ...], int]:
    """``(input_shape, num_classes)`` of a set-up ``datamodule`` built from dataset config ``cfg``
    (rules in the module docstring; a bundled dataset's attributes are taken as they are)."""
    if not isinstance(cfg, TargetDatasetConfig):
        return tuple(int(d) for d in datamodule.input_shape), int(datamodule.num_classes)
    shape = _agreed(datamodule, cfg, "input_shape")
    num_classes = _agreed(datamodule, cfg, "num_classes")
    if num_classes is None:
        raise ConfigError("dataset.num_classes", f"is required: {cfg.target} has no num_classes attribute; "
                                                 "declare dataset.num_classes")
    batch_shape = _first_batch_shape(datamodule, cfg.target)
    if shape is None:
        shape = batch_shape
    elif tuple(shape) != batch_shape:
        raise ConfigError("dataset.input_shape", f"is {list(shape)} but {cfg.target}'s test batches have "
                                                 f"samples of shape {list(batch_shape)}")
    return tuple(int(d) for d in shape), int(num_classes)


def _agreed(datamodule: pl.LightningDataModule, cfg: TargetDatasetConfig, key: str) -> Any:
    """The datamodule's attribute ``key`` or the declared value; both given must agree."""
    declared = getattr(cfg, key)
    attr = getattr(datamodule, key, None)
    if attr is None:
        return declared
    attr = [int(d) for d in attr] if key == "input_shape" else int(attr)
    if declared is not None and (list(declared) if key == "input_shape" else declared) != attr:
        raise ConfigError(f"dataset.{key}", f"is declared {declared} but {cfg.target}.{key} is {attr}")
    return attr


def _first_batch_shape(datamodule: pl.LightningDataModule, target: str) -> tuple[int, ...]:
    """The sample shape of the first test batch, after checking it is ``(float x, integer y)``."""
    batch = next(iter(datamodule.test_dataloader()))
    ok = (isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)
          and batch[0].is_floating_point() and not batch[1].is_floating_point() and batch[1].dim() == 1
          and batch[0].shape[0] == batch[1].shape[0])
    if not ok:
        got = (f"({', '.join(_describe(t) for t in batch)})" if isinstance(batch, (tuple, list))
               else type(batch).__name__)
        raise ConfigError(KEY, f"{target} must yield batches (x float [B, ...], y integer [B]); "
                               f"its first test batch is {got}")
    return tuple(int(d) for d in batch[0].shape[1:])


def _describe(value: Any) -> str:
    """``torch.uint8 [8, 3, 5]`` for a tensor, else the type's name."""
    return f"{value.dtype} {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
