"""``StageConfig``: the base of every stage kind's ``Config`` schema (torch-free).

The leading underscore keeps this module out of stage discovery (``edgeflow.config.stage_kinds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

__all__ = ["StageConfig"]


@dataclass
class StageConfig:
    """Base of every stage schema. ``kind`` picks the stage module ``edgeflow.stages.<kind>``."""

    kind: str = MISSING
