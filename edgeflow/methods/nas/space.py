"""Search spaces as data: a model family of the zoo and the choices that vary (torch- and Optuna-free).

A space (``conf/search_space/<name>.yaml``) is a mapping::

    model: tcn                       # a zoo model (edgeflow.models.schemas.MODEL_SCHEMAS)
    fixed: {}                        # model options every candidate gets
    choices:                         # model option -> how it varies
      kernel_size: {type: categorical, values: [3, 5, 7]}
      dropout:     {type: float, low: 0.0, high: 0.3}            # log: true for a log scale
      width:       {type: int, low: 8, high: 64, step: 8}        # or log: true (then step 1)
      blocks:                        # a per-block list: a depth, then one value per existing block
        type: blocks
        depth: {type: int, low: 1, high: 4}
        each:                        # model option -> the per-block choice; each becomes a list
          channels: {type: int, low: 8, high: 32, step: 8}

A ``blocks`` entry is conditional: the choice of block ``i`` (``blocks.channels.2``) exists only in
candidates with more than ``i`` blocks. Every other key of ``choices`` and ``fixed`` is a model
option of ``model``; the name of a ``blocks`` entry is only a label for its parameters.

``parse(node)`` checks a space and returns a ``SearchSpace``, raising ``ConfigError`` with the key
relative to the space (``choices.width.low``). ``SearchSpace.sample(trial)`` asks any object with
Optuna's ``suggest_categorical`` / ``suggest_int`` / ``suggest_float`` for one candidate and returns
its model options; ``SearchSpace.grid()`` lists every parameter's values for a grid search.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

from edgeflow.core.errors import ConfigError, is_finite, require
from edgeflow.models.schemas import MODEL_SCHEMAS, RESERVED

__all__ = ["CHOICE_TYPES", "Choice", "Blocks", "SearchSpace", "parse"]

CHOICE_TYPES = ("categorical", "int", "float", "blocks")
MAX_DEPTH = 64          # a blocks depth beyond this is a typo, not an architecture
MAX_GRID = 100_000      # a grid with more points than this cannot be searched exhaustively


class Suggester(Protocol):
    """What ``SearchSpace.sample`` needs of a trial (``optuna.Trial`` has it)."""

    def suggest_categorical(self, name: str, choices: list) -> Any: ...
    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


@dataclass(frozen=True)
class Choice:
    """One categorical, int or float choice."""

    type: str
    values: tuple = ()
    low: float = 0
    high: float = 0
    step: int = 1
    log: bool = False

    def suggest(self, trial: Suggester, name: str) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(name, list(self.values))
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), step=self.step, log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)

    @property
    def finite(self) -> bool:
        """Whether the choice has finitely many values (a grid can enumerate it)."""
        return self.type != "float"

    def grid(self) -> list:
        """Every value of a categorical or int choice."""
        if self.type == "categorical":
            return list(self.values)
        return list(range(int(self.low), int(self.high) + 1, self.step))


@dataclass(frozen=True)
class Blocks:
    """A per-block list: ``depth`` blocks, each with one value per option of ``each``."""

    depth: Choice
    each: dict[str, Choice]


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: ``model``, ``fixed`` options and ``choices`` (name -> Choice | Blocks)."""

    model: str
    fixed: dict[str, Any]
    choices: dict[str, Choice | Blocks]

    def sample(self, trial: Suggester) -> dict[str, Any]:
        """One candidate's model options (``fixed`` plus a value for every choice) from ``trial``."""
        options = dict(self.fixed)
        for name, choice in self.choices.items():
            if isinstance(choice, Blocks):
                depth = choice.depth.suggest(trial, f"{name}.depth")
                for option, each in choice.each.items():
                    options[option] = [each.suggest(trial, f"{name}.{option}.{i}") for i in range(depth)]
            else:
                options[name] = choice.suggest(trial, name)
        return options

    @property
    def numeric(self) -> bool:
        """Whether every parameter is an int or float range (what CMA-ES samples jointly)."""
        return all(c.type in ("int", "float") for c in self._flat().values())

    def _flat(self) -> dict[str, Choice]:
        flat: dict[str, Choice] = {}
        for name, choice in self.choices.items():
            if isinstance(choice, Blocks):
                flat[f"{name}.depth"] = choice.depth
                for option, each in choice.each.items():
                    for i in range(int(choice.depth.high)):
                        flat[f"{name}.{option}.{i}"] = each
            else:
                flat[name] = choice
        return flat

    def grid_problem(self) -> str | None:
        """Why a grid search cannot enumerate this space, or None when it can."""
        for name, choice in self.choices.items():
            if isinstance(choice, Blocks) and choice.depth.low != choice.depth.high:
                return f"choices.{name}.depth varies (a grid needs a fixed depth: low = high)"
        flat = self._flat()
        for name, choice in flat.items():
            if not choice.finite:
                return f"{name} is a float range (a grid needs categorical or int choices)"
        size = math.prod(len(c.grid()) for c in flat.values())
        if size > MAX_GRID:
            return f"the grid has {size:,} points (at most {MAX_GRID:,})"
        return None

    def grid(self) -> dict[str, list]:
        """Parameter name -> every value, for ``optuna.samplers.GridSampler`` (see ``grid_problem``)."""
        return {name: choice.grid() for name, choice in self._flat().items()}


