"""Random edit sequences on a Document: undo and redo restore every state exactly.

A state machine applies random edits (add, remove, move, connect, disconnect,
set_params, rename, paste, layout, set_section) and random undos/redos. It
records the project's JSON at every undo-stack index, so each undo and redo is
checked against the state first seen there; at the end, undoing everything
gives back the original JSON and redoing everything the final one. A mirror
built only from the Document's signals must always match the project, and the
analysis must always equal a fresh ``analyze``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nodenet.engine import block_class, block_types
from nodenet.engine import params as P
from nodenet.errors import NodenetError
from nodenet.graph.project import analyze, load
from nodenet.ui.document import Document, new_project

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"
NAMES = ("a", "b", "dense", "dense_1", "hidden_1", "pixels", "x.y", "", "1bad", "with space")


def value_for(spec: P.Param) -> st.SearchStrategy:
    """Values a parameter descriptor accepts (and, for optional ones, null)."""
    if isinstance(spec, P.Bool):
        out = st.booleans()
    elif isinstance(spec, P.Choice):
        out = st.sampled_from(spec.choices)
    elif isinstance(spec, P.Int):
        low = spec.min if spec.min is not None else -5
        high = spec.max if spec.max is not None else low + 64
        out = st.integers(low, high)
    elif isinstance(spec, P.Float):
        low = spec.min if spec.min is not None else -10.0
        high = spec.max if spec.max is not None else low + 10.0
        out = st.floats(low, high, exclude_min=spec.min_exclusive, exclude_max=spec.max_exclusive)
    elif isinstance(spec, P.IntTuple):
        out = st.lists(st.integers(spec.min or 0, 5), min_size=spec.length, max_size=spec.length)
    elif isinstance(spec, P.ShapeParam):
        out = st.lists(st.integers(1, 8), min_size=spec.min_rank, max_size=3)
    elif isinstance(spec, P.Regularizer):
        out = st.none() | st.fixed_dictionaries({"l1": st.floats(0, 1), "l2": st.floats(0, 1)})
    elif isinstance(spec, P.StrList):
        out = st.lists(st.sampled_from(spec.choices), unique=True)
    else:
        out = st.just(spec.default)
    return out | st.none() if getattr(spec, "optional", False) else out


class Mirror:
    """Nodes and edges known only through the Document's signals."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.resync()
        doc.projectReplaced.connect(self.resync)
        doc.nodeAdded.connect(lambda i: self._add(self.nodes, i))
        doc.nodeRemoved.connect(lambda i: self.nodes.remove(i))
        doc.nodeRenamed.connect(self._rename)
        doc.edgeAdded.connect(lambda *e: self._add(self.edges, e))
        doc.edgeRemoved.connect(lambda *e: self.edges.remove(e))

    @staticmethod
    def _add(items: set, item) -> None:
        assert item not in items, f"{item} added twice"
        items.add(item)

    def resync(self) -> None:
        self.nodes = {n.id for n in self.doc.project.nodes}
        self.edges = {(e.src, e.dst, e.port) for e in self.doc.project.edges}

    def _rename(self, old: str, new: str) -> None:
        self.nodes.remove(old)
        self._add(self.nodes, new)
        self.edges = {(new if s == old else s, new if d == old else d, p) for s, d, p in self.edges}

    def check(self) -> None:
        assert self.nodes == {n.id for n in self.doc.project.nodes}
        assert self.edges == {(e.src, e.dst, e.port) for e in self.doc.project.edges}


