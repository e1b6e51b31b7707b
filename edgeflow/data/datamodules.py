"""LightningDataModules over in-memory tensors, one per dataset (imports torch and Lightning).

Every datamodule exposes ``input_shape`` (tuple, no batch dim) and ``num_classes`` from the moment
it is built, and after ``setup()`` yields batches ``(x float32 [B, *input_shape], y int64 [B])``.
Splits are fixed by the dataset config; the run's ``seed`` only seeds the training loader's
shuffling (a fresh ``torch.Generator`` per ``train_dataloader()`` call, so every fit sees the same
order for the same seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from edgeflow.data import sources
from edgeflow.data.schemas import DatasetConfig
from edgeflow.data.sources import SPLITS, DatasetError, Split


class ArrayDataModule(pl.LightningDataModule):
    """Base datamodule: loads the dataset's fixed splits as numpy arrays into ``TensorDataset``\\ s.

    ``split_info[split]`` is ``(pool, index)``: which source array (``"train"``, ``"test"``, or
    ``"all"`` for a dataset with one pool) each sample came from, and its position there.
    """

    def __init__(self, cfg: DatasetConfig, seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.seed = int(seed)
        self.name = cfg.name
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in cfg.input_shape)
        self.num_classes: int = int(cfg.num_classes)
        self.batch_size: int = int(cfg.batch_size)
        self.num_workers: int = int(cfg.num_workers)
        self.datasets: dict[str, TensorDataset] = {}
        self.split_info: dict[str, tuple[str, np.ndarray]] = {}

    # ------------------------------------------------------------------------------ lifecycle
    def prepare_data(self) -> None:
        """Fetch missing files when ``download: true`` (idempotent; ``setup`` also does it)."""
        sources.prepare(self.cfg)

    def setup(self, stage: str | None = None) -> None:
        """Build the train/val/test ``TensorDataset``\\ s (all three, once)."""
        if self.datasets:
            return
        splits = sources.load_splits(self.cfg)
        for name in SPLITS:
            self.datasets[name] = self._to_tensors(name, splits[name])
            self.split_info[name] = (splits[name].pool, splits[name].index)

    def _to_tensors(self, name: str, split: Split) -> TensorDataset:
        if tuple(split.x.shape[1:]) != self.input_shape:
            raise DatasetError("dataset.input_shape", f"must be {list(split.x.shape[1:])} for {self.name}, "
                               f"got {list(self.input_shape)}")
        if len(split.y) and (split.y.min() < 0 or split.y.max() >= self.num_classes):
            raise DatasetError("dataset.num_classes", f"{name} labels span 0..{int(split.y.max())}, "
                               f"more than num_classes={self.num_classes}")
        x = torch.from_numpy(np.ascontiguousarray(split.x, dtype=np.float32))
        y = torch.from_numpy(np.ascontiguousarray(split.y, dtype=np.int64))
        return TensorDataset(x, y)

    # ---------------------------------------------------------------------------- loaders
    def _dataset(self, split: str) -> TensorDataset:
        if not self.datasets:
            self.setup()
        return self.datasets[split]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        kwargs: dict[str, Any] = {}
        if shuffle:
            kwargs["generator"] = torch.Generator().manual_seed(self.seed)
        if self.num_workers > 0:
            kwargs["persistent_workers"] = True
        return DataLoader(self._dataset(split), batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def dataloader(self, split: str, shuffle: bool = False) -> DataLoader:
        """The loader of ``split`` (``train``, ``val`` or ``test``), unshuffled unless asked."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self._loader(split, shuffle)

    @property
    def sizes(self) -> dict[str, int]:
        """Number of samples per split (after ``setup``)."""
        return {k: len(self._dataset(k)) for k in SPLITS}

    def __repr__(self) -> str:
        sizes = f", sizes={self.sizes}" if self.datasets else ""
        return f"{type(self).__name__}(input_shape={self.input_shape}, num_classes={self.num_classes}{sizes})"

    __str__ = __repr__


class DigitsDataModule(ArrayDataModule):
    """scikit-learn digits, ``[1, 8, 8]``, 10 classes (offline)."""


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D generated offline, ``[1, 40]``, 10 classes."""


class SyntheticDataModule(ArrayDataModule):
    """Learnable Gaussian class clusters of any shape."""


class CIFAR10DataModule(ArrayDataModule):
    """CIFAR-10 python-pickle release, ``[3, 32, 32]``, 10 classes."""


class MNISTDataModule(ArrayDataModule):
    """MNIST IDX files, ``[1, 28, 28]``, 10 classes."""


DATAMODULES: dict[str, type[ArrayDataModule]] = {
    "digits": DigitsDataModule,
    "mnist1d": MNIST1DDataModule,
    "synthetic": SyntheticDataModule,
    "cifar10": CIFAR10DataModule,
    "mnist": MNISTDataModule,
}


def build_datamodule(dataset_cfg: Any, seed: int = 0) -> ArrayDataModule:
    """The datamodule of ``dataset_cfg`` (a DictConfig, mapping or schema dataclass), not yet set up."""
    from edgeflow.data import to_dataset_config

    cfg = to_dataset_config(dataset_cfg)
    return DATAMODULES[cfg.name](cfg, seed)
