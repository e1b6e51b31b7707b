"""Import hygiene: config validation loads no heavy library, and no edgeflow module imports one that
imports it back (at module import time).

The import graph is read statically with ``ast``: a module's edges are the edgeflow modules its
module-level ``import``/``from`` statements execute when it is imported (also inside module-level
``if``/``try``/``with``/``for`` and class bodies; not inside functions, nor under ``if TYPE_CHECKING:``).
Importing ``a.b.c`` runs ``a/__init__``, ``a/b/__init__`` and ``a/b/c``, so each is an edge, except
the importer's own enclosing packages (Python has initialised those before the importer runs).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

HEAVY = ("torch", "pytorch_lightning", "lightning", "mlflow", "optuna", "onnx", "onnxruntime")


# ------------------------------------------------------------------------------ heavy libraries
def loaded_heavy(code: str) -> list[str]:
    """The heavy libraries in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [m for m in proc.stdout.strip().split(",") if m]


@pytest.mark.parametrize("code", [
    "import edgeflow.config",
    "import edgeflow, edgeflow.config; edgeflow.config.validate(edgeflow.compose(['recipe=quickstart']))",
    "import edgeflow.config; edgeflow.config.register_schemas()",
    "import edgeflow.models.schemas, edgeflow.data.schemas, edgeflow.hardware.schema, "
    "edgeflow.training.schema, edgeflow.tracking.schema, edgeflow.stages._schema",
], ids=["import", "validate", "register_schemas", "schemas"])
def test_config_imports_no_heavy_library(code: str) -> None:
    assert loaded_heavy(code) == []


def test_lazy_package_exports_resolve() -> None:
    """The lazy package ``__init__``s still give their public names (the real objects)."""
    from edgeflow.data import DatasetError
    from edgeflow.data.sources import DatasetError as SourcesDatasetError
    from edgeflow.models import ZOO, build_model
    from edgeflow.tracking import open_run
    from edgeflow.tracking.mlflow_run import open_run as mlflow_open_run
    from edgeflow.training import evaluate, fit

    assert DatasetError is SourcesDatasetError
    assert open_run is mlflow_open_run
    assert callable(fit) and fit.__name__ == "fit" and evaluate.__name__ == "evaluate"
    assert type(build_model("mlp", (4,), 3)) is ZOO["mlp"]


# ---------------------------------------------------------------------------------- import graph
def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``package`` (whose folder is ``root``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_time_statements(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module with this ``body`` is imported."""
    found: list[ast.Import | ast.ImportFrom] = []
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            found.append(stmt)
        elif isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                found += import_time_statements(stmt.body)
            found += import_time_statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                found += import_time_statements(block)
        elif isinstance(stmt, (ast.With, ast.For, ast.While, ast.ClassDef)):
            found += import_time_statements(stmt.body)
            found += import_time_statements(getattr(stmt, "orelse", []))
    return found


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The internal modules whose code runs when module ``name`` (file ``path``) is imported."""
    is_package = path.name == "__init__.py"
    targets: list[str] = []
    for stmt in import_time_statements(ast.parse(path.read_text(), str(path)).body):
        if isinstance(stmt, ast.Import):
            targets += [alias.name for alias in stmt.names]
            continue
        base = stmt.module or ""
        if stmt.level:
            anchor = name.split(".") if is_package else name.split(".")[:-1]
            anchor = anchor[: len(anchor) - (stmt.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        targets.append(base)
        targets += [f"{base}.{alias.name}" for alias in stmt.names]  # submodules imported by name
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + (2 if is_package else 1))}
    edges = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in modules and prefix not in ancestors and prefix != name:
                edges.add(prefix)
    return edges


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the internal modules it runs at import time, for every module of ``package``."""
    modules = module_names(root, package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle ``[m0, m1, ..., m0]`` of ``graph`` if it has one, else None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def write_package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_graph_follows_import_time_rules(tmp_path: Path) -> None:
    """Relative imports, package inits and submodules count; function bodies and TYPE_CHECKING don't."""
    pkg = write_package(tmp_path / "p", {
        "__init__.py": "from p.sub import leaf\n",
        "sub/__init__.py": "",
        "sub/leaf.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import p.top\n"
                       "def f():\n    import p.top\n",
        "sub/mid.py": "from . import leaf\nfrom ..top import X\ntry:\n    import p.other\nexcept ImportError:\n    pass\n",
        "top.py": "X = 1\n",
        "other.py": "class C:\n    from p.sub.leaf import f\n",
    })
    assert import_graph(pkg, "p") == {
        "p": {"p.sub", "p.sub.leaf"},
        "p.sub": set(),
        "p.sub.leaf": set(),
        "p.sub.mid": {"p.sub.leaf", "p.top", "p.other"},
        "p.top": set(),
        "p.other": {"p.sub", "p.sub.leaf"},
    }


def test_find_cycle_reports_the_path(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "q", {
        "__init__.py": "",
        "config.py": "from q.data.schemas import S\n",
        "data/__init__.py": "",
        "data/schemas.py": "from q.config import ConfigError\n",
        "leaf.py": "",
    })
    assert find_cycle(import_graph(pkg, "q")) == ["q.config", "q.data.schemas", "q.config"]
    (pkg / "data" / "schemas.py").write_text("from q.leaf import ConfigError\n")
    assert find_cycle(import_graph(pkg, "q")) is None


def test_edgeflow_has_no_import_cycle() -> None:
    graph = import_graph(ROOT / "edgeflow", "edgeflow")
    assert "edgeflow.data.schemas" in graph["edgeflow.config"]  # the graph sees config's imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_schemas_import_only_leaves() -> None:
    """Each group's schema imports no edgeflow module but ``edgeflow.core`` and other schemas."""
    graph = import_graph(ROOT / "edgeflow", "edgeflow")
    schemas = ["edgeflow.models.schemas", "edgeflow.data.schemas", "edgeflow.hardware.schema",
               "edgeflow.training.schema", "edgeflow.tracking.schema", "edgeflow.stages._schema"]
    allowed = {"edgeflow.stages", *schemas, *(m for m in graph if m == "edgeflow.core" or m.startswith("edgeflow.core."))}
    assert {s: sorted(graph[s] - allowed) for s in schemas} == {s: [] for s in schemas}
