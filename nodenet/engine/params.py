"""Parameter descriptors: what a block setting is, its default, range and help.

A descriptor checks and normalizes a value (``coerce``) and describes itself
for the inspector form, the palette tooltip and the generated block reference.
Values are JSON-native: ints, floats, bools, strings, lists, ``None``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nodenet.errors import ParamError, brief

# Every integer setting is bounded even where its descriptor names no maximum: a size, a
# count or a port larger than this is refused before anything is allocated from it.
INT_LIMIT = 2**31 - 1
MAX_RANK = 32  # dimensions of a shape parameter (Keras models use up to ~6)


@dataclass(frozen=True)
class Param:
    """Base descriptor. ``kind`` names the editor the inspector uses."""

    name: str
    default: Any
    help: str = ""
    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        return value

    def fail(self, expected: str, value: Any) -> ParamError:
        return ParamError(f"{self.name} must be {expected} (got {brief(value)})", self.name)

    def describe(self) -> str:
        """A short type description for the block reference."""
        return self.kind


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _in_limit(value: int, limit: int = INT_LIMIT) -> bool:
    return -limit <= value <= limit


def _as_float(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (not a number, a bool, inf, nan, or an
    integer beyond float range such as ``10**400``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Int(Param):
    min: int | None = None
    max: int | None = None
    optional: bool = False
    kind: ClassVar[str] = "int"

    def coerce(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if not _is_int(value):
            return self._raise(value)
        limit = max(INT_LIMIT, abs(self.min or 0), abs(self.max or 0))
        if not _in_limit(value, limit):
            bounded = self.min is not None and self.max is not None
            suffix = "" if bounded else f" (at most {limit:,} in size)"
            raise self.fail(self.expected() + suffix, value)
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            return self._raise(value)
        return value

    def _raise(self, value: Any):
        raise self.fail(self.expected(), value)

    def expected(self) -> str:
        text = "an integer"
        if self.min is not None and self.max is not None:
            text += f" from {self.min} to {self.max}"
        elif self.min is not None:
            text += f" >= {self.min}"
        elif self.max is not None:
            text += f" <= {self.max}"
        return text + (" or null" if self.optional else "")

    def describe(self) -> str:
        return self.expected()


@dataclass(frozen=True)
class Float(Param):
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    optional: bool = False
    kind: ClassVar[str] = "float"

    def coerce(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        number = _as_float(value)
        if number is None:
            raise self.fail(self.expected(), value)
        value = number
        low_bad = self.min is not None and (
            value < self.min or (self.min_exclusive and value == self.min)
        )
        high_bad = self.max is not None and (
            value > self.max or (self.max_exclusive and value == self.max)
        )
        if low_bad or high_bad:
            raise self.fail(self.expected(), value)
        return value

    def expected(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{'>' if self.min_exclusive else '>='} {self.min:g}")
        if self.max is not None:
            parts.append(f"{'<' if self.max_exclusive else '<='} {self.max:g}")
        text = "a finite number" + (" " + " and ".join(parts) if parts else "")
        return text + (" or null" if self.optional else "")

    def describe(self) -> str:
        return self.expected()


@dataclass(frozen=True)
class Bool(Param):
    kind: ClassVar[str] = "bool"

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise self.fail("true or false", value)
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(Param):
    choices: tuple = ()
    kind: ClassVar[str] = "choice"

    def coerce(self, value: Any) -> Any:
        if not any(value is c or (type(value) is type(c) and value == c) for c in self.choices):
            options = ", ".join(json_repr(c) for c in self.choices)
            raise self.fail(f"one of {options}", value)
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(json_repr(c) for c in self.choices)


def _initializer_names() -> tuple:
    from nodenet.engine.initializers import NAMES

    return NAMES


@dataclass(frozen=True)
class Initializer(Choice):
    """A weight initializer: a Keras name (``"glorot_uniform"``) or an object with the
    arguments, ``{"class_name": "VarianceScaling", "config": {"scale": 2.0}}``.

    ``choices`` are the plain names (the inspector's combo box); the value comes back
    normalized by :func:`nodenet.engine.initializers.normalize`.
    """

    choices: tuple = field(default_factory=_initializer_names)
    kind: ClassVar[str] = "initializer"

    def coerce(self, value: Any) -> Any:
        from nodenet.engine.initializers import InitializerError, normalize

        try:
            return normalize(value)
        except InitializerError as err:
            raise ParamError(f"{self.name} {err}", self.name) from None

    def describe(self) -> str:
        return (
            "one of "
            + ", ".join(json_repr(c) for c in self.choices)
            + ', or {"class_name": ..., "config": {its arguments}}'
        )


@dataclass(frozen=True)
class IntTuple(Param):
    """A fixed-length tuple of ints (``kernel_size``, ``strides``); one int is repeated."""

    length: int = 2
    min: int | None = 1
    optional: bool = False
    kind: ClassVar[str] = "ints"

    def coerce(self, value: Any) -> Any:
        if value is None and self.optional:
            return None
        if _is_int(value):
            value = [value] * self.length
        if (
            not isinstance(value, list | tuple)
            or len(value) != self.length
            or not all(_is_int(v) and _in_limit(v) for v in value)
            or (self.min is not None and any(v < self.min for v in value))
        ):
            raise self.fail(self.describe(), value)
        return list(value)

    def describe(self) -> str:
        bound = f" >= {self.min}" if self.min is not None else ""
        text = f"an integer{bound} or a list of {self.length} such integers"
        return text + (" or null" if self.optional else "")


@dataclass(frozen=True)
class ShapeParam(Param):
    """A tensor shape without the batch dimension: a list of positive ints.

    ``allow_none`` admits ``null`` for a variable dimension (a sequence length);
    ``allow_minus_one`` admits one ``-1`` to be inferred (``Reshape``).
    """

    allow_none: bool = False
    allow_minus_one: bool = False
    min_rank: int = 1
    kind: ClassVar[str] = "shape"

    def coerce(self, value: Any) -> Any:
        if _is_int(value):
            value = [value]
        if not isinstance(value, list | tuple) or len(value) < self.min_rank:
            raise self.fail(self.describe(), value)
        if len(value) > MAX_RANK:
            raise self.fail(f"{self.describe()}, at most {MAX_RANK} of them", value)
        out = []
        for dim in value:
            ok = (_is_int(dim) and 1 <= dim <= INT_LIMIT) or (dim is None and self.allow_none)
            ok = ok or (self.allow_minus_one and dim == -1 and not isinstance(dim, bool))
            if not ok:
                raise self.fail(self.describe(), value)
            out.append(dim)
        if out.count(-1) > 1:
            raise self.fail(self.describe() + " with at most one -1", value)
        return out

    def describe(self) -> str:
        text = f"a list of at least {self.min_rank} positive integers"
        if self.allow_none:
            text += " (null for a variable length)"
        if self.allow_minus_one:
            text += " (one -1 is inferred)"
        return text


@dataclass(frozen=True)
class NoiseShape(Param):
    """``null`` or a dropout mask's shape, batch included (Keras's ``noise_shape``):
    positive ints, ``null`` entries taking the input's size (``[null, 1, 1, null]``)."""

    optional: ClassVar[bool] = True
    allow_none: ClassVar[bool] = True
    kind: ClassVar[str] = "shape"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        ok = isinstance(value, list | tuple) and 1 <= len(value) <= MAX_RANK + 1
        if not ok or not all(d is None or (_is_int(d) and 1 <= d <= INT_LIMIT) for d in value):
            raise self.fail(self.describe(), value)
        return list(value)

    def describe(self) -> str:
        return "null or a list of positive integers or nulls, batch first"


