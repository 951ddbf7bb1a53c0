"""The ``load_data()`` of a generated module: the project's data, prepared as nodenet prepares it.

scikit-learn's bundled datasets are loaded with scikit-learn and prepared in
plain numpy (split, scale, standardize or min-max with training statistics,
reshape, one-hot). Every other source is read from ``<module>_data.npz``
beside the module, which :func:`data_npz` writes from nodenet's own prepared
arrays (``nodenet export ... --data``). Either way ``load_data()`` returns
``{"train": (inputs, targets), "validation": ..., "test": ...}`` with
``inputs`` and ``targets`` dicts of arrays keyed by Input and Output node id;
a part the project does not hold out is absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodenet.engine.data import preprocess
from nodenet.export._code import doc_text, docstring, py_str, py_value
from nodenet.export._common import Graph, npz_bytes

SKLEARN = ("digits", "iris", "wine", "breast_cancer", "diabetes")


def data_npz(project, *, allow_outside_data: bool = False) -> bytes:
    """The project's prepared data as the ``.npz`` a generated module reads.

    Keys ``train/<node id>``, ``validation/<node id>``, ``test/<node id>``;
    raises :class:`nodenet.errors.DataError` when the data cannot be prepared
    (and :class:`nodenet.errors.OutsideDataError` for a data path outside the
    project's folder, unless ``allow_outside_data``).
    """
    from nodenet.runner import build_run

    run = build_run(project, allow_outside_data=allow_outside_data)
    arrays = {}
    for part, split in (("train", run.data.train), ("validation", run.data.val)):
        _add_part(arrays, part, split)
    _add_part(arrays, "test", run.data.test)
    return npz_bytes(arrays)


def _add_part(arrays: dict, part: str, split: dict | None) -> None:
    if not split:
        return
    for kind in ("inputs", "targets"):
        for node_id, array in split[kind].items():
            arrays[f"{part}/{node_id}"] = np.ascontiguousarray(array)


def load_data_source(graph: Graph) -> list[str]:
    """Lines of the generated ``load_data`` (and the constants it needs)."""
    source = graph.project.data.get("source") or {}
    if source.get("kind") == "builtin" and source.get("name") in SKLEARN:
        return _sklearn_loader(graph, source["name"])
    return _npz_loader(graph, source)


def _npz_loader(graph: Graph, source: dict) -> list[str]:
    what = source.get("name") or source.get("path")
    return [
        'DATA = Path(__file__).with_name(Path(__file__).stem + "_data.npz")',
        "",
        "",
        "def load_data() -> dict[str, tuple[dict, dict]]:",
        *docstring(
            f"{_sentence(what)}, as nodenet prepared it, from DATA beside this file.\n\n"
            "`nodenet export PROJECT --data ...` writes it: arrays train/<node id>, and "
            "validation/<node id> and test/<node id> when the project holds them out.",
            4,
        ),
        "    with np.load(DATA, allow_pickle=False) as arrays:",
        "        return {",
        "            part: (",
        '                {node: arrays[f"{part}/{node}"] for node in INPUTS},',
        '                {node: arrays[f"{part}/{node}"] for node in OUTPUTS},',
        "            )",
        '            for part in ("train", "validation", "test")',
        '            if f"{part}/{INPUTS[0]}" in arrays.files',
        "        }",
    ]


def _sentence(what: object) -> str:
    """Prose naming the data, the name or path escaped by :func:`doc_text`."""
    if not what:
        return "The project's data"
    text = doc_text(what)
    return f"The {text} data" if "/" not in text and "." not in text else f"The data of {text}"


def _sklearn_loader(graph: Graph, name: str) -> list[str]:
    data = graph.project.data
    pre = preprocess.read_preprocess(data.get("preprocess") or {})
    split = preprocess.read_split(data.get("split") or {}, graph.training["seed"] or 0)
    doc, body = [f"scikit-learn's {name} dataset, prepared as nodenet prepares it"], []
    if name not in SKLEARN:
        raise ValueError(f"{name!r} is not a scikit-learn dataset")
    body.append(f"x, y = load_{name}(return_X_y=True)")
    # the float32 samples nodenet reads, scaled and normalized in float64 as nodenet does
    body.append("x = x.astype(np.float32).astype(np.float64)")
    if pre["scale"] is not None:
        body.append(f"x = x * {py_value(pre['scale'])}")
        doc.append(f"inputs scaled by {doc_text(pre['scale'])}")
    if "x" in pre["reshape"]:
        body.append(f"x = x.reshape(len(x), {_dims(pre['reshape']['x'])})")
    parts = {"train": "x, y"}
    body += _split_lines(split, graph.training["seed"], parts, doc)
    stats = _stats_lines(graph, pre, body, doc)
    inputs = ", ".join(f"{py_str(i)}: {_input_expr(graph, i, pre, stats)}" for i in graph.inputs)
    targets = ", ".join(f"{py_str(o)}: {_target_expr(graph, o, pre, doc)}" for o in graph.outputs)
    body += [
        "",
        "def prepare(features, labels):",
        f"    inputs = {{{inputs}}}",
        f"    targets = {{{targets}}}",
        "    return inputs, targets",
        "",
        "return {" + ", ".join(f'"{p}": prepare({xy})' for p, xy in parts.items()) + "}",
    ]
    return [
        "def load_data() -> dict[str, tuple[dict, dict]]:",
        *docstring(f"{'; '.join(doc)}.", 4),
        *("    " + line if line else "" for line in body),
    ]


def _split_lines(split: dict, seed: int, parts: dict, doc: list[str]) -> list[str]:
    """Hold out the test and validation fractions (of all samples) exactly as nodenet does:
    one seeded permutation, the test samples first, then the validation samples."""
    test, validation = split["test"], split["validation"]
    if not (test or validation):
        return []
    state = "SEED" if split["seed"] == seed else py_value(split["seed"])
    lines = [
        f"order = np.random.default_rng({state}).permutation(len(x))  # nodenet's split",
        f"n_test, n_validation = round({py_value(test)} * len(x)), "
        f"round({py_value(validation)} * len(x))",
    ]
    held = (
        ("test", test, "", "n_test"),
        ("validation", validation, "n_test", "n_test + n_validation"),
    )
    for part, fraction, start, stop in held:
        if not fraction:
            continue
        lines.append(f"x_{part}, y_{part} = x[order[{start}:{stop}]], y[order[{start}:{stop}]]")
        parts[part] = f"x_{part}, y_{part}"
        doc.append(f"{fraction:.0%} held out for {'testing' if part == 'test' else part}")
    lines.append("x, y = x[order[n_test + n_validation :]], y[order[n_test + n_validation :]]")
    return lines


def _method(pre: dict, node_id: str) -> str:
    return preprocess.pick(pre["normalize"], (node_id, "x"), "none")


def _stats_lines(graph: Graph, pre: dict, body: list[str], doc: list[str]) -> set[str]:
    """Statistics of the training split for each normalization the Inputs use."""
    methods = {_method(pre, i) for i in graph.inputs if _float_input(graph, i)} - {"none"}
    if methods:  # nodenet leaves a constant position unscaled: divisor 1
        body.append("tiny = 2.220446049250313e-15  # 10 float64 epsilons")
    if "standard" in methods:
        body += [
            "mean, std = x.mean(axis=0), x.std(axis=0)",
            "std = np.where(std <= tiny * np.maximum(1.0, np.abs(mean)), 1.0, std)",
        ]
        doc.append("inputs standardized with the training statistics (float64)")
    if "minmax" in methods:
        body += [
            "low, high = x.min(axis=0), x.max(axis=0)",
            "span = high - low",
            "span = np.where(span <= tiny * np.maximum(1.0, np.abs(low)), 1.0, span)",
        ]
        doc.append("inputs scaled to [0, 1] by the training range")
    return methods


def _float_input(graph: Graph, node_id: str) -> bool:
    return graph.layers[node_id].config["dtype"] != "int32"


def _input_expr(graph: Graph, node_id: str, pre: dict, stats: set[str]) -> str:
    expr = "features.astype(np.float32)"
    method = _method(pre, node_id)
    if not _float_input(graph, node_id):
        expr = "features.astype(np.int32)"
    elif method == "standard":
        expr = "((features - mean) / std).astype(np.float32)"
    elif method == "minmax":
        expr = "((features - low) / span).astype(np.float32)"
    sample = pre["reshape"].get("x")
    return _fit_shape(expr, graph.shapes[node_id], tuple(sample) if sample else None)


def _fit_shape(expr: str, shape: tuple, sample: tuple | None) -> str:
    """``expr`` reshaped to the node's shape when the dataset's samples differ from it."""
    if sample == tuple(shape) or (sample is None and len(shape) == 1):
        return expr
    if None in shape:
        return f"({expr})[..., None]" if shape[-1] == 1 else expr
    return f"({expr}).reshape(-1, {_dims(shape)})"


def _target_expr(graph: Graph, node_id: str, pre: dict, doc: list[str]) -> str:
    shape = tuple(graph.shapes[node_id])
    loss = graph.layers[node_id].config["loss"]
    encoding = preprocess.pick(pre["target_encoding"], (node_id, "y"), "auto")
    if encoding == "auto":
        encoding = "none"
        if loss == "sparse_categorical_crossentropy":
            encoding = "integer"
        elif loss == "categorical_crossentropy" and shape[-1:] != (1,):
            encoding = "onehot"
    if encoding == "onehot":
        doc.append("targets one-hot")
        return f"np.eye({_dims(shape[-1:])}, dtype=np.float32)[labels]"
    if loss == "sparse_categorical_crossentropy":
        return "labels.astype(np.int64)"
    if None in shape:
        return "labels.astype(np.float32)"
    return f"labels.astype(np.float32).reshape(-1, {_dims(shape)})"


def _dims(sizes) -> str:
    """``3, 4``: sizes (ints) as the arguments of a reshape."""
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in sizes):
        raise ValueError(f"sizes must be integers (got {sizes!r})")
    return ", ".join(str(d) for d in sizes)


def describe_data(graph: Graph) -> dict[str, Any]:
    """What the generated ``load_data`` reads, for the module docstring."""
    source = graph.project.data.get("source") or {}
    sklearn = source.get("kind") == "builtin" and source.get("name") in SKLEARN
    return {"sklearn": sklearn, "name": source.get("name") or source.get("path")}


def holds_validation(graph: Graph) -> bool | None:
    """Whether ``load_data`` returns a validation part; None when only the data file knows."""
    if not describe_data(graph)["sklearn"]:
        return None
    split = graph.project.data.get("split") or {}
    return bool(split.get("validation"))
