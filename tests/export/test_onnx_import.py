"""Importing ONNX models: PyTorch's exports predict as PyTorch does, nodenet's own round-trip,
and hostile files give only nodenet's typed errors.

The reference for every prediction is PyTorch itself (the module the file was exported
from), never the importer's output. Conv models take channels-last input once imported
(``(N, H, W, C)``), so their inputs are moved to the last axis before ``predict``.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the `onnx` extra reads ONNX files")
torch = pytest.importorskip("torch", reason="the `ref` extra (torch) writes the reference models")

from onnx import TensorProto, helper  # noqa: E402

from nodenet.cli import main  # noqa: E402
from nodenet.engine.catalog import LAYERS  # noqa: E402
from nodenet.errors import NodenetError, ProjectFileError  # noqa: E402
from nodenet.export.onnx_import import import_onnx  # noqa: E402
from nodenet.graph.project import load  # noqa: E402
from nodenet.runner import build_model  # noqa: E402
from nodenet.safeio import read_npz  # noqa: E402

nn = torch.nn
SAMPLES = Path(__file__).parents[2] / "sample_projects"
TOL = {"rtol": 1e-4, "atol": 1e-4}


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return torch.softmax(self.out(torch.relu(self.hidden(x))), -1)


class CNN(nn.Module):
    """Conv + ReLU + BatchNorm (kept apart: after the ReLU), pooling, a strided conv whose
    padding Keras's "same" does not match, and a flatten of channels-first features."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.pool, self.avg = nn.MaxPool2d(2), nn.AvgPool2d(2, stride=1)
        self.conv2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.flat, self.fc = nn.Flatten(), nn.Linear(5 * 2 * 2, 3)

    def forward(self, x):
        h = self.pool(self.bn(torch.relu(self.conv1(x))))
        return self.fc(self.flat(self.avg(torch.relu(self.conv2(h)))))


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.gap = nn.Conv2d(4, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        h = self.bn(torch.relu(self.conv1(x)))
        y = torch.relu(self.conv2(h) + h)
        return self.fc(torch.flatten(self.gap(y), 1))


class Recurrent(nn.Module):
    """A classifier on the last step of an LSTM's (GRU's) sequence, batch first."""

    def __init__(self, cell):
        super().__init__()
        self.rnn, self.fc = cell(3, 5, batch_first=True), nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return torch.sigmoid(self.fc(out[:, -1]))


class FinalState(nn.Module):
    """A classifier on an LSTM's final hidden state ``h[-1]``."""

    def __init__(self):
        super().__init__()
        self.rnn, self.fc = nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 3)

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.fc(h[-1])


class BidirectionalStates(nn.Module):
    """A classifier on a bidirectional LSTM's final states, forward then backward."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.fc(torch.cat([h[0], h[1]], 1))


class ChannelOps(nn.Module):
    """Concatenation and softmax over NCHW channels (nodenet's last axis), a maximum and a
    product of feature maps, then a flatten of channels-first features."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 4, 1)
        self.fc = nn.Linear(7 * 5 * 5, 2)

    def forward(self, x):
        h = torch.softmax(torch.cat([torch.relu(self.a(x)), self.b(x)], 1), 1)
        return self.fc(torch.flatten(torch.maximum(h, h * h), 1))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.fc = nn.Linear(4, 6), nn.Linear(3, 6), nn.Linear(12, 2)

    def forward(self, x, z):
        a, b = torch.tanh(self.a(x)), torch.sigmoid(self.b(z))
        return self.fc(torch.cat([a * b, torch.maximum(a, b) - b], 1))


class Conv1DView(nn.Module):
    """Conv1d, an AvgPool1d whose zero padding counts in the average, ``x.view(n, -1)``
    (PyTorch's Shape/Gather/Concat/Reshape chain), LeakyReLU and BatchNorm1d."""

    def __init__(self):
        super().__init__()
        self.conv, self.pool = nn.Conv1d(3, 4, 3), nn.AvgPool1d(3, stride=2, padding=1)
        self.fc, self.act, self.bn = nn.Linear(4 * 4, 5), nn.LeakyReLU(0.2), nn.BatchNorm1d(5)

    def forward(self, x):
        h = self.pool(self.conv(x))
        return self.bn(self.act(self.fc(h.view(h.size(0), -1))))


class SequenceOut(nn.Module):
    """A GRU's whole sequence through a Linear applied at every step."""

    def __init__(self):
        super().__init__()
        self.rnn, self.fc = nn.GRU(3, 4, batch_first=True), nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out)


