"""Seeded mutation fuzzer of the int8 runtime (issue 10, Deliver 6; bounded: a few seconds).

The longer run is ``benchmarks/runtime_fuzz.py`` (5000 variants)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from runtime_helpers import zoo_qdq_export

_spec = importlib.util.spec_from_file_location(
    "runtime_fuzz", Path(__file__).resolve().parents[1] / "benchmarks" / "runtime_fuzz.py")
runtime_fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runtime_fuzz)


@pytest.mark.parametrize("name,seed", [("cnn", 0), ("tcn", 1)])
def test_fuzz_only_runtime_model_errors(tmp_path, name, seed):
    path = zoo_qdq_export(name, tmp_path)
    r = runtime_fuzz.fuzz(path, variants=200, seed=seed, workdir=tmp_path)
    assert r["accepted"] + r["rejected"] == 200
    assert r["escapes"] == [], r["escapes"][:5]  # nothing but RuntimeModelError out of load/run
    assert r["hangs"] == []
    assert r["slowest_s"] < runtime_fuzz.HANG_S
    assert r["mismatches"] == [], r["mismatches"][:5]  # accepted by both: bit-equal to onnxruntime
    assert r["rejected"] > 50 and r["both_accept"] > 10  # the mutations do reach both outcomes
    assert set(r["kinds"]) >= {"byteflip", "truncate", "initializer", "attribute"}
