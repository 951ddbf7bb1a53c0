"""Reading the fields of a Keras model config, and a ``.keras`` archive's members.

Small helpers of :mod:`nodenet.export.keras_import`: a field's value checked for its
type (a ``TypeError`` naming the field, which the importer reports as a malformed
layer), layer references, shapes without their batch dimension, and a zip member
inflated in chunks up to a limit.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from nodenet.errors import ProjectFileError, brief, shorten
from nodenet.graph.bands import auto_layout
from nodenet.graph.project import MAX_DEPTH, Project

CHUNK_BYTES = 1024 * 1024  # a .keras member is inflated this much at a time
_NEUTRAL = (None, False, "channels_last", 1, "auto", {}, [])  # defaults of unsupported settings


def _read_member(path: Path, member: str, limit: int) -> bytes:
    """A zip member's bytes, inflated in chunks and refused past ``limit`` bytes, whatever
    size the archive claims for it (a lying header inflates no more than ``limit + 1``)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
        if info.file_size > limit:
            raise ProjectFileError(
                f"{shorten(str(path))}: its {member} is larger than {limit // 2**20} MiB"
            )
        chunks, total = [], 0
        with archive.open(info) as f:
            while chunk := f.read(CHUNK_BYTES):
                total += len(chunk)
                if total > limit:
                    raise ProjectFileError(
                        f"{shorten(str(path))}: its {member} inflates past {limit // 2**20} MiB"
                    )
                chunks.append(chunk)
    return b"".join(chunks)


def _why(err: BaseException) -> str:
    return shorten(f"{type(err).__name__}: {err}", 120)


def _layer_name(layer: Any, index: int) -> str:
    """A layer's name for messages, whatever its config holds."""
    if isinstance(layer, dict):
        config = layer.get("config")
        name = layer.get("name") or (config.get("name") if isinstance(config, dict) else None)
        if isinstance(name, str):
            return repr(shorten(name))
    return f"#{index}"


def _list_field(body: dict, key: str) -> list:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise ProjectFileError(f"{key} must be a list (got {brief(value)})")
    return value


def _neutral(value: Any) -> bool:
    return any(value == n and type(value) is type(n) for n in _NEUTRAL)


def _short(value: Any) -> str:
    return brief(value.get("class_name", "an object") if isinstance(value, dict) else value)


def _text(value: Any, field: str) -> str:
    """``value`` if it is a string, else a TypeError naming ``field``."""
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string (got {brief(value)})")
    return value


def _ref(ref: Any) -> str:
    """The layer name of an output reference ``[name, node_index, tensor_index]``."""
    if not isinstance(ref, list | tuple) or not ref or not isinstance(ref[0], str):
        raise TypeError(f"a layer reference must be [name, index, index] (got {brief(ref)})")
    return ref[0]


def _shape(batch_shape: Any, field: str) -> list:
    """The shape without its batch dimension, from a ``[None, d1, d2, ...]`` batch shape."""
    if not isinstance(batch_shape, list | tuple) or not 2 <= len(batch_shape) <= MAX_DEPTH:
        raise TypeError(f"{field} must be a list [batch, dims...] (got {brief(batch_shape)})")
    return list(batch_shape[1:])


def _first_shape(layer: dict, body: dict) -> list | None:
    """The input shape (no batch) a Sequential's first layer was built with."""
    config = layer.get("config") or {}
    for shape in (
        config.get("batch_input_shape"),
        config.get("batch_shape"),
        (layer.get("build_config") or {}).get("input_shape"),
        body.get("build_input_shape"),
    ):
        if shape:
            return _shape(shape, "input shape")
    return None


def layout(project: Project) -> None:
    """Place the nodes as the editor's auto-layout does (:func:`auto_layout`)."""
    positions = auto_layout(project)
    for node in project.nodes:
        node.pos = list(positions[node.id])
