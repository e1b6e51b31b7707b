"""The long config fuzz run (issue 10 §6): ``tests/test_config_fuzz.py``'s generator, random, many
examples, with a count of what ``validate`` did.

    .venv/bin/python benchmarks/config_fuzz.py [--examples 2000]

Each example is a config assembled from the option files with 1 to 3 leaves replaced (see the test
module). ``validate`` must accept it or raise one one-line ``ConfigError``. Prints the number of
accepted and refused configs and every escape (another exception, or a multi-line message) grouped by
where it was raised, with the first example of each; exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_config_fuzz as fuzz  # noqa: E402 - the generator lives with the test

from edgeflow.config import validate  # noqa: E402
from edgeflow.core.errors import ConfigError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args()
    counts: collections.Counter[str] = collections.Counter()
    escapes: collections.Counter[str] = collections.Counter()
    first: dict[str, str] = {}

    @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        cfg = data.draw(fuzz.configs())
        changed = []
        for path in data.draw(st.lists(st.sampled_from(fuzz.leaves(cfg)), min_size=1, max_size=3, unique=True)):
            try:
                original = fuzz._get(cfg, path)
            except (KeyError, IndexError, TypeError):
                continue
            value = data.draw(fuzz.value_for(original))
            fuzz._set(cfg, path, value)
            changed.append(f"{'.'.join(map(str, path))}={value!r}"[:200])
        try:
            validate(cfg)
            counts["accepted"] += 1
        except ConfigError as err:
            counts["ConfigError"] += 1
            if "\n" in str(err):
                escapes["multi-line ConfigError"] += 1
                first.setdefault("multi-line ConfigError", "; ".join(changed))
        except Exception as err:  # noqa: BLE001 - an escape: what this run looks for
            frame = traceback.extract_tb(err.__traceback__)[-1]
            key = f"{type(err).__name__} at {frame.filename}:{frame.lineno}"
            escapes[key] += 1
            first.setdefault(key, f"{'; '.join(changed)} -> {str(err)[:200]}")

    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"{args.examples} examples in {seconds:.0f} s: {counts['accepted']} accepted, "
          f"{counts['ConfigError']} ConfigError, {sum(escapes.values())} escapes")
    for key, n in escapes.most_common():
        print(f"  {n} x {key}: {first[key]}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
