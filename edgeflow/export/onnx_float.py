"""Float ONNX export, the dispatch between float and QDQ export, and the onnxruntime check."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn


class ExportError(RuntimeError):
    """The exported file is invalid or disagrees with the torch model."""


def export_model(model: nn.Module, input_shape: tuple[int, ...], path: Path, opset: int = 17) -> Path:
    """Write ``model`` to ``path``: QDQ ONNX if it carries quantizers, float ONNX otherwise."""
    from edgeflow.methods.quantization import is_quantized

    if is_quantized(model):
        from edgeflow.export.qdq import export_qdq

        return export_qdq(model, input_shape, path)
    return export_float(model, input_shape, path, opset)


def export_float(model: nn.Module, input_shape: tuple[int, ...], path: Path, opset: int = 17) -> Path:
    """TorchScript-based export with a dynamic batch axis, then ``onnx.checker`` on the file."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    example = torch.zeros(1, *input_shape)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
    model.train(was_training)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def check_against_torch(model: nn.Module, path: Path, x: torch.Tensor, atol: float = 1e-4) -> dict[str, float]:
    """Run ``path`` once in onnxruntime on ``x``; return max |diff| and top-1 agreement with torch.

    Raises ``ExportError`` if a float model differs by more than ``atol`` (quantized exports are
    compared by top-1 agreement only: onnxruntime rounds its integer kernels differently).
    """
    from edgeflow.export.ort import ort_session
    from edgeflow.methods.quantization import is_quantized

    session = ort_session(path)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    model.train(was_training)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy().astype(np.float32)})[0]
    max_diff = float(np.abs(got - expected).max())
    agreement = float((got.argmax(1) == expected.argmax(1)).mean() * 100)
    if not is_quantized(model) and max_diff > atol:
        raise ExportError(f"{path.name}: onnxruntime output differs from torch by {max_diff:.2e} > atol {atol}")
    return {"ort_max_abs_diff": max_diff, "ort_top1_agreement": agreement}
