"""nodenet: design and train neural networks visually.

The public names: the project document (:mod:`nodenet.graph.project`), the engine
(:mod:`nodenet.engine`) and the exporters (:mod:`nodenet.export`).
"""

import os

# OpenBLAS worker threads busy-wait after every matrix product and take the CPU
# from the rest of the training step; let them sleep soon. Must be set before
# numpy loads OpenBLAS, so it lives here; a user's own setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")

__version__ = "0.1.0"

from nodenet.errors import NodenetError

__all__ = ["NodenetError", "__version__"]
