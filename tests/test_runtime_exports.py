"""edgeflow's own QDQ exports of the zoo run bit-equal in the int8 runtime and in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeflow.runtime as rt
from edgeflow.export.ort import ort_session
from tests.runtime_helpers import ZOO, zoo_qdq_export


@pytest.mark.parametrize("name", list(ZOO))
def test_ptq_export_bit_equal_to_onnxruntime(tmp_path: Path, name: str) -> None:
    shape, _ = ZOO[name]
    path = zoo_qdq_export(name, tmp_path)

    x = np.random.default_rng(1).normal(0, 1, (32, *shape)).astype(np.float32)
    session = ort_session(path)
    expected = session.run(None, {session.get_inputs()[0].name: x})[0]
    got = rt.load(path).run(x)[0]
    assert np.mean(got == expected) >= 0.9999, f"{name}: {np.mean(got == expected):.6f} bit-equal"
    assert (got.argmax(1) == expected.argmax(1)).all()
