"""MNIST IDX files (``train-images-idx3-ubyte`` and friends), plain or gzip-compressed.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the values in
big-endian C order. The header is checked, and the size it claims is compared
with the memory budget (:mod:`nodenet.safeio`) and with the file before any
array is allocated: a raw file must have exactly that size; a gzip stream is
read in bounded chunks and must end exactly there.

Source options (``{"kind": "idx", ...}``): ``path``, a folder holding the
standard MNIST file names (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each optionally ``.gz``, the ``-idx`` also spelt
``.idx``), or the files one by one: ``images``, ``labels``, ``test_images``,
``test_labels``. The arrays are ``x`` (images), ``y`` (labels), ``x_test`` and
``y_test``.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from nodenet.engine.data.base import Dataset, DatasetMeta, read_options
from nodenet.engine.data.files import resolve_path
from nodenet.errors import DataError
from nodenet.safeio import inside_folder, open_regular, over_budget

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMS = 8
CHUNK = 2**24
IDX_OPTIONS: dict[str, Any] = {
    "path": None,
    "images": None,
    "labels": None,
    "test_images": None,
    "test_labels": None,
}
STANDARD_NAMES = {
    "images": ("train-images", 3),
    "labels": ("train-labels", 1),
    "test_images": ("t10k-images", 3),
    "test_labels": ("t10k-labels", 1),
}
ARRAY_OF = {"images": "x", "labels": "y", "test_images": "x_test", "test_labels": "y_test"}


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file, in native byte order.

    Raises
    ------
    DataError
        naming the file, when the header is malformed or the data is shorter or
        longer than the header says.
    """
    try:
        with open_regular(path) as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw as f:
                dtype, dims = _read_header(path.name, f)
                expected = math.prod(dims) * dtype.itemsize
                if not gzipped:
                    _check_raw_size(path, raw, dims, expected, 4 + 4 * len(dims))
                data = _read_exactly(path.name, f, dims, expected)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path.name}: not a readable IDX file ({err})") from None
    array = np.frombuffer(data, dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=not array.dtype.isnative)


def _read_header(name: str, f: BinaryIO) -> tuple[np.dtype, tuple[int, ...]]:
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{name}: not an IDX file (it must start with two zero bytes)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        raise DataError(f"{name}: unknown IDX value type 0x{code:02X}")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{name}: an IDX file with {ndim} dimensions is not supported")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{name}: the header is cut short")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = np.dtype(IDX_TYPES[code])
    reason = over_budget(math.prod(dims) * dtype.itemsize)
    if reason is not None:
        raise DataError(
            f"{name}: the header claims an array of shape {dims}, which would take {reason}"
        )
    return dtype, dims


def _check_raw_size(path: Path, raw: BinaryIO, dims: tuple, expected: int, header: int) -> None:
    held = os.fstat(raw.fileno()).st_size - header  # a regular file: its size is true
    if held != expected:
        raise DataError(
            f"{path.name}: the header claims an array of shape {dims} "
            f"({expected} bytes) but the file holds {held} bytes of data"
        )


def _read_exactly(name: str, f: BinaryIO, dims: tuple, expected: int) -> bytearray:
    """Read ``expected`` bytes in bounded chunks; refuse a shorter or longer stream.

    The bytes go straight into one buffer of the size the header claims (already
    checked against the budget); a stream that goes on past it is refused after
    one more byte, so a gzip bomb is never inflated beyond the claimed size.
    """
    data = bytearray(expected)
    view, done = memoryview(data), 0
    while done < expected:
        got = f.readinto(view[done : done + CHUNK])
        if not got:
            break
        done += got
    longer = done == expected and f.read(1)
    if done != expected or longer:
        held = "more" if longer else f"only {done}"
        raise DataError(
            f"{name}: the header claims an array of shape {dims} ({expected} "
            f"bytes) but the file holds {held} bytes of data"
        )
    return data


def load_idx(
    options: dict[str, Any], base_dir: Path | None, *, allow_outside_data: bool = False
) -> Dataset:
    """Read an IDX source; see the module docstring for the options.

    Paths outside ``base_dir`` (also through a symlink in the folder) are
    refused unless ``allow_outside_data``.
    """
    opts = read_options("idx source", options, IDX_OPTIONS)
    allow = allow_outside_data
    files = {
        key: resolve_path(
            f"idx source: {key}",
            opts[key],
            base_dir,
            field=f"data.source.{key}",
            allow_outside_data=allow,
        )
        for key in ARRAY_OF
        if opts[key] is not None
    }
    if opts["path"] is not None:
        folder = resolve_path("idx source", opts["path"], base_dir, allow_outside_data=allow)
        if not folder.is_dir():
            raise DataError(f"{opts['path']}: must be a folder holding the IDX files")
        for key, (stem, rank) in STANDARD_NAMES.items():
            found = _find_standard(folder, stem, rank)
            if key not in files and found is not None:
                given = str(Path(opts["path"]) / found.name)
                files[key] = inside_folder("data.source.path", given, found, base_dir, allow)
    for pair in (("images", "labels"), ("test_images", "test_labels")):
        given = [k for k in pair if k in files]
        if len(given) == 1 or (pair[0] == "images" and not given):
            missing = next(k for k in pair if k not in files)
            raise DataError(
                f"idx source: no {missing.replace('_', ' ')} file (give "
                f"{missing!r}, or a folder with the standard MNIST names as 'path')"
            )
    arrays = {ARRAY_OF[key]: read_idx(path) for key, path in files.items()}
    for images, labels in (("images", "labels"), ("test_images", "test_labels")):
        x, y = arrays.get(ARRAY_OF[images]), arrays.get(ARRAY_OF[labels])
        if x is not None and len(x) != len(y):
            raise DataError(
                f"{files[images].name} has {len(x)} images but "
                f"{files[labels].name} has {len(y)} labels"
            )
    name = files["images"].name
    task = "classification" if arrays["y"].dtype.kind in "iu" else "regression"
    return Dataset(arrays, DatasetMeta(name, task, f"IDX files {name}, ..."))


def _find_standard(folder: Path, stem: str, rank: int) -> Path | None:
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            candidate = folder / f"{stem}{sep}idx{rank}-ubyte{suffix}"
            if candidate.is_file():
                return candidate
    return None
