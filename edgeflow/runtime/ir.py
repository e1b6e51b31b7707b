"""The runtime's program as data: graph inputs, tensors, nodes — and its serialised form.

A ``Graph`` is what a frontend (``edgeflow.runtime.frontends.onnx``, later ``.tflite``) produces,
what ``Program`` runs (``edgeflow.runtime.ops`` builds one kernel per node) and what the planner,
the profiler and a C generator read. It holds only plain data:

* ``inputs``: the graph inputs as declared (dims ``None`` where symbolic, e.g. the batch);
* ``tensors``: every runtime tensor (graph inputs and node outputs; constants live in the nodes)
  with its dtype, its STATIC shape for one sample (batch 1; ``None`` when it depends on symbolic
  input dims) and, for integer tensors, its per-tensor quantization (``real = scale · (q − zp)``);
* ``nodes``: the schedule, each with its ``kind``, input/output tensor names, ``params`` (numeric
  numpy arrays: weights, biases, per-channel scales and zero points, constant addends) and
  ``attrs`` (JSON values: strides, pads, dilations, group, axes, scalar scales and zero points,
  dtypes as names, activation bounds).

Node kinds and their fields (``?``: optional; "requant" = ``in_scale``, ``out_scale``,
``out_zero_point``, ``out_dtype``, ``activation`` = [kind|null, lo|null, hi|null] — absent
``out_scale`` means the output is the int32 accumulator):

==================  =========================================  ===============================================
kind                params                                     attrs
==================  =========================================  ===============================================
quantize            scale, zero_point                          axis, out_dtype
dequantize          scale, zero_point                          axis
softmax             —                                          axis, in_scale?, in_zero_point?
int_softmax         —                                          axis, beta, in_scale, in_zero_point, out_scale,
                                                               out_zero_point, out_dtype
conv                weight, weight_zero_point, bias?,          in_zero_point, in_dtype, strides, pads, dilations,
                    weight_scale?                              group, auto_pad, weight_bits, requant?
fully_connected     weight? (K, N), weight_zero_point, bias?,  in_zero_point, in_dtype, b_dtype? (no weight:
                    weight_scale?                              second input), weight_bits, requant?
add                 const_b?                                   a_scale, a_zero_point, b_scale, b_zero_point,
                                                               out_scale, out_zero_point, out_dtype, activation
lut                 —                                          function (logistic|tanh), in_scale, in_zero_point,
                                                               in_dtype, out_scale, out_zero_point, out_dtype
hard_swish          —                                          in_scale, in_zero_point, out_scale, out_zero_point,
                                                               out_dtype, in_dtype?, onnx_float? (ONNX HardSwish)
mul                 const_b?                                   a_scale, a_zero_point, b_scale, b_zero_point,
                                                               out_scale, out_zero_point, out_dtype, activation
avg_pool            —                                          kernel, strides, pads, auto_pad, ceil_mode,
                                                               count_include_pad, in_scale, in_zero_point,
                                                               out_scale, out_zero_point, out_dtype
global_avg_pool     —                                          in_scale, in_zero_point, out_scale,
                                                               out_zero_point, out_dtype, tflite_mean?
max_pool            —                                          kernel, strides, pads, auto_pad, ceil_mode, dilations
concat              —                                          axis, in_scales, in_zero_points, out_scale,
                                                               out_zero_point, out_dtype
rescale             —                                          in_scale, in_zero_point, out_scale, out_zero_point,
                                                               out_dtype, lo, hi
clamp               —                                          lo, hi, in_scale, in_zero_point, in_dtype
reshape             —                                          shape, allowzero, flatten_axis, squeeze_axes,
                                                               unsqueeze_axes (a view: ``Node.is_view``)
transpose           —                                          perm
pad                 —                                          pads, mode, value, axes
==================  =========================================  ===============================================

A conv / fully_connected node may carry ``single_rounding: true``: its tflm requantization rounds once
(half away from zero, ``quant.multiply_by_quantized_multiplier_single``), as LiteRT's FULLY_CONNECTED does (the ``.tflite`` importer sets it).

Clustered layers' conv / fully_connected nodes also carry ``codebook_bits`` (index width of their
codebook, from the export's ``edgeflow.codebook`` metadata).

Serialised form: ``to_dict()`` / ``Graph.from_dict()`` (JSON values and numpy arrays), and
``save(path.json)`` / ``load(path.json)``: the JSON file beside an ``.npz`` of the arrays, read
with ``allow_pickle=False`` — loading never unpickles anything. Both round-trip exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.runtime.errors import RuntimeModelError

FORMAT = "edgeflow.runtime.ir/1"
VIEW_KINDS = frozenset({"reshape"})  # outputs that may share their input's buffer (pure views)
_NUMERIC = "biuf"


def _dtype(value: Any) -> np.dtype:
    """A numeric numpy dtype from a dtype or its name; anything else is refused."""
    try:
        dt = np.dtype(value)
    except TypeError:
        raise RuntimeModelError(f"not a numeric dtype: {value!r}") from None
    if dt.kind not in _NUMERIC:
        raise RuntimeModelError(f"not a numeric dtype: {value!r}")
    return dt


def _json_value(value: Any, where: str) -> Any:
    """``value`` as a plain JSON value (tuples → lists, numpy scalars → Python, dtypes → names)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, (list, tuple)):
        return [_json_value(v, where) for v in value]
    raise RuntimeModelError(f"{where}: attribute value of type {type(value).__name__} is not plain data")


