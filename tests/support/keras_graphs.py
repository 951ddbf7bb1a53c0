"""Keras builders shared by the reference tests: blocks as Keras layers, random valid graphs.

:func:`random_graph` grows a graph step by step with Keras checking each step, so
only graphs Keras accepts are kept; :func:`compare_with_keras` names the first
disagreement with nodenet's analysis and its minimal subgraph. Needs the ``ref``
extra (keras on the torch backend); importing this module imports keras.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere

import keras
import numpy as np

from nodenet.engine.catalog import block_class, block_types
from nodenet.engine.model import Model
from nodenet.engine.params import Regularizer
from nodenet.graph.project import Edge, Node, Project, analyze, dumps

# -- translation: a block's config -> the Keras layer ----------------------------


def keras_kwargs(type_name: str, config: dict) -> dict:
    """The block's settings as Keras constructor arguments (same names)."""
    kwargs = {}
    cls = block_class(type_name)
    for param in cls.PARAMS:
        if param.name in cls.CALL_ARGS:  # given to the call, see to_keras
            continue
        value = config[param.name]
        if isinstance(param, Regularizer) and value is not None:
            value = keras.regularizers.L1L2(l1=value.get("l1", 0.0), l2=value.get("l2", 0.0))
        kwargs[param.name] = value
    return kwargs


# blocks whose Keras class keras.applications defines outside keras.layers
APPLICATION_LAYERS = {
    "LayerScale": "keras.src.applications.convnext",
    "CustomScaleLayer": "keras.src.applications.inception_resnet_v2",
}


def keras_class(type_name: str):
    """The Keras class of a block: keras.layers', or keras.applications' own."""
    if type_name in APPLICATION_LAYERS:
        return getattr(importlib.import_module(APPLICATION_LAYERS[type_name]), type_name)
    return getattr(keras.layers, type_name)


def to_keras(type_name: str, config: dict):
    """The Keras layer equivalent to a block; ``Output`` is Keras's ``Identity``."""
    if type_name == "Output":
        return keras.layers.Identity()
    if type_name == "Bidirectional":
        inner = config["layer"]
        inner_config = block_class(inner["type"])(inner["params"]).config
        inner_layer = to_keras(inner["type"], inner_config)
        return keras.layers.Bidirectional(inner_layer, merge_mode=config["merge_mode"])
    if type_name == "TimeDistributed":
        inner = config["layer"]
        inner_config = block_class(inner["type"])(inner["params"]).config
        return keras.layers.TimeDistributed(to_keras(inner["type"], inner_config))
    kwargs = keras_kwargs(type_name, config)
    klayer = keras_class(type_name)(**kwargs)
    # the block's call arguments (use_causal_mask), given by call_keras
    klayer.nodenet_call_kwargs = {k: config[k] for k in block_class(type_name).CALL_ARGS}
    return klayer


def call_keras(klayer, tensors: list, **kwargs):
    """Call a Keras layer on one tensor, or on a list for a merge (MultiHeadAttention on
    query, value, key), with the block's call arguments."""
    kwargs = {**getattr(klayer, "nodenet_call_kwargs", {}), **kwargs}
    if isinstance(klayer, keras.layers.MultiHeadAttention):
        return klayer(*tensors, **kwargs)
    if isinstance(klayer, keras.layers.RNN) and len(tensors) > 1:  # then its initial state
        return klayer(tensors[0], initial_state=list(tensors[1:]), **kwargs)
    return klayer(tensors if len(tensors) > 1 else tensors[0], **kwargs)


