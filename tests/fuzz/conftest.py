"""Loads the fuzz profile (see the package docstring) and prints the inputs tried."""

from __future__ import annotations

import contextlib

import pytest

from nodenet.errors import NodenetError
from tests.fuzz.harness import PASSED, PROFILE, TRIED


def pytest_terminal_summary(terminalreporter):
    if not TRIED:
        return
    terminalreporter.write_sep("-", f"fuzz inputs tried (profile {PROFILE})")
    for label, count in sorted(TRIED.items()):
        terminalreporter.write_line(f"  {label}: {count}")
    terminalreporter.write_line(f"  total: {sum(TRIED.values())}")
    reached = ", ".join(f"{step} {count}" for step, count in sorted(PASSED.items()))
    terminalreporter.write_line(f"  steps passed without an error: {reached}")


@pytest.fixture(scope="session", autouse=True)
def _warm_builtin_datasets():
    """Generate the built-in datasets once, outside the per-example alarm and tracemalloc
    (mnist1d is generated sample by sample; later loads are cached copies)."""
    from nodenet.engine.data import BUILTINS, load_builtin

    for name in BUILTINS.names():
        with contextlib.suppress(NodenetError):
            load_builtin(name, {})
