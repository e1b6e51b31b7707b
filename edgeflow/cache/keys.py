"""What a stage's result depends on, as hashes: the code, the state a stage starts from, the config
groups it read. Two runs whose keys agree compute the same result (training is deterministic on CPU
and the pipeline seeds every stage alike).

A stage's key is built in two steps, because which config groups a stage reads is known only after
it ran (``StageContext.reads``):

- ``base_key``: the cache format, the libraries (``environment``), the stage's name and config,
  the run's seed and the state it starts from (``state_fingerprint``: every model's weights, structure
  and flags, the reference metrics, the artifacts, the history). The state is the result of every
  earlier stage, so the whole prefix — its configs, the model, the dataset, the seed — is in it.
- ``full_key``: the base plus the value of every group the stage read (``dataset``, ``trainer``
  without the progress bar, ``hardware``, or one option of it, ``hardware.sparse_formats``) and
  the contents of edgeflow's source files loaded when it ended (``loaded_code``, ``code_hash``):
  the code of the stages that ran, and no other, so editing the runtime does not invalidate a
  cached training.

torch is imported only by ``state_fingerprint`` (through ``model_version``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "canonical", "digest", "environment", "loaded_code", "code_hash", "state_fingerprint", "base_key",
           "full_key", "read_values"]

FORMAT = 1  # bump when the layout of an entry changes
#: trainer options that do not change a result
SILENT_TRAINER = ("progress_bar",)


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data: dataclasses as dicts, tuples as lists, paths as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def digest(*parts: Any) -> str:
    """A hex blake2b hash of ``parts`` in canonical JSON."""
    text = json.dumps([canonical(p) for p in parts], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _package() -> Path:
    import edgeflow

    return Path(edgeflow.__file__).resolve().parent


@cache
def environment() -> str:
    """A hash of Python's version, the versions of torch, Lightning, numpy, onnx and onnxruntime,
    and the bundled targets (``conf/hardware/*.yaml``, which ``ctx.target(name)`` reads): a new
    release of any of them misses the cache."""
    from importlib.metadata import PackageNotFoundError, version

    import edgeflow

    h = hashlib.blake2b(digest_size=16)
    for package in ("torch", "pytorch-lightning", "numpy", "onnx", "onnxruntime"):
        try:
            h.update(f"{package}={version(package)};".encode())
        except PackageNotFoundError:
            h.update(f"{package}=-;".encode())
    h.update(sys.version.encode())
    for path in sorted((edgeflow.CONF_DIR / "hardware").glob("*.yaml")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def loaded_code() -> list[str]:
    """The source files (relative to the ``edgeflow`` package) of every edgeflow module loaded in
    this process, except the cache, report and tracking packages, which record results without
    making them. Read after a stage ran, it names all the code the stage could have run."""
    package = _package()
    files = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("edgeflow.") or name.startswith(("edgeflow.cache", "edgeflow.report",
                                                                 "edgeflow.tracking")):
            continue
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(package):
            files.add(Path(path).resolve().relative_to(package).as_posix())
    return sorted(files)


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def code_hash(files: Iterable[str]) -> str:
    """A hash of the current contents of ``files`` (from ``loaded_code``); a missing file counts as
    such. File hashes are kept per (path, mtime, size) for the life of the process."""
    package = _package()
    parts = []
    for rel in files:
        path = package / rel
        try:
            stat = path.stat()
        except OSError:
            parts.append([rel, "missing"])
            continue
        marker = (str(path), stat.st_mtime_ns, stat.st_size)
        if marker not in _FILE_HASHES:
            _FILE_HASHES[marker] = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        parts.append([rel, _FILE_HASHES[marker]])
    return digest(parts)


def _user_code(models: Iterable[Any]) -> list[str]:
    """Hashes of the source files of models that are not edgeflow's own (a user's ``_target_``)."""
    out = []
    for model in models:
        module = sys.modules.get(type(model).__module__)
        path = getattr(module, "__file__", None)
        if path and not type(model).__module__.startswith(("edgeflow.", "torch.")):
            out.append(hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest())
    return out


def state_fingerprint(state: Any, run_dir: Path) -> str:
    """A hash of everything in ``state`` (an ``edgeflow.state.State``): each model's
    ``model_version`` and train/eval mode, the code of users' model classes, shapes, reference
    metrics, history, and each artifact's key, model, version and path relative to ``run_dir``."""
    from edgeflow.state import model_version

    artifacts = {}
    for key, art in state.artifacts.items():
        path = Path(art.path)
        rel = path.relative_to(run_dir).as_posix() if path.is_relative_to(run_dir) else str(path)
        artifacts[key] = [rel, art.model, art.version]
    return digest({name: [model_version(m), m.training] for name, m in state.models.items()},
                  _user_code(state.models.values()), list(state.input_shape), state.num_classes,
                  dict(state.reference_metrics), list(state.history), artifacts)


def base_key(stage_name: str, stage_cfg: Any, seed: int, fingerprint: str) -> str:
    """What every result of stage ``stage_name`` depends on, whatever it reads or runs (see the
    module doc)."""
    return digest(FORMAT, environment(), stage_name, stage_cfg, seed, fingerprint)


def read_values(reads: Iterable[str], groups: Mapping[str, Any]) -> dict[str, Any]:
    """The value of each read group (``dataset``) or group option (``hardware.sparse_formats``) in
    ``groups`` (group name -> typed config); the trainer without ``SILENT_TRAINER`` options."""
    out: dict[str, Any] = {}
    for read in sorted(set(reads)):
        group, _, option = read.partition(".")
        value = canonical(groups.get(group))
        if option:
            value = value.get(option) if isinstance(value, dict) else None
        elif group == "trainer" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in SILENT_TRAINER}
        out[read] = value
    return out


def full_key(base: str, values: Mapping[str, Any], code: str) -> str:
    """The key of a stored result: its ``base_key``, the values of what it read (``read_values``)
    and the hash of the code it could have run (``code_hash``)."""
    return digest(base, dict(values), code)
