"""The block catalog: importing this package registers every block.

One module per block family; each block is a class decorated with
:func:`nodenet.engine.layer.register`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
