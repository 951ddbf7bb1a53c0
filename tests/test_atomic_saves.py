"""Every file nodenet writes outside the GUI (project, weights, history, exports,
predictions) is written atomically: a failing write leaves the previous file
intact and no temporary file behind, and the error is a nodenet error naming
the file (on the command line: exit 1 and one line)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from nodenet import atomic
from nodenet.atomic import atomic_write, write_file
from nodenet.cli import main
from nodenet.errors import NodenetError, ProjectFileError, SaveError, WeightsError
from nodenet.export import export_keras
from nodenet.graph.project import load, save
from nodenet.runner import build_model

SAMPLES = Path(__file__).parent.parent / "sample_projects"
DIGITS = SAMPLES / "digits_mlp.json"


def no_space_on_write(monkeypatch):
    """Every write to a temporary file fails as on a full disk."""
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))


def replace_fails(monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, "replace", fail)


def no_permission(monkeypatch):
    """The folder refuses new files, as a read-only folder does for a user (not for root)."""

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)


FAULTS = {
    "full disk": no_space_on_write,
    "failed rename": replace_fails,
    "no permission": no_permission,
}
REASONS = {
    "full disk": "No space left on device",
    "failed rename": "Input/output error",
    "no permission": "Permission denied",
}


def only(folder: Path, *names: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names), "temporary file left"


@pytest.mark.parametrize("fault", FAULTS)
def test_atomic_write_keeps_the_previous_file(tmp_path, monkeypatch, fault):
    path = tmp_path / "f.bin"
    path.write_bytes(b"previous")
    FAULTS[fault](monkeypatch)
    with pytest.raises(OSError):
        atomic_write(path, b"new content")
    with pytest.raises(SaveError, match=rf"f\.bin: cannot be saved: {REASONS[fault]} \(any prev"):
        write_file(path, b"new content")
    assert path.read_bytes() == b"previous"
    only(tmp_path, "f.bin")


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_project_save_keeps_the_previous_file(tmp_path, monkeypatch, fault):
    path = save(load(DIGITS), tmp_path / "p.json")
    before = path.read_bytes()
    changed = load(path)
    changed.name = "changed"
    FAULTS[fault](monkeypatch)
    with pytest.raises(ProjectFileError, match=rf"p\.json: cannot be saved: {REASONS[fault]}"):
        save(changed, path)
    assert path.read_bytes() == before
    only(tmp_path, "p.json")


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_weights_save_keeps_the_previous_file(tmp_path, monkeypatch, fault):
    model = build_model(load(DIGITS), seed=0)
    path = model.save_weights(tmp_path / "m.weights.npz")
    before = path.read_bytes()
    model.initialize(seed=1)
    FAULTS[fault](monkeypatch)
    with pytest.raises(WeightsError, match=rf"m\.weights\.npz: cannot be saved: {REASONS[fault]}"):
        model.save_weights(path)
    assert path.read_bytes() == before
    only(tmp_path, "m.weights.npz")


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_export_keeps_the_previous_files(tmp_path, monkeypatch, fault):
    model = build_model(load(DIGITS), seed=0)
    code = export_keras(load(DIGITS), model.get_weights())
    written = code.write(tmp_path / "m.py")
    before = {p: p.read_bytes() for p in written}
    changed = export_keras(load(DIGITS), build_model(load(DIGITS), seed=1).get_weights())
    FAULTS[fault](monkeypatch)
    with pytest.raises(SaveError, match=rf"m\.py: cannot be saved: {REASONS[fault]}"):
        changed.write(tmp_path / "m.py")
    assert {p: p.read_bytes() for p in written} == before
    only(tmp_path, *(p.name for p in written))


def test_saved_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = write_file(tmp_path / "x.json", "{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_message(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "p.json").write_text("previous")
    folder.chmod(0o555)
    try:
        with pytest.raises(ProjectFileError, match="cannot be saved: Permission denied"):
            save(load(DIGITS), folder / "p.json")
        assert (folder / "p.json").read_text() == "previous"
    finally:
        folder.chmod(0o755)


def test_a_missing_folder_is_a_message(tmp_path):
    with pytest.raises(ProjectFileError, match="cannot be saved: No such file or directory"):
        save(load(DIGITS), tmp_path / "nowhere" / "p.json")


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path, capsys):
    """A copy of the digits sample with its weights and history from a 0-epoch run."""
    project = tmp_path / "digits_mlp.json"
    shutil.copy(DIGITS, project)
    assert main(["train", str(project), "--epochs", "0", "--quiet"]) == 0
    capsys.readouterr()
    return project


def one_line_error(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nodenet: "), err
    assert "Traceback" not in err and "internal error" not in err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("fault", FAULTS)
def test_train_with_a_failing_disk_keeps_weights_and_history(trained, capsys, monkeypatch, fault):
    weights = trained.with_name("digits_mlp.weights.npz")
    history = trained.with_name("digits_mlp.history.json")
    before = {p: p.read_bytes() for p in (weights, history)}
    FAULTS[fault](monkeypatch)
    assert main(["train", str(trained), "--epochs", "0", "--quiet"]) == 1
    one_line_error(capsys, "digits_mlp.weights.npz: cannot be saved", REASONS[fault])
    assert {p: p.read_bytes() for p in (weights, history)} == before
    runs = ("digits_mlp.runs.sqlite", "digits_mlp.runs")  # the recorded runs (docs/runs.md)
    only(trained.parent, trained.name, weights.name, history.name, *runs)


def test_history_write_failure_is_one_line(trained, capsys, monkeypatch):
    history = trained.with_name("digits_mlp.history.json")
    before = history.read_bytes()
    real = atomic.atomic_write

    def fail_on_history(path, data):
        if str(path).endswith(".history.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(atomic, "atomic_write", fail_on_history)
    assert main(["train", str(trained), "--epochs", "0", "--quiet"]) == 1
    one_line_error(capsys, "digits_mlp.history.json: cannot be saved: No space left on device")
    assert history.read_bytes() == before
    assert json.loads(before)["weights"].endswith("digits_mlp.weights.npz")


@pytest.mark.parametrize("fault", FAULTS)
def test_export_and_predict_with_a_failing_disk(trained, capsys, monkeypatch, fault):
    weights = str(trained.with_name("digits_mlp.weights.npz"))
    out = trained.with_name("model.py")
    inputs, preds = trained.with_name("x.npz"), trained.with_name("y.npz")
    np.savez(inputs, pixels=np.zeros((2, 64), np.float32))
    export = ["export", str(trained), "--to", "pytorch", "--weights", weights, "-o", str(out)]
    predict = ["predict", str(trained), "--weights", weights, "--input", str(inputs)]
    predict += ["--output", str(preds)]
    assert main(export) == 0 and main(predict) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in (out, preds)}
    FAULTS[fault](monkeypatch)
    assert main(export) == 1
    one_line_error(capsys, "model.py: cannot be saved", REASONS[fault])
    assert main(predict) == 1
    one_line_error(capsys, "y.npz: cannot be saved", REASONS[fault])
    assert {p: p.read_bytes() for p in (out, preds)} == before


def test_every_nodenet_write_goes_through_atomic_write():
    """No module outside the GUI opens a file for writing or saves with numpy directly."""
    import ast

    package = Path(__file__).parent.parent / "nodenet"
    found = []
    for path in sorted(package.rglob("*.py")):
        if "ui" in path.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0] if node.args else None
            to_buffer = isinstance(first, ast.Name) and first.id == "buffer"
            if name in ("write_text", "write_bytes", "savez", "savez_compressed", "save") and (
                not to_buffer and name != "save"
            ):
                found.append(f"{path.name}:{node.lineno}: {name}")
            if name == "open" and any(
                isinstance(a, ast.Constant)
                and isinstance(a.value, str)
                and set(a.value) & set("wax")
                for a in node.args[1:2]
            ):
                found.append(f"{path.name}:{node.lineno}: open for writing")
    assert not found, "\n".join(found)


def test_nodenet_errors_are_what_the_cli_catches():
    assert issubclass(SaveError, NodenetError) and issubclass(WeightsError, NodenetError)


def test_a_project_save_removes_what_a_killed_save_left_behind(tmp_path):
    target = tmp_path / "model.json"
    stale = tmp_path / ".model.json.k1ll3d.tmp"  # a save killed before its rename
    stale.write_text("{")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    running = tmp_path / ".model.json.busy.tmp"  # a save that may still be writing
    running.write_text("{")
    atomic.atomic_write(target, "{}")
    assert target.read_text() == "{}"
    assert not stale.exists() and running.exists()
