"""The Document without widgets: edits, refusals with reasons, undo, signals, selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodenet.errors import NodenetError, ParamError, UnknownNameError
from nodenet.graph.project import load
from nodenet.ui.document import (
    Document,
    ReadOnlyError,
    Selection,
    default_id,
    new_project,
)

SAMPLE = Path(__file__).parents[2] / "sample_projects" / "digits_mlp.json"


@pytest.fixture
def doc() -> Document:
    return Document(new_project())


@pytest.fixture
def sample() -> Document:
    return Document(load(SAMPLE))


def edges(doc: Document) -> list[tuple[str, str, int]]:
    return [(e.src, e.dst, e.port) for e in doc.project.edges]


def test_default_ids_follow_keras_layer_names():
    assert default_id("Dense") == "dense"
    assert default_id("Conv2D") == "conv2d"
    assert default_id("SimpleRNN") == "simple_rnn"
    assert default_id("BatchNormalization") == "batch_normalization"
    assert default_id("GlobalAveragePooling2D") == "global_average_pooling2d"
    assert default_id("Conv2DTranspose") == "conv2d_transpose"


def test_new_project_has_one_input_and_one_output():
    project = new_project()
    assert [n.type for n in project.nodes] == ["Input", "Output"]
    assert project.edges == []


def test_add_node_names_blocks_like_keras_and_undo_removes_them(doc):
    before = doc.project.to_json()
    assert doc.add_node("Dense", (10, 20)) == "dense"
    assert doc.add_node("Dense", (10, 20)) == "dense_1"
    assert doc.add_node("Dense", (0, 0), {"units": 8}, node_id="head") == "head"
    assert doc.project.node("head").params == {"units": 8}
    assert doc.project.node("dense").pos == [10.0, 20.0]
    assert doc.undo_stack.count() == 3
    for _ in range(3):
        doc.undo()
    assert doc.project.to_json() == before


def test_add_node_refuses_unknown_types_bad_params_and_taken_ids(doc):
    with pytest.raises(UnknownNameError):
        doc.add_node("Dense2", (0, 0))
    with pytest.raises(ParamError, match="units"):
        doc.add_node("Dense", (0, 0), {"units": 0})
    with pytest.raises(NodenetError, match="already used"):
        doc.add_node("Dense", (0, 0), node_id="input")
    with pytest.raises(NodenetError, match="finite"):
        doc.add_node("Dense", (float("nan"), 0))
    assert doc.undo_stack.count() == 0


def test_connection_refusals_give_the_reason(sample):
    doc = sample
    assert doc.check_connection("pixels", "hidden_2", None) is not None  # hidden_2 is fed
    assert "already has an input (hidden_1)" in doc.check_connection("pixels", "hidden_2", 0)
    doc.disconnect("pixels", "hidden_1", 0)
    assert doc.check_connection("probs", "hidden_1", None) == (
        "probs → hidden_1 would make a cycle through hidden_1 → hidden_2 → probs"
    )
    assert doc.check_connection("hidden_1", "pixels", 0) == "pixels is an Input: it takes no input"
    doc.add_node("Dense", (0, 0), node_id="after")
    assert "digit is an Output" in doc.check_connection("digit", "after", 0)
    assert doc.check_connection("after", "after", 0) == "after cannot feed itself"
    assert "no block named 'ghost'" in doc.check_connection("ghost", "after", 0)
    assert "has no input port 1" in doc.check_connection("pixels", "after", 1)
    assert doc.check_connection("pixels", "after", None) is None


def test_incompatible_shapes_are_refused_with_the_blocks_shape_message(sample):
    doc = sample
    doc.add_node("Conv2D", (0, 0), node_id="conv")
    # Conv2D needs (batch, rows, cols, channels); pixels is (None, 64)
    reason = doc.check_connection("pixels", "conv", None)
    assert reason == "conv: Conv2D expects a 4-D input (batch included), got (None, 64)"
    assert doc.connect("pixels", "conv") == reason
    assert ("pixels", "conv", 0) not in edges(doc)
    doc.add_node("Concatenate", (0, 0), node_id="cat")
    assert doc.connect("pixels", "cat") is None  # one input: nothing to compare yet
    doc.add_node("Input", (0, 0), {"shape": [4, 4]}, node_id="grid")
    assert doc.check_connection("grid", "cat", None) == (
        "cat: cannot concatenate (None, 64) and (None, 4, 4) on axis -1"
    )


def test_merges_take_the_next_free_port_and_renumber_on_disconnect(sample):
    doc = sample
    doc.add_node("Add", (0, 0), node_id="sum")
    for src in ("hidden_1", "hidden_2", "hidden_1"):
        assert doc.connect(src, "sum") is None
    assert [e for e in edges(doc) if e[1] == "sum"] == [
        ("hidden_1", "sum", 0),
        ("hidden_2", "sum", 1),
        ("hidden_1", "sum", 2),
    ]
    assert "already fed by hidden_2" in doc.check_connection("probs", "sum", 1)
    assert doc.connect("pixels", "sum", 7) == "sum: cannot add (None, 128) and (None, 64)"
    doc.disconnect("hidden_1", "sum", 0)
    assert [e for e in edges(doc) if e[1] == "sum"] == [
        ("hidden_2", "sum", 0),
        ("hidden_1", "sum", 1),
    ]
    doc.remove_nodes(["hidden_2"])
    assert [e for e in edges(doc) if e[1] == "sum"] == [("hidden_1", "sum", 0)]
    doc.undo()
    doc.undo()
    assert sorted((e for e in edges(doc) if e[1] == "sum"), key=lambda e: e[2]) == [
        ("hidden_1", "sum", 0),
        ("hidden_2", "sum", 1),
        ("hidden_1", "sum", 2),
    ]


def test_fixed_two_input_merges_keep_their_ports(doc):
    doc.add_node("Subtract", (0, 0), node_id="diff")
    doc.add_node("Dense", (0, 0), node_id="a")
    assert doc.connect("a", "diff", 1) is None
    assert doc.connect("input", "diff") is None  # port 0 is the free one
    assert sorted(e for e in edges(doc) if e[1] == "diff") == [
        ("a", "diff", 1),
        ("input", "diff", 0),
    ]
    assert (
        doc.check_connection("a", "diff", None) == "every input port of diff is already connected"
    )
    doc.disconnect("input", "diff", 0)
    assert [e for e in edges(doc) if e[1] == "diff"] == [("a", "diff", 1)]


def test_remove_deletes_edges_and_data_mappings_and_undo_restores_them_exactly(sample):
    doc = sample
    before = doc.project.to_json()
    removed, analysed = [], []
    doc.edgeRemoved.connect(lambda *e: removed.append(e))
    doc.analysisChanged.connect(lambda: analysed.append(len(doc.project.nodes)))
    doc.remove_nodes(["pixels", "probs"])
    assert {n.id for n in doc.project.nodes} == {"hidden_1", "hidden_2", "digit"}
    assert edges(doc) == [("hidden_1", "hidden_2", 0)]
    assert doc.project.data["inputs"] == {}
    assert doc.project.data["targets"] == {"digit": "y"}
    assert sorted(removed) == [
        ("hidden_2", "probs", 0),
        ("pixels", "hidden_1", 0),
        ("probs", "digit", 0),
    ]
    assert analysed == [3], "one analysis per command, after the command"
    assert doc.undo_stack.count() == 1
    doc.undo()
    assert doc.project.to_json() == before


def test_rename_moves_edges_and_data_mappings(sample):
    doc = sample
    renamed = []
    doc.nodeRenamed.connect(lambda old, new: renamed.append((old, new)))
    doc.rename("pixels", "image")
    assert renamed == [("pixels", "image")]
    assert ("image", "hidden_1", 0) in edges(doc)
    assert doc.project.data["inputs"] == {"image": "x"}
    for bad, message in [
        ("hidden_1", "already used"),
        ("", "cannot be empty"),
        ("two words", "not a valid id"),
    ]:
        with pytest.raises(NodenetError, match=message):
            doc.rename("image", bad)
    doc.undo()
    assert doc.project.data["inputs"] == {"pixels": "x"}
    assert doc.project.to_json() == load(SAMPLE).to_json()


def test_set_params_is_validated_and_one_command(sample):
    doc = sample
    changed = []
    doc.nodeChanged.connect(changed.append)
    with pytest.raises(ParamError, match="units must be an integer >= 1"):
        doc.set_params("hidden_1", {"units": -4})
    with pytest.raises(ParamError, match="no parameter 'size'"):
        doc.set_params("hidden_1", {"size": 3})
    assert doc.undo_stack.count() == 0 and changed == []
    doc.set_params("hidden_1", {"units": 64, "activation": "tanh"})
    doc.set_params("hidden_1", {"units": 64, "activation": "tanh"})  # no change: no command
    assert doc.undo_stack.count() == 1 and changed == ["hidden_1"]
    assert doc.analysis.shapes["hidden_1"] == (64,)
    assert doc.analysis.params["hidden_1"] == (64 * 64 + 64, 0)


def test_analysis_is_fresh_when_the_signals_fire(doc):
    seen = []
    doc.nodeAdded.connect(lambda node_id: seen.append(doc.analysis.shapes.get(node_id)))
    doc.set_params("input", {"shape": [5]})
    doc.add_node("Dense", (0, 0), {"units": 3}, node_id="d")
    doc.edgeAdded.connect(lambda *e: seen.append(doc.analysis.shapes.get("d")))
    doc.connect("input", "d")
    assert seen == [None, (3,)]


def test_copy_paste_gives_fresh_ids_keeps_internal_edges_and_compacts_merge_ports(sample):
    doc = sample
    doc.add_node("Concatenate", (0, 0), node_id="cat")
    doc.connect("hidden_1", "cat")
    doc.connect("hidden_2", "cat")
    fragment = doc.copy(["hidden_2", "probs", "cat"])
    assert [n["id"] for n in fragment["nodes"]] == ["hidden_2", "probs", "cat"]
    assert {(e["from"], e["to"], e["port"]) for e in fragment["edges"]} == {
        ("hidden_2", "probs", 0),
        ("hidden_2", "cat", 1),
    }
    count = doc.undo_stack.count()
    new = doc.paste(fragment, offset=(40, 40))
    assert new == ["hidden_3", "probs_1", "cat_1"]
    assert doc.undo_stack.count() == count + 1
    assert ("hidden_3", "probs_1", 0) in edges(doc)
    assert ("hidden_3", "cat_1", 0) in edges(doc), "merge port renumbered from 1 to 0"
    x, y = doc.project.node("probs").pos
    assert doc.project.node("probs_1").pos == [x + 40.0, y + 40.0], "pasted at an offset"
    assert doc.project.node("probs_1").params == doc.project.node("probs").params
    with pytest.raises(NodenetError, match="does not hold nodenet blocks"):
        doc.paste({"nodes": []})


def test_layout_puts_every_edge_left_to_right_in_one_command(sample):
    doc = sample
    doc.move_nodes({"pixels": (900, 300), "digit": (-100, 50)})
    doc.add_node("Dense", (0, 0), node_id="side")
    doc.connect("pixels", "side")
    count = doc.undo_stack.count()
    doc.layout()
    assert doc.undo_stack.count() == count + 1
    pos = {n.id: n.pos for n in doc.project.nodes}
    for e in doc.project.edges:
        assert pos[e.src][0] < pos[e.dst][0]
    assert len({tuple(p) for p in pos.values()}) == len(pos), "no two blocks on one spot"


def test_set_section_is_undoable_and_signalled(sample):
    doc = sample
    sections = []
    doc.settingsChanged.connect(sections.append)
    training = dict(doc.project.training, epochs=3)
    doc.set_section("training", training)
    assert doc.project.training["epochs"] == 3 and sections == ["training"]
    doc.undo()
    assert doc.project.training["epochs"] == 30 and sections == ["training", "training"]
    with pytest.raises(NodenetError, match="unknown project section"):
        doc.set_section("model", {})


def test_read_only_refuses_every_edit(sample):
    doc = sample
    flags = []
    doc.readOnlyChanged.connect(flags.append)
    doc.set_read_only(True)
    for edit in (
        lambda: doc.add_node("Dense", (0, 0)),
        lambda: doc.remove_nodes(["probs"]),
        lambda: doc.move_nodes({"probs": (1, 1)}),
        lambda: doc.disconnect("probs", "digit", 0),
        lambda: doc.set_params("probs", {"units": 3}),
        lambda: doc.rename("probs", "p"),
        lambda: doc.paste(doc.copy(["probs"])),
        lambda: doc.layout(),
        lambda: doc.set_section("training", {}),
        lambda: doc.undo(),
    ):
        with pytest.raises(ReadOnlyError, match="read-only"):
            edit()
    assert "read-only" in doc.connect("hidden_1", "probs")
    assert doc.undo_stack.count() == 0 and flags == [True]
    doc.set_read_only(False)
    doc.add_node("Dense", (0, 0))
    assert flags == [True, False]


def test_dirty_follows_the_undo_stack_and_saving(sample, tmp_path):
    doc = sample
    dirty = []
    doc.dirtyChanged.connect(dirty.append)
    assert not doc.is_dirty()
    doc.move_nodes({"probs": (10, 10)})
    assert doc.is_dirty() and dirty == [True]
    doc.undo()
    assert not doc.is_dirty() and dirty == [True, False]
    doc.redo()
    path = doc.save(tmp_path / "saved.json")
    assert not doc.is_dirty() and doc.project.path == path
    assert load(path).to_json() == doc.project.to_json()


def test_replace_project_starts_a_clean_history(sample):
    doc = sample
    replaced = []
    doc.projectReplaced.connect(lambda: replaced.append(len(doc.project.nodes)))
    doc.add_node("Dense", (0, 0))
    doc.replace_project(new_project())
    assert replaced == [2]
    assert doc.undo_stack.count() == 0 and not doc.is_dirty()
    assert doc.analysis.shapes == {"input": (1,)}


def test_selection_follows_renames_and_removals(sample):
    doc = sample
    selection = Selection(doc)
    changes = []
    selection.changed.connect(lambda: changes.append(selection.ids()))
    selection.set(["hidden_1", "probs", "hidden_1"])
    assert selection.ids() == ["hidden_1", "probs"] and selection.current() is None
    selection.set(["hidden_1", "probs"])  # same: no signal
    doc.rename("hidden_1", "h1")
    doc.remove_nodes(["probs"])
    assert changes == [["hidden_1", "probs"], ["h1", "probs"], ["h1"]]
    assert selection.current() == "h1"
    doc.replace_project(new_project())
    assert selection.ids() == []


def test_thousands_of_signals_and_void_calls_do_not_exhaust_none_or_true(doc):
    """PySide6 6.12.0 on CPython < 3.12 drops a reference to True per ``emit`` and to None
    per void call, and Python aborts here; pyproject.toml keeps that release out."""
    for _ in range(20_000):
        doc.readOnlyChanged.emit(False)
        doc.undo_stack.setClean()
    assert not doc.is_dirty()
