"""Confidence measures of a classifier's output, each in [0, 1] (1 = certain).

- ``max_prob``: the largest softmax probability;
- ``score_margin``: largest − second largest probability (the seeds' "success checker");
- ``entropy``: 1 − H(p) / log(C), the normalised entropy turned into a confidence.

A system serves a sample from a path when the path's confidence is **above** its threshold θ and
runs the next path otherwise ("invoke big iff SM ≤ θ"): θ = 0 stops almost always at the first
path, θ = 1 never stops before the last.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MEASURES = ("max_prob", "score_margin", "entropy")  # = edgeflow.stages.adaptive.MEASURES (torch-free there)


def confidence(logits: Tensor, measure: str) -> Tensor:
    """The confidence ``[N]`` of logits ``[N, C]`` by ``measure`` (one of ``MEASURES``)."""
    p = torch.softmax(logits.float(), dim=1)
    if measure == "max_prob":
        return p.max(dim=1).values
    if measure == "score_margin":
        top = p.topk(2, dim=1).values
        return top[:, 0] - top[:, 1]
    if measure == "entropy":
        h = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)
        return 1 - h / math.log(p.shape[1])
    raise ValueError(f"unknown confidence measure {measure!r}; allowed: {', '.join(MEASURES)}")
