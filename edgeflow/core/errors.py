"""Configuration errors and the checks that raise them: one line naming the key and what is allowed.

A leaf module: it imports nothing of edgeflow, so every schema (stages, datasets, hardware, models)
can use it without import cycles.
"""

from __future__ import annotations

from typing import Any


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
