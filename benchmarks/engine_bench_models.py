"""The models ``engine_vs_torch.py`` trains, each three ways: a nodenet project, the same
network as a hand-written PyTorch module, and the same project built in Keras 3.

Also what the benchmark reports about a model: its parameter counts in each framework
(which must agree, or the comparison is not like for like) and the FLOPs of one training
step, counted from the layer shapes:

- only matrix products and convolutions count (a Dense, Conv1D/2D/3D kernel, and the
  kernel and recurrent kernel of SimpleRNN, LSTM, GRU and Bidirectional); biases,
  activations, pooling, normalization and embedding look-ups are left out;
- forward: ``2 * m * n * k`` per product, i.e. ``2 * kernel.size`` per position the kernel
  is applied at (each output position of a Dense or convolution, each time step of a
  recurrent layer, for each direction of a Bidirectional);
- a training step is three forwards (the forward product, and two products of the same size
  in the backward pass: the gradient of the input and the gradient of the kernel).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from nodenet.engine.model import Model
from nodenet.graph.project import Edge, Node, Project
from nodenet.runner import build_model

BATCH = 128  # samples per batch, unless BATCHES says otherwise
BATCHES = {"deep_mlp": 32}
VOCAB = 10_000  # tokens of the int32 inputs are drawn below this
OUT = {"loss": "categorical_crossentropy", "metrics": []}
SOFTMAX10 = ("Dense", {"units": 10, "activation": "softmax"})


def batch_of(name: str) -> int:
    """The batch size the model ``name`` trains with."""
    return BATCHES.get(name, BATCH)


def chain(name, input_shape, layers, dtype="float32"):
    """A project: one Input, ``layers`` (type, params) one after another, one Output."""
    nodes = [Node("x", "Input", {"shape": list(input_shape), "dtype": dtype})]
    for i, (kind, params) in enumerate(layers):
        nodes.append(Node(f"n{i}", kind, params))
    nodes.append(Node("y", "Output", OUT))
    ids = [n.id for n in nodes]
    return Project(name, nodes, [Edge(a, b) for a, b in itertools.pairwise(ids)])


def two_input():
    """Dense(128) on a 784-vector and LSTM(64) on a 28x28 sequence, concatenated, Dense 10."""
    nodes = [
        Node("a", "Input", {"shape": [784]}),
        Node("b", "Input", {"shape": [28, 28]}),
        Node("da", "Dense", {"units": 128, "activation": "relu"}),
        Node("lb", "LSTM", {"units": 64}),
        Node("cat", "Concatenate", {}),
        Node("out", "Dense", {"units": 10, "activation": "softmax"}),
        Node("y", "Output", OUT),
    ]
    edges = [
        Edge("a", "da"),
        Edge("b", "lb"),
        Edge("da", "cat", 0),
        Edge("lb", "cat", 1),
        Edge("cat", "out"),
        Edge("out", "y"),
    ]
    return Project("two_input", nodes, edges)


def relu_dense(units):
    return ("Dense", {"units": units, "activation": "relu"})


def conv_bn_relu(filters):
    return [
        ("Conv2D", {"filters": filters, "kernel_size": 3}),
        ("BatchNormalization", {}),
        ("Activation", {"activation": "relu"}),
        ("MaxPooling2D", {}),
    ]


MODELS = {
    "mlp": lambda: chain("mlp", (784,), [relu_dense(128), relu_dense(128), SOFTMAX10]),
    "cnn": lambda: chain(
        "cnn",
        (28, 28, 1),
        [
            ("Conv2D", {"filters": 32, "kernel_size": 3, "activation": "relu"}),
            ("MaxPooling2D", {}),
            ("Conv2D", {"filters": 64, "kernel_size": 3, "activation": "relu"}),
            ("MaxPooling2D", {}),
            ("Flatten", {}),
            relu_dense(128),
            SOFTMAX10,
        ],
    ),
    "lstm": lambda: chain("lstm", (28, 28), [("LSTM", {"units": 128}), SOFTMAX10]),
    "simple_rnn": lambda: chain("simple_rnn", (28, 28), [("SimpleRNN", {"units": 256}), SOFTMAX10]),
    "two_input": two_input,
    "gru": lambda: chain("gru", (28, 28), [("GRU", {"units": 128}), SOFTMAX10]),
    "conv1d": lambda: chain(
        "conv1d",
        (128, 8),
        [
            ("Conv1D", {"filters": 64, "kernel_size": 5, "activation": "relu"}),
            ("MaxPooling1D", {}),
            ("Conv1D", {"filters": 64, "kernel_size": 5, "activation": "relu"}),
            ("GlobalAveragePooling1D", {}),
            SOFTMAX10,
        ],
    ),
    "bn_cnn": lambda: chain(
        "bn_cnn", (28, 28, 1), [*conv_bn_relu(32), *conv_bn_relu(64), ("Flatten", {}), SOFTMAX10]
    ),
    "deep_mlp": lambda: chain("deep_mlp", (784,), [*[relu_dense(256)] * 4, SOFTMAX10]),
    "emb_bilstm": lambda: chain(
        "emb_bilstm",
        (80,),
        [
            ("Embedding", {"input_dim": VOCAB, "output_dim": 64}),
            ("Bidirectional", {"layer": {"type": "LSTM", "params": {"units": 64}}}),
            SOFTMAX10,
        ],
        dtype="int32",
    ),
}


def random_data(model: Model, n: int, rng):
    """``n`` random samples for every Input (int32 tokens below VOCAB for an int32 Input,
    standard normal floats otherwise) and one-hot targets over 10 classes for every head."""
    x = {}
    for i in model.input_ids:
        shape = (n, *model.shapes[i])
        if model.layers[i].config["dtype"] == "int32":
            x[i] = rng.integers(0, VOCAB, shape, dtype=np.int32)
        else:
            x[i] = rng.normal(size=shape).astype(np.float32)
    y = {h.id: np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)] for h in model.heads}
    return x, y


# -- counting --------------------------------------------------------------------------

RECURRENT = ("SimpleRNN", "LSTM", "GRU", "Bidirectional")
PRODUCTS = ("Dense", "Conv1D", "Conv2D", "Conv3D")


def forward_flops(project) -> int:
    """FLOPs of one sample's forward pass through ``project``'s matrix products and
    convolutions (the rule in the module docstring); a training step costs three times this
    per sample."""
    model = build_model(project, fuse=False)
    total = 0
    for node_id in model.order:
        kind = model.layers[node_id].TYPE
        if kind in PRODUCTS:
            uses = math.prod(model.shape_of(node_id)[:-1])  # output positions
        elif kind in RECURRENT:
            uses = model.input_shapes(node_id)[0][0]  # time steps
        else:
            continue
        for spec in model.specs[node_id]:
            if spec.name.endswith("kernel"):  # kernel, recurrent_kernel, forward/kernel ...
                total += 2 * uses * spec.size
    return total


def nodenet_params(project) -> tuple[int, int]:
    """(trainable, non-trainable) weight counts of nodenet's model of ``project``."""
    return build_model(project).count_params()


