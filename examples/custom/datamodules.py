"""A user's own data, as edgeflow sees it: any ``LightningDataModule`` yielding ``(x, y)`` batches.

edgeflow builds it from ``dataset._target_`` (``datamodules.DigitsData``) with the dataset YAML's
other keys as keyword arguments (plus the run's ``seed``, because the signature names it), calls
``prepare_data()`` and ``setup()``, and reads the class count from ``num_classes``. The input shape is
read from the batches here (this module sets no ``input_shape`` attribute): ``x`` is
``float32 [B, 1, 8, 8]``, ``y`` ``int64 [B]``.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset


class DigitsData(pl.LightningDataModule):
    """scikit-learn's 8x8 digits, standardised, split stratified into train / val / test."""

    num_classes = 10

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 split_seed: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.seed = seed  # the run's seed: shuffles the training loader
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = load_digits(return_X_y=True)
        x = ((x - x.mean()) / x.std()).astype(np.float32).reshape(-1, 1, 8, 8)
        x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=self.test_fraction, stratify=y,
                                                          random_state=self.split_seed)
        x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=self.val_fraction,
                                                          stratify=y_rest, random_state=self.split_seed)
        for name, (xs, ys) in {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}.items():
            self.splits[name] = TensorDataset(torch.from_numpy(xs), torch.from_numpy(ys.astype(np.int64)))

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=self.batch_size)
