"""Hostile inputs: documents, Keras configs and data files built to break the boundary."""
