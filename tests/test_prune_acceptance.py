"""Issue 6 acceptance on real data (mnist1d `tcn`) and on `resnet8` with its residual adds (synthetic).

* AGP to 80 % unstructured sparsity on tcn: test-accuracy drop <= 1 point vs the float model.
* Structured 50 % channel pruning on tcn and resnet8: >= 40 % fewer params and MACs in the exported
  ONNX (counted from the file itself and with ``edgeflow.hardware.analyze``), drop <= 2 points.

Settings (found by a seed sweep, see the figures in the test bodies' comments): the first conv of
tcn (120 weights, 1 input channel) and the resnet8 stem are left dense via ``exclude``; the measured
sparsity over *all* prunable weights still has to reach the target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import edgeflow
from edgeflow.methods import pruning as P

FAST = ["trainer.progress_bar=false", "tracking.enabled=false", "trainer.num_threads=1", "seed=0"]
TCN = ["model=tcn", "dataset=mnist1d", "stages.train.max_epochs=30", "stages.train.lr=0.01"]


def _onnx_cost(path: str | Path) -> tuple[int, int]:
    """(parameters, MACs) of an ONNX file: elements of every initializer, and the MACs of every
    Conv (out elements x in_channels/groups x kernel taps) and Gemm/MatMul (M x N x K), batch 1."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    inits = {t.name: tuple(t.dims) for t in g.initializer}
    params = sum(int(np.prod(d)) for d in inits.values())
    shapes: dict[str, tuple[int, ...]] = dict(inits)
    for vi in [*g.input, *g.value_info, *g.output]:
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else 1
                                for d in vi.type.tensor_type.shape.dim)
    macs = 0
    for node in g.node:
        if node.op_type == "Conv":
            w = shapes[node.input[1]]            # [O, I/groups, *kernel]
            out = shapes[node.output[0]]         # [1, O, *spatial]
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul"):
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            trans_b = any(at.name == "transB" and at.i for at in node.attribute)
            n = b[0] if trans_b else b[-1]
            macs += int(np.prod(a)) * n
    return params, macs


def _dense_onnx(name: str, shape: tuple[int, ...], classes: int, path: Path) -> Path:
    from edgeflow.export import export_float
    from edgeflow.models import build_model

    import torch

    model = build_model(name, shape, classes).eval()
    gen = torch.Generator().manual_seed(0)
    for mod in model.modules():  # distinct BN statistics: the exporter dedups identical folded biases
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=gen))
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=gen))
    return export_float(model, shape, path)


def _check_structured(r: edgeflow.RunResult, name: str, shape: tuple[int, ...], workdir: Path) -> dict:
    """The thinned model and its ONNX export: >= 40 % fewer params and MACs; returns the figures."""
    from edgeflow.hardware import analyze
    from edgeflow.models import build_model

    m = r.metrics
    dense_p, dense_m = _onnx_cost(_dense_onnx(name, shape, 10, workdir / "dense.onnx"))
    thin_p, thin_m = _onnx_cost(r.artifacts["export/onnx"])
    before = analyze(build_model(name, shape, 10), shape)
    after = analyze(r.model, shape)
    figures = dict(onnx_params=(dense_p, thin_p), onnx_macs=(dense_m, thin_m),
                   params=(before.params, after.params), macs=(before.macs, after.macs))
    assert thin_p <= 0.6 * dense_p and thin_m <= 0.6 * dense_m, figures
    assert after.params <= 0.6 * before.params and after.macs <= 0.6 * before.macs, figures
    # the ONNX file and the module tree agree exactly (BatchNorm folded into the convs)
    assert (thin_p, thin_m) == (after.params, after.macs), figures
    assert (dense_p, dense_m) == (before.params, before.macs), figures
    assert m["prune/params"] == after.params and m["prune/macs"] == after.macs
    assert m["prune/acc_drop"] <= 2.0, m
    return figures


