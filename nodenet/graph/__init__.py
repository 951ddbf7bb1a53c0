"""The document: a project's nodes, edges and settings, and what can be known of it without Qt.

- :mod:`nodenet.graph.project`: the project model and its JSON (load, save, migrate).
- :mod:`nodenet.graph.validation`: problems, topological order and shapes (:func:`analyze`).
- :mod:`nodenet.graph.summary`: the Keras-style summary table.
- :mod:`nodenet.graph.layout`: the layered left-to-right layout, given card sizes.

The package imports no Qt; of the engine it reads only the block catalog.
"""
