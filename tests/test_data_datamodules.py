"""The offline datamodules (digits, mnist1d, synthetic): shapes, dtypes, fixed splits, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from edgeflow.data import build_datamodule
from edgeflow.data.datamodules import ArrayDataModule
from edgeflow.data.schemas import DigitsConfig, SyntheticConfig


def _check_common(dm: ArrayDataModule, input_shape, num_classes):
    assert dm.input_shape == tuple(input_shape)
    assert dm.num_classes == num_classes
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        x, y = next(iter(loader))
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape[1:]) == tuple(input_shape)
        assert x.shape[0] == y.shape[0] <= dm.batch_size
        assert torch.isfinite(x).all()
    for split in ("train", "val", "test"):
        y = dm.datasets[split].tensors[1]
        assert int(y.min()) >= 0 and int(y.max()) < num_classes
    # every class is present in the training split
    assert dm.datasets["train"].tensors[1].unique().numel() == num_classes


def _assert_disjoint(dm: ArrayDataModule):
    seen: dict[str, set] = {}
    for split in ("train", "val", "test"):
        pool, index = dm.split_info[split]
        assert len(np.unique(index)) == len(index)
        s = set(index.tolist())
        assert not (seen.get(pool, set()) & s), f"{split} overlaps another split of pool {pool}"
        seen.setdefault(pool, set()).update(s)


@pytest.fixture(scope="module")
def digits():
    dm = build_datamodule(OmegaConf.create({"name": "digits"}), seed=0)
    dm.setup("fit")
    return dm


def test_digits_shapes_and_split_sizes(digits):
    _check_common(digits, (1, 8, 8), 10)
    assert digits.sizes == {"train": 1294, "val": 144, "test": 359}
    assert sum(digits.sizes.values()) == 1797
    x = digits.datasets["train"].tensors[0]
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0  # x / 16
    _assert_disjoint(digits)
    assert {p for p, _ in digits.split_info.values()} == {"all"}


def test_digits_split_is_identical_across_seeds_but_shuffling_follows_seed(digits):
    other = build_datamodule(DigitsConfig(), seed=123)
    other.setup()
    for split in ("train", "val", "test"):
        assert np.array_equal(digits.split_info[split][1], other.split_info[split][1])
        assert torch.equal(digits.datasets[split].tensors[0], other.datasets[split].tensors[0])
    first = lambda dm: next(iter(dm.train_dataloader()))[1]  # noqa: E731
    assert torch.equal(first(digits), first(digits))  # same seed -> same order, every call
    assert not torch.equal(first(digits), first(other))  # other seed -> other order
    same_seed = build_datamodule(DigitsConfig(), seed=0)
    assert torch.equal(first(digits), first(same_seed))  # loaders set themselves up on demand
    # evaluation loaders are not shuffled
    assert torch.equal(next(iter(digits.test_dataloader()))[1], next(iter(other.test_dataloader()))[1])


def test_digits_stratified_test_split(digits):
    y_test = digits.datasets["test"].tensors[1]
    counts = torch.bincount(y_test, minlength=10)
    assert int(counts.min()) >= 34 and int(counts.max()) <= 38  # ~20 % of ~180 per class


def test_subset_keeps_a_fixed_fraction(digits):
    dm = build_datamodule({"name": "digits", "subset": 0.1}, seed=0)
    dm.setup()
    assert dm.sizes == {"train": 129, "val": 14, "test": 36}  # round(0.1 * n)
    full_train = set(digits.split_info["train"][1].tolist())
    assert set(dm.split_info["train"][1].tolist()) <= full_train
    again = build_datamodule({"name": "digits", "subset": 0.1}, seed=7)
    again.setup()
    assert all(np.array_equal(dm.split_info[s][1], again.split_info[s][1]) for s in dm.split_info)


def test_mnist1d_generated_offline_and_cached(tmp_path):
    state = np.random.get_state()
    cfg = {"name": "mnist1d", "root": str(tmp_path)}
    dm = build_datamodule(cfg, seed=0)
    dm.setup()
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG left alone
    _check_common(dm, (1, 40), 10)
    assert dm.sizes == {"train": 3600, "val": 400, "test": 1000}
    _assert_disjoint(dm)
    cached = list(tmp_path.glob("mnist1d_*.npz"))
    assert [p.name for p in cached] == ["mnist1d_n5000_split0.8_seed42.npz"]
    again = build_datamodule(cfg, seed=5)
    again.setup()  # from the cache
    for split in ("train", "val", "test"):
        assert torch.equal(dm.datasets[split].tensors[0], again.datasets[split].tensors[0])
        assert torch.equal(dm.datasets[split].tensors[1], again.datasets[split].tensors[1])
    # the package standardises the whole set: overall mean ~0, std ~1
    x = torch.cat([dm.datasets[s].tensors[0] for s in ("train", "val", "test")])
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3


def test_mnist1d_without_cache_writes_nothing(tmp_path):
    dm = build_datamodule({"name": "mnist1d", "root": str(tmp_path), "cache": False, "num_samples": 500}, seed=0)
    dm.setup()
    assert dm.sizes == {"train": 360, "val": 40, "test": 100}
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 40), (64,)])
def test_synthetic_any_shape(shape):
    dm = build_datamodule({"name": "synthetic", "input_shape": list(shape), "num_classes": 4,
                           "n_train": 40, "n_val": 12, "n_test": 8, "batch_size": 16}, seed=0)
    dm.setup()
    _check_common(dm, shape, 4)
    assert dm.sizes == {"train": 40, "val": 12, "test": 8}
    assert torch.bincount(dm.datasets["train"].tensors[1]).tolist() == [10, 10, 10, 10]  # balanced


def test_synthetic_is_fixed_and_learnable():
    a = build_datamodule(SyntheticConfig(), seed=0)
    b = build_datamodule(SyntheticConfig(), seed=99)
    a.setup()
    b.setup()
    for split in ("train", "val", "test"):
        assert torch.equal(a.datasets[split].tensors[0], b.datasets[split].tensors[0])
    # nearest class mean (estimated on train) classifies the test split well
    x, y = a.datasets["train"].tensors
    means = torch.stack([x[y == c].mean(0) for c in range(a.num_classes)]).flatten(1)
    xt, yt = a.datasets["test"].tensors
    pred = torch.cdist(xt.flatten(1), means).argmin(1)
    assert (pred == yt).float().mean() > 0.9
    other = build_datamodule({"name": "synthetic", "data_seed": 1}, seed=0)
    other.setup()
    assert not torch.equal(other.datasets["train"].tensors[0], x)


def test_dataloader_by_name_and_workers():
    dm = build_datamodule({"name": "synthetic", "n_train": 8, "n_val": 4, "n_test": 4, "num_workers": 1}, seed=0)
    loader = dm.dataloader("val")
    assert loader.num_workers == 1 and loader.persistent_workers
    with pytest.raises(ValueError):
        dm.dataloader("holdout")