def _array(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in _NUMERIC:
        got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
        raise RuntimeModelError(f"{where}: expected a numeric numpy array, got {got}")
    return value


@dataclass(frozen=True)
class GraphInput:
    """A graph input as declared: ``shape`` holds ``None`` for symbolic dims."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class TensorSpec:
    """A runtime tensor: dtype, static per-sample shape (batch 1) and per-tensor quantization.

    ``shape`` is ``None`` when it depends on symbolic input dims other than the batch;
    ``scale``/``zero_point`` are ``None`` for float tensors and for integer graph inputs (whose
    parameters come with each consuming node); int32 accumulators carry scale 1.0 and zero point 0.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] | None
    scale: float | None = None
    zero_point: int | None = None


@dataclass
class Node:
    """One op of the schedule (see the module docstring for each kind's params and attrs).

    Construction normalises ``attrs`` to plain JSON values (tuples become lists) and refuses
    non-numeric ``params``, so that what a frontend builds equals what ``load`` reads back.
    """

    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"node {self.name!r} ({self.kind})"
        self.inputs = [str(n) for n in self.inputs]
        self.outputs = [str(n) for n in self.outputs]
        self.params = {str(k): _array(v, f"{where} param {k!r}") for k, v in self.params.items()}
        self.attrs = {str(k): _json_value(v, f"{where} attr {k!r}") for k, v in self.attrs.items()}

    @property
    def is_view(self) -> bool:
        """True when the output may share the input's buffer (reshape-like ops)."""
        return self.kind in VIEW_KINDS


