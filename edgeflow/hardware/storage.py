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

Codebook formats (weight sharing, Deep Compression), present only when the tensor holds at most
``MAX_CODEBOOK`` distinct non-zero values per codebook group and fewer codebook entries than
non-zeros (values are shared; :func:`codebook_layout`). A group is the
whole layer or one output channel (row); both are tried and each format takes the smaller. ``K`` =
the most distinct non-zero values in a group, plus one code for zero when the tensor has zeros (zero
is the fixed centroid: code 0, never stored in the codebook); index width ``ib = max(1, ceil(log2 K))``;
the codebook stores every group's non-zero values at ``bits`` each.

``indexed`` (LUT-indexed kernels)
    ``ceil(numel · ib / 8)`` + codebook.
``sparse_indexed`` (Han's relative index)
    the non-zeros in row-major order as (gap, index) pairs: gap = zeros skipped since the previous
    entry in ``d`` bits; a gap above ``2^d − 1`` is bridged by filler entries (a stored zero after
    ``2^d − 1`` skipped zeros): ``ceil(E · (d + ib) / 8)`` + codebook with ``E`` = non-zeros + fillers
    and ``d`` in 1…8 chosen to minimise the size (``rel_bits``).
``huffman`` (at rest only: a decoder must expand it before a kernel runs)
    the index stream of ``indexed``, or the gap and index streams of ``sparse_indexed`` (``d`` again
    chosen), each canonical-Huffman coded with its own table (``edgeflow.hardware.huffman``):
    ``ceil((payload + tables) / 8)`` + codebook, the smaller of the two layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

FORMATS = ("dense", "csr", "csc", "nm", "indexed", "sparse_indexed", "huffman")
AT_REST_ONLY = ("huffman",)  # formats a file carries but no kernel executes without decoding first
MAX_CODEBOOK = 256           # the largest codebook (8-bit indices) a codebook format accepts
MAX_GAP_BITS = 8             # widest relative-index field tried


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
    sizes = {"dense": dense, "csr": csr, "csc": csc, "nm": nm, "nm_n": n, "nm_m": m, "nnz": nnz}
    sizes.update(codebook_bytes(np.where(nz, w, 0), bits))
    return sizes


# ------------------------------------------------------------------------------ codebook formats
@dataclass(frozen=True)
class CodebookLayout:
    """A weight matrix ``[rows, cols]`` as codebook indices.

    ``group``: ``layer`` (one codebook) or ``channel`` (one per row); ``codebooks[g]``: the sorted
    distinct non-zero values of group ``g``; ``index``: int64 ``[rows, cols]``, 0 = zero when
    ``zero`` (the tensor has zeros), else ``codebooks[g][index - zero]``; ``index_bits``: ``ib``.
    """

    group: str
    codebooks: tuple[np.ndarray, ...]
    index: np.ndarray
    zero: bool
    index_bits: int

    @property
    def codebook_entries(self) -> int:
        return sum(int(c.size) for c in self.codebooks)

    def decode(self) -> np.ndarray:
        """The weight matrix back from ``index`` and ``codebooks`` (exact)."""
        rows = self.index.shape[0]
        out = np.zeros(self.index.shape, dtype=self.codebooks[0].dtype if self.codebooks else np.float64)
        for r in range(rows):
            book = self.codebooks[0 if self.group == "layer" else r]
            idx = self.index[r] - int(self.zero)
            keep = idx >= 0
            out[r, keep] = book[idx[keep]]
        return out


def codebook_layout(weight: Any, group: str = "layer", max_entries: int = MAX_CODEBOOK) -> CodebookLayout | None:
    """``weight`` (any rank, viewed as in :func:`storage_bytes`) as codebook indices with one codebook
    per ``group`` (``layer`` | ``channel``); None (no codebook format) when a group holds more than
    ``max_entries`` distinct non-zero values, or when the codebooks hold as many values as there are
    non-zeros (nothing is shared)."""
    if group not in ("layer", "channel"):
        raise ValueError(f"group must be 'layer' or 'channel', got {group!r}")
    w = _as_matrix(weight)
    rows = w.shape[0] if group == "channel" else 1
    w_rows = w.reshape(rows, -1)
    nz = w_rows != 0
    zero = not bool(nz.all())
    r, c = np.nonzero(nz)
    values, code = np.unique(w_rows[r, c], return_inverse=True)      # global value codes of the non-zeros
    pairs, pair_of = np.unique(r * max(values.size, 1) + code, return_inverse=True)   # distinct (group, value)
    pair_group = pairs // max(values.size, 1)
    sizes = np.bincount(pair_group, minlength=rows)
    if sizes.max(initial=0) > max_entries:
        return None
    if pairs.size >= r.size:
        return None  # no value shared: a codebook would store every non-zero once more
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])                # first pair of each group
    index = np.zeros(w_rows.shape, dtype=np.int64)
    index[r, c] = pair_of.reshape(-1) - first[r] + int(zero)
    books = tuple(np.split(values[pairs % max(values.size, 1)], np.cumsum(sizes)[:-1]))
    k = int(sizes.max(initial=0)) + int(zero)
    return CodebookLayout(group, books, index.reshape(w.shape), zero, max(1, int(math.ceil(math.log2(max(k, 1))))))


def _stored_positions(flat: np.ndarray, zero: bool) -> np.ndarray:
    """Positions a relative-index stream stores: the non-zero codes, or every one without a zero code."""
    return np.flatnonzero(flat) if zero else np.arange(flat.size)


