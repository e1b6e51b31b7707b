"""The ptq and qat stages inside real pipeline runs (digits + zoo cnn, and mnist1d + tcn)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeflow
from edgeflow.export.ort import integer_op_types
from edgeflow.export.qdq import weight_bits_metadata
from edgeflow.methods.quantization import is_quantized, quant_summary

FAST = ["trainer.progress_bar=false", "tracking.enabled=false", "~stages.profile", "~stages.analyze"]


def onnx_weight_bytes(path: Path) -> int:
    inits = {i.name: i for i in onnx.load(str(path)).graph.initializer}
    return sum(int(np.ceil(onnx.numpy_helper.to_array(inits[k]).size * b / 8))
               for k, b in weight_bits_metadata(path).items() if k.endswith(".weight_q"))


def test_ptq_int8_recipe_on_digits(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=ptq_int8", "stages.train.max_epochs=8", "~stages.analyze_int8", *FAST])
    result = edgeflow.run(cfg)
    m = result.metrics
    assert m["ptq/acc_drop"] <= 0.5 and m["ptq/float_test_acc"] == m["evaluate/test_acc"] >= 90
    assert m["ptq/weight_bits"] == 8.0 and m["ptq/size_ratio"] == 4.0
    assert is_quantized(result.model)
    onnx_path = Path(result.artifacts["export/onnx"])
    assert {"QLinearConv", "QGemm"} <= set(integer_op_types(onnx_path))
    assert m["export/ort_top1_agreement"] >= 99.0
    assert onnx_weight_bytes(onnx_path) == m["ptq/weight_bytes"]
    layers = json.loads(Path(result.artifacts["ptq/quant_layers"]).read_text())["layers"]
    assert [r["weight_bits"] for r in layers] == [8, 8, 8]


def test_qat_mixed_recipe_on_digits_matches_analysis(workdir: Path) -> None:
    from edgeflow.hardware import analyze

    cfg = edgeflow.compose(["recipe=qat_mixed", "stages.train.max_epochs=8", "stages.qat.max_epochs=3",
                            "stages.qat.freeze_observers_epoch=2", "model.channels=[16,32,32]", *FAST])
    result = edgeflow.run(cfg)
    m = result.metrics
    assert m["qat/acc_drop"] <= 1.5
    bits = [lay.weight_quantizer.bits for lay in result.model.modules() if hasattr(lay, "weight_quantizer")]
    assert bits == [8, 4, 4, 8]  # first and last layers 8-bit, the others 4-bit
    assert m["analyze_mixed/weight_bits"] == pytest.approx(m["qat/weight_bits"])
    assert analyze(result.model, (1, 8, 8)).weight_bytes == m["qat/weight_bytes"] == \
        quant_summary(result.model)["weight_bytes"]
    onnx_path = Path(result.artifacts["export/onnx"])
    assert onnx_weight_bytes(onnx_path) == m["qat/weight_bytes"]
    assert "QLinearConv" in integer_op_types(onnx_path)


def test_qat_w4_tcn_on_mnist1d(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=qat_int8", "model=tcn", "dataset=mnist1d", "stages.train.max_epochs=20",
                            "stages.qat.weight_bits=4", "stages.qat.max_epochs=4", "~stages.analyze_int8",
                            "trainer.progress_bar=false", "tracking.enabled=false"])
    m = edgeflow.run(cfg).metrics
    assert m["qat/acc_drop"] <= 1.0, m
    # the int8 export, run on the bundled runtime, keeps the fake-quant model's accuracy
    assert abs(m["profile/test_acc"] - m["qat/test_acc"]) <= 0.3, m
    assert m["profile/agreement"] >= 99.99


def test_ptq_int8_tcn_on_mnist1d(workdir: Path) -> None:
    cfg = edgeflow.compose(["recipe=ptq_int8", "model=tcn", "dataset=mnist1d", "stages.train.max_epochs=20",
                            "~stages.analyze_int8", "trainer.progress_bar=false", "tracking.enabled=false"])
    m = edgeflow.run(cfg).metrics
    assert m["ptq/acc_drop"] <= 0.5, m
    assert abs(m["profile/test_acc"] - m["ptq/test_acc"]) <= 0.3, m
