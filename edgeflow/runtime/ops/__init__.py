"""Integer kernels of the reference runtime, one op kind per module (TFLite Micro style).

``conv`` (1-D/2-D, groups, depthwise), ``fully_connected`` (gemm/matmul), ``add``, ``pool``
(max/average/global average), ``shape`` (reshape/flatten/squeeze/unsqueeze/transpose),
``concat``, ``pad``, ``rescale`` (requantize, clamps), ``boundary`` (input quantize, output
dequantize, softmax). All share the requantization helpers of ``edgeflow.runtime.quant``.
"""
