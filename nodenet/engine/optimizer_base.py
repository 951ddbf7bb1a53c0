"""The optimizers' common machinery: the registry, parameter helpers and the
:class:`Optimizer` base (clipping, weight decay, learning rate and its schedule,
iteration count, slot arrays, and the flat update over all weights piece by piece).

The update rules themselves (SGD, Adam, ...) are in :mod:`nodenet.engine.optimizers`,
which documents how a step runs.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.flat_params import FlatParams
from nodenet.engine.layers.windows import over_parts
from nodenet.engine.params import Float, Param
from nodenet.engine.registry import Registry
from nodenet.engine.schedules import LearningRate, Schedule, make_schedule
from nodenet.errors import ParamError

OPTIMIZERS: Registry = Registry("optimizer")

CLIP_NAMES = ("clipnorm", "clipvalue", "global_clipnorm")
FLAT_PIECE = 65536  # weights per piece of a flat update: its arrays stay in the L2 cache


def lr_param(default: float) -> Param:
    """``learning_rate``: a number, or a schedule of it."""
    return LearningRate("learning_rate", default, "step size, or a schedule of it")


def beta_param(name: str, default: float, help_: str) -> Param:
    """A decay rate in [0, 1)."""
    return Float(name, default, help_, min=0.0, max=1.0, max_exclusive=True)


def positive_param(name: str, default: float | None, help_: str) -> Param:
    """A number > 0; ``null`` allowed (and meaning "off") when the default is ``None``."""
    optional = default is None
    return Float(name, default, help_, min=0.0, min_exclusive=True, optional=optional)


def epsilon_param() -> Param:
    """``epsilon``, Keras's 1e-7 by default."""
    return positive_param("epsilon", 1e-7, "small constant for numerical stability")


def common_params(weight_decay: float | None = None) -> tuple[Param, ...]:
    """The arguments every Keras optimizer takes: weight decay and gradient clipping."""
    decay_help = "decoupled weight decay: w *= 1 - weight_decay * lr"
    return (
        Float("weight_decay", weight_decay, decay_help, min=0.0, optional=weight_decay is None),
        positive_param("clipnorm", None, "clip each gradient array to this L2 norm"),
        positive_param("clipvalue", None, "clip each gradient element to [-v, v]"),
        positive_param("global_clipnorm", None, "clip all gradients together to this L2 norm"),
    )