# ------------------------------------------------------------------------------------ parsing
def _choice(node: Any, key: str) -> Choice:
    if not isinstance(node, dict):
        raise ConfigError(key, f"must be a mapping with a type ({', '.join(CHOICE_TYPES[:3])}), got {node!r}")
    kind = node.get("type")
    require(kind in CHOICE_TYPES[:3], f"{key}.type", "one of " + ", ".join(CHOICE_TYPES[:3]), kind)
    allowed = {"categorical": {"type", "values"}, "int": {"type", "low", "high", "step", "log"},
               "float": {"type", "low", "high", "log"}}[kind]
    for k in node:
        if k not in allowed:
            raise ConfigError(f"{key}.{k}", f"unknown key for a {kind} choice; allowed: {', '.join(sorted(allowed))}")
    if kind == "categorical":
        values = node.get("values")
        require(isinstance(values, list) and len(values) > 0, f"{key}.values", "a non-empty list", values)
        require(all(isinstance(v, (str, int, float, bool)) or v is None for v in values), f"{key}.values",
                "a list of plain values (numbers, strings, booleans, null)", values)
        require(len({repr(v) for v in values}) == len(values), f"{key}.values", "a list without repeats", values)
        return Choice("categorical", values=tuple(values))
    low, high, log = node.get("low"), node.get("high"), node.get("log", False)
    require(isinstance(log, bool), f"{key}.log", "true or false", log)
    if kind == "int":
        step = node.get("step", 1)
        for k, v in (("low", low), ("high", high), ("step", step)):
            require(isinstance(v, int) and not isinstance(v, bool), f"{key}.{k}", "an integer", v)
        require(step >= 1, f"{key}.step", "an integer >= 1", step)
        require(not (log and step != 1), f"{key}.step", "1 with log: true (a log range has no step)", step)
    else:
        step = 1
        for k, v in (("low", low), ("high", high)):
            require(is_finite(v), f"{key}.{k}", "a finite number", v)
    require(low <= high, f"{key}.high", f">= low ({low})", high)
    require(not log or low > 0, f"{key}.low", "> 0 with log: true", low)
    return Choice(kind, low=low, high=high, step=step, log=log)


def _blocks(node: dict, key: str, options: set[str]) -> Blocks:
    for k in node:
        if k not in ("type", "depth", "each"):
            raise ConfigError(f"{key}.{k}", "unknown key for a blocks choice; allowed: depth, each, type")
    depth = _choice(node.get("depth"), f"{key}.depth")
    require(depth.type == "int" and depth.low >= 0 and depth.high <= MAX_DEPTH, f"{key}.depth",
            f"an int choice within [0, {MAX_DEPTH}]", node.get("depth"))
    each = node.get("each")
    require(isinstance(each, dict) and len(each) > 0, f"{key}.each",
            "a non-empty mapping model option -> per-block choice", each)
    parsed = {}
    for option, sub in each.items():
        _require_option(option, options, f"{key}.each.{option}")
        parsed[option] = _choice(sub, f"{key}.each.{option}")
    return Blocks(depth, parsed)


def _require_option(name: str, options: set[str], key: str) -> None:
    if name not in options:
        raise ConfigError(key, f"is not an option of this model; options: {', '.join(sorted(options))}")


def parse(node: Any) -> SearchSpace:
    """Check the space ``node`` (see the module docstring) and return it as a ``SearchSpace``."""
    if not isinstance(node, dict):
        raise ConfigError("", f"must be a search space mapping (model, fixed, choices), got {node!r}")
    for k in node:
        if k not in ("model", "fixed", "choices"):
            raise ConfigError(str(k), "unknown key; allowed: choices, fixed, model")
    model = node.get("model")
    require(model in MODEL_SCHEMAS, "model", "a zoo model: " + ", ".join(sorted(MODEL_SCHEMAS)), model)
    options = {f.name for f in dataclasses.fields(MODEL_SCHEMAS[model]) if f.name not in ("name", *RESERVED)}
    fixed = node.get("fixed") or {}
    require(isinstance(fixed, dict), "fixed", "a mapping model option -> value", fixed)
    for name in fixed:
        _require_option(name, options, f"fixed.{name}")
    choices_node = node.get("choices")
    require(isinstance(choices_node, dict) and len(choices_node) > 0, "choices",
            "a non-empty mapping model option -> choice", choices_node)
    choices: dict[str, Choice | Blocks] = {}
    set_by: dict[str, str] = {name: f"fixed.{name}" for name in fixed}
    for name, sub in choices_node.items():
        key = f"choices.{name}"
        if isinstance(sub, dict) and sub.get("type") == "blocks":
            choices[name] = _blocks(sub, key, options)
            targets = {option: f"{key}.each.{option}" for option in choices[name].each}
        else:
            _require_option(name, options, key)
            choices[name] = _choice(sub, key)
            targets = {name: key}
        for option, where in targets.items():
            if option in set_by:
                raise ConfigError(where, f"sets model option {option!r}, which {set_by[option]} sets too")
            set_by[option] = where
    return SearchSpace(model=model, fixed=dict(fixed), choices=choices)
