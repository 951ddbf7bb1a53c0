"""Hypothesis profiles for the fuzz tests, the per-example guard and the input counter.

See the package docstring for the profiles; ``conftest.py`` loads this module
first, so the profile is set before any test module is collected.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import tracemalloc

from hypothesis import HealthCheck, settings

from nodenet.errors import NodenetError

PROFILE = os.environ.get("NODENET_FUZZ", "ci")
EXAMPLE_SCALE = 20 if PROFILE == "long" else 1
FUZZ_BUDGET = "64M"  # NODENET_MEMORY_BUDGET while an example runs
PEAK_LIMIT = 256 * 2**20  # bytes an example may allocate (numpy and Python), small files only
ALARM_SECONDS = 120.0 if PROFILE == "long" else 60.0  # generous: other jobs share the cores

_common = dict(
    deadline=None,  # the machine is shared and noisy: hangs are caught by the alarm instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    print_blob=True,
)
settings.register_profile("ci", derandomize=True, **_common)
settings.register_profile("long", derandomize=False, **_common)
settings.load_profile("long" if PROFILE == "long" else "ci")

TRIED: collections.Counter[str] = collections.Counter()  # inputs tried, per test
PASSED: collections.Counter[str] = collections.Counter()  # steps that ended without an error


def examples(ci: int) -> int:
    """Examples per test: ``ci``, 20 times that in the long profile, or NODENET_FUZZ_EXAMPLES."""
    given = os.environ.get("NODENET_FUZZ_EXAMPLES")
    return int(given) if given else ci * EXAMPLE_SCALE


class Hang(BaseException):
    """An example ran past the alarm (a BaseException, so no ``except Exception`` hides it)."""


def _alarm(signum, frame):
    raise Hang(f"an example ran for more than {ALARM_SECONDS:g} s")


@contextlib.contextmanager
def guarded(label: str):
    """Run one example: count it, allow only NodenetError (with a message), bound time and memory.

    Yields; a :class:`NodenetError` raised inside is checked and swallowed, any
    other exception propagates (hypothesis shrinks and reports it). Wrap only the code
    under test: draw every input before entering, since hypothesis's own setup on a first
    draw (its Unicode tables on a fresh clone, the constants it collects from the
    imported modules) may take a minute on a busy machine under ``tracemalloc``, and
    would count against the alarm and the memory limit.
    """
    TRIED[label] += 1
    main = threading.current_thread() is threading.main_thread()
    previous_budget = os.environ.get("NODENET_MEMORY_BUDGET")
    os.environ["NODENET_MEMORY_BUDGET"] = FUZZ_BUDGET
    if main:
        previous_handler = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, ALARM_SECONDS)
    tracemalloc.start()
    try:
        yield
    except NodenetError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous_handler)
        if previous_budget is None:
            os.environ.pop("NODENET_MEMORY_BUDGET", None)
        else:
            os.environ["NODENET_MEMORY_BUDGET"] = previous_budget
    assert peak < PEAK_LIMIT, f"an example allocated {peak / 2**20:.0f} MiB"


def attempt(step, *args, **kwargs):
    """``step(*args)``; a NodenetError (with a message) is an accepted outcome: None.

    Steps that succeed are counted in :data:`PASSED` (by function name), to show
    how deep the inputs get.
    """
    try:
        result = step(*args, **kwargs)
    except NodenetError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return None
    PASSED[getattr(step, "__name__", str(step))] += 1
    return result
