"""The generated modules read like careful hand-written code, and their pieces are Keras's.

``ruff check`` and ``ruff format --check`` (the project's settings) pass on the
Keras and PyTorch modules of every sample, every block example and random
graphs, with and without weights: no dead import, no unused variable, lines
within 100 characters. Names come from the graph. Beyond whole-graph parity
(test_parity), the parts a graph comparison cannot reach are checked against
Keras: the initial weights ``reset_parameters`` draws, the dropout masks of
the training mode, Keras's "same" padding for sizes known only at run time,
and the torch backend's average pooling with uneven padding.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nodenet.engine.catalog import block_class, block_types
from nodenet.errors import ValidationError, WeightsError
from nodenet.export import export_keras, export_pytorch
from nodenet.graph.project import Edge, Node, Project, load
from nodenet.runner import build_model
from tests.support.generated import SAMPLES, example_graph, import_source

ROOT = Path(__file__).parents[2]


TRAININGS = [  # every optimizer, schedule and callback the training section may hold
    {
        "optimizer": {
            "name": "sgd",
            "learning_rate": 0.1,
            "momentum": 0.9,
            "clipnorm": 1.0,
            "weight_decay": 0.01,
        },
        "class_weight": {"0": 2.0},
    },
    {
        "optimizer": {"name": "rmsprop", "centered": True, "global_clipnorm": 1.0},
        "reduce_lr_on_plateau": {"patience": 2, "factor": 0.5},
    },
    {
        "optimizer": {"name": "adagrad", "clipvalue": 0.5},
        "early_stopping": {"monitor": "val_accuracy", "patience": 1},
    },
    {
        "optimizer": {
            "name": "nadam",
            "learning_rate": {
                "schedule": "CosineDecay",
                "initial_learning_rate": 0.01,
                "decay_steps": 100,
                "warmup_target": 0.1,
                "warmup_steps": 10,
            },
        }
    },
    {
        "optimizer": {
            "name": "adadelta",
            "learning_rate": {
                "schedule": "PiecewiseConstantDecay",
                "boundaries": [10],
                "values": [0.1, 0.01],
            },
        }
    },
    {
        "optimizer": {
            "name": "adamax",
            "learning_rate": {
                "schedule": "InverseTimeDecay",
                "initial_learning_rate": 0.1,
                "decay_steps": 5,
                "staircase": True,
            },
        }
    },
]


def all_projects() -> list[Project]:
    projects = [load(path) for path in SAMPLES]
    for name in block_types():
        if name not in ("Input", "Output"):
            projects += [example_graph(name, i) for i in range(len(block_class(name).EXAMPLES))]
    for training in TRAININGS:
        project = load(SAMPLES[1])
        project.training.update(training)
        projects.append(project)
    return projects


@pytest.mark.slow
def test_generated_code_passes_ruff(tmp_path):
    ruff = shutil.which("ruff") or pytest.skip("ruff is not installed")
    projects = all_projects()
    pytest.importorskip("keras")  # random_graph grows its graphs with Keras
    from tests.support.keras_graphs import random_graph

    projects += [random_graph(seed)[0] for seed in range(40)]
    for i, project in enumerate(projects):
        weights = build_model(project).get_weights() if i % 2 else None
        (tmp_path / f"keras_{i}.py").write_text(export_keras(project, weights).source)
        (tmp_path / f"torch_{i}.py").write_text(export_pytorch(project, weights).source)
    config = str(ROOT / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        run = subprocess.run(
            [ruff, *command, "--config", config, "--no-cache", str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


def test_names_come_from_the_graph():
    project = load(ROOT / "sample_projects" / "mnist1d_cnn.json")
    keras_source = export_keras(project).source
    torch_source = export_pytorch(project).source
    for node in project.nodes:
        if node.type == "Output":
            assert f'"{node.id}": ' in keras_source and f'"{node.id}"' in torch_source
        elif node.type == "Input":
            assert f'{node.id} = keras.Input(shape=(40, 1), name="{node.id}")' in keras_source
            assert f"def forward(self, {node.id}: torch.Tensor)" in torch_source
        else:
            assert f"{node.id} = layers.{node.type}(" in keras_source
            assert f'name="{node.id}")' in keras_source
            assert f"        {node.id} = " in torch_source
    assert "class Mnist1dCnn(nn.Module):" in torch_source
    assert "self.conv_1 = nn.Conv1d(1, 32, 5, padding=2)" in torch_source


def test_awkward_node_ids_become_distinct_identifiers():
    project = Project(
        "odd ids",
        [
            Node("in put", "Input", {"shape": [3]}),
            Node("class", "Dense", {"units": 2}),
            Node("2nd", "Dense", {"units": 2}),
            Node("torch", "Add", {}),
            Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}),
        ],
        [
            Edge("in put", "class"),
            Edge("in put", "2nd"),
            Edge("class", "torch", 0),
            Edge("2nd", "torch", 1),
            Edge("torch", "out"),
        ],
    )
    source = export_pytorch(project).source
    assert "def forward(self, in_put: torch.Tensor)" in source
    assert "self.class_ = nn.Linear(3, 2)" in source and "self.n2nd = nn.Linear(3, 2)" in source
    assert "torch_ = class_ + n2nd" in source
    compile(source, "odd.py", "exec")
    keras_source = export_keras(project).source
    assert 'layers.Dense(2, name="class")(in_put)' in keras_source
    compile(keras_source, "odd.py", "exec")


def test_weights_come_as_an_npz_the_module_loads(tmp_path):
    project = load(ROOT / "sample_projects" / "digits_mlp.json")
    weights = build_model(project).get_weights()
    plain, with_weights = export_pytorch(project), export_pytorch(project, weights)
    assert plain.weights is None and "load_weights" not in plain.source
    assert "load_weights(model, WEIGHTS)" in with_weights.source
    written = with_weights.write(tmp_path / "digits.py")
    assert [p.name for p in written] == ["digits.py", "digits_weights.npz"]
    with np.load(written[1], allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            f"{layer}.{key}"
            for layer in ("hidden_1", "hidden_2", "probs")
            for key in ("weight", "bias")
        )
        np.testing.assert_array_equal(npz["hidden_1.weight"], weights["hidden_1/kernel"].T)
    keras_code = export_keras(project, weights)
    written = keras_code.write(tmp_path / "digits_keras.py")
    with np.load(written[1], allow_pickle=False) as npz:
        assert list(npz.files) == list(weights)  # Keras names and order, as set_weights takes them


def test_export_refuses_invalid_projects_and_mismatched_weights():
    project = load(ROOT / "sample_projects" / "digits_mlp.json")
    broken = project.copy()
    broken.edges = broken.edges[1:]
    with pytest.raises(ValidationError):
        export_pytorch(broken)
    weights = build_model(project).get_weights()
    weights["hidden_1/kernel"] = weights["hidden_1/kernel"][:10]
    with pytest.raises(WeightsError, match="hidden_1/kernel"):
        export_keras(project, weights)
    del weights["probs/bias"]
    with pytest.raises(WeightsError, match="probs/bias"):
        export_pytorch(project, weights)


# -- against Keras itself ----------------------------------------------------------------

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) is the reference")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")

INITIALIZED = Project(
    "initializers",
    [
        Node("x", "Input", {"shape": [160]}),
        Node("he", "Dense", {"units": 240, "kernel_initializer": "he_normal"}),
        Node(
            "lecun",
            "Dense",
            {
                "units": 200,
                "kernel_initializer": "lecun_uniform",
                "bias_initializer": "random_normal",
            },
        ),
        Node("steps", "Reshape", {"target_shape": [10, 20]}),
        Node("lstm", "LSTM", {"units": 64, "return_sequences": True}),
        Node("gru", "GRU", {"units": 48, "kernel_initializer": "glorot_normal"}),
        Node("norm", "BatchNormalization", {"gamma_initializer": "random_uniform"}),
        Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}),
    ],
    [
        Edge("x", "he"),
        Edge("he", "lecun"),
        Edge("lecun", "steps"),
        Edge("steps", "lstm"),
        Edge("lstm", "gru"),
        Edge("gru", "norm"),
        Edge("norm", "out"),
    ],
)


def test_reset_parameters_draws_as_keras_initializers_do(tmp_path):
    """Without weights, every weight of the PyTorch module is distributed as Keras draws it."""
    module = import_source(export_pytorch(INITIALIZED).source, tmp_path, "initial")
    torch.manual_seed(0)
    net = module.build_model()
    keras_module = import_source(export_keras(INITIALIZED).source, tmp_path, "initial_keras")
    keras.utils.set_random_seed(0)
    reference = keras_module.build_model()
    ours = torch_as_keras(net)
    for layer in reference.layers:
        for weight in layer.weights:
            key = f"{layer.name}/{weight.path.split('/')[-1]}"
            theirs = np.asarray(weight.numpy())
            mine = ours[key]
            assert mine.shape == theirs.shape, key
            if len(np.unique(theirs)) <= 2:  # zeros, ones, and the unit forget bias
                np.testing.assert_array_equal(mine, theirs, err_msg=key)
                continue
            large = theirs.size >= 5000
            rtol = 0.08 if large else 0.3
            np.testing.assert_allclose(mine.std(), theirs.std(), rtol=rtol, err_msg=key)
            assert abs(mine.mean()) < 4 * theirs.std() / np.sqrt(mine.size), key
            if large:  # bounded distributions reach their bounds
                top = np.abs(theirs).max()
                np.testing.assert_allclose(np.abs(mine).max(), top, rtol=0.15, err_msg=key)
    lstm_bias = ours["lstm/bias"]
    np.testing.assert_array_equal(lstm_bias[64:128], 1.0)  # unit_forget_bias
    recurrent = ours["gru/recurrent_kernel"]  # (48, 144): orthonormal rows, as Keras's
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(48), atol=1e-5)


def torch_as_keras(net) -> dict[str, np.ndarray]:
    """The module's weights in Keras names and layouts (inverting the export's conversion)."""
    state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    out = {}
    for name in ("he", "lecun"):
        out[f"{name}/kernel"], out[f"{name}/bias"] = (
            state[f"{name}.weight"].T,
            state[f"{name}.bias"],
        )
    ih = state["lstm.weight_ih_l0"]
    out["lstm/kernel"], out["lstm/bias"] = ih[:, :-1].T, ih[:, -1]
    out["lstm/recurrent_kernel"] = state["lstm.weight_hh_l0"].T
    out["gru/kernel"] = _rzn_to_zrh(state["gru.weight_ih_l0"].T)
    out["gru/recurrent_kernel"] = _rzn_to_zrh(state["gru.weight_hh_l0"].T)
    out["gru/bias"] = np.stack(
        [_rzn_to_zrh(state["gru.bias_ih_l0"]), _rzn_to_zrh(state["gru.bias_hh_l0"])]
    )
    for key in ("gamma", "beta", "moving_mean", "moving_variance"):
        out[f"norm/{key}"] = state[f"norm.{key}"]
    return out


def _rzn_to_zrh(a: np.ndarray) -> np.ndarray:
    r, z, n = np.split(a, 3, axis=-1)
    return np.concatenate([z, r, n], axis=-1)


def dropout_graph(layer: str, **params) -> Project:
    return Project(
        "dropout",
        [
            Node("x", "Input", {"shape": [6, 40]}),
            Node("rnn", layer, {"units": 5, "return_sequences": True, **params}),
            Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}),
        ],
        [Edge("x", "rnn"), Edge("rnn", "out")],
    )


@pytest.mark.parametrize(
    "layer,params",
    [
        ("LSTM", {"dropout": 0.5}),  # torch's LSTM after a mask shared by every step
        ("GRU", {"dropout": 0.5, "recurrent_dropout": 0.3}),  # the step loop, a mask per gate
        ("SimpleRNN", {"dropout": 0.5, "activation": "relu"}),
    ],
)
def test_recurrent_dropout_masks_are_drawn_once_per_batch(layer, params, tmp_path):
    """Training draws fresh masks at each call (none in evaluation); the input mask of a
    layer without recurrent dropout is one per sample, reused at every step."""
    module = import_source(export_pytorch(dropout_graph(layer, **params)).source, tmp_path, "d")
    net = module.build_model()
    x = torch.ones(200, 6, 40)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    net.train()
    torch.manual_seed(1)
    with torch.no_grad():
        first, second = net(x), net(x)
    assert not torch.equal(first, second)  # fresh masks each call
    if "recurrent_dropout" not in params:  # one mask for every step: same input each step
        inputs = module.time_dropout(x, 0.5, True)
        assert torch.equal(inputs[:, 0], inputs[:, 5])
        kept = (inputs[:, 0] != 0).float().mean().item()
        assert 0.45 < kept < 0.55 and torch.all((inputs == 0) | (inputs == 2.0))


def test_runtime_same_padding_is_keras(tmp_path):
    """Keras's "same" padding of lengths known only at run time (pad_same, pool_same)."""
    source = export_pytorch(
        Project(
            "runtime",
            [
                Node("x", "Input", {"shape": [None, 2]}),
                Node(
                    "conv",
                    "Conv1D",
                    {"filters": 3, "kernel_size": 4, "strides": 3, "padding": "same"},
                ),
                Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}),
            ],
            [Edge("x", "conv"), Edge("conv", "out")],
        )
    ).source
    module = import_source(source, tmp_path, "runtime")
    rng = np.random.default_rng(0)
    for length in (5, 6, 7, 8, 9):
        x = rng.normal(size=(2, length, 2)).astype(np.float32)
        conv = keras.layers.Conv1D(3, 4, strides=3, padding="same", use_bias=False)
        expected = keras.ops.convert_to_numpy(conv(x))
        kernel = torch.from_numpy(np.asarray(conv.kernel.numpy()).transpose(2, 1, 0).copy())
        padded = module.pad_same(torch.from_numpy(x).movedim(-1, 1), (4,), (3,), (1,))
        ours = torch.nn.functional.conv1d(padded, kernel, stride=3).movedim(1, -1)
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-5, atol=1e-5)
        for mode, layer in (
            ("max", keras.layers.MaxPooling1D),
            ("average", keras.layers.AveragePooling1D),
        ):
            for pool, stride in ((3, 2), (2, 1), (4, 3)):
                expected = keras.ops.convert_to_numpy(layer(pool, stride, padding="same")(x))
                helper = _pool_same(module)
                pooled = helper(torch.from_numpy(x).movedim(-1, 1), mode, (pool,), (stride,))
                np.testing.assert_allclose(
                    pooled.movedim(1, -1).numpy(),
                    expected,
                    rtol=1e-5,
                    atol=1e-6,
                    err_msg=f"{mode} {pool} {stride} {length}",
                )


