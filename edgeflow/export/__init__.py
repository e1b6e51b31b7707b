"""ONNX export: float models as plain ONNX, quantized models in QDQ form."""

from edgeflow.export.onnx_float import check_against_torch, export_float, export_model

__all__ = ["export_model", "export_float", "check_against_torch"]
