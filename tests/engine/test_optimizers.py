"""Optimizers, schedules and ReduceLROnPlateau against Keras 3 (torch backend)."""

import numpy as np
import pytest

from nodenet.engine.optimizers import NAMES, OPTIMIZER_PARAMS, make_optimizer
from nodenet.engine.schedules import (
    REDUCE_LR_PARAMS,
    SCHEDULE_PARAMS,
    ReduceLROnPlateau,
    make_schedule,
)
from nodenet.errors import ParamError

KERAS_CLASS = {
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "adam": "Adam",
    "adamw": "AdamW",
    "adamax": "Adamax",
    "nadam": "Nadam",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
}
SHAPES = {"kernel": (6, 4), "bias": (4,), "gamma": (3, 2, 2)}


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


def keras_optimizer(keras, config):
    kwargs = {k: v for k, v in config.items() if k != "name"}
    lr = kwargs.get("learning_rate")
    if isinstance(lr, dict):
        kwargs["learning_rate"] = keras_schedule(keras, lr)
    return getattr(keras.optimizers, KERAS_CLASS[config["name"]])(**kwargs)


def keras_schedule(keras, config):
    kwargs = {k: v for k, v in config.items() if k != "schedule"}
    return getattr(keras.optimizers.schedules, config["schedule"])(**kwargs)


def assert_close(ours, expected):
    """1e-6 relative to the array's scale (torch fuses a + alpha * b into one rounding)."""
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())


def run_against_keras(keras, config, steps=6, seed=0):
    import torch

    rng = np.random.default_rng(seed)
    start = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    ours = {k: v.copy() for k, v in start.items()}
    variables = [keras.Variable(start[k]) for k in SHAPES]
    optimizer = make_optimizer(config)
    reference = keras_optimizer(keras, config)
    for _ in range(steps):
        grads = {k: (3 * rng.normal(size=s)).astype(np.float32) for k, s in SHAPES.items()}
        assert optimizer.learning_rate == pytest.approx(float(reference.learning_rate), rel=1e-6)
        optimizer.apply(ours, grads)
        reference.apply([torch.tensor(grads[k]) for k in SHAPES], variables)
        for key, variable in zip(SHAPES, variables, strict=True):
            assert ours[key].dtype == np.float32
            assert_close(ours[key], variable.numpy())
    assert optimizer.iterations == steps == int(reference.iterations)


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_keras_defaults(keras, name):
    reference = keras_optimizer(keras, {"name": name}).get_config()
    for param in OPTIMIZER_PARAMS[name]:
        expected = reference[param.name]
        if param.name == "learning_rate":
            assert param.default == pytest.approx(expected, rel=1e-7)
        else:
            assert param.default == expected, param.name
    assert make_optimizer({"name": name}).get_config()["name"] == name


@pytest.mark.parametrize("name", NAMES)
def test_default_steps_match_keras(keras, name):
    run_against_keras(keras, {"name": name})


