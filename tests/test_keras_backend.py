"""Keras without ceremony: an installed backend is chosen when KERAS_BACKEND is unset, by
nodenet and by the Keras modules it exports; the import-keras example of docs/cli.md runs
as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodenet import keras_backend
from nodenet.cli import main
from nodenet.errors import NodenetError
from nodenet.keras_backend import PREFERENCE, backend_choice_source, choose_backend

ROOT = Path(__file__).parent.parent
ENV_WITHOUT_BACKEND = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}


def installed_only(monkeypatch, *names: str) -> None:
    """Pretend only ``names`` of the backends are installed."""
    real = keras_backend.importlib.util.find_spec

    def find_spec(name, *args):
        if name in PREFERENCE:
            return object() if name in names else None
        return real(name, *args)

    monkeypatch.setattr(keras_backend.importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize(
    "installed,chosen",
    [
        (("tensorflow", "jax", "torch"), "tensorflow"),
        (("jax", "torch"), "jax"),
        (("torch",), "torch"),
        (("torch", "tensorflow"), "tensorflow"),
    ],
)
def test_unset_backend_becomes_the_first_installed(monkeypatch, installed, chosen):
    installed_only(monkeypatch, *installed)
    for env in ({}, {"KERAS_BACKEND": ""}):
        assert choose_backend(env) == chosen
        assert env == {"KERAS_BACKEND": chosen}


def test_a_backend_the_user_named_is_kept(monkeypatch):
    installed_only(monkeypatch, "torch")
    env = {"KERAS_BACKEND": "jax"}
    assert choose_backend(env) == "jax" and env == {"KERAS_BACKEND": "jax"}


def test_no_backend_installed_is_one_sentence_naming_them(monkeypatch):
    installed_only(monkeypatch)
    env: dict[str, str] = {}
    with pytest.raises(NodenetError, match="tensorflow, jax, torch") as err:
        choose_backend(env)
    assert "\n" not in str(err.value) and env == {}


def test_the_generated_choice_follows_the_same_rule(tmp_path):
    """The statement the exported modules run, in a Python without KERAS_BACKEND."""
    script = tmp_path / "choice.py"
    script.write_text(
        f"import importlib.util\nimport os\n\n{backend_choice_source()}\n"
        'print(os.environ["KERAS_BACKEND"])\n'
    )
    expected = keras_backend.installed_backends()[:1] or ["tensorflow"]
    for env, chosen in (
        (ENV_WITHOUT_BACKEND, expected[0]),
        ({**ENV_WITHOUT_BACKEND, "KERAS_BACKEND": ""}, expected[0]),
        ({**ENV_WITHOUT_BACKEND, "KERAS_BACKEND": "jax"}, "jax"),
    ):
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == chosen


@pytest.mark.ref
@pytest.mark.slow
def test_an_exported_keras_module_runs_without_keras_backend(tmp_path):
    pytest.importorskip("keras")
    installed = keras_backend.installed_backends()
    module = tmp_path / "digits_keras.py"
    sample = ROOT / "sample_projects" / "digits_mlp.json"
    assert main(["export", str(sample), "--to", "keras", "-o", str(module)]) == 0
    code = (
        "import digits_keras as m\n"
        "print(m.keras.backend.backend(), m.build_model().count_params())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**ENV_WITHOUT_BACKEND, "PYTHONWARNINGS": "ignore"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [installed[0], "26122"]


@pytest.mark.ref
@pytest.mark.slow
def test_the_import_keras_example_of_the_docs_runs_as_written(tmp_path):
    """docs/cli.md: the Python that saves a Keras model, then import-keras and summary."""
    pytest.importorskip("keras")
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text[text.index("## import-keras") :]
    start = section.index("```python\n") + len("```python\n")
    (tmp_path / "make_small.py").write_text(section[start : section.index("```", start)])
    env = {**ENV_WITHOUT_BACKEND, "PYTHONWARNINGS": "ignore"}
    for command in (
        [sys.executable, "make_small.py"],
        [sys.executable, "-m", "nodenet", "import-keras", "small.json", "-o", "small_project.json"],
        [sys.executable, "-m", "nodenet", "summary", "small_project.json"],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    assert "Total params: 771 (3.01 KB)" in done.stdout
    assert "small_project.json: 2 blocks from small.json" in section
