"""The ``hardware`` option of the stages that cost the model (``analyze``, ``profile``): which targets.

Not a stage kind (the leading underscore keeps it out of discovery). Torch-free: the stage schemas
call ``check_targets`` during config validation.

- ``null`` (or ``[]``): the run's target (the ``hardware`` group); metrics keep their bare names.
- one name (``gap9``): that target instead; metrics keep their bare names.
- a list (``[cortex_m4, gap9, rpi4]``): each target in turn, one model, one run. Metrics that
  depend on the target (``HARDWARE_METRICS``) are named ``<target>/<metric>``
  (``profile/gap9/latency_ms``), the others (``macs``, ``test_acc``, ...) once, bare; files go to
  the sub-folder ``<target>/`` of the stage's folder, keyed ``<target>/<key>``.

A listed name equal to the run's target's name is the run's target (``StageContext.target``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from edgeflow.core.errors import ConfigError

if TYPE_CHECKING:
    from edgeflow.state import StageContext

#: metrics whose value depends on the target (flash: its storage formats; the others: its costs)
HARDWARE_METRICS = ("flash_bytes", "latency_ms", "energy_uj", "fits")


def check_targets(value: Any, key: str = "hardware") -> str | list[str] | None:
    """``value`` as the option's canonical form: None (the run's target), a name, or a list of
    distinct names; raises ``ConfigError(key, ...)`` listing the available targets otherwise."""
    from edgeflow.hardware.model import available_targets

    if value is None or (isinstance(value, list) and not value):
        return None
    available = available_targets()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(key, f"must be null, a target name or a list of target names "
                               f"({', '.join(available)}), got {value!r}")
    for name in names:
        if name not in available:
            raise ConfigError(key, f"unknown target {name!r}; available: {', '.join(available)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(key, f"lists {', '.join(repeated)} more than once")
    return value


@dataclass(frozen=True)
class Target:
    """One target a stage costs the model on; ``label`` is its name when the stage lists targets,
    else "" (bare metric names, files in the stage's own folder)."""

    label: str
    model: Any  # edgeflow.hardware.HardwareModel

    def metrics(self, values: Mapping[str, float]) -> dict[str, float]:
        """``values`` with the ``HARDWARE_METRICS`` named ``<label>/<metric>`` (unchanged without label)."""
        return {f"{self.label}/{k}" if self.label and k in HARDWARE_METRICS else k: v for k, v in values.items()}

    def key(self, key: str) -> str:
        """An artifact key: ``<label>/<key>``, or ``key`` without label."""
        return f"{self.label}/{key}" if self.label else key

    def folder(self, out_dir: Path) -> Path:
        """Where this target's files go: ``out_dir/<label>`` (created), or ``out_dir`` without label."""
        folder = out_dir / self.label if self.label else out_dir
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def stage_targets(option: str | list[str] | None, ctx: StageContext) -> list[Target]:
    """The targets a stage's ``hardware`` option (checked by ``check_targets``) names, built through ``ctx``."""
    if option is None or isinstance(option, str):
        return [Target("", ctx.target(option))]
    return [Target(name, ctx.target(name)) for name in option]
