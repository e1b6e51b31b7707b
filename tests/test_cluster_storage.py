"""Codebook storage formats and Huffman coding: exact byte counts against independent counts, and
decoding the stored streams gives the indices (and the weights) back."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeflow.hardware import huffman as H
from edgeflow.hardware.storage import (
    at_rest_format,
    best_format,
    codebook_layout,
    from_relative_index,
    relative_index,
    storage_bytes,
)


def _huffman_cost(freqs: list[int]) -> int:
    """Independent Huffman payload: the sum of every merge of the two lightest weights (equal to
    Σ code length × frequency for any optimal prefix code, whatever the tie-breaking)."""
    w = sorted(f for f in freqs if f > 0)
    if len(w) == 1:
        return w[0]  # one symbol: one bit each
    cost = 0
    while len(w) > 1:
        a, b = w.pop(0), w.pop(0)
        cost += a + b
        w.append(a + b)
        w.sort()
    return cost


def _table(lengths: dict[int, int]) -> int:
    return 8 + (max(lengths) + 1) * max(lengths.values()).bit_length()


def _hand() -> np.ndarray:
    w = np.zeros((4, 8), dtype=np.float32)
    w[0, 0], w[0, 5], w[2, 3] = 1.0, 2.0, 3.0
    return w


def _clustered(seed: int = 0, shape=(32, 16, 3, 3), k: int = 16, sparsity: float = 0.8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    book = rng.normal(size=k).astype(np.float32)
    w = book[rng.integers(0, k, shape)]
    w[rng.random(shape) < sparsity] = 0
    return w


def test_huffman_payload_equals_independent_count_and_decodes() -> None:
    rng = np.random.default_rng(1)
    for symbols in (rng.geometric(0.3, 2000) - 1, rng.integers(0, 32, 777), np.full(50, 7), np.array([3, 3, 1])):
        freq = H.histogram(symbols)
        stream = H.encode(symbols)
        assert stream.nbits == _huffman_cost(list(freq.values()))
        assert stream.nbits == sum(freq[s] * stream.lengths[s] for s in freq)
        assert H.stream_bits(symbols) == (stream.nbits, _table(stream.lengths))
        assert len(stream.data) == math.ceil(stream.nbits / 8)
        assert np.array_equal(H.decode(stream), symbols)
        # a prefix code: Kraft equality for an optimal code with >= 2 symbols
        if len(freq) > 1:
            assert sum(2.0 ** -ln for ln in stream.lengths.values()) == 1.0


def test_codebook_formats_hand_checked() -> None:
    w = _hand()
    w[2, 3] = 1.0                                   # 1, 2, 1: two shared values
    s = storage_bytes(w, 8)
    # 2 distinct non-zeros + zero -> K = 3, 2-bit indices; codebook 2 x 8 bits
    assert s["codebook_bytes"] == 2 and s["unique_weights"] == 3
    assert s["indexed"] == 32 * 2 // 8 + 2                                   # 10
    # positions 0, 5, 19 -> gaps 0, 4, 13; d = 3: one filler bridges 13 -> 4 entries of 3 + 2 bits
    assert s["rel_bits"] == 3 and s["sparse_indexed"] == math.ceil(4 * 5 / 8) + 2   # 5
    assert best_format(s, ["dense", "csr", "indexed", "sparse_indexed"]) == ("sparse_indexed", 5)
    assert at_rest_format(s)[1] == min(s[f] for f in ("dense", "csr", "csc", "nm", "indexed",
                                                      "sparse_indexed", "huffman"))
    assert "indexed" not in storage_bytes(_hand(), 8)   # 1, 2, 3: nothing shared, no codebook format


def test_huffman_format_equals_independent_count_and_streams_decode() -> None:
    w = _clustered()
    bits = 8
    s = storage_bytes(w, bits)
    matrix = np.moveaxis(w, 1, -1).reshape(w.shape[0], -1)       # the channels-last row view
    layout = codebook_layout(w, "layer")
    assert np.array_equal(layout.decode(), matrix)
    assert layout.index_bits == 5                                 # 16 centroids + zero
    book = math.ceil(layout.codebook_entries * bits / 8)
    flat = layout.index.reshape(-1)
    candidates = []
    dense_freq = np.unique(flat, return_counts=True)[1]
    lengths = H.code_lengths(H.histogram(flat))
    candidates.append(_huffman_cost(list(dense_freq)) + _table(lengths))
    for d in range(1, 9):
        gaps, idx = relative_index(layout.index, d)
        assert np.array_equal(from_relative_index(gaps, idx, flat.size), flat)
        assert gaps.max() < 2 ** d
        total = 0
        for stream in (gaps, idx):
            enc = H.encode(stream)
            assert np.array_equal(H.decode(enc), stream)          # the stored stream decodes
            total += _huffman_cost(list(H.histogram(stream).values())) + _table(enc.lengths)
        candidates.append(total)
    layer_huffman = math.ceil(min(candidates) / 8) + book
    assert s["huffman"] <= layer_huffman                           # channel codebooks may do better
    assert s["huffman"] == min(layer_huffman, _channel_huffman(w, bits))
    # decoding the chosen relative-index streams reproduces the weights
    gaps, idx = relative_index(layout.index, s["rel_bits"])
    back = from_relative_index(H.decode(H.encode(gaps)), H.decode(H.encode(idx)), flat.size)
    again = codebook_layout(w, "layer")
    assert np.array_equal(back, again.index.reshape(-1))


def _channel_huffman(w: np.ndarray, bits: int) -> int:
    from edgeflow.hardware.storage import layout_bytes

    layout = codebook_layout(w, "channel")
    return layout_bytes(layout, bits)["huffman"] if layout is not None else 10**9


def test_sparse_indexed_size_matches_the_stream_it_describes() -> None:
    w = _clustered(seed=3, shape=(10, 64), k=8, sparsity=0.9)
    s = storage_bytes(w, 32)
    sizes = []
    for group in ("layer", "channel"):
        layout = codebook_layout(w, group)
        best = None
        for d in range(1, 9):
            gaps, idx = relative_index(layout.index, d)       # the stream itself, fillers included
            size = math.ceil(len(gaps) * (d + layout.index_bits) / 8)
            best = size if best is None else min(best, size)
        sizes.append(best + layout.codebook_entries * 4)
    assert s["sparse_indexed"] == min(sizes)


def test_no_codebook_formats_for_unshared_float_weights() -> None:
    w = np.random.default_rng(0).normal(size=(64, 300)).astype(np.float32)
    s = storage_bytes(w, 32)
    assert "indexed" not in s and "huffman" not in s
    assert at_rest_format(s) == ("dense", 64 * 300 * 4)


def test_a_tensor_without_zeros_stores_every_weight_in_the_relative_stream() -> None:
    w = np.array([[1.0, 2.0, 1.0], [2.0, 2.0, 3.0]], dtype=np.float32)      # code 0 is a value here
    layout = codebook_layout(w, "layer")
    assert not layout.zero and layout.index.min() == 0 and layout.index_bits == 2
    gaps, idx = relative_index(layout.index, 1, zero=False)
    assert gaps.tolist() == [0] * 6 and idx.tolist() == layout.index.reshape(-1).tolist()
    s = storage_bytes(w, 8)
    assert s["sparse_indexed"] == math.ceil(6 * (1 + 2) / 8) + 3 and s["indexed"] == math.ceil(6 * 2 / 8) + 3


@pytest.mark.parametrize("group", ["layer", "channel"])
def test_layout_round_trip(group: str) -> None:
    w = _clustered(seed=5, shape=(8, 4, 5), k=4, sparsity=0.5)
    layout = codebook_layout(w, group)
    assert np.array_equal(layout.decode(), np.moveaxis(w, 1, -1).reshape(8, -1))
    assert layout.zero and layout.index.min() == 0