MODELS = {
    "conv1d_view": (Conv1DView, [(3, 10)]),
    "gru_sequence": (SequenceOut, [(6, 3)]),
    "mlp": (MLP, [(6,)]),
    "cnn_batchnorm_pooling": (CNN, [(3, 12, 12)]),
    "residual_cnn": (ResidualCNN, [(2, 6, 6)]),
    "lstm_classifier": (lambda: Recurrent(nn.LSTM), [(7, 3)]),
    "gru_classifier": (lambda: Recurrent(nn.GRU), [(7, 3)]),
    "rnn_classifier": (lambda: Recurrent(nn.RNN), [(7, 3)]),
    "lstm_final_state": (FinalState, [(5, 4)]),
    "bidirectional_lstm": (BidirectionalStates, [(6, 3)]),
    "two_inputs": (TwoInputs, [(4,), (3,)]),
    "channel_ops": (ChannelOps, [(2, 5, 5)]),
}


def exported(name: str, folder: Path) -> tuple[nn.Module, list[np.ndarray], Path]:
    """The model ``name`` with random BatchNorm statistics, a batch of 7, and its ONNX file
    as ``torch.onnx.export`` writes it (a dynamic batch axis)."""
    make, shapes = MODELS[name]
    torch.manual_seed(0)
    module = make().eval()
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d):
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2.0)
            layer.weight.data.uniform_(0.5, 1.5)
            layer.bias.data.uniform_(-0.5, 0.5)
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(7, *s)).astype(np.float32) for s in shapes]
    names = [f"x{k}" for k in range(len(xs))]
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(x) for x in xs),
            str(path),
            dynamo=False,  # the TorchScript exporter: the new one needs onnxscript
            input_names=names,
            output_names=["y"],
            dynamic_axes={n: {0: "batch"} for n in [*names, "y"]},
        )
    return module, xs, path


def channels_last(x: np.ndarray, shape: tuple) -> np.ndarray:
    """``x`` as the imported Input takes it: channels moved last when its shape says so."""
    return x if x.shape[1:] == tuple(shape) else np.moveaxis(x, 1, -1)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pytorch_exports_predict_as_pytorch(name, tmp_path):
    module, xs, path = exported(name, tmp_path)
    project, weights = import_onnx(path)
    model = build_model(project, seed=0)
    model.set_weights(weights)
    feed = {i: channels_last(x, model.shapes[i]) for i, x in zip(model.input_ids, xs, strict=True)}
    for batch in (1, 7):
        got = model.predict({k: v[:batch] for k, v in feed.items()})["y"]
        with torch.no_grad():
            want = module(*[torch.from_numpy(x[:batch]) for x in xs]).numpy()
        np.testing.assert_allclose(got, want, **TOL)


def test_the_imported_blocks_are_what_keras_would_have(tmp_path):
    """The CNN becomes channels-last blocks: a Conv2D with its ReLU folded in, the
    BatchNormalization, a ZeroPadding2D for PyTorch's padding Keras's "same" lacks, and a
    Permute before the Flatten so that it flattens in PyTorch's (channels-first) order."""
    _, _, path = exported("cnn_batchnorm_pooling", tmp_path)
    project, weights = import_onnx(path)
    kinds = [n.type for n in project.nodes]
    assert kinds == [
        "Input",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "ZeroPadding2D",
        "Conv2D",
        "AveragePooling2D",
        "Permute",
        "Flatten",
        "Dense",
        "Output",
    ]
    assert project.nodes[0].params["shape"] == [12, 12, 3]
    assert project.nodes[1].params["activation"] == "relu"
    conv = project.nodes[1].id
    assert weights[f"{conv}/kernel"].shape == (3, 3, 3, 4)  # Keras: (h, w, in, out)


def test_import_and_predict_on_the_command_line(tmp_path, capsys):
    module, xs, path = exported("gru_classifier", tmp_path)
    out = tmp_path / "imported.json"
    assert main(["import", str(path), "-o", str(out)]) == 0
    weights = tmp_path / "imported.weights.npz"
    assert weights.exists()
    np.savez(tmp_path / "x.npz", x0=xs[0])
    args = ["predict", str(out), "--weights", str(weights), "--input", str(tmp_path / "x.npz")]
    code = main([*args, "--output", str(tmp_path / "y.npz")])
    assert code == 0
    with torch.no_grad():
        want = module(torch.from_numpy(xs[0])).numpy()
    np.testing.assert_allclose(read_npz(tmp_path / "y.npz")["y"], want, **TOL)


# -- nodenet -> ONNX -> nodenet ----------------------------------------------------------

