"""Schema of the root ``cache`` key (torch-free): where stage results are kept and how much."""

from __future__ import annotations

from dataclasses import dataclass

from edgeflow.core.errors import require, require_finite

__all__ = ["CacheConfig", "MAX_SIZE_MB"]

MAX_SIZE_MB = 10**7  # 10 TB: anything larger is a typo


@dataclass
class CacheConfig:
    """The stage cache (``edgeflow.cache``).

    ``enabled`` false runs every stage (nothing read, nothing written). ``dir`` null means
    ``<home>/cache``, beside the default ``mlflow.db``. ``max_size_mb`` bounds the folder: after a
    stage is stored, the least recently used entries are removed until it fits.
    """

    enabled: bool = True
    dir: str | None = None
    max_size_mb: float = 2048.0

    def __post_init__(self) -> None:
        require_finite(self.max_size_mb, "max_size_mb", f"a finite number of MB in (0, {MAX_SIZE_MB}]",
                       0 < self.max_size_mb <= MAX_SIZE_MB)
        require(self.dir is None or str(self.dir).strip() != "", "dir", "a folder path or null", self.dir)
