"""Quantization: fake-quant modules, range setting, BN folding, PTQ calibration and QAT helpers.

Plain PyTorch (no torch.ao.quantization, no Hydra / MLflow). The quantized model is the single
source of truth: quantized layers are subclasses of ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Linear``
carrying ``weight_quantizer`` (``bits``: 1 = binary) and ``act_quantizer``; export
(``edgeflow.export.qdq``) and hardware analysis read them.

Typical use::

    qmodel = quantize_model(model, input_shape, QuantConfig(weight_bits=8, act_bits=8))
    calibrate(qmodel, train_loader, num_batches=8)     # PTQ: observe ranges, set scales
    freeze_observers(qmodel)                           # fixed ranges (QAT: after some epochs)

The Lightning callback for QAT is ``edgeflow.methods.quantization.callbacks.QATCallback``
(imported separately, it needs Lightning).
"""

from edgeflow.methods.quantization.convert import (
    BN_MODES,
    LAYER_KEYS,
    LayerSpec,
    QuantConfig,
    act_quantizers,
    calibrate,
    calibration_mode,
    fold_simulated_bn,
    freeze_bn,
    freeze_observers,
    is_quantized,
    layer_table,
    name_matches,
    quant_layers,
    quant_summary,
    quantize_model,
    resolve_specs,
    weight_bits_of,
)
from edgeflow.methods.quantization.fold import find_bn_pairs, fold_batchnorm, fold_bn_into
from edgeflow.methods.quantization.layers import QConv1d, QConv2d, QLinear, to_quantized
from edgeflow.methods.quantization.quantizers import (
    ACT_METHODS,
    WEIGHT_FORMATS,
    WEIGHT_METHODS,
    ActQuantizer,
    BinaryWeightQuantizer,
    PowerOfTwoWeightQuantizer,
    WeightQuantizer,
    fake_quant,
    make_weight_quantizer,
    round_ste,
    sign_ste,
)

__all__ = [
    "ACT_METHODS", "WEIGHT_FORMATS", "WEIGHT_METHODS", "BN_MODES", "LAYER_KEYS",
    "QuantConfig", "LayerSpec", "quantize_model", "calibrate", "calibration_mode", "freeze_observers",
    "freeze_bn", "fold_simulated_bn", "is_quantized", "quant_layers", "act_quantizers", "quant_summary",
    "layer_table", "weight_bits_of", "resolve_specs", "name_matches",
    "fold_batchnorm", "fold_bn_into", "find_bn_pairs",
    "QConv1d", "QConv2d", "QLinear", "to_quantized",
    "ActQuantizer", "WeightQuantizer", "BinaryWeightQuantizer", "PowerOfTwoWeightQuantizer",
    "make_weight_quantizer", "fake_quant", "round_ste", "sign_ste",
]
