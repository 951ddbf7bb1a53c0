"""Keras 3 on a backend that is installed, without the user setting ``KERAS_BACKEND``.

Keras 3 runs on TensorFlow, JAX or PyTorch and reads ``KERAS_BACKEND`` once, when it
is first imported; unset, it takes TensorFlow, installed or not, and fails with
``No module named 'tensorflow'``. :func:`choose_backend` sets ``KERAS_BACKEND``, when
it is unset or empty, to the first of :data:`PREFERENCE` that is installed (looked up
with :func:`importlib.util.find_spec`, nothing imported); :func:`load_keras` does that
and imports Keras. The exported Keras modules begin with the same rule,
:func:`backend_choice_source`, so they too run wherever one backend is installed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import MutableMapping
from types import ModuleType

from nodenet.errors import NodenetError

PREFERENCE = ("tensorflow", "jax", "torch")
VARIABLE = "KERAS_BACKEND"


def installed_backends() -> list[str]:
    """The Keras backends importable here, in :data:`PREFERENCE` order."""
    return [name for name in PREFERENCE if importlib.util.find_spec(name) is not None]


def choose_backend(env: MutableMapping[str, str] | None = None) -> str:
    """The backend Keras will run on, setting ``env["KERAS_BACKEND"]`` when it is unset.

    ``env`` defaults to ``os.environ``. A backend the user named is kept as it is.
    Once Keras is imported its backend is fixed, and that is the answer. Raises
    :class:`nodenet.errors.NodenetError` when no backend is named and none is installed.
    """
    env = os.environ if env is None else env
    if env is os.environ and "keras" in sys.modules:  # imported: its backend is fixed
        return sys.modules["keras"].backend.backend()
    if env.get(VARIABLE):
        return env[VARIABLE]
    installed = installed_backends()
    if not installed:
        raise NodenetError(
            f"Keras 3 needs one of {', '.join(PREFERENCE)} installed (none is): "
            "pip install torch, or set KERAS_BACKEND to the one you will install"
        )
    env[VARIABLE] = installed[0]
    return installed[0]


def load_keras() -> ModuleType:
    """The ``keras`` module, on the backend :func:`choose_backend` picks."""
    choose_backend()
    import keras

    return keras


def backend_choice_source() -> str:
    """The statement a generated module runs before ``import keras`` (needs ``os`` and
    ``importlib.util``): :func:`choose_backend`'s rule, written out."""
    names = ", ".join(f'"{name}"' for name in PREFERENCE)
    return (
        "# Keras 3 runs on TensorFlow, JAX or PyTorch: KERAS_BACKEND names one, else the\n"
        "# first of these that is installed.\n"
        f'os.environ["{VARIABLE}"] = os.environ.get("{VARIABLE}") or next(\n'
        f"    (name for name in ({names}) if importlib.util.find_spec(name)),\n"
        f'    "{PREFERENCE[0]}",\n'
        ")"
    )
