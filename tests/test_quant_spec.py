"""The quantization spec (``edgeflow.methods.quantization.spec``): validation with bare keys and the
stage messages, per-layer resolution, the stage schemas as specs, ``quantize_model``'s checks and the
report data."""

from __future__ import annotations

from dataclasses import fields

import pytest

from edgeflow.core.errors import ConfigError
from edgeflow.methods.quantization.spec import LAYER_KEYS, LayerSpec, QuantConfig, resolve_specs


@pytest.mark.parametrize("kw,learned,message", [
    ({"weight_bits": 0}, True, "weight_bits: must be an integer in 1..8 (1 = binary), got 0"),
    ({"act_bits": 16}, True, "act_bits: must be an integer in 2..8, or 32 (float), got 16"),
    ({"weight_format": "pow2"}, True, "weight_bits: must be 2..4 for weight_format=pow2, got 8"),
    ({"weight_method": "lsq"}, False, "weight_method: must be one of minmax, mse, percentile, got 'lsq'"),
    ({"act_method": "pact"}, False, "act_method: must be one of minmax, ema, percentile, mse, got 'pact'"),
    ({"act_method": "x"}, True, "act_method: must be one of minmax, ema, percentile, mse, pact, lsq, got 'x'"),
    ({"percentile": 50}, True, "percentile: must be in (50, 100], got 50"),
    ({"ema_momentum": 0}, True, "ema_momentum: must be in (0, 1], got 0"),
    ({"last_layer_bits": 9}, True, "last_layer_bits: must be null or an integer in 1..8, got 9"),
    ({"overrides": {"fc": 4}}, True, "overrides.fc: must be a mapping of " + ", ".join(LAYER_KEYS) + ", got 4"),
    ({"overrides": {"fc": {"bits": 4}}}, True,
     "overrides.fc.bits: unknown key; allowed here: " + ", ".join(LAYER_KEYS)),
    ({"overrides": {"fc": {"act_method": "lsq"}}}, False,
     "overrides.fc.act_method: must be one of minmax, ema, percentile, mse, got 'lsq'"),
    ({"overrides": {"re:f.*": {"weight_format": "pow2", "weight_bits": 8}}}, True,
     "overrides.re:f.*.weight_bits: must be 2..4 for power-of-two weights, got 8"),
    ({"overrides": {"fc": {"per_channel": 1}}}, True, "overrides.fc.per_channel: must be true or false, got 1"),
])
def test_check_names_the_bare_key(kw: dict, learned: bool, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        QuantConfig(**kw).check(learned=learned)
    assert str(err.value) == message


def test_learned_methods_pass_only_where_training_follows() -> None:
    spec = QuantConfig(weight_method="lsq", act_method="lsq", overrides={"fc": {"act_method": "pact"}})
    spec.check()
    with pytest.raises(ConfigError, match="^weight_method: "):
        spec.check(learned=False)


def test_resolve_specs_applies_first_last_then_overrides() -> None:
    spec = QuantConfig(weight_bits=4, act_bits=6, first_layer_bits=8, last_layer_bits=2,
                       overrides={"b.*": {"weight_format": "pow2", "weight_bits": 8}, "c": {"weight_bits": 1}})
    specs = resolve_specs(spec, ["a", "b.0", "c.conv", "d"])
    assert specs == {
        "a": LayerSpec(weight_bits=8, act_bits=8),                  # first layer: activations at least 8
        "b.0": LayerSpec(weight_bits=8, act_bits=6),                # pow2 above 4 bits falls back to uniform
        "c.conv": LayerSpec(weight_bits=1, act_bits=6, weight_format="binary"),  # "c" covers its children
        "d": LayerSpec(weight_bits=2, act_bits=6),                  # last layer: activations keep 6
    }


def test_stage_schemas_are_specs_with_the_same_fields() -> None:
    from edgeflow.stages import ptq, qat

    spec_fields = [f.name for f in fields(QuantConfig)]
    for cls in (ptq.Config, qat.Config):
        assert issubclass(cls, QuantConfig)
        assert [f.name for f in fields(cls)][:len(spec_fields)] == spec_fields
    cfg = qat.Config(kind="qat", weight_bits=4, overrides={"fc": {"weight_bits": 8}})
    assert cfg.spec_dict() == {**QuantConfig().spec_dict(), "weight_bits": 4, "act_method": "ema",
                               "overrides": {"fc": {"weight_bits": 8}}}
    assert QuantConfig(**cfg.spec_dict()) == QuantConfig(weight_bits=4, act_method="ema",
                                                         overrides={"fc": {"weight_bits": 8}})
    assert not hasattr(cfg, "quant_config")
    with pytest.raises(ConfigError) as err:
        ptq.Config(kind="ptq", weight_format="pow2", weight_bits=8)
    assert str(err.value) == "weight_bits: must be 2..4 for weight_format=pow2, got 8"


def test_quantize_model_checks_spec_and_bn_and_records_both() -> None:
    from edgeflow.methods.quantization import quantize_model
    from edgeflow.models import build_model
    from edgeflow.models.blueprint import blueprint_of
    from edgeflow.stages import qat

    model = build_model("cnn", (1, 8, 8), 10, channels=(8, 16, 16))
    with pytest.raises(ConfigError, match=r"^act_bits: must be an integer in 2\.\.8, or 32 \(float\), got 1$"):
        quantize_model(model, (1, 8, 8), QuantConfig(act_bits=1))
    with pytest.raises(ConfigError, match="^bn: must be one of fold, simulate, keep, got 'none'$"):
        quantize_model(model, (1, 8, 8), bn="none")
    cfg = qat.Config(kind="qat", weight_bits=4)
    q = quantize_model(model, (1, 8, 8), cfg, bn="simulate")
    assert sum(getattr(m, "bn", None) is not None for m in q.modules()) == 3  # three conv-BN pairs simulated
    assert blueprint_of(q)[-1] == {"op": "quantize", "input_shape": [1, 8, 8], "config": cfg.spec_dict(),
                                   "bn": "simulate"}


def test_quant_report_returns_metrics_and_table() -> None:
    import torch

    from edgeflow.methods.quantization import calibrate, freeze_observers, quant_report, quantize_model
    from edgeflow.models import build_model

    q = quantize_model(build_model("cnn", (1, 8, 8), 10, channels=(8, 16, 16)), (1, 8, 8),
                       QuantConfig(weight_bits=4, last_layer_bits=8))
    calibrate(q, [torch.rand(8, 1, 8, 8)])
    freeze_observers(q)
    metrics, table = quant_report(q, {"test_acc": 90.25, "test_loss": 0.5}, float_test_acc=91.0)
    params = [r["params"] for r in table["layers"]]
    assert [r["weight_bits"] for r in table["layers"]] == [4, 4, 4, 8]
    weight_bytes = sum(params[:3]) // 2 + params[3]
    assert metrics == {"test_acc": 90.25, "test_loss": 0.5, "float_test_acc": 91.0, "acc_drop": 0.75,
                       "weight_bits": (4 * sum(params[:3]) + 8 * params[3]) / sum(params),
                       "weight_bytes": float(weight_bytes), "bias_bytes": table["bias_bytes"],
                       "size_ratio": 4 * sum(params) / weight_bytes}
    assert table["weight_bytes"] == weight_bytes and table["float_weight_bytes"] == 4 * sum(params)
    no_ref, _ = quant_report(q, {"test_acc": 90.25, "test_loss": 0.5})
    assert "float_test_acc" not in no_ref and "acc_drop" not in no_ref
