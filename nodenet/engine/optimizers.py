"""Optimizers with Keras 3 defaults and update equations (as its torch backend runs them).

``opt = make_optimizer({"name": "adam", "learning_rate": 0.001})`` then, per
batch, ``opt.apply(params, grads)`` updates the arrays of ``params`` in place
from the same-keyed ``grads`` (a parameter without a gradient is left alone).
Each step, like ``keras.optimizers.Optimizer.apply``:

1. gradients are clipped: ``clipnorm`` per array (``g * c / max(|g|, c)``),
   ``global_clipnorm`` over all arrays (``g * c * min(1/|G|, 1/c)``), or
   ``clipvalue`` elementwise (at most one of the three may be set);
2. ``weight_decay`` (AdamW, or any optimizer given one) shrinks each array:
   ``w *= 1 - weight_decay * lr``;
3. the optimizer's own update runs with ``lr`` = the learning rate, or the
   schedule evaluated at ``iterations`` (0 on the first step);
4. ``iterations`` grows by one.

Slot arrays (``momentum``, ``velocity``, ...) are allocated on the first step
for each parameter, in its dtype; temporaries come from a pool shared by
arrays of the same shape, so a step allocates nothing proportional to the model.
The learning rate is held in float32, like Keras's ``learning_rate`` variable.

Training calls ``opt.apply_flat(flat, grads)`` instead: the model's weights are views
into one array (:class:`~nodenet.engine.flat_params.FlatParams`), so the same element-wise
update runs once over all of them (piece by piece, to stay in cache) rather than once
per array; the numbers are the same, element for element.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import numpy as np

from nodenet.engine.flat_params import FlatParams
from nodenet.engine.layers.windows import over_parts
from nodenet.engine.params import Bool, Float, Param, json_repr
from nodenet.engine.registry import Registry
from nodenet.engine.schedules import LearningRate, Schedule, check_fields, make_schedule
from nodenet.errors import ParamError

OPTIMIZERS: Registry = Registry("optimizer")

_CLIP_NAMES = ("clipnorm", "clipvalue", "global_clipnorm")
FLAT_PIECE = 65536  # weights per piece of a flat update: its arrays stay in the L2 cache


def _lr(default: float) -> Param:
    return LearningRate("learning_rate", default, "step size, or a schedule of it")


def _beta(name: str, default: float, help_: str) -> Param:
    return Float(name, default, help_, min=0.0, max=1.0, max_exclusive=True)


def _positive(name: str, default: float | None, help_: str) -> Param:
    """A number > 0; ``null`` allowed (and meaning "off") when the default is ``None``."""
    optional = default is None
    return Float(name, default, help_, min=0.0, min_exclusive=True, optional=optional)


def _epsilon() -> Param:
    return _positive("epsilon", 1e-7, "small constant for numerical stability")


def _common(weight_decay: float | None = None) -> tuple[Param, ...]:
    """The arguments every Keras optimizer takes: weight decay and gradient clipping."""
    decay_help = "decoupled weight decay: w *= 1 - weight_decay * lr"
    return (
        Float("weight_decay", weight_decay, decay_help, min=0.0, optional=weight_decay is None),
        _positive("clipnorm", None, "clip each gradient array to this L2 norm"),
        _positive("clipvalue", None, "clip each gradient element to [-v, v]"),
        _positive("global_clipnorm", None, "clip all gradients together to this L2 norm"),
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


def _register(cls):
    OPTIMIZERS.register(cls.NAME)(cls)
    return cls


def _ema(slot: np.ndarray, rate: float, x: np.ndarray, tmp: np.ndarray) -> None:
    """``slot = slot * rate + x * (1 - rate)`` in place."""
    dt = slot.dtype.type
    slot *= dt(rate)
    np.multiply(x, dt(1 - rate), out=tmp)
    slot += tmp


@_register
class SGD(Optimizer):
    """``m = momentum * m - lr * g``; ``w += m``, or with Nesterov
    ``w += momentum * m - lr * g``; plain ``w -= lr * g`` when ``momentum == 0``."""

    NAME = "sgd"
    PARAMS = (
        _lr(0.01),
        Float("momentum", 0.0, "fraction of the previous step kept", min=0.0, max=1.0),
        Bool("nesterov", False, "use Nesterov momentum"),
        *_common(),
    )

    def slot_specs(self):
        return {"momentum": 0.0} if self.momentum != 0 else {}

    def _update(self, w, g, slots, lr, scalars, t1, t2):
        np.multiply(g, lr, out=t1)
        if self.momentum == 0:
            w -= t1
            return
        m = slots["momentum"]
        m *= w.dtype.type(self.momentum)
        m -= t1
        if self.nesterov:
            w -= t1
            np.multiply(m, w.dtype.type(self.momentum), out=t2)
            w += t2
        else:
            w += m


@_register
class RMSprop(Optimizer):
    """``v = rho v + (1 - rho) g^2``; centered: ``a = rho a + (1 - rho) g`` and
    ``d = v - a^2``; ``step = lr g / sqrt(d + epsilon)`` (``d = v`` if not centered);
    with momentum ``m = momentum * m + step``, ``w -= m``; else ``w -= step``."""

    NAME = "rmsprop"
    PARAMS = (
        _lr(0.001),
        _beta("rho", 0.9, "decay of the squared-gradient average"),
        Float("momentum", 0.0, "fraction of the previous step kept", min=0.0, max=1.0),
        _epsilon(),
        Bool("centered", False, "divide by the gradient variance, not its second moment"),
        *_common(),
    )

    def slot_specs(self):
        slots = {"velocity": 0.0}
        if self.momentum > 0:
            slots["momentum"] = 0.0
        if self.centered:
            slots["average_gradient"] = 0.0
        return slots

    def _update(self, w, g, slots, lr, scalars, t1, t2):
        dt = w.dtype.type
        v = slots["velocity"]
        np.multiply(g, g, out=t2)
        _ema(v, self.rho, t2, t2)
        np.add(v, dt(self.epsilon), out=t1)
        if self.centered:
            a = slots["average_gradient"]
            _ema(a, self.rho, g, t2)
            np.multiply(a, a, out=t2)
            t1 -= t2
        np.sqrt(t1, out=t1)
        np.multiply(g, lr, out=t2)
        np.divide(t2, t1, out=t1)
        if self.momentum > 0:
            m = slots["momentum"]
            m *= dt(self.momentum)
            m += t1
            w -= m
        else:
            w -= t1


class _AdamBase(Optimizer):
    """Shared by Adam and AdamW: bias-corrected first and second moments.

    ``m = beta_1 m + (1 - beta_1) g``; ``v = beta_2 v + (1 - beta_2) g^2``;
    amsgrad: ``v_hat = max(v_hat, v)`` replaces ``v``;
    ``w -= alpha m / (sqrt(v) + epsilon)``, ``alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)``,
    ``t = iterations + 1``.
    """

    def slot_specs(self):
        slots = {"momentum": 0.0, "velocity": 0.0}
        if self.amsgrad:
            slots["velocity_hat"] = 0.0
        return slots

    def _begin_step(self, dt, lr):
        t = dt(self.iterations + 1)
        b1_power = dt(self.beta_1) ** t
        b2_power = dt(self.beta_2) ** t
        return lr * np.sqrt(dt(1) - b2_power) / (dt(1) - b1_power)

    def _update(self, w, g, slots, lr, alpha, t1, t2):
        m, v = slots["momentum"], slots["velocity"]
        _ema(m, self.beta_1, g, t1)
        np.multiply(g, g, out=t2)
        _ema(v, self.beta_2, t2, t2)
        if self.amsgrad:
            np.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
            v = slots["velocity_hat"]
        np.sqrt(v, out=t1)
        t1 += w.dtype.type(self.epsilon)
        np.multiply(m, alpha, out=t2)
        t2 /= t1
        w -= t2


_ADAM_PARAMS = (
    _beta("beta_1", 0.9, "decay of the gradient average"),
    _beta("beta_2", 0.999, "decay of the squared-gradient average"),
    _epsilon(),
    Bool("amsgrad", False, "use the maximum of past squared-gradient averages"),
)


@_register
class Adam(_AdamBase):
    __doc__ = "Adam. " + _AdamBase.__doc__
    NAME = "adam"
    PARAMS = (_lr(0.001), *_ADAM_PARAMS, *_common())


@_register
class AdamW(_AdamBase):
    __doc__ = "Adam with decoupled weight decay (``w *= 1 - weight_decay * lr`` first). " + (
        _AdamBase.__doc__
    )
    NAME = "adamw"
    PARAMS = (_lr(0.001), *_ADAM_PARAMS, *_common(weight_decay=0.004))


@_register
class Adamax(Optimizer):
    """``m = beta_1 m + (1 - beta_1) g``; ``u = max(beta_2 u, |g|)``;
    ``w -= lr m / ((u + epsilon) (1 - beta_1^t))``, ``t = iterations + 1``."""

    NAME = "adamax"
    PARAMS = (
        _lr(0.001),
        _beta("beta_1", 0.9, "decay of the gradient average"),
        _beta("beta_2", 0.999, "decay of the infinity norm"),
        _epsilon(),
        *_common(),
    )

    def slot_specs(self):
        return {"momentum": 0.0, "norm": 0.0}

    def _begin_step(self, dt, lr):
        return dt(1) - dt(self.beta_1) ** dt(self.iterations + 1)

    def _update(self, w, g, slots, lr, correction, t1, t2):
        dt = w.dtype.type
        m, u = slots["momentum"], slots["norm"]
        _ema(m, self.beta_1, g, t1)
        u *= dt(self.beta_2)
        np.maximum(u, np.abs(g, out=t1), out=u)
        np.multiply(m, lr, out=t1)
        np.add(u, dt(self.epsilon), out=t2)
        t2 *= correction
        t1 /= t2
        w -= t1


@_register
class Nadam(Optimizer):
    """Adam with Nesterov momentum and Keras's momentum schedule.

    ``u_t = beta_1 (1 - 0.5 * 0.96^t)``, ``P_t = prod(u_1..u_t)``; with
    ``m``, ``v`` as in Adam: ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) +
    (1 - u_t) g / (1 - P_t)``, ``v_hat = v / (1 - beta_2^t)``,
    ``w -= lr m_hat / (sqrt(v_hat) + epsilon)``.
    """

    NAME = "nadam"
    PARAMS = (
        _lr(0.001),
        _beta("beta_1", 0.9, "decay of the gradient average"),
        _beta("beta_2", 0.999, "decay of the squared-gradient average"),
        _epsilon(),
        *_common(),
    )

    def __init__(self, config):
        super().__init__(config)
        self.u_product = 1.0

    def slot_specs(self):
        return {"momentum": 0.0, "velocity": 0.0}

    def _begin_step(self, dt, lr):
        t = dt(self.iterations + 1)
        b1, decay = dt(self.beta_1), dt(0.96)
        u_t = b1 * (dt(1) - dt(0.5) * decay**t)
        u_next = b1 * (dt(1) - dt(0.5) * decay ** (t + dt(1)))
        product = dt(self.u_product) * u_t
        self.u_product = product
        return (u_t, u_next, product, product * u_next, dt(self.beta_2) ** t)

    def _update(self, w, g, slots, lr, scalars, t1, t2):
        dt = w.dtype.type
        u_t, u_next, product, product_next, b2_power = (dt(s) for s in scalars)
        m, v = slots["momentum"], slots["velocity"]
        _ema(m, self.beta_1, g, t1)
        np.multiply(g, g, out=t2)
        _ema(v, self.beta_2, t2, t2)
        np.multiply(m, u_next, out=t1)
        t1 /= dt(1) - product_next
        np.multiply(g, dt(1) - u_t, out=t2)
        t2 /= dt(1) - product
        t1 += t2  # m_hat
        t1 *= lr
        np.divide(v, dt(1) - b2_power, out=t2)
        np.sqrt(t2, out=t2)
        t2 += dt(self.epsilon)
        t1 /= t2
        w -= t1


@_register
class Adagrad(Optimizer):
    """``a += g^2`` (``a`` starts at ``initial_accumulator_value``);
    ``w -= lr g / sqrt(a + epsilon)``."""

    NAME = "adagrad"
    PARAMS = (
        _lr(0.001),
        Float("initial_accumulator_value", 0.1, "starting value of the accumulators", min=0.0),
        _epsilon(),
        *_common(),
    )

    def slot_specs(self):
        return {"accumulator": self.initial_accumulator_value}

    def _update(self, w, g, slots, lr, scalars, t1, t2):
        a = slots["accumulator"]
        np.multiply(g, g, out=t1)
        a += t1
        np.multiply(g, lr, out=t1)
        np.add(a, w.dtype.type(self.epsilon), out=t2)
        np.sqrt(t2, out=t2)
        t1 /= t2
        w -= t1


@_register
class Adadelta(Optimizer):
    """``A = rho A + (1 - rho) g^2``; ``d = -sqrt(D + epsilon) g / sqrt(A + epsilon)``;
    ``D = rho D + (1 - rho) d^2``; ``w += lr d``."""

    NAME = "adadelta"
    PARAMS = (
        _lr(0.001),
        _beta("rho", 0.95, "decay of the running averages"),
        _epsilon(),
        *_common(),
    )

    def slot_specs(self):
        return {"accumulated_grad": 0.0, "accumulated_delta_var": 0.0}

    def _update(self, w, g, slots, lr, scalars, t1, t2):
        dt = w.dtype.type
        acc_g, acc_d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        eps = dt(self.epsilon)
        np.multiply(g, g, out=t1)
        _ema(acc_g, self.rho, t1, t1)
        np.add(acc_d, eps, out=t1)
        np.sqrt(t1, out=t1)
        t1 *= g
        np.add(acc_g, eps, out=t2)
        np.sqrt(t2, out=t2)
        t1 /= t2
        np.negative(t1, out=t1)  # delta
        np.multiply(t1, t1, out=t2)
        _ema(acc_d, self.rho, t2, t2)
        t1 *= lr
        w += t1


OPTIMIZER_PARAMS: dict[str, tuple[Param, ...]] = {
    name: cls.PARAMS for name, cls in OPTIMIZERS.items()
}
NAMES: tuple[str, ...] = tuple(OPTIMIZERS.names())


def check_optimizer(
    config: Any, field: str = "training.optimizer"
) -> tuple[dict[str, Any] | None, list[ParamError]]:
    """The full optimizer config (defaults filled, ``name`` first) and every problem."""
    if not isinstance(config, dict):
        text = f'{field} must be an object like {{"name": "adam"}} (got {json_repr(config)})'
        return None, [ParamError(text, field)]
    name = config.get("name")
    if name not in OPTIMIZERS:
        options = ", ".join(json_repr(n) for n in OPTIMIZERS)
        text = f"{field}.name must be one of {options} (got {json_repr(name)})"
        return None, [ParamError(text, f"{field}.name")]
    values, errors = check_fields(OPTIMIZERS.get(name).PARAMS, config, field, ignore=("name",))
    clips = [k for k in _CLIP_NAMES if values.get(k) is not None]
    if len(clips) > 1:
        given = ", ".join(f"{k}={values[k]:g}" for k in clips)
        text = f"{field}: only one of clipnorm, clipvalue and global_clipnorm can be set ({given})"
        errors.append(ParamError(text, f"{field}.{clips[1]}"))
    return {"name": name, **values}, errors


def make_optimizer(config: dict, field: str = "training.optimizer") -> Optimizer:
    """An optimizer from ``{"name": ..., <Keras arguments>}``.

    Raises :class:`ParamError` naming the field, e.g.
    ``training.optimizer.beta_1 must be a finite number >= 0 and < 1 (got 2)``.
    """
    values, errors = check_optimizer(config, field)
    if errors:
        raise errors[0]
    return OPTIMIZERS.get(values.pop("name"))(values)
