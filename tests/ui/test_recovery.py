"""Autosave and crash recovery: a killed app's unsaved work comes back intact; saves that
fail leave the file alone and say why."""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from nodenet.graph.project import Project, load
from nodenet.ui.autosave import FOLDER_ENV, SECONDS_ENV
from tests.ui import SAMPLE, isolated_settings

ROOT = Path(__file__).parents[2]
LEFT = Qt.MouseButton.LeftButton
CRASH_TIMEOUT = 120.0  # seconds for the subprocess to start, edit and autosave (busy CI)


@pytest.fixture
def recovery_dir() -> Path:
    return Path(os.environ[FOLDER_ENV])  # a fresh folder per test (tests/ui/conftest.py)


@pytest.fixture
def sample_copy(tmp_path) -> Path:
    path = tmp_path / "work" / "digits_mlp.json"
    path.parent.mkdir()
    shutil.copy(SAMPLE, path)
    return path


@pytest.fixture
def make_window(make_window, monkeypatch):
    """Windows that autosave every 0.2 s."""
    monkeypatch.setenv(SECONDS_ENV, "0.2")
    return make_window


def expected_after_edits(path: Path) -> dict:
    """What tests/ui/crash_app.py's edits make of the sample, applied to the JSON by hand."""
    doc = json.loads(path.read_text())
    nodes = {n["id"]: n for n in doc["nodes"]}
    nodes["hidden_1"]["params"]["units"] = 48
    nodes["hidden_2"]["pos"] = [600.5, -40]
    nodes["probs"]["id"] = "class_probs"
    for edge in doc["edges"]:
        for end in ("from", "to"):
            if edge[end] == "probs":
                edge[end] = "class_probs"
    doc["training"]["epochs"] = 7
    return Project.from_dict(doc).to_dict()


def recovery_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def run_and_kill(project: Path, settings_dir: Path, folder: Path) -> Path:
    """Start the app in a subprocess, wait for its autosave, SIGKILL it; the recovery file."""
    env = dict(os.environ, **{FOLDER_ENV: str(folder), SECONDS_ENV: "0.5"})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "tests.ui.crash_app", str(project), str(settings_dir)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the first autosave (or the app ends)
        assert line.startswith("autosaved "), f"the app ended first (code {proc.poll()})"
        file = Path(line.split(" ", 1)[1].strip())
        assert file.parent == folder and file.exists()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=CRASH_TIMEOUT)  # reaped: its pid no longer looks alive
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return file


@pytest.mark.slow
def test_after_a_kill_the_next_start_recovers_the_unsaved_work_exactly(
    qtbot, tmp_path, sample_copy, recovery_dir, make_window, no_prompts
):
    settings_dir = tmp_path / "settings"
    isolated_settings(settings_dir)
    before, expected = sample_copy.read_bytes(), expected_after_edits(sample_copy)
    left = run_and_kill(sample_copy, settings_dir, recovery_dir)
    assert sample_copy.read_bytes() == before, "the crash touched the project file"

    window = make_window()  # the same settings and recovery folder as the killed app
    bar = window.work_guard.offer.bar
    assert bar.isVisible()
    assert "digits_mlp (digits_mlp.json, autosaved at" in bar.label.text()
    assert str(sample_copy) in bar.label.toolTip()
    qtbot.mouseClick(bar.recover_button, LEFT)

    document = window.document
    assert document.project.to_dict() == expected
    assert document.is_dirty() and window.windowTitle().startswith("digits_mlp*")
    assert document.project.path == sample_copy
    assert not bar.isVisible()
    assert not left.exists(), "the killed app's recovery file was not taken over"
    assert recovery_files(recovery_dir) == [window.work_guard.autosave.file]

    window.actions["save"].trigger()  # Save writes back to the original file
    assert no_prompts == []
    assert load(sample_copy).to_dict() == expected
    assert not document.is_dirty()
    assert recovery_files(recovery_dir) == []


