"""Restoring a recorded run: its graph, training and data settings become the project's in
one undoable document command, and its kept weights (checked against that graph) come back.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.backend import NumpyBackend
from nodenet.graph.project import Project
from nodenet.ui.commands import SetSection, replace_graph_ops


def restore_project(document, run: dict[str, Any], title: str, source: str) -> None:
    """Make the run's project snapshot (graph and settings; the name stays) the document's
    project as one undo step called ``Restore TITLE``; :class:`NodenetError` (naming
    ``source``) when the snapshot is unreadable or the document is read-only."""
    snapshot = Project.from_dict(run.get("project"), source)
    document._writable()
    ops = replace_graph_ops(document.project, snapshot)
    for section in ("training", "data"):
        old, new = getattr(document.project, section), getattr(snapshot, section)
        if old != new:
            ops.append(SetSection(section, copy.deepcopy(old), copy.deepcopy(new)))
    document._push(f"Restore {title}", ops)


def kept_weights(project: Project, path: Path) -> dict[str, np.ndarray]:
    """The weights file ``path`` loaded for ``project``'s graph (checked that they fit);
    :class:`NodenetError` when they do not."""
    backend = NumpyBackend()
    backend.build(project, load_data=False)
    backend.load_weights(path)
    return backend.get_weights()