VARIANTS = [
    {"name": "sgd", "momentum": 0.9},
    {"name": "sgd", "momentum": 0.9, "nesterov": True, "learning_rate": 0.05},
    {"name": "rmsprop", "momentum": 0.5},
    {"name": "rmsprop", "centered": True, "rho": 0.8},
    {"name": "rmsprop", "centered": True, "momentum": 0.3, "epsilon": 1e-4},
    {"name": "adam", "amsgrad": True},
    {"name": "adam", "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "learning_rate": 0.01},
    {"name": "adamw", "weight_decay": 0.1, "learning_rate": 0.01, "amsgrad": True},
    {"name": "adagrad", "initial_accumulator_value": 0.5, "learning_rate": 0.1},
    {"name": "adadelta", "rho": 0.9, "learning_rate": 1.0},
    {"name": "nadam", "beta_1": 0.8},
    {"name": "adamax", "beta_2": 0.99},
    {"name": "sgd", "weight_decay": 0.01, "learning_rate": 0.1},
    {"name": "adam", "clipnorm": 1.0},
    {"name": "sgd", "clipnorm": 0.5, "momentum": 0.9},
    {"name": "adam", "clipvalue": 0.5},
    {"name": "rmsprop", "clipvalue": 1.0},
    {"name": "adam", "global_clipnorm": 2.0},
    {"name": "nadam", "global_clipnorm": 0.1},
    {
        "name": "adam",
        "learning_rate": {
            "schedule": "ExponentialDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 2,
            "decay_rate": 0.5,
        },
    },
    {
        "name": "adamw",
        "learning_rate": {
            "schedule": "CosineDecay",
            "initial_learning_rate": 0.0,
            "decay_steps": 3,
            "warmup_target": 0.01,
            "warmup_steps": 2,
        },
    },
    {
        "name": "sgd",
        "learning_rate": {
            "schedule": "PiecewiseConstantDecay",
            "boundaries": [1, 3],
            "values": [0.1, 0.05, 0.01],
        },
    },
]


@pytest.mark.parametrize(
    "config",
    VARIANTS,
    ids=lambda c: "-".join(f"{k}" for k in c.values() if not isinstance(k, dict)),
)
def test_variants_match_keras(keras, config):
    run_against_keras(keras, config, seed=len(str(config)))


def test_float64_parameters_stay_float64():
    params = {"w": np.ones(3)}
    make_optimizer({"name": "adam"}).apply(params, {"w": np.full(3, 0.5)})
    assert params["w"].dtype == np.float64
    # first Adam step moves by lr * g / (|g| + eps') ~ lr
    np.testing.assert_allclose(params["w"], 1 - 0.001, rtol=1e-6)


def test_hand_computed_sgd_steps():
    params = {"w": np.array([1.0, -2.0], np.float32)}
    opt = make_optimizer({"name": "sgd", "learning_rate": 0.1, "momentum": 0.5})
    opt.apply(params, {"w": np.array([1.0, 1.0], np.float32)})  # m = -0.1, w += m
    np.testing.assert_allclose(params["w"], [0.9, -2.1], rtol=1e-6)
    opt.apply(params, {"w": np.array([0.0, 2.0], np.float32)})  # m = -0.05 / -0.25
    np.testing.assert_allclose(params["w"], [0.85, -2.35], rtol=1e-6)


def test_slots_and_temporaries_are_allocated_once():
    opt = make_optimizer({"name": "adam", "clipvalue": 1.0})
    params = {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}
    grads = {k: np.ones(s, np.float32) for k, s in SHAPES.items()}
    opt.apply(params, grads)
    slots = {k: {n: id(a) for n, a in v.items()} for k, v in opt.slots.items()}
    pool = {k: [id(a) for a in v] for k, v in opt._pool.items()}
    param_ids = {k: id(v) for k, v in params.items()}
    for _ in range(3):
        opt.apply(params, grads)
    assert {k: {n: id(a) for n, a in v.items()} for k, v in opt.slots.items()} == slots
    assert {k: [id(a) for a in v] for k, v in opt._pool.items()} == pool
    assert {k: id(v) for k, v in params.items()} == param_ids
    assert set(opt.slots["kernel"]) == {"momentum", "velocity"}


def test_a_parameter_without_gradient_is_left_alone():
    params = {"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)}
    opt = make_optimizer({"name": "sgd"})
    opt.apply(params, {"a": np.ones(2, np.float32)})
    assert params["b"].tolist() == [1, 1] and params["a"][0] < 1
    assert opt.iterations == 1


def test_learning_rate_can_be_set_unless_scheduled():
    opt = make_optimizer({"name": "adam"})
    assert opt.learning_rate == pytest.approx(0.001)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    scheduled = make_optimizer(
        {
            "name": "sgd",
            "learning_rate": {
                "schedule": "InverseTimeDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 1,
                "decay_rate": 1.0,
            },
        }
    )
    assert scheduled.learning_rate == pytest.approx(0.1)
    scheduled.apply({"w": np.zeros(1)}, {"w": np.ones(1)})
    assert scheduled.learning_rate == pytest.approx(0.05)
    with pytest.raises(ParamError, match="follows a schedule"):
        scheduled.learning_rate = 0.01


@pytest.mark.parametrize(
    "config,message",
    [
        (
            {"name": "adam", "beta_1": 2},
            "training.optimizer.beta_1 must be a finite number >= 0 and < 1 (got 2)",
        ),
        (
            {"name": "adam", "learning_rate": -1},
            "training.optimizer.learning_rate must be a finite number >= 0 or a schedule object"
            " (got -1)",
        ),
        (
            {"name": "sgd", "nesterov": "yes"},
            'training.optimizer.nesterov must be true or false (got "yes")',
        ),
        ({"name": "adagrad", "beta_1": 0.9}, "training.optimizer has no parameter 'beta_1'"),
        ({"name": "lbfgs"}, 'training.optimizer.name must be one of "sgd", '),
        ({"learning_rate": 0.1}, "training.optimizer.name must be one of"),
        ("adam", 'training.optimizer must be an object like {"name": "adam"}'),
        (
            {"name": "adam", "clipnorm": 1, "clipvalue": 1},
            "training.optimizer: only one of clipnorm, clipvalue and global_clipnorm can be set"
            " (clipnorm=1, clipvalue=1)",
        ),
        (
            {"name": "adamw", "weight_decay": None},
            "training.optimizer.weight_decay must be a finite number >= 0 (got null)",
        ),
        (
            {"name": "sgd", "learning_rate": {"schedule": "ExponentialDecay", "decay_steps": 0}},
            "training.optimizer.learning_rate.decay_steps must be an integer >= 1 (got 0)",
        ),
        (
            {"name": "sgd", "learning_rate": {"schedule": "Linear"}},
            'training.optimizer.learning_rate.schedule must be one of "ExponentialDecay"',
        ),
        (
            {
                "name": "sgd",
                "learning_rate": {"schedule": "PiecewiseConstantDecay", "boundaries": [10, 5]},
            },
            "training.optimizer.learning_rate.boundaries must be a non-empty list of integers >= 0,"
            " strictly increasing (got [10, 5])",
        ),
        (
            {
                "name": "sgd",
                "learning_rate": {
                    "schedule": "PiecewiseConstantDecay",
                    "boundaries": [10],
                    "values": [0.1],
                },
            },
            "training.optimizer.learning_rate.values must have one more entry than boundaries",
        ),
    ],
)
def test_invalid_configs_name_the_field(config, message):
    with pytest.raises(ParamError) as info:
        make_optimizer(config)
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.param.startswith("training.optimizer")


def test_params_describe_every_optimizer_for_a_form():
    assert set(OPTIMIZER_PARAMS) == set(KERAS_CLASS)
    for name, params in OPTIMIZER_PARAMS.items():
        names = [p.name for p in params]
        assert names[0] == "learning_rate" and len(set(names)) == len(names)
        assert {"clipnorm", "clipvalue", "global_clipnorm", "weight_decay"} <= set(names)
        assert all(p.help for p in params), name
    for name, params in SCHEDULE_PARAMS.items():
        make_schedule({"schedule": name})  # the form defaults build
        assert all(p.help for p in params)


# -- schedules ------------------------------------------------------------------

SCHEDULES = [
    {
        "schedule": "ExponentialDecay",
        "initial_learning_rate": 0.1,
        "decay_steps": 7,
        "decay_rate": 0.9,
    },
    {
        "schedule": "ExponentialDecay",
        "initial_learning_rate": 0.1,
        "decay_steps": 7,
        "decay_rate": 0.9,
        "staircase": True,
    },
    {
        "schedule": "InverseTimeDecay",
        "initial_learning_rate": 0.5,
        "decay_steps": 3,
        "decay_rate": 0.7,
    },
    {
        "schedule": "InverseTimeDecay",
        "initial_learning_rate": 0.5,
        "decay_steps": 3,
        "decay_rate": 0.7,
        "staircase": True,
    },
    {
        "schedule": "PiecewiseConstantDecay",
        "boundaries": [5, 10, 20],
        "values": [1.0, 0.5, 0.1, 0.01],
    },
    {"schedule": "CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 20},
    {"schedule": "CosineDecay", "initial_learning_rate": 0.1, "decay_steps": 20, "alpha": 0.1},
    {
        "schedule": "CosineDecay",
        "initial_learning_rate": 0.0,
        "decay_steps": 20,
        "alpha": 0.2,
        "warmup_target": 0.3,
        "warmup_steps": 8,
    },
    {
        "schedule": "CosineDecay",
        "initial_learning_rate": 0.01,
        "decay_steps": 5,
        "warmup_target": 0.1,
        "warmup_steps": 0,
    },
]


@pytest.mark.parametrize("config", SCHEDULES, ids=lambda c: c["schedule"])
def test_schedules_match_keras(keras, config):
    ours = make_schedule(config)
    reference = keras_schedule(keras, config)
    for step in range(40):
        assert ours(step) == pytest.approx(float(reference(step)), rel=1e-6, abs=1e-9), step


# -- ReduceLROnPlateau ------------------------------------------------------------


class _Model:
    """What keras.callbacks.ReduceLROnPlateau reads from a model."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.metrics = []


LOSSES = [
    1.0,
    0.9,
    0.95,
    0.9,
    0.91,
    0.92,
    0.93,
    0.89,
    0.8999,
    0.9,
    0.95,
    0.96,
    0.97,
    0.98,
    0.99,
    1.0,
    0.5,
    0.6,
    0.7,
    0.8,
    0.9,
    1.0,
]


@pytest.mark.parametrize(
    "config,values",
    [
        ({"patience": 2}, LOSSES),
        ({"patience": 1, "factor": 0.5, "cooldown": 2, "min_lr": 0.004}, LOSSES),
        ({"patience": 0, "min_delta": 0.05}, LOSSES),
        (
            {"monitor": "val_accuracy", "mode": "max", "patience": 2, "factor": 0.2},
            [0.5, 0.6, 0.6, 0.55, 0.61, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7],
        ),
        ({"monitor": "loss", "mode": "max", "patience": 1}, LOSSES),
    ],
)
def test_reduce_lr_on_plateau_matches_keras(keras, config, values):
    reference_model = _Model(keras.optimizers.SGD(learning_rate=0.1))
    callback = keras.callbacks.ReduceLROnPlateau(**config)
    callback.set_model(reference_model)
    callback.on_train_begin()
    optimizer = make_optimizer({"name": "sgd", "learning_rate": 0.1})
    ours = ReduceLROnPlateau(
        {**config, "mode": "auto"} if "accuracy" in config.get("monitor", "") else config,
        optimizer=optimizer,
    )
    monitor = config.get("monitor", "val_loss")
    for epoch, value in enumerate(values):
        before = float(reference_model.optimizer.learning_rate)
        logs = {monitor: value}
        new_lr = ours.on_epoch_end(epoch, logs)
        callback.on_epoch_end(epoch, {monitor: value})
        after = float(reference_model.optimizer.learning_rate)
        assert optimizer.learning_rate == pytest.approx(after, rel=1e-7), epoch
        assert logs["learning_rate"] == pytest.approx(before, rel=1e-7)
        assert (new_lr is None) == (after == before), epoch
        if new_lr is not None:
            assert new_lr == pytest.approx(after, rel=1e-7)


def test_reduce_lr_on_plateau_without_an_optimizer_reads_the_logs():
    plateau = ReduceLROnPlateau(patience=1, monitor="loss")
    assert plateau.config["patience"] == 1 and not plateau.maximize
    assert plateau.on_epoch_end(0, {"loss": 1.0, "learning_rate": 0.1}) is None
    assert plateau.on_epoch_end(1, {"loss": 1.0, "learning_rate": 0.1}) == pytest.approx(0.01)
    with pytest.warns(UserWarning, match="'loss', which is not logged"):
        assert plateau.on_epoch_end(2, {"val_loss": 1.0, "learning_rate": 0.1}) is None


def test_reduce_lr_on_plateau_defaults_and_errors():
    assert {p.name: p.default for p in REDUCE_LR_PARAMS} == {
        "monitor": "val_loss",
        "factor": 0.1,
        "patience": 10,
        "mode": "auto",
        "min_delta": 1e-4,
        "cooldown": 0,
        "min_lr": 0.0,
    }
    with pytest.raises(ParamError, match="factor must be a finite number >= 0 and < 1"):
        ReduceLROnPlateau({"factor": 1.0})
    with pytest.raises(ParamError, match="cannot tell whether 'val_speed' should fall or rise"):
        ReduceLROnPlateau({"monitor": "val_speed"})
    assert ReduceLROnPlateau({"monitor": "val_speed", "mode": "max"}).maximize
