"""SimpleRNN, LSTM, GRU and Bidirectional against Keras 3 (torch backend).

For every declared example and a few more settings: the output shape, the
parameter count, the weight order and shapes (``set_weights`` takes nodenet's
arrays as they are), the forward with the same weights, and the gradients of
the input and of every weight against torch autograd through the Keras layer.
Dropout is compared in training by handing Keras the masks nodenet drew, so
which mask meets which gate, and its reuse at every step, is Keras's.
"""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest

from nodenet.engine.catalog import LAYERS, Context
from nodenet.engine.initializers import initialize
from nodenet.engine.layers import rnn_ops
from nodenet.engine.layers.recurrent import wrapped
from nodenet.engine.layers.rnn_cells import CELLS
from nodenet.errors import ParamError

os.environ.setdefault("KERAS_BACKEND", "torch")

BLOCKS = ("SimpleRNN", "LSTM", "GRU", "Bidirectional")
BATCH = 3

EXTRA = [
    ("LSTM", {"units": 3, "activation": "softmax", "recurrent_activation": "relu"}, (4, 2)),
    ("LSTM", {"units": 2, "unit_forget_bias": False, "go_backwards": True}, (3, 3)),
    ("GRU", {"units": 3, "activation": "softmax", "return_sequences": True}, (3, 2)),
    ("GRU", {"units": 2, "reset_after": False, "dropout": 0.4, "go_backwards": True}, (4, 3)),
    ("GRU", {"units": 2, "recurrent_dropout": 0.5}, (3, 2)),
    ("GRU", {"units": 3, "dropout": 0.4, "return_sequences": True}, (4, 2)),
    ("GRU", {"units": 3, "activation": "relu", "recurrent_activation": "tanh"}, (4, 2)),
    ("SimpleRNN", {"units": 4, "activation": "sigmoid", "recurrent_dropout": 0.5}, (3, 2)),
    (
        "Bidirectional",
        {
            "layer": wrapped(
                "LSTM", units=2, dropout=0.3, recurrent_dropout=0.3, return_sequences=True
            ),
            "merge_mode": "ave",
        },
        (3, 2),
    ),
    (
        "Bidirectional",
        {"layer": wrapped("GRU", units=2, recurrent_dropout=0.4), "merge_mode": "concat"},
        (3, 2),
    ),
    ("Bidirectional", {"layer": wrapped("SimpleRNN", units=2), "merge_mode": "sum"}, (4, 3)),
]
CASES = [
    pytest.param(name, ex.params, ex.input_shapes[0], id=f"{name}-{i}")
    for name in BLOCKS
    for i, ex in enumerate(LAYERS.get(name).EXAMPLES)
] + [pytest.param(*case, id=f"{case[0]}-extra{i}") for i, case in enumerate(EXTRA)]


def _keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def keras_layer(name: str, config: dict, dtype: str):
    """The Keras layer nodenet's full ``config`` describes."""
    keras = _keras()
    if name == "Bidirectional":
        inner = LAYERS.get(config["layer"]["type"])(config["layer"]["params"])
        return keras.layers.Bidirectional(
            keras_layer(inner.TYPE, inner.config, dtype),
            merge_mode=config["merge_mode"],
            dtype=dtype,
        )
    cls = getattr(keras.layers, name)
    accepted = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in config.items() if k in accepted}
    return cls(dtype=dtype, **kwargs)


def keras_cells(layer) -> list:
    if hasattr(layer, "forward_layer"):
        return [layer.forward_layer.cell, layer.backward_layer.cell]
    return [layer.cell]


def give_keras_masks(klayer, block, batch, n_in, dtype, seed):
    """Draw nodenet's dropout masks (as its forward will) and preset them in Keras's cells."""
    import torch

    rng = np.random.default_rng(seed)
    recurrent = getattr(block, "inner", block)  # Bidirectional's wrapped layer
    c, kind = recurrent.config, recurrent.TYPE
    for cell in keras_cells(klayer):
        masks = CELLS[kind].draw_masks(c, Context(True, rng), batch, n_in, dtype)
        per_gate = getattr(cell, "dropout_mask_count", None) is not None
        for attr, m in (("_dropout_mask", masks.inp), ("_recurrent_dropout_mask", masks.rec)):
            if m is not None:
                m = [torch.from_numpy(g) for g in m] if per_gate else torch.from_numpy(m[0])
            setattr(cell, attr, m)


