"""The nodenet desktop application (PySide6): a thin view over the project document.

``nodenet.ui.app.run`` starts it; ``nodenet.ui.document.Document`` is the model every
view reads and every edit goes through.
"""
