"""Hydra's sweep syntax → Optuna distributions.

``choice(2,4,8)`` / ``2,4,8`` → categorical; ``range(1,9,2)`` → integer steps; ``interval(a,b)`` →
float (integer when tagged ``int``), log-uniform when tagged ``log``. A plain value is a fixed
override, passed to every trial. optuna is imported only when a sweep parses its space: Hydra
imports every plugin module whenever it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

if TYPE_CHECKING:  # Hydra imports every plugin module at start-up: optuna (4 s) loads only when sweeping
    from optuna.distributions import BaseDistribution

__all__ = ["SpaceError", "search_space"]


class SpaceError(ValueError):
    """A search-space entry Optuna cannot sample (one line naming the key)."""


def _distribution(override: Override) -> BaseDistribution:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key, value = override.get_key_element(), override.value()
    if isinstance(value, ChoiceSweep):
        choices = [v for v in value.list]
        if not choices or any(isinstance(c, (dict, list)) for c in choices):
            raise SpaceError(f"{key}: choice() needs plain values, got {choices!r}")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if all(isinstance(v, int) for v in (start, stop, step)) and step > 0 and stop > start:
            return IntDistribution(int(start), int(stop) - 1, step=int(step))
        raise SpaceError(f"{key}: range() needs integers with start < stop and step > 0")
    if isinstance(value, IntervalSweep):
        low, high, log = value.start, value.end, "log" in value.tags
        if not (low < high) or (log and low <= 0):
            raise SpaceError(f"{key}: interval({low}, {high}) needs low < high (and low > 0 with tag log)")
        if "int" in value.tags:
            return IntDistribution(int(low), int(high), log=log)
        return FloatDistribution(float(low), float(high), log=log)
    raise SpaceError(f"{key}: {override.input_line} is not a sweep Optuna can sample")


def search_space(arguments: list[str], params: dict[str, Any]) -> tuple[dict[str, BaseDistribution], list[str]]:
    """The distributions of ``params`` (``hydra.sweeper.params``) and of the sweep overrides in
    ``arguments`` (the command line wins), and the fixed overrides of ``arguments``."""
    parser = OverridesParser.create()
    space: dict[str, BaseDistribution] = {}
    for override in parser.parse_overrides([f"{k}={v}" for k, v in params.items()]):
        space[override.get_key_element()] = _distribution(override)
    fixed = []
    for override in parser.parse_overrides(arguments):
        if override.is_sweep_override():
            space[override.get_key_element()] = _distribution(override)
        else:
            fixed.append(override.input_line)
    return space, fixed
