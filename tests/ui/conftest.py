"""Every UI test gets its own QSettings folder: tests never read or write the user's."""

import pytest

from tests.ui import isolated_settings


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path_factory):
    isolated_settings(tmp_path_factory.mktemp("qsettings"))
