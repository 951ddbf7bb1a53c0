"""One contract, every block: adding a block to the catalog needs no new test code.

For each block and each of its declared examples: the parameters describe
themselves, the config round-trips through JSON, ``infer_shape`` equals the
shape ``forward`` produces, the weights are what ``weight_specs`` says, and
``backward`` agrees with finite differences (float64) for inputs and weights.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from nodenet.engine.catalog import CATEGORIES, LAYERS, block_types
from nodenet.engine.params import Param
from tests.support.gradcheck import (
    BATCH,
    check_gradients,
    concrete,
    make_inputs,
    make_weights,
    run_forward,
)

CASES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name in block_types()
    for i in range(len(LAYERS.get(name).EXAMPLES))
]
BLOCKS = block_types()


@pytest.mark.parametrize("name", BLOCKS)
def test_block_declares_itself(name):
    cls = LAYERS.get(name)
    assert name == cls.TYPE
    assert cls.CATEGORY in CATEGORIES
    assert cls.doc(), f"{name} needs a one-line doc"
    assert cls.EXAMPLES, f"{name} needs at least one example"
    names = [p.name for p in cls.PARAMS]
    assert len(names) == len(set(names))
    for p in cls.PARAMS:
        assert isinstance(p, Param)
        assert p.help, f"{name}.{p.name} needs a one-line help"
        assert p.coerce(p.default) == p.default, f"{name}.{p.name}: default fails its own check"
    assert set(cls.KEY_PARAMS) <= set(names)
    for example in cls.EXAMPLES:
        if cls.N_INPUTS is not None and cls.N_INPUTS > 0:
            assert len(example.input_shapes) == cls.N_INPUTS
        if cls.N_INPUTS is None:
            assert len(example.input_shapes) >= cls.MIN_INPUTS


@pytest.mark.parametrize("name,index", CASES)
def test_config_round_trips_through_json(name, index):
    cls = LAYERS.get(name)
    layer = cls(cls.EXAMPLES[index].params, "node")
    config = json.loads(json.dumps(layer.get_config()))
    again = cls.from_config(config, "node")
    assert again.get_config() == layer.get_config()
    assert set(config) == {p.name for p in cls.PARAMS}


@pytest.mark.parametrize("name,index", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_infer_shape_matches_forward(name, index, training):
    cls = LAYERS.get(name)
    example = cls.EXAMPLES[index]
    layer = cls(example.params, "node")
    declared = layer.infer_shape(list(example.input_shapes))
    rng = np.random.default_rng(1)
    shapes = [concrete(s) for s in example.input_shapes]
    inputs = make_inputs(layer, example, rng, dtype=np.float32)
    if cls.N_INPUTS == 0:  # Input blocks are fed their data
        inputs = [rng.normal(size=(BATCH, *concrete(declared))).astype(np.float32)]
        shapes = []
    weights = make_weights(layer, shapes, rng, dtype=np.float32)
    for spec in layer.weight_specs(shapes):
        assert weights[spec.name].shape == spec.shape
    out, _ = run_forward(layer, weights, inputs, training=training)
    if layer.n_outputs() > 1:  # a list of arrays, one per output, as infer_shapes says
        assert isinstance(out, list) and len(out) == layer.n_outputs()
        for array, shape in zip(out, layer.infer_shapes(shapes), strict=True):
            assert array.shape == (BATCH, *concrete(shape))
            assert array.dtype == np.float32 and np.all(np.isfinite(array))
        out = out[0]
    assert out.shape == (BATCH, *concrete(layer.infer_shape(shapes) if shapes else declared))
    if None not in declared:
        assert out.shape[1:] == tuple(declared)
    assert out.dtype == np.float32, f"{name} must keep float32 (got {out.dtype})"
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name,index", CASES)
def test_backward_matches_finite_differences(name, index):
    cls = LAYERS.get(name)
    if cls.N_INPUTS == 0:
        pytest.skip("Input blocks have no backward of their own (they are fed data)")
    example = cls.EXAMPLES[index]
    check_gradients(cls(example.params, "node"), example)


@pytest.mark.parametrize("name", BLOCKS)
def test_unknown_parameter_is_refused_with_its_name(name):
    from nodenet.errors import ParamError

    cls = LAYERS.get(name)
    with pytest.raises(ParamError, match="no_such_setting") as info:
        cls.from_config({"no_such_setting": 1})
    assert name in str(info.value)


def test_registry_refuses_a_second_block_with_the_same_name():
    with pytest.raises(ValueError, match="registered twice"):
        LAYERS.register("Dense")(object)
