"""Hypothesis strategies: project documents and the data files a project reads.

Projects come three ways: any JSON value, a project-shaped document built from
the block catalog with junk mixed in, and the sample projects mutated at random
paths. Data files are valid NPZ / IDX / CSV files of random content, optionally
corrupted (truncated, bytes flipped, a huge shape written into a header).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from nodenet.engine.catalog import LAYERS

SAMPLES = sorted((Path(__file__).parents[2] / "sample_projects").glob("*.json"))
SAMPLE_DOCS = [json.loads(p.read_text()) for p in SAMPLES]
TYPES = list(LAYERS.names())

# -- JSON values --------------------------------------------------------------------------

huge_ints = st.sampled_from([2**31, 2**32 + 1, 2**53 + 1, 2**63, 2**64, 10**12, 10**30, -(2**63)])
numbers = st.one_of(
    st.integers(-3, 300),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, -100, 0.5, 1e-300, 1e300, -0.0]),
)
texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "x", "y", "relu", "softmax", "adam", "same", "valid", "../x"]),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u202e", "\U0001f600"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=8),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)),
    max_leaves=25,
)


def nested(depth: int, leaf=0):
    """A value nested ``depth`` lists deep (built without recursion)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


deep_values = st.integers(10, 3000).map(nested)
shapes = st.one_of(
    st.lists(st.integers(1, 8), min_size=1, max_size=3),
    st.lists(st.one_of(st.integers(-2, 4), huge_ints, st.none()), min_size=0, max_size=4),
    st.sampled_from([[10**6, 10**6], [2**31, 2**31, 2**31], [100000, 100000], [0], [-5, 3]]),
)
junk = st.one_of(json_values, deep_values, shapes)

# -- project-shaped documents ----------------------------------------------------------------


@st.composite
def params_for(draw, type_name: str) -> dict:
    """A block's params: each known one its default, a junk value or left out; extras."""
    params = {}
    cls = LAYERS.get(type_name) if type_name in LAYERS else None
    for param in cls.PARAMS if cls is not None else ():
        how = draw(st.sampled_from(["default", "default", "junk", "omit", "number"]))
        if how == "default":
            params[param.name] = copy.deepcopy(param.default)
        elif how == "junk":
            params[param.name] = draw(junk)
        elif how == "number":
            params[param.name] = draw(numbers)
    if cls is not None and type_name == "Input" and draw(st.booleans()):
        params["shape"] = draw(shapes)
    if draw(st.integers(0, 4)) == 0:
        params[draw(texts)] = draw(json_values)
    return params


ids = st.one_of(
    st.sampled_from(["in", "x", "h", "out", "y", "Ω", "in ", "\u0000", "a/b", "é"]),
    st.text(min_size=1, max_size=6),
)
data_sections = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"source": st.sampled_from([{"kind": "builtin", "name": n} for n in ("digits", "iris")])}
    ),
    st.dictionaries(
        st.sampled_from(["source", "inputs", "targets", "preprocess", "split", "x"]),
        json_values,
        max_size=4,
    ),
    st.fixed_dictionaries(
        {
            "source": st.fixed_dictionaries(
                {"kind": st.sampled_from(["csv", "npz", "idx", "builtin", "?"])},
                optional={"path": texts, "name": texts, "samples": numbers, "test_path": texts},
            )
        }
    ),
)


