"""Did-you-mean hints for error lines: the option closest to a mistyped name (``difflib``).

A leaf module (standard library only), so config checks and the command-line tools can share it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the option most similar to ``word``, or ``""`` if none is close.

    Close means a ``difflib`` similarity ratio of at least 0.6 (``max_epoch`` → ``max_epochs``,
    ``cortex-m4`` → ``cortex_m4``, ``quickstat`` → ``quickstart``).
    """
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""