# every sample but those with Dropout (the identity in an inference graph: not in the file)
# or TextVectorization (not exported)
ROUND_TRIP = [
    "diabetes_regression",
    "digits_autoencoder",
    "digits_mlp",
    "mnist1d_cnn",
    "mnist1d_gru",
    "mnist_cnn",
    "mnist_mlp",
    "mnist_rows_lstm",
    "mnist_rows_simplernn",
    "mnist_softmax",
    "reviews_bilstm",
    "two_in_two_out",
]


def _export_onnx():
    try:
        from nodenet.export.onnx.export import export_onnx
    except ImportError:
        pytest.skip("ONNX export not built yet")
    return export_onnx


def _filled(node) -> dict:
    """A block's parameters with every default written out (what the block computes)."""
    if node.type == "Output":  # ONNX holds no loss: an imported head is scored by MSE
        return {}
    return {**{p.name: p.default for p in LAYERS.get(node.type).PARAMS}, **node.params}


@pytest.mark.parametrize("stem", ROUND_TRIP)
def test_nodenet_to_onnx_and_back_gives_the_same_graph_and_weights(stem, tmp_path):
    export_onnx = _export_onnx()
    project = load(SAMPLES / f"{stem}.json")
    model = build_model(project, seed=3)
    weights = model.get_weights()
    path = tmp_path / "model.onnx"
    onnx.save(export_onnx(project, weights), path)
    back, back_weights = import_onnx(path)
    assert [(n.id, n.type) for n in back.nodes] == [(n.id, n.type) for n in project.nodes]
    for before, after in zip(project.nodes, back.nodes, strict=True):
        assert _filled(after) == _filled(before), before.id
    assert sorted((e.src, e.dst, e.port, e.src_port) for e in back.edges) == sorted(
        (e.src, e.dst, e.port, e.src_port) for e in project.edges
    )
    assert sorted(back_weights) == sorted(weights)
    for key, array in weights.items():
        np.testing.assert_allclose(back_weights[key], array, rtol=1e-6, atol=1e-7, err_msg=key)


# -- hostile files ----------------------------------------------------------------------


def _model(nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _vec(name: str, size: int = 4):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", size])


def _save(model, folder: Path, name: str = "m.onnx") -> Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def test_truncated_and_corrupted_files_give_typed_errors_only(tmp_path):
    _, _, path = exported("cnn_batchnorm_pooling", tmp_path)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    cuts = sorted({int(c) for c in rng.integers(1, len(data), size=40)})
    flips = []
    for _ in range(60):
        damaged = bytearray(data)
        for k in rng.integers(0, len(data), size=4):
            damaged[k] = int(rng.integers(0, 256))
        flips.append(bytes(damaged))
    outcomes = {"refused": 0, "read": 0}
    for k, blob in enumerate([data[:c] for c in cuts] + flips + [b"", b"\x08" * 7]):
        target = tmp_path / f"bad_{k}.onnx"
        target.write_bytes(blob)
        try:
            import_onnx(target)
            outcomes["read"] += 1  # a flip in a weight's bytes still makes a model
        except NodenetError as err:
            assert "bad_" in str(err)  # the message names the file
            outcomes["refused"] += 1
    assert outcomes["refused"] > len(cuts) // 2


def test_huge_claimed_initializer_is_refused_before_its_data_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "64M")
    huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[200_000, 200_000])
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    path = _save(_model([node], [_vec("x")], [_vec("y")], [huge]), tmp_path)
    with pytest.raises(ProjectFileError, match=r"initializer 'w'.*memory budget"):
        import_onnx(path)


def test_huge_claimed_input_shape_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("NODENET_MEMORY_BUDGET", "64M")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10**6, 10**6])
    node = helper.make_node("Relu", ["x"], ["y"])
    path = _save(_model([node], [x], [_vec("y")]), tmp_path)
    with pytest.raises(ProjectFileError, match="memory budget"):
        import_onnx(path)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "a/../../b.bin"])
def test_external_data_outside_the_folder_is_refused(location, tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.zeros(16, np.float32))
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    (tmp_path / "inner").mkdir()
    path = _save(_model([node], [_vec("x")], [_vec("y")], [w]), tmp_path / "inner")
    with pytest.raises(ProjectFileError, match=r"leaves the (model's )?folder"):
        import_onnx(path)


def test_external_data_beside_the_model_is_read(tmp_path):
    kernel = np.arange(16, dtype=np.float32).reshape(4, 4)
    (tmp_path / "w.bin").write_bytes(b"\0" * 8 + kernel.tobytes())
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "w.bin"), ("offset", "8"), ("length", "64")):
        w.external_data.add(key=key, value=value)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    project, weights = import_onnx(_save(_model([node], [_vec("x")], [_vec("y")], [w]), tmp_path))
    (dense,) = [n for n in project.nodes if n.type == "Dense"]
    np.testing.assert_array_equal(weights[f"{dense.id}/kernel"], kernel)


