"""Helpers for the runtime tests: tiny ONNX graphs built with onnx.helper, run in onnxruntime, and
edgeflow's own QDQ exports of the zoo."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeflow.export.ort import ort_session

OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]


def ort_run(path, feeds):
    return ort_session(path).run(None, feeds)


def save(nodes, inputs, outputs, inits, path):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=OPSET)
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def f32(v):
    return np.asarray(v, dtype=np.float32)


def i8(v):
    return np.asarray(v, dtype=np.int8)


ZOO = {"resnet8": ((3, 32, 32), 10), "dscnn": ((1, 49, 10), 12), "mobilenet_v1": ((3, 96, 96), 2),
       "tcn": ((1, 40), 10), "cnn": ((1, 8, 8), 10), "autoencoder": ((640,), 10), "mlp": ((1, 8, 8), 10)}


def zoo_quantized(name):
    """Zoo model ``name`` (seeded random weights, non-trivial BN statistics) quantized W8A8 by
    edgeflow and calibrated on random data, observers frozen: what ``zoo_qdq_export`` exports."""
    import torch

    from edgeflow.methods.quantization import QuantConfig, calibrate, freeze_observers, quantize_model
    from edgeflow.models import build_model

    shape, classes = ZOO[name]
    torch.manual_seed(0)
    model = build_model(name, shape, classes).eval()
    for module in model.modules():  # non-trivial BN statistics, so folding matters
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 2.0)
    quantized = quantize_model(model, shape, QuantConfig())
    calibrate(quantized, [(torch.randn(16, *shape), None) for _ in range(4)], 4)
    freeze_observers(quantized)
    return quantized


def zoo_qdq_export(name, out_dir, quantized=None):
    """``zoo_quantized(name)`` (or the given ``quantized`` model) exported as QDQ ONNX into ``out_dir``;
    returns the path."""
    from edgeflow.export.qdq import export_qdq

    return export_qdq(quantized if quantized is not None else zoo_quantized(name), ZOO[name][0],
                      out_dir / f"{name}.onnx")


# ---------------------------------------------------------------------------------------- .tflite
TFL_TYPES = {np.dtype(np.float32): 0, np.dtype(np.int32): 2, np.dtype(np.uint8): 3, np.dtype(np.int64): 4,
             np.dtype(np.int16): 7, np.dtype(np.int8): 9}


def tfl_tensor(name, shape, dtype, scale=None, zp=None, data=None, qdim=0):
    """A tensor of ``tflite_file``: per-tensor or per-channel ``scale``/``zp`` lists, constant ``data``."""
    return {"name": name, "shape": list(shape), "dtype": np.dtype(dtype), "data": data, "qdim": qdim,
            "scale": None if scale is None else [float(s) for s in np.atleast_1d(scale)],
            "zp": None if zp is None else [int(z) for z in np.atleast_1d(zp)]}


def tflite_file(path, tensors, ops, inputs, outputs):
    """Write a one-subgraph ``.tflite`` with the ``tflite`` package's flatbuffers builders (no TensorFlow).

    ``ops``: (BUILTIN_NAME, input indices, output indices, options table name or None, {field: value}).
    """
    import flatbuffers
    import tflite
    from tflite.utils import BUILTIN_OPCODE2NAME

    codes = {v: k for k, v in BUILTIN_OPCODE2NAME.items()}
    b = flatbuffers.Builder(1024)

    def ivec(values, dtype=np.int32):
        return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

    def tables(offsets):
        b.StartVector(4, len(offsets), 4)
        for o in reversed(offsets):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    buffers = []
    tensor_buffer = []
    for t in tensors:
        if t["data"] is None:
            tensor_buffer.append(0)
            continue
        raw = np.ascontiguousarray(np.asarray(t["data"], dtype=t["dtype"])).tobytes()
        data = b.CreateNumpyVector(np.frombuffer(raw, dtype=np.uint8))
        tflite.BufferStart(b)
        tflite.BufferAddData(b, data)
        buffers.append(tflite.BufferEnd(b))
        tensor_buffer.append(len(buffers))
    tflite.BufferStart(b)
    empty = tflite.BufferEnd(b)
    buffers = [empty] + buffers
    tensor_offsets = []
    for t, buf in zip(tensors, tensor_buffer):
        name = b.CreateString(t["name"])
        shape = ivec(t["shape"])
        quant = None
        if t["scale"] is not None:
            scale = b.CreateNumpyVector(np.asarray(t["scale"], dtype=np.float32))
            zp = ivec(t["zp"] if t["zp"] is not None else [0] * len(t["scale"]), np.int64)
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zp)
            tflite.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
            quant = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, TFL_TYPES[t["dtype"]])
        tflite.TensorAddBuffer(b, buf)
        tflite.TensorAddName(b, name)
        if quant is not None:
            tflite.TensorAddQuantization(b, quant)
        tensor_offsets.append(tflite.TensorEnd(b))
    names = sorted({op[0] for op in ops})
    code_offsets = []
    for n in names:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(codes[n], 127))
        tflite.OperatorCodeAddBuiltinCode(b, codes[n])
        tflite.OperatorCodeAddVersion(b, 1)
        code_offsets.append(tflite.OperatorCodeEnd(b))
    op_offsets = []
    for name, ins, outs, opt_name, fields in ops:
        iv, ov = ivec(ins), ivec(outs)
        opt = None
        if opt_name is not None:
            vectors = {k: ivec(v) for k, v in fields.items() if isinstance(v, (list, tuple))}
            getattr(tflite, f"{opt_name}Start")(b)
            for k, v in fields.items():
                getattr(tflite, f"{opt_name}Add{k}")(b, vectors.get(k, v))
            opt = getattr(tflite, f"{opt_name}End")(b)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, names.index(name))
        tflite.OperatorAddInputs(b, iv)
        tflite.OperatorAddOutputs(b, ov)
        if opt is not None:
            tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, opt_name))
            tflite.OperatorAddBuiltinOptions(b, opt)
        op_offsets.append(tflite.OperatorEnd(b))
    tv, opv = tables(tensor_offsets), tables(op_offsets)
    inv, outv = ivec(inputs), ivec(outputs)
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tv)
    tflite.SubGraphAddInputs(b, inv)
    tflite.SubGraphAddOutputs(b, outv)
    tflite.SubGraphAddOperators(b, opv)
    sg = tflite.SubGraphEnd(b)
    sgv, cv, bv = tables([sg]), tables(code_offsets), tables(buffers)
    desc = b.CreateString("edgeflow test model")
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, cv)
    tflite.ModelAddSubgraphs(b, sgv)
    tflite.ModelAddDescription(b, desc)
    tflite.ModelAddBuffers(b, bv)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


def litert_run(path, x):
    """LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``) on each sample of ``x`` (batch 1;
    a list of arrays for several inputs)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    xs = x if isinstance(x, list) else [x]
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    ins, o = [d["index"] for d in it.get_input_details()], it.get_output_details()[0]["index"]
    outs = []
    for k in range(len(xs[0])):
        for i, a in zip(ins, xs):
            it.set_tensor(i, a[k:k + 1])
        it.invoke()
        outs.append(it.get_tensor(o)[0].copy())
    return np.stack(outs)
