"""Exact int8 × int8 → int32 GEMM on torch's integer matmul (``torch._int_mm``, oneDNN VNNI kernels).

``matmul(a, w)`` returns ``a @ w`` for int8 ``a`` (R, K) and a prepared int8 weight (K, M) as an
int32 (R, M) array — exact integer accumulation with no 2**24 bound, no float conversion of the
input and ~4× the speed of the float32 GEMM on these shapes. Callers guarantee that no sum
leaves int32 (``fits_int32``).

Some int8 GEMM kernels (pre-VNNI ``vpmaddubsw``) saturate intermediate int16 pair sums; ``available``
runs the kernel once per process on operands that would saturate such a kernel (and on odd shapes)
and enables this path only when every result is exact. Without torch or ``_int_mm`` it is off.
torch is imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeflow.runtime.intgemm import single_threaded_torch

INT32_LIMIT = 2**31
_STATE: dict[str, Any] = {}


def fits_int32(bound_a: float, w: np.ndarray, offset: np.ndarray | int) -> bool:
    """True when ``bound_a · Σ_k |w[k, m]| + |offset[m]| < 2**31`` for every column m of ``w`` (K, M)."""
    l1 = np.abs(w.astype(np.int64)).sum(axis=0)
    off = np.abs(np.asarray(offset, dtype=np.int64))
    return bool((bound_a * l1 + off).max(initial=0) < INT32_LIMIT)


def _self_check(torch) -> bool:
    """``_int_mm`` exact on saturating operands (|a·b| pair sums up to 2**15 and more) and odd shapes."""
    rng = np.random.default_rng(0)
    cases = [np.full((17, 64), 127, np.int8), np.full((17, 64), -128, np.int8),
             rng.integers(-128, 128, (33, 27)).astype(np.int8), rng.integers(-128, 128, (5, 3)).astype(np.int8)]
    for a in cases:
        k = a.shape[1]
        for b in (np.full((k, 24), 127, np.int8), np.full((k, 24), -128, np.int8),
                  rng.integers(-128, 128, (k, 8)).astype(np.int8)):
            got = torch._int_mm(torch.from_numpy(a), torch.from_numpy(b)).numpy()
            if not np.array_equal(got, a.astype(np.int64) @ b.astype(np.int64)):
                return False
    return True


def available() -> bool:
    """Whether the exact int8 GEMM can be used in this process (checked once)."""
    if "ok" not in _STATE:
        try:
            import torch

            with single_threaded_torch:
                _STATE["ok"] = bool(hasattr(torch, "_int_mm") and _self_check(torch))
            _STATE["torch"] = torch
        except Exception:  # noqa: BLE001 - no torch, or a build without a CPU int8 matmul: the float path
            _STATE["ok"] = False
    return _STATE["ok"]


def weight(w: np.ndarray) -> Any:
    """An int8 (K, M) weight (values in [-128, 127]) prepared for ``matmul``."""
    return _STATE["torch"].from_numpy(np.ascontiguousarray(w, dtype=np.int8))


def matmul(a: np.ndarray, w: Any, offset: Any = None, out: np.ndarray | None = None) -> np.ndarray:
    """int32 ``a @ w (+ offset)`` for int8 ``a`` (R, K) and ``w`` from ``weight``; ``offset``: an
    int32 vector (M,) added to every row; ``out``: a contiguous int32 (R, M) array to write
    (a reused, cache-warm buffer), else a new one. Runs on one thread (small GEMMs: thread
    synchronisation costs more than it saves, and stalls on a loaded machine)."""
    torch = _STATE["torch"]
    with single_threaded_torch:
        if out is None:
            acc = torch._int_mm(torch.from_numpy(a), w)
        else:
            acc = torch._int_mm(torch.from_numpy(a), w, out=torch.from_numpy(out))
        if offset is not None:
            acc.add_(torch.from_numpy(offset))
    return acc.numpy()
