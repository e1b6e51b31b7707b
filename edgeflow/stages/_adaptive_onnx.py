"""Int8 boundaries between the exported parts of an early-exit system (not a stage kind).

The QDQ export (``edgeflow.export``) writes a float graph input (``QuantizeLinear`` first) and a
float output (``DequantizeLinear`` last). Between two parts of a chain that float hop is
``DequantizeLinear → QuantizeLinear`` with the same scale and zero point (the quantizers are tied,
``edgeflow.methods.adaptive.int8.tie``): ``int8_boundary`` removes it, so a segment's file returns
its int8 feature map and the files after it (the next segment, the exit head) take that int8 tensor
as their input — the same integers, 1 byte per element, and no quantize / dequantize at the cut.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Quant = tuple[float, int]  # (scale, zero point) of an int8 tensor


def _qparams(init: dict[str, Any], node: Any) -> Quant:
    from onnx import numpy_helper

    scale = numpy_helper.to_array(init[node.input[1]]).reshape(-1)[0]
    zp = numpy_helper.to_array(init[node.input[2]]).reshape(-1)[0]
    return float(scale), int(zp)


def int8_boundary(path: Path, int8_input: bool, int8_output: bool) -> dict[str, Quant | None]:
    """Rewrite QDQ file ``path`` in place: with ``int8_input`` its graph input becomes the int8 tensor
    its first ``QuantizeLinear`` made; with ``int8_output`` its output is the int8 tensor before its last
    ``DequantizeLinear``. Returns ``{"input": (scale, zp) | None, "output": ...}`` of those tensors.
    Raises ``ValueError`` when the file does not have that form. Checked with ``onnx.checker``."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    init = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    users: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    found: dict[str, Quant | None] = {"input": None, "output": None}
    drop: list[Any] = []
    act_bits_drop = []
    if int8_input:
        inp = graph.input[0]
        q = users.get(inp.name, [])
        if len(q) != 1 or q[0].op_type != "QuantizeLinear":
            raise ValueError(f"{path.name}: its input does not feed one QuantizeLinear")
        found["input"] = _qparams(init, q[0])
        for n in users.get(q[0].output[0], []):
            n.input[:] = [inp.name if i == q[0].output[0] else i for i in n.input]
        inp.type.tensor_type.elem_type = onnx.TensorProto.INT8
        drop.append(q[0])
        act_bits_drop.append(q[0].output[0])
    if int8_output:
        out = graph.output[0]
        last = producer.get(out.name)
        dq = producer.get(last.input[0]) if last is not None and last.op_type == "Identity" else last
        if dq is None or dq.op_type != "DequantizeLinear" or len(users.get(dq.input[0], [])) != 1:
            raise ValueError(f"{path.name}: its output is not one DequantizeLinear of an int8 tensor")
        found["output"] = _qparams(init, dq)
        drop += [n for n in (last, dq) if n is not None and n not in drop]
        out.name = dq.input[0]
        out.type.tensor_type.elem_type = onnx.TensorProto.INT8
    kept = [n for n in graph.node if all(n is not d for d in drop)]
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for t in unused:
        graph.initializer.remove(t)
    for prop in model.metadata_props:
        if prop.key == "edgeflow.act_bits":
            bits = json.loads(prop.value)
            prop.value = json.dumps({k: v for k, v in bits.items() if k not in act_bits_drop})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return found
