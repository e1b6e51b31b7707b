"""The runtime's fast paths and their fallbacks, at the boundaries where the choice flips.

Group-1 convs and fully connected layers run on the exact int8 GEMM (``edgeflow.runtime.int8mm``) when the centred weights fit
int8 and every accumulator fits int32; otherwise (or where the kernel fails its self-check) on the
float32 GEMM or the generic path. Every path must give onnxruntime's integers (onnx rounding) and
the same integers as the others (tflm rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import edgeflow.runtime as rt
from edgeflow.runtime import int8mm
from tests.runtime_helpers import f32, ort_run, save, vi

U8, I8 = TensorProto.UINT8, TensorProto.INT8


def _conv_file(tmp_path, *, x_dtype=np.int8, w_dtype=np.int8, w_zp=0, c=5, m=6, k=(3, 3), strides=(1, 1),
               pads=(1, 0, 1, 2), sp=(7, 9), bias=None, seed=0, batch=3):
    rng = np.random.default_rng(seed)
    lo, hi = (0, 256) if x_dtype == np.uint8 else (-128, 128)
    x = rng.integers(lo, hi, (batch, c, *sp)).astype(x_dtype)
    wlo, whi = (0, 256) if w_dtype == np.uint8 else (-127, 128)
    w = rng.integers(wlo, whi, (m, c, *k)).astype(w_dtype)
    sx, sw = f32(0.02), f32(rng.uniform(1e-3, 0.05, m))
    b = rng.integers(-3000, 3000, m).astype(np.int32) if bias is None else np.full(m, bias, np.int32)
    sy = f32(sx * sw.mean() * np.sqrt(c * np.prod(k)) * 40)
    inits = {"xs": sx, "xz": np.asarray(lo + 7, x_dtype), "w": w, "ws": sw, "wz": np.full(m, w_zp, w_dtype),
             "ys": sy, "yz": np.asarray(3, x_dtype), "b": b}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            strides=list(strides), pads=list(pads), kernel_shape=list(k))
    t = U8 if x_dtype == np.uint8 else I8
    path = save([node], [vi("x", t, list(x.shape))], [vi("y", t, None)], inits, tmp_path / "conv.onnx")
    return path, {"x": x}


def _run_both(path, feeds, monkeypatch):
    """(int8-GEMM-enabled program, outputs per mode) and the outputs with the int8 GEMM switched off."""
    prog = rt.load(path)
    fast = {mode: prog.run(feeds, rounding=mode)[0] for mode in ("onnx", "tflm")}
    with monkeypatch.context() as mp:
        mp.setattr(int8mm, "_STATE", {"ok": False})
        slow_prog = rt.load(path)
        slow = {mode: slow_prog.run(feeds, rounding=mode)[0] for mode in ("onnx", "tflm")}
        assert all(op.imm is None for op in slow_prog.ops if op.kind in ("conv", "fully_connected"))
    return prog, fast, slow


def _conv(prog):
    return next(op for op in prog.ops if op.kind == "conv")


@pytest.mark.parametrize("case", [
    dict(),  # 3×3, asymmetric padding: int8 im2col
    dict(k=(1, 1), pads=(0, 0, 0, 0), c=16, m=24),  # 1×1: the NHWC input is the GEMM operand, no copy
    dict(k=(1, 1), pads=(0, 0, 0, 0), strides=(2, 2)),  # strided 1×1: copied columns
    dict(k=(3,), strides=(2,), pads=(2, 1), sp=(17,)),  # 1-D
    dict(x_dtype=np.uint8, w_dtype=np.uint8, w_zp=128),  # uint8 input shifted to int8; centred weights fit int8
])
def test_int8_gemm_path_matches_onnxruntime_and_fallback(tmp_path, monkeypatch, case):
    path, feeds = _conv_file(tmp_path, **case)
    prog, fast, slow = _run_both(path, feeds, monkeypatch)
    assert _conv(prog).imm is not None
    np.testing.assert_array_equal(fast["onnx"], ort_run(path, feeds)[0])
    for mode in fast:
        np.testing.assert_array_equal(fast[mode], slow[mode])


def test_int8_gemm_declines_weights_outside_int8(tmp_path, monkeypatch):
    # uint8 weights with zero point 0: centred values up to 255 do not fit int8 -> the float32 paths
    path, feeds = _conv_file(tmp_path, x_dtype=np.uint8, w_dtype=np.uint8, w_zp=0)
    prog, fast, slow = _run_both(path, feeds, monkeypatch)
    assert _conv(prog).imm is None
    np.testing.assert_array_equal(fast["onnx"], ort_run(path, feeds)[0])


def test_int8_gemm_declines_accumulators_beyond_int32(tmp_path, monkeypatch):
    # a bias near 2**31: the actual sums stay in int32, but the bound 128·Σ|w| + |offset| does not
    path, feeds = _conv_file(tmp_path, c=2, m=3, bias=2**31 - 2**17)
    prog, fast, slow = _run_both(path, feeds, monkeypatch)
    conv = _conv(prog)
    assert conv.imm is None and not conv.fast_gemm  # nor float32-exact: the generic int64 path
    np.testing.assert_array_equal(fast["onnx"], ort_run(path, feeds)[0])
    np.testing.assert_array_equal(fast["tflm"], slow["tflm"])


def test_fits_int32_boundary():
    w = np.array([[100], [-27]], np.int8)  # Σ|w| = 127
    edge = 2**31 - 128 * 127
    assert int8mm.fits_int32(128, w, np.array([edge - 1]))
    assert not int8mm.fits_int32(128, w, np.array([edge]))
    assert not int8mm.fits_int32(128, w, np.array([-edge]))


def test_self_check_rejects_a_saturating_kernel():
    torch = pytest.importorskip("torch")
    assert int8mm._self_check(torch) == int8mm.available()

    class Saturating:  # a pre-VNNI style kernel: int16 pair sums saturate
        from_numpy = staticmethod(torch.from_numpy)

        @staticmethod
        def _int_mm(a, b):
            a64, b64 = a.numpy().astype(np.int64), b.numpy().astype(np.int64)
            k = a64.shape[1] // 2 * 2
            pairs = a64[:, 0:k:2, None] * b64[None, 0:k:2] + a64[:, 1:k:2, None] * b64[None, 1:k:2]
            out = np.clip(pairs, -32768, 32767).sum(axis=1) + (a64[:, k:] @ b64[k:])
            return torch.from_numpy(out.astype(np.int32))

    assert not int8mm._self_check(Saturating)


def _fc(prog):
    return next(op for op in prog.ops if op.kind == "fully_connected")


@pytest.mark.parametrize("x_dtype", [np.int8, np.uint8])
def test_fully_connected_int8_gemm_matches_onnxruntime_and_fallback(tmp_path, monkeypatch, x_dtype):
    rng = np.random.default_rng(3)
    lo, hi = (0, 256) if x_dtype == np.uint8 else (-128, 128)
    t = U8 if x_dtype == np.uint8 else I8
    a = rng.integers(lo, hi, (2, 5, 40)).astype(x_dtype)  # batched rows: (..., K)
    w = rng.integers(-127, 128, (40, 7)).astype(np.int8)
    inits = {"as": f32(0.02), "az": np.asarray(lo + 9, x_dtype), "w": w, "ws": f32(rng.uniform(1e-3, 0.05, 7)),
             "wz": np.zeros(7, np.int8), "ys": f32(0.02 * 0.03 * 40), "yz": np.asarray(lo + 5, x_dtype)}
    node = helper.make_node("QLinearMatMul", ["a", "as", "az", "w", "ws", "wz", "ys", "yz"], ["y"])
    path = save([node], [vi("a", t, list(a.shape))], [vi("y", t, None)], inits, tmp_path / "mm.onnx")
    prog, fast, slow = _run_both(path, {"a": a}, monkeypatch)
    assert _fc(prog).imm is not None
    np.testing.assert_array_equal(fast["onnx"], ort_run(path, {"a": a})[0])
    for mode in fast:
        np.testing.assert_array_equal(fast[mode], slow[mode])


def test_matmul_integer_int32_output_on_int8_gemm(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (6, 33)).astype(np.uint8)
    b = rng.integers(-128, 128, (33, 5)).astype(np.int8)
    node = helper.make_node("MatMulInteger", ["a", "b", "az"], ["y"])
    path = save([node], [vi("a", U8, [6, 33])], [vi("y", TensorProto.INT32, None)],
                {"b": b, "az": np.uint8(100)}, tmp_path / "mi.onnx")
    prog, fast, slow = _run_both(path, {"a": a}, monkeypatch)
    assert _fc(prog).imm is not None and fast["onnx"].dtype == np.int32
    np.testing.assert_array_equal(fast["onnx"], ort_run(path, {"a": a})[0])
    np.testing.assert_array_equal(fast["onnx"], slow["onnx"])


@pytest.mark.parametrize("acc_dtype", [np.float32, np.int32])
@pytest.mark.parametrize("out_dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("path", ["native", "torch-bits", "torch"])
def test_requantization_paths_match_numpy(acc_dtype, out_dtype, path, monkeypatch):
    """``Requant.apply_last`` gives ``requantize_onnx``'s integers on every path — the compiled fused
    loop (``runtime.native``), torch's kernels through the float-bits cast and the four-pass torch
    fallback: .5 ties (power-of-two multipliers), odd and even zero points, saturation, activation
    clamps, int32 beyond 2**24, an int32 offset per channel."""
    torch = pytest.importorskip("torch")
    from edgeflow.runtime import native, quant
    from edgeflow.runtime.ops import base
    from edgeflow.runtime.ops.base import Requant

    if path == "native":
        if native.kernels() is None:
            pytest.skip("no C compiler: the runtime requantizes on torch")
    else:
        monkeypatch.setitem(native._STATE, "rq", None)
        assert base._wrapping_cast(torch)  # this torch's int32 -> int8 cast wraps: the fast path is the one in use
        monkeypatch.setitem(base._CAST, "ok", path == "torch-bits")

    rng = np.random.default_rng(3)
    for i in range(40):
        c = int(rng.choice([1, 3, 16, 64]))
        sw = f32(rng.uniform(1e-4, 0.05, c)) if i % 2 else np.full(c, f32(2.0 ** -int(rng.integers(1, 10))))
        zp = int(rng.integers(*quant.qrange(out_dtype))) // 2 * 2 + i % 2
        act = [(None, None, None), ("relu", 0.0, None), ("clip", 0.0, 6.0)][i % 3]
        rq = Requant(0.5 if i % 2 == 0 else float(rng.uniform(1e-3, 0.1)), sw, 1.0 if i % 2 == 0 else 0.05, zp,
                     np.dtype(out_dtype), act)
        big = 2**31 - 1 if acc_dtype == np.int32 else 2**24 - 1
        acc = rng.integers(-big, big, (int(rng.integers(1, 200)), c)) // rng.choice([1, 2**8, 2**16])
        acc = acc.astype(acc_dtype)
        lo, hi = rq.act_range["onnx"]
        want = quant.requantize_onnx(acc.copy(), rq.onnx_mult, zp, np.dtype(out_dtype), lo, hi)
        got = rq.apply_last(acc.copy(), "onnx", np.empty(acc.shape, out_dtype))
        np.testing.assert_array_equal(got, want)
        if acc_dtype == np.int32:  # the conv's int8 path hands the offset over separately
            off = rng.integers(-2**12, 2**12, c).astype(np.int32)
            part = (acc.astype(np.int64) - off).clip(-2**31 + 2**12, 2**31 - 1 - 2**12).astype(np.int32)
            want = quant.requantize_onnx((part + off).astype(np.int32), rq.onnx_mult, zp, np.dtype(out_dtype), lo, hi)
            got = rq.apply_last(part.copy(), "onnx", np.empty(acc.shape, out_dtype), off)
            np.testing.assert_array_equal(got, want)


def test_native_kernels_are_optional(monkeypatch, tmp_path):
    """Without a C compiler, or with ``EDGEFLOW_NATIVE=0``, ``kernels()`` is None (the runtime keeps
    its torch / numpy requantization); with one, the compiled file is cached and reused."""
    from edgeflow.runtime import native

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    assert native.kernels() is None
    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.setenv("EDGEFLOW_NATIVE", "0")
    monkeypatch.delenv("CC")
    assert native.kernels() is None
    monkeypatch.setattr(native, "_STATE", {})
    monkeypatch.delenv("EDGEFLOW_NATIVE")
    if native._compile() is None:
        pytest.skip("no C compiler")
    assert native.kernels() is not None
    assert len(list((tmp_path / "edgeflow" / "native").glob("requant-*.so"))) == 1


def test_program_runs_its_torch_kernels_on_one_thread(tmp_path):
    """At torch's default thread count, every op of ``Program.run`` sees one intra-op thread (a
    second OpenMP thread kept off a busy core stalls each small parallel call by milliseconds), and
    the caller's setting is back afterwards."""
    torch = pytest.importorskip("torch")
    path, feeds = _conv_file(tmp_path)
    prog = rt.load(path)
    seen = []
    for op in prog.ops:
        run = op.run
        op.run = lambda values, mode, run=run: (seen.append(torch.get_num_threads()), run(values, mode))[1]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        prog.run(feeds)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_loading_a_program_does_not_import_torch(tmp_path):
    """Loading (and costing) a program is torch-free: the fast paths that need torch are prepared at
    the first run (``edgeflow-profile model.onnx`` without data answers without torch's import)."""
    import subprocess
    import sys

    path, _ = _conv_file(tmp_path)
    code = ("import sys, edgeflow.runtime as rt; p = rt.load(sys.argv[1]); p.profile(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