def keras_counts(klayer) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts of a built Keras layer."""

    def size(ws):
        return sum(int(np.prod(w.shape)) for w in ws)

    return size(klayer.trainable_weights), size(klayer.non_trainable_weights)


def keras_inputs(shapes, dtype: str = "float32") -> list:
    return [keras.Input(shape=tuple(s), dtype=dtype) for s in shapes]


# -- random graphs -------------------------------------------------------------

ACTIVATIONS = (
    "linear",
    "relu",
    "tanh",
    "sigmoid",
    "softmax",
    "elu",
    "gelu",
    "silu",
    "hard_sigmoid",
    "mish",
)
ELEMENTWISE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
RECURRENT = ("SimpleRNN", "LSTM", "GRU")


def pick(rng: np.random.Generator, options):
    """One of ``options`` as a plain Python value (nodenet refuses numpy scalars)."""
    return options[int(rng.integers(len(options)))]


def _ints(rng, low: int, high: int) -> int:
    return int(rng.integers(low, high + 1))


def _window(rng, shape) -> int:
    """A kernel or pool size up to 3; a fifth of the time the smallest spatial size or one
    more (Keras refuses that with valid padding, and nodenet must too)."""
    if rng.random() < 0.2:
        return min(shape[:-1]) + _ints(rng, 0, 1)
    return _ints(rng, 1, min(3, *shape[:-1]))


def _conv(rng, shape, paddings=("valid", "same")) -> dict:
    kernel = _window(rng, shape)
    return {
        "filters": _ints(rng, 1, 4),
        "kernel_size": kernel,
        "strides": _ints(rng, 1, 2),
        "padding": pick(rng, paddings),
        "activation": pick(rng, ACTIVATIONS),
    }


def _pool(rng, shape) -> dict:
    size = _window(rng, shape)
    strides = pick(rng, (None, 1, 2))
    return {"pool_size": size, "strides": strides, "padding": pick(rng, ("valid", "same"))}


def _recurrent(rng, shape) -> dict:
    return {"units": _ints(rng, 1, 6), "return_sequences": bool(rng.integers(2))}


def _bidirectional(rng, shape) -> dict:
    inner = [t for t in RECURRENT if t in block_types()] or ["LSTM"]
    kind = pick(rng, inner)
    return {
        "layer": {"type": kind, "params": _recurrent(rng, shape)},
        "merge_mode": pick(rng, ("concat", "sum", "mul", "ave")),
    }


def _crop(rng, size) -> list[int]:
    """Cropping at both ends of an axis of ``size`` that leaves at least one step."""
    before = _ints(rng, 0, (size - 1) // 2)
    return [before, _ints(rng, 0, size - 1 - before)]


def _depthwise(rng, shape) -> dict:
    return {
        "kernel_size": _window(rng, shape),
        "strides": _ints(rng, 1, 2),
        "padding": pick(rng, ("valid", "same")),
        "depth_multiplier": _ints(rng, 1, 2),
        "activation": pick(rng, ACTIVATIONS),
    }


def _separable(rng, shape) -> dict:
    return {**_depthwise(rng, shape), "filters": _ints(rng, 1, 4), "strides": 1}


def _relu(rng, shape) -> dict:
    return {
        "max_value": pick(rng, (None, 6.0, 0.5)),
        "negative_slope": pick(rng, (0.0, 0.1)),
        "threshold": pick(rng, (0.0, 0.2)),
    }


def _permute(rng, shape) -> dict:
    return {"dims": [int(d) + 1 for d in rng.permutation(len(shape))]}


# block type -> (ranks of the batch-free input shape it takes, settings drawn for a shape)
UNARY = {
    "Dense": (
        (1, 2, 3),
        lambda r, s: {"units": _ints(r, 1, 8), "activation": pick(r, ACTIVATIONS)},
    ),
    "Activation": ((1, 2, 3), lambda r, s: {"activation": pick(r, ACTIVATIONS)}),
    "Dropout": ((1, 2, 3), lambda r, s: {"rate": round(float(r.uniform(0, 0.8)), 2)}),
    "Flatten": ((2, 3), lambda r, s: {}),
    "BatchNormalization": ((1, 2, 3), lambda r, s: {}),
    "LayerNormalization": ((1, 2, 3), lambda r, s: {}),
    "Permute": ((2, 3), _permute),
    "RepeatVector": ((1,), lambda r, s: {"n": _ints(r, 1, 4)}),
    "Conv1D": ((2,), lambda r, s: _conv(r, s, ("valid", "same", "causal"))),
    "Conv2D": ((3,), _conv),
    "Conv2DTranspose": ((3,), _conv),
    "MaxPooling1D": ((2,), _pool),
    "AveragePooling1D": ((2,), _pool),
    "MaxPooling2D": ((3,), _pool),
    "AveragePooling2D": ((3,), _pool),
    "GlobalMaxPooling1D": ((2,), lambda r, s: {}),
    "GlobalAveragePooling1D": ((2,), lambda r, s: {}),
    "GlobalMaxPooling2D": ((3,), lambda r, s: {}),
    "GlobalAveragePooling2D": ((3,), lambda r, s: {}),
    "UpSampling1D": ((2,), lambda r, s: {"size": _ints(r, 1, 3)}),
    "UpSampling2D": ((3,), lambda r, s: {"size": _ints(r, 1, 2)}),
    **{t: ((2,), _recurrent) for t in RECURRENT},
    "Bidirectional": ((2,), _bidirectional),
    "ZeroPadding1D": ((2,), lambda r, s: {"padding": [_ints(r, 0, 2), _ints(r, 0, 2)]}),
    "ZeroPadding2D": ((3,), lambda r, s: {"padding": [_ints(r, 0, 2), _ints(r, 0, 2)]}),
    "Cropping1D": ((2,), lambda r, s: {"cropping": _crop(r, s[0])}),
    "Cropping2D": ((3,), lambda r, s: {"cropping": [_crop(r, s[0]), _crop(r, s[1])]}),
    "DepthwiseConv1D": ((2,), _depthwise),
    "DepthwiseConv2D": ((3,), _depthwise),
    "SeparableConv1D": ((2,), _separable),
    "SeparableConv2D": ((3,), _separable),
    "ReLU": ((1, 2, 3), _relu),
    "LeakyReLU": ((1, 2, 3), lambda r, s: {"negative_slope": pick(r, (0.3, 0.05))}),
    "PReLU": ((1, 2, 3), lambda r, s: {}),
    "ELU": ((1, 2, 3), lambda r, s: {"alpha": pick(r, (1.0, 0.5))}),
    "Softmax": ((1, 2, 3), lambda r, s: {}),
    "Identity": ((1, 2, 3), lambda r, s: {}),
    "Rescaling": ((1, 2, 3), lambda r, s: {"scale": 0.5, "offset": pick(r, (0.0, 1.0))}),
    "UnitNormalization": ((1, 2, 3), lambda r, s: {}),
    "SpatialDropout1D": ((2,), lambda r, s: {"rate": 0.3}),
    "SpatialDropout2D": ((3,), lambda r, s: {"rate": 0.3}),
    "GaussianNoise": ((1, 2, 3), lambda r, s: {"stddev": 0.1}),
    "GaussianDropout": ((1, 2, 3), lambda r, s: {"rate": 0.2}),
}


class Draft:
    """A graph being grown: nodenet nodes and edges beside the Keras tensors they make.

    Each step is first called in Keras; a step Keras refuses is dropped, so the
    finished graph is one Keras accepts. If nodenet accepts a step Keras refused,
    that disagreement is kept in ``refused``.
    """

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: list[Node] = []
        self.edges: list[Edge] = []
        self.tensors: dict = {}  # node id -> Keras tensor
        self.klayers: dict = {}  # node id -> Keras layer (None for Inputs)
        self.used: set[str] = set()
        self.refused: list[str] = []

    def shape(self, node_id: str) -> tuple:
        return tuple(self.tensors[node_id].shape[1:])

    def add_input(self, shape: tuple) -> str:
        node_id = f"input_{len(self.nodes)}"
        self.nodes.append(Node(node_id, "Input", {"shape": list(shape)}))
        self.tensors[node_id] = keras.Input(shape=shape)
        self.klayers[node_id] = None
        return node_id

    def add(self, type_name: str, params: dict, sources: list[str]) -> str | None:
        """Add a block fed by ``sources`` if Keras accepts it; its id, or None."""
        if type_name not in block_types():
            return None
        cls = block_class(type_name)
        declared = {p.name: p.default for p in cls.PARAMS}
        params = {k: v for k, v in params.items() if k in declared}
        try:
            klayer = to_keras(type_name, {**declared, **params})
            out = call_keras(klayer, [self.tensors[s] for s in sources])
        except Exception as err:  # Keras refuses: drop it, unless nodenet accepts it
            self._note_if_nodenet_accepts(type_name, params, sources, err)
            return None
        node_id = f"{type_name.lower()}_{len(self.nodes)}"
        self.nodes.append(Node(node_id, type_name, params))
        self.edges += [Edge(s, node_id, port) for port, s in enumerate(sources)]
        self.tensors[node_id], self.klayers[node_id] = out, klayer
        self.used.update(sources)
        return node_id

    def _note_if_nodenet_accepts(self, type_name, params, sources, err) -> None:
        shapes = [self.shape(s) for s in sources]
        try:
            layer = block_class(type_name)(params)
            layer.infer_shape(shapes)
            layer.count_params(shapes)
        except Exception:
            return
        reason = str(err).strip().splitlines()[0][:160]
        self.refused.append(f"{type_name} {params} on {shapes}: Keras says {reason}")

    def finish(self) -> Project:
        """Put an Output on every tensor nothing consumes; the document to compare."""
        for node_id in [n.id for n in self.nodes if n.id not in self.used]:
            out_id = f"output_{len(self.nodes)}"
            self.nodes.append(Node(out_id, "Output", {}))
            self.edges.append(Edge(node_id, out_id, 0))
            self.tensors[out_id], self.klayers[out_id] = self.tensors[node_id], None
        return Project("random", list(self.nodes), list(self.edges))


def merge_options(draft: Draft, sources: list[str]) -> list[tuple[str, dict]]:
    """Every merge Keras and nodenet both define on these tensors."""
    shapes = [draft.shape(s) for s in sources]
    options = []
    if all(s == shapes[0] for s in shapes):
        options += [(t, {}) for t in ELEMENTWISE if t != "Subtract" or len(shapes) == 2]
    rank = len(shapes[0])
    if all(len(s) == rank for s in shapes):
        for k in range(rank):
            rest = {s[:k] + s[k + 1 :] for s in shapes}
            if len(rest) == 1:
                axis = pick(draft.rng, (k + 1, k - rank))
                options.append(("Concatenate", {"axis": axis}))
    if len(shapes) == 2 and all(len(s) <= 2 for s in shapes):
        a, b = shapes
        for i in range(len(a)):
            for j in range(len(b)):
                if a[i] == b[j]:
                    axes = i + 1 if i == j and draft.rng.integers(2) else [i + 1, j + 1]
                    options.append(("Dot", {"axes": axes}))
    return options


def step_unary(draft: Draft, source: str) -> None:
    shape = draft.shape(source)
    options = [t for t, (ranks, _) in UNARY.items() if len(shape) in ranks]
    type_name = pick(draft.rng, options)
    draft.add(type_name, UNARY[type_name][1](draft.rng, shape), [source])


def step_merge(draft: Draft, source: str) -> None:
    """Merge ``source`` with one or two tensors of the same rank already in the graph."""
    rank = len(draft.shape(source))
    others = [n for n in draft.tensors if n != source and len(draft.shape(n)) == rank]
    if not others:
        return step_fork(draft, source)
    count = min(len(others), _ints(draft.rng, 1, 2))
    chosen = [source] + [others[i] for i in draft.rng.choice(len(others), count, replace=False)]
    if draft.rng.random() < 0.4:
        wild_merge(draft, chosen)
    elif not merge(draft, chosen):
        step_fork(draft, source)
    return None


def wild_merge(draft: Draft, sources: list[str]) -> None:
    """A merge drawn without looking at the shapes: Keras refuses most, nodenet must too.

    Element-wise merges are only tried where Keras would not broadcast (no size 1 against
    another size): nodenet requires equal shapes there by design.
    """
    shapes = [draft.shape(s) for s in sources]
    rank = len(shapes[0])
    type_name = pick(draft.rng, ["Concatenate", "Dot", *ELEMENTWISE])
    if type_name == "Concatenate":
        params = {"axis": pick(draft.rng, [*range(-rank, 0), *range(1, rank + 2)])}
    elif type_name == "Dot":
        sources = sources[:2]
        params = {"axes": [_ints(draft.rng, 1, rank + 1), _ints(draft.rng, 1, rank + 1)]}
    else:
        broadcast = any(1 in dims and len(set(dims)) > 1 for dims in zip(*shapes, strict=True))
        if broadcast or (type_name == "Subtract" and len(sources) != 2):
            return
        params = {}
    draft.add(type_name, params, sources)


def merge(draft: Draft, sources: list[str]) -> bool:
    """One merge of ``sources``, its type drawn first so that Concatenate does not crowd out
    the others; False if none fits."""
    options = merge_options(draft, sources) if len(sources) >= 2 else []
    if not options:
        return False
    type_name = pick(draft.rng, sorted({t for t, _ in options}))
    params = pick(draft.rng, [p for t, p in options if t == type_name])
    return draft.add(type_name, params, sources) is not None


def step_fork(draft: Draft, source: str) -> None:
    """Two or three branches from ``source`` shaped to fit, then one merge of them."""
    shape = draft.shape(source)
    same = bool(draft.rng.integers(2))  # same settings: element-wise merges fit
    branches = []
    for _ in range(_ints(draft.rng, 2, 3)):
        if len(shape) == 2 and draft.rng.integers(2):
            type_name = pick(draft.rng, RECURRENT)
            params = {"units": 4 if same else _ints(draft.rng, 1, 6), "return_sequences": True}
        elif len(shape) == 3 and draft.rng.integers(2):
            type_name = "Conv2D"
            params = {
                "filters": 3 if same else _ints(draft.rng, 1, 4),
                "kernel_size": 3,
                "padding": "same",
            }
        else:
            type_name, params = "Dense", {"units": 5 if same else _ints(draft.rng, 1, 8)}
        branch = draft.add(type_name, params, [source])
        if branch is not None:
            branches.append(branch)
    merge(draft, branches)


def random_input_shape(rng: np.random.Generator) -> tuple:
    rank = _ints(rng, 1, 3)
    if rank == 1:
        return (_ints(rng, 2, 9),)
    if rank == 2:
        return (_ints(rng, 3, 8), _ints(rng, 1, 5))
    return (_ints(rng, 4, 9), _ints(rng, 4, 9), _ints(rng, 1, 3))


def random_graph(seed: int) -> tuple[Project, Draft]:
    """A random graph Keras accepts: Inputs, then unary steps, merges and forks."""
    rng = np.random.default_rng(seed)
    draft = Draft(rng)
    first = draft.add_input(random_input_shape(rng))
    if rng.integers(3) == 0:  # a second input, sometimes of the same shape
        draft.add_input(draft.shape(first) if rng.integers(2) else random_input_shape(rng))
    for _ in range(_ints(rng, 2, 8)):
        ids = list(draft.tensors)
        weights = np.arange(1, len(ids) + 1, dtype=float) ** 2  # favour recent tensors
        source = ids[int(rng.choice(len(ids), p=weights / weights.sum()))]
        step = pick(rng, (step_unary, step_unary, step_unary, step_merge, step_fork))
        step(draft, source)
    return draft.finish(), draft


def subgraph(project: Project, node_id: str) -> Project:
    """``node_id`` and everything upstream of it, ending in one Output: a minimal example."""
    keep, stack = set(), [node_id]
    while stack:
        current = stack.pop()
        if current not in keep:
            keep.add(current)
            stack += [e.src for e in project.incoming(current)]
    nodes = [n for n in project.nodes if n.id in keep]
    edges = [e for e in project.edges if e.dst in keep]
    if project.node(node_id).type != "Output":
        nodes.append(Node("out", "Output", {}))
        edges.append(Edge(node_id, "out", 0))
    return Project("minimal", nodes, edges)


def minimal_json(project: Project, node_id: str) -> str:
    """The minimal example for ``node_id`` as the nodes and edges of a project file."""
    doc = subgraph(project, node_id).to_dict()
    return dumps({"nodes": doc["nodes"], "edges": doc["edges"]})


def compare_with_keras(project: Project, draft: Draft) -> str | None:
    """The first disagreement between nodenet's analysis and Keras, with its minimal graph."""
    analysis = analyze(project)
    for problem in analysis.problems:
        node = problem.node or project.nodes[-1].id
        return f"Keras accepts, nodenet refuses: {problem}\n{minimal_json(project, node)}"
    for node in project.nodes:
        klayer = draft.klayers[node.id]
        theirs = (draft.shape(node.id), keras_counts(klayer) if klayer is not None else (0, 0))
        ours = (analysis.shapes.get(node.id), analysis.params.get(node.id))
        if ours != theirs:
            return f"{node.id}: nodenet {ours}, Keras {theirs}\n{minimal_json(project, node.id)}"
    inputs = [draft.tensors[n.id] for n in project.inputs()]
    outputs = [draft.tensors[n.id] for n in project.outputs()]
    theirs = keras.Model(inputs, outputs).count_params()
    ours = sum(sum(counts) for counts in analysis.params.values())
    if ours != theirs:
        return f"total parameters: nodenet {ours}, Keras {theirs}\n{project.to_json()}"
    return None


