"""Adaptive inference in plain PyTorch: systems that spend more compute only on hard inputs.

- ``confidence(logits, measure)``: ``max_prob``, ``score_margin`` (top-1 − top-2 probability) or
  ``entropy``, each in [0, 1];
- ``BigLittle``, ``EarlyExit`` (``edgeflow.methods.adaptive.system``): one ``nn.Module`` holding its
  parts and its thresholds (a buffer); ``forward`` is the policy;
- ``VariableWidth`` (``slimmable``): one network at several widths with switchable BatchNorm,
  ``width_loss`` trains every width on every batch;
- ``exit_loss``: the weighted early-exit training loss (joint, or heads only on a frozen backbone);
- ``quantize_chain`` / ``quantize_widths`` (``int8``): the int8 parts of an early-exit system (segments
  and heads, calibrated in chain order, tied int8 boundaries) or of a variable-width one
  (``WidthModels``: one quantized plain model per width);
- ``sweep`` / ``choose`` (``calibrate``): the operating curve over thresholds and the pick of an
  operating point by a rule, from per-path outputs and per-path costs (plain numpy);
- ``partition`` (``partition``): Neurosurgeon's split-point table between a device and a server.
"""

from edgeflow.methods.adaptive.calibrate import Point, choose, expected_cost, sweep
from edgeflow.methods.adaptive.confidence import MEASURES, confidence
from edgeflow.methods.adaptive.slimmable import VariableWidth, width_loss
from edgeflow.methods.adaptive.system import AdaptiveSystem, BigLittle, EarlyExit, exit_points, resolve_exit
from edgeflow.methods.adaptive.training import exit_loss

__all__ = ["MEASURES", "AdaptiveSystem", "BigLittle", "EarlyExit", "Point", "choose", "confidence", "exit_loss",
           "exit_points", "expected_cost", "resolve_exit", "sweep", "VariableWidth", "width_loss"]