@dataclass
class Graph:
    """A lowered integer program as data: inputs, output names, tensors, the node schedule."""

    inputs: list[GraphInput]
    outputs: list[str]
    nodes: list[Node]
    tensors: dict[str, TensorSpec]

    # ------------------------------------------------------------------ dict form
    def to_dict(self) -> dict[str, Any]:
        """Plain data: JSON values everywhere except node ``params`` (numpy arrays, not copied)."""
        return {
            "format": FORMAT,
            "inputs": [{"name": i.name, "dtype": i.dtype.name, "shape": list(i.shape)} for i in self.inputs],
            "outputs": list(self.outputs),
            "tensors": [{"name": t.name, "dtype": t.dtype.name, "shape": None if t.shape is None else list(t.shape),
                         "scale": t.scale, "zero_point": t.zero_point} for t in self.tensors.values()],
            "nodes": [{"kind": n.kind, "name": n.name, "inputs": list(n.inputs), "outputs": list(n.outputs),
                       "attrs": dict(n.attrs), "params": dict(n.params)} for n in self.nodes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Graph:
        """The inverse of ``to_dict``; refuses another format and non-numeric arrays or dtypes."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            got = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise RuntimeModelError(f"not an edgeflow runtime program (format {got!r}, expected {FORMAT!r})")
        try:
            inputs = [GraphInput(str(i["name"]), _dtype(i["dtype"]),
                                 tuple(None if v is None else int(v) for v in i["shape"])) for i in d["inputs"]]
            tensors = {str(t["name"]): TensorSpec(str(t["name"]), _dtype(t["dtype"]),
                                                  None if t["shape"] is None else tuple(int(v) for v in t["shape"]),
                                                  None if t["scale"] is None else float(t["scale"]),
                                                  None if t["zero_point"] is None else int(t["zero_point"]))
                       for t in d["tensors"]}
            nodes = [Node(str(n["kind"]), str(n["name"]), list(n["inputs"]), list(n["outputs"]), dict(n["params"]),
                          dict(n["attrs"])) for n in d["nodes"]]
            return cls(inputs, [str(o) for o in d["outputs"]], nodes, tensors)
        except (KeyError, TypeError, ValueError) as exc:
            raise RuntimeModelError(f"malformed runtime program: {type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.json``: everything but the arrays) and ``path.with_suffix('.npz')``."""
        path = Path(path)
        if path.suffix != ".json":
            raise RuntimeModelError(f"{path}: a runtime program is saved as a .json file (+ .npz beside it)")
        d = self.to_dict()
        arrays: dict[str, np.ndarray] = {}
        for i, n in enumerate(d["nodes"]):
            keys = {}
            for k, a in n["params"].items():
                keys[k] = f"{i}.{k}"
                arrays[keys[k]] = a
            n["params"] = keys
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dumps(d))
        np.savez(path.with_suffix(".npz"), allow_pickle=False, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        """Read a ``save``d program; never unpickles (object arrays are refused)."""
        path = Path(path)
        npz = path.with_suffix(".npz")
        for p in (path, npz):
            if not p.is_file():
                raise RuntimeModelError(f"{p}: no such file")
        try:
            d = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise RuntimeModelError(f"{path}: not a JSON runtime program ({exc})") from None
        try:
            with np.load(npz, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as exc:  # object arrays need pickle: refused
            raise RuntimeModelError(f"{npz}: {exc}") from None
        try:
            for n in d["nodes"]:
                n["params"] = {k: arrays[ref] for k, ref in n["params"].items()}
        except (KeyError, TypeError) as exc:
            raise RuntimeModelError(f"{path}: array {exc} missing from {npz.name}") from None
        return cls.from_dict(d)


def _dumps(d: dict[str, Any]) -> str:
    """JSON text with one line per input, tensor and node (readable, diff-friendly)."""
    parts = []
    for key, value in d.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            body = ",\n".join("  " + json.dumps(v) for v in value)
            parts.append(f" {json.dumps(key)}: [\n{body}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def equal(a: Graph, b: Graph) -> bool:
    """Exact equality of two graphs: same JSON data, same arrays (dtype, shape and values)."""
    da, db = a.to_dict(), b.to_dict()
    pa = [n.pop("params") for n in da["nodes"]]
    pb = [n.pop("params") for n in db["nodes"]]
    if json.dumps(da) != json.dumps(db) or len(pa) != len(pb):
        return False
    return all(x.keys() == y.keys() and all(x[k].dtype == y[k].dtype and x[k].shape == y[k].shape
                                            and np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f") for k in x)
               for x, y in zip(pa, pb))

