"""The exported Keras and PyTorch code computes what nodenet computes, on whole graphs.

For every sample project and 200 random valid graphs (tests/engine's
generator: Keras accepted every step), exported with weights: the Keras module
and the PyTorch module import and build, their parameter counts equal
nodenet's, their predictions on random inputs match ``Model.predict`` within
1e-4, and one SGD step from the same weights on the same batch gives the same
loss and the same weights within 1e-4. Graphs with several losses, loss
weights, regularizers and unknown sizes get their own cases.

One known difference: Keras's torch backend averages an AveragePooling window
whose "same" padding is uneven over replicated edge values (the PyTorch export
does the same); where nodenet averages the real values only, such graphs are
compared with the Keras export instead of nodenet.
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the `ref` extra (keras) runs the Keras export")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) runs the PyTorch export")

from nodenet.engine.catalog import Context, block_class  # noqa: E402
from nodenet.export import export_keras, export_pytorch  # noqa: E402
from nodenet.export._common import read_graph, split_weights  # noqa: E402
from nodenet.export.pytorch import torch_state  # noqa: E402
from nodenet.graph.project import Edge, Node, Project, load  # noqa: E402
from tests.support.generated import (  # noqa: E402
    SAMPLES,
    TOL,
    Case,
    check_keras,
    check_torch,
    import_source,
)
from tests.support.keras_graphs import (  # noqa: E402
    random_graph,
    torch_backend_pooling_quirk,
    torch_strided_pointwise_quirk,
)

pytestmark = pytest.mark.ref

GRAPHS, PER_TEST = 200, 25


def nodenet_follows_the_pooling_quirk() -> bool:
    """Whether nodenet's AveragePooling already counts replicated edges, as Keras on torch."""
    layer = block_class("AveragePooling1D")({"pool_size": 3, "strides": 2, "padding": "same"})
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 6, 1)
    y, _ = layer.forward({}, [x], Context())
    return bool(np.isclose(y[0, -1, 0], 17 / 3))  # (5 + 6 + 6) / 3, not (5 + 6) / 2


def _takes_text(path) -> bool:
    return any(n.type == "Input" and n.params.get("dtype") == "string" for n in load(path).nodes)


TEXT_SAMPLE = (
    "fed text, not this check's random arrays (and Keras's TextVectorization needs "
    "TensorFlow): tests/engine/test_text_folder_strings.py runs its PyTorch export on text"
)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.skip(reason=TEXT_SAMPLE)) if _takes_text(p) else p
        for p in SAMPLES
    ],
    ids=lambda p: p.stem,
)
def test_sample_projects_export_exactly(path, tmp_path):
    case = Case(load(path), seed=1)
    check_torch(case, tmp_path)
    check_keras(case, tmp_path)


def mse_heads(project: Project) -> Project:
    """Every head scored by MSE: random graphs end anywhere, not always in probabilities."""
    for node in project.nodes:
        if node.type == "Output":
            node.params = {"loss": "mean_squared_error", "metrics": []}
    return project


@pytest.mark.slow
@pytest.mark.parametrize("first", range(0, GRAPHS, PER_TEST))
def test_random_graphs_export_exactly(first, tmp_path):
    quirk = not nodenet_follows_the_pooling_quirk()
    compared = 0
    for seed in range(first, first + PER_TEST):
        project, _ = random_graph(seed)
        case = Case(mse_heads(project), seed)
        pooling = quirk and torch_backend_pooling_quirk(case.model)
        if pooling or torch_strided_pointwise_quirk(case.model):
            # torch is no reference there (tests/support/keras_graphs.py): predictions only
            compare_exports(case, tmp_path)
            continue
        for check in (check_torch, check_keras):
            try:
                check(case, tmp_path)
            except AssertionError as err:
                raise AssertionError(f"seed {seed}, {check.__name__}: {err}") from None
        compared += 1
    assert compared >= PER_TEST - 3


def compare_exports(case: Case, directory) -> None:
    """The PyTorch export predicts what the Keras export predicts on Keras's torch backend."""
    keras_module = import_source(export_keras(case.project).source, directory, "keras_export")
    torch_module = import_source(export_pytorch(case.project).source, directory, "torch_export")
    model, net = keras_module.build_model(), torch_module.build_model().eval()
    for layer in model.layers:  # the same weights in both, from nodenet's
        keys = [k for k in case.weights if k.split("/", 1)[0] == layer.name]
        if keys:
            layer.set_weights([case.weights[k] for k in keys])
    graph = read_graph(case.project)
    state = torch_state(graph, split_weights(graph, case.weights))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    theirs = model.predict(case.x, verbose=0)
    with torch.no_grad():
        ours = net(*[torch.from_numpy(case.x[i]) for i in case.model.input_ids])
    if len(case.model.heads) == 1:
        ours = {case.model.heads[0].id: ours}
    for head in case.model.heads:
        np.testing.assert_allclose(ours[head.id].numpy(), np.asarray(theirs[head.id]), **TOL)


