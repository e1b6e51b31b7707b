"""The cluster stage on real data (digits): accuracy after centroid fine-tuning, the clustering and
sparsity surviving QAT and export (exact distinct-value counts on the ONNX initializers), the int8
runtime bit-equal to onnxruntime on the export, QAT → cluster, and one-line config errors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.methods import clustering as C
from edgeflow.methods.pruning import get_mask

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]
CLUSTER_ONLY = ["recipe=deep_compression", "~stages.prune", "~stages.qat", "~stages.export", "~stages.profile",
                *QUIET]


def _initializers(path: str) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}


def test_sixteen_clusters_lose_at_most_half_a_point_on_digits(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose([*CLUSTER_ONLY, "stages.cluster.bits=4", "stages.cluster.linear_bits=null",
                                       "stages.cluster.max_epochs=4"]))
    m = r.metrics
    assert m["cluster/acc_drop"] <= 0.5, m
    assert m["cluster/max_unique_weights"] <= 16 and m["cluster/unique_weights"] <= 3 * 16
    for layer in C.clustered_layers(r.model).values():
        assert C.unique_weights(layer) <= 16 and layer.codebook.shape == (1, 16)
    # float codebooks: 4-bit indices + 16 float32 centroids per layer, biases 4 bytes each
    assert m["cluster/size_ratio"] == pytest.approx(m["cluster/float32_bytes"] / m["cluster/bytes_at_rest"])
    assert m["cluster/size_ratio"] > 5 and m["cluster/flash_bytes"] == m["cluster/float32_bytes"]  # cortex_m4: dense
    assert Path(r.artifacts["cluster/layers"]).read_text().startswith("layer,weights,biases,bits")


def test_deep_compression_sparsity_and_codebooks_survive_qat_export_and_runtime(workdir: Path) -> None:
    import edgeflow.runtime as rt
    from edgeflow.export.ort import ort_session
    from edgeflow.export.qdq import codebook_metadata

    r = edgeflow.run(edgeflow.compose([
        "recipe=deep_compression", *QUIET, "stages.train.max_epochs=15", "stages.prune.max_epochs=8",
        "stages.prune.end=4", "stages.cluster.max_epochs=2", "stages.qat.max_epochs=2", "stages.profile.plots=false"]))
    m = r.metrics
    inits = _initializers(r.artifacts["export/onnx"])
    meta = codebook_metadata(r.artifacts["export/onnx"])
    layers = C.clustered_layers(r.model)
    assert set(layers) == {"features.0.0", "features.2.0", "classifier"}
    for name, layer in layers.items():
        k = 16 if name == "classifier" else 32                                # linear_bits 4, bits 5
        q = inits[f"{name}.weight_q"]
        codes, _ = layer.weight_quantizer.quantize_int(layer.weight.detach(), get_mask(layer))
        assert np.array_equal(q, codes.numpy().astype(np.int8))              # the export carries them exactly
        assert len(np.unique(q)) == len(torch.unique(codes)) <= k             # at most k per layer
        mask = get_mask(layer).numpy()
        assert (q[mask == 0] == 0).all()                                      # sparsity survives
        assert meta[f"{name}.weight_q"] == {"clusters": k, "index_bits": k.bit_length() - 1, "scope": "layer"}
    assert m["qat/test_acc"] == pytest.approx(m["profile/test_acc"])
    assert m["profile/agreement"] == 100.0 and m["profile/max_lsb_diff"] == 0.0
    x = np.random.default_rng(0).normal(size=(64, 1, 8, 8)).astype(np.float32)
    sess = ort_session(r.artifacts["export/onnx"])
    program = rt.load(r.artifacts["export/onnx"], rounding="onnx")
    theirs = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert np.array_equal(program.run(x)[0], theirs)                        # bit-equal to onnxruntime
    # the profile of the int8 file tells the same size at rest as the model-side report
    _, totals = C.compression_report(r.model, (1, 8, 8))
    assert m["profile/bytes_at_rest"] == totals["bytes_at_rest"]
    assert m["profile/size_ratio"] == pytest.approx(totals["size_ratio"])
    assert {n.name: n.attrs["codebook_bits"] for n in program.ir.nodes if "codebook_bits" in n.attrs} == {
        "Conv:features.0.0.out": 5, "Conv:features.2.0.out": 5, "Gemm:classifier.out": 4}   # from the metadata
    # a target that executes codebook formats runs them; one that executes Huffman pays its decoding
    from edgeflow.hardware import load
    from edgeflow.hardware.schema import SPARSE_FORMATS

    base = dict(vars(load("generic_45nm").cfg))
    eie = program.profile(hardware=load(base))
    assert {lp.storage_format for lp in eie.layers if lp.weights} <= {"dense", "indexed", "sparse_indexed", "csr", "nm"}
    assert eie.flash_bytes < m["profile/flash_bytes"]                       # vs cortex_m4: dense only
    free = program.profile(hardware=load({**base, "sparse_formats": list(SPARSE_FORMATS), "huffman_decode_cycles": 0}))
    paid = program.profile(hardware=load({**base, "sparse_formats": list(SPARSE_FORMATS)}))
    decoded = [(f, p) for f, p in zip(free.layers, paid.layers) if p.storage_format == "huffman"]
    assert decoded
    for f, p in decoded:
        nnz = round(p.weights * (1 - p.sparsity))
        assert p.compute_cycles - f.compute_cycles == pytest.approx(nnz * base["huffman_decode_cycles"])
    assert paid.bytes_at_rest == eie.bytes_at_rest == m["profile/bytes_at_rest"]


def test_qat_then_cluster_keeps_at_most_k_int8_values(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose([
        "recipe=qat_int8", *QUIET, "stages.train.max_epochs=10", "stages.qat.max_epochs=2",
        "stages.qat.per_channel=false", "~stages.analyze", "~stages.analyze_int8", "~stages.profile",
        "+stage@stages.cluster=cluster", "stages.cluster.bits=3", "stages.cluster.max_epochs=2",
        "stages.cluster.scope=channel"]))
    m = r.metrics
    assert m["cluster/max_unique_weights"] <= 8
    for name, layer in C.clustered_layers(r.model).items():
        codes, _ = layer.weight_quantizer.quantize_int(layer.weight.detach(), None)
        assert max(len(torch.unique(row)) for row in codes.reshape(codes.shape[0], -1)) <= 8


def test_cluster_then_ptq_snaps_each_codebook_to_at_most_k_int8_values(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose([
        *CLUSTER_ONLY, "stages.train.max_epochs=10", "stages.cluster.bits=3", "stages.cluster.linear_bits=null",
        "stages.cluster.max_epochs=1", "+stage@stages.ptq=ptq", "stages.ptq.per_channel=false"]))
    assert r.metrics["ptq/acc_drop"] <= r.metrics["cluster/acc_drop"] + 1.0
    for layer in C.clustered_layers(r.model).values():
        codes, _ = layer.weight_quantizer.quantize_int(layer.weight.detach(), None)
        assert len(torch.unique(codes)) <= 8                                # one int8 codebook per layer


@pytest.mark.parametrize("override, message", [
    ("stages.cluster.clusters=1", "stages.cluster.clusters: must be an integer in [2, 256] or null, got 1"),
    ("stages.cluster.clusters=300", "stages.cluster.clusters: must be an integer in [2, 256] or null, got 300"),
    ("stages.cluster.bits=9", "stages.cluster.bits: must be an integer in [1, 8] (2 to 256 clusters), got 9"),
    ("stages.cluster.init=kmeans", "stages.cluster.init: must be one of linear, density, random, kmeans++, "
                                   "got 'kmeans'"),
    ("stages.cluster.bits=8", "stages.cluster.bits: 256 clusters exceed the 144 weights per layer 'features.0.0'; "
                              "use fewer clusters or exclude it"),
    ("stages.cluster.exclude=[classifer]", "stages.cluster.exclude: pattern 'classifer' matches no Conv/Linear "
                                           "layer; did you mean 'classifier'?"),
])
def test_bad_input_is_one_config_error_before_training(workdir: Path, override: str, message: str) -> None:
    cfg = edgeflow.compose(["recipe=deep_compression", *QUIET, override])
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        edgeflow.run(cfg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert time.perf_counter() - start < 10  # refused before the 30-epoch training
