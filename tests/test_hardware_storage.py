"""Storage format byte counts, hand-checked."""

import numpy as np
import pytest
import torch

from edgeflow.hardware.storage import best_format, index_bits, storage_bytes


def _w():
    w = np.zeros((4, 8), dtype=np.float32)
    w[0, 0], w[0, 5], w[2, 3] = 1.0, 2.0, 3.0
    return w


def test_index_bits():
    assert index_bits(0) == 8 and index_bits(255) == 8 and index_bits(256) == 16
    assert index_bits(65535) == 16 and index_bits(65536) == 32


def test_storage_bytes_int8_hand_checked():
    s = storage_bytes(_w(), 8)
    assert s["nnz"] == 3
    assert s["dense"] == 32                      # 32 values x 1 B
    assert s["csr"] == (3 * 8 + 3 * 8 + 5 * 8) // 8   # values + col idx (u8) + 5 row ptrs (u8) = 11
    assert s["csc"] == (3 * 8 + 3 * 8 + 9 * 8) // 8   # values + row idx (u8) + 9 col ptrs (u8) = 15
    assert (s["nm_n"], s["nm_m"]) == (1, 4)
    assert s["nm"] == (4 * 2 * 1 * (8 + 2)) // 8       # 8 groups x N=1 x (8-bit value + 2-bit index) = 10


def test_storage_bytes_int4_rounds_up_once():
    s = storage_bytes(torch.from_numpy(_w()), 4)
    assert s["dense"] == 16
    assert s["csr"] == 10       # ceil((12 + 24 + 40) / 8) = ceil(9.5)
    assert s["csc"] == 14       # ceil((12 + 24 + 72) / 8) = ceil(13.5)
    assert s["nm"] == 6         # 8 groups x (4 + 2) bits = 48 bits


def test_mask_overrides_zeros_and_wide_indices():
    w = np.ones((2, 300), dtype=np.float32)
    mask = np.zeros_like(w)
    mask[:, :150] = 1
    s = storage_bytes(w, 8, mask=mask)
    assert s["nnz"] == 300
    # column indices need 16 bits (cols - 1 = 299), row pointers 16 bits (nnz = 300)
    assert s["csr"] == (300 * 8 + 300 * 16 + 3 * 16) // 8
    assert s["nm_n"] == 4       # the first 150 columns are fully kept


def test_conv_weight_is_viewed_as_rows_by_output_channel():
    w = torch.zeros(6, 3, 3, 3)
    w[:, 0, 0, 0] = 1.0
    s = storage_bytes(w, 8)
    assert s["dense"] == 162 and s["nnz"] == 6
    assert s["csr"] == (6 * 8 + 6 * 8 + 7 * 8) // 8


def test_best_format():
    sizes = storage_bytes(_w(), 8)
    assert best_format(sizes, ["dense"]) == ("dense", 32)
    assert best_format(sizes, ["dense", "csr"]) == ("csr", 11)
    assert best_format(sizes, ["csr", "csc", "nm"]) == ("nm", 10)
    assert best_format({"dense": 5, "csr": 5}, ["csr"]) == ("dense", 5)   # ties prefer dense


def test_bad_bits():
    with pytest.raises(ValueError):
        storage_bytes(_w(), 0)
