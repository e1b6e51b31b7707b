"""Datasets as LightningDataModules: digits, mnist1d, synthetic, cifar10, mnist, or a user's own.

``build_datamodule(dataset_cfg, seed)`` turns a ``dataset`` config into a datamodule; batches are
``(x float32 [B, *input_shape], y int64 [B])``. A bundled dataset's datamodule has
``.input_shape``/``.num_classes``; a user's (``_target_``, ``edgeflow.data.target``) may declare
them instead, and ``data_shape(datamodule, cfg)`` reads them the same way for both.
Importing this package (or ``edgeflow.data.schemas``) loads no torch, Lightning or numpy: the
datamodules are imported when first built, ``DatasetError`` (``edgeflow.data.sources``) on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import is_dataclass
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import ConfigError
from edgeflow.core.lazy import lazy_exports
from edgeflow.core.targets import TARGET_KEY
from edgeflow.data.schemas import DATASET_SCHEMAS, DatasetConfig, TargetDatasetConfig

if TYPE_CHECKING:
    import pytorch_lightning as pl

__all__ = ["DATASET_SCHEMAS", "DatasetConfig", "DatasetError", "TargetDatasetConfig", "build_datamodule",
           "data_shape", "to_dataset_config"]


__getattr__ = lazy_exports(__name__, {"DatasetError": "sources", "data_shape": "target"})


def to_dataset_config(dataset_cfg: Any) -> DatasetConfig | TargetDatasetConfig:
    """Validate a ``dataset`` config (DictConfig, mapping or schema instance) into its schema.

    Raises ConfigError with the key under ``dataset`` (e.g. ``dataset.batch_size: must be ...``).
    """
    if isinstance(dataset_cfg, (DatasetConfig, TargetDatasetConfig)):
        return dataset_cfg
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if is_dataclass(dataset_cfg) and not isinstance(dataset_cfg, type):
        dataset_cfg = OmegaConf.structured(dataset_cfg)
    if not isinstance(dataset_cfg, (DictConfig, Mapping)):
        raise ConfigError("dataset", f"must be a mapping with a name, got {type(dataset_cfg).__name__}")
    if TARGET_KEY in dataset_cfg:
        node = OmegaConf.to_container(dataset_cfg, resolve=True) if isinstance(dataset_cfg, DictConfig) else dataset_cfg
        try:
            return TargetDatasetConfig.from_node(node)
        except ConfigError as e:
            raise e.under("dataset") from None
    name = dataset_cfg.get("name")
    if name not in DATASET_SCHEMAS:
        raise ConfigError("dataset.name", f"must be one of {', '.join(DATASET_SCHEMAS)}, got {name!r}")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(DATASET_SCHEMAS[name]), dataset_cfg)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except ConfigError as e:
        raise e.under("dataset") from None
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or ""
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"dataset.{key}" if key else "dataset", msg) from None


def build_datamodule(dataset_cfg: Any, seed: int = 0) -> pl.LightningDataModule:
    """The LightningDataModule of ``dataset_cfg`` (not yet set up; ``setup()`` loads the data).

    ``seed`` seeds only the shuffling of the training loader (a user's datamodule gets it as
    ``seed=`` if it takes one); splits are fixed by the config.
    """
    cfg = to_dataset_config(dataset_cfg)
    if isinstance(cfg, TargetDatasetConfig):
        from edgeflow.data.target import build_target_datamodule

        return build_target_datamodule(cfg, seed)
    from edgeflow.data.datamodules import build_datamodule as _build

    return _build(cfg, seed)