def setup(name, params, in_shape, dtype, seed=0):
    """nodenet block, built Keras layer, input and shared weights."""
    block = LAYERS.get(name)(params, "node")
    klayer = keras_layer(name, block.config, "float32" if dtype == np.float32 else "float64")
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, size=(BATCH, *in_shape)).astype(dtype)
    klayer.build((None, *in_shape))
    specs = block.weight_specs([in_shape])
    weights = {s.name: rng.normal(0, 0.6, size=s.shape).astype(dtype) for s in specs}
    klayer.set_weights([weights[s.name] for s in specs])
    return block, klayer, x, weights


def run_keras(klayer, x, training, block, seed):
    import torch

    xt = torch.tensor(x, requires_grad=True)
    if training:
        give_keras_masks(klayer, block, x.shape[0], x.shape[-1], x.dtype, seed)
    return xt, klayer(xt, training=training)


@pytest.mark.ref
@pytest.mark.parametrize("name,params,in_shape", CASES)
def test_shape_count_and_weight_layout_match_keras(name, params, in_shape):
    block, klayer, _, _ = setup(name, params, in_shape, np.float32)
    specs = block.weight_specs([in_shape])
    assert [s.shape for s in specs] == [tuple(v.shape) for v in klayer.weights]
    for spec, var in zip(specs, klayer.weights, strict=True):
        direction, _, short = spec.name.rpartition("/")
        assert var.path.endswith("/" + short)
        assert direction == "" or f"/{direction}_" in var.path
    assert sum(block.count_params([in_shape])) == klayer.count_params()
    for steps in (in_shape[0], None):
        expected = klayer.compute_output_shape((None, steps, in_shape[1]))
        shapes = [(None, *s) for s in block.infer_shapes([(steps, in_shape[1])])]
        assert shapes == ([tuple(expected)] if len(shapes) == 1 else [*expected])


@pytest.fixture(params=[True, False], ids=["vector-tanh", "exp"])
def gates_through(request, monkeypatch):
    """Both ways the cells take their gates: through numpy's tanh (machines where it is
    vectorized) and through exp (the others); each machine uses one of them."""
    monkeypatch.setattr(rnn_ops, "VECTOR_TANH", request.param)
    return request.param


@pytest.mark.ref
@pytest.mark.parametrize("name,params,in_shape", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_forward_float32_matches_keras(name, params, in_shape, training, gates_through):
    block, klayer, x, weights = setup(name, params, in_shape, np.float32)
    _, expected = run_keras(klayer, x, training, block, seed=5)
    out, _ = block.forward(weights, [x], Context(training, np.random.default_rng(5)))
    outs, expected = _listed(out, expected)  # with return_state: [output, *states]
    for ours, theirs in zip(outs, expected, strict=True):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=2e-5, atol=2e-6)


def _listed(out, kout) -> tuple[list, list]:
    """nodenet's and Keras's outputs as lists of the same length."""
    if isinstance(out, list):
        assert len(out) == len(kout)
        return out, list(kout)
    return [out], [kout]


@pytest.fixture
def keras_float64_tolerance(monkeypatch):
    """Let Keras's torch backend compute in float64; the tolerance that then holds.

    Keras maps float64 results of ``ops.matmul`` & co. to float32 on torch (to
    agree with JAX's default); lifting that map makes it an exact float64
    reference. Should the private map move, compare at float32 precision.
    """
    _keras()
    try:
        from keras.src.backend.common import dtypes
    except ImportError:
        return 2e-5
    if "float64" not in getattr(dtypes, "BIT64_TO_BIT32_DTYPE", {}):
        return 2e-5
    monkeypatch.setitem(dtypes.BIT64_TO_BIT32_DTYPE, "float64", "float64")
    return 1e-9


@pytest.mark.ref
@pytest.mark.parametrize("name,params,in_shape", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_gradients_match_torch_autograd_through_keras(
    name, params, in_shape, training, keras_float64_tolerance, gates_through
):
    tol = keras_float64_tolerance
    block, klayer, x, weights = setup(name, params, in_shape, np.float64, seed=1)
    xt, kout = run_keras(klayer, x, training, block, seed=7)
    out, cache = block.forward(weights, [x], Context(training, np.random.default_rng(7)))
    outs, kouts = _listed(out, kout)  # with return_state, every state gets a probe too
    rng = np.random.default_rng(2)
    probes = [rng.normal(size=tuple(k.shape)) for k in kouts]
    import torch

    sum((k * torch.from_numpy(p)).sum() for k, p in zip(kouts, probes, strict=True)).backward()
    for ours, theirs in zip(outs, kouts, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=tol, atol=tol / 100)
    (dx,), grads = block.backward(weights, cache, probes if isinstance(out, list) else probes[0])
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol / 100)
    specs = block.weight_specs([in_shape])
    assert set(grads) == {s.name for s in specs}
    for spec, var in zip(specs, klayer.weights, strict=True):
        np.testing.assert_allclose(
            grads[spec.name], var.value.grad.numpy(), rtol=tol, atol=tol / 100, err_msg=spec.name
        )


