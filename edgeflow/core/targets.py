"""Import paths to user code (``_target_: mypkg.nets.MyNet``): resolve them and check the call.

A target is a dotted import path ``module.attribute`` (``module`` may be a package path, and the
attribute may be nested: ``mypkg.nets.Factory.small``). ``resolve`` imports it and returns the
callable; ``call_arguments`` checks configured keyword arguments against its signature. Both raise
``ConfigError`` with one line naming the key, so a wrong target stops a run at validation.

Torch-free itself; resolving a target imports the user's module (and whatever it imports).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from edgeflow.core.errors import ConfigError

TARGET_KEY = "_target_"


def _import_module(parts: list[str], key: str, path: str) -> tuple[Any, int]:
    """The longest importable module prefix of ``parts`` and how many parts it used."""
    for n in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:n])
        try:
            return importlib.import_module(name), n
        except ModuleNotFoundError as err:
            if err.name is not None and (name == err.name or name.startswith(err.name + ".")):
                continue  # this prefix is not a module: try a shorter one
            raise ConfigError(key, f"cannot import {path}: importing {name} failed: "
                                   f"ModuleNotFoundError: {err}") from None
        except Exception as err:  # noqa: BLE001 - the user's module failed while importing
            first = str(err).splitlines()[0] if str(err) else ""
            raise ConfigError(key, f"cannot import {path}: importing {name} failed: "
                                   f"{type(err).__name__}: {first}") from None
    raise ConfigError(key, f"cannot import {path}: no module named {parts[0]!r} "
                           "(is its folder on PYTHONPATH, or the package installed?)")


def resolve(path: Any, key: str) -> Callable[..., Any]:
    """The callable at import path ``path``; ``ConfigError(key, ...)`` if it does not import
    (module or attribute missing) or is not callable."""
    if not isinstance(path, str) or path.count(".") < 1 or not all(p.isidentifier() for p in path.split(".")):
        raise ConfigError(key, f"must be an import path 'module.attribute' (e.g. mypkg.nets.MyNet), got {path!r}")
    parts = path.split(".")
    obj, used = _import_module(parts, key, path)
    for i, attr in enumerate(parts[used:], start=used):
        if not hasattr(obj, attr):
            owner = ".".join(parts[:i])
            close = difflib.get_close_matches(attr, [n for n in dir(obj) if not n.startswith("_")], n=1)
            hint = f" (did you mean {owner}.{close[0]}?)" if close else ""
            raise ConfigError(key, f"cannot import {path}: {owner} has no attribute {attr!r}{hint}")
        obj = getattr(obj, attr)
    if not callable(obj):
        raise ConfigError(key, f"{path} is not callable (it is a {type(obj).__name__})")
    return obj


def call_arguments(fn: Callable[..., Any], path: str, given: Mapping[str, Any], offered: Mapping[str, Any],
                   prefix: str) -> dict[str, Any]:
    """The keyword arguments to call ``fn`` (target ``path``) with: ``given`` (the configured keys,
    all passed) plus each ``offered`` value that is not None and whose name ``fn`` declares as a
    parameter.

    Raises ``ConfigError("<prefix>.<key>", ...)`` (bare ``<key>`` for an empty prefix) for a
    configured key ``fn`` has no parameter for (unless it takes ``**kwargs``) and for a parameter
    without default that nothing supplies (an ``offered`` name counts as supplied even while its
    value is None: validation offers what the run fills in later, such as the data's shape).
    A callable whose signature cannot be read gets ``given`` as is.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return dict(given)
    named = {n: p for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for name in given:
        if name not in named and not takes_any:
            listed = ", ".join(named) or "none"
            raise ConfigError(_key(prefix, name), f"is not a parameter of {path}; its parameters: {listed}")
    args = {**{n: v for n, v in offered.items() if n in named and v is not None}, **given}
    for name, param in named.items():
        if param.default is inspect.Parameter.empty and name not in args and name not in offered:
            raise ConfigError(_key(prefix, name), f"is required by {path} (a parameter without default)")
    return args


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
