"""Lower a runtime ``Program`` (``tflm`` arithmetic) to C: one kernel call per node over a static arena.

``lower(program)`` checks every node first and raises ``UnsupportedOpError`` (one line naming the op
and the node) for anything the portable kernels do not implement, so no file is written for a model
the generator cannot compile. It returns a ``CModel``: the constant arrays (``weights.c``), the static
layer descriptors and calls (``model.c``), and the interface (``model.h``).

What the C library computes: the integer part of the program, from the int8 tensor the input
``quantize`` writes (or an int8 graph input) to the int8 tensor the output ``dequantize`` / ``softmax``
reads (or an int8 graph output). The float boundary stays with the caller; ``model.h`` gives its scales
and zero points. Every requantization constant is computed here with ``edgeflow.runtime.quant``, by the
same formulas as the runtime's kernels in ``tflm`` mode, so the C output is bit-equal to
``Program.run(x, rounding="tflm")`` — double rounding, or LiteRT's single rounding where a node
says ``single_rounding``; TFLite's MEAN multiplier where a global average pool says ``tflite_mean``;
TFLite's fixed-point int8 softmax; TFLite's 16-bit fixed-point hard-swish. Table activations (``lut``:
logistic, tanh) store the 256 outputs the runtime's own op gives for the 256 int8 inputs. Tensors are
stored row-major in the IR's layout (NCHW; NHWC where a ``.tflite`` import keeps it, as for pad and the
elementwise ops; batch 1) at the offsets of ``Program.plan_memory()``; views (reshape) share their
input's buffer.

Constants follow the TFLite int8 spec: int8 weights with zero point 0, int32 biases, one int32
multiplier and one int32 shift per output channel (or per tensor) — what ``edgeflow.runtime.costs``
counts as flash. Weights of at most 4 bits are packed four or two a byte (``storage_bits``: the
narrowest of 2, 4 and 8 bits their values fit; ``pack_weights``: the layout ``kernels.h`` describes):
``ceil(size * bits / 8)`` bytes, the profile's count for 2- and 4-bit weights. 3-bit weights take 4
bits, binary ones (±1, 0) 2 bits and 5–7-bit or wider power-of-two codes 8 bits: more than the profile
counts. The 256-byte table of a ``lut`` node is a constant too (``costs.table_bytes``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from edgeflow.runtime import quant
from edgeflow.runtime.errors import UnsupportedOpError
from edgeflow.runtime.ir import Node
from edgeflow.runtime.program import Program
from edgeflow.runtime.shapes import pool_geometry, resolve_pads

INT8 = np.dtype(np.int8)
SUPPORTED = ("conv", "fully_connected", "add", "mul", "max_pool", "avg_pool", "global_avg_pool", "reshape",
             "transpose", "pad", "clamp", "rescale", "concat", "int_softmax", "lut", "hard_swish")
_BOUNDARY_OUT = ("dequantize", "softmax")


@dataclass
class Array:
    """A constant array of ``weights.c``: C element type, values (flattened row-major)."""

    name: str
    ctype: str
    values: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * {"int8_t": 1, "int32_t": 4}[self.ctype]


@dataclass
class CModel:
    """Everything ``emit`` writes: interface, arena plan, constant arrays, layer descriptors, calls."""

    input_name: str
    output_name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_quant: tuple[float, int]
    output_quant: tuple[float, int]
    arena_bytes: int
    input_offset: int
    output_offset: int
    arrays: list[Array] = field(default_factory=list)
    descriptors: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    macs: int = 0
    dsp_stack_bytes: int = 0

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def weights_bytes(self) -> int:
        """Bytes of all constant arrays (what ``weights.c`` puts in ``.rodata``)."""
        return sum(a.nbytes for a in self.arrays)


def comment(text: str) -> str:
    """``text`` made safe inside a C block comment (printable ASCII, no comment terminator)."""
    return re.sub(r"[^ -~]", "?", text).replace("*/", "* /")


def _multiplier(real: float | np.ndarray, node: Node) -> tuple[np.ndarray, np.ndarray]:
    """(Q31 multipliers, shifts) as ``quant.quantize_multiplier``; left shifts above 31 are refused."""
    m, s = quant.quantize_multiplier(real)
    if (s > 31).any():
        raise UnsupportedOpError(node.kind, node.name, "requantization multiplier >= 2**31 (left shift > 31)")
    return m.astype(np.int32), s.astype(np.int32)


def _full_range(act: tuple[int, int], dtype: np.dtype) -> tuple[int, int]:
    qmin, qmax = quant.qrange(dtype)
    return max(act[0], qmin), min(act[1], qmax)


class _Lowering:
    """One pass over the schedule: checks, then C for each node (see ``lower``)."""

    def __init__(self, program: Program) -> None:
        self.p = program
        self.nodes = program.ir.nodes
        self.shapes = program.shapes()
        self.tensors = program.tensors
        self.ops = {node.name: op for node, op in zip(self.nodes, program.ops)}
        plan = program.plan_memory()
        self.arena = plan.arena_bytes
        self.offset = {t: b.offset for b in plan.buffers for t in b.tensors}
        self.arrays: list[Array] = []
        self.descriptors: list[str] = []
        self.calls: list[str] = []
        self.macs = 0
        self.dsp_stack = 0

    # ------------------------------------------------------------------ helpers
    def buf(self, name: str) -> str:
        return f"ef_arena + {self.offset[name]}"

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        self.arrays.append(Array(name, ctype, np.ascontiguousarray(values).reshape(-1)))
        return name

    def spatial(self, name: str) -> tuple[int, int, int]:
        """(C, H, W) of an NCHW tensor; 1-D (N, C, L) tensors have H = 1."""
        s = self.shapes[name]
        if len(s) == 4:
            return int(s[1]), int(s[2]), int(s[3])
        return int(s[1]), 1, int(s[2])

    def size(self, name: str) -> int:
        return int(np.prod(self.shapes[name]))

    def check_int8(self, node: Node) -> None:
        for t in list(node.inputs) + list(node.outputs):
            if self.tensors[t].dtype != INT8:
                raise UnsupportedOpError(node.kind, node.name, f"tensor {t!r} is {self.tensors[t].dtype}; "
                                         "the generator supports int8 tensors only")

    # ------------------------------------------------------------------ boundary
    def boundary(self) -> tuple[str, str, set[str]]:
        """(int8 input tensor, int8 output tensor, names of the boundary nodes left to the caller)."""
        if len(self.p.inputs) != 1 or len(self.p.output_names) != 1:
            raise UnsupportedOpError("graph", "(graph)", f"{len(self.p.inputs)} inputs and {len(self.p.output_names)} "
                                     "outputs; the generator supports one input and one output")
        skip: set[str] = set()
        x = self.p.inputs[0].name
        if self.tensors[x].dtype != INT8:
            first = self.nodes[0] if self.nodes else None
            if first is None or first.kind != "quantize" or first.inputs != [x] or \
                    self.tensors[first.outputs[0]].dtype != INT8:
                raise UnsupportedOpError(first.kind if first else "graph", first.name if first else "(graph)",
                                         "the input must be int8 or quantized to int8 by the first node")
            skip.add(first.name)
            x = first.outputs[0]
        producer = {o: n for n in self.nodes for o in n.outputs}
        y = self.p.output_names[0]
        while self.tensors[y].dtype != INT8:
            node = producer.get(y)
            if node is None or node.kind not in _BOUNDARY_OUT:
                raise UnsupportedOpError(node.kind if node else "graph", node.name if node else "(graph)",
                                         "the output must be int8, or dequantize / softmax of an int8 tensor")
            skip.add(node.name)
            y = node.inputs[0]
        return x, y, skip

    # ------------------------------------------------------------------ ops
    def lower(self) -> CModel:
        x, y, skip = self.boundary()
        body = [n for n in self.nodes if n.name not in skip]
        for node in body:  # check everything before emitting anything
            if node.kind not in SUPPORTED:
                raise UnsupportedOpError(node.kind, node.name, "no C kernel for this op; the generator supports "
                                         + ", ".join(SUPPORTED))
            self.check_int8(node)
        for i, node in enumerate(body):
            self.calls.append(f"    /* {i}: {node.kind} {comment(node.name)} */")
            getattr(self, f"op_{node.kind}")(node, i)
        in_spec, out_spec = self.tensors[x], self.tensors[y]
        return CModel(x, y, tuple(self.shapes[x]), tuple(self.shapes[y]),
                      (float(in_spec.scale or 0.0), int(in_spec.zero_point or 0)),
                      (float(out_spec.scale or 0.0), int(out_spec.zero_point or 0)),
                      self.arena, self.offset[x], self.offset[y], self.arrays, self.descriptors, self.calls, self.macs,
                      self.dsp_stack)

    def quant_desc(self, i: int | str, in_zp: int, out_zp: int, act: tuple[int, int]) -> str:
        self.descriptors.append(f"static const ef_quant q{i} = {{{in_zp}, {out_zp}, {act[0]}, {act[1]}}};")
        return f"&q{i}"

    def geom_desc(self, i: int, cin: tuple[int, int, int], cout: tuple[int, int, int], k: tuple[int, int],
                  s: tuple[int, int], d: tuple[int, int], pads: tuple[int, int], groups: int) -> str:
        vals = [*cin, *cout, *k, *s, *d, *pads, groups]
        self.descriptors.append(f"static const ef_geom g{i} = {{{', '.join(str(int(v)) for v in vals)}}};")
        return f"&g{i}"

    def requant_arrays(self, node: Node, i: int) -> tuple[str, str, str, tuple[int, int]]:
        """Multiplier and shift arrays of a conv / fully connected node (per channel or per tensor), the
        kernel's ``per_channel, single_rounding`` arguments and the activation range."""
        at = node.attrs
        if "out_scale" not in at:
            raise UnsupportedOpError(node.kind, node.name, "int32 accumulator output (no requantization)")
        s_w = np.atleast_1d(np.asarray(node.params["weight_scale"], dtype=np.float32))
        real = np.float64(np.float32(at["in_scale"])) * s_w.astype(np.float64) / np.float64(np.float32(at["out_scale"]))
        m, s = _multiplier(real, node)
        single = bool(at.get("single_rounding", False))
        if single and (s > 30).any():
            raise UnsupportedOpError(node.kind, node.name, "single-rounding multiplier >= 2**30")
        kind, lo, hi = at["activation"]
        act = quant.activation_range(kind, lo, hi, at["out_scale"], at["out_zero_point"], INT8, "tflm")
        return (self.array(f"ef_m{i}", "int32_t", m), self.array(f"ef_s{i}", "int32_t", s),
                f"{int(s_w.size > 1)}, {int(single)}", _full_range(act, INT8))

    def weights_int8(self, node: Node, w: np.ndarray) -> np.ndarray:
        if w.dtype != INT8:
            raise UnsupportedOpError(node.kind, node.name, f"{w.dtype} weights; the generator supports int8 weights")
        if np.any(np.asarray(node.params["weight_zero_point"]) != 0):
            raise UnsupportedOpError(node.kind, node.name, "non-zero weight zero point; the generator follows the "
                                     "TFLite int8 spec (symmetric weights)")
        return w

    def weight_array(self, node: Node, i: int, w: np.ndarray) -> tuple[str, int]:
        """The weight array of a conv / fully connected node (rows = output channels first) and its
        storage width (``storage_bits``), packed by ``pack_weights``."""
        bits = storage_bits(int(node.attrs.get("weight_bits", 8)), w)
        return self.array(f"ef_w{i}", "int8_t", pack_weights(w.reshape(len(w), -1), bits)), bits

    def bias(self, node: Node, i: int) -> str:
        b = node.params.get("bias")
        if b is None:
            return "0"
        b = np.asarray(b).reshape(-1)
        if b.min(initial=0) < quant.INT32_MIN or b.max(initial=0) > quant.INT32_MAX:
            raise UnsupportedOpError(node.kind, node.name, "bias outside int32")
        return self.array(f"ef_b{i}", "int32_t", b.astype(np.int32))

    def op_conv(self, node: Node, i: int) -> None:
        at = node.attrs
        w = self.weights_int8(node, node.params["weight"])
        nd = w.ndim - 2
        x, y = node.inputs[0], node.outputs[0]
        cin, cout = self.spatial(x), self.spatial(y)
        kernel = tuple(int(k) for k in w.shape[2:])
        strides = tuple(at["strides"] or (1,) * nd)
        dil = tuple(at["dilations"] or (1,) * nd)
        pads = resolve_pads(at["auto_pad"], tuple(self.shapes[x][2:]), kernel, strides, dil,
                            tuple(at["pads"]) if at["pads"] else None)
        if nd == 1:
            kernel, strides, dil, pads = (1,) + kernel, (1,) + strides, (1,) + dil, (0, pads[0], 0, pads[1])
        m, s, flags, act = self.requant_arrays(node, i)
        g = self.geom_desc(i, cin, cout, kernel, strides, dil, (pads[0], pads[1]), int(at["group"]))
        self.dsp_stack = max(self.dsp_stack, dsp_conv_scratch(cin, cout, kernel, strides, dil, int(at["group"])))
        q = self.quant_desc(i, int(at["in_zero_point"]), int(at["out_zero_point"]), act)
        wn, bits = self.weight_array(node, i, w)
        self.macs += int(np.prod(cout)) * int(np.prod(w.shape[1:]))
        self.calls.append(f"    ef_conv({self.buf(x)}, {self.buf(y)}, {g}, {q}, {wn}, {bits}, {self.bias(node, i)}, "
                          f"{m}, {s}, {flags});")

    def op_fully_connected(self, node: Node, i: int) -> None:
        at = node.attrs
        if "weight" not in node.params:
            raise UnsupportedOpError(node.kind, node.name, "activation x activation matmul (no constant weight)")
        w = self.weights_int8(node, node.params["weight"])  # (K, N)
        k, n = (int(v) for v in w.shape)
        x, y = node.inputs[0], node.outputs[0]
        rows = self.size(x) // k
        m, s, flags, act = self.requant_arrays(node, i)
        q = self.quant_desc(i, int(at["in_zero_point"]), int(at["out_zero_point"]), act)
        wn, bits = self.weight_array(node, i, np.ascontiguousarray(w.T))  # stored (N, K): contiguous dot products
        self.macs += rows * k * n
        self.dsp_stack = max(self.dsp_stack, 2 * k)  # the int16 input row
        self.calls.append(f"    ef_fully_connected({self.buf(x)}, {self.buf(y)}, {rows}, {k}, {n}, {q}, {wn}, {bits}, "
                          f"{self.bias(node, i)}, {m}, {s}, {flags});")

    def op_add(self, node: Node, i: int) -> None:
        at = node.attrs
        if "const_b" in node.params or len(node.inputs) != 2 or \
                self.shapes[node.inputs[0]] != self.shapes[node.inputs[1]]:
            raise UnsupportedOpError(node.kind, node.name, "constant or broadcast operand; the generator supports "
                                     "adds of two tensors of one shape")
        sa, sb, sy = (np.float32(at[k]) for k in ("a_scale", "b_scale", "out_scale"))
        twice_max = 2.0 * max(float(sa), float(sb))
        pairs = [_multiplier(float(sa) / twice_max, node), _multiplier(float(sb) / twice_max, node),
                 _multiplier(twice_max / ((1 << 20) * float(sy)), node)]
        rq = self.array(f"ef_r{i}", "int32_t", np.array([v[0] for p in pairs for v in p], dtype=np.int32))
        zp = self.array(f"ef_z{i}", "int32_t", np.array([at["a_zero_point"], at["b_zero_point"], at["out_zero_point"]],
                                                       dtype=np.int32))
        act = at["activation"]
        lo, hi = _full_range(quant.activation_range(act[0], act[1], act[2], at["out_scale"], at["out_zero_point"],
                                                    INT8, "tflm"), INT8)
        a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
        self.calls.append(f"    ef_add({self.buf(a)}, {self.buf(b)}, {self.buf(y)}, {self.size(y)}, {rq}, {zp}, "
                          f"{lo}, {hi});")

    def dims4(self, node: Node, shape: tuple[int, ...]) -> list[int]:
        """``shape`` left-padded with ones to 4-D (the kernels' loop nest); rank > 4 is refused."""
        if len(shape) > 4:
            raise UnsupportedOpError(node.kind, node.name,
                                     f"rank-{len(shape)} tensor; the generator supports up to 4-D")
        return [1] * (4 - len(shape)) + [int(d) for d in shape]

    def op_mul(self, node: Node, i: int) -> None:
        """TFLite's int8 MUL: ``zp_y + MultiplyByQuantizedMultiplier((a - zp_a)(b - zp_b), s_a s_b / s_y)``,
        clamped; operands broadcast numpy-style (a stride of 0 along their size-1 dimensions)."""
        at = node.attrs
        y = node.outputs[0]
        out = self.dims4(node, tuple(self.shapes[y]))
        if "const_b" in node.params:
            c = np.asarray(node.params["const_b"])
            if c.dtype != INT8:
                raise UnsupportedOpError(node.kind, node.name,
                                         f"{c.dtype} constant operand; the generator supports int8")
            b_buf, b_shape = self.array(f"ef_c{i}", "int8_t", c), tuple(c.shape)
        else:
            b_buf, b_shape = self.buf(node.inputs[1]), tuple(self.shapes[node.inputs[1]])
        steps = []
        for shape in (tuple(self.shapes[node.inputs[0]]), b_shape):
            d = self.dims4(node, shape)  # rank <= rank of y (the broadcast rule)
            steps += [0 if d[k] == 1 else int(np.prod(d[k + 1:])) for k in range(4)]
        self.descriptors.append(f"static const int32_t t{i}[12] = {{{', '.join(str(v) for v in out + steps)}}};")
        sa, sb, sy = (np.float32(at[k]) for k in ("a_scale", "b_scale", "out_scale"))
        m, s = _multiplier(float(sa) * float(sb) / float(sy), node)
        rq = self.array(f"ef_r{i}", "int32_t", np.concatenate([m, s]))
        act = at["activation"]
        lo, hi = _full_range(quant.activation_range(act[0], act[1], act[2], float(sy), at["out_zero_point"], INT8,
                                                    "tflm"), INT8)
        q = self.quant_desc(i, int(at["a_zero_point"]), int(at["out_zero_point"]), (lo, hi))
        self.calls.append(f"    ef_mul({self.buf(node.inputs[0])}, {b_buf}, {self.buf(y)}, t{i}, {q}, "
                          f"{int(at['b_zero_point'])}, {rq});")

    def pool_geom(self, node: Node, i: int, dilations: bool) -> str:
        at = node.attrs
        x, y = node.inputs[0], node.outputs[0]
        kernel = tuple(int(k) for k in at["kernel"])
        nd = len(kernel)
        strides = tuple(at["strides"] or (1,) * nd)
        pads, _, dil = pool_geometry(self.shapes[x], kernel, strides, at["pads"], at["auto_pad"], at["ceil_mode"],
                                     at.get("dilations") if dilations else None)
        if nd == 1:
            kernel, strides, dil, pads = (1,) + kernel, (1,) + strides, (1,) + tuple(dil), (0, pads[0], 0, pads[1])
        return self.geom_desc(i, self.spatial(x), self.spatial(y), kernel, strides, tuple(dil), (pads[0], pads[1]), 1)

    def op_max_pool(self, node: Node, i: int) -> None:
        g = self.pool_geom(node, i, dilations=True)
        self.calls.append(f"    ef_max_pool({self.buf(node.inputs[0])}, {self.buf(node.outputs[0])}, {g});")

    def op_avg_pool(self, node: Node, i: int) -> None:
        at = node.attrs
        g = self.pool_geom(node, i, dilations=False)
        sx, sy = np.float32(at["in_scale"]), np.float32(at["out_scale"])
        if sx == sy and at["in_zero_point"] == at["out_zero_point"]:  # TFLM averages the raw integers
            rq, q = "0", self.quant_desc(i, 0, 0, quant.qrange(INT8))
        else:
            m, s = _multiplier(float(sx) / float(sy), node)
            rq = self.array(f"ef_r{i}", "int32_t", np.concatenate([m, s]))
            q = self.quant_desc(i, int(at["in_zero_point"]), int(at["out_zero_point"]), quant.qrange(INT8))
        self.calls.append(f"    ef_avg_pool({self.buf(node.inputs[0])}, {self.buf(node.outputs[0])}, {g}, {q}, "
                          f"{int(at['count_include_pad'])}, {rq});")

    def op_global_avg_pool(self, node: Node, i: int) -> None:
        at = node.attrs
        x = node.inputs[0]
        c, n = int(self.shapes[x][1]), int(np.prod(self.shapes[x][2:]))
        sx, sy = np.float32(at["in_scale"]), np.float32(at["out_scale"])
        if at.get("tflite_mean", False):  # TFLite MEAN: the count folded into the multiplier of s_x / s_y
            m0, s0 = (int(v[0]) for v in _multiplier(float(sx) / float(sy), node))
            k = min(n.bit_length() - 1, 32, 31 + s0)
            m, s = np.array([(m0 << k) // n], dtype=np.int32), np.array([s0 - k], dtype=np.int32)
        else:
            m, s = _multiplier(float(sx) / (float(sy) * n), node)
        rq = self.array(f"ef_r{i}", "int32_t", np.concatenate([m, s]))
        q = self.quant_desc(i, int(at["in_zero_point"]), int(at["out_zero_point"]), quant.qrange(INT8))
        self.calls.append(f"    ef_global_avg_pool({self.buf(x)}, {self.buf(node.outputs[0])}, {c}, {n}, {q}, {rq});")

    def op_reshape(self, node: Node, i: int) -> None:
        x, y = node.inputs[0], node.outputs[0]
        if self.offset[x] != self.offset[y]:
            self.calls.append(f"    memmove({self.buf(y)}, {self.buf(x)}, {self.size(y)});")
        else:
            self.calls.append("    /* a view: shares its input's buffer */")

    def op_transpose(self, node: Node, i: int) -> None:
        x, y = node.inputs[0], node.outputs[0]
        shape = tuple(int(d) for d in self.shapes[x])
        rank = len(shape)
        perm = node.attrs["perm"]
        perm = list(range(rank))[::-1] if perm is None else [int(p) % rank for p in perm]
        if rank > 4:
            raise UnsupportedOpError(node.kind, node.name, f"rank {rank} (the generator transposes up to 4-D)")
        strides = [int(np.prod(shape[a + 1:])) for a in range(rank)]
        dims = [1] * (4 - rank) + [shape[p] for p in perm]
        steps = [0] * (4 - rank) + [strides[p] for p in perm]
        self.descriptors.append(f"static const int32_t t{i}[8] = {{{', '.join(str(v) for v in dims + steps)}}};")
        self.calls.append(f"    ef_transpose({self.buf(x)}, {self.buf(y)}, t{i});")

    def op_pad(self, node: Node, i: int) -> None:
        """Constant pad (the value the runtime holds: the input's zero point unless the model says
        otherwise) in the program's own layout; reflect / edge / wrap and pads of the batch are refused."""
        at = node.attrs
        if at["mode"] != "constant":
            raise UnsupportedOpError(node.kind, node.name, f"mode {at['mode']!r}; the generator supports constant pads")
        x, y = node.inputs[0], node.outputs[0]
        rank = len(self.shapes[x])
        axes = list(range(rank)) if at["axes"] is None else [int(a) % rank for a in at["axes"]]
        before = [0] * rank
        for k, a in enumerate(axes):
            before[a] = int(at["pads"][k])
            if at["pads"][k] < 0 or at["pads"][k + len(axes)] < 0:
                raise UnsupportedOpError(node.kind, node.name,
                                         "negative pads (a crop); the generator supports pads >= 0")
        if self.shapes[x][0] != self.shapes[y][0]:
            raise UnsupportedOpError(node.kind, node.name, "pads of the batch axis; the generator pads the other axes")
        dims = self.dims4(node, tuple(self.shapes[x])) + self.dims4(node, tuple(self.shapes[y]))
        dims += [0] * (4 - rank) + before
        self.descriptors.append(f"static const int32_t t{i}[12] = {{{', '.join(str(v) for v in dims)}}};")
        self.calls.append(f"    ef_pad({self.buf(x)}, {self.buf(y)}, t{i}, {int(at['value'])});")

    def op_lut(self, node: Node, i: int) -> None:
        """The runtime op's own outputs for the 256 int8 inputs, stored as a table: bit-equal by construction."""
        table = self.ops[node.name].run([np.arange(-128, 128, dtype=np.int8)], "tflm")[0]
        t = self.array(f"ef_t{i}", "int8_t", np.asarray(table, dtype=np.int8))
        x, y = node.inputs[0], node.outputs[0]
        self.calls.append(f"    ef_lut({self.buf(x)}, {self.buf(y)}, {self.size(y)}, {t});")

    def op_hard_swish(self, node: Node, i: int) -> None:
        """TFLite's int8 HARD_SWISH: the Q15 multipliers and exponents of ``edgeflow.runtime.ops.hard_swish``
        (``hard_swish_params``) as a ``model.c`` descriptor; no flash constants (as ``costs`` counts)."""
        hs = hard_swish_params(node)
        self.descriptors.append(f"static const int32_t h{i}[6] = {{{', '.join(str(v) for v in hs)}}};")
        x, y = node.inputs[0], node.outputs[0]
        self.calls.append(f"    ef_hard_swish({self.buf(x)}, {self.buf(y)}, {self.size(y)}, h{i});")

    def op_int_softmax(self, node: Node, i: int) -> None:
        """TFLite's int8 softmax: constants as ``edgeflow.runtime.ops.int_softmax`` (2**26: 5 integer bits)."""
        at = node.attrs
        if np.float32(at["out_scale"]) != np.float32(1 / 256) or int(at["out_zero_point"]) != -128:
            raise UnsupportedOpError(node.kind, node.name, "output quantization other than (1/256, -128)")
        real = min(float(at["beta"]) * float(np.float32(at["in_scale"])) * float(1 << 26), float(2**31 - 1))
        m, s = _multiplier(real, node)
        if s[0] < 0:
            raise UnsupportedOpError(node.kind, node.name, "beta * input scale too small for the fixed-point softmax")
        diff_min = -int(math.floor(31 * float(1 << 26) / (1 << int(s[0]))))
        x, y = node.inputs[0], node.outputs[0]
        shape = self.shapes[x]
        axis = int(at["axis"]) % len(shape)
        outer, n, inner = int(np.prod(shape[:axis])), int(shape[axis]), int(np.prod(shape[axis + 1:]))
        self.calls.append(f"    ef_int_softmax({self.buf(x)}, {self.buf(y)}, {outer}, {n}, {inner}, {int(m[0])}, "
                          f"{int(s[0])}, {diff_min});")

    def op_clamp(self, node: Node, i: int) -> None:
        at = node.attrs
        lo, hi = _full_range(quant.activation_range("clip", at["lo"], at["hi"], at["in_scale"], at["in_zero_point"],
                                                    INT8, "tflm"), INT8)
        x, y = node.inputs[0], node.outputs[0]
        self.calls.append(f"    ef_clamp({self.buf(x)}, {self.buf(y)}, {self.size(y)}, {lo}, {hi});")

    def rescale_array(self, node: Node, name: str, sx: float, sy: float) -> str:
        m, s = _multiplier(float(np.float32(sx)) / float(np.float32(sy)), node)
        return self.array(name, "int32_t", np.concatenate([m, s]))

    def op_rescale(self, node: Node, i: int) -> None:
        at = node.attrs
        sy = np.float32(at["out_scale"])
        clip = "clip" if (at["lo"] is not None or at["hi"] is not None) else None
        act = _full_range(quant.activation_range(clip, at["lo"], at["hi"], float(sy), at["out_zero_point"], INT8,
                                                 "tflm"), INT8)
        rq = self.rescale_array(node, f"ef_r{i}", at["in_scale"], at["out_scale"])
        q = self.quant_desc(i, int(at["in_zero_point"]), int(at["out_zero_point"]), act)
        x, y = node.inputs[0], node.outputs[0]
        self.calls.append(f"    ef_rescale({self.buf(x)}, {self.buf(y)}, {self.size(y)}, {q}, {rq});")

    def op_concat(self, node: Node, i: int) -> None:
        at = node.attrs
        y = node.outputs[0]
        out_shape = self.shapes[y]
        axis = int(at["axis"]) % len(out_shape)
        outer = int(np.prod(out_shape[:axis]))
        out_inner = int(np.prod(out_shape[axis:]))
        sy, zpy = np.float32(at["out_scale"]), int(at["out_zero_point"])
        start = 0
        for j, (x, s, zp) in enumerate(zip(node.inputs, at["in_scales"], at["in_zero_points"])):
            inner = int(np.prod(self.shapes[x][axis:]))
            rq, q = "0", "0"
            if not (np.float32(s) == sy and int(zp) == zpy):
                rq = self.rescale_array(node, f"ef_r{i}_{j}", s, float(sy))
                q = self.quant_desc(f"{i}_{j}", int(zp), zpy, quant.qrange(INT8))
            self.calls.append(f"    ef_concat_part({self.buf(x)}, {self.buf(y)} + {start}, {outer}, {inner}, "
                              f"{out_inner}, {q}, {rq});")
            start += inner


def _q15(real: float, node: Node) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier then DownScaleInt32ToInt16Multiplier: (Q15 multiplier, exponent)."""
    m, e = (int(v[0]) for v in _multiplier(real, node))
    return (2**15 - 1 if m >= 2**31 - 1 - (1 << 15) else (m + (1 << 15)) >> 16), e


def hard_swish_params(node: Node) -> tuple[int, int, int, int, int, int]:
    """(in_zp, out_zp, output Q15 multiplier, output exponent <= 0, relu-ish Q15 multiplier, relu-ish
    exponent) of a ``hard_swish`` node: TFLite's ``HardSwishPrepare`` in float32, as the runtime's op."""
    at = node.attrs
    f32 = np.float32
    hires = f32(f32(1.0 / 128.0) * f32(at["in_scale"]))
    out_m, out_e = _q15(float(f32(hires / f32(at["out_scale"]))), node)
    relu_m, relu_e = _q15(float(f32(hires / f32(3.0 / 32768.0))), node)
    if out_e > 0:
        raise UnsupportedOpError(node.kind, node.name, "input scale / (128 * output scale) >= 1")
    return int(at["in_zero_point"]), int(at["out_zero_point"]), out_m, out_e, relu_m, relu_e


def dsp_conv_scratch(cin: tuple[int, int, int], cout: tuple[int, int, int], kernel: tuple[int, int],
                     strides: tuple[int, int], dil: tuple[int, int], groups: int) -> int:
    """Stack bytes of the Cortex-M4 DSP conv kernel's scratch (``kernels.c``): two int16 im2col columns
    (groups 1), one zero-padded int16 input plane and a zero (depthwise up to 64 taps), else none."""
    if groups == 1:
        return 4 * cin[0] * kernel[0] * kernel[1]
    if groups == cin[0] and kernel[0] * kernel[1] <= 64:
        rows = (cout[1] - 1) * strides[0] + (kernel[0] - 1) * dil[0] + 1
        cols = (cout[2] - 1) * strides[1] + (kernel[1] - 1) * dil[1] + 1
        return 2 * (rows * cols + 1)
    return 0


def storage_bits(weight_bits: int, w: np.ndarray) -> int:
    """Bits a weight is stored in: 2 or 4 where ``weight_bits`` is at most that and every value fits
    that two's complement width (uniform 2-, 3-, 4-bit weights, binary ones in 2 bits), else 8."""
    lo, hi = (int(w.min()), int(w.max())) if w.size else (0, 0)
    for bits in (2, 4):
        if weight_bits <= bits and -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return bits
    return 8


def pack_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """An (M, K) int8 matrix at ``bits`` (8, 4 or 2) bits a value, as ``kernels.h`` lays it out: rows in
    groups of 8 / bits interleaved per column k (row j of a group in bits j * bits up of the byte), the
    last M mod (8 / bits) rows one flat stream; ceil(M * K * bits / 8) bytes (``costs.weight_bytes``).
    Returns the bytes as int8."""
    if bits == 8:
        return np.ascontiguousarray(w, dtype=np.int8)
    per = 8 // bits
    codes = (w.astype(np.int32) & ((1 << bits) - 1)).astype(np.uint32)
    full = len(w) - len(w) % per
    shifts = (np.arange(per, dtype=np.uint32) * bits)
    grouped = (codes[:full].reshape(full // per, per, w.shape[1]) << shifts[None, :, None]).sum(axis=1).reshape(-1)
    rest = codes[full:].reshape(-1)
    rest = np.concatenate([rest, np.zeros(-len(rest) % per, dtype=np.uint32)]).reshape(-1, per)
    flat = (rest << shifts[None, :]).sum(axis=1)
    return np.concatenate([grouped, flat]).astype(np.uint8).view(np.int8)


def lower(program: Program) -> CModel:
    """Check ``program`` and lower it to a ``CModel`` (see the module docstring).

    Raises ``UnsupportedOpError`` naming the op and node for anything outside ``SUPPORTED``, for
    non-int8 tensors or weights, non-zero weight zero points, broadcast adds, int32 outputs, pads
    other than constant (or of the batch axis) and tensors above 4-D in pad / mul.
    """
    return _Lowering(program).lower()
