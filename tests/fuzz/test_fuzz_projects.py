"""Fuzzed project files: loading, validating, summarizing, saving and building a run
raise only nodenet's own errors, each with a message (see the package docstring)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodenet.cli import main
from nodenet.errors import ProjectFileError
from nodenet.graph.project import Project, analyze, load, save, validate
from nodenet.graph.summary import summarize
from nodenet.runner import build_run
from tests.fuzz.harness import attempt, examples, guarded
from tests.fuzz.strategies import (
    mutated_samples,
    nested,
    project_docs,
    project_texts,
    structured_projects,
)


def exercise(project: Project, folder: Path) -> None:
    """Everything a project goes through before training, each step on its own."""
    analysis = analyze(project)
    for problem in analysis.problems:
        assert str(problem).strip()
    attempt(validate, project)
    summary = attempt(summarize, project)
    if summary is not None:
        summary.to_text(), summary.to_dict()
    path = attempt(save, project, folder / "project.json")
    if path is not None:
        again = load(path)  # what was saved loads again
        assert again.to_dict() == Project.from_json(project.to_json()).to_dict()
    project.path = folder / "project.json"
    attempt(build_run, project)


def check_document(doc) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Project.from_dict(doc)
        exercise(project, Path(tmp))


@pytest.mark.slow
@settings(max_examples=examples(50))
@given(project_docs)
def test_any_json_document(doc):
    with guarded("project documents (any JSON)"):
        check_document(doc)


@pytest.mark.slow
@settings(max_examples=examples(80))
@given(structured_projects())
def test_project_shaped_documents(doc):
    with guarded("project documents (catalog-shaped)"):
        check_document(doc)


@pytest.mark.slow
@settings(max_examples=examples(80))
@given(mutated_samples())
def test_mutated_sample_projects(doc):
    with guarded("project documents (mutated samples)"):
        check_document(doc)


def _cli(*argv: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


@pytest.mark.slow
@settings(max_examples=examples(40))
@given(project_texts())
def test_damaged_project_files_on_the_command_line(data):
    with guarded("project files (damaged bytes, CLI)"), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.json"
        path.write_bytes(data)
        for command in (["validate"], ["summary", "--json"]):
            assert _cli(*command, str(path)) in (0, 1), f"nodenet {command[0]} crashed"
        project = load(path)
        exercise(project, Path(tmp))


@pytest.mark.slow
@settings(max_examples=examples(15))
@given(st.sampled_from(["train", "evaluate"]), project_texts())
def test_training_commands_refuse_damaged_files_in_one_line(command, data):
    with (
        guarded("project files (damaged bytes, train/evaluate)"),
        tempfile.TemporaryDirectory() as tmp,
    ):
        path = Path(tmp) / "p.json"
        path.write_bytes(data)
        args = (
            [command, str(path), "--quiet", "--epochs", "0"]
            if command == "train"
            else [command, str(path), "--weights", str(Path(tmp) / "none.npz")]
        )
        assert _cli(*args) in (0, 1)


def test_regression_deep_nesting_is_refused_by_name():
    """Found by fuzzing: params nested 1,000 lists deep passed json.loads, then
    ``copy.deepcopy`` raised RecursionError while the document was read."""
    doc = {"format": "nodenet-project", "version": 1, "nodes": [{"id": "a", "type": "Dense"}]}
    doc["nodes"][0]["params"] = {"units": nested(1000)}
    with pytest.raises(ProjectFileError, match=r"params\.units\.0\.0: values nested more than 64"):
        Project.from_dict(doc)


def test_regression_unpaired_surrogates_are_refused_on_load_and_save(tmp_path):
    """Found by fuzzing (once the strategies included JSON escapes like \\ud800): such
    text loaded, then saving raised UnicodeEncodeError instead of a nodenet error."""
    text = '{"format": "nodenet-project", "version": 1, "name": "a\\ud800b"}'
    with pytest.raises(ProjectFileError, match=r"name: text holds an unpaired surrogate"):
        Project.from_json(text)
    project = Project(name="a\ud800b")
    with pytest.raises(ProjectFileError, match=r"p\.json: cannot be saved: text holds '\\ud800'"):
        save(project, tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


def test_regression_an_optimizer_name_that_is_not_text():
    """Found by the long profile: ``"optimizer": {"name": [..]}`` reached the optimizer
    registry's ``in`` test: TypeError (unhashable list) out of validate."""
    doc = {"format": "nodenet-project", "version": 1, "training": {"optimizer": {"name": []}}}
    problems = [str(p) for p in validate(Project.from_dict(doc))]
    assert "training.optimizer.name: must be an optimizer's name (got [])" in problems
