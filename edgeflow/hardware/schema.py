"""Typed schema of a hardware target (``conf/hardware/<name>.yaml``). Imports no torch.

Precision keys (``mac_per_cycle``, ``energy_per_mac_pj``): ``binary``, ``int2``, ``int4``, ``int8``,
``float32`` — all five are required. A layer runs at the precision of ``max(weight_bits,
activation_bits)``: 1 → binary, 2 → int2, 3–4 → int4, 5–8 → int8, above 8 → float32 (no int16 kernels
are modelled). Memory levels (``bytes_per_cycle``, ``energy_per_byte_pj``) are free names; weights
stream from ``weight_memory`` and activations from ``activation_memory``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeflow.core.errors import ConfigError, is_finite, require, require_finite

PRECISIONS = ("binary", "int2", "int4", "int8", "float32")
# storage formats a target's kernels may execute (edgeflow.hardware.storage.FORMATS): dense, the
# sparse ones, the codebook ones (indexed = LUT-indexed dense, sparse_indexed = Han's relative
# index) and huffman (only at rest unless listed: then every weight is decoded at run time)
SPARSE_FORMATS = ("dense", "csr", "csc", "nm", "indexed", "sparse_indexed", "huffman")
ZERO_SKIPPING_FORMATS = ("csr", "csc", "nm", "sparse_indexed", "huffman")  # kernels that skip pruned MACs
MAX_BYTES = 1 << 40  # flash_bytes and ram_bytes: at most 1 TiB


def precision_of(weight_bits: int, act_bits: int | None = None) -> str:
    """Precision key a layer with these bit-widths runs at (see the module docstring)."""
    b = max(int(weight_bits), int(act_bits if act_bits is not None else weight_bits))
    if b <= 1:
        return "binary"
    if b <= 2:
        return "int2"
    if b <= 4:
        return "int4"
    if b <= 8:
        return "int8"
    return "float32"


@dataclass
class HardwareConfig:
    """One target. Units: Hz, bytes, MAC/cycle, bytes/cycle, pJ. See the README's hardware section.

    Every number is finite: ``clock_hz``, ``mac_per_cycle``, ``bytes_per_cycle`` > 0; energies and
    cycle overheads >= 0 (``energy_per_mac_pj`` > 0); ``flash_bytes``/``ram_bytes`` integers in
    [1, 2**40]; ``sparse_mac_efficiency`` in (0, 1].
    """

    name: str = "custom"
    description: str = ""
    clock_hz: float = 100e6
    flash_bytes: int = 1 << 20
    ram_bytes: int = 256 << 10
    mac_per_cycle: dict[str, float] = field(default_factory=dict)
    energy_per_mac_pj: dict[str, float] = field(default_factory=dict)
    bytes_per_cycle: dict[str, float] = field(default_factory=dict)
    energy_per_byte_pj: dict[str, float] = field(default_factory=dict)
    weight_memory: str = "flash"
    activation_memory: str = "sram"
    layer_overhead_cycles: float = 0.0
    sparse_formats: list[str] = field(default_factory=lambda: ["dense"])
    sparse_mac_efficiency: float = 0.5
    huffman_decode_cycles: float = 20.0  # cycles to Huffman-decode one non-zero weight, if huffman is executed

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and bool(self.name), "name", "a non-empty string", self.name)
        require_finite(self.clock_hz, "clock_hz", "a finite number > 0 (Hz)", self.clock_hz > 0)
        for key in ("flash_bytes", "ram_bytes"):
            value = getattr(self, key)
            require(isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_BYTES, key,
                    f"an integer in [1, {MAX_BYTES}]", value)
        for key, table in (("mac_per_cycle", self.mac_per_cycle), ("energy_per_mac_pj", self.energy_per_mac_pj)):
            missing = [p for p in PRECISIONS if p not in table]
            if missing:
                raise ConfigError(key, f"must give every precision {', '.join(PRECISIONS)}; missing {', '.join(missing)}")
            for p, v in table.items():
                require(p in PRECISIONS, f"{key}.{p}", "one of " + ", ".join(PRECISIONS), p)
                require(is_finite(v) and v > 0, f"{key}.{p}", "a finite number > 0", v)
        for key, table in (("bytes_per_cycle", self.bytes_per_cycle), ("energy_per_byte_pj", self.energy_per_byte_pj)):
            for level in (self.weight_memory, self.activation_memory):
                require(level in table, f"{key}.{level}", "given (weight_memory/activation_memory level)", None)
            for level, v in table.items():
                ok = is_finite(v) and (v > 0 if key == "bytes_per_cycle" else v >= 0)
                require(ok, f"{key}.{level}",
                        "a finite number > 0" if key == "bytes_per_cycle" else "a finite number >= 0", v)
        require_finite(self.layer_overhead_cycles, "layer_overhead_cycles", "a finite number >= 0",
                       self.layer_overhead_cycles >= 0)
        formats = list(self.sparse_formats)
        for f in formats:
            require(f in SPARSE_FORMATS, "sparse_formats", "a list of " + ", ".join(SPARSE_FORMATS), formats)
        require(0 < self.sparse_mac_efficiency <= 1, "sparse_mac_efficiency", "in (0, 1]", self.sparse_mac_efficiency)
        require_finite(self.huffman_decode_cycles, "huffman_decode_cycles", "a finite number >= 0",
                       self.huffman_decode_cycles >= 0)

    @property
    def supports_sparse(self) -> bool:
        """Whether the target has any sparse storage format (and so kernels that skip zeros)."""
        return any(f in ZERO_SKIPPING_FORMATS for f in self.sparse_formats)
