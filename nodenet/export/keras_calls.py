"""How a Keras 3 functional config calls a layer: its input tensors, constants, keywords.

Keras 3 writes each call as ``{"args": [tensor or [tensors], ...], "kwargs": {...}}``
(Keras 2 as ``[[name, node_index, tensor_index, kwargs], ...]``). A Keras op between
tensors (``h + x``, ``keras.ops.maximum(h, x)``) is written with its op class (``Add``,
``TrueDivide``) from ``keras.src.ops`` and reads every positional operand; those of
:data:`MERGE_OPS` are nodenet merges.
"""

from __future__ import annotations

import math
import re
from typing import Any

from nodenet.errors import brief, shorten

# Keras ops between tensors (``h + x``, ``ops.maximum(h, x)``) that are nodenet merges
MERGE_OPS = ("Add", "Subtract", "Multiply", "Maximum", "Minimum", "Concatenate")


def is_op(layer: dict) -> bool:
    """Whether a functional config entry is a Keras op between tensors (``h + x``), which
    Keras 3 writes with its op class (``Add``, ``TrueDivide``) from ``keras.src.ops``."""
    module = layer.get("module")
    return isinstance(module, str) and module.startswith(("keras.src.ops", "keras.ops"))


def op_name(layer: dict) -> str:
    kind = layer.get("class_name")
    return shorten(snake(kind), 40) if isinstance(kind, str) else "?"


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


# layers called on their input tensors as separate arguments (``mha(query, value, key=k)``):
# the arguments' names, in the order of the block's input ports
TENSOR_ARGUMENTS = {"MultiHeadAttention": ("query", "value", "key")}


