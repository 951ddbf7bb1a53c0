"""The project's ``training`` section: its fields, defaults, ranges and checks.

Described with the same parameter descriptors as blocks, so the GUI builds its
form from them and validation names the field: ``training.epochs must be ...``.
The optimizer's own fields are checked by :func:`nodenet.engine.optimizers.make_optimizer`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from nodenet.engine.params import Bool, Choice, Float, Int, Text, check_params
from nodenet.engine.schedules import REDUCE_LR_PARAMS
from nodenet.errors import NodenetError, shorten

MESSAGE_CHARS = 300  # a problem echoing a long name is cut to this length

TRAINING_PARAMS = (
    Int("epochs", 10, "passes over the training data", min=0, max=100_000),
    Int("batch_size", 32, "samples per gradient step", min=1, max=1_000_000),
    Float(
        "validation_split",
        0.2,
        "fraction held out for validation, from the end of the data",
        min=0.0,
        max=1.0,
        max_exclusive=True,
    ),
    Bool("shuffle", True, "reshuffle the training samples every epoch"),
    Bool(
        "warm_start",
        False,
        "start every block from the weights the project holds (imported, or the last "
        "run's) where they fit, to fine-tune; off: fresh seeded weights, except frozen blocks",
    ),
    Int(
        "seed",
        1671,
        "seeds weights, shuffling and dropout: same seed, same run",
        min=0,
        max=2**32 - 1,
        optional=True,
    ),
)

EARLY_STOPPING_PARAMS = (
    Text(
        "monitor",
        "val_loss",
        "the logged value watched for improvement (val_loss, val_accuracy, loss, ...)",
    ),
    Int("patience", 3, "epochs without improvement before stopping", min=0),
    Float("min_delta", 0.0, "smallest change that counts as an improvement", min=0.0),
    Choice(
        "mode",
        "auto",
        "whether the monitored value should fall or rise",
        choices=("auto", "min", "max"),
    ),
    Bool("restore_best", True, "end with the weights of the best epoch"),
)

_SECTIONS = {"early_stopping": EARLY_STOPPING_PARAMS, "reduce_lr_on_plateau": REDUCE_LR_PARAMS}
_OTHER_KEYS = {"optimizer", "class_weight"}


def check_training(training: Any) -> list[str]:
    """Every problem of a ``training`` section, each starting ``training.<field>``."""
    if not isinstance(training, dict):
        return ["training must be an object"]
    problems = []
    simple = {k: v for k, v in training.items() if k not in _SECTIONS and k not in _OTHER_KEYS}
    for err in check_params(TRAINING_PARAMS, simple, "training"):
        problems.append(_prefixed("training", err))
    for key, specs in _SECTIONS.items():
        value = training.get(key)
        if value is None:
            continue
        for err in check_params(specs, value, f"training.{key}"):
            problems.append(_prefixed(f"training.{key}", err))
    class_weight = training.get("class_weight")
    if class_weight is not None and not _valid_class_weight(class_weight):
        problems.append(
            "training.class_weight must map class indices (0, 1, 2, ... at most "
            f"{MAX_CLASS_INDEX:,}) to non-negative finite weights"
        )
    if "optimizer" in training:
        from nodenet.engine.optimizers import make_optimizer

        try:
            make_optimizer(training["optimizer"])
        except NodenetError as err:
            problems.append(str(err))
    return [shorten(text, MESSAGE_CHARS) for text in problems]


MAX_CLASS_INDEX = 1_000_000
_CLASS_INDEX = re.compile(r"[0-9]{1,7}")


def _valid_class_weight(class_weight: Any) -> bool:
    """A dict of ASCII-decimal class indices (``"2"``, not ``"²"``) to finite weights >= 0."""
    if not isinstance(class_weight, dict):
        return False
    for key, weight in class_weight.items():
        text = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
        if not isinstance(text, str) or not _CLASS_INDEX.fullmatch(text):
            return False
        if int(text) > MAX_CLASS_INDEX:
            return False
        try:
            ok = not isinstance(weight, bool) and isinstance(weight, int | float)
            ok = ok and math.isfinite(float(weight)) and weight >= 0
        except OverflowError:
            ok = False
        if not ok:
            return False
    return True


def _prefixed(section: str, err) -> str:
    text = str(err)
    if text.startswith(section):
        return text
    if err.param and text.startswith(err.param):
        return f"{section}.{text}"
    return f"{section}: {text}"


def resolved(training: dict[str, Any]) -> dict[str, Any]:
    """The section with every default filled in (assumes it validated)."""
    out = {p.name: training.get(p.name, p.default) for p in TRAINING_PARAMS}
    for key, specs in _SECTIONS.items():
        value = training.get(key)
        out[key] = None if value is None else {p.name: value.get(p.name, p.default) for p in specs}
    out["optimizer"] = training.get("optimizer", {"name": "adam", "learning_rate": 0.001})
    out["class_weight"] = training.get("class_weight")
    return out
