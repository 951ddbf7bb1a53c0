"""The trained weights of a ``.keras`` archive as nodenet's ``node_id/weight_name`` arrays.

Keras 3 saves ``model.weights.h5`` by walking the model: each layer of a model is the
group ``layers/<snake_case class name>`` (``dense``, ``dense_1``, ... in the order of the
model's layers; a nested model's layers under ``layers/<its group>/layers``), its own
variables are ``vars/0..n`` in ``layer.weights`` order, and a layer's sublayers are
groups of their own (``lstm/cell/vars``, ``bidirectional/forward_layer/cell/vars``,
``multi_head_attention/query_dense/vars``). Recent versions also name the layer in the
``vars`` group's ``name`` attribute, which is read first.

The file is read with :mod:`h5py`, arrays only: links to other files, virtual and
externally stored datasets are refused, and every array's size is checked against the
memory budget before it is read. The arrays of each block are matched, in order, to its
``weight_specs`` (Keras names and layouts), with their shapes checked.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from nodenet.errors import NodenetError, WeightsError, shorten
from nodenet.safeio import fmt_bytes, memory_budget

WEIGHTS_MEMBER = "model.weights.h5"
# the order Keras's layer.weights gives sublayers where it is not alphabetical
_CHILD_ORDER = {
    "Bidirectional": ("forward_layer", "backward_layer"),
    "MultiHeadAttention": ("query_dense", "key_dense", "value_dense", "output_dense"),
}
# the same inside a wrapper (TimeDistributed(Bidirectional(GRU)) keeps layer/forward_layer)
_ANY_CHILD_ORDER = tuple(key for order in _CHILD_ORDER.values() for key in order)
NO_H5PY = (
    "reading the weights of a .keras archive needs h5py (pip install h5py); "
    "import the model without its weights with --no-weights"
)


@dataclass(frozen=True)
class Located:
    """Where a block's Keras layer keeps its weights in ``model.weights.h5``."""

    node_id: str
    kind: str  # the Keras class
    name: str  # the Keras layer name
    container: str  # the group holding the model's layers: "layers", "layers/sequential/layers"
    group: str  # the layer's group name as Keras's saving gives it ("dense_1")


def keras_snake(name: str) -> str:
    """A Keras class name in snake_case as Keras writes it (``keras.src.utils.naming.
    to_snake_case``): ``Conv2D`` is ``conv2d``, ``PReLU`` ``p_re_lu``, ``AUC`` ``auc``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def saved_name(kind: str, used: dict[str, int]) -> str:
    """The group name Keras's saving gives the next layer of class ``kind`` in a model
    (``keras.src.saving.saving_lib._get_unique_name`` of the snake_case class name)."""
    name = keras_snake(kind)
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def h5py_module() -> Any:
    try:
        import h5py
    except ImportError:
        raise NodenetError(NO_H5PY) from None
    return h5py


def read_weights(raw: bytes, located: list[Located], project: Any) -> dict[str, np.ndarray]:
    """The weights of ``project`` (an imported model) from the bytes of ``model.weights.h5``.

    Raises :class:`WeightsError` naming the layer when a block's arrays are missing or do
    not match its ``weight_specs``.
    """
    from nodenet.errors import ValidationError
    from nodenet.export._common import read_graph

    h5py = h5py_module()
    try:
        graph = read_graph(project)
    except ValidationError as err:
        first = shorten(str(err.problems[0]), 200) if err.problems else "?"
        raise WeightsError(
            f"the imported graph has {len(err.problems)} problem(s) ({first}), so its "
            "weights cannot be matched to blocks: import it without weights and fix it"
        ) from None
    try:
        h5 = h5py.File(io.BytesIO(raw), "r")
    except OSError as err:
        raise WeightsError(f"its {WEIGHTS_MEMBER} is not an HDF5 file ({err})") from None
    weights: dict[str, np.ndarray] = {}
    budget = [memory_budget()]
    named: dict[str, dict[str, str]] = {}  # per container: layer name -> its group's key
    with h5:
        for where in located:
            specs = graph.specs(where.node_id)
            group = _layer_group(h5, where, h5py, named) if specs else None
            arrays = _arrays(group, where.kind, h5py) if group is not None else []
            label = f"{where.kind} {where.name!r}"
            if len(arrays) != len(specs):
                raise WeightsError(
                    f"{label}: {WEIGHTS_MEMBER} holds {len(arrays)} weights for it, but the "
                    f"block has {len(specs)} ({', '.join(s.name for s in specs)})"
                )
            for spec, dataset in zip(specs, arrays, strict=True):
                if tuple(dataset.shape) != tuple(spec.shape):
                    raise WeightsError(
                        f"{label}: its weight {spec.name} has shape {tuple(dataset.shape)} in "
                        f"{WEIGHTS_MEMBER}, but the block needs {tuple(spec.shape)}"
                    )
                weights[f"{where.node_id}/{spec.name}"] = _read(dataset, label, budget)
    return weights


def _layer_group(h5: Any, where: Located, h5py: Any, named: dict[str, dict[str, str]]) -> Any:
    """The group of ``where``'s layer: the one whose ``vars`` names the layer, else the
    group Keras's saving names by class; a :class:`WeightsError` when there is none.
    ``named`` caches each container's layer names."""
    container = _child(h5, where.container, h5py)
    if container is not None:
        if where.container not in named:
            named[where.container] = _names(container, h5py)
        key = named[where.container].get(where.name)
        if key is not None:
            return _child(container, key, h5py)
        group = _child(container, where.group, h5py)
        if group is not None:
            variables = _child(group, "vars", h5py)
            named = variables.attrs.get("name") if variables is not None else None
            if named is None or named == where.name:
                return group
    raise WeightsError(
        f"{where.kind} {where.name!r}: {WEIGHTS_MEMBER} has no weights for it "
        f"(looked for {where.container}/{where.group})"
    )


