"""Canonical Huffman coding of small-integer streams (codebook indices, relative-index gaps).

Imports numpy only. Deep Compression (Han et al., ICLR 2016) codes the cluster indices and the
sparse relative positions of each layer with Huffman codes; this module builds the code from the real
histogram, counts its exact size, and really encodes and decodes, so sizes are those of a stream
that exists.

Size contract (what ``stream_bits`` returns and ``encode`` produces):

- payload: ``Σ_symbols frequency · code_length`` bits;
- code table: a canonical code is fixed by its code lengths, stored per symbol of the alphabet
  ``0 … max_symbol``: one 8-bit header giving the width ``w`` of a length field, then
  ``(max_symbol + 1) · w`` bits of lengths (0 = symbol absent), ``w = bit_length(max length)``;
- a stream of a single distinct symbol still spends 1 bit per symbol (its code is ``0``).

Canonical assignment (DEFLATE's): symbols sorted by (length, value) get consecutive codes, each
length's first code being ``(previous first code + count of previous length) << 1``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

TABLE_HEADER_BITS = 8


def code_lengths(frequencies: dict[int, int]) -> dict[int, int]:
    """Huffman code length of every symbol with a positive frequency (deterministic ties: lower
    total weight first, then the smaller symbol). One symbol alone gets length 1."""
    items = sorted((int(f), int(s)) for s, f in frequencies.items() if f > 0)
    if not items:
        return {}
    if len(items) == 1:
        return {items[0][1]: 1}
    # heap entries: (weight, smallest symbol in the subtree, tie counter, symbols of the subtree)
    heap = [(f, s, i, [s]) for i, (f, s) in enumerate(items)]
    heapq.heapify(heap)
    depth = {s: 0 for _, s in items}
    counter = len(heap)
    while len(heap) > 1:
        fa, sa, _, a = heapq.heappop(heap)
        fb, sb, _, b = heapq.heappop(heap)
        for s in a + b:
            depth[s] += 1
        heapq.heappush(heap, (fa + fb, min(sa, sb), counter, a + b))
        counter += 1
    return depth


def canonical_codes(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """``{symbol: (code, length)}`` of the canonical code with these lengths."""
    codes: dict[int, tuple[int, int]] = {}
    code, prev_len = 0, 0
    for sym, ln in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= ln - prev_len
        codes[sym] = (code, ln)
        code += 1
        prev_len = ln
    return codes


def table_bits(lengths: dict[int, int]) -> int:
    """Bits of the code table: 8-bit header + one length field per symbol ``0 … max_symbol``."""
    if not lengths:
        return 0
    width = max(lengths.values()).bit_length()
    return TABLE_HEADER_BITS + (max(lengths) + 1) * width


def histogram(symbols: np.ndarray) -> dict[int, int]:
    """``{symbol: count}`` of a stream of non-negative integers."""
    values, counts = np.unique(np.asarray(symbols, dtype=np.int64).reshape(-1), return_counts=True)
    if values.size and values[0] < 0:
        raise ValueError("Huffman symbols must be >= 0")
    return {int(v): int(c) for v, c in zip(values, counts)}


def stream_bits(symbols: np.ndarray) -> tuple[int, int]:
    """``(payload_bits, table_bits)`` of ``symbols`` Huffman-coded with its own histogram."""
    freq = histogram(symbols)
    lengths = code_lengths(freq)
    payload = sum(freq[s] * lengths[s] for s in freq)
    return payload, table_bits(lengths)


@dataclass(frozen=True)
class HuffmanStream:
    """An encoded stream: ``data`` (bytes, MSB first, zero-padded), ``nbits`` (payload bits),
    ``count`` (symbols) and the code ``lengths`` (what the table stores)."""

    data: bytes
    nbits: int
    count: int
    lengths: dict[int, int]

    @property
    def table_bits(self) -> int:
        return table_bits(self.lengths)

    @property
    def total_bytes(self) -> int:
        """Bytes of payload and table together, rounded up once."""
        return math.ceil((self.nbits + self.table_bits) / 8)


def encode(symbols: np.ndarray) -> HuffmanStream:
    """Encode ``symbols`` (non-negative integers) with the canonical Huffman code of their histogram."""
    sym = np.asarray(symbols, dtype=np.int64).reshape(-1)
    lengths = code_lengths(histogram(sym))
    codes = canonical_codes(lengths)
    bits: list[str] = [format(codes[int(s)][0], f"0{codes[int(s)][1]}b") for s in sym]
    text = "".join(bits)
    padded = text + "0" * (-len(text) % 8)
    data = bytes(int(padded[i:i + 8], 2) for i in range(0, len(padded), 8))
    return HuffmanStream(data, len(text), int(sym.size), lengths)


def decode(stream: HuffmanStream) -> np.ndarray:
    """The symbols of ``stream`` (int64), read back bit by bit through the canonical code table."""
    lookup = {(ln, code): sym for sym, (code, ln) in canonical_codes(stream.lengths).items()}
    bits = "".join(format(b, "08b") for b in stream.data)[: stream.nbits]
    out = np.empty(stream.count, dtype=np.int64)
    code = ln = n = 0
    for bit in bits:
        code = (code << 1) | (bit == "1")
        ln += 1
        sym = lookup.get((ln, code))
        if sym is not None:
            out[n] = sym
            n += 1
            code = ln = 0
    if n != stream.count or ln:
        raise ValueError(f"corrupt Huffman stream: decoded {n} of {stream.count} symbols")
    return out


__all__ = ["HuffmanStream", "canonical_codes", "code_lengths", "decode", "encode", "histogram", "stream_bits",
           "table_bits"]
