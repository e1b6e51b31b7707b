"""Config fuzzing (issue 10 §6): random values in every option of every stage kind and every root
group; ``validate`` either accepts the config or raises one one-line ``ConfigError``, never another
exception.

An example assembles a config from the option files themselves (read with OmegaConf, no Hydra
composition, so an example costs one ``validate``): one file of each root group
(``conf/{model,dataset,hardware,trainer,tracking}/*.yaml``), one or two stages from
``conf/stage/<kind>.yaml`` and the other root keys as ``conf/config.yaml`` sets them. It then replaces 1 to 3
leaves (scalars and list items) with a value drawn for the leaf's type (near and far numbers, edges,
NaN/inf, huge integers) or of another type (text with interpolations and path tricks, booleans, null,
lists, mappings). ``make test`` runs a bounded, derandomized count (``EXAMPLES``);
``EDGEFLOW_FUZZ_EXAMPLES=2000`` makes a longer, random run; ``benchmarks/config_fuzz.py`` counts one.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import edgeflow  # noqa: F401 - registers ${edgeflow.home:}, which dataset roots use
from edgeflow import CONF_DIR
from edgeflow.config import ROOT_KEYS, stage_kinds, validate
from edgeflow.core.errors import ConfigError

EXAMPLES = int(os.environ.get("EDGEFLOW_FUZZ_EXAMPLES", "40"))
Path = tuple  # a leaf's path: keys and list indices
GROUPS = ("model", "dataset", "hardware", "trainer", "tracking")

EDGES = [0, -1, 1, 2, 2**31, 2**32, 2**63, 10**30, -(10**30), 0.0, -0.0, 1e-300, 5e-324, 1e308, float("inf"),
         float("-inf"), float("nan")]
TEXT = ["", " ", "${oops}", "${name}", "../../x", "/abs/path", "a\\b", "x.onnx", "runs:/deadbeef", "null", "1e3",
        "\u00e9\u00e8", "a" * 300]
SCALARS = st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=12), st.booleans(), st.none(),
                    st.sampled_from(EDGES), st.sampled_from(TEXT))
ANY = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.text(max_size=6), SCALARS, max_size=2))


def _load(path: Any) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


OPTIONS = {group: {p.stem: _load(p) for p in sorted((CONF_DIR / group).glob("*.yaml"))} for group in GROUPS}
#: the root keys that are no group (``seed``, ``name``, ``optimize``, ...) with their values in conf/config.yaml
ROOT = {key: value for key, value in _load(CONF_DIR / "config.yaml").items() if key not in ("defaults", "hydra")}
STAGES = {kind: _load(CONF_DIR / "stage" / f"{kind}.yaml") for kind in sorted(stage_kinds())
          if (CONF_DIR / "stage" / f"{kind}.yaml").exists()}


@st.composite
def configs(draw: st.DrawFn) -> dict:
    """A config of one option per root group and one or two stages, every value as its file has it."""
    cfg: dict[str, Any] = {group: copy.deepcopy(OPTIONS[group][draw(st.sampled_from(sorted(OPTIONS[group])))])
                           for group in GROUPS}
    kinds = draw(st.lists(st.sampled_from(sorted(STAGES)), min_size=1, max_size=2))
    cfg["stages"] = {f"s{i}_{kind}": copy.deepcopy(STAGES[kind]) for i, kind in enumerate(kinds)}
    cfg.update(copy.deepcopy(ROOT))
    return cfg


def leaves(tree: Any, path: Path = ()) -> list[Path]:
    """The paths of every scalar and every list item of ``tree``."""
    if isinstance(tree, dict):
        return [p for key, value in tree.items() for p in leaves(value, (*path, key))]
    if isinstance(tree, list):
        return [path, *(p for i, value in enumerate(tree) for p in leaves(value, (*path, i)))]
    return [path]


def value_for(original: Any) -> st.SearchStrategy:
    """Values for a leaf that held ``original``: mostly its own type, near and far, sometimes anything."""
    if isinstance(original, bool):
        own = st.booleans()
    elif isinstance(original, int):
        own = st.one_of(st.integers(-3, 3), st.integers(original - 2, original + 2), st.integers(-(2**40), 2**40))
    elif isinstance(original, float):
        own = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                        st.floats(-10, 10).map(lambda x: original * x), st.just(original / 2))
    elif isinstance(original, str):
        own = st.one_of(st.text(max_size=12), st.sampled_from(TEXT), st.just(original + "x"))
    elif isinstance(original, list):
        own = st.lists(SCALARS, max_size=5)
    else:
        own = ANY
    return st.one_of(own, own, ANY)


def _set(tree: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def _get(tree: Any, path: Path) -> Any:
    """The value at ``path``; KeyError, IndexError or TypeError once an earlier replacement moved it."""
    for key in path:
        if not isinstance(tree, (dict, list)):
            raise TypeError(f"{type(tree).__name__} is no container")
        tree = tree[key]
    return tree


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40, database=None,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing example is printed as drawn
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_validate_accepts_or_raises_one_config_error(data: st.DataObject) -> None:
    cfg = data.draw(configs(), label="config")
    for path in data.draw(st.lists(st.sampled_from(leaves(cfg)), min_size=1, max_size=3, unique=True), label="paths"):
        try:
            original = _get(cfg, path)
        except (KeyError, IndexError, TypeError):  # an earlier path replaced the list or mapping it lay in
            continue
        _set(cfg, path, data.draw(value_for(original), label=".".join(map(str, path))))
    try:
        validate(cfg)
    except ConfigError as err:
        assert "\n" not in str(err), str(err)


def test_the_fuzzer_reaches_every_stage_kind_and_root_key() -> None:
    assert set(STAGES) == set(stage_kinds())  # every stage kind has defaults to start from
    assert set(GROUPS) | {"stages"} | set(ROOT) == ROOT_KEYS
    assert all(OPTIONS[group] for group in GROUPS)


def test_what_the_long_run_found_is_a_config_error() -> None:
    """``EDGEFLOW_FUZZ_EXAMPLES=1500`` found a checkpoint name too long for the file system (OSError)."""
    cfg = copy.deepcopy({**{group: OPTIONS[group][name] for group, name in
                            (("model", "cnn"), ("dataset", "digits"), ("hardware", "cortex_m4"),
                             ("trainer", "default"), ("tracking", "default"))},
                         "stages": {"train": STAGES["train"]}, **ROOT})
    cfg["model"]["checkpoint"] = "a" * 300
    try:
        validate(cfg)
    except ConfigError as err:
        assert str(err).startswith("model.checkpoint: 'aaaa") and "no usable path" in str(err)
    else:
        raise AssertionError("a 300-character checkpoint name was accepted")
