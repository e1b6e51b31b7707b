"""Typed schemas of the ``dataset`` config group, one dataclass per dataset (torch-free).

The config validator merges ``conf/dataset/<name>.yaml`` into ``OmegaConf.structured(schema)``
(unknown keys and wrong types fail there) and then calls ``OmegaConf.to_object``, which runs each
schema's ``__post_init__`` range checks. Errors are ``ConfigError`` with the bare key
(``batch_size``); the validator places them under ``dataset``.

``DATASET_SCHEMAS`` maps a dataset's ``name`` to its schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeflow.core.errors import ConfigError, is_finite, require, require_choice, require_finite
from edgeflow.core.home import data_root
from edgeflow.core.targets import TARGET_KEY, call_arguments, resolve

__all__ = [
    "DATASET_SCHEMAS",
    "DatasetConfig",
    "TargetDatasetConfig",
    "DigitsConfig",
    "MNIST1DConfig",
    "SyntheticConfig",
    "CIFAR10Config",
    "MNISTConfig",
    "CIFAR10_URL",
    "CIFAR10_MD5",
    "MNIST_MIRROR",
    "MNIST_MD5",
    "default_root",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MAX_BATCH_SIZE = 1 << 16  # dataset.batch_size: at most 65536
#: md5 of each ``<name>.gz`` file on the mirror, keyed by the file's name without ``.gz``.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}


def default_root() -> str:
    """Where dataset files live unless ``dataset.root`` says otherwise: ``$EDGEFLOW_DATA``, else
    ``<home>/data`` (``edgeflow.core.home``: ``$EDGEFLOW_HOME`` or the project root)."""
    return data_root()


def _require_fraction(value: float, key: str, *, allow_zero: bool = False) -> None:
    lo_ok = value >= 0 if allow_zero else value > 0
    require(lo_ok and value < 1, key, f"a float in {'[0' if allow_zero else '(0'}, 1)", value)


def _require_fixed(cfg: DatasetConfig, shape: list[int], num_classes: int) -> None:
    require(list(cfg.input_shape) == shape, "input_shape", f"{shape} for {cfg.name}", list(cfg.input_shape))
    require(cfg.num_classes == num_classes, "num_classes", f"{num_classes} for {cfg.name}", cfg.num_classes)


@dataclass
class DatasetConfig:
    """Fields every dataset has.

    ``input_shape`` excludes the batch dimension. ``subset`` keeps a fixed random fraction of every
    split (1.0 = all of it), for quick runs. ``split_seed`` fixes how validation (and, where the
    dataset has no official test split, test) samples are carved out: splits never depend on the
    run's seed, which only seeds the shuffling of the training loader.
    """

    name: str = ""
    input_shape: list[int] = field(default_factory=list)
    num_classes: int = 0
    batch_size: int = 64
    num_workers: int = 0
    subset: float = 1.0
    split_seed: int = 0

    def __post_init__(self) -> None:
        require_choice(self.name, "name", tuple(DATASET_SCHEMAS))
        shape = list(self.input_shape)
        require(len(shape) >= 1 and all(int(d) >= 1 for d in shape), "input_shape",
                "a non-empty list of integers >= 1", shape)
        require(self.num_classes >= 2, "num_classes", "an integer >= 2", self.num_classes)
        require(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        require(self.batch_size <= MAX_BATCH_SIZE, "batch_size", f"an integer <= {MAX_BATCH_SIZE}", self.batch_size)
        require(0 <= self.num_workers <= 1024, "num_workers", "an integer in [0, 1024]", self.num_workers)
        require(0 < self.subset <= 1, "subset", "a float in (0, 1]", self.subset)
        require(self.split_seed >= 0, "split_seed", "an integer >= 0", self.split_seed)


@dataclass
class DigitsConfig(DatasetConfig):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images), offline.

    Fixed stratified split: ``test_fraction`` of all images for test, then ``val_fraction`` of the
    rest for validation.
    """

    name: str = "digits"
    input_shape: list[int] = field(default_factory=lambda: [1, 8, 8])
    num_classes: int = 10
    test_fraction: float = 0.2
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_fixed(self, [1, 8, 8], 10)
        _require_fraction(self.test_fraction, "test_fraction")
        _require_fraction(self.val_fraction, "val_fraction")


