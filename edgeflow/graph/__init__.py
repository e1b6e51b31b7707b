"""The module graph (torch.fx), shared by every pass that follows data flow through a model.

* :mod:`.trace` - the tracer and its leaf rule, shape propagation, node / module helpers.
* :mod:`.ops` - what a node computes (ReLU, residual add, value-preserving ops), for BN folding,
  quantization and QDQ export.
* :mod:`.groups` - channel dependency groups, for structured pruning and channel search.

Patterns are found by following data flow, never by module names. The per-layer hardware analysis
(:mod:`edgeflow.hardware.graph`) does not trace: it records a real forward pass, so it also covers
models torch.fx cannot trace.
"""

from edgeflow.graph.groups import ChannelGroup, channel_groups
from edgeflow.graph.ops import (
    AVGPOOL_TYPES,
    CAT_FUNCS,
    IDENTITY_TYPES,
    MAXPOOL_TYPES,
    is_add,
    is_relu,
    is_shape_only,
    is_transparent,
    relu_after,
)
from edgeflow.graph.trace import (
    Tracer,
    example_input,
    input_nodes,
    is_quantizer,
    module_of,
    produces_tensor,
    set_submodule,
    shape_of,
    shape_prop,
    trace,
    trace_with_shapes,
)

__all__ = [
    "AVGPOOL_TYPES", "CAT_FUNCS", "IDENTITY_TYPES", "MAXPOOL_TYPES", "ChannelGroup",
    "Tracer", "channel_groups", "example_input", "input_nodes", "is_add", "is_quantizer", "is_relu",
    "is_shape_only", "is_transparent", "module_of", "produces_tensor", "relu_after", "set_submodule",
    "shape_of", "shape_prop", "trace", "trace_with_shapes",
]
