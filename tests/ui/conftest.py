"""UI test setup: isolated QSettings per test, and a clean clipboard at the end."""

import pytest

from tests.ui import isolated_settings


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path_factory):
    isolated_settings(tmp_path_factory.mktemp("qsettings"))


@pytest.fixture(autouse=True)
def _clear_clipboard(qapp):
    """Data a test left on the clipboard crashes Qt's offscreen platform at exit."""
    yield
    qapp.clipboard().clear()
