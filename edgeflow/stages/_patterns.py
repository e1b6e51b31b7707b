"""Early check of module-name patterns (prune ``exclude``, quantization ``overrides``) against a model.

Not a stage kind (the leading underscore keeps it out of discovery). A pattern that selects no layer
is a silent no-op (the layer a user meant stays pruned, or keeps its bits), so the stages' ``check``
hooks refuse it before any training, naming the layers that exist. Patterns select Conv1d, Conv2d
and Linear modules (the layers pruning and quantization act on); their names survive quantization
and structured thinning, so the initial model's names are the ones every later stage sees.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Callable, Iterable

from edgeflow.core.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

SHOWN = 12  # layer names listed in an error before the list is shortened


def layer_names(model: nn.Module) -> list[str]:
    """Qualified names of the Conv1d / Conv2d / Linear modules of ``model`` (subclasses included), in module order."""
    from torch import nn

    return [name for name, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def shortened(names: list[str]) -> str:
    """``names`` comma-separated; beyond ``SHOWN`` names, the first ones, ``...`` and the last one."""
    if len(names) <= SHOWN:
        return ", ".join(names)
    return ", ".join([*names[:SHOWN - 1], "...", names[-1]]) + f" ({len(names)} layers)"


def require_matches(key: str, patterns: Iterable[str], model: nn.Module, matches: Callable[[str, str], bool]) -> None:
    """Raise ``ConfigError(key, ...)`` for the first pattern that selects no layer of ``model``
    (``matches(name, pattern)``), or that is an invalid ``re:`` regular expression."""
    names = layer_names(model)
    for pattern in patterns:
        try:
            if any(matches(name, pattern) for name in names):
                continue
        except re.error as err:
            raise ConfigError(key, f"pattern {pattern!r} is not a valid regular expression: {err}") from None
        close = difflib.get_close_matches(pattern, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(key, f"pattern {pattern!r} matches no Conv/Linear layer; {hint}layers: {shortened(names)}")