def torch_params(module) -> tuple[int, int]:
    """(trainable, non-trainable) counts of a torch module, as Keras counts them: trained
    parameters, and float buffers (BatchNorm's running statistics). Parameters held frozen
    (the zeroed second recurrent bias, see ``single_bias``) are no weight of the Keras model
    and are not counted."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    stats = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return trainable, stats


def keras_params(model) -> tuple[int, int]:
    """(trainable, non-trainable) weight counts of a Keras model."""
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return trainable, model.count_params() - trainable


# -- torch -----------------------------------------------------------------------------


def single_bias(rnn):
    """``rnn`` (nn.LSTM or nn.RNN) with its second bias (``bias_hh``) zeroed and frozen:
    torch adds two biases where Keras's LSTM and SimpleRNN have one, so this is Keras's
    cell exactly (a GRU keeps both: they are Keras's reset_after biases)."""
    for name, p in rnn.named_parameters():
        if name.startswith("bias_hh"):
            p.data.zero_()
            p.requires_grad_(False)
    return rnn


def torch_inputs(x: dict) -> list:
    """The benchmark's input arrays as torch tensors (int64 token indices for torch)."""
    import torch

    return [torch.from_numpy(v.astype(np.int64) if v.dtype.kind == "i" else v) for v in x.values()]


def torch_module(name):
    """The PyTorch module equivalent to ``MODELS[name]``, returning logits (the loss applies
    the softmax, as CrossEntropyLoss does)."""
    import torch
    from torch import nn

    class LastStep(nn.Module):
        def __init__(self, rnn):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            out, _ = self.rnn(x)
            return out[:, -1]

    class BothEnds(nn.Module):
        """Keras's Bidirectional(LSTM) without return_sequences: the forward direction's
        last step and the backward direction's output at step 0 (its last), concatenated."""

        def __init__(self, rnn):
            super().__init__()
            self.rnn = rnn

        def forward(self, x):
            out, _ = self.rnn(x)
            units = self.rnn.hidden_size
            return torch.cat([out[:, -1, :units], out[:, 0, units:]], dim=1)

    class Permute(nn.Module):  # channels-last (Keras) to channels-first (torch)
        def __init__(self, *dims):
            super().__init__()
            self.dims = dims

        def forward(self, x):
            return x.permute(0, *self.dims)

    class MeanSteps(nn.Module):  # GlobalAveragePooling1D on (batch, channels, steps)
        def forward(self, x):
            return x.mean(dim=2)

    def bn(channels):  # Keras's BatchNormalization defaults: momentum 0.99, epsilon 1e-3
        return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)

    def mlp(*sizes):
        layers = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    if name == "mlp":
        return mlp(784, 128, 128, 10)
    if name == "deep_mlp":
        return mlp(784, 256, 256, 256, 256, 10)
    if name == "cnn":
        return nn.Sequential(
            Permute(3, 1, 2),
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )
    if name == "bn_cnn":
        return nn.Sequential(
            Permute(3, 1, 2),
            nn.Conv2d(1, 32, 3),
            bn(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            bn(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 5 * 5, 10),
        )
    if name == "conv1d":
        return nn.Sequential(
            Permute(2, 1),
            nn.Conv1d(8, 64, 5),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(64, 64, 5),
            nn.ReLU(),
            MeanSteps(),
            nn.Linear(64, 10),
        )
    if name == "lstm":
        rnn = single_bias(nn.LSTM(28, 128, batch_first=True))
        return nn.Sequential(LastStep(rnn), nn.Linear(128, 10))
    if name == "simple_rnn":
        rnn = single_bias(nn.RNN(28, 256, batch_first=True))
        return nn.Sequential(LastStep(rnn), nn.Linear(256, 10))
    if name == "gru":  # torch's GRU is Keras's reset_after=True (the default)
        return nn.Sequential(LastStep(nn.GRU(28, 128, batch_first=True)), nn.Linear(128, 10))
    if name == "emb_bilstm":
        rnn = single_bias(nn.LSTM(64, 64, batch_first=True, bidirectional=True))
        return nn.Sequential(nn.Embedding(VOCAB, 64), BothEnds(rnn), nn.Linear(128, 10))
    if name != "two_input":
        raise KeyError(f"no torch module for the benchmark model {name!r}")

    class TwoInput(nn.Module):
        def __init__(self):
            super().__init__()
            self.da = nn.Linear(784, 128)
            self.lb = LastStep(single_bias(nn.LSTM(28, 64, batch_first=True)))
            self.out = nn.Linear(192, 10)

        def forward(self, a, b):
            return self.out(torch.cat([torch.relu(self.da(a)), self.lb(b)], dim=1))

    return TwoInput()


# -- keras -----------------------------------------------------------------------------


def keras_layer(keras, kind: str, params: dict):
    """The Keras layer of a nodenet block (a Bidirectional's ``layer`` built first)."""
    params = dict(params)
    if kind == "Bidirectional":
        inner = params.pop("layer")
        params["layer"] = keras_layer(keras, inner["type"], inner["params"])
    return getattr(keras.layers, kind)(**params)


def keras_model(project):
    """``project`` built with Keras 3's functional API, compiled with Adam(1e-3)."""
    import keras

    tensors = {}
    ins = []
    for node in project.nodes:
        if node.type == "Input":
            shape = tuple(node.params["shape"])
            dtype = node.params.get("dtype", "float32")
            tensors[node.id] = keras.Input(shape=shape, dtype=dtype, name=node.id)
            ins.append(tensors[node.id])
    outs = []
    for node in project.nodes:
        if node.type == "Input":
            continue
        sources = [tensors[e.src] for e in project.incoming(node.id)]
        if node.type == "Output":
            outs.append(sources[0])
            continue
        layer = keras_layer(keras, node.type, node.params)
        tensors[node.id] = layer(sources if len(sources) > 1 else sources[0])
    model = keras.Model(ins, outs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model