def _names(container: Any, h5py: Any) -> dict[str, str]:
    """The layer name each group of ``container`` saves in its ``vars`` attributes."""
    names = {}
    for key in container:
        group = _child(container, key, h5py)
        variables = _child(group, "vars", h5py) if group is not None else None
        name = variables.attrs.get("name") if variables is not None else None
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        if isinstance(name, str):
            names.setdefault(name, key)
    return names


def _child(group: Any, key: str, h5py: Any) -> Any:
    """``group[key]`` when it is a group reached by a hard link; ``None`` when absent;
    a :class:`WeightsError` for a link elsewhere (another file, another path)."""
    node = group
    for part in key.split("/"):
        if not isinstance(node, h5py.Group) or part not in node:
            return None
        link = node.get(part, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise WeightsError(
                f"{WEIGHTS_MEMBER}: {shorten(node.name + '/' + part)} is a link "
                f"({type(link).__name__}), which nodenet does not follow"
            )
        node = node[part]
    return node


def _arrays(group: Any, kind: str, h5py: Any) -> list[Any]:
    """The datasets of a layer's group in ``layer.weights`` order: its own ``vars/0..n``,
    then its sublayers' (in Keras's order where it is not alphabetical)."""
    found = []
    variables = _child(group, "vars", h5py)
    if variables is not None:
        keys = sorted((k for k in variables if k.isdigit()), key=int)
        for key in keys:
            link = variables.get(key, getlink=True)
            dataset = variables[key] if isinstance(link, h5py.HardLink) else None
            if not isinstance(dataset, h5py.Dataset):
                raise WeightsError(
                    f"{WEIGHTS_MEMBER}: {shorten(variables.name)}/{key} is not an array"
                )
            found.append(dataset)
    order = _CHILD_ORDER.get(kind, _ANY_CHILD_ORDER)
    children = [k for k in group if k != "vars"]
    children.sort(key=lambda k: (order.index(k) if k in order else len(order), k))
    for key in children:
        child = _child(group, key, h5py)
        if child is not None:
            found += _arrays(child, "", h5py)
    return found


def _read(dataset: Any, label: str, budget: list[int]) -> np.ndarray:
    """A dataset's array once its type and size are checked: numbers only, stored in the
    file itself, within what is left of the memory budget."""
    if dataset.dtype.kind not in "fiu":
        raise WeightsError(f"{label}: {dataset.name} is not numeric ({dataset.dtype})")
    if dataset.is_virtual or dataset.external:
        raise WeightsError(f"{label}: {dataset.name} is stored outside the file")
    size = int(np.prod(dataset.shape, dtype=np.int64)) * dataset.dtype.itemsize
    if size > budget[0]:
        raise WeightsError(
            f"{label}: {dataset.name} needs {fmt_bytes(size)}, more than the memory budget left"
        )
    budget[0] -= size
    return np.asarray(dataset[()], dtype=np.float32)
