"""Fuzzing of everything nodenet reads: project files, data files, weights files.

Generated and mutated inputs (random JSON, wrong types, huge numbers, negative
sizes, unicode ids, deep nesting, missing and extra keys, cycles, enormous
shapes, mutations of the sample projects; truncated or corrupted NPZ, IDX and
CSV files, wrong dtypes, object arrays, NaN and inf, mismatched lengths, huge
shapes claimed in NPZ and IDX headers) go through loading, validating,
summarizing and the training setup (data preparation and model building). Each
input must end normally or with a :class:`nodenet.errors.NodenetError` that
has a message: never another exception, never a hang (a per-example alarm),
never gigabytes allocated for a small file (the memory budget is 64 MiB while
fuzzing, and ``tracemalloc`` measures the peak of every example).

Profiles (hypothesis settings, registered in ``conftest.py``):

``ci`` (the default)
    ``derandomize=True`` (the same inputs on every run), a bounded number of
    examples per test; the whole directory runs in about a minute on two busy
    cores. Part of the plain ``python -m pytest -q``.
``long``
    ``NODENET_FUZZ=long python -m pytest -q tests/fuzz`` for manual runs:
    random seeds, twenty times the examples, a longer alarm. Add
    ``NODENET_FUZZ_EXAMPLES=N`` to set the examples per test directly.

At the end of a run the number of inputs tried per test and in total is
printed in the terminal summary ("fuzz inputs tried").
"""
