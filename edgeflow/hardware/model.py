"""Analytical hardware model: ``load(name_or_cfg) -> HardwareModel``, ``.estimate(cost) -> Estimate``.

Per layer (roofline, seeds lecture 1 / REFERENCE.md §3):

    precision        = precision_of(weight_bits, act_bits)           # binary/int2/int4/int8/float32
    sparse kernel    = the best supported storage format of the weight skips zeros (ZERO_SKIPPING_FORMATS)
    eff_macs         = macs · (1 − sparsity) / sparse_mac_efficiency  if sparse kernel, else macs
    decode           = non-zero weights · huffman_decode_cycles · mac_per_cycle[precision]  if the
                       weights execute Huffman-coded (decoded at run time), else 0
    cycles, latency_ms, energy_uj, bound = roofline(precision, work = eff_macs + ops + decode,
                                                    weight_bytes = weight_stored_bytes + bias_bytes,
                                                    activation_bytes = input_bytes + output_bytes)

with the roofline of ``edgeflow.hardware.roofline`` (compute and memory roofs, per-layer overhead,
energy per MAC and per byte moved), the formula the differentiable costs share.

Memory traffic is the compulsory traffic (each weight and activation byte moved once): a lower bound.
Whole model: ``macs`` and ``ops`` (``edgeflow.hardware.graph``'s convention, which the int8 runtime's
profiler shares); latency and energy are sums over layers; ``flash_bytes`` = Σ (weights in the best
supported storage format at their true bit-width + biases as 4-byte int32/float32); ``peak_ram_bytes``
= max over layers of the live activation bytes (``LayerCost.live_bytes``); ``fits`` = both within the
target's ``flash_bytes`` / ``ram_bytes``, else a warning naming what overflows.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeflow.core.errors import ConfigError
from edgeflow.hardware.roofline import roofline
from edgeflow.hardware.schema import ZERO_SKIPPING_FORMATS, HardwareConfig, precision_of
from edgeflow.hardware.storage import best_format

if TYPE_CHECKING:
    from edgeflow.hardware.graph import ModelCost

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "hardware"


@dataclass
class LayerEstimate:
    """Estimate for one layer. ``bound``: ``"compute"``, ``"memory"`` or ``"overhead"`` — the largest of the
    roofline's cycle terms (``edgeflow.hardware.roofline.bound_of``)."""

    name: str
    kind: str
    precision: str
    latency_ms: float
    energy_uj: float
    cycles: float
    compute_cycles: float
    memory_cycles: float
    overhead_cycles: float
    bound: str
    flash_bytes: int = 0
    storage_format: str = "dense"
    ram_bytes: int = 0
    compute_energy_uj: float = 0.0
    memory_energy_uj: float = 0.0


@dataclass
class Estimate:
    """Whole-model estimate on one target; ``layers`` in execution order."""

    target: str
    layers: list[LayerEstimate]
    macs: int
    ops: int
    params: int
    latency_ms: float
    energy_uj: float
    flash_bytes: int
    peak_ram_bytes: int
    fits: bool
    overflows: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """Bare metric names for a StageResult."""
        return {"macs": self.macs, "ops": self.ops, "params": self.params, "flash_bytes": self.flash_bytes,
                "peak_ram_bytes": self.peak_ram_bytes, "latency_ms": self.latency_ms,
                "energy_uj": self.energy_uj, "fits": int(self.fits)}