class Optimizer:
    """Base: clipping, weight decay, learning rate, iteration count and slot buffers.

    Subclasses declare ``PARAMS`` and implement :meth:`slot_specs` and
    :meth:`_update` (one array, in place); :meth:`_begin_step` computes the
    per-step scalars once.
    """

    NAME: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, config: dict[str, Any]):
        self.config = dict(config)
        for key, value in config.items():
            if key != "learning_rate":
                setattr(self, key, value)
        lr = config["learning_rate"]
        self._schedule: Schedule | None = make_schedule(lr) if isinstance(lr, dict) else None
        self._lr = np.float32(0.0 if self._schedule else lr)
        self.iterations = 0
        self.slots: dict[str, dict[str, np.ndarray]] = {}
        self._pool: dict[tuple, list[np.ndarray]] = {}
        self._flat_state: tuple[tuple, list] | None = None

    # -- learning rate ----------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The rate the next step uses (a schedule is evaluated at ``iterations``)."""
        if self._schedule is not None:
            return float(np.float32(self._schedule(self.iterations)))
        return float(self._lr)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise ParamError(
                "learning_rate follows a schedule, so it cannot be set during training",
                "learning_rate",
            )
        self._lr = np.float32(value)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.NAME, **self.config}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # -- the step -------------------------------------------------------------------

    def apply(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update ``params[k]`` in place from ``grads[k]`` for every key of ``grads``."""
        keys = [k for k in grads if grads[k] is not None]
        if keys:
            lr = self.learning_rate
            scale = self._global_scale([grads[k] for k in keys])
            dtype = np.dtype(params[keys[0]].dtype)
            scalars = self._begin_step(dtype.type, dtype.type(lr))
            for key in keys:
                self._apply_one(key, params[key], grads[key], lr, scale, scalars)
        self.iterations += 1

    def apply_flat(self, flat: FlatParams, grads: dict[str, np.ndarray]) -> None:
        """:meth:`apply` to weights held in one array (:class:`FlatParams`): one update
        for all of them, element for element the same as one per array.

        Falls back to :meth:`apply` when some weight has no gradient or ``clipnorm``
        (a norm per array) is set.
        """
        if self.clipnorm or not flat.keys or not flat.gather(grads):
            self.apply(flat.params, grads)
            return
        lr = self.learning_rate
        scale = None
        if self.global_clipnorm:
            scale = self._global_scale([flat.grad_views[k] for k in flat.keys])
        w, g = flat.weights, flat.grads
        dt = w.dtype.type
        scalars = self._begin_step(dt, dt(lr))
        # the update is element-wise: run it a cache-sized piece at a time (measured 1.1x
        # faster at 120k weights, 1.5x at 400k, than whole arrays that fit in no cache),
        # the pieces on several cores from over_parts's threshold in weights on (at 118k
        # weights, two pieces, the threads cost more than they saved; at 400k they gain
        # 15-25%); the numbers do not depend on how the pieces are shared
        chunks = self._flat_slots(flat)

        def piece(i: int, part: slice) -> None:
            self._step(w[part], g[part], chunks[i][1], lr, scale, scalars)

        over_parts(piece, [part for part, _ in chunks], w.size)
        self.iterations += 1

    def _flat_slots(self, flat: FlatParams) -> list[tuple[slice, dict[str, np.ndarray]]]:
        """The slot arrays of ``flat``'s layout, cut into the pieces an update runs on.

        ``slots[key]`` are views into them (the values of earlier per-array steps are
        carried over)."""
        cached = self._flat_state
        if cached is not None and cached[0] is flat.layout:
            return cached[1]
        slots = {name: np.full_like(flat.weights, i) for name, i in self.slot_specs().items()}
        for name, array in slots.items():
            for key, view in flat.views(array).items():
                old = self.slots.get(key, {}).get(name)
                if old is not None and old.shape == view.shape:
                    view[...] = old
                self.slots.setdefault(key, {})[name] = view
        pieces = [slice(a, a + FLAT_PIECE) for a in range(0, flat.weights.size, FLAT_PIECE)]
        chunks = [(p, {name: array[p] for name, array in slots.items()}) for p in pieces]
        self._flat_state = (flat.layout, chunks)
        return chunks

    def _apply_one(self, key, w, g, lr, scale, scalars) -> None:
        slots = self.slots.get(key)
        if slots is None:
            slots = {name: np.full_like(w, init) for name, init in self.slot_specs().items()}
            self.slots[key] = slots
        self._step(w, g, slots, lr, scale, scalars)

    def _step(self, w, g, slots, lr, scale, scalars) -> None:
        """Clip, decay and update one array ``w`` (or all weights as one flat array)."""
        dt = w.dtype.type
        buffers = self._scratch(w)
        g = self._clip(np.asarray(g, dtype=w.dtype), scale, buffers[0])
        if self.weight_decay is not None:
            w *= dt(1) - dt(self.weight_decay) * dt(lr)
        self._update(w, g, slots, dt(lr), scalars, buffers[1], buffers[2])

    def _scratch(self, w: np.ndarray) -> list[np.ndarray]:
        """Three temporaries shaped like ``w``, shared by every array of that shape that
        the calling thread updates (pieces of a flat update run on several threads)."""
        pool_key = (w.shape, w.dtype.str, threading.get_ident())
        buffers = self._pool.get(pool_key)
        if buffers is None:
            buffers = [np.empty_like(w) for _ in range(3)]
            self._pool[pool_key] = buffers
        return buffers

    def _global_scale(self, grads: list[np.ndarray]):
        """``c * min(1/|G|, 1/c)`` over all gradients when ``global_clipnorm`` is set."""
        if self.clipnorm or not self.global_clipnorm:
            return None
        dt = np.dtype(grads[0].dtype).type
        total = sum(np.vdot(g, g) for g in grads)
        norm = np.sqrt(dt(total))
        c = dt(self.global_clipnorm)
        with np.errstate(divide="ignore", invalid="ignore"):
            return c * np.minimum(dt(1) / norm, dt(1) / c) + (norm - norm)

    def _clip(self, g: np.ndarray, scale, out: np.ndarray) -> np.ndarray:
        """The clipped gradient (written to ``out``), or ``g`` itself when not clipping."""
        dt = g.dtype.type
        if self.clipnorm:
            norm = np.sqrt(np.vdot(g, g))
            np.multiply(g, dt(self.clipnorm), out=out)
            out /= np.maximum(norm, dt(self.clipnorm))
            return out
        if scale is not None:
            return np.multiply(g, dt(scale), out=out)
        if self.clipvalue:
            return np.clip(g, -dt(self.clipvalue), dt(self.clipvalue), out=out)
        return g

    # -- subclass hooks ------------------------------------------------------------

    def slot_specs(self) -> dict[str, float]:
        """The slot arrays each parameter gets, with their initial value."""
        return {}

    def _begin_step(self, dt: type, lr) -> Any:
        """Scalars shared by every array this step (``dt``: the parameters' dtype)."""
        return None

    def _update(self, w, g, slots, lr, scalars, t1, t2) -> None:
        """Update ``w`` in place; ``t1``, ``t2`` are free temporaries shaped like ``w``."""
        raise NotImplementedError


def register(cls):
    """Class decorator: ``cls`` becomes the optimizer named ``cls.NAME``."""
    OPTIMIZERS.register(cls.NAME)(cls)
    return cls


def ema(slot: np.ndarray, rate: float, x: np.ndarray, tmp: np.ndarray) -> None:
    """``slot = slot * rate + x * (1 - rate)`` in place."""
    dt = slot.dtype.type
    slot *= dt(rate)
    np.multiply(x, dt(1 - rate), out=tmp)
    slot += tmp
