"""A seeded random GUI session (issue 13): adds, deletes, moves, connects, disconnects,
renames, parameter edits, copy and paste (with hostile clipboard contents), undo, redo,
layout, save and open, through the window's actions and the Document's methods as the
UI calls them. No exception may escape into Qt (pytest-qt fails a test on one raised in
a slot or virtual method; the session also collects them itself), and every state the
session saves, and the autosave recovery file, opens again with ``nodenet.graph.project.load``.

The default run plays one short session; ``-m slow`` plays several thousand actions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF
from PySide6.QtWidgets import QApplication

from nodenet.engine import block_class, block_types
from nodenet.errors import NodenetError
from nodenet.graph.project import load
from nodenet.ui import autosave
from nodenet.ui.document import FRAGMENT_MIME

HUGE = "9" * 5000
HOSTILE_CLIPBOARDS: list[tuple[str, bytes]] = [
    ("fragment", b'{"format": "nodenet-fragment", "nodes": [' + HUGE.encode() + b"]}"),
    ("fragment", b'{"nodes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("fragment", b'{"format": "nodenet-fragment", "nodes": [\xff\xfe\x80]}'),
    ("fragment", b"\x00\x01\x02 not json"),
    ("text", b'{"format": "nodenet-fragment", "nodes": "everything"}'),
    ("text", b"[1, 2, 3]"),
    ("text", b""),
]


def _hostile_fragments() -> list[str]:
    node = {"id": "h", "type": "Dense", "params": {}, "pos": [0, 0]}
    far = dict(node, pos=[999_999_990, -999_999_990])
    nan = dict(node, pos=["nan", "nan"])
    big_units = json.dumps(dict(node, params={"units": 12345})).replace("12345", HUGE)
    unknown = dict(node, type="NoSuchBlock")
    many = [dict(node, id=f"m{i}", pos=[i * 10, 0]) for i in range(40)]
    edges = [{"from": "m0", "to": "m1", "port": 10**18}, {"from": "m1", "to": "zz"}]
    fragments = [
        {"format": "nodenet-fragment", "nodes": [far]},
        {"format": "nodenet-fragment", "nodes": [nan]},
        {"format": "nodenet-fragment", "nodes": [unknown]},
        {"format": "nodenet-fragment", "nodes": many, "edges": edges},
        {"format": "nodenet-fragment", "nodes": [node, node]},
    ]
    texts = [json.dumps(f) for f in fragments]
    texts.append('{"format": "nodenet-fragment", "nodes": [' + big_units + "]}")
    return texts


def addable_types() -> list[str]:
    """Block types that can be added with their defaults."""
    out = []
    for name in block_types():
        try:
            block_class(name).from_config({})
        except NodenetError:
            continue
        out.append(name)
    return out


class Session:
    """One random session on a shown main window."""

    def __init__(self, window, folder: Path, seed: int):
        self.window = window
        self.doc = window.document
        self.folder = folder
        self.rng = random.Random(seed)
        self.types = addable_types()
        self.saved: list[Path] = []
        self.hostile = _hostile_fragments()
        self.actions = [
            (self.add, 6),
            (self.delete, 3),
            (self.move, 4),
            (self.connect, 6),
            (self.disconnect, 2),
            (self.rename, 2),
            (self.set_param, 3),
            (self.copy_paste, 3),
            (self.hostile_paste, 2),
            (self.undo_redo, 4),
            (self.layout, 1),
            (self.save, 1),
            (self.open, 1),
        ]

    def play(self, steps: int) -> None:
        functions = [f for f, _ in self.actions]
        weights = [w for _, w in self.actions]
        for _ in range(steps):
            self.rng.choices(functions, weights)[0]()
            QApplication.processEvents()

    # -- helpers ---------------------------------------------------------------------

    def ids(self) -> list[str]:
        return [n.id for n in self.doc.project.nodes]

    def some_ids(self, k: int) -> list[str]:
        ids = self.ids()
        return self.rng.sample(ids, min(k, len(ids)))

    def position(self) -> tuple[float, float]:
        roll = self.rng.random()
        if roll < 0.05:
            return self.rng.choice([1e12, -1e15, 999_999_990.0]), self.rng.uniform(-1e3, 1e3)
        return self.rng.uniform(-2000, 2000), self.rng.uniform(-2000, 2000)

    def guarded(self, edit, *args) -> None:
        """A Document edit as a UI slot makes it: a refusal is a status message."""
        try:
            edit(*args)
        except NodenetError as err:
            self.window.show_message(str(err))

    # -- actions ---------------------------------------------------------------------

    def add(self) -> None:
        if len(self.doc.project.nodes) > 120:
            return self.delete()
        x, y = self.position()
        self.window.canvas.add_block(self.rng.choice(self.types), QPointF(x, y))

    def delete(self) -> None:
        self.window.selection.set(self.some_ids(self.rng.randint(1, 4)))
        self.window.actions["delete"].trigger()

    def move(self) -> None:
        moves = {i: self.position() for i in self.some_ids(self.rng.randint(1, 5))}
        if moves and self.rng.random() < 0.05:
            moves[next(iter(moves))] = (float("nan"), 0.0)
        self.guarded(self.doc.move_nodes, moves)

    def connect(self) -> None:
        ids = self.ids()
        if len(ids) >= 2:
            src, dst = self.rng.sample(ids, 2)
            reason = self.doc.connect(src, dst)
            if reason:
                self.window.show_message(reason)

    def disconnect(self) -> None:
        edges = self.doc.project.edges
        if edges:
            e = self.rng.choice(edges)
            self.window.canvas.delete_edges([(e.src, e.dst, e.port)])

    def rename(self) -> None:
        ids = self.ids()
        if ids:
            new = self.rng.choice(["x", "renamed", "9bad", "", "a" * 80, "ok.id-2", ids[0]])
            self.guarded(self.doc.rename, self.rng.choice(ids), new)

    def set_param(self) -> None:
        dense = [n for n in self.doc.project.nodes if n.type == "Dense"]
        if not dense:
            return
        node = self.rng.choice(dense)
        value = self.rng.choice([1, 8, 64, 0, -3, 10**30, 1.5, "many", None, True])
        self.guarded(self.doc.set_params, node.id, {**node.params, "units": value})

    def copy_paste(self) -> None:
        self.window.selection.set(self.some_ids(self.rng.randint(1, 6)))
        self.window.actions["copy"].trigger()
        if self.rng.random() < 0.5:
            self.window.actions["paste"].trigger()
        else:
            self.window.canvas.paste(at=QPointF(*self.position()))

    def hostile_paste(self) -> None:
        mime = QMimeData()
        if self.rng.random() < 0.5:
            kind, data = self.rng.choice(HOSTILE_CLIPBOARDS)
            if kind == "fragment":
                mime.setData(FRAGMENT_MIME, data)
            else:
                mime.setText(data.decode("utf-8", "replace"))
        else:
            text = self.rng.choice(self.hostile)
            mime.setData(FRAGMENT_MIME, text.encode())
        QApplication.clipboard().setMimeData(mime)
        if self.rng.random() < 0.5:
            self.window.actions["paste"].trigger()
        else:
            self.window.canvas.paste(at=QPointF(*self.position()))

    def undo_redo(self) -> None:
        for _ in range(self.rng.randint(1, 3)):
            self.window.actions[self.rng.choice(["undo", "undo", "redo"])].trigger()

    def layout(self) -> None:
        self.window.actions["layout"].trigger()

    def save(self) -> None:
        path = self.folder / f"state_{len(self.saved)}.json"
        assert self.window.save_as(path), f"could not save {path}"
        self.saved.append(path)
        reopened = load(path)  # raises if what the app saved cannot be opened
        assert len(reopened.nodes) == len(self.doc.project.nodes)
        assert self.window.work_guard.autosave.write_now()
        autosave.read_recovery(self.window.work_guard.autosave.file)

    def open(self) -> None:
        if self.saved and self.rng.random() < 0.7:
            assert self.window.open_file(self.rng.choice(self.saved), ask=False)
            return
        hostile = self.folder / "hostile.json"
        hostile.write_text('{"format": "nodenet-project", "version": 1, "x": ' + HUGE + "}")
        assert not self.window.open_file(hostile, ask=False)

    def finish(self) -> None:
        """Save the end state and check it (and the recovery file) opens."""
        self.save()


def run_session(make_window, qtbot, tmp_path: Path, seed: int, steps: int) -> Session:
    window = make_window()
    with qtbot.capture_exceptions() as exceptions:
        session = Session(window, tmp_path, seed)
        session.play(steps)
        session.finish()
    assert not exceptions, "".join(str(e) for e in exceptions[:3])
    for path in session.saved:
        load(path)
    return session


@pytest.mark.slow
def test_a_short_random_session_raises_nothing_and_every_save_reopens(
    make_window, qtbot, tmp_path, no_prompts
):
    session = run_session(make_window, qtbot, tmp_path, seed=13, steps=300)
    assert session.saved


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_random_sessions_raise_nothing_and_every_save_reopens(
    make_window, qtbot, tmp_path, no_prompts, seed
):
    session = run_session(make_window, qtbot, tmp_path, seed=seed, steps=1500)
    assert len(session.saved) > 5
