"""CIFAR-10 and MNIST from tiny files in the real formats, and the opt-in download path.

Downloads are served by a loopback HTTP server (127.0.0.1) from files the tests write; nothing
leaves the machine.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeflow.core.errors import ConfigError
from edgeflow.data import DatasetError, build_datamodule
from edgeflow.data.sources import MNIST_FILES, read_idx

CIFAR_PER_BATCH = 20  # 100 training images (10 per class), 20 test images
MNIST_TRAIN, MNIST_TEST = 60, 20


# ----------------------------------------------------------------------------- file writers
def _cifar_batch(rng: np.random.Generator, n: int, bytes_keys: bool) -> dict:
    labels = [int(i % 10) for i in range(n)]
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    d = {"batch_label": "tiny", "labels": labels, "data": data, "filenames": [f"{i}.png" for i in range(n)]}
    return {k.encode(): v for k, v in d.items()} if bytes_keys else d


def write_cifar(folder: Path, seed: int = 0) -> dict[str, dict]:
    """Write the python-pickle batches (bytes keys like the real release for most of them)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = _cifar_batch(rng, CIFAR_PER_BATCH, bytes_keys=i != 2)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2 if i % 2 else 4))
        batches[name] = batch
    return batches


def cifar_targz(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        rng = np.random.default_rng(seed)
        for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
            payload = pickle.dumps(_cifar_batch(rng, CIFAR_PER_BATCH, True), protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def idx_bytes(arr: np.ndarray) -> bytes:
    assert arr.dtype == np.uint8
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def mnist_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (MNIST_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(MNIST_TRAIN) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (MNIST_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(MNIST_TEST) % 10).astype(np.uint8),
    }


def write_mnist(folder: Path, gz: set[str] = frozenset(), seed: int = 0) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = mnist_arrays(seed)
    for name, arr in arrays.items():
        if name in gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
        else:
            (folder / name).write_bytes(idx_bytes(arr))
    return arrays


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ------------------------------------------------------------------------------- HTTP server
@pytest.fixture
def http_root(tmp_path, monkeypatch):
    """Serve tmp_path/'www' on 127.0.0.1; yields (base_url, folder, list of requested paths)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    www = tmp_path / "www"
    www.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet, but record what was asked for
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", www, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -------------------------------------------------------------------------------------- CIFAR
def test_cifar10_reads_pickle_batches(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    dm = build_datamodule({"name": "cifar10", "root": str(tmp_path), "batch_size": 8}, seed=0)
    dm.setup()
    assert dm.input_shape == (3, 32, 32) and dm.num_classes == 10
    assert dm.sizes == {"train": 90, "val": 10, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    # test split = test_batch, in order, normalised per channel
    raw = batches["test_batch"][b"data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    mean = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.2470, 0.2435, 0.2616], np.float32).reshape(1, 3, 1, 1)
    xt, yt = dm.datasets["test"].tensors
    np.testing.assert_allclose(xt.numpy(), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    assert yt.tolist() == batches["test_batch"][b"labels"]
    # val: one image per class, carved from the training pool, disjoint from train
    assert sorted(dm.datasets["val"].tensors[1].tolist()) == list(range(10))
    assert not set(dm.split_info["val"][1]) & set(dm.split_info["train"][1])
    assert dm.split_info["val"][0] == dm.split_info["train"][0] == "train"
    # batch 3 was written with str keys: still read, images land at pool positions 40..59
    b3 = batches["data_batch_3"]["data"].reshape(-1, 3, 32, 32).astype(np.float32) / 255
    pos = {int(p): i for i, p in enumerate(dm.split_info["train"][1])}
    row = dm.datasets["train"].tensors[0][pos[41] if 41 in pos else pos[42]].numpy()
    src = b3[1] if 41 in pos else b3[2]
    np.testing.assert_allclose(row, ((src[None] - mean) / std)[0], rtol=1e-5, atol=1e-5)


def test_cifar10_without_normalization_and_split_fixed(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    a = build_datamodule({"name": "cifar10", "root": str(tmp_path), "normalize": False}, seed=0)
    b = build_datamodule({"name": "cifar10", "root": str(tmp_path), "normalize": False}, seed=1)
    a.setup()
    b.setup()
    x = a.datasets["train"].tensors[0]
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert all(np.array_equal(a.split_info[s][1], b.split_info[s][1]) for s in ("train", "val", "test"))


def test_cifar10_missing_files_error_names_files_and_folder(tmp_path, http_root):
    base, _, requests = http_root
    with pytest.raises(DatasetError) as err:
        build_datamodule({"name": "cifar10", "root": str(tmp_path), "url": base + "c.tar.gz"}, seed=0).setup()
    msg = str(err.value)
    assert isinstance(err.value, ConfigError) and err.value.key == "dataset.root"
    for name in ["data_batch_1", "data_batch_5", "test_batch"]:
        assert name in msg
    assert str((tmp_path / "cifar-10-batches-py").resolve()) in msg
    assert "dataset.download=true" in msg and "\n" not in msg
    assert requests == []  # never fetches unless download=true


def test_cifar10_partial_files_are_listed(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match=r"missing: data_batch_4\)"):
        build_datamodule({"name": "cifar10", "root": str(tmp_path)}, seed=0).setup()


def test_cifar10_rejects_pickles_with_code(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    evil = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": print})
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    with pytest.raises(DatasetError, match="test_batch is not a CIFAR-10 python batch file"):
        build_datamodule({"name": "cifar10", "root": str(tmp_path)}, seed=0).setup()


def test_cifar10_download_checks_md5_and_extracts(tmp_path, http_root):
    base, www, requests = http_root
    archive = cifar_targz()
    (www / "cifar-10-python.tar.gz").write_bytes(archive)
    root = tmp_path / "data"
    cfg = {"name": "cifar10", "root": str(root), "download": True,
           "url": base + "cifar-10-python.tar.gz", "md5": md5(archive)}
    dm = build_datamodule(cfg, seed=0)
    dm.prepare_data()
    dm.setup()
    assert dm.sizes == {"train": 90, "val": 10, "test": 20}
    assert (root / "cifar-10-batches-py" / "test_batch").is_file()
    assert requests == ["/cifar-10-python.tar.gz"]
    build_datamodule(cfg, seed=0).setup()  # files present: no second fetch
    assert len(requests) == 1


def test_cifar10_download_checksum_mismatch(tmp_path, http_root):
    base, www, _ = http_root
    (www / "cifar-10-python.tar.gz").write_bytes(cifar_targz())
    root = tmp_path / "data"
    cfg = {"name": "cifar10", "root": str(root), "download": True,
           "url": base + "cifar-10-python.tar.gz", "md5": "0" * 32}
    with pytest.raises(DatasetError) as err:
        build_datamodule(cfg, seed=0).setup()
    assert err.value.key == "dataset.md5"
    assert "checksum mismatch" in str(err.value) and "0" * 32 in str(err.value)
    assert not list(root.rglob("*"))  # the bad download was removed, nothing extracted


def test_download_error_is_clear(tmp_path, http_root):
    base, _, _ = http_root
    root = tmp_path / "data"
    cfg = {"name": "cifar10", "root": str(root), "download": True, "url": base + "absent.tar.gz"}
    with pytest.raises(DatasetError, match="could not download .*absent.tar.gz") as err:
        build_datamodule(cfg, seed=0).setup()
    assert err.value.key == "dataset.url" and "404" in str(err.value)
    assert not list(root.rglob("*"))


# -------------------------------------------------------------------------------------- MNIST
@pytest.mark.parametrize("layout", ["MNIST/raw", "."])
@pytest.mark.parametrize("gz", [set(), {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}, set(MNIST_FILES)])
def test_mnist_reads_idx_plain_and_gz(tmp_path, layout, gz):
    arrays = write_mnist(tmp_path / layout, gz=gz)
    dm = build_datamodule({"name": "mnist", "root": str(tmp_path), "normalize": False, "batch_size": 16}, seed=0)
    dm.setup()
    assert dm.input_shape == (1, 28, 28)
    assert dm.sizes == {"train": 54, "val": 6, "test": 20}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    xt, yt = dm.datasets["test"].tensors
    np.testing.assert_allclose(xt.numpy()[:, 0], arrays["t10k-images-idx3-ubyte"] / np.float32(255), rtol=1e-6)
    assert yt.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    tr_idx = dm.split_info["train"][1]
    np.testing.assert_allclose(dm.datasets["train"].tensors[0].numpy()[:, 0],
                               arrays["train-images-idx3-ubyte"][tr_idx] / np.float32(255), rtol=1e-6)
    assert not set(tr_idx) & set(dm.split_info["val"][1])


def test_mnist_normalization(tmp_path):
    arrays = write_mnist(tmp_path)
    dm = build_datamodule({"name": "mnist", "root": str(tmp_path)}, seed=0)
    dm.setup()
    expect = (arrays["t10k-images-idx3-ubyte"] / np.float32(255) - np.float32(0.1307)) / np.float32(0.3081)
    np.testing.assert_allclose(dm.datasets["test"].tensors[0].numpy()[:, 0], expect, rtol=1e-5, atol=1e-5)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(DatasetError, match="header says shape"):
        read_idx(bad)
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(DatasetError, match="bad magic number"):
        read_idx(bad)
    ok = tmp_path / "ok.gz"
    ok.write_bytes(gzip.compress(idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))))
    assert read_idx(ok).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_mnist_missing_files_error(tmp_path, http_root):
    base, _, requests = http_root
    write_mnist(tmp_path / "MNIST" / "raw")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as err:
        build_datamodule({"name": "mnist", "root": str(tmp_path), "mirror": base}, seed=0).setup()
    msg = str(err.value)
    assert err.value.key == "dataset.root" and "\n" not in msg
    for name in MNIST_FILES:
        assert name in msg
    assert "missing: t10k-labels-idx1-ubyte)" in msg
    assert str((tmp_path / "MNIST" / "raw").resolve()) in msg and "dataset.download=true" in msg
    assert requests == []


def test_mnist_download_from_mirror(tmp_path, http_root):
    base, www, requests = http_root
    arrays = mnist_arrays(seed=3)
    sums = {}
    for name, arr in arrays.items():
        payload = gzip.compress(idx_bytes(arr))
        (www / f"{name}.gz").write_bytes(payload)
        sums[name] = md5(payload)
    root = tmp_path / "data"
    write_mnist(root, seed=3)  # one file already present in <root>: only the others are fetched
    for name in MNIST_FILES[:3]:
        (root / name).unlink()
    cfg = {"name": "mnist", "root": str(root), "download": True, "mirror": base.rstrip("/"), "md5": sums}
    dm = build_datamodule(cfg, seed=0)
    dm.setup()
    assert sorted(requests) == sorted(f"/{n}.gz" for n in MNIST_FILES[:3])
    assert sorted(p.name for p in (root / "MNIST" / "raw").iterdir()) == sorted(f"{n}.gz" for n in MNIST_FILES[:3])
    assert dm.datasets["test"].tensors[1].tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_mnist_download_checksum_mismatch(tmp_path, http_root):
    base, www, _ = http_root
    sums = {}
    for name, arr in mnist_arrays().items():
        payload = gzip.compress(idx_bytes(arr))
        (www / f"{name}.gz").write_bytes(payload)
        sums[name] = md5(payload)
    sums["train-labels-idx1-ubyte"] = "f" * 32
    root = tmp_path / "data"
    cfg = {"name": "mnist", "root": str(root), "download": True, "mirror": base, "md5": sums}
    with pytest.raises(DatasetError) as err:
        build_datamodule(cfg, seed=0).setup()
    assert err.value.key == "dataset.md5.train-labels-idx1-ubyte"
    assert "checksum mismatch" in str(err.value) and "train-labels-idx1-ubyte.gz" in str(err.value)
    raw = root / "MNIST" / "raw"
    assert not (raw / "train-labels-idx1-ubyte.gz").exists()
    assert not list(raw.glob("*.part"))
