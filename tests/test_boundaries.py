"""Architecture boundaries: the engine and the document never touch Qt."""

from __future__ import annotations

import ast
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
    files = list((PACKAGE / "engine").rglob("*.py"))
    files += [PACKAGE / name for name in ("project.py", "validation.py", "summary.py", "errors.py")]
    return files


def test_engine_and_document_sources_never_import_qt():
    offenders = []
    for path in headless_files():
        for module in imported_modules(path):
            if module.startswith(QT_MODULES):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not offenders, "\n".join(offenders)


PUBLIC_FOR_UI = {
    "nodenet",
    "nodenet.project",
    "nodenet.summary",
    "nodenet.samples",
    "nodenet.errors",
    "nodenet.engine",
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
        "import sys, nodenet.engine.catalog, nodenet.project, nodenet.summary\n"
        "bad = [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph', 'nodenet.ui'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
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
