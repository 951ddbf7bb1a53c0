"""The user's own data: CSV and NPZ files (IDX lives in :mod:`.idx`).

Paths are taken relative to the project file's folder (``base_dir``) and must
stay inside it (no ``..`` out of it, no absolute path or symlink elsewhere)
unless the caller passes ``allow_outside_data=True``, and must be regular files
(a named pipe would block the reader, a device never end). Parsing a CSV file
costs memory per cell and per row far beyond its text; a first pass counts its
cells and checks that cost against the memory budget (:mod:`nodenet.safeio`)
before any cell is parsed. Nothing read is
ever executed or unpickled: NPZ files are read member by member without pickles
(:func:`nodenet.safeio.read_npz`) and CSV cells are parsed as numbers or labels
only.

CSV source options (``{"kind": "csv", "path": "train.csv", ...}``):

``target``
    the label column: a name, a 0-based index, or a list of numeric columns for
    a multi-value regression target; default the last column.
``id_columns``
    columns to drop (names or indices), e.g. ``["id"]``.
``delimiter``, ``header``
    ``","`` and ``true`` by default; without a header, columns are named
    ``"0"``, ``"1"``, ...
``classes``
    the class list, in label order; default the distinct labels sorted
    naturally (``Class_2`` before ``Class_10``). Recorded in the dataset meta.
``task``
    ``"classification"`` or ``"regression"``; default: text or whole-number
    labels mean classification.
``test_path``
    a second file with the same columns, used as the test split.

The CSV gives ``x`` (samples, features) and ``y`` (samples,), plus ``x_test``
and ``y_test`` with ``test_path``. A single feature column holding text (its
first cell not a number) gives ``x`` as the texts themselves, ``(samples, 1)``
unicode, for an Input of dtype ``string`` and a TextVectorization block. Otherwise
a cell that is not a number raises a :class:`DataError` naming the file, line and
column.

NPZ source options: ``path``, ``test_path``, ``classes`` (a dict array name ->
class list for text label arrays). Array names ending in ``_train`` lose the
suffix, so the Keras ``mnist.npz`` layout (``x_train, y_train, x_test,
y_test``) gives ``x``, ``y`` and their own test split ``x_test``, ``y_test``.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data.base import (
    TASKS,
    TEST_SUFFIX,
    Dataset,
    DatasetMeta,
    encode_labels,
    read_options,
)
from nodenet.errors import DataError, brief
from nodenet.safeio import (
    check_path_length,
    check_regular,
    fmt_bytes,
    inside_folder,
    open_regular,
    over_budget,
    read_npz,
)

CSV_OPTIONS: dict[str, Any] = {
    "path": "",
    "target": None,
    "id_columns": [],
    "delimiter": ",",
    "header": True,
    "classes": None,
    "task": None,
    "test_path": None,
}
NPZ_OPTIONS: dict[str, Any] = {"path": "", "test_path": None, "classes": None}
CSV_MEMORY_FACTOR = 4  # bytes per byte of file: its text, then numpy's copy of a column
CSV_CELL_COST = 80  # bytes per parsed cell: a Python string and its place in the row
CSV_ROW_COST = 160  # bytes per row: its list, its line number, numpy's row bookkeeping
CSV_SCAN_CHUNK = 2**20


def resolve_path(
    where: str,
    path: Any,
    base_dir: Path | None,
    *,
    field: str = "data.source.path",
    allow_outside_data: bool = False,
) -> Path:
    """``path`` relative to ``base_dir`` (the project's folder); must exist.

    Absolute paths and ``~`` are taken as given, but unless
    ``allow_outside_data`` a path resolving outside ``base_dir`` (the current
    directory when ``None``), through ``..``, an absolute path or a symlink,
    raises :class:`nodenet.errors.OutsideDataError` naming ``field``.
    """
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise DataError(f"{where}: needs a file path (got {brief(str(path))})")
    check_path_length(field, path)  # before Path.resolve, which crawls on a huge path
    full = Path(path).expanduser()
    if not full.is_absolute():
        full = Path(base_dir if base_dir is not None else Path.cwd()) / full
    try:
        inside_folder(field, path, full, base_dir, allow_outside_data)
        exists = full.exists()
        if exists:  # a pipe would block the reader, a device never end: regular files only
            check_regular(field, full)
    except (OSError, RuntimeError, ValueError) as err:  # a symlink loop, a name too long
        raise DataError(f"{field}: {brief(path)} cannot be opened ({err})") from None
    if not exists:
        raise DataError(f"{path}: no such file (looked for {full})")
    return full


# -- CSV ------------------------------------------------------------------------


def load_csv(
    options: dict[str, Any], base_dir: Path | None, *, allow_outside_data: bool = False
) -> Dataset:
    """Read a CSV source; see the module docstring for the options.

    Paths outside ``base_dir`` are refused unless ``allow_outside_data``.
    """
    opts = read_options("csv source", options, CSV_OPTIONS)
    if opts["task"] not in (None, *TASKS):
        raise DataError(f"csv source: option 'task' must be one of {TASKS}, got {opts['task']!r}")
    if not isinstance(opts["delimiter"], str) or len(opts["delimiter"]) != 1:
        raise DataError(
            f"csv source: option 'delimiter' must be one character, got {opts['delimiter']!r}"
        )
    path = resolve_path("csv source", opts["path"], base_dir, allow_outside_data=allow_outside_data)
    table = _CsvTable.read(path, opts["delimiter"], opts["header"])
    x, y, classes, task, features, targets = table.split(opts, opts["classes"])
    arrays = {"x": x, "y": y}
    if opts["test_path"] is not None:
        test_path = resolve_path(
            "csv source: test_path",
            opts["test_path"],
            base_dir,
            field="data.source.test_path",
            allow_outside_data=allow_outside_data,
        )
        test = _CsvTable.read(test_path, opts["delimiter"], opts["header"])
        if opts["header"] and test.columns != table.columns:
            raise DataError(f"{test_path.name}: its columns differ from those of {path.name}")
        arrays["x_test"], arrays["y_test"], *_ = test.split({**opts, "task": task}, classes)
    extra = {"columns": features, "target": targets, "file": path.name}
    meta = DatasetMeta(
        path.stem, task, f"CSV file {path.name}", {"y": classes} if classes else {}, extra
    )
    return Dataset(arrays, meta)


def _check_parse_cost(name: str, raw: io.BufferedReader, delimiter: str) -> None:
    """Refuse, before any cell is parsed, a CSV file whose cells would not fit the budget.

    Parsed cells cost far more than their text (a one-character cell is a Python
    string in a list: about :data:`CSV_CELL_COST` bytes), so the cost is counted
    per cell and per row, on a first pass that counts delimiters and line ends
    in the bytes really read (never ``st_size``) and stops at the budget.
    """
    sep = delimiter.encode("utf-8")
    size = cells = rows = 0
    while chunk := raw.read(CSV_SCAN_CHUNK):
        size += len(chunk)
        newlines = chunk.count(b"\n")
        rows += newlines
        cells += chunk.count(sep) + newlines
        cost = size * CSV_MEMORY_FACTOR + (cells + 1) * CSV_CELL_COST + (rows + 1) * CSV_ROW_COST
        reason = over_budget(cost)
        if reason is not None:
            raise DataError(
                f"{name}: parsing its {cells:,}+ cells ({fmt_bytes(size)}+ read so far) would "
                f"take about {reason}; convert it to .npz"
            )


class _CsvTable:
    """A CSV file's cells as text, with the line number of every row."""

    def __init__(
        self, path: Path, delimiter: str, header: bool, rows: list[list[str]], lines: list[int]
    ):
        self.path, self.name, self.delimiter, self.header = path, path.name, delimiter, header
        self.rows, self.lines = rows, lines
        self.columns = [str(i) for i in range(len(rows[0]))]
        if header:
            self.columns, self.rows, self.lines = [c.strip() for c in rows[0]], rows[1:], lines[1:]

    @classmethod
    def read(cls, path: Path, delimiter: str, header: bool) -> _CsvTable:
        rows, lines = [], []
        try:
            with open_regular(path) as raw:
                _check_parse_cost(path.name, raw, delimiter)
                raw.seek(0)
                with io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as f:
                    reader = csv.reader(f, delimiter=delimiter)
                    for row in reader:
                        if len(row) > 1 or (row and row[0].strip()):
                            rows.append(row)
                            lines.append(reader.line_num)
        except UnicodeDecodeError as err:
            raise DataError(f"{path.name}: not UTF-8 text (byte {err.start})") from None
        except csv.Error as err:
            raise DataError(f"{path.name}: not a readable CSV file ({err})") from None
        except OSError as err:
            raise DataError(f"{path.name}: cannot be read: {err.strerror or err}") from None
        if len(rows) <= header:
            raise DataError(f"{path.name}: has no data rows")
        table = cls(path, delimiter, header, rows, lines)
        for row, line in zip(table.rows, table.lines, strict=True):
            if len(row) != len(table.columns):
                raise DataError(
                    f"{path.name}: line {line} has {len(row)} cells but there are "
                    f"{len(table.columns)} columns"
                )
        return table

    def column(self, col: int) -> tuple[str, ...]:
        return tuple(row[col] for row in self.rows)

    def matrix(self, cols: list[int]) -> np.ndarray:
        """Columns ``cols`` as float64 (rows, len(cols)); a bad cell raises, naming its line.

        numpy's C parser reads the file in one pass; if it fails or disagrees with
        the rows read, each column is checked cell by cell to name the bad cell.
        """
        try:
            with (
                warnings.catch_warnings(),
                io.TextIOWrapper(open_regular(self.path), encoding="utf-8-sig") as text,
            ):
                warnings.simplefilter("ignore")
                fast = np.loadtxt(
                    text,
                    np.float64,
                    comments=None,
                    delimiter=self.delimiter,
                    skiprows=int(self.header),
                    usecols=cols,
                    ndmin=2,
                    quotechar='"',
                )
            if fast.shape == (len(self.rows), len(cols)) and np.isfinite(fast).all():
                return fast
        except (ValueError, OSError):
            pass
        return np.stack([self.numbers(i, self.column(i)) for i in cols], axis=1)

    def index(self, column: Any, option: str) -> int:
        """The position of ``column`` (a name or a 0-based index)."""
        if isinstance(column, int) and not isinstance(column, bool):
            if 0 <= column < len(self.columns):
                return column
            raise DataError(
                f"{self.name}: option {option!r}: column index {column} is out of "
                f"range (the file has {len(self.columns)} columns)"
            )
        matches = [i for i, c in enumerate(self.columns) if c == column]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise DataError(
                f"{self.name}: option {option!r}: {len(matches)} columns are named {column!r}"
            )
        shown = ", ".join(self.columns[:8]) + (", ..." if len(self.columns) > 8 else "")
        raise DataError(
            f"{self.name}: option {option!r}: no column {column!r} "
            f"(the {len(self.columns)} columns are {shown})"
        )

    def split(self, opts: dict[str, Any], classes: list[str] | None) -> tuple:
        """``(x, y, classes, task, feature names, target names)`` from the cells."""
        target = opts["target"] if opts["target"] is not None else len(self.columns) - 1
        target_cols = [
            self.index(t, "target") for t in (target if isinstance(target, list) else [target])
        ]
        dropped = {self.index(c, "id_columns") for c in opts["id_columns"]}
        features = [
            i for i in range(len(self.columns)) if i not in dropped and i not in target_cols
        ]
        if not features:
            raise DataError(
                f"{self.name}: no feature column is left after removing the target and id columns"
            )
        x = self.texts(features[0]) if len(features) == 1 else None
        if x is None:
            x = self.matrix(features)
        if len(target_cols) > 1:
            y, classes, task = self.matrix(target_cols).astype(np.float32), None, "regression"
        else:
            t = target_cols[0]
            y, classes, task = self.labels(t, self.column(t), classes, opts["task"])
        names = [self.columns[i] for i in features]
        return x, y, classes, task, names, [self.columns[i] for i in target_cols]

    def texts(self, col: int) -> np.ndarray | None:
        """A column of text (its first cell is not a number) as ``(rows, 1)`` strings,
        unchanged, for a string Input; None for a column of numbers."""
        cells = self.column(col)
        first = cells[0].strip()
        if not first or _floats((first,)) is not None:
            return None
        return np.array(cells, dtype=str).reshape(-1, 1)

    def numbers(self, col: int, cells: tuple[str, ...]) -> np.ndarray:
        """A column as float64; a bad cell raises DataError naming its line and column."""
        values = _floats(cells)
        if values is not None and np.isfinite(values).all():
            return values
        name = self.columns[col]
        for i, cell in enumerate(cells):
            where = f"{self.name}: line {self.lines[i]}, column {name!r}"
            if not cell.strip():
                raise DataError(f"{where}: the cell is empty (fill or drop missing values)")
            try:
                number = float(cell)
            except ValueError:
                if i == 0:
                    raise DataError(
                        f"{where}: {cell!r} is not a number; the column holds text: make it "
                        "the target or list it in id_columns to drop it"
                    ) from None
                raise DataError(f"{where}: {cell!r} is not a number") from None
            if not np.isfinite(number):
                raise DataError(f"{where}: {cell!r} is not a finite number")
        raise AssertionError("unreachable: numpy and float() disagree")  # pragma: no cover

    def labels(
        self, col: int, cells: tuple[str, ...], classes: list[str] | None, task: str | None
    ) -> tuple[np.ndarray, list[str] | None, str]:
        """The target column: text labels encoded, numbers kept; ``(y, classes, task)``."""
        name = self.columns[col]
        for i, cell in enumerate(cells):
            if not cell.strip():
                raise DataError(
                    f"{self.name}: line {self.lines[i]}, column {name!r}: the label is empty"
                )
        if classes is None:
            values = _floats(cells)
            if values is not None or task == "regression":
                values = self.numbers(col, cells)  # raises on NaN, inf or (regression) text
                whole = bool((values == np.round(values)).all())
                if task == "regression" or (task is None and not whole):
                    return values.astype(np.float32), None, "regression"
                if not whole:
                    first = int(np.argmax(values != np.round(values)))
                    raise DataError(
                        f"{self.name}: line {self.lines[first]}, column {name!r}: "
                        f"class label {cells[first]!r} is not a whole number"
                    )
                return values.astype(np.int64), None, "classification"
        elif not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
            raise DataError(f"{self.name}: option 'classes' must be a list of label texts")
        labels = [c.strip() for c in cells]
        longest = max(map(len, labels), default=0)
        reason = over_budget(len(labels) * longest * 4)  # numpy's fixed-width text array
        if reason is not None:
            raise DataError(
                f"{self.name}: column {name!r}: {len(labels):,} labels of up to {longest:,} "
                f"characters would take {reason}"
            )
        codes, classes = encode_labels(
            f"{self.name}: column {name!r}",
            np.array(labels),
            classes,
            self.lines,
        )
        return codes, classes, "classification"


def _floats(cells: tuple[str, ...]) -> np.ndarray | None:
    """The cells as float64, or None if one is not a number (Python's ``float`` rules).

    Cell by cell, so no fixed-width text array as wide as the longest cell is made.
    """
    try:
        return np.fromiter(map(float, cells), np.float64, count=len(cells))
    except ValueError:
        return None


# -- NPZ ------------------------------------------------------------------------


def load_npz(
    options: dict[str, Any], base_dir: Path | None, *, allow_outside_data: bool = False
) -> Dataset:
    """Read an NPZ source; see the module docstring for the options.

    Paths outside ``base_dir`` are refused unless ``allow_outside_data``.
    """
    opts = read_options("npz source", options, NPZ_OPTIONS)
    classes_opt = opts["classes"] or {}
    if not isinstance(classes_opt, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in classes_opt.values()
    ):
        raise DataError("npz source: option 'classes' must map array names to class lists")
    path = resolve_path("npz source", opts["path"], base_dir, allow_outside_data=allow_outside_data)
    arrays = _train_names(read_npz(path))
    if opts["test_path"] is not None:
        test_path = resolve_path(
            "npz source: test_path",
            opts["test_path"],
            base_dir,
            field="data.source.test_path",
            allow_outside_data=allow_outside_data,
        )
        for name, array in _train_names(read_npz(test_path)).items():
            arrays[name if name.endswith(TEST_SUFFIX) else name + TEST_SUFFIX] = array
    dataset = Dataset(arrays, DatasetMeta(path.stem, "classification", f"NPZ file {path.name}"))
    for name in dataset.names():
        if arrays[name].dtype.kind in "US":
            arrays[name] = _label_column(path.name, name, arrays[name])
            arrays[name], classes = encode_labels(
                f"{path.name}: array {name!r}", arrays[name], classes_opt.get(name)
            )
            dataset.meta.classes[name] = classes
            test = name + TEST_SUFFIX
            if test in arrays:
                arrays[test], _ = encode_labels(
                    f"{path.name}: array {test!r}",
                    _label_column(path.name, test, arrays[test]),
                    classes,
                )
    y = arrays.get("y")
    if y is not None and y.dtype.kind == "f":
        dataset.meta.task = "regression"
    return dataset


def _label_column(file: str, name: str, array: np.ndarray) -> np.ndarray:
    """Text labels as one label per sample, shape ``(samples,)``; (samples, 1) is flattened."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{file}: array {name!r} holds text of shape {array.shape}; text labels must be "
            "one per sample, shape (samples,)"
        )
    return array


def _train_names(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop a ``_train`` suffix (``x_train`` -> ``x``) where that makes no clash."""
    out = {}
    for name, array in arrays.items():
        stem = name[: -len("_train")] if name.endswith("_train") else name
        out[stem if stem not in arrays else name] = array
    return out
