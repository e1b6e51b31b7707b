"""Bytes of a weight tensor in each storage format, and the choice of the best one.

Imports numpy only (torch tensors are accepted and converted), so the pruning methods and the
runtime can use it cheaply.

A weight tensor is viewed as a 2-D matrix ``[rows, cols]``: ``rows`` = its first dimension (output
channels / output features), ``cols`` = the product of the others (``in/groups · kernel``), conv
weights taken in channels-last order ``[O, *kernel, I]`` (the im2col order of CMSIS-NN and the block
layout of N:M pruning). Every
format packs its values at ``bits`` per value and rounds the whole tensor up to whole bytes once
(sub-byte values are packed back to back, as a deployment would pack them).

Formats and the index widths assumed (``index_bits(n)`` = the smallest of 8, 16, 32 bits able to hold
``n``; byte-aligned indices are what MCU sparse kernels read without shifting):

``dense``
    ``ceil(numel · bits / 8)``.
``csr``
    values ``nnz · bits`` + column indices ``nnz · index_bits(cols − 1)`` + row pointers
    ``(rows + 1) · index_bits(nnz)``.
``csc``
    as CSR on the transpose: row indices ``nnz · index_bits(rows − 1)`` + column pointers
    ``(cols + 1) · index_bits(nnz)``.
``nm`` (N:M with indices, M = ``m``, default 4)
    each row is cut into ``ceil(cols / M)`` groups of M consecutive weights (the last one padded);
    N = the largest number of non-zeros in any group (so the format holds this exact tensor); each
    group stores N values and N in-group indices of ``ceil(log2 M)`` bits:
    ``rows · ceil(cols / M) · N · (bits + ceil(log2 M))`` bits. Also returned: ``nm_n``/``nm_m``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FORMATS = ("dense", "csr", "csc", "nm")


def index_bits(max_value: int) -> int:
    """Smallest byte-aligned unsigned width (8, 16 or 32 bits) that holds ``max_value``."""
    if max_value < 2**8:
        return 8
    if max_value < 2**16:
        return 16
    return 32


def _as_matrix(weight: Any) -> np.ndarray:
    if hasattr(weight, "detach"):  # torch tensor, without importing torch
        weight = weight.detach().cpu().numpy()
    w = np.asarray(weight)
    if w.ndim == 0:
        w = w.reshape(1, 1)
    elif w.ndim == 1:
        w = w.reshape(1, -1)
    elif w.ndim >= 3:  # conv [O, I, *k] -> channels-last rows [O, *k, I] (CMSIS-NN / N:M block order)
        w = np.moveaxis(w, 1, -1)
    return w.reshape(w.shape[0], -1)


def _bytes(bits_total: int) -> int:
    return int(math.ceil(bits_total / 8))


def storage_bytes(weight: Any, bits: int, m: int = 4, mask: Any = None) -> dict[str, int]:
    """Bytes of ``weight`` stored as dense, CSR, CSC and N:M at ``bits`` per value.

    ``weight``: a torch tensor or numpy array (any rank ≥ 1; see the module docstring for the 2-D
    view). ``mask`` (optional, same shape, 0/1) marks kept weights; otherwise exact zeros are pruned.
    Returns ``{"dense", "csr", "csc", "nm": bytes, "nm_n": N, "nm_m": M, "nnz": count}``.
    """
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    if m < 2:
        raise ValueError(f"m must be >= 2, got {m}")
    w = _as_matrix(weight)
    nz = (_as_matrix(mask) != 0) if mask is not None else (w != 0)
    rows, cols = w.shape
    nnz = int(nz.sum())
    dense = _bytes(rows * cols * bits)
    csr = _bytes(nnz * bits + nnz * index_bits(max(cols - 1, 0)) + (rows + 1) * index_bits(nnz))
    csc = _bytes(nnz * bits + nnz * index_bits(max(rows - 1, 0)) + (cols + 1) * index_bits(nnz))
    groups = -(-cols // m)
    padded = np.zeros((rows, groups * m), dtype=bool)
    padded[:, :cols] = nz
    n = int(padded.reshape(rows, groups, m).sum(axis=2).max()) if nnz else 0
    nm = _bytes(rows * groups * n * (bits + int(math.ceil(math.log2(m)))))
    return {"dense": dense, "csr": csr, "csc": csc, "nm": nm, "nm_n": n, "nm_m": m, "nnz": nnz}


def best_format(sizes: dict[str, int], supported: tuple[str, ...] | list[str] = ("dense",)) -> tuple[str, int]:
    """The smallest of ``sizes`` among the ``supported`` formats; dense is always allowed.

    Ties go to the earlier format in ``FORMATS`` order (dense first: no index decoding).
    """
    allowed = [f for f in FORMATS if f in sizes and (f == "dense" or f in supported)]
    name = min(allowed, key=lambda f: (sizes[f], FORMATS.index(f)))
    return name, int(sizes[name])