@pytest.mark.ref
@pytest.mark.parametrize("name", BLOCKS)
def test_parameter_names_and_defaults_are_keras(name):
    keras = _keras()
    ours = LAYERS.get(name)({}, "node").config
    kinds = ("LSTM", "GRU", "SimpleRNN") if name == "Bidirectional" else (name,)
    units = LAYERS.get(kinds[0])({}).config["units"]
    refs = [getattr(keras.layers, kind)(units) for kind in kinds]
    if name == "Bidirectional":
        wrapper = keras.layers.Bidirectional(refs[0])
        assert (ours["layer"]["type"], ours["merge_mode"]) == ("LSTM", wrapper.merge_mode)
    for key, value in ours.items():
        if key in ("layer", "merge_mode", "units"):
            continue
        owners = [ref for ref in refs if key in ref.get_config()]
        assert owners, f"{name}.{key} is not a Keras argument"
        ref = owners[0]
        if key.endswith("_initializer"):
            assert type(keras.initializers.get(value)) is type(getattr(ref, key)), key
        else:
            assert ref.get_config()[key] == value, key


@pytest.mark.ref
@pytest.mark.parametrize("bias_init", ["zeros", "ones"])
@pytest.mark.parametrize("name", ["LSTM", "Bidirectional"])
def test_unit_forget_bias_starts_like_keras(name, bias_init):
    keras = _keras()
    params = {"units": 3, "bias_initializer": bias_init}
    if name == "Bidirectional":
        params = {"layer": wrapped("LSTM", **params)}
    block = LAYERS.get(name)(params, "node")
    ref = keras.layers.LSTM(3, bias_initializer=bias_init)
    ref.build((None, 4, 2))
    expected = keras.ops.convert_to_numpy(ref.cell.bias)
    for spec in block.weight_specs([(4, 2)]):
        if spec.name.endswith("bias"):
            got = initialize(spec.initializer, spec.shape, np.random.default_rng(0), np.float32)
            np.testing.assert_array_equal(got, expected)


# -- hand-derived checks, no reference library needed ---------------------------


def test_input_dropout_mask_is_drawn_once_and_reused_at_every_step():
    # zero recurrent kernel, identity kernel, linear activation: h_t = mask * x_t
    block = LAYERS.get("SimpleRNN")(
        {
            "units": 5,
            "activation": "linear",
            "use_bias": False,
            "dropout": 0.5,
            "return_sequences": True,
        },
        "node",
    )
    weights = {"kernel": np.eye(5), "recurrent_kernel": np.zeros((5, 5))}
    x = np.random.default_rng(0).uniform(1, 2, size=(16, 6, 5))
    out, _ = block.forward(weights, [x], Context(True, np.random.default_rng(3)))
    ratio = out / x
    assert set(np.round(np.unique(ratio), 12)) == {0.0, 2.0}
    np.testing.assert_array_equal(ratio, np.broadcast_to(ratio[:, :1], ratio.shape))
    inference, _ = block.forward(weights, [x], Context(False, np.random.default_rng(3)))
    np.testing.assert_array_equal(inference, x)


def test_recurrent_dropout_mask_is_reused_at_every_step():
    # identity recurrent kernel, bias one, linear: h1 = 1, h_t = 1 + m * h_{t-1}
    block = LAYERS.get("SimpleRNN")(
        {
            "units": 6,
            "activation": "linear",
            "recurrent_dropout": 0.5,
            "return_sequences": True,
            "bias_initializer": "ones",
        },
        "node",
    )
    weights = {"kernel": np.zeros((1, 6)), "recurrent_kernel": np.eye(6), "bias": np.ones(6)}
    out, _ = block.forward(weights, [np.zeros((20, 4, 1))], Context(True, np.random.default_rng(1)))
    m = out[:, 1] - 1
    assert set(np.unique(m)) == {0.0, 2.0}
    np.testing.assert_allclose(out[:, 2], 1 + m * out[:, 1])
    np.testing.assert_allclose(out[:, 3], 1 + m * out[:, 2])