class HardwareModel:
    """A target's analytical cost model built from a ``HardwareConfig``."""

    def __init__(self, cfg: HardwareConfig) -> None:
        self.cfg = cfg

    @property
    def name(self) -> str:
        return self.cfg.name

    def __repr__(self) -> str:
        return f"HardwareModel({self.cfg.name!r})"

    # ------------------------------------------------------------------ one layer
    def estimate_layer(self, macs: float, weight_bytes: float, activation_bytes: float, bits: int = 8,
                       sparsity: float = 0.0, *, ops: float = 0, act_bits: int | None = None,
                       sparse_kernel: bool | None = None, name: str = "", kind: str = "",
                       decode_weights: int = 0) -> LayerEstimate:
        """Roofline estimate of one layer (see the module docstring).

        ``weight_bytes``: bytes of the weights as stored (read from ``weight_memory``);
        ``activation_bytes``: input + output activation bytes (``activation_memory``); ``bits``: weight
        bit-width (``act_bits`` defaults to it); ``sparsity``: zero fraction of the weights, used to
        skip MACs when ``sparse_kernel`` (default: sparsity > 0 and the target has a sparse format);
        ``decode_weights``: weights Huffman-decoded per inference (``huffman_decode_cycles`` each).
        """
        c = self.cfg
        prec = precision_of(bits, act_bits)
        if sparse_kernel is None:
            sparse_kernel = sparsity > 0 and c.supports_sparse
        eff_macs = macs * (1.0 - sparsity) / c.sparse_mac_efficiency if sparse_kernel else float(macs)
        decode = decode_weights * c.huffman_decode_cycles * c.mac_per_cycle[prec]  # cycles at the MAC rate
        r = roofline(c, prec, eff_macs + ops + decode, weight_bytes, activation_bytes)
        return LayerEstimate(
            name=name, kind=kind, precision=prec, latency_ms=r.latency_ms, energy_uj=r.energy_uj,
            cycles=r.cycles, compute_cycles=r.compute_cycles, memory_cycles=r.memory_cycles,
            overhead_cycles=r.overhead_cycles, bound=r.bound,
            compute_energy_uj=r.compute_energy_uj, memory_energy_uj=r.memory_energy_uj,
        )

    # ------------------------------------------------------------------ whole model
    def storage(self, layer: Any) -> tuple[str, int]:
        """(format, bytes) of a layer's weights in the best format this target supports."""
        if not layer.storage:
            return "dense", int(layer.weight_bytes)
        return best_format(layer.storage, tuple(self.cfg.sparse_formats))

    def estimate(self, cost: ModelCost, warn: bool = True) -> Estimate:
        """Per-layer and total latency, energy, flash, peak RAM and fit of ``cost`` on this target."""
        c = self.cfg
        layers = []
        for lc in cost.layers:
            fmt, wbytes = self.storage(lc)
            le = self.estimate_layer(lc.macs, wbytes + lc.bias_bytes, lc.input_bytes + lc.output_bytes, bits=lc.weight_bits,
                                     sparsity=lc.sparsity, ops=lc.ops, act_bits=lc.act_bits,
                                     sparse_kernel=fmt in ZERO_SKIPPING_FORMATS, name=lc.name, kind=lc.kind,
                                     decode_weights=lc.storage.get("nnz", 0) if fmt == "huffman" else 0)
            le.flash_bytes = int(wbytes + lc.bias_bytes)
            le.storage_format = fmt
            le.ram_bytes = int(lc.live_bytes)
            layers.append(le)
        flash = sum(le.flash_bytes for le in layers)
        ram = int(cost.peak_activation_bytes)
        overflows = []
        if flash > c.flash_bytes:
            overflows.append(f"flash {flash:,} B > {int(c.flash_bytes):,} B")
        if ram > c.ram_bytes:
            overflows.append(f"RAM {ram:,} B > {int(c.ram_bytes):,} B")
        if overflows and warn:
            warnings.warn(f"model does not fit {c.name}: " + "; ".join(overflows), stacklevel=2)
        return Estimate(
            target=c.name, layers=layers, macs=int(cost.macs), ops=int(cost.ops), params=int(cost.params),
            latency_ms=sum(le.latency_ms for le in layers), energy_uj=sum(le.energy_uj for le in layers),
            flash_bytes=int(flash), peak_ram_bytes=ram, fits=not overflows, overflows=overflows,
        )


def available_targets() -> list[str]:
    """Names of the bundled targets (``conf/hardware/*.yaml``)."""
    return sorted(p.stem for p in CONF_DIR.glob("*.yaml"))


def _config_from_mapping(d: dict[str, Any]) -> HardwareConfig:
    known = {f.name for f in fields(HardwareConfig)}
    d = {k: v for k, v in d.items() if not str(k).startswith("_")}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"hardware.{unknown[0]}", "unknown key; allowed: " + ", ".join(sorted(known)))
    try:
        return HardwareConfig(**d)
    except ConfigError as e:
        raise e.under("hardware") from None


def load(name_or_cfg: Any) -> HardwareModel:
    """A ``HardwareModel`` from a target name (``conf/hardware/<name>.yaml``), a YAML path, a
    ``DictConfig``/dict, a ``HardwareConfig`` or an existing ``HardwareModel``."""
    if isinstance(name_or_cfg, HardwareModel):
        return name_or_cfg
    if isinstance(name_or_cfg, HardwareConfig):
        return HardwareModel(name_or_cfg)
    if isinstance(name_or_cfg, (str, Path)):
        from omegaconf import OmegaConf

        path = Path(name_or_cfg)
        if path.suffix not in (".yaml", ".yml"):
            path = CONF_DIR / f"{name_or_cfg}.yaml"
        if not path.is_file():
            raise ConfigError("hardware", f"unknown target {str(name_or_cfg)!r}; available: "
                              + ", ".join(available_targets()))
        return HardwareModel(_config_from_mapping(OmegaConf.to_container(OmegaConf.load(path), resolve=True)))
    if isinstance(name_or_cfg, dict):
        return HardwareModel(_config_from_mapping(dict(name_or_cfg)))
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(name_or_cfg, DictConfig):
            return HardwareModel(_config_from_mapping(OmegaConf.to_container(name_or_cfg, resolve=True)))
    except ImportError:  # pragma: no cover
        pass
    if hasattr(name_or_cfg, "__dataclass_fields__"):
        return HardwareModel(_config_from_mapping(asdict(name_or_cfg)))
    raise TypeError(f"cannot load a hardware model from {type(name_or_cfg).__name__}")
