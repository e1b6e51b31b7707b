"""Hydra's own error reports, as edgeflow's one line ``<prog>: config error: <key>: <message>``, exit 2.

Hydra reports a mistake it finds while composing (an unknown group option, a key that does not
exist, malformed override syntax, a YAML syntax error in a config file) in several lines of its
own words and exits with status 1. ``run_reporting_config_errors`` runs a ``@hydra.main`` app so
that these reach edgeflow instead, and ``translate`` turns each into a ``ConfigError`` naming the
key, what exists there and the closest match::

    edgeflow: config error: hardware: no option 'cortex-m4' (did you mean 'cortex_m4'?); options: cortex_m4, ...
    edgeflow: config error: stages.train.max_epoch: no such key (did you mean 'max_epochs'?); keys here: ...
    edgeflow: config error: conf/recipe/mine.yaml:7:10: YAML syntax error: expected ',' or '}', ...

Only Hydra, OmegaConf and PyYAML are imported: a config error answers in well under a second.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import yaml
from hydra.errors import (
    HydraException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)
from omegaconf import DictConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from edgeflow.core.errors import ConfigError
from edgeflow.core.suggest import did_you_mean

__all__ = ["translate", "exit_config_error", "run_reporting_config_errors"]

#: Hydra re-raises composition errors instead of printing them when this is "1" (its documented switch)
FULL_ERROR = "HYDRA_FULL_ERROR"
GRAMMAR_URL = "https://hydra.cc/docs/advanced/override_grammar/basic/"
#: where a Hydra message names the config it was composing: "In 'recipe/mine': ..." or "In recipe/mine: ..."
_IN_CONFIG = re.compile(r"^In '?(?P<where>[^':]+)'?: (?P<rest>.*)$", re.S)


def translate(exc: BaseException) -> ConfigError | None:
    """The one-line ``ConfigError`` a user should read for ``exc``; ``None`` if it is no config mistake.

    Handles what Hydra raises while composing (``MissingConfigException``,
    ``OverrideParseException``, ``SearchPathException``, ``ConfigCompositionException`` and the
    OmegaConf error behind it), PyYAML syntax errors (with file, line and column) and OmegaConf
    errors (interpolations); a ``ConfigError`` is returned as it is.
    """
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, MissingConfigException):
        return _missing_option(exc)
    if isinstance(exc, OverrideParseException):
        return ConfigError(exc.override, f"malformed override: {_first_line(exc.message)} (syntax: {GRAMMAR_URL})")
    if isinstance(exc, SearchPathException):
        return ConfigError("--config-dir", _first_line(str(exc)))
    if isinstance(exc, yaml.MarkedYAMLError):
        return _yaml_syntax(exc)
    if isinstance(exc, HydraException):
        return _composition(exc)
    if isinstance(exc, OmegaConfBaseException):
        return ConfigError(exc.full_key or "config", _first_line(exc.msg or str(exc)))
    if isinstance(exc, yaml.YAMLError):
        return ConfigError("YAML", _first_line(str(exc)))
    return None


def exit_config_error(prog: str, err: ConfigError) -> NoReturn:
    """Print ``<prog>: config error: <err>`` as one line on stderr and exit with status 2."""
    print(f"{prog}: config error: {err}", file=sys.stderr)
    sys.exit(2)


def run_reporting_config_errors(app: Callable[[], object], prog: str, argv: list[str]) -> None:
    """Run the ``@hydra.main`` ``app`` (it parses ``sys.argv``); a config mistake exits 2 with one line.

    ``argv`` (the arguments after the program name) is first checked against Hydra's flags, so an
    unknown flag is one line too. Hydra is then run with ``HYDRA_FULL_ERROR=1`` so that it raises
    its composition errors instead of printing them; ``translate`` words them. Exceptions that are no
    config mistake propagate unchanged. A user who sets ``HYDRA_FULL_ERROR=1`` gets Hydra's own
    reports with full tracebacks, as Hydra documents.
    """
    if os.environ.get(FULL_ERROR) == "1":
        app()
        return
    _check_flags(prog, argv)
    os.environ[FULL_ERROR] = "1"
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - translated when it is a config mistake, re-raised otherwise
        err = translate(exc)
        if err is None:
            raise
        exit_config_error(prog, err)
    finally:
        os.environ.pop(FULL_ERROR, None)


def _check_flags(prog: str, argv: list[str]) -> None:
    """Exit 2 with one line when ``argv`` has a flag Hydra's parser rejects (argparse would print its usage)."""
    from hydra._internal.utils import get_args_parser  # the parser @hydra.main itself uses

    parser = get_args_parser()
    parser.exit_on_error = False
    try:
        _, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        exit_config_error(prog, ConfigError("command line", f"{exc} (see {prog} --help)"))
    if unknown:
        exit_config_error(prog, ConfigError("command line", f"unrecognized arguments: {' '.join(unknown)} "
                                                            f"(see {prog} --help)"))


