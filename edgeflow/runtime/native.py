"""The onnx-mode requantization (and the centring of a conv's int8 input) as fused C loops,
compiled on first use (optional).

``quant.requantize_onnx`` on numpy or torch takes four to six passes over the accumulators (offset
add, int32 → float32, multiply, round, clamp, cast); onnxruntime does it in one, inside its GEMM.
This module compiles a C file of the same arithmetic — ``float32(acc + offset[c]) * M[c]``, clamp to
``[lo - zp, hi - zp]``, ``rintf`` (round half to even, the default rounding mode), ``+ zp``, cast —
with the C compiler found as ``$CC`` or ``cc`` (``-O3 -march=native -ffp-contract=off``: no fused
multiply-add, which would round once instead of twice), loads it with ``ctypes`` and checks it once
per process against ``quant.requantize_onnx`` on .5 ties, saturation, odd and even zero points and
accumulators beyond 2**24. ``centre`` writes ``float32(x) - zp`` of an 8-bit tensor in one pass (the
input of ``torchconv``; torch's cast and subtraction take two). The shared object is cached under
``$XDG_CACHE_HOME/edgeflow/native`` (``~/.cache``), keyed by the source, the compiler and the CPU's
flags. Without a compiler, with
``EDGEFLOW_NATIVE=0``, or when the check fails, ``kernels()`` is None and the runtime keeps its
torch / numpy requantization: the outputs are the same integers either way.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = r"""
#include <math.h>
#include <stdint.h>

/* off / mult: per-channel values tiled `tile` rows long (one long vectorised inner loop, however
   few the channels) */
#define EF_RQ(NAME, ACC_T, OUT_T)                                                                    \
void NAME(const ACC_T *acc, const int32_t *off, const float *mult, int64_t rows, int64_t cols,       \
          int64_t tile, float lo, float hi, float zp, OUT_T *out) {                                  \
    for (int64_t r = 0; r < rows; r += tile) {                                                       \
        const ACC_T *a = acc + r * cols;                                                             \
        OUT_T *o = out + r * cols;                                                                   \
        int64_t n = (rows - r < tile ? rows - r : tile) * cols;                                      \
        for (int64_t i = 0; i < n; i++) {                                                            \
            float v = (float)(a[i] + (ACC_T)off[i]) * mult[i];                                       \
            v = v < lo ? lo : v;                                                                     \
            v = v > hi ? hi : v;                                                                     \
            o[i] = (OUT_T)(int32_t)(rintf(v) + zp);                                                  \
        }                                                                                            \
    }                                                                                                \
}

EF_RQ(ef_rq_i32_i8, int32_t, int8_t)
EF_RQ(ef_rq_i32_u8, int32_t, uint8_t)
EF_RQ(ef_rq_f32_i8, float, int8_t)
EF_RQ(ef_rq_f32_u8, float, uint8_t)

#define EF_CENTRE(NAME, IN_T)                                                                        \
void NAME(const IN_T *x, int64_t n, float zp, float *out) {                                          \
    for (int64_t i = 0; i < n; i++) out[i] = (float)x[i] - zp;                                       \
}

EF_CENTRE(ef_centre_i8, int8_t)
EF_CENTRE(ef_centre_u8, uint8_t)
"""

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
_STATE: dict[str, Any] = {}


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeflow" / "native"


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _compile() -> Path | None:
    """The cached shared object, compiled (atomically) when missing; None without a compiler."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        return None
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256("\n".join((SOURCE, " ".join(FLAGS), version, _cpu_flags(), platform.machine())).encode())
    folder = _cache_dir()
    lib = folder / f"requant-{key.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        src, obj = Path(tmp) / "requant.c", Path(tmp) / "requant.so"
        src.write_text(SOURCE)
        done = subprocess.run([cc, *FLAGS, "-o", str(obj), str(src), "-lm"], capture_output=True, timeout=120)
        if done.returncode != 0:
            return None
        os.replace(obj, lib)  # concurrent processes: the last complete file wins, never a partial one
    return lib


