"""Architecture boundaries (docs/architecture.md): who may import whom.

- ``nodenet.engine`` imports nothing from ``nodenet.graph``, ``nodenet.ui`` or
  ``nodenet.export``, and no Qt: it builds from a Blueprint, never the document.
- ``nodenet.graph`` imports no Qt and, of the engine, only the block catalog.
- ``nodenet.ui`` uses the public APIs only.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "nodenet"
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "nodenet.ui")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def headless_files() -> list[Path]:
    files = list((PACKAGE / "engine").rglob("*.py")) + list((PACKAGE / "graph").rglob("*.py"))
    names = ("errors.py", "atomic.py", "safeio.py", "runner.py", "backend.py", "reports.py")
    names += ("reports_metrics.py", "explain.py")
    files += [PACKAGE / name for name in names]
    return files


def offenders(paths, forbidden) -> list[str]:
    return [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in paths
        for module in sorted(imported_modules(path))
        if module.startswith(forbidden)
    ]


def test_the_engine_never_imports_the_document_the_ui_or_the_exporters():
    found = offenders(
        (PACKAGE / "engine").rglob("*.py"), ("nodenet.graph", "nodenet.ui", "nodenet.export")
    )
    assert not found, "the engine builds from a Blueprint, never the document:\n" + "\n".join(found)


# what the document may read of the engine: the block catalog, not models, training or data
CATALOG = (
    "nodenet.engine.catalog",
    "nodenet.engine.blueprint",
    "nodenet.engine.layer",
    "nodenet.engine.params",
    "nodenet.engine.settings",
)


def test_the_document_reads_only_the_engines_catalog():
    found = [
        line
        for line in offenders((PACKAGE / "graph").rglob("*.py"), ("nodenet.engine", "numpy"))
        if not line.endswith(CATALOG)
    ]
    found += offenders((PACKAGE / "graph").rglob("*.py"), ("nodenet.ui", "nodenet.export"))
    assert not found, "\n".join(found)


def test_engine_and_document_sources_never_import_qt():
    offenders = []
    for path in headless_files():
        for module in imported_modules(path):
            if module.startswith(QT_MODULES):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not offenders, "\n".join(offenders)


PUBLIC_FOR_UI = {
    "nodenet",
    "nodenet.atomic",
    "nodenet.backend",
    "nodenet.graph",
    "nodenet.graph.bands",
    "nodenet.graph.group_ops",
    "nodenet.graph.group_scope",
    "nodenet.graph.groups",
    "nodenet.graph.layout",
    "nodenet.graph.project",
    "nodenet.graph.summary",
    "nodenet.graph.topology",
    "nodenet.graph.validation",
    "nodenet.explain",
    "nodenet.reports",
    "nodenet.reports_metrics",
    "nodenet.runner",
    "nodenet.runs_db",
    "nodenet.runs_query",
    "nodenet.runs_recorder",
    "nodenet.samples",
    "nodenet.sweep",
    "nodenet.sweep_report",
    "nodenet.sweep_space",
    "nodenet.torch_backend",
    "nodenet.errors",
    "nodenet.engine",
    "nodenet.engine.initializers",
    "nodenet.engine.params",
    "nodenet.export",
}


def test_ui_imports_only_public_apis():
    offenders = []
    for path in (PACKAGE / "ui").rglob("*.py"):
        for module in imported_modules(path):
            if not module.startswith("nodenet") or module.startswith("nodenet.ui"):
                continue
            if module not in PUBLIC_FOR_UI:
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not offenders, "the UI must use public APIs only:\n" + "\n".join(offenders)


def test_importing_the_engine_loads_no_qt_at_run_time():
    code = (
        "import sys, nodenet.engine.catalog, nodenet.graph.project, nodenet.graph.summary\n"
        "import nodenet.graph.layout, nodenet.runner\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'nodenet.ui'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_loads_neither_scikit_learn_nor_scipy_until_a_block_needs_them():
    # scikit-learn and scipy cost ~120 MiB of memory and over a second at import: a
    # training process pays them only for the synthetic datasets, GELU or Embedding
    code = (
        f"import sys, numpy as np; sys.path.insert(0, {str(PACKAGE.parent)!r})\n"
        "from benchmarks.engine_bench_models import MODELS\n"
        "from nodenet.runner import build_model\n"
        "from nodenet.engine.training import fit\n"
        "model = build_model(MODELS['mlp'](), seed=0)\n"
        "x = {'x': np.ones((8, 784), 'float32')}\n"
        "y = {'y': np.eye(10, dtype='float32')[np.arange(8)]}\n"
        "fit(model, x, y, epochs=1, batch_size=4)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))\n"
    )
    env = {**os.environ, "NODENET_KERNELS": "numpy"}  # numba's own loading imports scipy
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]"


def test_ci_runs_the_readme_test_command():
    root = PACKAGE.parent
    readme = (root / "README.md").read_text()
    ci = (root / ".ci" / "run").read_text()
    marker = "<!-- test-command -->"
    assert marker in readme, "README must mark its test command"
    block = readme.split(marker, 1)[1].split("```", 2)[1]
    command = block.strip().splitlines()[-1].split("&&")[-1].strip()
    assert command in ci.splitlines(), f"{command!r} is not run by .ci/run"
