"""The ptq and qat stages check their fake-quant model against its int8 export on the integer runtime
(``runtime_top1_agreement``, ``runtime_test_acc``), and ``rounding: tflm`` makes the fake-quant forward
compute TFLite Micro's integers (digits ``cnn`` trained once per module; mnist1d-shaped ``tcn``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import edgeflow
from edgeflow.core.errors import ConfigError

FAST = ["trainer.progress_bar=false", "tracking.enabled=false"]
AGREEMENT = ("runtime_top1_agreement", "runtime_test_acc")


class FunctionalPoolNet(nn.Module):
    """A digits classifier with a functional max-pool, which the QDQ exporter refuses."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], 8, 3, padding=1)
        self.fc = nn.Linear(8 * (input_shape[1] // 2) * (input_shape[2] // 2), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.conv(x)), 2), 1))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The saved state of a digits ``cnn`` trained for 8 epochs (the checkpoint of every run below)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEFLOW_HOME", str(tmp_path_factory.mktemp("float_cnn")))
        result = edgeflow.run(edgeflow.compose(["recipe=train_float", "stages.train.max_epochs=8", "~stages.export",
                                                *FAST]))
    return result.run_dir / "state"


def pretrained(state: Path, *overrides: str) -> list[str]:
    """evaluate → ptq (→ profile) from ``state``, without the export stage."""
    return ["recipe=ptq_pretrained", f"model.checkpoint={state}", "~stages.export", "stages.profile.plots=false",
            "stages.profile.agreement=false", *FAST, *overrides]


def test_ptq_w8a8_agrees_with_the_runtime_and_profile_reuses_its_export(workdir: Path, trained: Path) -> None:
    m = edgeflow.run(edgeflow.compose(pretrained(trained))).metrics
    assert m["ptq/runtime_top1_agreement"] >= 99.5, m
    assert abs(m["ptq/test_acc"] - m["ptq/runtime_test_acc"]) <= 0.1, m
    assert m["ptq/test_acc"] > 95
    assert m["profile/fresh_export"] == 0.0  # the ptq stage's export, bound to the unchanged model
    assert m["profile/test_acc"] == m["ptq/runtime_test_acc"]


def test_qat_w4a8_in_tflm_rounding_computes_the_runtimes_integers(workdir: Path, trained: Path) -> None:
    cfg = edgeflow.compose(["recipe=qat_int8", f"model.checkpoint={trained}", "~stages.train", "~stages.analyze",
                            "~stages.analyze_int8", "~stages.export", "~stages.profile", "stages.qat.weight_bits=4",
                            "stages.qat.max_epochs=1", "stages.qat.rounding=tflm", *FAST])
    m = edgeflow.run(cfg).metrics
    assert m["qat/weight_bits"] == 4.0 and m["qat/test_acc"] > 95
    assert m["qat/runtime_top1_agreement"] == 100.0  # bit-equal logits: every prediction the same
    assert m["qat/runtime_test_acc"] == m["qat/test_acc"]


def test_agreement_false_exports_and_reports_nothing(workdir: Path, trained: Path) -> None:
    result = edgeflow.run(edgeflow.compose(pretrained(trained, "~stages.profile", "stages.ptq.agreement=false")))
    assert not any(key.endswith(AGREEMENT) for key in result.metrics)
    assert not list((result.run_dir / "ptq").glob("*.onnx"))


def test_a_model_the_exporter_refuses_skips_the_check_with_one_warning(
        workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "edgeflow")
    cfg = edgeflow.compose(["recipe=ptq_int8", "model=mlp", "~model.name", "~model.hidden",
                            "+model._target_=test_quant_agreement.FunctionalPoolNet", "stages.train.max_epochs=1",
                            "~stages.analyze", "~stages.analyze_int8", "~stages.export", "~stages.profile", *FAST])
    m = edgeflow.run(cfg).metrics
    assert "ptq/test_acc" in m and not any(key.endswith(AGREEMENT) for key in m)
    (line,) = [r.getMessage() for r in caplog.records if "runtime agreement" in r.getMessage()]
    assert line == ("stage ptq: no runtime agreement: max_pool2d: use nn.MaxPool modules "
                    "(functional max_pool not supported)")


@pytest.mark.parametrize("model, shape", [("tcn", (1, 40)), ("cnn", (1, 8, 8))])
def test_tflm_rounding_is_bit_equal_to_the_tflm_runtime(tmp_path: Path, model: str, shape: tuple[int, ...]) -> None:
    from edgeflow import runtime
    from edgeflow.export import export_model
    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model
    from edgeflow.models import build_model
    from edgeflow.runtime.profiler import model_input

    torch.manual_seed(0)
    float_model = build_model(model, shape, 10)
    x = torch.rand(256, *shape) * 2 - 0.5
    logits = {}
    for rounding in ("onnx", "tflm"):
        q = quantize_model(float_model, shape, QuantConfig(weight_bits=4, rounding=rounding))
        calibrate(q, [x[:64]])
        freeze_observers(q)
        with torch.no_grad():
            logits[rounding] = q.eval()(x).numpy()
    program = runtime.load(export_model(q, shape, tmp_path / "m.onnx"), rounding="tflm")
    deployed = program.run(model_input(program, x.numpy(), "tflm"))[0]
    assert np.array_equal(logits["tflm"], deployed)
    assert not np.array_equal(logits["onnx"], deployed)  # the default forward rounds as onnxruntime


def test_bad_options_are_one_line_errors() -> None:
    from edgeflow.config import validate
    from edgeflow.stages import ptq, qat

    with pytest.raises(ConfigError) as err:
        ptq.Config(kind="ptq", agreement_samples=-1)
    assert str(err.value) == "agreement_samples: must be an integer in [0, 10000000], got -1"
    with pytest.raises(ConfigError) as err:
        qat.Config(kind="qat", rounding="cmsis")
    assert str(err.value) == "rounding: must be one of onnx, tflm, got 'cmsis'"
    with pytest.raises(ConfigError) as err:
        validate(edgeflow.compose(["recipe=qat_int8", "stages.qat.agreement_samples=-5"]))
    assert str(err.value) == "stages.qat.agreement_samples: must be an integer in [0, 10000000], got -5"
    with pytest.raises(ConfigError) as err:
        validate(edgeflow.compose(["recipe=ptq_int8", "stages.ptq.rounding=TFLM"]))
    assert str(err.value) == "stages.ptq.rounding: must be one of onnx, tflm, got 'TFLM'"


class _PoolHead(torch.nn.Module):
    """conv → ReLU → unpadded average pool (an early-exit head's shape) → linear."""

    def __init__(self, nd: int) -> None:
        super().__init__()
        conv, pool = (torch.nn.Conv1d, torch.nn.AvgPool1d) if nd == 1 else (torch.nn.Conv2d, torch.nn.AvgPool2d)
        self.features = torch.nn.Sequential(conv(1, 6, 3, padding=1), torch.nn.ReLU(), pool(4 if nd == 1 else 2))
        self.classifier = torch.nn.Linear(6 * (10 if nd == 1 else 16), 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


@pytest.mark.parametrize("shape", [(1, 40), (1, 8, 8)])
def test_tflm_rounding_reproduces_windowed_average_pools(tmp_path: Path, shape: tuple[int, ...]) -> None:
    """An unpadded AvgPool1d / AvgPool2d in tflm rounding: the fake-quant logits equal the tflm
    runtime's (TFLite's rounded window average, rescaled with a Q31 multiplier)."""
    from edgeflow import runtime
    from edgeflow.export import export_model
    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model
    from edgeflow.runtime.profiler import model_input

    torch.manual_seed(0)
    q = quantize_model(_PoolHead(len(shape) - 1), shape, QuantConfig(rounding="tflm"))
    x = torch.rand(256, *shape) * 2 - 0.5
    calibrate(q, [x[:64]])
    freeze_observers(q)
    with torch.no_grad():
        logits = q.eval()(x).numpy()
    program = runtime.load(export_model(q, shape, tmp_path / "m.onnx"), rounding="tflm")
    assert any(op.kind == "avg_pool" for op in program.ops)
    assert np.array_equal(logits, program.run(model_input(program, x.numpy(), "tflm"))[0])
