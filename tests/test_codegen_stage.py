"""Stage ``codegen``, the ``edgeflow-codegen`` CLI and their errors: an unsupported op is one line naming
op and node before any file is written; a missing toolchain names ``make arm-toolchain``."""

from __future__ import annotations

import logging
import shutil
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgeflow.codegen import build
from edgeflow.core.errors import ConfigError
from tasks import codegen_app
from tests.codegen_helpers import HAVE_ARM, digits_test_split
from tests.runtime_helpers import f32, i8, save, vi, zoo_qdq_export, zoo_quantized

torch = pytest.importorskip("torch")


def _pad_model(tmp_path):
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("Pad", ["q", "pads", "z"], ["t"], mode="reflect", name="border"),
             helper.make_node("DequantizeLinear", ["t", "s", "z"], ["y"], name="dequant")]
    return save(nodes, [vi("x", TensorProto.FLOAT, [1, 2, 4, 4])], [vi("y", TensorProto.FLOAT, None)],
                {"s": f32(0.05), "z": i8(3), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=np.int64)},
                tmp_path / "pad.onnx")


def _no_arm(monkeypatch):
    real = shutil.which
    monkeypatch.setattr(build.shutil, "which", lambda t: None if t.startswith(("arm-", "qemu")) else real(t))


def test_unsupported_op_is_one_line_naming_op_and_node_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        codegen_app.main([str(_pad_model(tmp_path)), "-o", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err.count("\n") == 1 and "unsupported op pad (node 'border')" in err, err
    assert not out.exists()


def test_missing_toolchain_names_make_arm_toolchain(tmp_path, capsys, monkeypatch):
    _no_arm(monkeypatch)
    with pytest.raises(SystemExit) as info:
        codegen_app.main([str(_pad_model(tmp_path)), "-o", str(tmp_path / "o"), "--arm", "require"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and "make arm-toolchain" in err and "arm-none-eabi-gcc" in err and err.count("\n") == 1
    with pytest.raises(build.ToolchainMissing, match="make arm-toolchain"):
        build.build_arm(tmp_path)


def test_cli_checks_a_fixed_batch_model_sample_by_sample(tmp_path, capsys):
    """Quantize -> Transpose -> Dequantize with batch 1 declared: 3 samples, each bit-equal."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("Transpose", ["q"], ["t"], perm=[0, 2, 3, 1], name="to_nhwc"),
             helper.make_node("DequantizeLinear", ["t", "s", "z"], ["y"], name="dequant")]
    path = save(nodes, [vi("x", TensorProto.FLOAT, [1, 2, 3, 4])], [vi("y", TensorProto.FLOAT, None)],
                {"s": f32(0.05), "z": i8(3)}, tmp_path / "t.onnx")
    codegen_app.main([str(path), "-o", str(tmp_path / "c"), "--samples", "3", "--arm", "off"])
    out = capsys.readouterr().out
    assert "host: 100.00% of 3 samples bit-equal to the runtime (tflm)" in out
    assert "ef_transpose(" in (tmp_path / "c" / "model.c").read_text()


def test_cli_bad_arguments_exit_2(tmp_path, capsys):
    for argv in (["missing.onnx", "-o", "x"], [str(_pad_model(tmp_path)), "-o", "x", "--samples", "0"],
                 [str(_pad_model(tmp_path)), "-o", "x", "--dataset", "nope"]):
        with pytest.raises(SystemExit) as info:
            codegen_app.main(argv)
        assert info.value.code == 2
        assert capsys.readouterr().err.startswith("edgeflow-codegen: bad argument: ")


def test_config_errors_name_the_key():
    from edgeflow.stages.codegen import Config

    for key, value in (("split", "train"), ("max_samples", -1), ("qemu_samples", 1.5), ("project", "../x"),
                       ("arm", "yes")):
        with pytest.raises(ConfigError, match=f"^{key}: "):
            Config(kind="codegen", **{key: value})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("codegen_stage")
    model = zoo_quantized("cnn")
    return model, zoo_qdq_export("cnn", folder, model)


def _ctx(tmp_path, x):
    from edgeflow.hardware import load

    y = torch.zeros(len(x), dtype=torch.int64)
    data = SimpleNamespace(test_dataloader=lambda: [(torch.from_numpy(x[i:i + 16]), y[i:i + 16])
                                                    for i in range(0, len(x), 16)])
    return SimpleNamespace(data=data, out_dir=tmp_path, hardware=load("cortex_m4"))


def test_stage_writes_the_zipped_project_and_logs_agreement_sizes_instructions(tmp_path, exported):
    from edgeflow.stages import codegen as stage
    from edgeflow.state import State

    model, path = exported
    state = State.of(model, (1, 8, 8), 10).with_artifact("onnx", path)
    res = stage.run(stage.Config(kind="codegen", max_samples=40, qemu_samples=2), state, _ctx(tmp_path, digits_test_split()))
    m = res.metrics
    assert m["host_agreement"] == 1.0 and m["samples"] == 40.0 and m["fresh_export"] == 0.0
    assert m["weights_bytes"] == m["flash_bytes"] > 0 and m["model_mac_per_cycle"] == 0.45
    with zipfile.ZipFile(res.artifacts["c_project"]) as z:
        assert {"model.h", "model.c", "weights.c", "kernels.c", "main.c", "Makefile"} <= set(z.namelist())
    if HAVE_ARM:
        assert m["qemu_agreement"] == 1.0 and m["rodata_bytes"] >= m["weights_rodata_bytes"] == m["flash_bytes"]
        assert m["bss_bytes"] == m["arena_bytes"] and m["instructions"] > m["macs"] > 0
        assert m["macs_per_instruction"] == pytest.approx(m["macs"] / m["instructions"])


def test_stage_without_toolchain_runs_the_host_build_and_says_what_it_skipped(tmp_path, exported, monkeypatch,
                                                                                 caplog):
    from edgeflow.stages import codegen as stage
    from edgeflow.state import State

    _no_arm(monkeypatch)
    model, path = exported
    state = State.of(model, (1, 8, 8), 10).with_artifact("onnx", path)
    x = np.random.default_rng(5).normal(0, 1, (20, 1, 8, 8)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="edgeflow"):
        res = stage.run(stage.Config(kind="codegen"), state, _ctx(tmp_path, x))
    assert res.metrics["host_agreement"] == 1.0 and "qemu_agreement" not in res.metrics
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "make arm-toolchain" in skipped[0] and "\n" not in skipped[0]
