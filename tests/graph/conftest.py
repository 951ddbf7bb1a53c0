"""Fixtures of the graph tests."""

from __future__ import annotations

import pytest

from tests.support.split_block import registered


@pytest.fixture
def split_block():
    """The test-only multi-output block ``TestSplit`` in the catalog, for one test."""
    with registered() as cls:
        yield cls
