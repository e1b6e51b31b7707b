"""Reading, generating, downloading and splitting the datasets as numpy arrays (no torch).

Every ``load_<name>(cfg)`` returns ``{"train": Split, "val": Split, "test": Split}`` with ``x``
float32 ``[N, *input_shape]`` and ``y`` int64 ``[N]``. Splits are fixed by the dataset config alone
(``split_seed``/``data_seed``), never by the run's seed.

Nothing is fetched from the network unless the config says ``download: true``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import random
import struct
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeflow.core.errors import ConfigError

if TYPE_CHECKING:
    from edgeflow.data.schemas import (
        CIFAR10Config,
        DatasetConfig,
        DigitsConfig,
        MNIST1DConfig,
        MNISTConfig,
        SyntheticConfig,
    )

SPLITS = ("train", "val", "test")


class DatasetError(ConfigError):
    """Dataset files missing, corrupt or not downloadable; one line naming the key and the fix."""


@dataclass
class Split:
    """One split: inputs ``x`` (float32), labels ``y`` (int64), and where the samples came from.

    ``index`` holds each sample's position in the source array named ``pool`` (e.g. the official
    training set), so tests and users can check that splits are disjoint and fixed.
    """

    x: np.ndarray
    y: np.ndarray
    pool: str
    index: np.ndarray

    def take(self, idx: np.ndarray) -> Split:
        return Split(self.x[idx], self.y[idx], self.pool, self.index[idx])


# ----------------------------------------------------------------------------------- splitting
def stratified_split(y: np.ndarray, fraction: float, seed: int | list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..len(y)-1`` into (rest, taken) with ``taken`` stratified by class.

    ``taken`` holds exactly ``round(fraction * len(y))`` samples (at least 1 and at most
    ``len(y) - 1`` when ``len(y) >= 2``), shared among classes in proportion to their counts
    (largest remainder). Deterministic in ``seed``; both parts are sorted.
    """
    y = np.asarray(y)
    n = len(y)
    n_take = int(round(fraction * n))
    if n >= 2:
        n_take = min(max(n_take, 1), n - 1)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * (n_take / n) if n else counts * 0.0
    per_class = np.floor(quota).astype(np.int64)
    remainder = quota - per_class
    order = np.lexsort((rng.random(len(classes)), -remainder))  # largest remainder, random ties
    per_class[order[: n_take - int(per_class.sum())]] += 1
    taken = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, per_class)]
    take = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    rest = np.setdiff1d(np.arange(n), take)
    return rest, take


