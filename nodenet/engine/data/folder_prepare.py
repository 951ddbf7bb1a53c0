"""A folder dataset prepared for a graph's one Input and one Output.

Images and audio are streamed: each split's Input data is a
:class:`~nodenet.engine.data.stream.StreamedColumn` (files read batch by batch
in a background thread), the labels are small arrays in memory. Text files are
turned into token ids in memory as Keras's ``TextVectorization`` does with its
defaults (:mod:`nodenet.engine.text_tokens`, shared with the TextVectorization
block: lower case, punctuation stripped, split on whitespace; vocabulary from the
training split, most frequent first, ties broken as Keras does; 0 pads at the
end, 1 is ``[UNK]``); the vocabulary is kept in the dataset meta
(``extra["vocabulary"]``). An Input of dtype ``string`` instead gets each file's text
itself, cut to ``max_length`` characters, as an ``(n, 1)`` unicode array (what Keras's
``text_dataset_from_directory`` gives): a TextVectorization block then learns its
vocabulary from the training split and numbers the words.

``data.preprocess.scale`` multiplies every image or audio batch;
``normalize`` and ``reshape`` are for arrays only (use a Rescaling or
Normalization block for folder data). Targets follow ``label_mode`` and then
``target_encoding`` as for arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.engine.data import preprocess
from nodenet.engine.data.base import DatasetMeta
from nodenet.engine.data.folder_cache import DiskCache, cache_key, cache_root
from nodenet.engine.data.folder_decode import (
    CHANNELS,
    UnreadableFile,
    decode_audio,
    decode_image,
    read_text,
    wav_header,
)
from nodenet.engine.data.folders import (
    IMAGE_KINDS,
    FolderIndex,
    encode_labels_as,
    index_source,
    split_ids,
)
from nodenet.engine.data.prepare import PreparedData, PreparedMeta
from nodenet.engine.data.stream import FileSamples, SkipLog, StreamedColumn
from nodenet.errors import DataError
from nodenet.safeio import over_budget

PARTS = ("train", "val", "test")


def sample_spec(
    index: FolderIndex, skipped: SkipLog | None = None, *, strings: bool = False
) -> tuple[tuple, str]:
    """``(sample shape, dtype)`` the folder gives an Input; a text folder gives a string
    Input (``strings``) the raw texts, one per sample, else token ids."""
    opts = index.options
    if index.kind in IMAGE_KINDS:
        height, width = opts["image_size"]
        return (height, width, CHANNELS[opts["color_mode"]]), "float32"
    if index.kind == "text_directory":
        if strings:
            return (1,), "string"
        return (opts["output_sequence_length"],), "int32"
    return (opts["output_sequence_length"], audio_channels(index, skipped)), "float32"


def audio_channels(index: FolderIndex, skipped: SkipLog | None = None) -> int:
    """The channels of the first readable wav file (the others must match)."""
    for name in index.names[:100]:
        try:
            return wav_header(index.root / name)[0]
        except UnreadableFile as err:
            if skipped is not None:
                skipped.add(name, str(err))
    raise DataError(f"{index.options['path']}: none of its first wav files can be read")


def file_samples(
    index: FolderIndex, scale: float | None = None, *, use_cache: bool = True
) -> FileSamples:
    """The decoder over every file of an image or audio folder, with its disk cache
    (when the source asks for one and ``use_cache``)."""
    opts = index.options
    skipped = SkipLog()
    shape, _ = sample_spec(index, skipped)
    if index.kind in IMAGE_KINDS:
        decode = functools.partial(
            decode_image,
            image_size=tuple(opts["image_size"]),
            channels=shape[-1],
            interpolation=opts["interpolation"],
            crop_to_aspect_ratio=opts["crop_to_aspect_ratio"],
        )
    else:
        decode = functools.partial(
            decode_audio, length=shape[0], channels=shape[1], sampling_rate=opts["sampling_rate"]
        )
    cache = None
    if opts.get("cache") and use_cache:
        decoding = {
            k: v for k, v in opts.items() if k not in ("cache", "class_names", "label_mode")
        }
        key = cache_key(index.root, index.names, {"kind": index.kind, **decoding})
        cache = DiskCache(key, len(index.names), shape, cache_root())
        cache = cache if cache.usable else None
    return FileSamples(
        index.root, index.names, decode, shape, scale=scale, cache=cache, skipped=skipped
    )


def prepare_folder(
    data_config: Mapping[str, Any],
    input_specs: Mapping[str, tuple[tuple, str]],
    output_specs: Mapping[str, tuple[tuple, str]],
    base_dir: Path | None,
    seed: int,
    *,
    allow_outside_data: bool = False,
) -> PreparedData:
    """The folder source of ``data_config`` split and prepared (see the module docstring)."""
    index = index_source(data_config["source"], base_dir, allow_outside_data=allow_outside_data)
    where = index.options["path"]
    with_files = [c for c, n in index.counts().items() if n]
    if len(with_files) < 2:
        raise DataError(
            f"{where}: only the class {with_files[0]!r} has files; a classifier needs files "
            "of at least two classes"
        )
    if index.options["label_mode"] == "binary" and len(index.class_names) != 2:
        raise DataError(
            f'{where}: label_mode "binary" needs exactly 2 classes, the folder has '
            f"{len(index.class_names)} ({', '.join(index.class_names[:10])})"
        )
    pre = preprocess.read_preprocess(data_config.get("preprocess") or {})
    if pre["normalize"] != "none" or pre["reshape"]:
        raise DataError(
            "data.preprocess: normalize and reshape apply to arrays; for a folder dataset use "
            "scale, or a Rescaling or Normalization block"
        )
    split = preprocess.read_split(data_config.get("split") or {}, seed)
    parts = dict(
        zip(
            PARTS,
            split_ids(index.names, split["validation"], split["test"], split["seed"]),
            strict=True,
        )
    )
    if not len(parts["train"]):
        raise DataError(f"{where}: the split leaves no file for training")
    node, target = (
        _single(input_specs, "Input", "inputs", data_config),
        _single(output_specs, "Output", "targets", data_config),
    )
    strings = index.kind == "text_directory" and input_specs[node][1] == "string"
    shape, dtype = sample_spec(index, strings=strings)
    _check_input(node, input_specs[node], shape, dtype, index)
    meta = PreparedMeta(_dataset_meta(index), "classification")
    meta.mapping = {"inputs": {node: "x"}, "targets": {target: "y"}}
    if strings:
        columns, labels = _text_strings(index, parts, meta)
    elif index.kind == "text_directory":
        columns, labels = _text_columns(index, parts, meta)
    else:
        source = file_samples(index, pre["scale"])
        meta.dataset.extra["skipped"] = source.skipped
        meta.dataset.extra["cache"] = None if source.cache is None else str(source.cache.path)
        columns = {p: StreamedColumn(source, ids) for p, ids in parts.items()}
        labels = {p: index.labels[ids] for p, ids in parts.items()}
    out: dict[str, Any] = {}
    for part in PARTS:
        meta.sizes[part] = len(columns[part])
        if not len(columns[part]):
            out[part] = None
            continue
        y = encode_labels_as(labels[part], index.options["label_mode"], len(index.class_names))
        encoding = preprocess.pick(pre["target_encoding"], (target, "y"), "auto")
        shape_out, loss = output_specs[target]
        y, meta.encodings[target] = preprocess.encode_target(
            target, "y", y, shape_out, loss, encoding, index.class_names
        )
        out[part] = {"inputs": {node: columns[part]}, "targets": {target: y}}
    meta.classes[target] = list(index.class_names)
    meta.test_source = "split" if out["test"] else None
    return PreparedData(out["train"], out["val"], out["test"], meta)


def _single(specs: Mapping, block: str, key: str, data_config: Mapping) -> str:
    nodes = list(specs)
    if len(nodes) != 1:
        raise DataError(
            f"a folder dataset feeds one {block}; the graph has {len(nodes)} "
            f"({', '.join(nodes) or 'none'})"
        )
    given = data_config.get(key)
    if given is not None and (
        not isinstance(given, Mapping)
        or set(given) - {nodes[0]}
        or any(v not in ("x", "y") for v in given.values())
    ):
        arrays = "x" if key == "inputs" else "y"
        raise DataError(f"data.{key}: a folder dataset gives {nodes[0]!r} the array {arrays!r}")
    return nodes[0]


def _check_input(node: str, spec: tuple, shape: tuple, dtype: str, index: FolderIndex) -> None:
    given, given_dtype = tuple(spec[0]), spec[1]
    if len(given) != len(shape) or any(
        g is not None and g != s for g, s in zip(given, shape, strict=False)
    ):
        opts = index.options
        keys = ("image_size", "color_mode") if index.kind in IMAGE_KINDS else ()
        why = ", ".join(f"{k} {opts[k]!r}" for k in (*keys, "output_sequence_length") if k in opts)
        if dtype == "string":
            why = "one text per sample, for a TextVectorization"
        raise DataError(
            f"{node}: the folder {opts['path']} gives samples of shape {list(shape)} ({why}) "
            f"but the Input has shape {list(given)}; set the Input's shape to {list(shape)}"
        )
    if dtype == "int32" and given_dtype != "int32":
        raise DataError(
            f"{node}: the text folder gives token ids; set the Input's dtype to int32, or to "
            "string (shape [1]) to feed the texts to a TextVectorization block"
        )
    if dtype == "int32" and shape[0] is None:
        raise DataError(
            f"{node}: {index.options['path']}: set the folder's output_sequence_length (tokens "
            "per text) for an int32 Input, or give the Input dtype string (shape [1]) and a "
            "TextVectorization block"
        )


def _dataset_meta(index: FolderIndex) -> DatasetMeta:
    notes = [
        f"{index.options['path']}/{c}: holds no file with an allowed extension (the class is kept, "
        "as in Keras)"
        for c in index.empty
    ]
    extra = {"folder": index.options["path"], "files": len(index.names), "notes": notes}
    return DatasetMeta(
        Path(index.options["path"]).name,
        "classification",
        f"{index.kind} {index.options['path']} ({len(index.names)} files, "
        f"{len(index.class_names)} classes)",
        {"y": list(index.class_names)},
        extra,
    )


# -- text ----------------------------------------------------------------------------------


def _text_columns(index: FolderIndex, parts: dict, meta: PreparedMeta) -> tuple[dict, dict]:
    """Token id arrays and labels per split; unreadable files skipped and counted."""
    from nodenet.engine import text_tokens  # TextVectorization's rules, shared with its block

    opts, skipped = index.options, SkipLog()
    length = opts["output_sequence_length"]
    reason = over_budget(len(index.names) * length * 4)
    if reason is not None:
        raise DataError(f"{opts['path']}: the token ids of its files would take {reason}")
    words, labels = {}, {}
    for part, ids in parts.items():
        kept, words[part] = [], []
        for i in ids:
            try:
                text = read_text(index.root / index.names[i], opts["max_length"])
            except UnreadableFile as err:
                skipped.add(index.names[i], str(err))
                continue
            words[part].append(text_tokens.tokenize(text))
            kept.append(i)
        labels[part] = index.labels[np.array(kept, np.int64)]
    vocab = text_tokens.vocabulary(words["train"], opts["max_tokens"])
    columns = {
        part: text_tokens.encode_ids(words[part], vocab, length).astype(np.int32) for part in PARTS
    }
    meta.dataset.extra.update(vocabulary=vocab, skipped=skipped)
    return columns, labels


def _text_strings(index: FolderIndex, parts: dict, meta: PreparedMeta) -> tuple[dict, dict]:
    """Each split's texts as an ``(n, 1)`` unicode array (cut to ``max_length``) and its
    labels, for a string Input; unreadable files skipped and counted. No vocabulary here:
    the TextVectorization block learns it from the training split.

    A fixed-width array is as wide as the longest text; when that (bounded by the files'
    sizes) would not fit the memory budget, the texts are streamed instead, batch by batch.
    """
    opts, skipped = index.options, SkipLog()
    if over_budget(len(index.names) * _widest_bound(index) * 4) is not None:
        read = functools.partial(read_text, max_length=opts["max_length"])
        source = FileSamples(index.root, index.names, read, (1,), np.dtype(str), skipped=skipped)
        meta.dataset.extra.update(skipped=skipped)
        columns = {p: StreamedColumn(source, ids) for p, ids in parts.items()}
        return columns, {p: index.labels[ids] for p, ids in parts.items()}
    texts, labels = {}, {}
    for part, ids in parts.items():
        kept, texts[part] = [], []
        for i in ids:
            try:
                text = read_text(index.root / index.names[i], opts["max_length"])
            except UnreadableFile as err:
                skipped.add(index.names[i], str(err))
                continue
            texts[part].append(text)
            kept.append(i)
        labels[part] = index.labels[np.array(kept, np.int64)]
    widest = max((len(t) for part in texts.values() for t in part), default=1)
    columns = {
        part: np.array(texts[part], dtype=f"<U{max(widest, 1)}").reshape(-1, 1) for part in PARTS
    }
    meta.dataset.extra.update(skipped=skipped)
    return columns, labels


def _widest_bound(index: FolderIndex) -> int:
    """At least the characters of the longest text: its file's bytes, cut at ``max_length``."""
    limit = index.options["max_length"]
    widest = 1
    for name in index.names:
        try:
            size = (index.root / name).stat().st_size
        except OSError:  # skipped when it is read
            continue
        widest = max(widest, size if limit is None else min(size, limit))
    return widest
