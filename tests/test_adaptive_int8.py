"""Int8 deployment of early-exit and variable-width systems (``stages.adaptive.quantize``): the parts
exported with their policy, run on the int8 runtime with decisions agreeing with the fake-quant
PyTorch system, the expected cost equal to the share-weighted sum of the parts' runtime costs, a
sample leaving at an exit charged only for what it ran, int8 tensors at the boundaries between
segments and heads, the systems reloaded from the saved state; one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.pipeline import prepare
from edgeflow.state import State

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false", "cache.enabled=false"]


def _expected(m: dict[str, float], order: list[str], adds: list[float], cost: str = "energy_uj") -> float:
    """Σ_k share_k · (what paths 0..k cost together), from the profile's metrics."""
    return sum(m[f"profile/adaptive/share_{n}"] * c for n, c in zip(order, np.cumsum(adds)))


def test_early_exit_int8_tcn_mnist1d(workdir: Path) -> None:
    import onnx

    from edgeflow.methods.adaptive import calibrate as cal
    from edgeflow.stages._adaptive_deploy import _load, _runtime_outputs, run_policy

    from edgeflow.hardware import load as load_hw
    from edgeflow.pipeline import run as run_pipeline

    cfg = edgeflow.compose(["recipe=early_exit_int8", *QUIET, "model.channels=[8,8,8,8]", "dataset.subset=0.2",
                            "stages.train.max_epochs=4", "stages.train.lr=0.02", "stages.adaptive.max_epochs=1",
                            "stages.adaptive.lr=0.01"])
    prepared = prepare(cfg)
    r = run_pipeline(cfg, prepared)
    m = r.metrics
    folder = r.run_dir / "export" / "adaptive"
    policy = json.loads((folder / "policy.json").read_text())
    assert policy["order"] == ["exit1", "final"] and policy["files"] == ["segment1.onnx", "exit1.onnx", "segment2.onnx"]
    assert policy["chain"] == [{"path": "exit1", "segment": "segment1.onnx", "head": "exit1.onnx"},
                               {"path": "final", "segment": "segment2.onnx", "head": None}]
    boundary = policy["boundaries"]["segment1.onnx"]
    assert boundary["dtype"] == "int8" and boundary["shape"] == [8, 40]
    assert boundary["zero_point"] == -128                                  # after a ReLU: the range starts at 0
    assert boundary["read_by"] == ["exit1.onnx", "segment2.onnx"]
    assert policy["thresholds"] == pytest.approx([m["adaptive/theta"]]) and policy["measure"] == "score_margin"
    int8 = onnx.TensorProto.INT8
    assert onnx.load(str(folder / "segment1.onnx")).graph.output[0].type.tensor_type.elem_type == int8
    for reader in ("exit1.onnx", "segment2.onnx"):
        assert onnx.load(str(folder / reader)).graph.input[0].type.tensor_type.elem_type == int8
    # the integer system decides as the fake-quant one (measured 100 % of 200; exit 1 serves 36 %)
    assert 0.1 < m["profile/adaptive/share_exit1"] < 0.9 and 0.1 < m["adaptive/share_exit1"] < 0.9
    assert m["profile/adaptive/decision_agreement"] >= 99.0
    assert abs(m["profile/adaptive/test_acc"] - m["adaptive/test_acc"]) <= 1.0
    seg1, head1, seg2 = (m[f"profile/adaptive/{p}/energy_uj"] for p in ("segment1", "exit1", "segment2"))
    assert m["profile/adaptive/big_energy_uj"] == pytest.approx(seg1 + seg2, rel=1e-12)   # the backbone, no head
    assert m["profile/energy_uj"] == pytest.approx(seg1 + seg2, rel=1e-9)                 # = the pipeline's model
    assert m["profile/adaptive/expected_energy_uj"] == pytest.approx(
        _expected(m, policy["order"], [seg1 + head1, seg2]), rel=1e-12)
    # the device's run: a sample leaving at exit 1 pays for segment 1 and head 1 only
    _, programs = _load(folder, "onnx")
    parts = {f: p.profile(hardware=load_hw("cortex_m4")).metrics() for f, p in programs.items()}
    x, _ = next(iter(prepared.datamodule.test_dataloader()))
    conf, pred, _ = _runtime_outputs(programs, policy, [(x, torch.zeros(len(x)))])
    theta = float(np.median(conf[0]))                  # about half the batch leaves at exit 1
    answer, served, charged = run_policy(programs, policy, x.numpy(), theta, parts)
    assert 0 < np.count_nonzero(served == 0) < len(served)
    assert set(charged["energy_uj"][served == 0]) == {seg1 + head1}
    assert set(charged["energy_uj"][served == 1]) == {seg1 + head1 + seg2}
    assert served.tolist() == cal.served_path(conf, theta).tolist()
    assert answer.tolist() == pred[served, np.arange(len(x))].tolist()
    # the int8 system reloads from the saved state
    loaded = State.load(r.run_dir / "state")
    with torch.no_grad():
        assert torch.equal(loaded.models["adaptive"].eval()(x), r.state.models["adaptive"].eval()(x))
        assert torch.equal(loaded.model.eval()(x), r.state.model.eval()(x))


