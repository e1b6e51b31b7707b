"""Bad .tflite input: one-line ``RuntimeModelError``s naming the op and its index, never a hang."""

from __future__ import annotations

import time

import numpy as np
import pytest

import edgeflow.runtime as rt
from edgeflow.runtime import RuntimeModelError
from tests.runtime_helpers import tfl_tensor, tflite_file

pytest.importorskip("tflite")


def _one_op(tmp_path, kind, dtype=np.int8, opts=None):
    q = {} if np.dtype(dtype).kind == "f" else {"scale": 0.1, "zp": 0}
    ts = [tfl_tensor("x", [1, 8], dtype, **q), tfl_tensor("y", [1, 8], dtype, **q)]
    return tflite_file(tmp_path / f"{kind.lower()}.tflite", ts, [(kind, [0], [1], *(opts or (None, {})))], [0], [1])


def _error(path) -> str:
    with pytest.raises(RuntimeModelError) as info:
        rt.load(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_unsupported_op_is_named_with_its_index(tmp_path):
    msg = _error(_one_op(tmp_path, "EXP"))
    assert "unsupported op EXP" in msg and "operator 0" in msg


def test_float_model_is_not_an_int8_model(tmp_path):
    msg = _error(_one_op(tmp_path, "LOGISTIC", np.float32))
    assert "not an int8 model" in msg and "operator 0 (LOGISTIC)" in msg


def test_truncated_and_corrupt_files_fail_fast(tmp_path):
    good = _one_op(tmp_path, "TANH")
    data = good.read_bytes()
    rng = np.random.default_rng(0)
    for k, cut in enumerate(range(8, len(data) - 8, 16)):  # every cut that loses bytes the model reads
        bad = tmp_path / f"cut{k}.tflite"
        bad.write_bytes(data[:cut])
        t0 = time.perf_counter()
        msg = _error(bad)
        assert time.perf_counter() - t0 < 2.0
        assert "truncated" in msg or "corrupt" in msg, msg
    for k in range(20):  # random byte flips: an error or a loadable model, never a hang or a raw exception
        flipped = bytearray(data)
        for i in rng.integers(8, len(data), 4):
            flipped[i] ^= int(rng.integers(1, 256))
        bad = tmp_path / f"flip{k}.tflite"
        bad.write_bytes(bytes(flipped))
        t0 = time.perf_counter()
        try:
            rt.load(bad)
        except RuntimeModelError as exc:
            assert "\n" not in str(exc)
        assert time.perf_counter() - t0 < 2.0
    not_tflite = tmp_path / "x.tflite"
    not_tflite.write_bytes(b"\x00" * 64)
    assert "no TFL3 identifier" in _error(not_tflite)