@dataclass(frozen=True)
class FloatOrList(Param):
    """A finite number, or a non-empty list of them (one per channel, broadcast along the
    last axis as numpy and Keras broadcast: Rescaling's ``scale``)."""

    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        number = _as_float(value)
        if number is not None:
            return number
        if isinstance(value, list | tuple) and 0 < len(value) <= INT_LIMIT:
            numbers = [_as_float(v) for v in value]
            if None not in numbers:
                return numbers
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "a finite number or a non-empty list of them"


@dataclass(frozen=True)
class Regularizer(Param):
    """``null`` or ``{"l1": a, "l2": b}``: a penalty added to the loss."""

    kind: ClassVar[str] = "regularizer"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        expected = 'null or {"l1": x, "l2": y} with non-negative numbers'
        if not isinstance(value, dict) or not set(value) <= {"l1", "l2"}:
            raise self.fail(expected, value)
        out = {}
        for key in ("l1", "l2"):
            v = _as_float(value.get(key, 0.0))
            if v is None or not v >= 0:
                raise self.fail(expected, value)
            out[key] = v
        return out

    def describe(self) -> str:
        return 'null or {"l1": x, "l2": y}'


@dataclass(frozen=True)
class StrList(Param):
    """A list of names taken from ``choices`` (e.g. an Output's metrics)."""

    choices: tuple = ()
    kind: ClassVar[str] = "strs"
    default: Any = field(default_factory=list)

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, list | tuple) or not all(v in self.choices for v in value):
            raise self.fail(self.describe(), value)
        if len(set(value)) != len(value):
            raise self.fail(self.describe() + " without repeats", value)
        return list(value)

    def describe(self) -> str:
        return "a list of names from " + ", ".join(self.choices)


