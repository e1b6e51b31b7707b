"""Stages compose through the model: prune → QAT → export keeps the sparsity, and the runtime runs it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

import edgeflow
from edgeflow.methods.pruning import global_sparsity

FAST = ["trainer.progress_bar=false", "tracking.enabled=false"]


def test_prune_qat_export_profile_keeps_sparsity(workdir: Path) -> None:
    result = edgeflow.run(edgeflow.compose(["recipe=prune_agp", *FAST]))  # the recipe as users run it
    m = result.metrics
    pruned = m["prune/sparsity"]
    assert pruned >= 0.79

    # the masks live in the quantized model: its weights are as sparse as after pruning
    assert abs(global_sparsity(result.model) - pruned) <= 0.001

    # ... and so are the int8 weights in the exported file (masked positions stay exactly zero;
    # int8 rounding may add a few zeros of its own, hence the one-sided tolerance)
    proto = onnx.load(result.artifacts["export/onnx"])
    weights = [numpy_helper.to_array(t) for t in proto.graph.initializer if t.name.endswith("weight_q")]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights)
    assert pruned - 0.001 <= zeros <= pruned + 0.01, (zeros, pruned)

    # the int8 runtime ran the pruned, quantized export, bit-equal to onnxruntime
    assert m["profile/agreement"] >= 99.99
    assert m["profile/top1_agreement"] == 100.0
    assert abs(m["profile/test_acc"] - m["qat/test_acc"]) <= 0.3
    assert m["evaluate/test_acc"] - m["qat/test_acc"] <= 1.0