@st.composite
def structured_projects(draw) -> dict:
    """A document shaped like a project: catalog blocks, random wiring (cycles too), junk."""
    count = draw(st.integers(0, 7))
    nodes = []
    for _ in range(count):
        type_name = draw(st.one_of(st.sampled_from(TYPES), st.sampled_from(["Input", "Output"])))
        if draw(st.integers(0, 15)) == 0:
            type_name = draw(texts)
        node = {"id": draw(ids), "type": type_name, "params": draw(params_for(type_name))}
        if draw(st.booleans()):
            node["pos"] = draw(st.one_of(st.lists(numbers, max_size=3), junk))
        nodes.append(node)
    names = [n["id"] for n in nodes] or ["in"]
    edges = [
        {
            "from": draw(st.one_of(st.sampled_from(names), ids)),
            "to": draw(st.one_of(st.sampled_from(names), ids)),
            "port": draw(st.one_of(st.integers(0, 2), numbers)),
        }
        for _ in range(draw(st.integers(0, count + 2)))
    ]
    training = draw(
        st.one_of(
            st.just({}),
            st.fixed_dictionaries(
                {},
                optional={
                    "epochs": numbers,
                    "batch_size": st.one_of(numbers, st.integers(1, 2**40)),
                    "optimizer": st.one_of(json_values, st.just({"name": "sgd"})),
                    "validation_split": numbers,
                    "seed": numbers,
                    "early_stopping": json_values,
                    "class_weight": json_values,
                },
            ),
        )
    )
    doc = {"format": "nodenet-project", "version": 1, "nodes": nodes, "edges": edges}
    doc["training"], doc["data"] = training, draw(data_sections)
    if draw(st.booleans()):
        doc[draw(texts)] = draw(json_values)
    return doc


# -- mutations of the sample projects ---------------------------------------------------------


def _paths(value, limit: int = 12) -> list[tuple]:
    """Every path inside a JSON value, at most ``limit`` deep (no recursion)."""
    out, stack = [], [((), value)]
    while stack:
        path, item = stack.pop()
        out.append(path)
        if len(path) >= limit:
            continue
        if isinstance(item, dict):
            stack.extend(((*path, key), v) for key, v in item.items())
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in enumerate(item))
    return out


def _parent(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


@st.composite
def mutated_samples(draw) -> dict:
    """A sample project with 1 to 6 random edits: a value replaced, a key deleted or added,
    an item duplicated, a number made huge or negative, a list nested deeply."""
    doc = copy.deepcopy(draw(st.sampled_from(SAMPLE_DOCS)))

    def fresh(strategy):  # sampled_from hands out the same list object every time: copy it,
        return copy.deepcopy(draw(strategy))  # or a later edit changes the strategy itself

    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 6]))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _parent(doc, path), path[-1]
        action = draw(
            st.sampled_from(["replace", "delete", "add", "duplicate", "number", "nest", "shape"])
        )
        if action == "replace":
            parent[key] = fresh(junk)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(texts)] = fresh(json_values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif action == "number":
            parent[key] = draw(st.one_of(huge_ints, st.integers(-(2**40), -1), numbers))
        elif action == "nest":
            parent[key] = nested(draw(st.integers(50, 2000)), parent[key])
        elif action == "shape":
            parent[key] = fresh(shapes)
    return doc


project_docs = st.one_of(json_values, structured_projects(), mutated_samples())


@st.composite
def project_texts(draw) -> bytes:
    """A sample project's file, cut, with bytes flipped, or with junk spliced in."""
    text = draw(st.sampled_from(SAMPLES)).read_bytes()
    action = draw(st.sampled_from(["cut", "flip", "splice", "bom", "deep"]))
    if action == "cut":
        return text[: draw(st.integers(0, len(text)))]
    if action == "flip":
        data = bytearray(text)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if action == "splice":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(max_size=20)) + text[at:]
    if action == "bom":
        return b"\xef\xbb\xbf" + text
    depth = draw(st.integers(500, 200_000))
    return b'{"format": "nodenet-project", "version": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


# -- data files ------------------------------------------------------------------------------

DTYPES = [
    "float32",
    "float64",
    "float16",
    "int64",
    "int8",
    "uint8",
    "bool",
    "complex64",
    "<U3",
    "S2",
    "datetime64[s]",
    "object",
    "V4",
]


