"""Accuracies are exact ``100 · correct / total``: evaluate, fit's best_val_acc, the per-epoch series,
and the runtime profiler's, all through ``percent_correct``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeflow.core.accuracy import percent_correct
from edgeflow.training import evaluate, fit
from edgeflow.training.schema import TrainerConfig, TrainingStageConfig


def test_percent_correct_is_the_float64_quotient():
    assert percent_correct(6, 7) == 600 / 7 and percent_correct(6, 7) != float(np.float32(600 / 7))
    assert percent_correct(0, 3) == 0.0 and percent_correct(3, 3) == 100.0


class _Data(pl.LightningDataModule):
    """7 samples in uneven batches (3, 3, 1): a float32 mean of batch means is not 600/7."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(7, 4, generator=g)
        self.y = torch.randint(0, 3, (7,), generator=g)

    def loader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.x, self.y), batch_size=3)

    train_dataloader = val_dataloader = test_dataloader = loader


def _ctx(tmp_path, data, logged):
    return SimpleNamespace(trainer=TrainerConfig(progress_bar=False), out_dir=tmp_path, data=data,
                           log_metrics=lambda m, step: logged.append((step, dict(m))))


def _correct(model: nn.Module, data: _Data) -> int:
    with torch.no_grad():
        return int((model(data.x).argmax(1) == data.y).sum())


@pytest.mark.parametrize("split", ["test", "val"])
def test_evaluate_reports_the_exact_percentage(tmp_path, split):
    torch.manual_seed(0)
    model, data = nn.Linear(4, 3), _Data()
    acc = evaluate(model, _ctx(tmp_path, data, []), split)[f"{split}_acc"]
    assert type(acc) is float and acc == percent_correct(_correct(model, data), 7)


def test_fit_best_val_acc_and_epoch_series_are_exact(tmp_path):
    torch.manual_seed(0)
    model, data, logged = nn.Linear(4, 3), _Data(), []
    cfg = TrainingStageConfig(kind="train", max_epochs=3, lr=0.05, optimizer="adam", scheduler="none")
    best = fit(model, _ctx(tmp_path, data, logged), cfg)["best_val_acc"]
    series = [m["val_acc"] for _, m in logged]
    assert len(series) == 3 and set(series) <= {percent_correct(c, 7) for c in range(8)}
    assert any(0 < v < 100 for v in series)  # values float32 cannot hold
    assert best == max(series)
    # the restored best weights score exactly that on the same split
    assert evaluate(model, _ctx(tmp_path, data, []), "val")["val_acc"] == best
