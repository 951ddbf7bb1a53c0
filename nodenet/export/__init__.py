"""Export a project to Keras 3 or PyTorch source (with trained weights), import Keras configs.

``export_keras(project, weights)`` and ``export_pytorch(project, weights)`` give
an :class:`ExportedCode` (the source, and the ``.npz`` it loads when exported
with weights); ``import_keras(path)`` reads a ``model.to_json()`` file or a
``.keras`` archive into a project, ``import_keras_archive(path)`` also the
archive's trained weights. ``data_npz(project)`` is the prepared data a
generated module reads when its dataset does not ship with scikit-learn.
``export_onnx(project, weights, opset)`` gives an ``onnx.ModelProto`` (the ``onnx`` extra;
:class:`nodenet.errors.ExportError` saying how to install it when missing).
``import_onnx(path)`` reads an ONNX model into a project and its weights (the ``onnx``
extra); ``save_keras_model(project, weights, path)`` writes a ``.keras`` model file (Keras).
"""

from nodenet.export._common import ExportedCode
from nodenet.export._data_code import data_npz
from nodenet.export.keras import export_keras
from nodenet.export.keras_import import import_keras, import_keras_archive, import_keras_config
from nodenet.export.keras_model_file import save_keras_model
from nodenet.export.keras_weights import NO_H5PY
from nodenet.export.onnx import export_onnx, require_onnx, write_onnx_file
from nodenet.export.onnx_import import import_onnx
from nodenet.export.pytorch import export_pytorch

__all__ = [
    "NO_H5PY",
    "ExportedCode",
    "data_npz",
    "export_keras",
    "export_onnx",
    "export_pytorch",
    "import_keras",
    "import_keras_archive",
    "import_keras_config",
    "import_onnx",
    "require_onnx",
    "save_keras_model",
    "write_onnx_file",
]