class EditSequence(RuleBasedStateMachine):
    @initialize(sample=st.booleans())
    def start(self, sample: bool) -> None:
        self.doc = Document(load(SAMPLE) if sample else new_project())
        self.mirror = Mirror(self.doc)
        self.states = [self.json()]  # JSON at each undo-stack index

    def json(self) -> str:
        return self.doc.project.to_json()

    def ids(self) -> list[str]:
        return [n.id for n in self.doc.project.nodes]

    def pushed(self, before: int, name: str) -> None:
        """After an edit: a new state if a command was pushed, else nothing changed."""
        stack = self.doc.undo_stack
        event(f"{name}: {'refused or no-op' if stack.index() == before else 'applied'}")
        if stack.index() == before:
            assert self.json() == self.states[stack.index()]
        else:
            assert stack.index() == before + 1 == stack.count()
            del self.states[before + 1 :]
            self.states.append(self.json())
            assert self.states[-1] != self.states[-2], "a command changed nothing"

    def edit(self, name: str, action) -> None:
        before = self.doc.undo_stack.index()
        with contextlib.suppress(NodenetError):
            action()
        self.pushed(before, name)

    @rule(data=st.data(), block=st.sampled_from(block_types()))
    def add(self, data, block: str) -> None:
        x, y = data.draw(st.tuples(st.integers(-500, 500), st.integers(-500, 500)))
        self.edit("add", lambda: self.doc.add_node(block, (x, y)))

    @precondition(lambda self: self.doc.project.nodes)
    @rule(data=st.data())
    def remove(self, data) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3))
        self.edit("remove", lambda: self.doc.remove_nodes(ids))

    @precondition(lambda self: self.doc.project.nodes)
    @rule(data=st.data())
    def move(self, data) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=3))
        pos = st.tuples(st.floats(-1e4, 1e4), st.floats(-1e4, 1e4))
        self.edit("move", lambda: self.doc.move_nodes({i: data.draw(pos) for i in ids}))

    @precondition(lambda self: len(self.doc.project.nodes) >= 2)
    @rule(data=st.data(), allowed_only=st.booleans())
    def connect(self, data, allowed_only: bool) -> None:
        ids = self.ids()
        pairs = [(s, d) for s in ids for d in ids if s != d]
        if allowed_only:  # random pairs are mostly refused: aim at the allowed ones too
            pairs = [(s, d) for s, d in pairs if self.doc.check_connection(s, d, None) is None]
        if not pairs:
            return
        src, dst = data.draw(st.sampled_from(pairs))
        port = None if allowed_only else data.draw(st.none() | st.integers(0, 3))
        before = self.doc.undo_stack.index()
        reason = self.doc.check_connection(src, dst, port)
        assert self.doc.connect(src, dst, port) == reason
        self.pushed(before, "connect")
        assert (reason is None) == (self.doc.undo_stack.index() == before + 1)

    @precondition(lambda self: self.doc.project.edges)
    @rule(data=st.data())
    def disconnect(self, data) -> None:
        e = data.draw(st.sampled_from(self.doc.project.edges))
        self.edit("disconnect", lambda: self.doc.disconnect(e.src, e.dst, e.port))
        ports = {}
        for edge in self.doc.project.edges:
            ports.setdefault(edge.dst, []).append(edge.port)
        for dst, used in ports.items():
            if block_class(self.doc.project.node(dst).type).variadic():
                assert sorted(used) == list(range(len(used))), "merge ports not renumbered"

    @precondition(lambda self: self.doc.project.nodes)
    @rule(data=st.data())
    def set_params(self, data) -> None:
        node = data.draw(st.sampled_from(self.doc.project.nodes))
        specs = block_class(node.type).PARAMS
        if not specs:
            return
        spec = data.draw(st.sampled_from(specs))
        params = dict(node.params, **{spec.name: data.draw(value_for(spec))})
        self.edit("set_params", lambda: self.doc.set_params(node.id, params))

    @precondition(lambda self: self.doc.project.nodes)
    @rule(data=st.data(), new=st.sampled_from(NAMES))
    def rename(self, data, new: str) -> None:
        old = data.draw(st.sampled_from(self.ids()))
        self.edit("rename", lambda: self.doc.rename(old, new))

    @precondition(lambda self: self.doc.project.nodes)
    @rule(data=st.data())
    def paste(self, data) -> None:
        ids = data.draw(st.lists(st.sampled_from(self.ids()), min_size=1, max_size=4))
        fragment = json.loads(json.dumps(self.doc.copy(ids)))  # as through the clipboard
        offset = data.draw(st.tuples(st.integers(-80, 80), st.integers(-80, 80)))
        self.edit("paste", lambda: self.doc.paste(fragment, offset))

    @rule()
    def layout(self) -> None:
        self.edit("layout", self.doc.layout)

    @rule(epochs=st.integers(1, 50), shuffle=st.booleans())
    def set_section(self, epochs: int, shuffle: bool) -> None:
        training = dict(self.doc.project.training, epochs=epochs, shuffle=shuffle)
        self.edit("set_section", lambda: self.doc.set_section("training", training))

    @precondition(lambda self: self.doc.undo_stack.canUndo())
    @rule()
    def undo(self) -> None:
        self.doc.undo()
        assert self.json() == self.states[self.doc.undo_stack.index()]

    @precondition(lambda self: self.doc.undo_stack.canRedo())
    @rule()
    def redo(self) -> None:
        self.doc.redo()
        assert self.json() == self.states[self.doc.undo_stack.index()]

    @invariant()
    def views_agree(self) -> None:
        self.mirror.check()
        fresh = analyze(self.doc.project)
        assert self.doc.analysis.problems == fresh.problems
        assert self.doc.analysis.shapes == fresh.shapes
        assert self.doc.is_dirty() == (self.doc.undo_stack.index() != 0)

    def teardown(self) -> None:
        stack = self.doc.undo_stack
        while stack.canRedo():
            stack.redo()
        final = self.json()
        assert final == self.states[stack.count()]
        while stack.canUndo():
            stack.undo()
            self.mirror.check()
        assert self.json() == self.states[0]
        while stack.canRedo():
            stack.redo()
        assert self.json() == final
        self.mirror.check()


EditSequence.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
class TestEditSequence(EditSequence.TestCase):
    pass
