"""The stage cache: every stage's result (State, metrics, files, per-epoch metrics) stored under a
key hashing everything it depends on, so a run whose stage prefix matches an earlier run's — a sweep
over targets, a rerun of a killed run — reuses it instead of recomputing.

- ``schema``: ``CacheConfig``, the root ``cache`` key (``enabled``, ``dir``, ``max_size_mb``);
- ``keys``: what a stage's result depends on, as hashes;
- ``store``: the folder on disk (atomic entries, LRU eviction, listing, clearing);
- ``stage_cache``: ``StageCache``, what the pipeline calls around each stage, and resume records.

``edgeflow-cache list|clear`` (``tasks/cache_app.py``) shows and empties the folder.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {"CacheConfig": "schema", "CacheStore": "store", "StageCache": "stage_cache", "cache_dir": "stage_cache"}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