@st.composite
def arrays(draw, rows: int | None = None) -> np.ndarray:
    """A small array of a random dtype, maybe holding NaN or inf."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    n = draw(st.integers(0, 12)) if rows is None else rows
    tail = tuple(draw(st.lists(st.integers(1, 4), max_size=3)))
    shape = (n, *tail) if draw(st.integers(0, 9)) else ()
    size = int(np.prod(shape))
    values = draw(
        st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=size, max_size=size)
    )
    base = np.array(values, np.float64).reshape(shape)
    if dtype.kind == "O":
        return np.array([{"v": v} for v in values] or [None], dtype=object)
    if dtype.kind == "V":
        return np.zeros(shape, dtype)
    if dtype.kind in "iub":
        base = np.nan_to_num(base, nan=0, posinf=1, neginf=-1).clip(-100, 100)
    with np.errstate(all="ignore"):
        if dtype.kind == "M":
            return np.nan_to_num(base).clip(0, 1e9).astype("int64").astype(dtype)
        return base.astype(dtype)


def npy_bytes(array: np.ndarray, claim: tuple | None = None) -> bytes:
    """The ``.npy`` bytes of ``array``; with ``claim``, the header claims that shape instead."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.hasobject)
    data = buffer.getvalue()
    if claim is None:
        return data
    fmt = np.lib.format
    buffer.seek(0)
    version = fmt.read_magic(buffer)
    (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(buffer)
    values = data[buffer.tell() :]
    header = {"descr": fmt.dtype_to_descr(array.dtype), "fortran_order": False, "shape": claim}
    out = io.BytesIO()
    fmt.write_array_header_1_0(out, header)
    return out.getvalue() + values


def corrupt(draw, data: bytes) -> bytes:
    """``data`` as is, cut short, or with a few bytes replaced."""
    action = draw(st.sampled_from(["keep"] * 9 + ["cut", "flip", "empty"]))
    if action == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if action == "flip" and data:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if action == "empty":
        return b""
    return data


NAMES = st.sampled_from(["x", "y", "x_test", "y_test", "x_train", "y_train", "a", "é"])
SPEC_SHAPES = [[1], [2], [4], [2, 2], [3, 1]]


@st.composite
def specs(draw) -> tuple[list[int], int, str]:
    """The project a dataset is made for: Input shape, Output units, loss."""
    shape = draw(st.sampled_from(SPEC_SHAPES))
    units = draw(st.sampled_from([1, 2, 3]))
    loss = draw(
        st.sampled_from(
            [
                "categorical_crossentropy",
                "sparse_categorical_crossentropy",
                "mean_squared_error",
                "binary_crossentropy",
            ]
        )
    )
    return shape, units, loss


@st.composite
def plausible(draw, spec, rows: int | None = None) -> dict[str, np.ndarray]:
    """``x`` and ``y`` that mostly fit ``spec``: features of its shape (or flattened),
    labels below its units or one-hot rows, a few NaN / wrong lengths / wrong types."""
    shape, units, _ = spec
    n = rows if rows is not None else draw(st.integers(1, 12))
    features = shape if draw(st.booleans()) else [int(np.prod(shape))]
    x_dtype = draw(st.sampled_from(["float32", "float64", "uint8", "int64"]))
    x = np.array(
        draw(
            st.lists(
                st.integers(0, 9),
                min_size=n * int(np.prod(features)),
                max_size=n * int(np.prod(features)),
            )
        )
    )
    x = x.reshape(n, *features).astype(x_dtype)
    labels = np.array(draw(st.lists(st.integers(0, max(units - 1, 1)), min_size=n, max_size=n)))
    y = labels if draw(st.integers(0, 3)) else np.eye(max(units, 2))[labels][:, :units]
    y = y.astype(draw(st.sampled_from(["int64", "uint8", "float32", "<U2"])))
    out = {"x": x, "y": y}
    fault = draw(st.sampled_from(["none", "none", "none", "nan", "length", "swap", "extra"]))
    if fault == "nan" and x.dtype.kind == "f":
        x.reshape(-1)[draw(st.integers(0, x.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf])
        )
    elif fault == "length":
        out["y"] = y[: draw(st.integers(0, n))]
    elif fault == "swap":
        out[draw(st.sampled_from(["x", "y"]))] = draw(arrays(n))
    elif fault == "extra":
        out[draw(NAMES)] = draw(arrays())
    return out


@st.composite
def npz_files(draw, spec=None) -> bytes:
    """An ``.npz`` archive: a plausible dataset for ``spec`` or random arrays (lengths may
    differ), maybe with a huge shape claimed in a header, maybe corrupted."""
    rows = draw(st.integers(1, 12))
    if spec is not None and draw(st.integers(0, 3)):
        members = draw(plausible(spec, rows))
        if draw(st.integers(0, 3)) == 0:
            members.update({k + "_test": v for k, v in draw(plausible(spec)).items()})
    else:
        members = draw(st.dictionaries(NAMES, st.one_of(arrays(rows), arrays()), max_size=4))
    huge = draw(st.sampled_from([None] * 4 + [(10**6, 10**6), (2**40,), (10**5, 10**5, 10)]))
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for i, (name, array) in enumerate(members.items()):
            claim = huge if i == 0 and huge is not None and array.dtype.kind not in "OV" else None
            archive.writestr(name + ".npy", npy_bytes(array, claim))
        if draw(st.integers(0, 9)) == 0:
            archive.writestr("notes.txt", b"hello")
    return corrupt(draw, buffer.getvalue())


IDX_CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_files(draw, rank: int | None = None, dims: list[int] | None = None) -> bytes:
    """An IDX file: header and values (of ``dims`` if given), maybe a wrong type code, a
    huge claimed shape, cut, flipped or gzipped."""
    code = draw(st.sampled_from([0x08] * 4 + [*IDX_CODES, 0x00, 0x0A]))
    if dims is None:
        ndim = rank if rank is not None else draw(st.integers(0, 10))
        dims = draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim))
    dims = list(dims)
    if draw(st.integers(0, 7)) == 0 and dims:
        dims[0] = draw(st.sampled_from([2**32 - 1, 10**9, 70000]))
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    dtype = np.dtype(IDX_CODES.get(code, ">u1"))
    count = int(np.prod(dims)) if dims and int(np.prod(dims)) < 10_000 else 7
    values = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 3, count)
    data = header + values.astype(dtype).tobytes()
    data = corrupt(draw, data)
    return gzip.compress(data, mtime=0) if draw(st.booleans()) else data


