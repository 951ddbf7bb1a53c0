"""Import every model of the Keras corpus and say which come in exactly.

    KERAS_BACKEND=torch NODENET_MEMORY_BUDGET=64G python3 scripts/keras_corpus.py [NAME ...]

The corpus is tests/support/keras_corpus.py: all 40 ``keras.applications``
constructors with and without their top (``weights=None``, smallest input), the
Keras examples and guide architectures, and the models with custom code that must
be refused. Each model is checked as tests/export/test_keras_corpus.py checks its
families (tests/support/keras_check.py): every layer's shape, parameter counts and
output against Keras, and both exports. Prints one line per model and the count.
Needs the ``ref`` and ``test`` extras (keras, torch, h5py).
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402

from nodenet.errors import NodenetError  # noqa: E402
from nodenet.export.keras_import import import_keras  # noqa: E402
from tests.support import keras_corpus  # noqa: E402
from tests.support.keras_check import check_model  # noqa: E402


def cases() -> dict[str, object]:
    found = {}
    for name in keras_corpus.APPLICATIONS:
        for top in (True, False):
            found[f"{name}{'' if top else ' (no top)'}"] = lambda n=name, t=top: (
                keras_corpus.application(n, t)
            )
    found.update(keras_corpus.EXAMPLES)
    return found


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"


def main(names: list[str]) -> int:
    exact, refused, failed, unbuildable = [], [], [], []
    todo = {k: v for k, v in cases().items() if not names or k.split(" ")[0] in names}
    for label, build in todo.items():
        start = time.perf_counter()
        keras.utils.set_random_seed(7)
        try:
            kmodel = build()
        except Exception as err:  # Keras itself cannot build it here
            unbuildable.append(label)
            print(f"{label:40s} not built by Keras: {first_line(err)}", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                check_model(kmodel, Path(tmp), label)
            except NodenetError as err:
                refused.append(label)
                status = f"REFUSED  {first_line(err)}"
            except AssertionError as err:
                failed.append(label)
                status = f"DIFFERS  {first_line(err)}"
            except Exception as err:
                failed.append(label)
                status = f"ERROR    {first_line(err)}"
                traceback.print_exc(limit=3)
            else:
                exact.append(label)
                status = "exact"
        print(f"{label:40s} {status}  ({time.perf_counter() - start:.0f} s)", flush=True)
        del kmodel
        keras.backend.clear_session()
        gc.collect()
    for label, build in keras_corpus.REFUSED.items():
        if names and label not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.keras"
            build().save(path)
            try:
                import_keras(path)
            except NodenetError as err:
                lines = str(err).splitlines()
                print(f"{label:40s} refused as it must, {len(lines)} lines: {lines[-1][:120]}")
            else:
                failed.append(label)
                print(f"{label:40s} WRONGLY IMPORTED (it runs custom code)")
    built = len(todo) - len(unbuildable)
    print(f"\n{len(exact)} of {built} models Keras builds here import exactly", end="")
    print(f" ({len(refused)} refused, {len(failed)} differ or fail)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