def test_tcn_agp_to_80_percent_drops_at_most_one_point(workdir: Path) -> None:
    # measured drops, seeds 0/1/2/3/5/7: 0.1 / 0.3 / 0.1 / 0.5 / -0.2 / 0.6 (sparsity 0.809 overall)
    cfg = edgeflow.compose([*FAST, "recipe=prune_agp", *TCN, "~stages.qat", "~stages.export",
                            "~stages.profile", "stages.prune.schedule=agp", "stages.prune.scope=global",
                            "stages.prune.exclude=[features.0.0]", "stages.prune.target_sparsity=0.82",
                            "stages.prune.begin=0", "stages.prune.end=8", "stages.prune.max_epochs=40",
                            "stages.prune.lr=0.01"])
    r = edgeflow.run(cfg)
    m = r.metrics
    assert m["evaluate/test_acc"] >= 97.5, m  # a well-trained float model is the reference
    # measured over ALL prunable weights (the excluded first conv counts as dense)
    layers = P.prunable_layers(r.model)
    total = sum(mod.weight.numel() for mod in layers.values())
    zeros = sum(int((mod.weight == 0).sum()) for mod in layers.values())
    assert zeros / total >= 0.79 and m["prune/sparsity"] >= 0.79, (zeros / total, m)
    assert m["prune/sparsity"] == pytest.approx(zeros / total, abs=1e-6)
    assert m["prune/acc_drop"] <= 1.0, m
    assert m["prune/acc_drop"] == pytest.approx(m["evaluate/test_acc"] - m["prune/test_acc"])


def test_tcn_structured_half_channels(workdir: Path) -> None:
    # measured drops, seeds 0/1/2/3/4/5/7: 0.5 / 0.2 / 1.1 / 1.2 / 0.4 / -0.2 / 0.3; ONNX 9106 -> 3190
    # params, 350,640 -> 120,120 MACs
    cfg = edgeflow.compose([*FAST, "recipe=prune_structured", *TCN, "stages.prune.target_sparsity=0.5",
                            "stages.prune.exclude=[features.0.0]", "stages.prune.max_epochs=25",
                            "stages.prune.lr=0.01"])
    r = edgeflow.run(cfg)
    assert r.metrics["evaluate/test_acc"] >= 97.5, r.metrics
    _check_structured(r, "tcn", (1, 40), workdir)


def test_resnet8_structured_half_channels_through_residual_adds(workdir: Path) -> None:
    # noise 2 makes the task non-trivial (float 96-98 %, not 100 %); measured drops, seeds 0/1/2/3:
    # 0.7 / 1.0 / 0.9 / -0.9; ONNX 77,706 -> 22,450 params, 12.50 M -> 4.96 M MACs
    cfg = edgeflow.compose([*FAST, "recipe=prune_structured", "model=resnet8", "dataset=synthetic",
                            "dataset.input_shape=[3,32,32]", "dataset.num_classes=10",
                            "dataset.noise=2.0", "dataset.n_train=512", "dataset.n_test=1000",
                            "stages.train.max_epochs=10", "stages.prune.target_sparsity=0.5",
                            "stages.prune.exclude=[stem.0]", "stages.prune.max_epochs=15",
                            "stages.prune.lr=0.01"])
    r = edgeflow.run(cfg)
    assert r.metrics["evaluate/test_acc"] >= 90.0, r.metrics
    _check_structured(r, "resnet8", (3, 32, 32), workdir)
    # the residual adds are still in the graph, with both operands thinned alike
    g = onnx.load(r.artifacts["export/onnx"]).graph
    assert sum(n.op_type == "Add" for n in g.node) >= 3
    convs = dict(r.model.named_modules())
    assert convs["stack2.conv2.0"].out_channels == convs["stack2.shortcut"].out_channels < 32
    assert convs["stack3.conv2.0"].out_channels == convs["stack3.shortcut"].out_channels < 64