class Kernels:
    """The loaded C functions: ``requantize(acc, offset, mult, lo, hi, zp, out)``, ``centre(x, zp, out)``."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        p, i64, f32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
        self.fns = {}
        for acc_t in ("i32", "f32"):
            for out_t in ("i8", "u8"):
                fn = getattr(lib, f"ef_rq_{acc_t}_{out_t}")
                fn.argtypes = (p, p, p, i64, i64, i64, f32, f32, f32, p)
                fn.restype = None
                self.fns[(np.dtype(np.int32 if acc_t == "i32" else np.float32),
                          np.dtype(np.int8 if out_t == "i8" else np.uint8))] = fn
        self.centres = {}
        for in_t, dt in (("i8", np.int8), ("u8", np.uint8)):
            fn = getattr(lib, f"ef_centre_{in_t}")
            fn.argtypes = (p, i64, f32, p)
            fn.restype = None
            self.centres[np.dtype(dt)] = fn

    def supports(self, acc: np.ndarray, out: np.ndarray) -> bool:
        return (acc.dtype, out.dtype) in self.fns and acc.ndim == 2 and acc.shape == out.shape and \
            acc.flags.c_contiguous and out.flags.c_contiguous

    def requantize(self, acc: np.ndarray, offset: np.ndarray, mult: np.ndarray, lo: int, hi: int, zp: int,
                   out: np.ndarray) -> np.ndarray:
        """``out = rint(clamp(float32(acc + offset[c]) * mult[c], lo - zp, hi - zp)) + zp`` for a
        C-contiguous (R, C) ``acc`` (int32 or float32), and ``out`` int8 / uint8 of acc's shape
        (``supports``); ``offset`` (int32) and ``mult`` (float32) hold the C per-channel values tiled
        T rows long (``tile``), T·C values."""
        rows, cols = acc.shape
        self.fns[(acc.dtype, out.dtype)](acc.ctypes.data, offset.ctypes.data, mult.ctypes.data, rows, cols,
                                         mult.size // cols, float(lo - zp), float(hi - zp), float(zp), out.ctypes.data)
        return out

    def centre(self, x: np.ndarray, zp: int, out: np.ndarray) -> np.ndarray:
        """``out = float32(x) - zp`` for C-contiguous 8-bit ``x`` and float32 ``out`` of the same size."""
        self.centres[x.dtype](x.ctypes.data, x.size, float(zp), out.ctypes.data)
        return out


def tile(values: np.ndarray, dtype: Any, cols: int) -> np.ndarray:
    """Per-channel ``values`` (C of them, or one) tiled over about 1024 elements of whole rows: the
    ``offset`` / ``mult`` argument of ``Kernels.requantize``."""
    row = np.broadcast_to(np.asarray(values, dtype), (cols,))
    return np.ascontiguousarray(np.tile(row, max(1, 1024 // cols)))


def _self_check(rq: Kernels) -> bool:
    """The C loop against ``quant.requantize_onnx``: power-of-two multipliers (exact .5 ties),
    saturation, activation bounds, odd and even zero points, int32 beyond 2**24."""
    from edgeflow.runtime import quant

    rng = np.random.default_rng(0)
    for i in range(24):
        cols = int(rng.choice([1, 3, 17, 64]))
        ties = np.full(cols, 2.0 ** -int(rng.integers(1, 12)))  # power-of-two multipliers: exact .5 values
        mult = (ties if i % 2 else rng.uniform(1e-4, 0.3, cols)).astype(np.float32)
        big = 2**31 - 2**20 if i % 3 == 0 else 2**24 - 1
        rows = int(rng.integers(1, 90))
        acc = rng.integers(-big, big, (rows, cols)).astype(np.int64) // int(rng.choice([1, 256, 65536]))
        off = rng.integers(-2**19, 2**19, cols).astype(np.int32) if i % 4 else np.zeros(cols, np.int32)
        for out_dtype in (np.int8, np.uint8):
            qmin, qmax = quant.qrange(out_dtype)
            zp = int(rng.integers(qmin, qmax + 1))
            lo, hi = (qmin, qmax) if i % 5 else (max(qmin, zp), qmax)
            total = acc + off
            for acc_dtype in (np.int32, np.float32):
                a = total.astype(acc_dtype)
                want = quant.requantize_onnx(a.copy(), mult, zp, np.dtype(out_dtype), lo, hi)
                src = acc.astype(np.int32) if acc_dtype == np.int32 else a
                o = tile(off if acc_dtype == np.int32 else 0, np.int32, cols)
                got = rq.requantize(np.ascontiguousarray(src), o, tile(mult, np.float32, cols), lo, hi, zp,
                                    np.empty(a.shape, out_dtype))
                if not np.array_equal(got, want):
                    return False
    for dtype in (np.int8, np.uint8):
        x = np.arange(256, dtype=np.int64).astype(dtype)
        if not np.array_equal(rq.centre(x, 37, np.empty(256, np.float32)), x.astype(np.float32) - np.float32(37)):
            return False
    return True


def kernels() -> Kernels | None:
    """The fused kernels of this process (compiled, loaded and checked once), or None."""
    if "rq" not in _STATE:
        rq = None
        if os.environ.get("EDGEFLOW_NATIVE", "1") != "0":
            try:
                path = _compile()
                rq = Kernels(ctypes.CDLL(str(path))) if path is not None else None
                if rq is not None and not _self_check(rq):
                    rq = None
            except (OSError, subprocess.SubprocessError, AttributeError):
                rq = None
        _STATE["rq"] = rq
    return _STATE["rq"]
