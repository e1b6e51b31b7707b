"""``model.checkpoint``: start a run from trained weights.

A checkpoint is one of

- a saved edgeflow state: ``<run>/state`` (the folder ``State.save`` wrote) or the run folder
  itself. The run starts from that state's ``model`` exactly as it was saved (its blueprint is
  replayed: a pruned, thinned or quantized model stays so) and carries its ``reference_metrics``
  (the float ``test_acc`` of the run that made it), so ``acc_drop`` keeps measuring against the
  original float model. The saved model must have been built from the configured model (same zoo
  name and options, or same ``_target_`` and arguments) for the same input shape and class count.
- a weights file: a plain state dict (``.pt`` / ``.pth``) or a Lightning checkpoint (``.ckpt``,
  whose ``state_dict`` keys carry the ``model.`` prefix of edgeflow's training task), read with
  ``torch.load(weights_only=True)`` and loaded strictly into the configured model. It carries no
  reference metrics.
- an MLflow URI ``runs:/<run_id>`` (the run's ``state`` artifact, which every pipeline run logs) or
  ``runs:/<run_id>/<artifact path>`` (a state folder or weights file among its artifacts), looked
  up in the store of ``tracking.uri``.

``parse`` and ``check`` are torch-free and run at validation (a missing file or an unknown run is a
``ConfigError`` naming ``model.checkpoint``); ``start_from`` loads it when the run starts.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from edgeflow.core.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

KEY = "checkpoint"
STATE_FILE = "state.json"  # edgeflow.state.STATE_FILE (that module is not imported at validation)
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt")
MLFLOW_SCHEME = "runs:/"
ALLOWED = ("a saved state folder (<run>/state), a .pt/.pth/.ckpt weights file, "
           "or an MLflow run URI runs:/<run_id>[/<artifact path>]")


@dataclass(frozen=True)
class Checkpoint:
    """A parsed ``model.checkpoint``: ``kind`` is ``state``, ``weights`` or ``mlflow``."""

    kind: str
    path: Path | None = None      # state folder or weights file (state, weights)
    run_id: str = ""              # mlflow
    artifact: str = "state"       # mlflow: artifact path inside the run


def parse(spec: str) -> Checkpoint:
    """Check ``spec`` without loading anything; ``ConfigError(KEY, ...)`` for a missing file or an
    unsupported kind of file."""
    if spec.startswith(MLFLOW_SCHEME):
        run_id, _, artifact = spec[len(MLFLOW_SCHEME):].strip("/").partition("/")
        if not run_id:
            raise ConfigError(KEY, f"must be {ALLOWED}; {spec!r} names no run")
        return Checkpoint("mlflow", run_id=run_id, artifact=artifact or "state")
    if "://" in spec or spec.startswith(("models:/", "runs:")):
        raise ConfigError(KEY, f"must be {ALLOWED}, got {spec!r}")
    path = Path(spec).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError) as err:  # a name too long for the file system, a NUL byte (config fuzz)
        raise ConfigError(KEY, f"{spec[:200]!r} is no usable path ({type(err).__name__}); must be {ALLOWED}") from None
    if not exists:
        raise ConfigError(KEY, f"{spec} does not exist; must be {ALLOWED}")
    if path.is_dir():
        for folder in (path, path / "state"):
            if (folder / STATE_FILE).is_file():
                return Checkpoint("state", path=folder)
        raise ConfigError(KEY, f"{spec} is a folder without {STATE_FILE} (nor state/{STATE_FILE}): "
                               "not a saved edgeflow state")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ConfigError(KEY, f"{spec}: a weights file ends in {', '.join(WEIGHT_SUFFIXES)}; must be {ALLOWED}")
    return Checkpoint("weights", path=path)


def check(spec: str, tracking_uri: str) -> None:
    """``parse`` plus, for an MLflow URI, that the run and its artifact exist in the store at
    ``tracking_uri`` (imports MLflow only then; never creates a store)."""
    point = parse(spec)
    if point.kind == "mlflow":
        _mlflow_entry(point, tracking_uri)


def _client(tracking_uri: str) -> Any:
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).is_file():
        raise ConfigError(KEY, f"no MLflow store at {tracking_uri} to look up runs:/ in (set tracking.uri)")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _mlflow_entry(point: Checkpoint, tracking_uri: str) -> Any:
    """The client, after checking that run ``point.run_id`` has artifact ``point.artifact``."""
    client = _client(tracking_uri)
    try:
        client.get_run(point.run_id)
    except Exception:  # noqa: BLE001 - MlflowException(RESOURCE_DOES_NOT_EXIST) or a malformed id
        raise ConfigError(KEY, f"no MLflow run {point.run_id!r} in {tracking_uri}") from None
    parent, _, name = point.artifact.rpartition("/")
    if not any(entry.path.rpartition("/")[2] == name for entry in client.list_artifacts(point.run_id, parent or None)):
        raise ConfigError(KEY, f"MLflow run {point.run_id} has no artifact {point.artifact!r}")
    return client


# ------------------------------------------------------------------------------------ loading
@dataclass
class Start:
    """What a checkpoint gives the run: the model to start from and the reference metrics it carries."""

    model: nn.Module
    reference_metrics: dict[str, float]


def start_from(spec: str, built: nn.Module, tracking_uri: str) -> Start:
    """The starting model for checkpoint ``spec``. ``built`` is the model the config builds: a state
    checkpoint must have been built the same way (its blueprint's first step) and replaces it; a
    weights file is loaded into it."""
    point = parse(spec)
    if point.kind == "mlflow":
        client = _mlflow_entry(point, tracking_uri)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(client.download_artifacts(point.run_id, point.artifact, tmp))
            return _load_local(_localized(local, spec), spec, built)
    return _load_local(point, spec, built)


def _localized(local: Path, spec: str) -> Checkpoint:
    """The downloaded artifact ``local`` as a checkpoint; errors name the URI ``spec``."""
    try:
        return parse(str(local))
    except ConfigError as err:
        raise ConfigError(KEY, f"{spec}: {err.message}") from None


def _load_local(point: Checkpoint, spec: str, built: nn.Module) -> Start:
    if point.kind == "state":
        return _from_state(point.path, spec, built)
    return Start(_from_weights(point.path, spec, built), {})


def _from_state(folder: Path, spec: str, built: nn.Module) -> Start:
    from edgeflow.models.blueprint import blueprint_of
    from edgeflow.state import State

    meta = json.loads((folder / STATE_FILE).read_text())
    saved = _call(meta["models"]["model"]["blueprint"][0])
    wanted = _call(blueprint_of(built)[0])
    if saved != wanted:
        raise ConfigError(KEY, f"{spec} holds {saved}, but the config builds {wanted}; "
                               "configure the model (and dataset) the checkpoint was trained with")
    state = State.load(folder)
    return Start(state.model, dict(state.reference_metrics))


def _from_weights(path: Path, spec: str, built: nn.Module) -> nn.Module:
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - unreadable, or pickled code that weights_only refuses
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(KEY, f"{spec} cannot be read as weights (torch.load weights_only=True): {first}") from None
    weights = _state_dict(loaded, spec)
    own = built.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    wrong = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shapes:", wrong)) if keys]
        raise ConfigError(KEY, f"{spec} does not fit the configured model ({'; '.join(parts)})")
    built.load_state_dict(weights, strict=True)
    return built


def _state_dict(loaded: Any, spec: str) -> Mapping[str, Any]:
    """A state dict from a plain one or a Lightning checkpoint (``state_dict`` with ``model.`` keys)."""
    import torch

    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        inner = loaded["state_dict"]
        prefixed = all(k.startswith("model.") for k in inner)
        return {k[len("model."):] if prefixed else k: v for k, v in inner.items()}
    if isinstance(loaded, Mapping) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        return loaded
    raise ConfigError(KEY, f"{spec} holds no state dict (a mapping of tensors, or a Lightning checkpoint)")


def _call(step: Mapping[str, Any]) -> str:
    """The call a blueprint's first step makes, every argument written out (defaults included, so
    a model built with a default left implicit equals one built with it explicit):
    ``cnn(input_shape=[1, 8, 8], num_classes=10, channels=[16, 32], dropout=0.0)``."""
    import inspect

    from edgeflow.core.targets import resolve
    from edgeflow.models.blueprint import json_form
    from edgeflow.models.zoo import ZOO

    if step["op"] == "zoo":
        name, fn = step["name"], ZOO.get(step["name"])
        args = {"input_shape": step["input_shape"], "num_classes": step["num_classes"], **step["options"]}
    else:
        name, fn = step["target"], resolve(step["target"], KEY)
        args = dict(step["kwargs"])
    try:
        bound = inspect.signature(fn).bind(**args)
        bound.apply_defaults()
        args = dict(bound.arguments)
    except (TypeError, ValueError):  # not a callable edgeflow can inspect, or arguments it no longer takes
        pass
    return f"{name}({', '.join(f'{k}={v}' for k, v in json_form(args).items())})"