def _pool_same(module):
    """pool_same from the generated helpers (this module's code has no pooling of its own)."""
    from nodenet.export.snippets import TORCH_HELPERS

    namespace = dict(vars(module))
    exec(TORCH_HELPERS["pool_same"], namespace)  # the helper exactly as the exporter writes it
    return namespace["pool_same"]


@pytest.mark.parametrize(
    "shape,params",
    [
        ((6, 1), {"pool_size": 3, "strides": 2}),
        ((5, 4, 2), {"pool_size": 3, "strides": 2}),
        ((5, 6, 1), {"pool_size": [2, 3], "strides": [2, 1]}),
    ],
)
def test_uneven_same_average_pooling_follows_keras_on_torch(shape, params, tmp_path):
    """Keras's torch backend replicates the edges where "same" padding is uneven and counts
    them; the PyTorch export does what Keras does there."""
    name = f"AveragePooling{len(shape) - 1}D"
    project = Project(
        "quirk",
        [
            Node("x", "Input", {"shape": list(shape)}),
            Node("pool", name, {**params, "padding": "same"}),
            Node("out", "Output", {"loss": "mean_squared_error", "metrics": []}),
        ],
        [Edge("x", "pool"), Edge("pool", "out")],
    )
    module = import_source(export_pytorch(project).source, tmp_path, "quirk")
    x = np.random.default_rng(2).normal(size=(2, *shape)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(getattr(keras.layers, name)(padding="same", **params)(x))
    ours = module.build_model()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    if len(shape) == 2:  # by hand: the last window of 1..6 is (5 + 6 + 6) / 3
        line = np.arange(1, 7, dtype=np.float32).reshape(1, 6, 1)
        result = module.build_model()(torch.from_numpy(line)).numpy().ravel()
        np.testing.assert_allclose(result, [2, 4, 17 / 3], rtol=1e-6)


def test_optimizers_and_schedules_run_as_configured(tmp_path):
    """Each optimizer the project may name becomes its torch counterpart with Keras's
    settings; schedules give Keras's learning rate at each step."""
    from nodenet.engine.optimizers import NAMES
    from nodenet.engine.schedules import make_schedule

    project = load(ROOT / "sample_projects" / "diabetes_regression.json")
    schedules = [
        {
            "schedule": "ExponentialDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 3,
            "decay_rate": 0.5,
            "staircase": True,
        },
        {
            "schedule": "InverseTimeDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 2,
            "decay_rate": 0.5,
        },
        {"schedule": "PiecewiseConstantDecay", "boundaries": [2, 5], "values": [0.1, 0.01, 0.001]},
        {
            "schedule": "CosineDecay",
            "initial_learning_rate": 0.1,
            "decay_steps": 6,
            "alpha": 0.1,
            "warmup_target": 0.2,
            "warmup_steps": 3,
        },
    ]
    for name, schedule in zip(NAMES, [*schedules, *[None] * len(NAMES)], strict=False):
        config = {"name": name, "learning_rate": schedule or 0.01, "clipnorm": 1.0}
        project.training["optimizer"] = config
        module = import_source(export_pytorch(project).source, tmp_path, name)
        net = module.build_model()
        optimizer = module.make_optimizer(net)
        assert type(optimizer).__name__.lower() == name, name
        if schedule:
            expected = make_schedule(schedule)
            for step in range(10):
                assert module.learning_rate(step) == pytest.approx(expected(step), rel=1e-6)
        keras_module = import_source(export_keras(project).source, tmp_path, f"k_{name}")
        model = keras_module.build_model()
        keras_module.compile_model(model)
        assert type(model.optimizer).__name__.lower() == name


@pytest.mark.parametrize("export", [export_keras, export_pytorch], ids=["keras", "pytorch"])
def test_exported_data_split_is_nodenets(export, tmp_path):
    """A built-in scikit-learn dataset is split by the exported code exactly as nodenet
    splits it, so weights trained in nodenet are tested on the same held-out samples.
    (Standardized values differ in the last float32 digits: the statistics are summed
    in another order.)"""
    from nodenet.runner import build_run

    project = load(ROOT / "sample_projects" / "digits_mlp.json")
    project.data["split"] = {"test": 0.2, "validation": 0.1, "seed": 7}
    module = import_source(export(project).source, tmp_path, "split")
    parts = module.load_data()
    prepared = build_run(project).data
    for part, ours in (
        ("train", prepared.train),
        ("validation", prepared.val),
        ("test", prepared.test),
    ):
        inputs, targets = parts[part]
        np.testing.assert_allclose(inputs["pixels"], ours["inputs"]["pixels"], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(targets["digit"], ours["targets"]["digit"])
