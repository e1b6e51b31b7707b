"""Configuration errors and the checks that raise them: one line naming the key and what is allowed.

A leaf module: it imports nothing of edgeflow, so every schema (stages, datasets, hardware, models)
can use it without import cycles.
"""

from __future__ import annotations

import math
from typing import Any

#: upper bound of every epoch count (max_epochs, patience, ...): a typo such as 1e20 epochs is an error
MAX_EPOCHS = 100_000


class ConfigError(ValueError):
    """A configuration mistake, reported as ``<key>: <what is allowed>`` on one line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message

    def under(self, prefix: str) -> ConfigError:
        """The same error with its key placed under ``prefix`` (e.g. ``stages.train``)."""
        return ConfigError(f"{prefix}.{self.key}" if self.key else prefix, self.message)


def require(ok: bool, key: str, allowed: str, value: Any) -> None:
    """Raise ``ConfigError(key, "must be <allowed>, got <value>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(key, f"must be {allowed}, got {value!r}")


def require_choice(value: Any, key: str, choices: tuple | list) -> None:
    """Raise a ConfigError unless ``value`` is one of ``choices``."""
    require(value in choices, key, "one of " + ", ".join(map(str, choices)), value)


def is_finite(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not a bool, not NaN or +-inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def require_finite(value: Any, key: str, allowed: str, ok: bool = True) -> None:
    """Raise ``ConfigError(key, "must be <allowed>, got <value>")`` unless ``value`` is finite and ``ok``."""
    require(is_finite(value) and ok, key, allowed, value)


def require_int(value: Any, key: str, lo: int, hi: int) -> None:
    """Raise a ConfigError unless ``value`` is an integer (not a bool) in ``[lo, hi]``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
    require(ok, key, f"an integer in [{lo}, {hi}]", value)


def require_filename(value: Any, key: str, suffix: str) -> None:
    """Raise a ConfigError unless ``value`` is a plain file name ending in ``suffix``: no path
    separators, no ``..``, not hidden, so the file stays inside the run folder."""
    ok = (isinstance(value, str) and value.endswith(suffix) and len(value) > len(suffix)
          and "/" not in value and "\\" not in value and ".." not in value and not value.startswith(".")
          and "\0" not in value)
    require(ok, key, f"a plain file name ending in {suffix} (no path separators or ..)", value)
