"""Keras 3 (torch backend) as the independent reference for every block and for whole graphs.

(a) Every block of the catalog, every declared example: the Keras layer built from
    the block's config gives the same output shape and parameter counts, and with
    the same float32 weights the same inference output (relative float32 tolerance
    1e-5, absolute 1e-5 near zero) and the same gradients of ``sum(output * R)``
    for inputs and weights (torch autograd through the Keras layer, within 1e-4).
    New blocks are covered without new test code. Merges Keras refuses are refused
    too, in one sentence naming both shapes.
(b) A few hundred random graphs (seeded numpy), grown with Keras checking each step,
    so only graphs Keras accepts are kept: every node's shape and parameter count,
    and the total, must be what Keras says; a failure prints the smallest subgraph.
(c) The two-input, two-output functional graph of the product brief.
"""

from __future__ import annotations

import os
from collections import Counter

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from nodenet.engine.catalog import Context, block_class, block_types  # noqa: E402
from nodenet.engine.params import Regularizer  # noqa: E402
from nodenet.errors import ShapeError  # noqa: E402
from nodenet.project import Edge, Node, Project, analyze, dumps  # noqa: E402
from tests.engine.gradcheck import concrete, make_inputs, make_weights  # noqa: E402

pytestmark = pytest.mark.ref

if keras.backend.backend() != "torch":  # keras was imported earlier with another backend
    pytest.skip("these tests need keras on the torch backend", allow_module_level=True)

FORWARD_TOL = {"rtol": 1e-5, "atol": 1e-5}
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-4}


# -- translation: a block's config -> the Keras layer ----------------------------


def keras_kwargs(type_name: str, config: dict) -> dict:
    """The block's settings as Keras constructor arguments (same names)."""
    kwargs = {}
    for param in block_class(type_name).PARAMS:
        value = config[param.name]
        if isinstance(param, Regularizer) and value is not None:
            value = keras.regularizers.L1L2(l1=value.get("l1", 0.0), l2=value.get("l2", 0.0))
        kwargs[param.name] = value
    return kwargs


def to_keras(type_name: str, config: dict):
    """The Keras layer equivalent to a block; ``Output`` is Keras's ``Identity``."""
    if type_name == "Output":
        return keras.layers.Identity()
    kwargs = keras_kwargs(type_name, config)
    if type_name == "Bidirectional":
        inner, merge_mode = kwargs.pop("layer"), kwargs.pop("merge_mode")
        own = {p.name for p in block_class(inner).PARAMS}  # the settings that apply to it
        inner_layer = getattr(keras.layers, inner)(**{k: v for k, v in kwargs.items() if k in own})
        return keras.layers.Bidirectional(inner_layer, merge_mode=merge_mode)
    return getattr(keras.layers, type_name)(**kwargs)


def call_keras(klayer, tensors: list, **kwargs):
    """Call a Keras layer on one tensor, or on a list for a merge."""
    return klayer(tensors if len(tensors) > 1 else tensors[0], **kwargs)


def keras_counts(klayer) -> tuple[int, int]:
    """(trainable, non-trainable) parameter counts of a built Keras layer."""

    def size(ws):
        return sum(int(np.prod(w.shape)) for w in ws)

    return size(klayer.trainable_weights), size(klayer.non_trainable_weights)


def keras_inputs(shapes, dtype: str = "float32") -> list:
    return [keras.Input(shape=tuple(s), dtype=dtype) for s in shapes]


# -- (a) every block, every example ------------------------------------------------

CASES = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name in block_types()
    for i in range(len(block_class(name).EXAMPLES))
]


def _build(name: str, index: int):
    cls = block_class(name)
    example = cls.EXAMPLES[index]
    return cls(example.params, "node"), example


