"""Reading an ONNX file for import without trusting it: sizes first, data second, no code.

The protobuf is parsed with ``onnx.load(..., load_external_data=False)`` after its size was
checked against the memory budget; every initializer's claimed size is checked (all of them
together too) before its data is read; external data must be a regular file inside the model's
folder (no absolute path, no ``..``), read from the offset and length the file claims.
Nothing is executed: ONNX files hold no code, and functions or subgraphs are refused as
operators nodenet lacks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from nodenet.errors import NodenetError, ProjectFileError, brief, shorten
from nodenet.safeio import fmt_bytes, memory_budget, open_regular, over_budget

# ONNX element types nodenet reads, and their numpy dtypes
DTYPES = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
}
_TYPED_FIELDS = {  # element type -> the field holding values when not in raw_data
    1: lambda t: t.float_data,
    7: lambda t: t.int64_data,
    11: lambda t: t.double_data,
}
MAX_RANK = 16
NO_ONNX = 'importing an ONNX model needs the onnx package: pip install "nodenet[onnx]"'


def load_model(path: Path):
    """The parsed ``onnx.ModelProto`` of ``path`` (external data not read).

    Raises :class:`ProjectFileError` naming the file for anything that is not a readable
    ONNX model or that would exceed the memory budget.
    """
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        raise NodenetError(NO_ONNX) from None

    try:
        with open_regular(path, ProjectFileError) as f:
            size = os.fstat(f.fileno()).st_size
            reason = over_budget(size)
            if reason is not None:
                raise ProjectFileError(f"the file would take {reason}")
            raw = f.read(size + 1)
    except OSError as err:
        raise ProjectFileError(f"cannot be read: {err.strerror or err}") from None
    if len(raw) > 2**31 - 1:
        raise ProjectFileError("larger than the 2 GiB a protobuf can hold")
    try:
        model = onnx.load_model_from_string(raw)
    except (DecodeError, ValueError, TypeError, RuntimeError, MemoryError) as err:
        text = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ProjectFileError(f"not a readable ONNX model ({text})") from None
    if not model.HasField("graph"):
        raise ProjectFileError("not an ONNX model (no graph)")
    return model


def claimed_shape(tensor, what: str) -> tuple[int, ...]:
    """The dims ``tensor`` claims, checked to be a sane shape."""
    dims = tuple(int(d) for d in tensor.dims)
    if len(dims) > MAX_RANK or any(d < 0 for d in dims):
        raise ProjectFileError(f"{what}: claims an impossible shape {brief(dims)}")
    return dims


def claimed_bytes(tensor, what: str) -> int:
    """Bytes the data of ``tensor`` would take, from its claimed shape and type."""
    if tensor.data_type not in DTYPES:
        raise ProjectFileError(f"{what}: element type {tensor.data_type} is not supported")
    return math.prod(claimed_shape(tensor, what)) * np.dtype(DTYPES[tensor.data_type]).itemsize


def check_budget(tensors: list, folder: Path) -> None:
    """Refuse initializers whose claimed sizes (each, and all together) exceed the budget,
    and external data that leaves ``folder``; before any data is read."""
    budget = memory_budget()
    total = 0
    for tensor in tensors:
        what = f"initializer {shorten(tensor.name, 40)!r}"
        size = claimed_bytes(tensor, what)
        reason = over_budget(size, budget)
        if reason is not None:
            raise ProjectFileError(f"{what} of shape {tuple(tensor.dims)} would take {reason}")
        total += size
        if tensor.data_location == 1:
            external_place(tensor, folder, what)
    reason = over_budget(total, budget)
    if reason is not None:
        raise ProjectFileError(f"the initializers together would take {reason}")


def external_place(tensor, folder: Path, what: str) -> tuple[Path, int, int | None]:
    """The file, offset and length an externally stored initializer names, checked."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    if not location:
        raise ProjectFileError(f"{what}: external data without a location")
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ".." in windows.parts:
        raise ProjectFileError(
            f"{what}: external data {shorten(location)!r} leaves the model's folder; "
            "nodenet reads external data only beside the model"
        )
    full = folder / location
    root = folder.resolve()
    if not full.resolve().is_relative_to(root):
        raise ProjectFileError(f"{what}: external data {shorten(location)!r} leaves the folder")
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise ProjectFileError(f"{what}: external data with a malformed offset or length") from None
    if offset < 0 or (length is not None and length < 0):
        raise ProjectFileError(f"{what}: external data with a negative offset or length")
    return full, offset, length


def tensor_array(tensor, folder: Path) -> np.ndarray:
    """The data of an initializer (or a Constant's value) whose size was checked."""
    from onnx import numpy_helper

    what = f"initializer {shorten(tensor.name, 40)!r}"
    size = claimed_bytes(tensor, what)
    shape = claimed_shape(tensor, what)
    reason = over_budget(size)
    if reason is not None:
        raise ProjectFileError(f"{what} of shape {shape} would take {reason}")
    dtype = np.dtype(DTYPES[tensor.data_type])
    if tensor.data_location == 1:
        full, offset, length = external_place(tensor, folder, what)
        if length is not None and length != size:
            raise ProjectFileError(f"{what}: external length {length} is not {size} bytes")
        try:
            with open_regular(full, ProjectFileError) as f:
                f.seek(offset)
                raw = f.read(size)
        except OSError as err:
            raise ProjectFileError(f"{what}: {shorten(full.name)}: {err.strerror or err}") from None
        if len(raw) != size:
            raise ProjectFileError(f"{what}: the external file holds {fmt_bytes(len(raw))} of it")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    count = math.prod(shape)
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != size:
            raise ProjectFileError(
                f"{what}: claims {size} bytes but holds {len(tensor.raw_data)} (truncated?)"
            )
    else:
        held = len(_TYPED_FIELDS.get(tensor.data_type, lambda t: t.int32_data)(tensor))
        if held != count:
            raise ProjectFileError(f"{what}: claims {count} values but holds {held}")
    try:
        return np.asarray(numpy_helper.to_array(tensor)).reshape(shape)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ProjectFileError(f"{what}: cannot be read ({shorten(str(err))})") from None


def value_shape(value_info) -> list[int | None] | None:
    """The shape a graph input or value_info declares (``None`` per unknown dim), or ``None``."""
    kind = value_info.type
    if not kind.HasField("tensor_type") or not kind.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in kind.tensor_type.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None)
    return dims if len(dims) <= MAX_RANK else None


def value_dtype(value_info) -> int:
    kind = value_info.type
    return kind.tensor_type.elem_type if kind.HasField("tensor_type") else 0
