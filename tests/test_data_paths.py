"""Data paths stay inside the project's folder unless the caller allows otherwise.

A path leading out through ``..``, an absolute path or a symlink is refused with
an :class:`OutsideDataError` naming the field and the resolved path and telling
how to allow it; the engine takes ``allow_outside_data=True`` and the command
line ``--allow-outside-data``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from nodenet.cli import main
from nodenet.engine.data import describe_source, load_source
from nodenet.errors import DataError, OutsideDataError
from nodenet.graph.project import load
from nodenet.runner import build_run

DIGITS = Path(__file__).parent.parent / "sample_projects" / "digits_mlp.json"


@pytest.fixture
def layout(tmp_path):
    """``tmp/project/`` (the project folder, with ``inside.npz``) and ``tmp/secret.npz``."""
    folder = tmp_path / "project"
    folder.mkdir()
    arrays = {"x": np.arange(80, dtype=np.float32).reshape(20, 4), "y": np.arange(20) % 3}
    np.savez(folder / "inside.npz", **arrays)
    np.savez(tmp_path / "secret.npz", **arrays)
    return folder


def project_reading(folder: Path, path: str, **source) -> Path:
    """A copy of the digits MLP (4 features, 3 classes) in ``folder`` reading ``path``."""
    doc = json.loads(DIGITS.read_text())
    doc["nodes"][0]["params"]["shape"] = [4]
    doc["nodes"][3]["params"]["units"] = 3
    doc["training"]["epochs"] = 1
    doc["data"] = {"source": {"kind": "npz", "path": path, **source}}
    file = folder / "p.json"
    file.write_text(json.dumps(doc))
    return file


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "home"])
def test_a_path_out_of_the_project_folder_is_refused_naming_field_and_path(layout, how):
    secret = (layout.parent / "secret.npz").resolve()
    if how == "symlink":
        os.symlink(secret, layout / "link.npz")
    given = {
        "dotdot": "../secret.npz",
        "absolute": str(secret),
        "symlink": "link.npz",
        "home": "~/secret.npz",
    }[how]
    with pytest.raises(OutsideDataError) as caught:
        load_source({"kind": "npz", "path": given}, layout)
    err = caught.value
    assert err.field == "data.source.path" and err.given == given
    assert err.folder == layout.resolve()
    message = str(err)
    assert message.startswith(f"data.source.path: {given!r} leads to ")
    assert f"outside the project folder {layout.resolve()}" in message
    assert "--allow-outside-data" in message and "allow_outside_data=True" in message
    if how != "home":
        assert err.path == secret and str(secret) in message
    assert isinstance(err, DataError)  # callers catching DataError still catch it


def test_allowed_paths_outside_are_read(layout):
    ds = load_source({"kind": "npz", "path": "../secret.npz"}, layout, allow_outside_data=True)
    np.testing.assert_array_equal(ds.arrays["y"], np.arange(20) % 3)
    described = describe_source(
        {"kind": "npz", "path": "../secret.npz"}, layout, allow_outside_data=True
    )
    assert described["arrays"]["x"]["shape"] == [20, 4]


def test_paths_inside_the_folder_are_read_whatever_their_spelling(layout):
    (layout / "sub").mkdir()
    for given in ("inside.npz", "./inside.npz", "sub/../inside.npz", str(layout / "inside.npz")):
        assert load_source({"kind": "npz", "path": given}, layout).arrays["x"].shape == (20, 4)


def test_every_path_field_is_checked(layout):
    np.savez(layout / "test.npz", x=np.zeros((2, 4)), y=np.zeros(2))
    source = {"kind": "npz", "path": "inside.npz", "test_path": "../secret.npz"}
    with pytest.raises(OutsideDataError, match=r"^data\.source\.test_path: '\.\./secret\.npz'"):
        load_source(source, layout)
    csv = {"kind": "csv", "path": "../x.csv"}
    with pytest.raises(OutsideDataError, match=r"^data\.source\.path: '\.\./x\.csv'"):
        load_source(csv, layout)
    (layout / "a").write_bytes(b"")
    (layout / "b").write_bytes(b"")
    for key in ("images", "labels"):
        idx = {"kind": "idx", "images": "a", "labels": "b", key: "../../etc/passwd"}
        with pytest.raises(OutsideDataError, match=rf"^data\.source\.{key}: "):
            load_source(idx, layout)


def test_a_symlinked_file_inside_an_idx_folder_is_refused(layout):
    (layout / "mnist").mkdir()
    outside = layout.parent / "train-images-idx3-ubyte"
    outside.write_bytes(b"\0\0\x08\x03" + bytes(12))
    os.symlink(outside, layout / "mnist" / "train-images-idx3-ubyte")
    with pytest.raises(OutsideDataError, match=r"^data\.source\.path: 'mnist/train-images"):
        load_source({"kind": "idx", "path": "mnist"}, layout)


def test_build_run_takes_the_allow_flag(layout):
    project = load(project_reading(layout, "../secret.npz"))
    with pytest.raises(OutsideDataError):
        build_run(project)
    run = build_run(project, allow_outside_data=True)
    assert run.data.train["inputs"]["pixels"].shape[1:] == (4,)
    inside = load(project_reading(layout, "inside.npz"))
    assert build_run(inside).data.train["inputs"]["pixels"].shape[1:] == (4,)


def test_the_command_line_refuses_in_one_line_and_allows_with_the_flag(layout, capsys):
    file = project_reading(layout, "../secret.npz")
    weights = layout / "w.npz"
    args = ["--quiet", "--epochs", "0", "--weights-out", str(weights)]
    assert main(["train", str(file), *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside the project folder" in err
    assert "--allow-outside-data" in err and not weights.exists()
    assert main(["train", str(file), *args, "--allow-outside-data"]) == 0
    assert weights.exists()
    capsys.readouterr()
    assert main(["evaluate", str(file), "--weights", str(weights)]) == 1
    assert "outside the project folder" in capsys.readouterr().err
    assert main(["evaluate", str(file), "--weights", str(weights), "--allow-outside-data"]) == 1
    assert "no test split" in capsys.readouterr().err  # got past the data: no test split set
    out = layout / "m.py"
    assert main(["export", str(file), "--to", "keras", "-o", str(out), "--data"]) == 1
    assert "outside the project folder" in capsys.readouterr().err
    flag = "--allow-outside-data"
    assert main(["export", str(file), "--to", "keras", "-o", str(out), "--data", flag]) == 0
    assert (layout / "m_data.npz").exists()


def test_the_bundled_samples_data_is_readable_from_a_copy_saved_anywhere(tmp_path):
    """A sample opened as a copy reads its data by absolute path from any project folder."""
    bundled = DIGITS.parent / "data" / "digits_two_heads.npz"
    project = load(DIGITS.parent / "two_in_two_out.json")
    project.data["source"]["path"] = str(bundled.resolve())
    project.path = tmp_path / "elsewhere" / "copy.json"
    run = build_run(project)
    assert len(run.data.train["inputs"]["image"]) > 0