def write_orphan(folder: Path, name: str, project: dict, file: str | None, stamp: str) -> Path:
    """A recovery file as a crashed session leaves it (written by hand: no lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    doc = {"format": "nodenet-recovery", "version": 1, "file": file, "saved_at": stamp}
    path.write_text(json.dumps({**doc, "project": project}))
    return path


def test_several_orphans_are_offered_newest_first_and_discard_deletes(
    qtbot, recovery_dir, sample_copy, make_window
):
    doc = json.loads(sample_copy.read_text())
    old = write_orphan(recovery_dir, "a.json", {**doc, "name": "older"}, None, "2024-05-01T10:00")
    new = write_orphan(recovery_dir, "b.json", {**doc, "name": "newer"}, None, "2024-05-02T09:30")
    (recovery_dir / "broken.json").write_text("{not json")  # skipped, never offered
    window = make_window()
    bar = window.work_guard.offer.bar
    assert "newer" in bar.label.text() and "1 more" in bar.label.text()
    assert "never saved" in bar.label.text() and "2024-05-02 at 09:30" in bar.label.text()
    qtbot.mouseClick(bar.discard_button, LEFT)
    assert not new.exists() and old.exists()
    assert "older" in bar.label.text() and "more" not in bar.label.text()
    qtbot.mouseClick(bar.recover_button, LEFT)
    project = window.document.project
    assert project.name == "older" and project.path is None  # untitled: Save asks where
    assert window.document.is_dirty()
    assert not old.exists() and not bar.isVisible()


def test_a_running_window_s_file_is_not_offered_to_another(qtbot, make_window):
    first = make_window()
    with qtbot.waitSignal(first.work_guard.autosave.written, timeout=10_000):
        first.document.set_params("output", {"loss": "mean_squared_error"})
    second = make_window()
    assert not second.work_guard.offer.bar.isVisible()
    assert second.work_guard.offer.pending == []


def test_autosave_writes_while_dirty_and_removes_the_file_when_clean_again(
    qtbot, make_window, recovery_dir
):
    window = make_window()
    autosave = window.work_guard.autosave
    assert not autosave.file.exists()
    with qtbot.waitSignal(autosave.written, timeout=10_000):
        window.document.set_params("output", {"loss": "mean_squared_error"})
    saved = json.loads(autosave.file.read_text())
    assert saved["project"]["nodes"][1]["params"] == {"loss": "mean_squared_error"}
    assert saved["file"] is None
    window.actions["undo"].trigger()  # back to the state of the file: nothing to recover
    assert not autosave.file.exists() and recovery_files(recovery_dir) == []
    window.actions["redo"].trigger()
    with qtbot.waitSignal(autosave.written, timeout=10_000):
        pass
    assert autosave.file.exists()


@pytest.mark.parametrize("answer", ["Save", "Discard"])
def test_closing_after_save_or_discard_leaves_no_recovery_file(
    qtbot, make_window, sample_copy, recovery_dir, monkeypatch, answer
):
    window = make_window()
    window.open_file(sample_copy)
    autosave = window.work_guard.autosave
    with qtbot.waitSignal(autosave.written, timeout=10_000):
        window.document.set_params("hidden_1", {"units": 9, "activation": "relu"})
    button = getattr(QMessageBox.StandardButton, answer)
    monkeypatch.setattr(QMessageBox, "question", lambda *a: button)
    assert window.close()
    assert recovery_files(recovery_dir) == []
    units = load(sample_copy).node("hidden_1").params["units"]
    assert units == (9 if answer == "Save" else 128)


def failing_save(patch: pytest.MonkeyPatch, tmp_path: Path, how: str) -> None:
    """Make the next save fail like a read-only folder or a full disk."""
    if how == "read-only folder":
        folder = tmp_path / "work"
        folder.chmod(0o555)
        if os.geteuid() != 0:
            return  # the kernel refuses; root ignores permissions, so it is simulated

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        patch.setattr("tempfile.mkstemp", denied)
        return

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    patch.setattr(os, "fsync", full_disk)


@pytest.mark.parametrize(
    ("how", "reason"),
    [("read-only folder", "Permission denied"), ("full disk", "No space left on device")],
)
def test_a_failing_save_keeps_the_file_says_why_and_stays_dirty(
    qtbot, make_window, sample_copy, tmp_path, monkeypatch, no_prompts, how, reason
):
    window = make_window()
    window.open_file(sample_copy)
    before = sample_copy.read_bytes()
    autosave = window.work_guard.autosave
    with qtbot.waitSignal(autosave.written, timeout=10_000):
        window.document.set_params("hidden_1", {"units": 9, "activation": "relu"})
    try:
        with monkeypatch.context() as patch:
            failing_save(patch, tmp_path, how)
            window.actions["save"].trigger()
    finally:
        sample_copy.parent.chmod(0o755)
    assert len(no_prompts) == 1
    title, text = no_prompts[0]
    assert title == "Cannot save project"
    assert "digits_mlp.json could not be saved" in text and reason in text
    assert str(sample_copy) in text
    assert sample_copy.read_bytes() == before
    assert sorted(p.name for p in sample_copy.parent.iterdir()) == ["digits_mlp.json"]
    assert window.document.is_dirty() and window.windowTitle().startswith("digits_mlp*")
    assert autosave.file.exists(), "the unsaved work lost its recovery file"


def test_screenshot_of_the_recovery_bar(qtbot, recovery_dir, sample_copy, make_window, tmp_path):
    doc = copy.deepcopy(json.loads(sample_copy.read_text()))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_orphan(recovery_dir, "r.json", doc, str(sample_copy), stamp)
    window = make_window()
    window.resize(1280, 720)
    qtbot.wait(50)
    bar = window.work_guard.offer.bar
    assert bar.isVisible() and bar.width() > 1000
    assert window.grab().save(str(tmp_path / "recovery_bar.png"))