def test_go_backwards_returns_the_reversed_sequence_of_a_forward_run():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3))
    for kind in CELLS:
        params = {"units": 4, "return_sequences": True}
        ahead = LAYERS.get(kind)(params, "a")
        back = LAYERS.get(kind)({**params, "go_backwards": True}, "b")
        weights = {s.name: rng.normal(size=s.shape) for s in ahead.weight_specs([(5, 3)])}
        y_back, _ = back.forward(weights, [x], Context())
        y_flip, _ = ahead.forward(weights, [x[:, ::-1]], Context())
        np.testing.assert_allclose(y_back, y_flip)


@pytest.mark.parametrize("name", BLOCKS)
def test_a_non_sequence_input_is_refused_in_one_sentence(name):
    from nodenet.errors import ShapeError

    with pytest.raises(ShapeError, match="3-D input"):
        LAYERS.get(name)({}, "node").infer_shape([(4,)])


# -- the wrapper: version-1 projects -------------------------------------------------


def test_version_1_bidirectional_params_become_the_wrapped_layer():
    from nodenet.graph.migrate import bidirectional_v1_to_v2

    v1 = {"layer": "LSTM", "units": 16, "reset_after": False, "merge_mode": "sum"}
    assert bidirectional_v1_to_v2(v1) == {
        "layer": {"type": "LSTM", "params": {"units": 16}},  # reset_after: not an LSTM's
        "merge_mode": "sum",
    }
    assert bidirectional_v1_to_v2({"units": 4}) == {"layer": wrapped("LSTM", units=4)}
    gru = bidirectional_v1_to_v2({"layer": "GRU", "unit_forget_bias": False, "reset_after": False})
    assert gru == {"layer": wrapped("GRU", reset_after=False)}


def test_bidirectional_keeps_its_version_1_weight_names_and_counts():
    """Weights files saved before the wrapper still load: same keys, same shapes."""
    from nodenet.graph.migrate import bidirectional_v1_to_v2

    block = LAYERS.get("Bidirectional")(bidirectional_v1_to_v2({"layer": "GRU", "units": 3}))
    specs = block.weight_specs([(5, 2)])
    names = ("kernel", "recurrent_kernel", "bias")
    assert [s.name for s in specs] == [f"{d}/{n}" for d in ("forward", "backward") for n in names]
    assert [s.shape for s in specs[:3]] == [(2, 9), (3, 9), (2, 9)]
    assert block.count_params([(5, 2)]) == (2 * (18 + 27 + 18), 0)


def test_the_wrapped_layer_is_checked_with_its_own_parameters():
    cls = LAYERS.get("Bidirectional")
    with pytest.raises(ParamError, match=r"layer: units must be an integer >= 1"):
        cls({"layer": wrapped("LSTM", units=0)})
    with pytest.raises(ParamError, match=r"layer must be a block of type SimpleRNN, LSTM, GRU"):
        cls({"layer": wrapped("Dense", units=3)})
    with pytest.raises(ParamError, match=r"layer: go_backwards is set by the wrapper"):
        cls({"layer": wrapped("GRU", go_backwards=True)})
    with pytest.raises(ParamError, match=r"layer: LSTM has no parameter 'reset_after'"):
        cls({"layer": wrapped("LSTM", reset_after=False)})
    same = cls({"layer": wrapped("GRU", units=32, go_backwards=False)}).config["layer"]
    assert same == {"type": "GRU", "params": {}}  # defaults left out: one value, one meaning


def test_the_gates_through_exp_saturate_without_warnings_and_agree_with_tanh():
    """exp overflows far from zero: tanh and sigmoid must still reach -1, 1 and 0, 1."""
    z = np.array([-1e4, -60.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 60.0, 1e4], np.float32)
    wide = z.astype(np.float64)
    tanh = np.tanh(wide)
    sigmoid = np.exp(np.minimum(wide, 0)) / (1 + np.exp(-np.abs(wide)))
    out = np.empty_like(z)
    with pytest.MonkeyPatch.context() as patch, np.errstate(over="raise", invalid="raise"):
        patch.setattr(rnn_ops, "VECTOR_TANH", False)
        rnn_ops._tanh_into(z, out)
        np.testing.assert_allclose(out, tanh, rtol=0, atol=3e-7)
        rnn_ops._sigmoid_into(z / 2, out, times=2)
        np.testing.assert_allclose(out, sigmoid, rtol=3e-7, atol=0)
