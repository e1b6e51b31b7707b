"""The two MLPerf Tiny int8 reference models (``tests/data/mlperf_tiny``) imported from .tflite:
bit-exact with LiteRT's reference kernels, arena beside TFLite Micro's figures, flash = the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edgeflow.runtime as rt
from tests.runtime_helpers import litert_run

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tflite")

MODELS = Path(__file__).resolve().parent / "data" / "mlperf_tiny"
# REFERENCE.md §2: int8 weights, int32 constants (biases + the reshape target), greedy arena
FIGURES = {"ad01_int8.tflite": (264_192, 1_672, 0.8), "kws_ref_model.tflite": (22_016, 590, 15.6)}  # arena KiB


def _model(name: str) -> Path:
    path = MODELS / name
    return path


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_bit_exact_with_litert_reference_kernels(name):
    path = _model(name)
    prog = rt.load(path)
    assert prog.rounding == "tflm"
    gi = prog.inputs[0]
    x = np.random.default_rng(17).integers(-128, 128, (100,) + tuple(gi.shape[1:])).astype(gi.dtype)
    ours = prog.run(x)[0]
    ref = litert_run(path, x)
    assert ours.dtype == ref.dtype == np.int8 and ours.shape == ref.shape
    assert int((ours != ref).sum()) == 0


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_arena_flash_and_constants_beside_the_reference(name):
    path = _model(name)
    prog = rt.load(path)
    weights, int32_consts, arena_ref = FIGURES[name]
    nodes = [n for n in prog.ir.nodes if n.kind in ("conv", "fully_connected")]
    assert sum(n.params["weight"].size for n in nodes) == weights
    biases = sum(n.params["bias"].size for n in nodes)
    reshape_targets = 2 if name.startswith("kws") else 0  # the RESHAPE's int32 shape tensor
    assert biases + reshape_targets == int32_consts
    arena = prog.plan_memory().arena_bytes
    # the table rounds to 0.1 KiB: ad01 768 B = 0.75 -> "0.8 KiB"; kws 16,000 B = 15.625 -> "15.6 KiB"
    assert arena == {"ad01_int8.tflite": 768, "kws_ref_model.tflite": 16_000}[name]
    assert round(arena / 1024 + 1e-9, 1) == arena_ref
    prof = prog.profile("cortex_m4")
    assert prof.flash_bytes == path.stat().st_size
    assert prof.peak_ram_bytes == arena


def test_profile_cli_and_dataset_agreement_with_litert(capsys):
    from tasks.profile_app import main

    path = _model("kws_ref_model.tflite")
    main([str(path), "hardware=cortex_m4"])
    out = capsys.readouterr().out
    assert "rounding=tflm" in out and "cortex_m4" in out and f"flash {path.stat().st_size:,} B" in out
    assert "peak RAM (arena) 16,000 B" in out
    # a float NCHW dataset is quantized with the file's input parameters and transposed to NHWC;
    # labels are LiteRT's own top-1, so accuracy and agreement are both exact
    prog = rt.load(path)
    x = np.random.default_rng(3).normal(0, 20, (40, 1, 49, 10)).astype(np.float32)
    from edgeflow.runtime.profiler import litert_reference, model_input

    ref = litert_reference(path)(model_input(prog, x, "tflm"))
    prof = prog.profile("cortex_m4", (x, ref.argmax(-1)))
    assert prof.accuracy == {"test_acc": 100.0}
    assert prof.agreement["agreement"] == 100.0 and prof.agreement["top1_agreement"] == 100.0
