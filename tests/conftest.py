"""Shared test setup: Qt runs offscreen, numpy warnings are errors where it matters."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("KERAS_BACKEND", "torch")
