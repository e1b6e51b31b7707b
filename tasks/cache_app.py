"""``edgeflow-cache``: list or empty the stage cache (``edgeflow.cache``).

    edgeflow-cache list  [--dir DIR]     one line per entry: key, stage, kind, size, age, run that computed it
    edgeflow-cache clear [--dir DIR]     remove every entry

``--dir`` defaults to the cache of the project home (``<home>/cache``, ``cache.dir`` of a run).
A bad command line is one line on stderr and exit status 2. Imports no torch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tasks.args import OneLineArgumentParser

PROG = "edgeflow-cache"


def _parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog=PROG, description="List or empty edgeflow's stage cache.")
    p.add_argument("command", choices=("list", "clear"))
    p.add_argument("--dir", default=None, help="the cache folder (default: <home>/cache)")
    return p


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def main(argv: list[str] | None = None) -> None:
    """Run the command; prints to stdout, errors exit 2 (one line)."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from edgeflow.cache.schema import CacheConfig
    from edgeflow.cache.stage_cache import cache_dir
    from edgeflow.cache.store import CacheStore

    root = Path(args.dir).expanduser().resolve() if args.dir else cache_dir(CacheConfig())
    if args.dir and root.exists() and not root.is_dir():
        _parser().error(f"--dir: {root} is not a folder")
    store = CacheStore(root)
    if args.command == "clear":
        count = store.clear()
        print(f"removed {count} entr{'y' if count == 1 else 'ies'} from {root}")
        return
    entries = store.entries()
    now = time.time()
    for entry in reversed(entries):  # most recently used first
        meta = entry.meta
        age = now - float(meta.get("created", now))
        print(f"{entry.key}  {meta.get('stage', '?'):<12} {meta.get('kind', '?'):<9} "
              f"{_size(float(meta.get('bytes', 0))):>10}  {age / 3600:6.1f} h  run {meta.get('run_id') or '-'}")
    total = sum(float(e.meta.get("bytes", 0)) for e in entries)
    print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {_size(total)} in {root}")


if __name__ == "__main__":
    main()
