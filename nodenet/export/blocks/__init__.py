"""One exporter per block type: Keras 3 arguments, PyTorch module, forward and weights.

Importing this package registers every exporter (see :mod:`.base`); a block added
to the catalog adds its exporter to the module of its family here.
"""

from nodenet.export.blocks import (  # noqa: F401
    activation_layers,
    attention,
    augmentation,
    conv,
    core,
    depthwise,
    group_norm,
    noise,
    normalization,
    padding,
    preprocessing,
    recurrent,
    scale,
    text_vectorization,
    time_distributed,
)
from nodenet.export.blocks.base import EXPORTERS, BlockExporter, exporter

__all__ = ["EXPORTERS", "BlockExporter", "exporter"]