def _carve_val(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    rest, take = stratified_split(train.y, fraction, [seed, 1])
    return train.take(rest), train.take(take)


def apply_subset(splits: dict[str, Split], fraction: float, seed: int) -> dict[str, Split]:
    """Keep a fixed random ``fraction`` (at least one sample) of every split."""
    if fraction >= 1:
        return splits
    out = {}
    for k, name in enumerate(SPLITS):
        s = splits[name]
        n = max(1, int(round(fraction * len(s.y))))
        idx = np.sort(np.random.default_rng([seed, 100 + k]).permutation(len(s.y))[:n])
        out[name] = s.take(idx)
    return out


# ---------------------------------------------------------------------------------- downloading
def md5sum(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, md5: str, *, url_key: str = "dataset.url",
             md5_key: str = "dataset.md5", timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` and check its md5; on a mismatch remove it and raise DatasetError.

    A ``dest`` already there with the right md5 is kept (no network access).
    """
    dest = Path(dest)
    if dest.exists():
        if md5sum(dest) == md5.lower():
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}.part")  # concurrent first downloads never share it
    h = hashlib.md5(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
    except (OSError, urllib.error.URLError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise DatasetError(url_key, f"could not download {url}: {e}") from None
    digest = h.hexdigest()
    if digest != md5.lower():
        tmp.unlink(missing_ok=True)
        raise DatasetError(
            md5_key,
            f"checksum mismatch for {url}: expected md5 {md5}, got {digest}; the download was removed "
            f"(corrupted transfer or wrong {url_key}/{md5_key})",
        )
    os.replace(tmp, dest)
    return dest


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(dest)


# --------------------------------------------------------------------------------------- digits
def load_digits(cfg: DigitsConfig) -> dict[str, Split]:
    """scikit-learn's bundled digits: x/16 as ``[N, 1, 8, 8]``; fixed stratified test and val splits."""
    from sklearn.datasets import load_digits as sk_load_digits

    x, y = sk_load_digits(return_X_y=True)
    x = (x.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    pool = Split(x, y.astype(np.int64), "all", np.arange(len(y)))
    rest, test = stratified_split(pool.y, cfg.test_fraction, [cfg.split_seed, 0])
    train, val = _carve_val(pool.take(rest), cfg.val_fraction, cfg.split_seed)
    return {"train": train, "val": val, "test": pool.take(test)}


# -------------------------------------------------------------------------------------- mnist1d
def mnist1d_cache_path(cfg: MNIST1DConfig) -> Path:
    return Path(cfg.root) / f"mnist1d_n{cfg.num_samples}_split{cfg.train_split:g}_seed{cfg.data_seed}.npz"


def generate_mnist1d(num_samples: int, train_split: float, seed: int) -> dict[str, np.ndarray]:
    """Generate MNIST-1D offline with the ``mnist1d`` package (global RNG state is restored)."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = num_samples, train_split, seed
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        ds = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {k: np.asarray(ds[k]) for k in ("x", "y", "x_test", "y_test")}


def load_mnist1d(cfg: MNIST1DConfig) -> dict[str, Split]:
    """MNIST-1D as ``[N, 1, 40]``: the package's train/test split, val carved from train."""
    path = mnist1d_cache_path(cfg)
    arrays = None
    if cfg.cache and path.exists():
        try:
            with np.load(path) as f:
                arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, KeyError, ValueError):
            arrays = None  # unreadable cache: regenerate
    if arrays is None:
        arrays = generate_mnist1d(cfg.num_samples, cfg.train_split, cfg.data_seed)
        if cfg.cache:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # one per process: concurrent runs
                np.savez(tmp, **arrays)
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only root only costs regeneration time
    length = arrays["x"].shape[-1]
    if length != cfg.input_shape[-1]:
        raise DatasetError("dataset.input_shape", f"must be [1, {length}] for the generated MNIST-1D, got {list(cfg.input_shape)}")

    def as_split(x: np.ndarray, y: np.ndarray, pool: str) -> Split:
        return Split(x.astype(np.float32).reshape(-1, 1, length), y.astype(np.int64), pool, np.arange(len(y)))

    train, val = _carve_val(as_split(arrays["x"], arrays["y"], "train"), cfg.val_fraction, cfg.split_seed)
    return {"train": train, "val": val, "test": as_split(arrays["x_test"], arrays["y_test"], "test")}


# ------------------------------------------------------------------------------------ synthetic
def load_synthetic(cfg: SyntheticConfig) -> dict[str, Split]:
    """Balanced labels, ``x = class_mean[y] * separation + noise * N(0, 1)``; fixed by ``data_seed``."""
    shape = tuple(int(d) for d in cfg.input_shape)
    seeds = np.random.SeedSequence(cfg.data_seed).spawn(1 + len(SPLITS))
    means = np.random.default_rng(seeds[0]).standard_normal((cfg.num_classes, *shape)).astype(np.float32)
    out = {}
    for name, ss in zip(SPLITS, seeds[1:]):
        rng = np.random.default_rng(ss)
        n = getattr(cfg, f"n_{name}")
        y = rng.permutation(np.arange(n) % cfg.num_classes).astype(np.int64)
        x = means[y] * np.float32(cfg.separation) + np.float32(cfg.noise) * rng.standard_normal((n, *shape), np.float32)
        out[name] = Split(x.astype(np.float32), y, name, np.arange(n))
    return out


# -------------------------------------------------------------------------------------- CIFAR-10
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = ("test_batch",)


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and numpy arrays (the CIFAR batch format), nothing callable."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol < 3
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One python-pickle CIFAR batch: (uint8 ``[N, 3, 32, 32]``, int64 ``[N]``)."""
    try:
        with open(path, "rb") as f:
            d = _NumpyUnpickler(f, encoding="bytes").load()
        d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
        x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError, TypeError) as e:
        raise DatasetError("dataset.root", f"{path} is not a CIFAR-10 python batch file: {e}") from None
    if len(x) != len(y):
        raise DatasetError("dataset.root", f"{path}: {len(x)} images but {len(y)} labels")
    return x, y


def _normalize(x_uint8: np.ndarray, normalize: bool, mean: list[float], std: list[float]) -> np.ndarray:
    x = x_uint8.astype(np.float32)
    x /= 255.0
    if normalize:
        shape = (1, len(mean)) + (1,) * (x.ndim - 2)
        x -= np.asarray(mean, np.float32).reshape(shape)
        x /= np.asarray(std, np.float32).reshape(shape)
    return x


def prepare_cifar10(cfg: CIFAR10Config) -> Path:
    """The batch folder, downloading and extracting the archive first if allowed and needed."""
    root = Path(cfg.root)
    folder = root / CIFAR10_DIR
    names = CIFAR10_TRAIN + CIFAR10_TEST
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and cfg.download:
        archive_name = Path(urllib.parse.urlparse(cfg.url).path).name or "cifar-10-python.tar.gz"
        archive = download(cfg.url, root / archive_name, cfg.md5)
        try:
            _extract_tar(archive, root)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetError("dataset.url", f"could not extract {archive}: {e}") from None
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise DatasetError("dataset.url", f"the archive from {cfg.url} did not contain {CIFAR10_DIR}/{{{', '.join(missing)}}}")
    if missing:
        raise DatasetError(
            "dataset.root",
            f"CIFAR-10 not found: put {', '.join(names)} (the python-pickle release, "
            f"{CIFAR10_DIR}/ inside cifar-10-python.tar.gz) in {folder.resolve()}/"
            f"{_missing_note(missing, names)}, or set dataset.download=true to fetch {cfg.url}",
        )
    return folder


def load_cifar10(cfg: CIFAR10Config) -> dict[str, Split]:
    """CIFAR-10 as ``[N, 3, 32, 32]`` scaled to [0, 1] and (optionally) standardised per channel."""
    folder = prepare_cifar10(cfg)
    parts = [read_cifar_batch(folder / n) for n in CIFAR10_TRAIN]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = read_cifar_batch(folder / CIFAR10_TEST[0])
    _check_labels(y_train, cfg.num_classes, folder)
    _check_labels(y_test, cfg.num_classes, folder)
    train = Split(_normalize(x_train, cfg.normalize, cfg.mean, cfg.std), y_train, "train", np.arange(len(y_train)))
    test = Split(_normalize(x_test, cfg.normalize, cfg.mean, cfg.std), y_test, "test", np.arange(len(y_test)))
    train, val = _carve_val(train, cfg.val_fraction, cfg.split_seed)
    return {"train": train, "val": val, "test": test}


def _missing_note(missing: list[str], names: tuple[str, ...]) -> str:
    return f" (missing: {', '.join(missing)})" if len(missing) < len(names) else ""


def _check_labels(y: np.ndarray, num_classes: int, where: Path) -> None:
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DatasetError("dataset.root", f"labels in {where} outside 0..{num_classes - 1}")


# ----------------------------------------------------------------------------------------- MNIST
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or ``.gz``) as a numpy array of its declared shape."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DatasetError("dataset.root", f"cannot read {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError("dataset.root", f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError("dataset.root", f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise DatasetError("dataset.root", f"{path}: header says shape {list(dims)} but the file holds "
                           f"{(len(data) - header) // dtype.itemsize} values")
    return np.frombuffer(data, dtype, count=count, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_mnist_files(root: Path) -> dict[str, Path | None]:
    """Each MNIST file's path: ``<root>/MNIST/raw`` first, then ``<root>``; plain before ``.gz``."""
    found: dict[str, Path | None] = {}
    for name in MNIST_FILES:
        found[name] = None
        for folder in (root / "MNIST" / "raw", root):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    found[name] = candidate
                    break
            if found[name] is not None:
                break
    return found


def prepare_mnist(cfg: MNISTConfig) -> dict[str, Path]:
    """Paths of the four IDX files, downloading the missing ones first if allowed."""
    root = Path(cfg.root)
    found = find_mnist_files(root)
    missing = [n for n, p in found.items() if p is None]
    if missing and cfg.download:
        base = cfg.mirror if cfg.mirror.endswith("/") else cfg.mirror + "/"
        for name in missing:
            found[name] = download(base + name + ".gz", root / "MNIST" / "raw" / f"{name}.gz", cfg.md5[name],
                                   url_key="dataset.mirror", md5_key=f"dataset.md5.{name}")
        missing = []
    if missing:
        raise DatasetError(
            "dataset.root",
            f"MNIST not found: put {', '.join(MNIST_FILES)} (IDX files, plain or .gz) in "
            f"{(root / 'MNIST' / 'raw').resolve()}/ or {root.resolve()}/{_missing_note(missing, MNIST_FILES)}, "
            f"or set dataset.download=true to fetch them from {cfg.mirror}",
        )
    return {n: p for n, p in found.items() if p is not None}


def load_mnist(cfg: MNISTConfig) -> dict[str, Split]:
    """MNIST as ``[N, 1, 28, 28]`` scaled to [0, 1] and (optionally) standardised."""
    paths = prepare_mnist(cfg)
    out = {}
    for pool, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(paths[f"{prefix}-images-idx3-ubyte"])
        y = read_idx(paths[f"{prefix}-labels-idx1-ubyte"]).astype(np.int64)
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
            raise DatasetError("dataset.root", f"MNIST {prefix} files hold images {list(x.shape)} and labels "
                               f"{list(y.shape)}; expected [N, 28, 28] and [N]")
        _check_labels(y, cfg.num_classes, paths[f"{prefix}-labels-idx1-ubyte"])
        out[pool] = Split(_normalize(x[:, None], cfg.normalize, cfg.mean, cfg.std), y, pool, np.arange(len(y)))
    train, val = _carve_val(out["train"], cfg.val_fraction, cfg.split_seed)
    return {"train": train, "val": val, "test": out["test"]}


LOADERS = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "synthetic": load_synthetic,
    "cifar10": load_cifar10,
    "mnist": load_mnist,
}


def load_splits(cfg: DatasetConfig) -> dict[str, Split]:
    """The dataset's fixed train/val/test splits (after ``subset``) as numpy arrays."""
    splits = LOADERS[cfg.name](cfg)
    return apply_subset(splits, cfg.subset, cfg.split_seed)


def prepare(cfg: DatasetConfig) -> None:
    """Download files if the config allows and they are missing (no-op for offline datasets)."""
    if cfg.name == "cifar10":
        prepare_cifar10(cfg)  # type: ignore[arg-type]
    elif cfg.name == "mnist":
        prepare_mnist(cfg)  # type: ignore[arg-type]