@pytest.mark.parametrize("name,index", CASES)
def test_shape_and_parameter_counts_match_keras(name, index):
    layer, example = _build(name, index)
    if layer.N_INPUTS == 0:  # Input: keras.Input of the same shape and dtype
        tensor = keras.Input(shape=tuple(layer.config["shape"]), dtype=layer.config["dtype"])
        assert tuple(tensor.shape[1:]) == layer.infer_shape([])
        assert layer.count_params([]) == (0, 0)
        return
    shapes = list(example.input_shapes)
    klayer = to_keras(name, layer.config)
    out = call_keras(klayer, keras_inputs(shapes, example.input_dtype))
    assert layer.infer_shape(shapes) == tuple(out.shape[1:])
    assert layer.count_params(shapes) == keras_counts(klayer)
    specs = layer.weight_specs(shapes)
    assert [s.shape for s in specs] == [tuple(w.shape) for w in klayer.weights]
    for spec, weight in zip(specs, klayer.weights, strict=True):
        assert spec.name.endswith(weight.name), f"weight {spec.name!r} is {weight.path} in Keras"
        assert spec.trainable == weight.trainable, spec.name


# an Input only passes its data on: its shape and dtype are checked above
COMPUTING_CASES = [case for case in CASES if block_class(case.values[0]).N_INPUTS != 0]


@pytest.mark.parametrize("name,index", COMPUTING_CASES)
def test_forward_and_gradients_match_keras(name, index):
    layer, example = _build(name, index)
    rng = np.random.default_rng(index)
    shapes = [concrete(s) for s in example.input_shapes]
    inputs = make_inputs(layer, example, rng, dtype=np.float32)
    weights = make_weights(layer, shapes, rng, dtype=np.float32)
    specs = layer.weight_specs(shapes)
    klayer = to_keras(name, layer.config)
    call_keras(klayer, keras_inputs(example.input_shapes, example.input_dtype))
    klayer.set_weights([weights[s.name] for s in specs])

    out, cache = layer.forward(weights, inputs, Context(training=False))
    tensors = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    kout = call_keras(klayer, tensors, training=False)
    np.testing.assert_allclose(out, kout.detach().numpy(), **FORWARD_TOL)

    probe = rng.normal(size=out.shape).astype(np.float32)
    (kout * torch.from_numpy(probe)).sum().backward()
    input_grads, weight_grads = layer.backward(weights, cache, probe.copy())
    for i, (ours, tensor) in enumerate(zip(input_grads, tensors, strict=True)):
        if not tensor.requires_grad:
            assert ours is None, f"input {i} holds indices: no gradient"
            continue
        theirs = _grad_of(tensor)
        np.testing.assert_allclose(ours, theirs, **GRAD_TOL, err_msg=f"input {i}")
    for spec, weight in zip(specs, klayer.weights, strict=True):
        if spec.trainable:
            theirs = _grad_of(weight.value)
            np.testing.assert_allclose(
                weight_grads[spec.name], theirs, **GRAD_TOL, err_msg=spec.name
            )


def _grad_of(tensor) -> np.ndarray:
    """The gradient autograd left on a tensor (zeros if it did not reach it)."""
    if tensor.grad is None:
        return np.zeros(tuple(tensor.shape), dtype=np.float32)
    return tensor.grad.detach().numpy()


REFUSED_MERGES = [
    (
        "Concatenate",
        {},
        [(128,), (28, 64)],
        "cannot concatenate (None, 128) and (None, 28, 64) on axis -1",
    ),
    (
        "Concatenate",
        {"axis": 1},
        [(2, 4), (3, 5)],
        "cannot concatenate (None, 2, 4) and (None, 3, 5) on axis 1",
    ),
    ("Add", {}, [(128,), (64,)], "cannot add (None, 128) and (None, 64)"),
    ("Subtract", {}, [(3, 4), (3, 5)], "cannot subtract (None, 3, 4) and (None, 3, 5)"),
    ("Maximum", {}, [(4,), (4,), (5,)], "cannot take the maximum of (None, 4) and (None, 5)"),
    ("Dot", {"axes": 1}, [(3,), (4,)], "cannot take the dot product of (None, 3) and (None, 4)"),
]


