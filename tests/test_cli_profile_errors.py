"""``edgeflow-profile``'s exit status through the installed console script: one line on stderr, 2 for
a bad argument (checked before the model loads), 1 for a model that cannot be read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import BIN

PROFILE = str(BIN / "edgeflow-profile")
BAD = "edgeflow-profile: bad argument: "
HELP = " (see edgeflow-profile --help)"

# (arguments after the model file, the exit status, the one line (all of it, or its start when it ends in ...))
CASES = [
    (["hardware=cortex-m4"], 2, BAD + "hardware=cortex-m4: unknown hardware (did you mean 'cortex_m4'?); known: "
                                      "cortex_m4, cortex_m7, gap9, generic_45nm, rpi4" + HELP),
    (["dataset=digitz"], 2, BAD + "dataset=digitz: unknown dataset (did you mean 'digits'?); known: ..."),
    (["hardware=board.yaml"], 2, BAD + "hardware=board.yaml: no such file" + HELP),
    (["colour=red"], 2, BAD + "'colour=red': expected hardware=NAME or dataset=NAME" + HELP),
    (["--rounding", "banker"], 2, BAD + "argument --rounding: invalid choice: 'banker' (choose from 'onnx', 'tflm')" + HELP),
    (["--max-samples", "-1"], 2, BAD + "--max-samples: must be >= 0 (0 = all), got -1" + HELP),
    (["--batch-size", "0"], 2, BAD + "--batch-size: must be >= 1, got 0" + HELP),
    (["--batch-size", "x"], 2, BAD + "argument --batch-size: invalid int value: 'x'" + HELP),
    (["--no-such-flag"], 2, BAD + "unrecognized arguments: --no-such-flag" + HELP),
    ([], 1, "edgeflow-profile: model.onnx: not a readable ONNX model ..."),
]


def profile(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROFILE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "status", "line"), CASES, ids=[" ".join(c[0]) or "garbage model" for c in CASES])
def test_error_is_one_line_with_its_status(tmp_path: Path, args: list[str], status: int, line: str) -> None:
    (tmp_path / "model.onnx").write_text("not a model")
    r = profile(tmp_path, "model.onnx", *args)
    assert r.returncode == status, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith(line.removesuffix("...")) if line.endswith("...") else lines[0] == line


@pytest.mark.parametrize(("args", "line"), [
    ([], BAD + "the following arguments are required: model" + HELP),
    (["missing.onnx"], BAD + "missing.onnx: no such file" + HELP),
])
def test_missing_model_is_a_bad_argument(tmp_path: Path, args: list[str], line: str) -> None:
    r = profile(tmp_path, *args)
    assert (r.returncode, r.stderr) == (2, line + "\n")
