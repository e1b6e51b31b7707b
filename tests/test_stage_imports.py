"""Stage modules stay independent and light: no stage imports another stage (``_``-prefixed helper
modules such as ``edgeflow.stages._common`` are shared on purpose), and the quantization spec and
every stage module load without torch (config validation imports them).

Imports are read statically with ``ast``, anywhere in a module (inside ``run`` too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

STAGES = ROOT / "edgeflow" / "stages"
PACKAGE = "edgeflow.stages"


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` / ``from`` anywhere in ``path`` names (``from pkg import x`` gives
    ``pkg`` and ``pkg.x``: ``x`` may be a submodule); relative imports resolved within ``edgeflow.stages``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = PACKAGE.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def stage_imports(path: Path) -> set[str]:
    """The stage modules (``edgeflow.stages.<kind>``, kind without a leading ``_``) that ``path`` imports."""
    own = f"{PACKAGE}.{path.stem}"
    return {m for m in imported_modules(path)
            if m.startswith(PACKAGE + ".") and m != own
            and not m[len(PACKAGE) + 1:].split(".")[0].startswith("_")}


def test_no_stage_imports_another_stage() -> None:
    modules = sorted(STAGES.glob("*.py"))
    assert len(modules) >= 10  # __init__, _common, _schema and the stage kinds were all read
    offenders = {p.name: sorted(stage_imports(p)) for p in modules if stage_imports(p)}
    assert offenders == {}


def test_the_check_sees_stage_imports(tmp_path: Path) -> None:
    """Every import form that reaches another stage is caught; helper modules are not."""
    probe = tmp_path / "probe.py"
    probe.write_text("import edgeflow.stages.train\nfrom edgeflow.stages import ptq, _common\n"
                     "def run():\n    from .qat import Config\n    from edgeflow.stages._schema import StageConfig\n")
    assert stage_imports(probe) == {"edgeflow.stages.train", "edgeflow.stages.ptq", "edgeflow.stages.qat",
                                    "edgeflow.stages.qat.Config"}


def loads_torch(code: str) -> bool:
    """Whether running ``code`` in a fresh interpreter puts torch in ``sys.modules``."""
    probe = f"{code}\nimport sys\nprint('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip() == "True"


def test_quant_spec_and_stage_modules_load_no_torch() -> None:
    assert not loads_torch("import edgeflow.methods.quantization.spec")
    stages = ", ".join(f"{PACKAGE}.{p.stem}" for p in sorted(STAGES.glob("*.py")) if p.stem != "__init__")
    assert not loads_torch(f"import {stages}")
    assert loads_torch("import edgeflow.methods.quantization.convert")  # the probe does see torch