@dataclass(frozen=True)
class NumberList(Param):
    """A non-empty list of numbers (``integer`` for ints), optionally strictly increasing."""

    integer: bool = False
    increasing: bool = False
    min: float | None = None
    kind: ClassVar[str] = "numbers"

    def coerce(self, value: Any) -> Any:
        ok = isinstance(value, list | tuple) and len(value) > 0
        for v in value if ok else ():
            number = _as_float(v)
            ok = ok and number is not None and (not self.integer or number.is_integer())
            ok = ok and (not self.integer or _in_limit(int(number or 0)))
            ok = ok and (self.min is None or v >= self.min)
        if ok and self.increasing:
            ok = all(a < b for a, b in itertools.pairwise(value))
        if not ok:
            raise self.fail(self.describe(), value)
        return [int(v) if self.integer else float(v) for v in value]

    def describe(self) -> str:
        what = "integers" if self.integer else "numbers"
        bound = f" >= {self.min:g}" if self.min is not None else ""
        order = ", strictly increasing" if self.increasing else ""
        return f"a non-empty list of {what}{bound}{order}"


@dataclass(frozen=True)
class Text(Param):
    """A non-empty string (a logged quantity such as ``val_loss``)."""

    kind: ClassVar[str] = "text"

    def coerce(self, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise self.fail(self.describe(), value)
        return value

    def describe(self) -> str:
        return "a non-empty string"


@dataclass(frozen=True)
class NestedBlock(Param):
    """A block held inside a wrapper: ``{"type": T, "params": {...}}``.

    ``T`` is the ``TYPE`` of one of ``blocks`` (the classes the wrapper accepts)
    and ``params`` is checked against that class's ``PARAMS``; the value comes
    back normalized, with only the parameters not at their default (so two values
    meaning the same block are equal). Parameters in ``owned``
    are the wrapper's to set (Bidirectional runs the backward copy itself, so its
    layer's ``go_backwards``): given at anything but their default, they are refused.
    """

    blocks: tuple = ()  # the eligible block classes
    owned: tuple[str, ...] = ()
    kind: ClassVar[str] = "block"

    def coerce(self, value: Any) -> Any:
        expected = self.describe()
        if not isinstance(value, dict) or "type" not in value:
            raise self.fail(expected, value)
        if not set(value) <= {"type", "params"}:
            raise self.fail(expected + " with no other keys", value)
        cls = next((b for b in self.blocks if b.TYPE == value["type"]), None)
        if cls is None:
            names = ", ".join(b.TYPE for b in self.blocks)
            raise self.fail(f"a block of type {names}", value["type"])
        given = value.get("params", {})
        errors = check_params(cls.PARAMS, given, cls.TYPE)
        if errors:
            raise ParamError(f"{self.name}: {errors[0]}", self.name)
        specs = {p.name: p for p in cls.PARAMS}
        params = {k: specs[k].coerce(v) for k, v in given.items()}
        for name in self.owned:
            if name in params and params[name] != specs[name].default:
                raise ParamError(
                    f"{self.name}: {name} is set by the wrapper (got {brief(params[name])})",
                    self.name,
                )
        return {
            "type": cls.TYPE,
            "params": {k: v for k, v in params.items() if v != specs[k].default},
        }

    def describe(self) -> str:
        names = ", ".join(f'"{b.TYPE}"' for b in self.blocks)
        return f'{{"type": one of {names}, "params": {{its parameters}}}}'


def json_repr(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def resolve_params(specs: tuple[Param, ...], given: dict[str, Any], owner: str) -> dict:
    """Check ``given`` against ``specs``; return every parameter, defaults filled in.

    Raises the first :class:`ParamError`; :func:`check_params` collects all of them.
    """
    errors = check_params(specs, given, owner)
    if errors:
        raise errors[0]
    return {p.name: p.coerce(given[p.name]) if p.name in given else p.default for p in specs}


def check_params(specs: tuple[Param, ...], given: Any, owner: str) -> list[ParamError]:
    """Every problem with ``given`` against ``specs``, each a :class:`ParamError`."""
    if not isinstance(given, dict):
        return [ParamError(f"params of a {owner} block must be an object (got {brief(given)})")]
    known = {p.name: p for p in specs}
    errors = []
    for name in given:
        if name not in known:
            names = ", ".join(known) or "none"
            errors.append(
                ParamError(f"{owner} has no parameter {brief(name)} (it has: {names})", name)
            )
    for name, spec in known.items():
        if name in given:
            try:
                spec.coerce(given[name])
            except ParamError as err:
                errors.append(err)
    return errors