def test_unknown_operators_are_refused_grouped_with_counts(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["h0"])]
    for k in range(5):
        nodes.append(helper.make_node("Celu", [f"h{k}"], [f"h{k + 1}"], name=f"celu_{k}"))
    nodes.append(helper.make_node("MyOp", ["h5"], ["y"], name="mine", domain="example.org"))
    path = _save(_model(nodes, [_vec("x")], [_vec("y")]), tmp_path)
    with pytest.raises(NodenetError) as caught:
        import_onnx(path)
    message = str(caught.value)
    assert "Celu x5 (celu_0, celu_1, celu_2, ... 2 more)" in message
    assert "MyOp (mine)" in message
    assert len(message.splitlines()) <= 4


def test_a_cycle_is_refused(tmp_path):
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Relu", ["b"], ["y"], name="third"),
    ]
    path = _save(_model(nodes, [_vec("x")], [_vec("y")]), tmp_path)
    with pytest.raises(ProjectFileError, match="cycle"):
        import_onnx(path)


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    (tmp_path / "notes.onnx").write_text("hello, this is text")
    with pytest.raises(ProjectFileError, match=r"notes\.onnx"):
        import_onnx(tmp_path / "notes.onnx")
    with pytest.raises(ProjectFileError, match=r"not a regular file|a folder"):
        import_onnx(tmp_path)


def test_an_initializer_holding_less_than_it_claims_is_refused(tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.zeros(16, np.float32))
    short = copy.deepcopy(w)
    del short.float_data[8:]
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    path = _save(_model([node], [_vec("x")], [_vec("y")], [short]), tmp_path)
    with pytest.raises(ProjectFileError, match="claims 16 values but holds 8"):
        import_onnx(path)


def _mutated(model: onnx.ModelProto, rng) -> onnx.ModelProto:
    """``model`` with one field made hostile: an attribute, a claimed dim, a wire, an
    operator, an input size, a removed node or attributes, an element type."""
    model = copy.deepcopy(model)
    g = model.graph
    node = g.node[rng.integers(len(g.node))]
    choice = rng.integers(0, 8)
    if choice == 0 and node.attribute:
        a = node.attribute[rng.integers(len(node.attribute))]
        if a.type == onnx.AttributeProto.INT:
            a.i = int(rng.choice([-1, 0, 2, 10**9]))
        elif a.type == onnx.AttributeProto.INTS and len(a.ints):
            a.ints[rng.integers(len(a.ints))] = int(rng.choice([-1, 0, 3, 10**9]))
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = float(rng.choice([0.0, -1.0, 1e30, np.nan]))
    elif choice == 1 and g.initializer:
        t = g.initializer[rng.integers(len(g.initializer))]
        if len(t.dims):
            t.dims[rng.integers(len(t.dims))] = int(rng.choice([0, 1, 3, 10**6]))
    elif choice == 2 and node.input:
        wires = [x.name for x in g.initializer] + [node.output[0], "", "nowhere"]
        node.input[rng.integers(len(node.input))] = str(rng.choice(wires))
    elif choice == 3:
        node.op_type = str(rng.choice(["Conv", "Gemm", "LSTM", "Reshape", "Gather", "Squeeze"]))
    elif choice == 4:
        dims = g.input[0].type.tensor_type.shape.dim
        dims[rng.integers(1, len(dims))].dim_value = int(rng.choice([0, 1, 7, 10**7]))
    elif choice == 5:
        g.node.remove(node)
    elif choice == 6:
        del node.attribute[:]
    elif g.initializer:
        g.initializer[rng.integers(len(g.initializer))].data_type = int(rng.choice([7, 8, 99]))
    return model


@pytest.mark.parametrize("name", ["cnn_batchnorm_pooling", "lstm_classifier", "two_inputs"])
def test_mutated_models_give_typed_errors_or_a_valid_project(name, tmp_path):
    _, _, path = exported(name, tmp_path)
    original = onnx.load(path)
    rng = np.random.default_rng(7)
    for k in range(60):
        target = tmp_path / f"mutated_{k}.onnx"
        target.write_bytes(_mutated(original, rng).SerializeToString())
        try:
            project, weights = import_onnx(target)
        except NodenetError:
            continue
        build_model(project, seed=0).set_weights(weights)  # what it imports fits its blocks
