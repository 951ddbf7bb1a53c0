"""Project format version 2: edges from a named output, migration from version 1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from nodenet.cli import main
from nodenet.errors import ProjectFileError
from nodenet.graph import migrate as migration
from nodenet.graph.project import VERSION, Edge, Project, analyze, load, save, validate

ROOT = Path(__file__).parents[2]
V1_FILES = sorted((ROOT / "sample_projects").glob("*.json")) + sorted(
    (ROOT / "docs" / "tutorial").glob("*.json")
)

V1_TEXT = """{"format": "nodenet-project", "version": 1, "name": "tiny",
 "nodes": [{"id": "x", "type": "Input", "params": {"shape": [3]}, "pos": [0, 0]},
           {"id": "d", "type": "Dense", "params": {"units": 2}, "pos": [220.5, 0]},
           {"id": "y", "type": "Output", "params": {"loss": "mean_squared_error"},
            "pos": [440, 0]}],
 "edges": [{"from": "x", "to": "d", "port": 0}, {"from": "d", "to": "y"}],
 "training": {"epochs": 3}, "data": {"source": {"kind": "builtin", "name": "xor"}}}
"""

V2_TEXT = """{
  "format": "nodenet-project",
  "version": 2,
  "name": "tiny",
  "nodes": [
    {"id": "x", "type": "Input", "params": {"shape": [3]}, "pos": [0, 0]},
    {"id": "d", "type": "Dense", "params": {"units": 2}, "pos": [220.5, 0]},
    {"id": "y", "type": "Output", "params": {"loss": "mean_squared_error"}, "pos": [440, 0]}
  ],
  "edges": [
    {"from": "x", "to": "d", "port": 0},
    {"from": "d", "to": "y", "port": 0}
  ],
  "training": {
    "optimizer": {
      "name": "adam",
      "learning_rate": 0.001
    },
    "epochs": 3,
    "batch_size": 32,
    "validation_split": 0.2,
    "shuffle": true,
    "seed": 1671,
    "early_stopping": null
  },
  "data": {
    "source": {
      "kind": "builtin",
      "name": "xor"
    }
  }
}
"""


def test_a_version_1_file_opens_and_saves_as_version_2(tmp_path):
    assert VERSION == 3  # version 3 added groups; a project without groups saves as 2
    path = tmp_path / "tiny.json"
    path.write_text(V1_TEXT)
    save(load(path), path)
    assert path.read_text() == V2_TEXT
    save(load(path), path)  # a version-2 file saves as it was
    assert path.read_text() == V2_TEXT


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_every_version_1_sample_validates_identically_once_migrated(tmp_path, path):
    assert json.loads(path.read_text())["version"] == 1  # the samples stay version 1
    before = load(path)
    saved = save(before, tmp_path / path.name)
    assert json.loads(saved.read_text())["version"] == 2
    after = load(saved)
    assert after.to_dict() == before.to_dict()
    first, again = analyze(before), analyze(after)
    assert first.problems == again.problems == []
    assert (first.order, first.shapes, first.params) == (again.order, again.shapes, again.params)


def test_from_port_round_trips_and_is_left_out_when_0(tmp_path):
    project = Project.from_json(V1_TEXT)
    project.edges.append(Edge("x", "y", 1, 2))
    doc = project.to_dict()
    assert doc["edges"] == [
        {"from": "x", "to": "d", "port": 0},
        {"from": "d", "to": "y", "port": 0},
        {"from": "x", "from_port": 2, "to": "y", "port": 1},
    ]
    again = load(save(project, tmp_path / "p.json"))
    assert again.edges[2] == Edge("x", "y", 1, 2)
    assert again.edges[0].src_port == 0
    assert (
        '{"from": "x", "from_port": 2, "to": "y", "port": 1}' in (tmp_path / "p.json").read_text()
    )


@pytest.mark.parametrize(
    ("from_port", "message"),
    [
        (-1, "from_port must be a non-negative integer (got -1)"),
        ("1", "from_port must be a non-negative integer"),
        (True, "from_port must be a non-negative integer"),
        (10**9, "from_port 1000000000 is past the last possible port"),
    ],
)
def test_a_bad_from_port_is_refused_naming_the_edge(from_port, message):
    doc = json.loads(V1_TEXT)
    doc["version"] = 2
    doc["edges"][1]["from_port"] = from_port
    with pytest.raises(ProjectFileError, match=re.escape("edges[1]: d -> y: " + message)):
        Project.from_dict(doc, "p.json")


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (4, "p.json: version 4 was written by a newer nodenet (this one reads up to version 3)"),
        (0, "p.json: version must be a positive integer (got 0)"),
        ("2", "p.json: version must be a positive integer"),
    ],
)
def test_a_newer_or_bad_version_is_refused(version, message):
    doc = json.loads(V1_TEXT)
    doc["version"] = version
    with pytest.raises(ProjectFileError, match=re.escape(message)):
        Project.from_dict(doc, "p.json")


def test_the_params_table_migrates_version_1_blocks_only(monkeypatch):
    def rename(params):
        if "width" not in params:
            raise ValueError("no width")
        return {"units": params.pop("width"), **params}

    monkeypatch.setitem(migration.PARAMS_V1_TO_V2, "Dense", rename)
    doc = json.loads(V1_TEXT)
    doc["nodes"][1]["params"] = {"width": 5}
    original = json.loads(json.dumps(doc))
    assert Project.from_dict(doc).node("d").params == {"units": 5}
    assert doc == original  # the parsed document is not changed
    doc["version"] = 2
    assert Project.from_dict(doc).node("d").params == {"width": 5}  # already version 2
    doc["version"] = 1
    doc["nodes"][1]["params"] = {"units": 5}
    with pytest.raises(ProjectFileError, match=r"p\.json: d: its version-1 Dense parameters"):
        Project.from_dict(doc, "p.json")


def test_a_from_port_in_a_version_1_file_meant_nothing_and_still_does():
    doc = json.loads(V1_TEXT)
    doc["edges"][1]["from_port"] = 3
    assert Project.from_dict(doc).edges[1] == Edge("d", "y", 0, 0)
    doc["version"] = 2
    assert Project.from_dict(doc).edges[1] == Edge("d", "y", 0, 3)


def test_migrate_steps_one_version_at_a_time():
    doc = json.loads(V1_TEXT)
    assert migration.migrate(doc)["version"] == VERSION
    assert set(migration.STEPS) == set(range(1, VERSION))
    current = migration.migrate(doc)
    assert migration.migrate(current) is current


def test_import_keras_writes_version_2(tmp_path, capsys):
    config = {
        "class_name": "Functional",
        "config": {
            "name": "tiny",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "x",
                    "config": {"batch_shape": [None, 4], "dtype": "float32", "name": "x"},
                    "inbound_nodes": [],
                },
                {
                    "class_name": "Dense",
                    "name": "d",
                    "config": {"name": "d", "units": 2},
                    "inbound_nodes": [
                        {
                            "args": [
                                {
                                    "class_name": "__keras_tensor__",
                                    "config": {
                                        "shape": [None, 4],
                                        "dtype": "float32",
                                        "keras_history": ["x", 0, 0],
                                    },
                                }
                            ],
                            "kwargs": {},
                        }
                    ],
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    }
    source = tmp_path / "model.json"
    source.write_text(json.dumps(config))
    out = tmp_path / "imported.json"
    assert main(["import-keras", str(source), "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["version"] == 2
    assert validate(load(out)) == []
