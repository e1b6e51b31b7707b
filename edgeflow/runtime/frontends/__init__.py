"""Frontends: model files → the runtime IR (``edgeflow.runtime.ir.Graph``).

``onnx``: quantized ONNX (QDQ and QOperator). Every frontend builds its nodes with
``frontends.nodes`` so that one set of kernels, the planner and the profiler serve them all.
"""