def _missing_option(exc: MissingConfigException) -> ConfigError:
    """``hardware=cortex-m4``, ``recipe=quickstat``, a recipe's ``/stage@stages.x: trian``, ``-cn nope``."""
    missing = exc.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    if not group:
        return ConfigError("--config-name", f"no config {missing!r} in the config search path")
    match = _IN_CONFIG.match(str(exc))
    where = match["where"] if match else "config"
    inside = "" if where in ("config", "hydra/config") else f", asked for in {where}"
    if not exc.options:
        return ConfigError(group, f"could not load option {option!r}{inside}")
    return ConfigError(group, f"no option {option!r}{did_you_mean(option, exc.options)}{inside}; "
                              f"options: {', '.join(exc.options)}")


def _composition(exc: HydraException) -> ConfigError:
    """A key typo (keys at that level and the closest), ``+`` on an existing key, a recipe without its
    ``# @package _global_`` first line, a comma list without ``-m``; any other message on one line."""
    cause = exc.__cause__
    if (isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and cause.full_key
            and isinstance(cause.parent_node, DictConfig)):
        return _unknown_key(cause)
    text = str(exc)
    if m := re.search(r"An item is already at '(?P<key>[^']+)'.*?remove \+ prefix: '(?P<plain>[^']+)'", text, re.S):
        return ConfigError(m["key"], f"already set; override it without '+': {m['plain']}")
    if m := re.search(r"In '?(?P<where>[^':]+)'?: Could not override '\w+@recipe\.", text):
        return ConfigError(m["where"], "the first line must be '# @package _global_' (Hydra reads the package "
                                       "header only on the first line of a file)")
    if m := re.match(r"Ambiguous value for argument '(?P<arg>[^']+)'", text):
        return ConfigError(m["arg"], "a comma in a value needs -m (a sweep: one job per value), "
                                     "[a,b] (a list) or quotes (a string)")
    if isinstance(cause, OmegaConfBaseException) and cause.full_key:
        return ConfigError(str(cause.full_key), _first_line(cause.msg or str(cause)))
    lines = [line.strip() for line in text.split("\nConfig search path:")[0].splitlines()
             if line.strip() and not line.startswith("To append to your config use")]
    message = " ".join(lines)
    if m := _IN_CONFIG.match(message):
        return ConfigError(m["where"], m["rest"])
    return ConfigError("command line", message)


def _unknown_key(cause: ConfigKeyError | ConfigAttributeError) -> ConfigError:
    """``stages.train.max_epoch=5``: the closest key and all keys at that level; not Hydra's ``+`` advice."""
    full_key = str(cause.full_key)
    keys = [str(k) for k in cause.parent_node.keys()]
    if "." not in full_key and not full_key.startswith("hydra"):
        keys = [k for k in keys if k != "hydra"]  # Hydra's own node, not one of edgeflow's root keys
    name = str(cause.key) if cause.key is not None else full_key.rsplit(".", 1)[-1]
    return ConfigError(full_key, f"no such key{did_you_mean(name, keys)}; keys here: {', '.join(keys)}")


def _yaml_syntax(exc: yaml.MarkedYAMLError) -> ConfigError:
    """``<file>:<line>:<column>: YAML syntax error: <problem> (<context> at line L, column C)``."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if mark is None:
        return ConfigError("YAML", f"syntax error: {problem}")
    message = f"YAML syntax error: {problem}"
    if exc.context and exc.context_mark is not None and exc.problem:
        message += f" ({exc.context} at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    return ConfigError(f"{_shown_path(mark.name)}:{mark.line + 1}:{mark.column + 1}", message)


def _shown_path(name: str) -> str:
    """``name`` relative to the current folder when it lies inside it, else as given."""
    path = Path(name)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return name


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
