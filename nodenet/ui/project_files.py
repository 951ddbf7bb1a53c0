"""File → New, Open, Open Recent, Open Sample, Save, Save As, Import and Export: the main
window's files, as a mixin of :class:`nodenet.ui.main_window.MainWindow`.

Nothing is lost without asking: replacing or closing a project with unsaved edits or
unsaved trained weights asks Save / Discard / Cancel. A file that cannot be read is
reported and the open project stays; a sample whose dataset is not installed opens on
its stand-in with a notice saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtWidgets import QFileDialog, QMessageBox

from nodenet.errors import NodenetError, ProjectFileError, WeightsError, shorten
from nodenet.export import NO_H5PY, import_keras_archive
from nodenet.graph.project import Project, load
from nodenet.samples import with_fallback
from nodenet.ui import autosave
from nodenet.ui.document import Document, new_project
from nodenet.ui.export_dialog import ExportDialog
from nodenet.ui.model_files import export_model_file, read_onnx
from nodenet.ui.sample_gallery import open_sample_copy

if TYPE_CHECKING:
    pass

FILE_FILTER = "nodenet projects (*.json);;All files (*)"
KERAS_FILTER = (
    "Models (*.keras *.json *.onnx);;Keras models (*.json *.keras);;ONNX models (*.onnx);;"
    "All files (*)"
)
MESSAGE_CHARS = 2000  # a message box shows at most this much of an error


class ProjectFiles:
    """The window's file commands (mixed into :class:`MainWindow`, whose document,
    recent files, Run panel and notice bar they use)."""

    def new_project(self, ask: bool = True) -> bool:
        """An empty canvas with one Input and one Output."""
        if ask and not self.maybe_save():
            return False
        self.document.replace_project(new_project())
        self.show_message("New project")
        return True

    def open_dialog(self) -> bool:
        folder = str(self.document.project.path.parent) if self.document.project.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open project", folder, FILE_FILTER)
        return self.open_file(path) if path else False

    def open_file(self, path: str | Path, ask: bool = True) -> bool:
        """Open a project file; if it cannot be read, say why and keep the current project.

        A sample whose dataset is not installed runs on its stand-in, and a notice
        says so with the command that installs the real one.
        """
        loaded = self._load(path, lambda p: with_fallback(load(p)))
        if loaded is None or (ask and not self.maybe_save()):
            return False
        project, note, analysis = loaded
        self.document.replace_project(project, analysis)
        self.recent.add(path)
        self._report_opened(project, note)
        return True

    def open_sample(self, path: str | Path, ask: bool = True) -> bool:
        """Open a bundled sample as a new, unsaved project (Save asks where to put it)."""
        loaded = self._load(path, open_sample_copy)
        if loaded is None or (ask and not self.maybe_save()):
            return False
        project, note, analysis = loaded
        project.path = None
        self.document.replace_project(project, analysis)
        self._report_opened(project, note)
        return True

    def _load(self, path: str | Path, read):
        """``(project, note, analysis)`` read by ``read(path)`` and analysed, or None after
        saying why it cannot be opened (the open project stays as it is)."""
        try:
            project, note = read(path)
            return project, note, Document.checked_analysis(project)
        except NodenetError as err:  # ProjectFileError, ValidationError, ...
            reason = str(err)
        except (ValueError, RecursionError, OverflowError, MemoryError, OSError) as err:
            reason = f"{type(err).__name__}: {err}"  # a bound the reader missed: still no crash
        if not Path(path).exists():
            self.recent.remove(path)
        problems = shorten(reason.split(": ", 1)[-1].replace("; ", "\n"), MESSAGE_CHARS)
        QMessageBox.critical(
            self, "Cannot open project", f"{Path(path).name} cannot be opened:\n\n{problems}"
        )
        return None

    def _report_opened(self, project: Project, note: str | None = None) -> None:
        if note:
            self.notice.show_notice(note)
        count = len(self.document.analysis.problems)
        suffix = f" — {count} problem(s), see Problems" if count else ""
        self.show_message(f"Opened {project.name}{suffix}")
        if count:
            self.docks["problems"].raise_()

    def save(self) -> bool:
        """Save to the project's file (Save As when it has none). Returns False if not saved."""
        if self.document.project.path is None:
            return self.save_as()
        return self._save_to(self.document.project.path)

    def save_as(self, path: str | Path | None = None) -> bool:
        if path is None:
            project = self.document.project
            folder = project.path.parent if project.path else Path.home()
            suggested = str(folder / f"{project.name}.json")
            path, _ = QFileDialog.getSaveFileName(self, "Save project as", suggested, FILE_FILTER)
            if not path:
                return False
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".json")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        try:
            saved = self.document.save(path)
        except (ProjectFileError, OSError) as err:
            QMessageBox.critical(self, "Cannot save project", autosave.save_error_text(path, err))
            return False
        self.recent.add(saved)
        self.training_panel.on_project_saved()  # weights trained before the project had a file
        self._update_title()
        self.show_message(f"Saved {saved}")
        return True

    def maybe_save(self) -> bool:
        """Ask before unsaved work is lost: edits, or trained weights not yet written.

        True: go on (saved or discarded); False: cancel.
        """
        edits, weights = self.document.is_dirty(), self.training_panel.weights_unsaved
        if not edits and not weights:
            return True
        name = self.document.project.name
        if edits and weights:
            text = f"Save the changes to {name} and its trained weights?"
        elif edits:
            text = f"Save the changes to {name}?"
        else:
            text = f"The weights trained for {name} are not saved. Save them?"
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self,
            "Unsaved changes" if edits else "Unsaved trained weights",
            text,
            buttons.Save | buttons.Discard | buttons.Cancel,
            buttons.Save,
        )
        if answer != buttons.Save:
            return answer == buttons.Discard
        if edits or self.document.project.path is None:
            return self.save()  # writes the weights too once the project has a file
        return self.training_panel.save_weights() is not None

    def import_keras_dialog(self) -> bool:
        folder = str(self.document.project.path.parent) if self.document.project.path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", folder, KERAS_FILTER)
        return self.import_keras_file(path) if path else False

    def import_keras_file(self, path: str | Path, ask: bool = True) -> bool:
        """Replace the project by an imported Keras model (unsaved) and the Run panel's
        weights by a ``.keras`` archive's trained ones; if the file cannot be imported, say
        why (the blocks nodenet lacks, by name) and keep the current project. Weights that
        cannot be read (no h5py, a layer's arrays that do not fit) leave the model untrained,
        with a notice saying why. An ``.onnx`` file comes in the same way, with its weights."""
        notice = None
        facts = None  # what an ONNX file holds
        try:
            if Path(path).suffix.lower() == ".onnx":
                project, weights, facts = read_onnx(Path(path))
            else:
                project, weights, notice = _read_keras(path)
            analysis = Document.checked_analysis(project)
        except NodenetError as err:
            text = shorten(str(err).replace("; ", "\n"), MESSAGE_CHARS)
            QMessageBox.critical(self, "Cannot import the model", text)
            return False
        if ask and not self.maybe_save():
            return False
        project.path = None
        by_id = {n.id: n for n in project.nodes}
        for node_id, (x, y) in self.document.layout_engine(project).items():  # for this canvas
            by_id[node_id].pos = [float(x), float(y)]
        self.document.replace_project(project, analysis)
        self._report_opened(project)
        if facts is not None:
            self.show_message(f"Imported {Path(path).name}: {facts}")
        if weights is not None:
            self.training_panel.adopt_weights(weights, Path(path).name)
        elif notice is not None and Path(path).suffix == ".keras":
            self.training_panel.show_message(shorten(notice, MESSAGE_CHARS), "warning")
        return True

    def export_model_file(self, kind: str) -> Path | None:
        """File → Export → ONNX file / Keras model file (``kind`` "onnx", "keras-model")."""
        return export_model_file(self, kind)

    def export_code(self, target: str) -> ExportDialog | None:
        """Open the export preview (``target`` "keras" or "pytorch") of the project."""
        old, self.export_dialog = self.export_dialog, None
        if old is not None and shiboken6.isValid(old):
            old.close()
            old.deleteLater()
        weights = self.training_panel.trained_weights
        try:
            dialog = ExportDialog(self.document.project, target, weights, self)
        except NodenetError as err:  # the preview itself reports export errors
            self.show_message(f"Cannot export: {shorten(str(err), MESSAGE_CHARS)}")
            return None
        self.export_dialog = dialog
        dialog.open()
        return dialog

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for i, path in enumerate(paths, 1):
            action = self.recent_menu.addAction(f"&{i % 10}  {Path(path).name}")
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        if not paths:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear list")
        clear.setEnabled(bool(paths))
        clear.triggered.connect(self.recent.clear)


def _has_h5py() -> bool:
    """Whether h5py, which reads a .keras archive's weights, is installed."""
    import importlib.util

    return importlib.util.find_spec("h5py") is not None


def _read_keras(path: str | Path):
    """``(project, weights, notice)`` of a Keras JSON or ``.keras`` file: the trained weights
    when they can be read, else ``None`` and the reason in ``notice``."""
    try:
        project, weights = import_keras_archive(path, weights=_has_h5py())
        notice = None if _has_h5py() else f"the trained weights were not imported: {NO_H5PY}"
    except WeightsError as err:
        project, weights = import_keras_archive(path, weights=False)
        notice = f"the trained weights were not imported: {err}"
    return project, weights, notice
