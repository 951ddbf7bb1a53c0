"""The typed errors a user can cause.

Every message is one sentence naming the file, node or field at fault; the
command line prints it without a traceback and the GUI shows it in a dialog.
"""

from __future__ import annotations

from typing import Any

MESSAGE_TEXT_CHARS = 80  # user-supplied text echoed in a message is cut to this many characters


def shorten(text: Any, limit: int = MESSAGE_TEXT_CHARS) -> str:
    """``text`` (or its ``str``) cut to ``limit`` characters with an ellipsis and the full length.

    Use it wherever a message echoes user input (ids, type names, paths, keys) so that a
    megabyte-long name gives a readable one-line message.
    """
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 1, 1)]}… ({len(text):,} characters)"


def brief(value: Any, limit: int = MESSAGE_TEXT_CHARS) -> str:
    """``repr(value)`` cut like :func:`shorten` (a huge list or number in a message)."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's digit limit for str()
        text = f"<an integer of about {value.bit_length() * 0.30103:,.0f} digits>"
    return shorten(text, limit)


class NodenetError(Exception):
    """Base of every error nodenet raises on purpose."""


class ProjectFileError(NodenetError):
    """A project file cannot be read: not JSON, wrong format or version, bad structure."""


class ParamError(NodenetError):
    """A block parameter is unknown, ill-typed or out of range."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class ShapeError(NodenetError):
    """A block cannot take the shapes of its inputs."""


class UnknownNameError(NodenetError):
    """A name (block type, loss, optimizer, ...) is not in its registry."""


class ValidationError(NodenetError):
    """A project has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list):
        self.problems = list(problems)
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(f"the project has {len(self.problems)} problem(s):\n{lines}")


class DataError(NodenetError):
    """A dataset cannot be loaded or does not fit the graph."""


class WeightsError(NodenetError):
    """A weights file does not match the graph."""


class TrainingError(NodenetError):
    """Training stopped on a fault (a NaN loss, bad data, an exception in a layer)."""


class OutsideDataError(DataError):
    """A data path leads outside the project's folder and reading there was not allowed.

    ``field`` is the project field (``data.source.path``), ``path`` the resolved
    file and ``folder`` the project's folder; a caller that asks the user may
    retry with ``allow_outside_data=True`` (command line: ``--allow-outside-data``).
    """

    def __init__(self, field: str, given: str, path, folder):
        self.field, self.given, self.path, self.folder = field, given, path, folder
        super().__init__(
            f"{field}: {given!r} leads to {path}, outside the project folder {folder}; "
            "nodenet reads data only inside the project's folder unless allowed "
            "(command line: --allow-outside-data; engine: allow_outside_data=True)"
        )


class SaveError(NodenetError):
    """A file cannot be written (no permission, a full disk); any previous file is intact."""


class ExportError(NodenetError):
    """A project cannot be written in a format (a block the format has no operator for)."""
