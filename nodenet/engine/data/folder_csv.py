"""An ``image_csv`` source: a CSV file whose column names image files, and their labels.

::

    {"kind": "image_csv", "path": "labels.csv", "image_column": "image",
     "target": "label", "image_size": [64, 64], "color_mode": "rgb", ...}

Each row gives an image file (relative to the CSV file's folder, or absolute) and
its label. The class names are ``class_names`` if given, else the distinct labels
sorted naturally (``Class_2`` before ``Class_10``), as for a CSV dataset. The image
options and their meaning are those of ``image_directory``; the images are
streamed the same way. Every image path obeys the outside-data rule (it must
resolve inside the project's folder unless ``allow_outside_data``); a listed file
that does not exist or cannot be decoded (whatever its extension: Pillow decides)
is skipped and counted when it is read.
The split hashes each path as written in the CSV.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data.base import encode_labels
from nodenet.engine.data.files import _CsvTable, resolve_path
from nodenet.engine.data.folders import FIELD, MAX_FILES, FolderIndex, read_folder_options
from nodenet.errors import DataError, brief
from nodenet.safeio import check_path_length, inside_folder


def index_csv(
    source: Mapping[str, Any], base_dir: Path | None, *, allow_outside_data: bool = False
) -> FolderIndex:
    """The image files and labels listed by an ``image_csv`` source."""
    kind, opts = read_folder_options(source)
    where = "image_csv source"
    if not isinstance(opts["delimiter"], str) or len(opts["delimiter"]) != 1:
        raise DataError(f"{where}: option 'delimiter' must be one character")
    path = resolve_path(where, opts["path"], base_dir, allow_outside_data=allow_outside_data)
    if path.is_dir():
        raise DataError(f"{opts['path']}: is a folder; an image_csv source reads a CSV file")
    table = _CsvTable.read(path, opts["delimiter"], True)
    if len(table.rows) > MAX_FILES:
        raise DataError(f"{path.name}: lists more than {MAX_FILES:,} images")
    files = [c.strip() for c in table.column(table.index(opts["image_column"], "image_column"))]
    labels_text = [c.strip() for c in table.column(table.index(opts["target"], "target"))]
    root = path.parent
    names = []
    for line, name in zip(table.lines, files, strict=True):
        names.append(_checked(path.name, line, name, root, base_dir, allow_outside_data))
    codes, classes = encode_labels(
        f"{path.name}: column {opts['target']!r}",
        np.array(labels_text),
        opts["class_names"],
        table.lines,
    )
    empty = [c for i, c in enumerate(classes) if not (codes == i).any()]
    return FolderIndex(kind, root, opts, names, codes, classes, empty)


def _checked(
    csv_name: str, line: int, name: str, root: Path, base_dir: Path | None, allow: bool
) -> str:
    """``name`` as a path relative to ``root`` (posix), after the outside-data rule."""
    where = f"{csv_name}: line {line}"
    if not name or "\x00" in name:
        raise DataError(f"{where}: the image path is empty")
    check_path_length(where, name)
    full = Path(name).expanduser()
    full = full if full.is_absolute() else root / full
    try:
        inside_folder(FIELD, name, full, base_dir, allow)
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"{where}: {brief(name)} cannot be opened ({err})") from None
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()  # an absolute path elsewhere (allowed): root / it is itself
