"""Run folders that no two runs share, and undoing the one Hydra made for a refused job.

``${now:...}`` has one-second resolution: runs started in the same second would share
``outputs/<name>/<time>/`` and overwrite each other's checkpoints and exports. ``conf/config.yaml``
appends ``${edgeflow.suffix:}``, a short random suffix (``register_suffix_resolver``), to the run and
sweep folders: ``outputs/quickstart/2026-12-04_22-30-01_3fa9c2``. OmegaConf caches it per config, and
Hydra copies that cache to a sweep's job configs, so a folder name is decided once.

Hydra creates ``outputs/<name>/<time>/`` with ``.hydra/`` and the job's log file before the app
runs; a run that fails validation should leave nothing behind. Only what Hydra wrote is removed,
and folders only when that leaves them empty: a user's files are never touched.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

__all__ = ["SUFFIX_RESOLVER", "register_suffix_resolver", "remove_unused_run_dir"]

SUFFIX_RESOLVER = "edgeflow.suffix"
#: hex digits of the suffix: 16.7 M values, so runs started in one second practically never meet
SUFFIX_HEX = 6


def register_suffix_resolver() -> None:
    """Register ``${edgeflow.suffix:}`` (a new random hex suffix, cached per config) once."""
    if not OmegaConf.has_resolver(SUFFIX_RESOLVER):
        OmegaConf.register_new_resolver(SUFFIX_RESOLVER, lambda: secrets.token_hex(SUFFIX_HEX // 2), use_cache=True)

#: the files Hydra saves into ``<run dir>/<hydra.output_subdir>/`` before the app runs
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")


def remove_unused_run_dir() -> None:
    """Remove what Hydra created for the current job, called from the app before it exits.

    Deletes ``<run dir>/.hydra/{config,hydra,overrides}.yaml``, the job's log file if nothing was
    logged to it, and in a sweep the sweep folder's ``multirun.yaml`` if no other job's folder is
    beside it; then the run folder and the folder above it (``outputs/<name>/``; in a sweep the job,
    sweep and ``multirun/<name>/`` folders) when they are left empty. The current folder and the
    folders above it are never removed.
    """
    hydra = HydraConfig.get()
    run_dir = Path(hydra.runtime.output_dir)
    keep = Path(hydra.runtime.cwd).resolve()
    if hydra.output_subdir is not None:
        saved = run_dir / hydra.output_subdir
        for name in HYDRA_FILES:
            (saved / name).unlink(missing_ok=True)
        _remove_if_empty(saved, keep)
    log = run_dir / f"{hydra.job.name}.log"
    if log.is_file() and log.stat().st_size == 0:
        log.unlink()
    if hydra.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra.sweep.dir)
        if not _remove_if_empty(run_dir, keep) or [p.name for p in sweep_dir.iterdir()] != ["multirun.yaml"]:
            return
        (sweep_dir / "multirun.yaml").unlink()
        run_dir = sweep_dir
    if _remove_if_empty(run_dir, keep):
        _remove_if_empty(run_dir.parent, keep)


def _remove_if_empty(folder: Path, keep: Path) -> bool:
    """``rmdir`` ``folder`` if it is empty and neither ``keep`` nor above it; True if it is gone."""
    folder = folder.resolve()
    if folder == keep or folder in keep.parents:
        return False
    try:
        folder.rmdir()
    except OSError:  # not empty (or already gone / not ours to remove)
        return not folder.exists()
    return True
