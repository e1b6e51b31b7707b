"""Errors raised by the int8 reference runtime (one line each, naming what is wrong)."""

from __future__ import annotations


class RuntimeModelError(ValueError):
    """The ONNX file or the inputs cannot be run: bad file, unsupported op, wrong input.

    The message is one line and names the op and node, the file, or the input at fault.
    """


class UnsupportedOpError(RuntimeModelError):
    """An ONNX node the runtime cannot lower to an integer op."""

    def __init__(self, op_type: str, node_name: str, why: str = "") -> None:
        msg = f"unsupported op {op_type} (node {node_name!r})"
        if why:
            msg += f": {why}"
        super().__init__(msg)
        self.op_type = op_type
        self.node_name = node_name