def call_keywords(call: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The keyword arguments among ``names`` a Keras 3 call gives (``use_causal_mask``)."""
    kwargs = call.get("kwargs") if isinstance(call, dict) else None
    return {k: v for k, v in kwargs.items() if k in names} if isinstance(kwargs, dict) else {}


def call_inputs(
    call: Any, op: bool = False, names: tuple[str, ...] = ()
) -> tuple[list[tuple[str, int, int]], int, list[str]]:
    """What a layer call reads: (layer name, call index, output index) of each input tensor
    in order (a recurrent layer's ``initial_state=[h, c]`` after its sequence), the number
    of constants among an op's operands, and other keywords given a tensor (or tensors).

    Keras 3 writes ``{"args": [tensor or [tensors], ...], "kwargs": {...}}``: a layer's
    inputs are its first argument (or ``inputs=``), an op's every positional operand, and
    a layer of :data:`TENSOR_ARGUMENTS` the arguments ``names`` (positional or keywords).
    """
    if not isinstance(call, dict):
        if not isinstance(call, list):
            raise TypeError(f"an inbound node must be a list or an object (got {brief(call)})")
        return [_history(ref) for ref in call], 0, []  # Keras 2: [[name, node, tensor], ...]
    args, kwargs = call.get("args") or [], call.get("kwargs") or {}
    if not isinstance(args, list):
        raise TypeError(f"inbound_nodes args must be a list (got {brief(args)})")
    if not isinstance(kwargs, dict):
        raise TypeError(f"inbound_nodes kwargs must be an object (got {brief(kwargs)})")
    if names:  # tensors as separate arguments, positional or by name: ports in names' order
        named = [kwargs[n] for n in names[len(args) :] if n in kwargs]
        args = [[*args[: len(names)], *named], *args[len(names) :]]
        kwargs = {k: v for k, v in kwargs.items() if k not in names}
    states = _initial_states(kwargs) if not op else []  # a recurrent layer's inputs 1..
    if states:
        kwargs = {k: v for k, v in kwargs.items() if k != "initial_state"}
    if not args and "inputs" in kwargs:  # Dense(3)(inputs=h)
        args = [kwargs["inputs"]]
    if args and isinstance(args[0], list):
        tensors, rest = args[0], args[1:]
    elif op:
        tensors = [a for a in args if isinstance(a, dict)]
        rest = [a for a in args if not isinstance(a, dict)]
    else:
        tensors, rest = args[:1], args[1:]
    operands = [*tensors, *rest] if op else []
    constants = sum(1 for a in operands if not isinstance(a, dict))
    refs = []
    for tensor in [*tensors, *states]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("config") or {}, dict):
            raise TypeError(f"an inbound tensor must be an object (got {brief(tensor)})")
        history = (tensor.get("config") or {}).get("keras_history") or []
        if history:
            refs.append(_history(history))
    keywords = [k for k, v in kwargs.items() if k != "inputs" and _holds_tensor(v)]
    keywords += [f"argument {i + 2}" for i, a in enumerate(rest) if _is_tensor(a)]
    return refs, constants, keywords


def _initial_states(kwargs: dict) -> list:
    """The tensors of ``initial_state=[h, c]`` (a seq2seq decoder starting from its
    encoder's states): the recurrent block's inputs after the sequence."""
    states = kwargs.get("initial_state")
    states = states if isinstance(states, list) else [states]
    return states if states and all(_is_tensor(s) for s in states) else []


def _holds_tensor(value: Any) -> bool:
    """A tensor, or a list of them (``initial_state=[h, c]``)."""
    if isinstance(value, list):
        return any(_is_tensor(v) for v in value)
    return _is_tensor(value)


def _history(ref: Any) -> tuple[str, int, int]:
    """(layer name, call index, output index) from ``[name, node_index, tensor_index, ...]``:
    the output index names which output of a layer with several (``[lstm, 0, 1]``: its h)."""
    if (
        not isinstance(ref, list)
        or len(ref) < 2
        or not isinstance(ref[0], str)
        or not isinstance(ref[1], int)
        or isinstance(ref[1], bool)
    ):
        raise TypeError(f"a tensor reference must be [name, index, index] (got {brief(ref)})")
    return ref[0], ref[1], tensor_index(ref)


def tensor_index(ref: Any) -> int:
    """Which output of its layer a reference ``[name, node_index, tensor_index]`` reads."""
    index = ref[2] if isinstance(ref, list | tuple) and len(ref) > 2 else 0
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise TypeError(f"a tensor index must be a whole number (got {brief(index)})")
    return index


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def scalar_op(layer: dict) -> dict | None:
    """An op between one tensor and a number (``x + 3.0``, ``x * (1 / 6)``, ``1 - x``,
    ``x / 255``, as MobileNetV3's hard sigmoid and scaling code write them) as the
    Rescaling layer computing it (``x * scale + offset``), or ``None``."""
    inbound = layer.get("inbound_nodes")
    if not (is_op(layer) and isinstance(inbound, list) and len(inbound) == 1):
        return None
    call = inbound[0]
    args = call.get("args") if isinstance(call, dict) else None
    if not isinstance(args, list) or len(args) != 2 or call.get("kwargs"):
        return None
    numbers = [a for a in args if isinstance(a, int | float) and not isinstance(a, bool)]
    tensors = [a for a in args if _is_tensor(a)]
    if len(numbers) != 1 or len(tensors) != 1 or not math.isfinite(numbers[0]):
        return None
    c, first = float(numbers[0]), _is_tensor(args[0])
    scale_offset = {
        "Add": (1.0, c),
        "Subtract": (1.0, -c) if first else (-1.0, c),
        "Multiply": (c, 0.0),
        "TrueDivide": (1.0 / c, 0.0) if first and c != 0 else None,
        "Divide": (1.0 / c, 0.0) if first and c != 0 else None,
    }.get(layer.get("class_name"))
    if scale_offset is None:
        return None
    name = layer.get("name") or (layer.get("config") or {}).get("name")
    config = {"name": name, "scale": scale_offset[0], "offset": scale_offset[1]}
    call = {"args": tensors, "kwargs": {}}
    return {"class_name": "Rescaling", "name": name, "config": config, "inbound_nodes": [call]}


def custom_class(layer: dict) -> str | None:
    """The name of a user's own layer class (``mine>Dense``), which may share a Keras
    layer's name but not its code, or ``None`` for a class Keras ships. Keras 3 writes the
    ``module`` of its own classes (``keras.layers``, ``keras.src.applications.convnext``);
    Keras 2 configs write none and are read by class name."""
    if "module" not in layer and "registered_name" not in layer:
        return None
    module, registered = layer.get("module"), layer.get("registered_name")
    if isinstance(module, str) and module.split(".")[0] == "keras":
        return None
    return shorten(str(registered or layer.get("class_name")), 60)