def graph(name: str, spec: list[tuple], **settings) -> Project:
    """A project from (id, type, params, sources) rows."""
    project = Project(name)
    for node_id, type_name, params, sources in spec:
        project.nodes.append(Node(node_id, type_name, params))
        project.edges += [Edge(s, node_id, port) for port, s in enumerate(sources)]
    project.training.update(settings)
    return project


L2 = {"l1": 0.001, "l2": 0.01}
HEADS = graph(
    "two_heads",
    [
        ("a", "Input", {"shape": [12]}, []),
        ("b", "Input", {"shape": [6, 3]}, []),
        ("dense_a", "Dense", {"units": 8, "activation": "relu", "kernel_regularizer": L2}, ["a"]),
        ("lstm_b", "LSTM", {"units": 5, "bias_regularizer": {"l1": 0.01, "l2": 0.0}}, ["b"]),
        ("joined", "Concatenate", {}, ["dense_a", "lstm_b"]),
        ("classes", "Dense", {"units": 4, "activation": "softmax"}, ["joined"]),
        ("labels", "Dense", {"units": 3, "activation": "softmax"}, ["joined"]),
        ("flags", "Dense", {"units": 2, "activation": "sigmoid"}, ["joined"]),
        ("value", "Dense", {"units": 1}, ["joined"]),
        ("size", "Dense", {"units": 2}, ["joined"]),
        ("out_classes", "Output", {"metrics": ["accuracy"]}, ["classes"]),
        (
            "out_labels",
            "Output",
            {"loss": "sparse_categorical_crossentropy", "loss_weight": 0.5},
            ["labels"],
        ),
        ("out_flags", "Output", {"loss": "binary_crossentropy", "loss_weight": 2.0}, ["flags"]),
        ("out_value", "Output", {"loss": "huber", "metrics": ["mae"]}, ["value"]),
        ("out_size", "Output", {"loss": "mean_absolute_error", "metrics": ["mse"]}, ["size"]),
    ],
)
SAME = {"padding": "same", "strides": 2}
UNKNOWN_LENGTH = graph(
    "unknown_length",
    [
        ("signal", "Input", {"shape": [None, 3]}, []),
        ("conv", "Conv1D", {"filters": 4, "kernel_size": 4, **SAME}, ["signal"]),
        ("causal", "Conv1D", {"filters": 3, "kernel_size": 2, "padding": "causal"}, ["conv"]),
        ("pool", "MaxPooling1D", {"pool_size": 2}, ["causal"]),
        ("gru", "GRU", {"units": 4}, ["pool"]),
        ("out", "Output", {"loss": "mean_squared_error", "metrics": []}, ["gru"]),
    ],
)
TOKENS = graph(
    "tokens",
    [
        ("words", "Input", {"shape": [7], "dtype": "int32"}, []),
        ("embedded", "Embedding", {"input_dim": 20, "output_dim": 6}, ["words"]),
        ("norm", "LayerNormalization", {"scale": False}, ["embedded"]),
        (
            "bi",
            "Bidirectional",
            {"layer": {"type": "GRU", "params": {"units": 4}}, "merge_mode": "sum"},
            ["norm"],
        ),
        ("grid", "Reshape", {"target_shape": [2, 2, 1]}, ["bi"]),
        ("up", "UpSampling2D", {"interpolation": "bilinear"}, ["grid"]),
        ("deconv", "Conv2DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2}, ["up"]),
        ("flat", "Flatten", {}, ["deconv"]),
        ("probs", "Dense", {"units": 3, "activation": "softmax"}, ["flat"]),
        ("out", "Output", {}, ["probs"]),
    ],
)


@pytest.mark.parametrize("project", [HEADS, UNKNOWN_LENGTH, TOKENS], ids=lambda p: p.name)
def test_several_losses_penalties_and_unknown_sizes_export_exactly(project, tmp_path):
    case = Case(project, seed=3, int_high=20)
    check_torch(case, tmp_path)
    check_keras(case, tmp_path)


SMALL = graph(
    "small",
    [
        ("x", "Input", {"shape": [6]}, []),
        ("hidden", "Dense", {"units": 5, "activation": "relu", "kernel_regularizer": L2}, ["x"]),
        ("probs", "Dense", {"units": 3, "activation": "softmax"}, ["hidden"]),
        ("out", "Output", {"metrics": ["accuracy"]}, ["probs"]),
    ],
)
DECAY = {
    "schedule": "ExponentialDecay",
    "initial_learning_rate": 0.1,
    "decay_steps": 1,
    "decay_rate": 0.5,
}
TRAININGS = {
    "sgd_nesterov_clipnorm_decay": {
        "optimizer": {
            "name": "sgd",
            "learning_rate": 0.05,
            "momentum": 0.9,
            "nesterov": True,
            "clipnorm": 0.5,
            "weight_decay": 0.01,
        },
    },
    "schedule_global_clipnorm_class_weight": {
        "optimizer": {"name": "sgd", "learning_rate": DECAY, "global_clipnorm": 0.3},
        "class_weight": {"0": 1.0, "2": 3.0},
    },
    "adamw_clipvalue": {"optimizer": {"name": "adamw", "learning_rate": 0.01, "clipvalue": 0.05}},
    "adam_amsgrad_decay": {"optimizer": {"name": "adam", "learning_rate": DECAY, "amsgrad": True}},
    "adamw_amsgrad": {"optimizer": {"name": "adamw", "learning_rate": 0.01, "amsgrad": True}},
    "rmsprop_momentum": {"optimizer": {"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5}},
}


@pytest.mark.parametrize("name", TRAININGS)
def test_training_loop_steps_as_nodenet_does(name, tmp_path):
    """Three batches through the generated training loop (schedule, clipping, weight decay,
    class weights, penalties) and through Keras's fit end where nodenet's fit ends."""
    from nodenet.engine.training import fit

    project = SMALL.copy()
    project.training.update(TRAININGS[name])
    settings = project.training
    case = Case(project, seed=5, train=False)
    rng = np.random.default_rng(5)
    x = {"x": rng.normal(size=(12, 6)).astype(np.float32)}
    y = {"out": np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=12)]}
    history = fit(
        case.model,
        x,
        y,
        epochs=1,
        batch_size=4,
        shuffle=False,
        optimizer=settings["optimizer"],
        class_weight=settings.get("class_weight"),
    )
    after = case.model.get_weights()

    torch_code = export_pytorch(project, case.weights)
    module = import_source(torch_code.source, tmp_path, "loop")
    net = module.build_model()
    (tmp_path / "w.npz").write_bytes(torch_code.weights)
    module.load_weights(net, tmp_path / "w.npz")
    loader = torch.utils.data.DataLoader(module.to_dataset(x, y), batch_size=4)
    logs, steps = module.run_epoch(net, loader, torch.device("cpu"), module.make_optimizer(net))
    assert steps == 3
    # Keras (and nodenet) weigh training metrics by class_weight; the export does not
    keys = ("loss",) if settings.get("class_weight") else ("loss", "accuracy")
    for key in keys:
        np.testing.assert_allclose(logs[key], history.epochs[0][key], **TOL, err_msg=key)
    graph_ = read_graph(project)
    state = net.state_dict()
    for key, expected in torch_state(graph_, split_weights(graph_, after)).items():
        np.testing.assert_allclose(state[key].numpy(), expected, rtol=2e-4, atol=2e-4, err_msg=key)

    keras_code = export_keras(project, case.weights)
    keras_module = import_source(keras_code.source, tmp_path, "keras_loop")
    model = keras_module.build_model()
    (tmp_path / "k.npz").write_bytes(keras_code.weights)
    keras_module.load_weights(model, tmp_path / "k.npz")
    keras_module.compile_model(model)
    weights = None
    if settings.get("class_weight"):  # the module's own conversion, as its main() does
        weights = {"out": keras_module.class_weights(y["out"])}
    keras_history = model.fit(
        x, y, epochs=1, batch_size=4, shuffle=False, verbose=0, sample_weight=weights
    )
    np.testing.assert_allclose(keras_history.history["loss"][0], history.epochs[0]["loss"], **TOL)
    for layer in model.layers:
        keys = [k for k in after if k.split("/", 1)[0] == layer.name]
        for key, value in zip(keys, layer.get_weights(), strict=True):
            np.testing.assert_allclose(value, after[key], rtol=2e-4, atol=2e-4, err_msg=key)
