"""Names the DNAS stage validates against, torch-free (config validation imports this)."""

from __future__ import annotations

METHODS = ("pit", "mps", "supernet")
COSTS = ("params", "macs", "flash_bytes", "latency_ms", "energy_uj")  # the soft totals of soft_model_cost
WEIGHT_BIT_CHOICES = (2, 4, 8)   # EdMIPS-style candidates (any of 1..8 allowed)
ACT_BIT_CHOICES = (4, 8)
SAMPLINGS = ("softmax", "gumbel", "hard")  # supernet choice-block sampling