@dataclass
class MNIST1DConfig(DatasetConfig):
    """MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package (never downloaded).

    ``num_samples``, ``train_split`` and ``data_seed`` are the package's own generation arguments
    (defaults = the package's: 5000, 0.8, 42, i.e. 4000 train / 1000 test). ``val_fraction`` of the
    train part becomes the validation split. Generated arrays are cached in ``root`` as ``.npz``.
    """

    name: str = "mnist1d"
    input_shape: list[int] = field(default_factory=lambda: [1, 40])
    num_classes: int = 10
    root: str = field(default_factory=default_root)
    num_samples: int = 5000
    train_split: float = 0.8
    data_seed: int = 42
    val_fraction: float = 0.1
    cache: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_fixed(self, [1, 40], 10)
        require(self.num_samples >= 100, "num_samples", "an integer >= 100", self.num_samples)
        _require_fraction(self.train_split, "train_split")
        require(self.data_seed >= 0, "data_seed", "an integer >= 0", self.data_seed)
        _require_fraction(self.val_fraction, "val_fraction")


@dataclass
class SyntheticConfig(DatasetConfig):
    """Random, learnable data of any shape: ``x = class_mean[y] * separation + noise * N(0, 1)``.

    Class means are standard-normal tensors of ``input_shape`` drawn from ``data_seed``; labels are
    balanced. Sizes are ``n_train``/``n_val``/``n_test``. Generation is fixed by ``data_seed`` alone.
    """

    name: str = "synthetic"
    input_shape: list[int] = field(default_factory=lambda: [1, 16, 16])
    num_classes: int = 10
    n_train: int = 1024
    n_val: int = 256
    n_test: int = 256
    noise: float = 1.0
    separation: float = 1.0
    data_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("n_train", "n_val", "n_test"):
            require(getattr(self, key) >= 1, key, "an integer >= 1", getattr(self, key))
        require_finite(self.noise, "noise", "a finite float >= 0", self.noise >= 0)
        require_finite(self.separation, "separation", "a finite float >= 0", self.separation >= 0)
        require(self.data_seed >= 0, "data_seed", "an integer >= 0", self.data_seed)


@dataclass
class CIFAR10Config(DatasetConfig):
    """CIFAR-10 from the python-pickle release in ``<root>/cifar-10-batches-py/``.

    ``download: true`` fetches ``url`` into ``root``, checks ``md5`` and extracts it; nothing is
    fetched otherwise. Pixels are scaled to [0, 1] and, if ``normalize``, standardised per channel
    with ``mean``/``std``. ``val_fraction`` of the 50 000 training images (stratified, fixed by
    ``split_seed``) become the validation split; the official 10 000 test images are the test split.
    """

    name: str = "cifar10"
    input_shape: list[int] = field(default_factory=lambda: [3, 32, 32])
    num_classes: int = 10
    root: str = field(default_factory=default_root)
    download: bool = False
    url: str = CIFAR10_URL
    md5: str = CIFAR10_MD5
    val_fraction: float = 0.1
    normalize: bool = True
    mean: list[float] = field(default_factory=lambda: [0.4914, 0.4822, 0.4465])
    std: list[float] = field(default_factory=lambda: [0.2470, 0.2435, 0.2616])

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_fixed(self, [3, 32, 32], 10)
        _require_fraction(self.val_fraction, "val_fraction")
        _require_norm(self.mean, self.std, 3)
        require(bool(self.url), "url", "a non-empty URL", self.url)