@pytest.mark.parametrize("type_name,params,shapes,message", REFUSED_MERGES)
def test_merges_keras_refuses_are_refused_in_one_sentence(type_name, params, shapes, message):
    with pytest.raises(ValueError):
        call_keras(to_keras(type_name, block_class(type_name)(params).config), keras_inputs(shapes))
    with pytest.raises(ShapeError) as info:
        block_class(type_name)(params).infer_shape(shapes)
    text = str(info.value)
    assert text.startswith(message)
    assert "\n" not in text and text.count(". ") == 0


# -- (b) random graphs -------------------------------------------------------------

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax", "elu", "gelu")
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
    return {
        "layer": pick(rng, inner),
        **_recurrent(rng, shape),
        "merge_mode": pick(rng, ("concat", "sum", "mul", "ave")),
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


GRAPHS = 300


def test_random_graphs_match_keras():
    failures, refused, used = [], [], Counter()
    for seed in range(GRAPHS):
        project, draft = random_graph(seed)
        used.update(n.type for n in project.nodes)
        refused += [f"seed {seed}: {r}" for r in draft.refused]
        failure = compare_with_keras(project, draft)
        if failure is not None:
            failures.append(f"seed {seed}: {failure}")
    assert not failures, f"{len(failures)} graph(s) disagree; the first:\n{failures[0]}"
    assert not refused, "nodenet accepts what Keras refuses:\n" + "\n".join(refused[:10])
    # the generator really draws every block it knows, and DAGs with merges
    drawable = {*UNARY, "Concatenate", "Dot", *ELEMENTWISE} & set(block_types())
    assert drawable <= set(used), f"never drawn: {sorted(drawable - set(used))}"
    assert sum(used[t] for t in ("Concatenate", "Dot", *ELEMENTWISE)) >= GRAPHS // 2


# -- (c) the two-input, two-output graph of the brief --------------------------------

TWO_HEADS = [
    ("a", "Input", {"shape": [32]}, []),
    ("dense_a", "Dense", {"units": 64, "activation": "relu"}, ["a"]),
    ("b", "Input", {"shape": [10, 8]}, []),
    ("lstm_b", "LSTM", {"units": 16}, ["b"]),
    ("joined", "Concatenate", {}, ["dense_a", "lstm_b"]),
    ("dense_10", "Dense", {"units": 10, "activation": "softmax"}, ["joined"]),
    ("dense_1", "Dense", {"units": 1}, ["joined"]),
    ("out_1", "Output", {}, ["dense_10"]),
    ("out_2", "Output", {"loss": "mean_squared_error", "metrics": ["mae"]}, ["dense_1"]),
]


def test_two_input_two_output_graph_matches_keras():
    project = Project("two-heads")
    tensors, klayers = {}, {}
    for node_id, type_name, params, sources in TWO_HEADS:
        project.nodes.append(Node(node_id, type_name, params))
        project.edges += [Edge(s, node_id, port) for port, s in enumerate(sources)]
        if type_name == "Input":
            tensors[node_id] = keras.Input(shape=tuple(params["shape"]))
        elif type_name == "Output":
            tensors[node_id] = tensors[sources[0]]
        else:
            config = block_class(type_name)(params).config
            klayers[node_id] = to_keras(type_name, config)
            tensors[node_id] = call_keras(klayers[node_id], [tensors[s] for s in sources])
    analysis = analyze(project)
    assert analysis.ok, analysis.problems
    for node_id, _, _, _ in TWO_HEADS:
        assert analysis.shapes[node_id] == tuple(tensors[node_id].shape[1:]), node_id
        expected = keras_counts(klayers[node_id]) if node_id in klayers else (0, 0)
        assert analysis.params[node_id] == expected, node_id
    model = keras.Model([tensors["a"], tensors["b"]], [tensors["out_1"], tensors["out_2"]])
    total = sum(sum(c) for c in analysis.params.values())
    assert total == model.count_params() == 4603  # 2112 + 1600 + 810 + 81, by hand
    assert analysis.shapes["joined"] == (80,)
