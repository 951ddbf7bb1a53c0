"""Nothing a file holds is ever executed: the package source is scanned with ``ast``,
and pickled (object) arrays in data and weights files are refused with a message.

The exporters write Python source as text; nothing in the package runs it.
"""

from __future__ import annotations

import ast
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.data import load_source
from nodenet.errors import DataError, WeightsError
from nodenet.graph.project import load
from nodenet.runner import build_model, load_arrays

PACKAGE = Path(__file__).parent.parent / "nodenet"
DIGITS = Path(__file__).parent.parent / "sample_projects" / "digits_mlp.json"
BANNED_MODULES = ("pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle")
BANNED_CALLS = ("eval", "exec", "compile", "__import__", "execfile", "breakpoint")
# importlib.import_module with a computed name: each use imports a module named in the code
# itself (never data), listed here with the reason
IMPORT_MODULE_ALLOWED = {
    ("engine/layers/__init__.py", "<module>"): "the package's own layer modules, by file name",
    ("engine/data/real.py", "_require"): "optional dataset packages named in real.py itself",
    ("export/onnx/export.py", "load_mappings"): "the package's own ops_* modules, by file name",
}
# running code nodenet generated itself from a validated project (project text only as quoted
# literals: tests/export/test_code_safety.py), never code read from a file
GENERATED_CODE_ALLOWED = {
    ("torch_backend/child.py", "__init__"): "the PyTorch module of child_source(project)",
    ("export/keras_model_file.py", "_module_of"): "the Keras module export_keras wrote",
}


def _dotted(node: ast.AST) -> str:
    """``np.lib.format.read_array`` for the call's function, or "" if not a plain name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<computed>"
    return "<missing>"


class Scanner(ast.NodeVisitor):
    """Collects every construct that could run code or unpickle data read from a file."""

    def __init__(self, path: str):
        self.path, self.found, self.function = path, [], "<module>"

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append(f"{self.path}:{node.lineno}: {what}")

    def visit_FunctionDef(self, node):
        outer, self.function = self.function, node.name
        self.generic_visit(node)
        self.function = outer

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.split(".")[0] in BANNED_MODULES:
                self.flag(node, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if (node.module or "").split(".")[0] in BANNED_MODULES:
            self.flag(node, f"imports from {node.module}")
        self.generic_visit(node)

    def visit_Call(self, node):
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        generated = (self.path, self.function) in GENERATED_CODE_ALLOWED
        if name in BANNED_CALLS or name in {f"builtins.{c}" for c in BANNED_CALLS}:
            if not (generated and name in ("exec", "compile")):
                self.flag(node, f"calls {name}()")
        elif last == "exec_module" and not generated:
            self.flag(node, "runs a module's code (exec_module)")
        elif name in ("np.load", "numpy.load", "np.lib.format.read_array", "format.read_array"):
            if _keyword(node, "allow_pickle") is not False:
                self.flag(node, f"calls {name}() without allow_pickle=False")
        elif name in ("yaml.load", "yaml.unsafe_load", "torch.load", "os.system", "os.popen"):
            self.flag(node, f"calls {name}()")
        elif last == "import_module":
            key = (self.path, self.function)
            literal = node.args and isinstance(node.args[0], ast.Constant)
            if not literal and key not in IMPORT_MODULE_ALLOWED:
                self.flag(node, "imports a module by a computed name")
        elif isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) > 1:
            target = _dotted(node.args[0])
            if target in ("builtins", "__builtins__") or not isinstance(
                node.args[1], ast.Constant | ast.Name | ast.Attribute | ast.JoinedStr
            ):
                self.flag(node, f"getattr on {target or 'an expression'} by a computed name")
        self.generic_visit(node)


def scan(path: Path) -> list[str]:
    scanner = Scanner(path.relative_to(PACKAGE).as_posix())
    scanner.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return scanner.found


def test_the_package_never_executes_or_unpickles_anything():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50
    found = [hit for path in files for hit in scan(path)]
    assert not found, "code execution or unpickling in the package:\n" + "\n".join(found)


def test_the_scanner_finds_each_banned_construct():
    """The scan is not vacuous: every rule fires on source that breaks it."""
    source = "\n".join(
        [
            "import pickle",
            "from marshal import loads",
            "import numpy as np, yaml",
            "eval('1')",
            "exec(text)",
            "compile(text, 'f', 'exec')",
            "__import__(name)",
            "np.load(path)",
            "np.load(path, allow_pickle=True)",
            "yaml.load(text)",
            "importlib.import_module(user_text)",
        ]
    )
    tree = ast.parse(source)
    scanner = Scanner("_scan_probe.py")
    scanner.visit(tree)
    lines = sorted(int(hit.split(":")[1]) for hit in scanner.found)
    assert lines == [1, 2, *range(4, 12)], scanner.found  # all but line 3 (numpy, yaml imports)


def test_generated_exports_are_text_never_run_by_the_package():
    """The exporters build source strings: they parse as Python, and the scan above
    shows no exec/eval/compile anywhere in nodenet."""
    from nodenet.export import export_keras, export_pytorch

    project = load(DIGITS)
    for exporter in (export_keras, export_pytorch):
        code = exporter(project, None)
        assert isinstance(code.source, str)
        ast.parse(code.source)


# -- pickled arrays in files ---------------------------------------------------------------


def _pickled_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)  # object arrays are pickled by np.savez
    with zipfile.ZipFile(path) as archive:
        assert any(b"\x80" in archive.read(n)[:200] for n in archive.namelist())
    return path


def test_a_data_file_with_an_object_array_is_refused_without_unpickling(tmp_path):
    _pickled_npz(
        tmp_path / "d.npz", x=np.zeros((3, 2), np.float32), y=np.array([{}, [], "a"], object)
    )
    with pytest.raises(DataError, match=r"d\.npz: array 'y' holds Python objects; nodenet never"):
        load_source({"kind": "npz", "path": "d.npz"}, tmp_path)
    with pytest.raises(DataError, match="holds Python objects"):
        load_arrays(tmp_path / "d.npz")


def test_a_weights_file_with_an_object_array_is_refused_without_unpickling(tmp_path):
    model = build_model(load(DIGITS), seed=0)
    weights = model.get_weights()
    key = next(iter(weights))
    weights[key] = np.array([1.0, None], dtype=object)
    _pickled_npz(tmp_path / "w.npz", **weights)
    before = model.get_weights()
    with pytest.raises(WeightsError, match=rf"w\.npz: array '{key}' holds Python objects"):
        model.load_weights(tmp_path / "w.npz")
    for name, array in model.get_weights().items():
        np.testing.assert_array_equal(array, before[name])


def test_a_pickle_file_named_npz_is_refused(tmp_path):
    (tmp_path / "p.npz").write_bytes(b"\x80\x04\x95" + bytes(20))  # a pickle's first bytes
    with pytest.raises(DataError, match="may hold pickled data, which nodenet never loads"):
        load_source({"kind": "npz", "path": "p.npz"}, tmp_path)
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3))
    (tmp_path / "single.npz").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match=r"holds a single \.npy array"):
        load_source({"kind": "npz", "path": "single.npz"}, tmp_path)
