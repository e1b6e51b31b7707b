"""Whole zoo models, post-training quantized by onnxruntime's quantize_static (QDQ and QOperator,
per-channel and per-tensor, random weights), run on the runtime and on onnxruntime (ORT_ENABLE_ALL).
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

import edgeflow.runtime as rt
from tests.runtime_helpers import ort_run

torch = pytest.importorskip("torch")

MODELS = {  # name: (input shape, classes, batch)
    "resnet8": ((3, 32, 32), 10, 16),
    "dscnn": ((1, 49, 10), 12, 16),
    "mobilenet_v1": ((3, 96, 96), 2, 4),
    "tcn": ((1, 64), 10, 16),
}


class _Reader:
    def __init__(self, shape):
        self.it = iter([{"input": np.random.default_rng(i).normal(0, 1, (8, *shape)).astype(np.float32)} for i in range(2)])

    def get_next(self):
        return next(self.it, None)


def ptq(tmp_path, name, fmt, per_channel):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgeflow.models import build_model

    shape, classes, _ = MODELS[name]
    torch.manual_seed(0)
    model = build_model(name, shape, classes).eval()
    f = tmp_path / f"{name}.onnx"
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, *shape),), str(f), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}}, opset_version=17, dynamo=False)
        quant_pre_process(str(f), str(tmp_path / "p.onnx"), skip_symbolic_shape=True)
        q = tmp_path / f"{name}_{fmt}_{per_channel}.onnx"
        quantize_static(str(tmp_path / "p.onnx"), str(q), _Reader(shape), quant_format=getattr(QuantFormat, fmt),
                        per_channel=per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return q


@pytest.mark.parametrize("fmt", ["QDQ", "QOperator"])
@pytest.mark.parametrize("name", list(MODELS))
def test_ptq_zoo_bit_equal_to_onnxruntime(tmp_path, name, fmt):
    shape, _, batch = MODELS[name]
    path = ptq(tmp_path, name, fmt, per_channel=(name != "tcn"))
    x = np.random.default_rng(7).normal(0, 1, (batch, *shape)).astype(np.float32)
    ref = ort_run(path, {"input": x})[0]
    prog = rt.load(path)
    out = prog.run(x)[0]
    equal = float((out == ref).mean())
    assert equal >= 0.9999, f"{name} {fmt}: {equal:.6f} bit-equal"
    assert (out.argmax(1) == ref.argmax(1)).mean() == 1.0
    # tflm rounding: the logits stay within a few output LSBs of onnxruntime
    out_t = rt.load(path, rounding="tflm").run(x)[0]
    assert np.isfinite(out_t).all() and out_t.shape == ref.shape


def test_tflm_within_one_lsb_per_layer(tmp_path):
    """Each integer op in tflm mode, fed the onnx-mode input of that op, is within ±1 LSB."""
    path = ptq(tmp_path, "dscnn", "QOperator", True)
    x = np.random.default_rng(3).normal(0, 1, (8, 1, 49, 10)).astype(np.float32)
    prog = rt.load(path)
    _, env = prog.run(x, keep=True)
    worst = 0
    for op in prog.ops:
        if op.kind in ("quantize", "dequantize"):
            continue
        ref = env[op.outputs[0]]
        out = op.run([env[n] for n in op.inputs], "tflm")[0]
        worst = max(worst, int(np.abs(ref.astype(np.int64) - out.astype(np.int64)).max()))
    assert worst <= 1
