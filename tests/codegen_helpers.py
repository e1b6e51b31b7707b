"""Helpers for the codegen tests: zoo models exported int8, lowered in tflm rounding, built once."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import edgeflow.runtime as rt
from edgeflow.codegen import build, generate
from tests.runtime_helpers import ZOO, zoo_qdq_export

ARM_SKIP = ("ARM toolchain or QEMU missing (" + ", ".join(build.missing(build.ARM_TOOLS + build.QEMU_TOOLS))
            + "): run `make arm-toolchain`")
HAVE_ARM = not build.missing(build.ARM_TOOLS + build.QEMU_TOOLS)


def digits_test_split() -> np.ndarray:
    """The quickstart dataset's test split (scikit-learn digits, x/16 as 1x8x8), without Lightning."""
    from edgeflow.data.schemas import DigitsConfig
    from edgeflow.data.sources import load_digits

    return load_digits(DigitsConfig())["test"].x.astype(np.float32)


def random_inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, *ZOO[name][0])).astype(np.float32)


_EXPORTS: dict[str, Path] = {}


def zoo_export(name: str, folder: Path) -> Path:
    """Zoo model ``name`` exported int8 (``zoo_qdq_export``, seeded: the same file every time), once per
    test session: the first caller's ``folder`` holds it, later callers reuse it."""
    path = _EXPORTS.get(name)
    if path is None or not path.exists():
        path = _EXPORTS[name] = zoo_qdq_export(name, folder)
    return path


def project(name: str, folder: Path):
    """(program, CModel, project folder) of zoo model ``name``, exported int8 (once per session) and
    generated into ``folder``."""
    program = rt.load(zoo_export(name, folder), rounding="tflm")
    out = folder / f"c_{name}"
    return program, generate(program, out), out


def zoo_export_bits(name: str, folder: Path, weight_bits: int) -> Path:
    """Zoo model ``name`` as ``zoo_qdq_export`` builds it (seeded weights, random BN statistics) but
    quantized W<weight_bits>A8; exported into ``folder``."""
    import torch

    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model
    from edgeflow.models import build_model

    shape, classes = ZOO[name]
    torch.manual_seed(0)
    model = build_model(name, shape, classes).eval()
    for module in model.modules():  # as zoo_quantized: non-trivial BN statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    quantized = quantize_model(model, shape, QuantConfig(weight_bits=weight_bits))
    calibrate(quantized, [(torch.randn(16, *shape), None) for _ in range(4)], 4)
    freeze_observers(quantized)
    return zoo_qdq_export(name, folder, quantized)


def quantized_export(net, shape: tuple[int, ...], weight_bits: int, path: Path) -> Path:
    """``net`` (its weights as given: seed them) quantized by edgeflow at ``weight_bits`` (W<bits>A8),
    calibrated on seeded random data, observers frozen, exported as QDQ ONNX to ``path``."""
    import torch

    from edgeflow.export.qdq import export_qdq
    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model

    torch.manual_seed(0)
    quantized = quantize_model(net.eval(), shape, QuantConfig(weight_bits=weight_bits))
    calibrate(quantized, [(torch.randn(16, *shape), None) for _ in range(4)], 4)
    freeze_observers(quantized)
    return export_qdq(quantized, shape, path)


def runtime_io(program, model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from edgeflow.codegen.verify import runtime_io as io

    return io(program, model, x)
