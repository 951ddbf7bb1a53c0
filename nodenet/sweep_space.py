"""A sweep's search space: ``--param`` specs, checked against the project's descriptors.

A spec names a setting and a range: ``KEY=KIND:ARGS`` where ``KEY`` is
``nodes.<node id>.<param>`` (a block parameter), ``training.<field>``,
``training.optimizer.<field>`` or ``training.early_stopping.<field>`` /
``training.reduce_lr_on_plateau.<field>``, and the range one of

- ``uniform:LOW:HIGH`` and ``loguniform:LOW:HIGH`` (numbers; log needs LOW > 0),
- ``int:LOW:HIGH[:STEP]`` (whole numbers, both ends included),
- ``categorical:A,B,C`` (numbers, ``true``/``false``, ``null`` or names).

:func:`resolve_spec` checks a spec against the project: the node exists, the parameter
is one of its block's ``PARAMS``, every value of the range is one its descriptor
accepts. :func:`suggested_range` proposes a range from a descriptor (the GUI's default)
and :func:`apply_trial` writes a trial's values into a copy of the project.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

from nodenet.engine.params import Bool, Choice, Float, Int, Param
from nodenet.errors import NodenetError, ParamError

KINDS = ("uniform", "loguniform", "int", "categorical")
MAX_CHOICES = 1000  # values of one categorical spec


class SweepError(NodenetError):
    """A sweep that cannot run as asked: a bad ``--param`` spec, sampler or setting."""


@dataclass(frozen=True)
class ParamSpec:
    """One swept setting: its key, the kind of range and the range."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    choices: tuple = ()

    def text(self) -> str:
        """The spec as written on the command line."""
        if self.kind == "categorical":
            return f"{self.key}=categorical:" + ",".join(_word(c) for c in self.choices)
        step = f":{self.step}" if self.step not in (None, 1) else ""
        return f"{self.key}={self.kind}:{_word(self.low)}:{_word(self.high)}{step}"

    @property
    def finite(self) -> bool:
        """Whether a grid can enumerate the range."""
        return self.kind in ("categorical", "int")

    def grid(self) -> list:
        """Every value of a finite range, in order."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step or 1))
        raise SweepError(f"{self.text()}: a grid needs a finite range (int or categorical)")

    def distribution(self):
        """The Optuna distribution of this range."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), step=self.step or 1)
        return FloatDistribution(float(self.low), float(self.high), log=self.kind == "loguniform")

    def suggest(self, trial) -> Any:
        """This setting's value for an Optuna ``trial``."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=self.step or 1)
        log = self.kind == "loguniform"
        return trial.suggest_float(self.key, float(self.low), float(self.high), log=log)


def _word(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _value(word: str) -> Any:
    """A word of a categorical spec as a JSON-native value."""
    text = word.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _number(word: str, spec: str, integer: bool = False) -> float | int:
    try:
        number = int(word) if integer else float(word)
    except ValueError:
        what = "a whole number" if integer else "a number"
        raise SweepError(f"{spec}: {word!r} is not {what}") from None
    if not integer and not math.isfinite(number):
        raise SweepError(f"{spec}: {word!r} is not a finite number")
    return number


def parse_spec(text: str) -> ParamSpec:
    """A ``KEY=KIND:ARGS`` spec, its syntax checked (not yet against a project)."""
    spec = text.strip()
    key, eq, rng = spec.partition("=")
    key = key.strip()
    if not eq or not key or not rng:
        raise SweepError(
            f"{spec!r}: a --param is KEY=KIND:ARGS, e.g. "
            "training.optimizer.learning_rate=loguniform:1e-4:1e-1"
        )
    kind, _, args = rng.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise SweepError(f"{spec}: the range kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if kind == "categorical":
        words = [w for w in args.split(",")] if args.strip() else []
        if not words or any(not w.strip() for w in words):
            raise SweepError(f"{spec}: categorical needs comma-separated values, e.g. a,b,c")
        if len(words) > MAX_CHOICES:
            raise SweepError(f"{spec}: at most {MAX_CHOICES} values")
        choices = tuple(_value(w) for w in words)
        if len(set(map(repr, choices))) != len(choices):
            raise SweepError(f"{spec}: a value is listed twice")
        return ParamSpec(key, kind, choices=choices)
    parts = args.split(":")
    integer = kind == "int"
    if len(parts) not in ((2, 3) if integer else (2,)):
        shape = "int:LOW:HIGH[:STEP]" if integer else f"{kind}:LOW:HIGH"
        raise SweepError(f"{spec}: expected {shape}")
    low = _number(parts[0].strip(), spec, integer)
    high = _number(parts[1].strip(), spec, integer)
    step = _number(parts[2].strip(), spec, True) if len(parts) == 3 else None
    if low > high:
        raise SweepError(f"{spec}: LOW ({_word(low)}) is above HIGH ({_word(high)})")
    if kind == "loguniform" and low <= 0:
        raise SweepError(f"{spec}: loguniform needs LOW > 0 (got {_word(low)})")
    if step is not None and step < 1:
        raise SweepError(f"{spec}: STEP must be at least 1 (got {step})")
    return ParamSpec(key, kind, low=low, high=high, step=step)


# -- the project's settings -------------------------------------------------------------


def _training_sections() -> dict[str, tuple[Param, ...]]:
    from nodenet.engine.schedules import REDUCE_LR_PARAMS
    from nodenet.engine.settings import EARLY_STOPPING_PARAMS

    return {"early_stopping": EARLY_STOPPING_PARAMS, "reduce_lr_on_plateau": REDUCE_LR_PARAMS}


def descriptor(project: Any, key: str) -> Param:
    """The descriptor of the setting ``key`` names in ``project``; a :class:`SweepError`
    naming the key when there is none."""
    from nodenet.engine.catalog import block_class
    from nodenet.engine.optimizers import OPTIMIZER_PARAMS
    from nodenet.engine.settings import TRAINING_PARAMS

    parts = key.split(".")
    if parts[0] == "nodes" and len(parts) == 3:
        node_id, name = parts[1], parts[2]
        if not project.has_node(node_id):
            known = ", ".join(n.id for n in project.nodes if n.type not in ("Input", "Output"))
            raise SweepError(f"{key}: the project has no node {node_id!r} (blocks: {known})")
        node = project.node(node_id)
        specs = block_class(node.type).PARAMS
        where = f"a {node.type} block's parameters"
    elif parts[0] == "training" and len(parts) == 2:
        name, specs, where = parts[1], TRAINING_PARAMS, "the training settings"
    elif parts[0] == "training" and len(parts) == 3 and parts[1] == "optimizer":
        optimizer = project.training.get("optimizer", {}).get("name", "adam")
        name, specs = parts[2], OPTIMIZER_PARAMS.get(optimizer, ())
        where = f"the {optimizer} optimizer's settings"
    elif parts[0] == "training" and len(parts) == 3 and parts[1] in _training_sections():
        section = parts[1]
        if project.training.get(section) is None:
            raise SweepError(f"{key}: the project has no training.{section} section")
        name, specs = parts[2], _training_sections()[section]
        where = f"training.{section}'s settings"
    else:
        raise SweepError(
            f"{key}: not a setting; use nodes.<node id>.<param>, training.<field> or "
            "training.optimizer.<field>"
        )
    found = next((_numeric_form(p) for p in specs if p.name == name), None)
    if found is None:
        names = ", ".join(p.name for p in specs if sweepable(_numeric_form(p)))
        raise SweepError(f"{key}: {name!r} is not one of {where} ({names})")
    return found


def _numeric_form(param: Param) -> Param:
    """A learning rate (a number or a schedule) swept as the number it can be."""
    if param.kind == "learning_rate":
        return Float(param.name, param.default, param.help, min=0.0)
    return param


def sweepable(param: Param) -> bool:
    """Whether a sweep can vary this kind of setting (numbers, switches, choices)."""
    return isinstance(param, Int | Float | Bool | Choice)


def resolve_spec(project: Any, spec: ParamSpec | str) -> ParamSpec:
    """``spec`` checked against ``project``: its setting exists and every value of its range
    is one the setting's descriptor accepts (ints for an integer setting). Errors name the spec."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    param = descriptor(project, spec.key)
    text = spec.text()
    if not sweepable(param):
        raise SweepError(f"{text}: {param.name} ({param.describe()}) cannot be swept")
    if isinstance(param, Int) and spec.kind in ("uniform", "loguniform"):
        raise SweepError(f"{text}: {param.name} is an integer setting; use int:LOW:HIGH")
    if isinstance(param, Bool | Choice) and spec.kind != "categorical":
        options = param.describe()
        raise SweepError(f"{text}: {param.name} is {options}; use categorical:...")
    values = spec.choices if spec.kind == "categorical" else (spec.low, spec.high)
    for value in values:
        try:
            param.coerce(float(value) if isinstance(param, Float) and _numeric(value) else value)
        except ParamError as err:
            raise SweepError(f"{text}: {err}") from None
    return spec


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def resolve_specs(project: Any, specs: list[str] | list[ParamSpec]) -> list[ParamSpec]:
    """Every spec resolved; a key given twice is refused."""
    out = [resolve_spec(project, s) for s in specs]
    if not out:
        raise SweepError("a sweep needs at least one --param KEY=KIND:ARGS")
    keys = [s.key for s in out]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SweepError(f"{twice[0]}: given twice")
    return out


