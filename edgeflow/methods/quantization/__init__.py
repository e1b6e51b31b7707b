"""Quantization: fake-quant modules, range setting, BN folding, PTQ calibration and QAT helpers.

Plain PyTorch (no torch.ao.quantization, no Hydra / MLflow). The quantized model is the single
source of truth: quantized layers are subclasses of ``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Linear``
carrying ``weight_quantizer`` (``bits``: 1 = binary) and ``act_quantizer``; export
(``edgeflow.export.qdq``) and hardware analysis read them.

Typical use::

    qmodel = quantize_model(model, input_shape, QuantConfig(weight_bits=8, act_bits=8))
    calibrate(qmodel, train_loader, num_batches=8)     # PTQ: observe ranges, set scales
    freeze_observers(qmodel)                           # fixed ranges (QAT: after some epochs)
    metrics, table = quant_report(qmodel, evaluate(qmodel), float_test_acc)

Names load lazily (module ``__getattr__``), so ``edgeflow.methods.quantization.spec`` (``QuantConfig``,
``LayerSpec``, the method/format constants) stays importable without torch. The Lightning callback
for QAT is ``edgeflow.methods.quantization.callbacks.QATCallback`` (imported separately, it needs
Lightning).
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("ACT_METHODS", "WEIGHT_FORMATS", "WEIGHT_METHODS", "LEARNED_METHODS", "BN_MODES",
                     "LAYER_KEYS", "LayerSpec", "QuantConfig", "name_matches", "resolve_specs"), "spec"),
    **dict.fromkeys(("quantize_model", "calibrate", "calibration_mode", "freeze_observers", "freeze_bn",
                     "fold_simulated_bn", "is_quantized", "quant_layers", "act_quantizers", "weight_bits_of"),
                    "convert"),
    **dict.fromkeys(("quant_report", "quant_summary", "layer_table"), "report"),
    **dict.fromkeys(("fold_batchnorm", "fold_bn_into", "find_bn_pairs"), "fold"),
    **dict.fromkeys(("QConv1d", "QConv2d", "QLinear", "to_quantized"), "layers"),
    **dict.fromkeys(("ActQuantizer", "WeightQuantizer", "BinaryWeightQuantizer", "PowerOfTwoWeightQuantizer",
                     "make_weight_quantizer", "fake_quant", "round_ste", "sign_ste"), "quantizers"),
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