def linear_heads(project):
    """Score every head by MSE, so backward takes plain dL/d(output) (no fused softmax)."""
    for node in project.nodes:
        if node.type == "Output":
            node.params = {"loss": "mean_squared_error", "metrics": []}
    return project


def torch_backend_pooling_quirk(model: Model) -> bool:
    """An AveragePooling with "same" padding split unevenly between the two ends.

    Keras's torch backend replicate-pads such windows and counts the copies;
    its TensorFlow and JAX backends (and nodenet) average over the real values
    only. Keras's own test suite skips this case on torch, so the graphs that
    contain it are compared with TF/JAX semantics in tests/engine/test_layers_conv.py.
    """
    for node_id in model.order:
        layer = model.layers[node_id]
        if not layer.TYPE.startswith("AveragePooling") or layer.config["padding"] != "same":
            continue
        (shape,) = [model.shapes[s] for s in model.sources[node_id]]
        pools = layer.config["pool_size"]
        pools = [pools] if isinstance(pools, int) else pools
        strides = layer.config["strides"] or pools
        strides = [strides] if isinstance(strides, int) else strides
        for length, k, s in zip(shape, pools, strides, strict=False):
            total = max(0, (-(-length // s) - 1) * s + k - length)
            if total % 2:
                return True
    return False


def torch_strided_pointwise_quirk(model: Model) -> bool:
    """A 2-D convolution of a one-channel input with a 1x1 kernel and a stride above 1.

    PyTorch's CPU ``conv2d`` (2.13) gives such a convolution's weight gradient two
    different values for the same inputs, call after call (a 4x8x4x1 input, 1x1 kernel,
    stride 2: 7.18 or 4.98 alternately; one of them the true sum), so it is no reference
    there; graphs holding one are left out of the gradient comparisons.
    """
    for node_id in model.order:
        layer = model.layers[node_id]
        if layer.TYPE not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
            continue
        (shape,) = [model.shapes[s] for s in model.sources[node_id]]
        kernel, strides = layer.config["kernel_size"], layer.config["strides"]
        kernel = [kernel] * 2 if isinstance(kernel, int) else kernel
        strides = [strides] * 2 if isinstance(strides, int) else strides
        if shape[-1] == 1 and all(k == 1 for k in kernel) and any(s > 1 for s in strides):
            return True
    return False