def current_value(project: Any, key: str) -> Any:
    """The value the project has now for ``key`` (the descriptor's default when unset)."""
    param = descriptor(project, key)
    parts = key.split(".")
    if parts[0] == "nodes":
        return project.node(parts[1]).params.get(parts[2], param.default)
    section = project.training
    for part in parts[1:-1]:
        section = section.get(part) or {}
    return section.get(parts[-1], param.default)


def suggested_range(param: Param, current: Any = None) -> str | None:
    """A range for a setting, from its descriptor and current value (``KIND:ARGS``, without
    the key); None for a setting a sweep cannot vary."""
    if isinstance(param, Bool):
        return "categorical:true,false"
    if isinstance(param, Choice):
        return "categorical:" + ",".join(_word(c) for c in param.choices)
    value = current if _numeric(current) else param.default
    if isinstance(param, Int):
        base = value if _numeric(value) and value > 0 else max(param.min or 1, 1)
        low, high = max(1, int(base) // 4), max(2, int(base) * 4)
        low = max(low, param.min) if param.min is not None else low
        high = min(high, param.max) if param.max is not None else high
        return f"int:{low}:{max(low, high)}"
    if isinstance(param, Float):
        lo, hi = param.min, param.max
        if _numeric(value) and value > 0 and (lo is None or lo >= 0):
            low, high = value / 10, value * 10
            if hi is not None:
                high = min(high, hi * (0.999 if param.max_exclusive else 1))
            if lo is not None and low <= lo:
                low = lo if lo > 0 else value / 10
            if high > low:
                kind = "loguniform" if high / low >= 50 else "uniform"
                return f"{kind}:{low:g}:{high:g}"
        if lo is not None and hi is not None:
            top = hi * 0.999 if param.max_exclusive else hi
            bottom = lo + (hi - lo) * 0.001 if param.min_exclusive else lo
            return f"uniform:{bottom:g}:{top:g}"
        base = abs(value) if _numeric(value) and value else 1.0
        return f"uniform:{-base if lo is None else lo:g}:{base * 2:g}"
    return None


def apply_trial(project: Any, params: dict[str, Any]) -> Any:
    """A copy of ``project`` (same path) with each ``key: value`` of ``params`` set, each
    value checked by its setting's descriptor."""
    out = project.copy()
    out.path = project.path
    for key, value in params.items():
        param = descriptor(out, key)
        try:
            value = param.coerce(value)
        except ParamError as err:
            raise SweepError(f"{key}: {err}") from None
        parts = key.split(".")
        if parts[0] == "nodes":
            out.node(parts[1]).params[parts[2]] = value
            continue
        section = out.training
        for part in parts[1:-1]:
            empty = {"name": "adam"} if part == "optimizer" else {}
            section[part] = copy.deepcopy(section.get(part) or empty)
            section = section[part]
        section[parts[-1]] = value
    return out