cells = st.one_of(
    st.integers(-5, 20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "a", "Class_1", "Class_10", '"1,2"', "1e400"]),
    st.text(max_size=4),
)


@st.composite
def csv_files(draw, spec=None) -> bytes:
    """A CSV file: a header and rows, mostly numbers fitting ``spec`` (features then a
    label), with random cells, ragged rows, a cut or bytes that are not UTF-8 mixed in."""
    features = int(np.prod(spec[0])) if spec is not None else draw(st.integers(0, 4))
    columns = features + 1
    names = [f"f{i}" for i in range(features)] + ["label"]
    if draw(st.integers(0, 4)) == 0:
        names = draw(
            st.lists(texts.map(lambda t: t.replace("\n", "")), min_size=columns, max_size=columns)
        )
    units = spec[1] if spec is not None else 3
    rows = []
    for _ in range(draw(st.integers(1, 10))):
        row = [str(draw(st.integers(0, 9))) for _ in range(features)]
        row.append(str(draw(st.integers(0, max(units - 1, 1)))))
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.integers(0, columns - 1))] = draw(cells)
        if draw(st.integers(0, 19)) == 0:
            row = row[: draw(st.integers(0, columns))]
        rows.append(",".join(row))
    text = "\n".join([",".join(names), *rows]) + "\n"
    return corrupt(draw, text.encode("utf-8", "surrogatepass"))


csv_options = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "target": st.one_of(st.integers(-1, 6), texts, st.lists(st.integers(0, 4), max_size=3)),
            "id_columns": st.one_of(
                st.lists(st.one_of(st.integers(0, 4), texts), max_size=2), junk
            ),
            "delimiter": st.sampled_from([",", ";", "", ",,", "\n", '"']),
            "header": st.one_of(st.booleans(), json_values),
            "classes": st.one_of(st.none(), st.lists(texts, max_size=4), junk),
            "task": st.sampled_from([None, "classification", "regression", "?"]),
        },
    ),
)
