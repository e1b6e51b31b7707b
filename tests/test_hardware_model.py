"""Hardware targets and the roofline estimate."""

import re
import warnings
from pathlib import Path

import pytest

from edgeflow.core.errors import ConfigError
from edgeflow.hardware import HardwareConfig, analyze, available_targets, load
from edgeflow.hardware.schema import PRECISIONS, precision_of
from edgeflow.models import build_model

TARGETS = ["cortex_m4", "cortex_m7", "gap9", "rpi4", "generic_45nm"]
CONF = Path(__file__).resolve().parents[1] / "conf" / "hardware"


def tiny_hw(**kw):
    d = dict(name="tiny", clock_hz=1e6, flash_bytes=1000, ram_bytes=500,
             mac_per_cycle={p: 2.0 for p in PRECISIONS}, energy_per_mac_pj={p: 10.0 for p in PRECISIONS},
             bytes_per_cycle={"flash": 1.0, "sram": 4.0}, energy_per_byte_pj={"flash": 2.0, "sram": 1.0},
             layer_overhead_cycles=100)
    d.update(kw)
    return load(d)


def test_all_targets_present_and_load():
    assert set(TARGETS) <= set(available_targets())
    for t in TARGETS:
        hw = load(t)
        assert hw.name == t and hw.cfg.clock_hz > 0


@pytest.mark.parametrize("target", TARGETS)
def test_every_constant_cites_a_source(target):
    for line in (CONF / f"{target}.yaml").read_text().splitlines():
        if re.match(r"^\s*[a-z_0-9]+:\s*[-\d\[]", line):   # a key with a value (number or list)
            assert "#" in line, f"{target}: no source comment on {line!r}"


def test_precision_mapping():
    assert precision_of(8, 8) == "int8" and precision_of(4, 8) == "int8" and precision_of(4, 4) == "int4"
    assert precision_of(1, 1) == "binary" and precision_of(2) == "int2" and precision_of(32, 8) == "float32"


def test_estimate_layer_hand_computed():
    hw = tiny_hw()
    le = hw.estimate_layer(1000, 300, 400, bits=8)
    # compute 1000/2 = 500 cycles; memory 300/1 + 400/4 = 400 cycles; + 100 overhead
    assert le.cycles == pytest.approx(600) and le.bound == "compute"
    assert le.latency_ms == pytest.approx(0.6)
    assert le.energy_uj == pytest.approx((1000 * 10 + 300 * 2 + 400 * 1) * 1e-6)
    mem = hw.estimate_layer(100, 3000, 0, bits=8)
    assert mem.bound == "memory" and mem.cycles == pytest.approx(3100)
    # compute 10/2 = 5, memory 20/1 + 40/4 = 30: the 100 cycles of per-layer overhead dominate
    small = hw.estimate_layer(10, 20, 40, bits=8)
    assert small.bound == "overhead" and small.cycles == pytest.approx(130) and small.overhead_cycles == 100


def test_sparse_kernel_only_where_supported():
    dense = tiny_hw()
    sparse = tiny_hw(sparse_formats=["dense", "csr"], sparse_mac_efficiency=0.5)
    assert dense.estimate_layer(1000, 0, 0, sparsity=0.9).compute_cycles == pytest.approx(500)
    assert sparse.estimate_layer(1000, 0, 0, sparsity=0.9).compute_cycles == pytest.approx(100)  # 100 MACs at half rate


def test_resnet8_int8_cortex_m4_in_mlperf_range():
    cost = analyze(build_model("resnet8", (3, 32, 32), 10), (3, 32, 32), default_bits=8)
    est = load("cortex_m4").estimate(cost)
    assert 165 <= est.latency_ms <= 300
    assert est.fits and est.flash_bytes == 77_360 + 4 * 346 and est.peak_ram_bytes == 49_152
    # energy within 20 % of the MLPerf Tiny v1.1 measurement (7.06 mJ, REFERENCE.md §3)
    assert est.energy_uj == pytest.approx(7060, rel=0.2)


def test_fits_warns_naming_what_overflows():
    cost = analyze(build_model("autoencoder", (640,), 640), (640,))
    with pytest.warns(UserWarning, match=r"does not fit tiny: flash .* RAM"):
        est = tiny_hw().estimate(cost)
    assert not est.fits and len(est.overflows) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load("rpi4").estimate(cost).fits


def test_flash_uses_best_supported_format_and_true_bits():
    import torch
    from torch import nn

    lin = nn.Linear(64, 64, bias=False)
    with torch.no_grad():
        lin.weight[:, 8:] = 0   # 87.5 % zeros
    cost = analyze(lin, (64,), default_bits=8)
    assert load("cortex_m4").estimate(cost).flash_bytes == 64 * 64
    e = load("generic_45nm").estimate(cost)
    # CSR: 512 values (8 b) + 512 column indices (8 b) + 65 row pointers (16 b: nnz = 512) = 1154 B
    assert e.layers[0].storage_format == "csr" and e.flash_bytes == (512 * 8 + 512 * 8 + 65 * 16) // 8
    assert load("cortex_m4").estimate(analyze(lin, (64,), default_bits=4)).flash_bytes == 64 * 64 // 2


def test_load_accepts_config_objects_and_rejects_bad_ones():
    from omegaconf import OmegaConf

    cfg = load("gap9").cfg
    assert load(cfg).name == "gap9"
    assert load(OmegaConf.structured(cfg)).name == "gap9"
    with pytest.raises(ConfigError, match="unknown target"):
        load("cortex_m99")
    with pytest.raises(ConfigError, match="mac_per_cycle"):
        HardwareConfig(name="x", mac_per_cycle={"int8": 1.0}, energy_per_mac_pj={p: 1.0 for p in PRECISIONS},
                       bytes_per_cycle={"flash": 1, "sram": 1}, energy_per_byte_pj={"flash": 1, "sram": 1})
    with pytest.raises(ConfigError, match="hardware.bogus"):
        load({"name": "x", "bogus": 1})
