"""Every block has both exporters, and each declared example exports exactly.

The catalog contract of export: for every block of ``block_types()`` and each
of its EXAMPLES, the Keras and PyTorch snippets render; the Keras layer they
describe is the one the block's full settings make (so arguments left out are
Keras's defaults) and no argument Keras requires is left out; the PyTorch state
holds every weight. Then a one-block graph of each example is exported with
weights and run in Keras and in PyTorch: same parameter counts, same
predictions as nodenet, same loss and weights after one SGD step. Adding a
block needs no new test code.
"""

from __future__ import annotations

import importlib.util
import inspect
import json

import numpy as np
import pytest

from nodenet.engine.catalog import block_class, block_types
from nodenet.export._code import global_names
from nodenet.export.blocks import exporter
from nodenet.export.snippets import TORCH_HELPERS
from tests.support.generated import Case, check_keras, check_torch, example_graph
from tests.support.gradcheck import concrete

BLOCKS = block_types()
COMPUTING = [b for b in BLOCKS if b not in ("Input", "Output")]


@pytest.mark.parametrize("name", BLOCKS)
def test_every_example_renders_both_exporters(name):
    cls = block_class(name)
    for example in cls.EXAMPLES:
        layer = cls(example.params, "node")
        export = exporter(layer)
        shapes = [] if cls.N_INPUTS == 0 else list(example.input_shapes)
        keras_class, args = export.keras_layer()
        assert keras_class.isidentifier() and isinstance(args, dict)
        if name in ("Input", "Output"):
            continue
        module = export.torch_module(shapes)
        assert module is None or isinstance(module, str)
        expr = export.torch_forward("self.node", [f"x{i}" for i in range(len(shapes))], shapes)
        assert isinstance(expr, str) and expr
        unknown = global_names(expr) - {
            "self",
            "torch",
            "F",
            "nn",
            "x0",
            "x1",
            "x2",
            "True",
            "False",
            "None",
        }
        assert unknown <= set(TORCH_HELPERS), f"{expr} calls {unknown - set(TORCH_HELPERS)}"
        specs = layer.weight_specs([concrete(s) for s in shapes])
        weights = {s.name: np.zeros(s.shape, np.float32) for s in specs}
        state = export.torch_state(weights, shapes)
        assert sum(a.size for a in state.values()) == sum(s.size for s in specs)
        assert module is not None or not specs, "weights need a submodule"
        refs = export.torch_weights("self.node", shapes)
        assert {s.name for s in specs} <= set(refs), "every weight needs its torch tensors"


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")
    return pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras export")


@pytest.mark.ref
@pytest.mark.parametrize("name", COMPUTING)
def test_keras_snippet_builds_the_blocks_keras_layer(name, keras):
    cls = block_class(name)
    _skip_string_blocks_without_tensorflow(cls)
    for example in cls.EXAMPLES:
        export = exporter(cls(example.params, "node"))
        keras_class, args = export.keras_layer()
        source = _call_source(keras_class, args, export.KERAS_REQUIRED)
        layer = export.layer
        namespace = {"keras": keras, "layers": keras.layers, **_application_classes()}
        exported = eval(source, namespace)  # our own source
        reference = _reference(name, layer.config)
        assert _config(exported) == _config(reference), source


def _skip_string_blocks_without_tensorflow(cls) -> None:
    if cls.EXAMPLES[0].input_dtype == "string" and importlib.util.find_spec("tensorflow") is None:
        pytest.skip("Keras's TextVectorization needs TensorFlow, which is not installed")


def _call_source(keras_class: str, args: dict, required: tuple) -> str:
    from nodenet.export._code import keras_class as qualified_class
    from nodenet.export.snippets import arguments

    args = dict(args)
    positional = [args.pop(k) for k in required if k in args]
    return f"{qualified_class(keras_class)}({arguments(positional, args)})"


def _application_classes() -> dict:
    """keras.applications' own layers (LayerScale), as the generated code imports them."""
    from tests.support.keras_graphs import APPLICATION_LAYERS, keras_class

    return {name: keras_class(name) for name in APPLICATION_LAYERS}


def _reference(name: str, config: dict):
    """The Keras layer with every setting written out (tests/engine's translation)."""
    from tests.support.keras_graphs import to_keras

    return to_keras(name, config)


def _config(layer) -> dict:
    config = json.loads(json.dumps(layer.get_config()))  # tuples and lists alike
    config.pop("name", None)
    for inner in ("layer", "backward_layer"):
        if inner in config:
            config[inner] = {**config[inner], "config": _without_name(config[inner]["config"])}
    return config


def _without_name(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "name"}


@pytest.mark.ref
@pytest.mark.parametrize("name", COMPUTING)
def test_keras_required_arguments_are_written(name, keras):
    from tests.support.keras_graphs import keras_class as class_of
    from tests.support.keras_graphs import keras_kwargs

    cls = block_class(name)
    export = exporter(cls(cls.EXAMPLES[0].params))
    keras_class = export.keras_layer()[0]
    signature = inspect.signature(class_of(keras_class).__init__)
    required = {
        p.name
        for p in signature.parameters.values()
        if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    } - {"self"}
    if name in ("Bidirectional", "TimeDistributed"):
        required -= {"layer"}  # written from the block's own settings
    assert required <= set(export.KERAS_REQUIRED), f"Keras requires {required}"
    assert set(export.KERAS_REQUIRED) <= set(keras_kwargs(name, cls(cls.EXAMPLES[0].params).config))


@pytest.mark.ref
@pytest.mark.parametrize("name", COMPUTING)
def test_examples_export_exactly(name, tmp_path, keras):
    """Every example, as a one-block graph: counts, predictions and an SGD step agree."""
    if block_class(name).EXAMPLES[0].input_dtype == "string":
        pytest.skip(
            "a string block is fed text, not the random arrays of this check, and has nothing "
            "to train: tests/export/test_text_vectorization_export.py runs its exports on text"
        )
    example_count = len(block_class(name).EXAMPLES)
    for index in range(example_count):
        example = block_class(name).EXAMPLES[index]
        case = Case(example_graph(name, index), seed=index, int_high=example.int_high)
        for check in (check_torch, check_keras):
            try:
                check(case, tmp_path)
            except AssertionError as err:
                raise AssertionError(f"{name} example {index}, {check.__name__}: {err}") from None
