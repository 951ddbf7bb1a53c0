"""How a Keras 3 functional config calls a layer: its input tensors, constants, keywords.

Keras 3 writes each call as ``{"args": [tensor or [tensors], ...], "kwargs": {...}}``
(Keras 2 as ``[[name, node_index, tensor_index, kwargs], ...]``). A Keras op between
tensors (``h + x``, ``keras.ops.maximum(h, x)``) is written with its op class (``Add``,
``TrueDivide``) from ``keras.src.ops`` and reads every positional operand; those of
:data:`MERGE_OPS` are nodenet merges.
"""

from __future__ import annotations

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


def call_inputs(call: Any, op: bool = False) -> tuple[list[tuple[str, int]], int, list[str]]:
    """What a layer call reads: (layer name, call index) of each input tensor in order, the
    number of constants among an op's operands, and other keywords given a tensor.

    Keras 3 writes ``{"args": [tensor or [tensors], ...], "kwargs": {...}}``: a layer's
    inputs are its first argument (or ``inputs=``), an op's every positional operand.
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
    for tensor in tensors:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("config") or {}, dict):
            raise TypeError(f"an inbound tensor must be an object (got {brief(tensor)})")
        history = (tensor.get("config") or {}).get("keras_history") or []
        if history:
            refs.append(_history(history))
    keywords = [k for k, v in kwargs.items() if k != "inputs" and _is_tensor(v)]
    keywords += [f"argument {i + 2}" for i, a in enumerate(rest) if _is_tensor(a)]
    return refs, constants, keywords


def _history(ref: Any) -> tuple[str, int]:
    """(layer name, call index) from ``[name, node_index, tensor_index, ...]``."""
    if (
        not isinstance(ref, list)
        or len(ref) < 2
        or not isinstance(ref[0], str)
        or not isinstance(ref[1], int)
        or isinstance(ref[1], bool)
    ):
        raise TypeError(f"a tensor reference must be [name, index, index] (got {brief(ref)})")
    return ref[0], ref[1]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