def relative_index(index: np.ndarray, gap_bits: int, zero: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Han's relative-index stream of a flat index vector: ``(gaps, indices)`` of the stored
    entries, non-zeros in order plus a filler ``(2^d − 1, 0)`` wherever a gap overflows. ``zero``:
    code 0 is the zero (``CodebookLayout.zero``); without it every position is stored, gaps 0."""
    flat = np.asarray(index, dtype=np.int64).reshape(-1)
    pos = _stored_positions(flat, zero)
    gaps = np.diff(np.concatenate([[-1], pos])) - 1
    span = 1 << gap_bits                    # a filler covers 2^d − 1 skipped zeros and itself
    fillers = gaps // span
    out_gaps, out_idx = [], []
    for g, q, p in zip(gaps, fillers, pos):
        out_gaps += [span - 1] * int(q) + [int(g - q * span)]
        out_idx += [0] * int(q) + [int(flat[p])]
    return np.asarray(out_gaps, dtype=np.int64), np.asarray(out_idx, dtype=np.int64)


def from_relative_index(gaps: np.ndarray, indices: np.ndarray, numel: int) -> np.ndarray:
    """The flat index vector (length ``numel``) back from a relative-index stream."""
    flat = np.zeros(numel, dtype=np.int64)
    at = -1
    for g, i in zip(np.asarray(gaps).tolist(), np.asarray(indices).tolist()):
        at += int(g) + 1
        flat[at] = int(i)
    return flat


def _relative_histograms(flat: np.ndarray, gap_bits: int, zero: bool) -> tuple[dict[int, int], dict[int, int], int]:
    """Histograms of the gap and index streams of :func:`relative_index` and its entry count,
    computed without building the streams."""
    pos = _stored_positions(flat, zero)
    gaps = np.diff(np.concatenate([[-1], pos])) - 1
    span = 1 << gap_bits
    q = gaps // span
    fill = int(q.sum())
    gap_hist = _counts(gaps - q * span)
    idx_hist = _counts(flat[pos])
    if fill:
        gap_hist[span - 1] = gap_hist.get(span - 1, 0) + fill
        idx_hist[0] = idx_hist.get(0, 0) + fill
    return gap_hist, idx_hist, int(pos.size) + fill


def _counts(values: np.ndarray) -> dict[int, int]:
    """``{value: count}`` of non-negative integers."""
    counts = np.bincount(np.asarray(values, dtype=np.int64).reshape(-1))
    present = np.flatnonzero(counts)
    return dict(zip(present.tolist(), counts[present].tolist()))


def _huffman_bits(hist: dict[int, int]) -> int:
    from edgeflow.hardware.huffman import code_lengths, table_bits

    lengths = code_lengths(hist)
    return sum(hist[s] * lengths[s] for s in hist) + table_bits(lengths)


def layout_bytes(layout: CodebookLayout, bits: int) -> dict[str, int]:
    """``indexed``, ``sparse_indexed`` and ``huffman`` bytes of ``layout`` with codebook values at
    ``bits``, plus ``rel_bits`` (the gap width of ``sparse_indexed``) and ``codebook_bytes``."""
    flat = layout.index.reshape(-1)
    ib = layout.index_bits
    book = _bytes(layout.codebook_entries * bits)
    sizes = {"indexed": _bytes(flat.size * ib) + book, "codebook_bytes": book}
    best_rel, best_huff = None, _huffman_bits(_counts(flat))
    for d in range(1, MAX_GAP_BITS + 1):
        gap_hist, idx_hist, entries = _relative_histograms(flat, d, layout.zero)
        rel = _bytes(entries * (d + ib))
        if best_rel is None or rel < best_rel[0]:
            best_rel = (rel, d)
        if entries:
            best_huff = min(best_huff, _huffman_bits(gap_hist) + _huffman_bits(idx_hist))
    sizes["sparse_indexed"] = best_rel[0] + book
    sizes["rel_bits"] = best_rel[1]
    sizes["huffman"] = _bytes(best_huff) + book
    return sizes


def codebook_bytes(weight: Any, bits: int) -> dict[str, int]:
    """The codebook formats of ``weight`` (see the module docstring): ``indexed``,
    ``sparse_indexed``, ``huffman``, ``rel_bits`` and ``codebook_bytes`` (of the grouping whose
    ``indexed`` is smaller) and ``unique_weights`` (distinct values, zero included); each format the
    smaller over layer and channel codebooks; ``{}`` when no grouping holds at most ``MAX_CODEBOOK``
    values per group."""
    w = _as_matrix(weight)
    options = [layout_bytes(layout, bits) for group in ("layer", "channel")
               if (layout := codebook_layout(w, group)) is not None]
    if not options:
        return {}
    best = dict(min(options, key=lambda sizes: sizes["indexed"]))
    for key in ("indexed", "sparse_indexed", "huffman"):
        best[key] = min(sizes[key] for sizes in options)
    best["unique_weights"] = int(np.unique(w).size)
    return best


def best_format(sizes: dict[str, int], supported: tuple[str, ...] | list[str] = ("dense",)) -> tuple[str, int]:
    """The smallest of ``sizes`` among the ``supported`` formats; dense is always allowed.

    Ties go to the earlier format in ``FORMATS`` order (dense first: no index decoding).
    """
    allowed = [f for f in FORMATS if f in sizes and (f == "dense" or f in supported)]
    name = min(allowed, key=lambda f: (sizes[f], FORMATS.index(f)))
    return name, int(sizes[name])


def at_rest_format(sizes: dict[str, int]) -> tuple[str, int]:
    """The smallest of all formats in ``sizes``, Huffman included: what a file or an over-the-air
    update carries (:func:`best_format` with every format supported)."""
    return best_format(sizes, FORMATS)
