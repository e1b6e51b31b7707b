"""Typed schema of a hardware target (``conf/hardware/<name>.yaml``). Imports no torch.

Precision keys (``mac_per_cycle``, ``energy_per_mac_pj``): ``binary``, ``int2``, ``int4``, ``int8``,
``float32`` — all five are required. A layer runs at the precision of ``max(weight_bits,
activation_bits)``: 1 → binary, 2 → int2, 3–4 → int4, 5–8 → int8, above 8 → float32 (no int16 kernels
are modelled). Memory levels (``bytes_per_cycle``, ``energy_per_byte_pj``) are free names; weights
stream from ``weight_memory`` and activations from ``activation_memory``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeflow.core.errors import ConfigError, require

PRECISIONS = ("binary", "int2", "int4", "int8", "float32")
# storage formats a target's kernels may execute (edgeflow.hardware.storage.FORMATS): dense, the
# sparse ones, the codebook ones (indexed = LUT-indexed dense, sparse_indexed = Han's relative
# index) and huffman (only at rest unless listed: then every weight is decoded at run time)
SPARSE_FORMATS = ("dense", "csr", "csc", "nm", "indexed", "sparse_indexed", "huffman")
ZERO_SKIPPING_FORMATS = ("csr", "csc", "nm", "sparse_indexed", "huffman")  # kernels that skip pruned MACs


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
    """One target. Units: Hz, bytes, MAC/cycle, bytes/cycle, pJ. See the README's hardware section."""

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
        require(self.clock_hz > 0, "clock_hz", "a number > 0 (Hz)", self.clock_hz)
        require(int(self.flash_bytes) > 0, "flash_bytes", "an integer > 0", self.flash_bytes)
        require(int(self.ram_bytes) > 0, "ram_bytes", "an integer > 0", self.ram_bytes)
        for key, table in (("mac_per_cycle", self.mac_per_cycle), ("energy_per_mac_pj", self.energy_per_mac_pj)):
            missing = [p for p in PRECISIONS if p not in table]
            if missing:
                raise ConfigError(key, f"must give every precision {', '.join(PRECISIONS)}; missing {', '.join(missing)}")
            for p, v in table.items():
                require(p in PRECISIONS, f"{key}.{p}", "one of " + ", ".join(PRECISIONS), p)
                require(float(v) > 0, f"{key}.{p}", "a number > 0", v)
        for key, table in (("bytes_per_cycle", self.bytes_per_cycle), ("energy_per_byte_pj", self.energy_per_byte_pj)):
            for level in (self.weight_memory, self.activation_memory):
                require(level in table, f"{key}.{level}", "given (weight_memory/activation_memory level)", None)
            for level, v in table.items():
                ok = float(v) > 0 if key == "bytes_per_cycle" else float(v) >= 0
                require(ok, f"{key}.{level}", "a number > 0" if key == "bytes_per_cycle" else "a number >= 0", v)
        require(self.layer_overhead_cycles >= 0, "layer_overhead_cycles", "a number >= 0", self.layer_overhead_cycles)
        formats = list(self.sparse_formats)
        for f in formats:
            require(f in SPARSE_FORMATS, "sparse_formats", "a list of " + ", ".join(SPARSE_FORMATS), formats)
        require(0 < self.sparse_mac_efficiency <= 1, "sparse_mac_efficiency", "in (0, 1]", self.sparse_mac_efficiency)
        require(self.huffman_decode_cycles >= 0, "huffman_decode_cycles", "a number >= 0", self.huffman_decode_cycles)

    @property
    def supports_sparse(self) -> bool:
        """Whether the target has any sparse storage format (and so kernels that skip zeros)."""
        return any(f in ZERO_SKIPPING_FORMATS for f in self.sparse_formats)