def test_variable_width_int8_cnn_digits(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = edgeflow.run(edgeflow.compose(["recipe=variable_width_int8", *QUIET, "stages.train.max_epochs=3",
                                       "stages.adaptive.max_epochs=1"]))
    m = r.metrics
    folder = r.run_dir / "export" / "adaptive"
    policy = json.loads((folder / "policy.json").read_text())
    assert policy["system"] == "variable_width" and policy["order"] == ["w25", "w50", "w100"]
    assert policy["files"] == ["w25.onnx", "w50.onnx", "w100.onnx"] and "chain" not in policy
    assert policy["thresholds"] == pytest.approx([m["adaptive/theta"]] * 2)
    x, _ = next(iter(prepare(edgeflow.compose(["recipe=variable_width_int8", *QUIET])).datamodule.test_dataloader()))
    loaded = State.load(r.run_dir / "state")              # one int8 plain model per width, reloaded
    from edgeflow.methods.quantization import is_quantized

    assert [is_quantized(p) for p in loaded.models["adaptive"].parts] == [True] * 3
    with torch.no_grad():
        assert torch.equal(loaded.models["adaptive"].eval()(x), r.state.models["adaptive"].eval()(x))
    assert m["adaptive/params"] == 5250 and m["adaptive/static_params"] == 438 + 1442 + 5178
    assert m["profile/adaptive/decision_agreement"] >= 99.0     # measured 100 % of 359 (w50 48 %, w100 52 %)
    widths = [m[f"profile/adaptive/{n}/energy_uj"] for n in policy["order"]]
    assert widths[0] < widths[1] < widths[2] == m["profile/energy_uj"]          # the pipeline's model: the widest
    assert m["profile/adaptive/expected_energy_uj"] == pytest.approx(_expected(m, policy["order"], widths), rel=1e-12)
    assert m["profile/adaptive/energy_ratio"] < 1.0
    from tasks.profile_app import main as edgeflow_profile

    edgeflow_profile([str(folder), "hardware=cortex_m4", "dataset=digits"])
    printed = capsys.readouterr().out
    assert printed.startswith("w25: ") and "w100: 83,264 MACs, flash 5,776 B" in printed
    assert f"on 359 samples, served by w25 " in printed


@pytest.mark.parametrize("name, shape, exits, files", [
    ("tcn", (1, 40), [0.25, 0.75], ["segment1.onnx", "exit1.onnx", "segment2.onnx", "exit2.onnx", "segment3.onnx"]),
    ("mlp", (1, 8, 8), [0.5], ["segment1.onnx", "exit1.onnx", "segment2.onnx"]),     # a bare Linear head
])
def test_chain_parts_hand_on_the_same_int8_integers(tmp_path: Path, name: str, shape: tuple[int, ...],
                                                    exits: list, files: list[str]) -> None:
    from edgeflow.methods.adaptive import EarlyExit
    from edgeflow.methods.adaptive.int8 import quantize_chain
    from edgeflow.methods.quantization import QuantConfig
    from edgeflow.models import build_model
    from edgeflow.stages._adaptive_deploy import _load, _logits, export_adaptive

    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    calib = [2 * torch.randn(32, *shape) for _ in range(4)]
    system = quantize_chain(EarlyExit.from_model(model, exits, 10, shape).eval(), shape, QuantConfig(rounding="tflm"),
                            calib)   # tflm: the fake-quant forward computes the runtime's integers
    _, metrics = export_adaptive(State.of(model, shape, 10).with_model(system, "adaptive"), tmp_path, 17)
    policy, programs = _load(tmp_path / "adaptive", "tflm")
    assert policy["files"] == files and metrics == {"adaptive_parts": float(len(files))}
    x = 2 * torch.randn(256, *shape, generator=torch.Generator().manual_seed(1))
    h, carry = x, x.numpy()
    with torch.no_grad():
        for k, seg in enumerate(system.segments[:-1]):   # every boundary: the fake-quant integers, as int8
            h = seg(h)
            carry = programs[f"segment{k + 1}.onnx"].run(carry)[0]
            b = policy["boundaries"][f"segment{k + 1}.onnx"]
            assert carry.dtype == np.int8 and list(carry.shape[1:]) == b["shape"]
            assert np.array_equal(carry, (torch.round(h / b["scale"]) + b["zero_point"]).numpy())
        want = [lg.numpy() for lg in system.path_logits(x)]
    got = _logits(programs, policy, x.numpy())
    assert np.array_equal(want[-1], got[-1])        # the final path: segments only, bit-equal
    from edgeflow.export.ort import ort_session     # the int8-boundary files are plain ONNX: onnxruntime runs them

    session = ort_session(tmp_path / "adaptive" / "segment2.onnx")
    first = programs["segment1.onnx"].run(x.numpy())[0]
    assert np.array_equal(session.run(None, {session.get_inputs()[0].name: first})[0],
                          programs["segment2.onnx"].run(first, rounding="onnx")[0])   # onnxruntime's rounding
    for a, b in zip(want, got):    # exit heads (average pools): measured 256 of 256 answers equal
        assert np.count_nonzero(a.argmax(1) == b.argmax(1)) >= 250


def test_int8_heads_need_equal_pooling_windows() -> None:
    from edgeflow.methods.adaptive import EarlyExit
    from edgeflow.methods.adaptive.int8 import chain_structure
    from edgeflow.methods.quantization import QuantConfig
    from edgeflow.models import build_model

    system = EarlyExit.from_model(build_model("tcn", (1, 42), 10, channels=[4, 4, 4, 4]), [0.5], 10, (1, 42))
    with pytest.raises(ValueError, match=r"exit features.2: its feature map \[42\] does not divide"):
        chain_structure(system, (1, 42), QuantConfig())


@pytest.mark.parametrize("overrides, message", [
    (["recipe=early_exit", "stages.adaptive.quantize={bits: 8}"],
     "stages.adaptive.quantize: unknown quantization key"),
    (["recipe=variable_width_int8", "~stages.adaptive.quantize", "+stages.adaptive.quantize={weight_bits: 16}"],
     "stages.adaptive.quantize.weight_bits: must be"),
    (["recipe=early_exit_int8", "dataset=synthetic", "dataset.input_shape=[1,42]"],
     "stages.adaptive.exits: exit point 'features.2': its feature map does not divide into the head's pooling bins"),
    (["recipe=early_exit_int8", "+stages.adaptive.quantize.act_bits=32"],
     "stages.adaptive.quantize.act_bits: must be 2..8 (the int8 parts run on quantized activations), got 32"),
])
def test_bad_int8_adaptive_input_is_one_line(workdir: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        prepare(edgeflow.compose([*overrides, *QUIET]))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
