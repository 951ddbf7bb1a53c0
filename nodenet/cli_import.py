"""The ``nodenet import`` command and ``export --to keras-model``: models in the formats other
tools exchange.

``nodenet import MODEL -o project.json`` reads a ``.keras`` archive, a Keras JSON config or an
``.onnx`` file and writes the project, with its weights as ``NAME.weights.npz`` beside it
(where ``train`` writes them and ``predict`` finds them). ``export --to keras-model`` writes
the Keras model file (:mod:`nodenet.export.keras_model_file`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "make a project (and its weights) from a .keras, Keras JSON or .onnx model file"


def is_onnx(path: str) -> bool:
    """Whether ``path`` names an ONNX model (by its suffix; Keras files are .keras/.json)."""
    return Path(path).suffix.lower() == ".onnx"


def cmd_import(args: argparse.Namespace) -> int:
    from nodenet.atomic import write_file
    from nodenet.errors import WeightsError
    from nodenet.export import import_keras_archive
    from nodenet.export._common import npz_bytes
    from nodenet.graph.project import save
    from nodenet.runner import weights_path

    if is_onnx(args.file):
        from nodenet.export.onnx_import import import_onnx

        project, weights = import_onnx(args.file)
        if args.no_weights:
            weights = None
    else:
        project, weights = import_keras_archive(args.file, weights=not args.no_weights)
    save(project, args.output)
    kinds = sum(1 for n in project.nodes if n.type not in ("Input", "Output"))
    print(f"{args.output}: {kinds} blocks from {args.file}", file=sys.stderr)
    if weights is not None:  # NAME.weights.npz beside the project, where train writes them
        written = write_file(weights_path(project), npz_bytes(weights), WeightsError)
        print(f"{written}: the weights from {args.file}", file=sys.stderr)
    if is_onnx(args.file):  # an image input became channels-last: say what to feed
        inputs = [f"{n.id} {tuple(n.params['shape'])}" for n in project.nodes if n.type == "Input"]
        print(f"inputs (after the batch axis, as Keras): {', '.join(inputs)}", file=sys.stderr)
    return 0


def export_keras_model_cli(args: argparse.Namespace, project, weights: dict | None) -> int:
    """``export --to keras-model``: the Keras model file, trained weights and compile settings."""
    from nodenet.errors import NodenetError, WeightsError
    from nodenet.export.keras_model_file import save_keras_model

    if args.data:
        raise NodenetError("--data writes the data generated code reads; a model file needs none")
    try:
        path = save_keras_model(project, weights, args.output)
    except WeightsError as err:
        raise WeightsError(f"{args.weights}: {err}") from None
    print(f"{path}: a Keras model file (keras.models.load_model)", file=sys.stderr)
    return 0