@dataclass
class MNISTConfig(DatasetConfig):
    """MNIST from the four IDX files (plain or ``.gz``) in ``<root>/MNIST/raw/`` or ``<root>/``.

    ``download: true`` fetches ``<mirror><file>.gz`` into ``<root>/MNIST/raw/`` and checks each
    against ``md5`` (keyed by file name without ``.gz``); nothing is fetched otherwise. Pixels are
    scaled to [0, 1] and, if ``normalize``, standardised with ``mean``/``std``. ``val_fraction`` of
    the 60 000 training images become the validation split; the 10 000 t10k images are the test split.
    """

    name: str = "mnist"
    input_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    num_classes: int = 10
    root: str = field(default_factory=default_root)
    download: bool = False
    mirror: str = MNIST_MIRROR
    md5: dict[str, str] = field(default_factory=lambda: dict(MNIST_MD5))
    val_fraction: float = 0.1
    normalize: bool = True
    mean: list[float] = field(default_factory=lambda: [0.1307])
    std: list[float] = field(default_factory=lambda: [0.3081])

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_fixed(self, [1, 28, 28], 10)
        _require_fraction(self.val_fraction, "val_fraction")
        _require_norm(self.mean, self.std, 1)
        require(bool(self.mirror), "mirror", "a non-empty base URL", self.mirror)
        missing = sorted(set(MNIST_MD5) - set(self.md5))
        if missing:
            raise ConfigError("md5", f"must give an md5 for each of {', '.join(MNIST_MD5)}; missing {', '.join(missing)}")


@dataclass
class TargetDatasetConfig:
    """A user's own data: ``_target_`` (here ``target``) is the import path of a callable (usually a
    ``LightningDataModule`` class) returning a datamodule whose ``train_dataloader``,
    ``val_dataloader`` and ``test_dataloader`` yield ``(x float [B, *input_shape], y int64 [B])``.

    The node's other keys, except ``input_shape`` and ``num_classes``, are its keyword arguments
    (``kwargs``); the run's ``seed`` is passed when its signature names ``seed``, and the declared
    ``input_shape`` / ``num_classes`` when it names them. Where the run reads the shape and class
    count: ``edgeflow.data.target.data_shape``. Validation imports the target and checks the
    arguments against its signature.
    """

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: list[int] | None = None
    num_classes: int | None = None

    def __post_init__(self) -> None:
        fn = resolve(self.target, TARGET_KEY)
        call_arguments(fn, self.target, self.kwargs, {"seed": 0, **self.declared()}, "")
        if self.input_shape is not None:
            shape = list(self.input_shape)
            require(len(shape) >= 1 and all(isinstance(d, int) and d >= 1 for d in shape), "input_shape",
                    "a non-empty list of integers >= 1, or null (read from the datamodule)", shape)
        if self.num_classes is not None:
            require(isinstance(self.num_classes, int) and self.num_classes >= 2, "num_classes",
                    "an integer >= 2, or null (read from the datamodule)", self.num_classes)

    def declared(self) -> dict[str, Any]:
        """The shape and class count the config declares (those not null)."""
        return {k: v for k, v in (("input_shape", self.input_shape), ("num_classes", self.num_classes))
                if v is not None}

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> TargetDatasetConfig:
        """The config of a ``dataset`` node holding ``_target_`` (keys relative to ``dataset``)."""
        if "name" in node:
            raise ConfigError(TARGET_KEY, f"is set together with name={node['name']!r} (a bundled dataset); use "
                                          "one: a dataset YAML with _target_ and no name (override /dataset: ...)")
        reserved = ("input_shape", "num_classes")
        kwargs = {k: v for k, v in node.items() if k != TARGET_KEY and k not in reserved}
        return cls(target=node[TARGET_KEY], kwargs=kwargs, **{k: node[k] for k in reserved if k in node})


def _require_norm(mean: list[float], std: list[float], channels: int) -> None:
    require(len(mean) == channels and all(is_finite(m) for m in mean), "mean",
            f"a list of {channels} finite floats (one per channel)", list(mean))
    require(len(std) == channels and all(is_finite(s) and s > 0 for s in std), "std",
            f"a list of {channels} finite floats > 0 (one per channel)", list(std))


DATASET_SCHEMAS: dict[str, type[DatasetConfig]] = {
    "digits": DigitsConfig,
    "mnist1d": MNIST1DConfig,
    "synthetic": SyntheticConfig,
    "cifar10": CIFAR10Config,
    "mnist": MNISTConfig,
}
