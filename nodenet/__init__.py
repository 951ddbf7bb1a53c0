"""nodenet: design and train neural networks visually.

The public names: the project document (:mod:`nodenet.project`), the engine
(:mod:`nodenet.engine`) and the exporters (:mod:`nodenet.export`).
"""

__version__ = "0.1.0"

from nodenet.errors import NodenetError

__all__ = ["NodenetError", "__version__"]
