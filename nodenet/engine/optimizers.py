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

This module holds the update rules; what every optimizer shares (clipping, decay,
schedules, slots, the flat update) is :mod:`nodenet.engine.optimizer_base`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodenet.engine import kernels
from nodenet.engine.optimizer_base import (
    CLIP_NAMES,
    OPTIMIZERS,
    Optimizer,
    beta_param,
    common_params,
    ema,
    epsilon_param,
    lr_param,
    register,
)
from nodenet.engine.params import Bool, Float, Param, json_repr
from nodenet.engine.schedules import check_fields
from nodenet.errors import ParamError


@register
class SGD(Optimizer):
    """``m = momentum * m - lr * g``; ``w += m``, or with Nesterov
    ``w += momentum * m - lr * g``; plain ``w -= lr * g`` when ``momentum == 0``."""

    NAME = "sgd"
    PARAMS = (
        lr_param(0.01),
        Float("momentum", 0.0, "fraction of the previous step kept", min=0.0, max=1.0),
        Bool("nesterov", False, "use Nesterov momentum"),
        *common_params(),
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


@register
class RMSprop(Optimizer):
    """``v = rho v + (1 - rho) g^2``; centered: ``a = rho a + (1 - rho) g`` and
    ``d = v - a^2``; ``step = lr g / sqrt(d + epsilon)`` (``d = v`` if not centered);
    with momentum ``m = momentum * m + step``, ``w -= m``; else ``w -= step``."""

    NAME = "rmsprop"
    PARAMS = (
        lr_param(0.001),
        beta_param("rho", 0.9, "decay of the squared-gradient average"),
        Float("momentum", 0.0, "fraction of the previous step kept", min=0.0, max=1.0),
        epsilon_param(),
        Bool("centered", False, "divide by the gradient variance, not its second moment"),
        *common_params(),
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
        ema(v, self.rho, t2, t2)
        np.add(v, dt(self.epsilon), out=t1)
        if self.centered:
            a = slots["average_gradient"]
            ema(a, self.rho, g, t2)
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
        kern = None if self.amsgrad else kernels.get()
        if kern is not None and all(a.flags.c_contiguous for a in (w, g, m, v)):
            dt = w.dtype.type  # one pass, the same operations as below
            rates = (dt(self.beta_1), dt(1 - self.beta_1), dt(self.beta_2), dt(1 - self.beta_2))
            flat = (a.reshape(-1) for a in (w, g, m, v))
            kern.adam(*flat, *rates, dt(self.epsilon), alpha)
            return
        ema(m, self.beta_1, g, t1)
        np.multiply(g, g, out=t2)
        ema(v, self.beta_2, t2, t2)
        if self.amsgrad:
            np.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
            v = slots["velocity_hat"]
        np.sqrt(v, out=t1)
        t1 += w.dtype.type(self.epsilon)
        np.multiply(m, alpha, out=t2)
        t2 /= t1
        w -= t2


_ADAM_PARAMS = (
    beta_param("beta_1", 0.9, "decay of the gradient average"),
    beta_param("beta_2", 0.999, "decay of the squared-gradient average"),
    epsilon_param(),
    Bool("amsgrad", False, "use the maximum of past squared-gradient averages"),
)


@register
class Adam(_AdamBase):
    __doc__ = "Adam. " + _AdamBase.__doc__
    NAME = "adam"
    PARAMS = (lr_param(0.001), *_ADAM_PARAMS, *common_params())


@register
class AdamW(_AdamBase):
    __doc__ = "Adam with decoupled weight decay (``w *= 1 - weight_decay * lr`` first). " + (
        _AdamBase.__doc__
    )
    NAME = "adamw"
    PARAMS = (lr_param(0.001), *_ADAM_PARAMS, *common_params(weight_decay=0.004))


@register
class Adamax(Optimizer):
    """``m = beta_1 m + (1 - beta_1) g``; ``u = max(beta_2 u, |g|)``;
    ``w -= lr m / ((u + epsilon) (1 - beta_1^t))``, ``t = iterations + 1``."""

    NAME = "adamax"
    PARAMS = (
        lr_param(0.001),
        beta_param("beta_1", 0.9, "decay of the gradient average"),
        beta_param("beta_2", 0.999, "decay of the infinity norm"),
        epsilon_param(),
        *common_params(),
    )

    def slot_specs(self):
        return {"momentum": 0.0, "norm": 0.0}

    def _begin_step(self, dt, lr):
        return dt(1) - dt(self.beta_1) ** dt(self.iterations + 1)

    def _update(self, w, g, slots, lr, correction, t1, t2):
        dt = w.dtype.type
        m, u = slots["momentum"], slots["norm"]
        ema(m, self.beta_1, g, t1)
        u *= dt(self.beta_2)
        np.maximum(u, np.abs(g, out=t1), out=u)
        np.multiply(m, lr, out=t1)
        np.add(u, dt(self.epsilon), out=t2)
        t2 *= correction
        t1 /= t2
        w -= t1


@register
class Nadam(Optimizer):
    """Adam with Nesterov momentum and Keras's momentum schedule.

    ``u_t = beta_1 (1 - 0.5 * 0.96^t)``, ``P_t = prod(u_1..u_t)``; with
    ``m``, ``v`` as in Adam: ``m_hat = u_{t+1} m / (1 - P_t u_{t+1}) +
    (1 - u_t) g / (1 - P_t)``, ``v_hat = v / (1 - beta_2^t)``,
    ``w -= lr m_hat / (sqrt(v_hat) + epsilon)``.
    """

    NAME = "nadam"
    PARAMS = (
        lr_param(0.001),
        beta_param("beta_1", 0.9, "decay of the gradient average"),
        beta_param("beta_2", 0.999, "decay of the squared-gradient average"),
        epsilon_param(),
        *common_params(),
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
        ema(m, self.beta_1, g, t1)
        np.multiply(g, g, out=t2)
        ema(v, self.beta_2, t2, t2)
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


@register
class Adagrad(Optimizer):
    """``a += g^2`` (``a`` starts at ``initial_accumulator_value``);
    ``w -= lr g / sqrt(a + epsilon)``."""

    NAME = "adagrad"
    PARAMS = (
        lr_param(0.001),
        Float("initial_accumulator_value", 0.1, "starting value of the accumulators", min=0.0),
        epsilon_param(),
        *common_params(),
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


@register
class Adadelta(Optimizer):
    """``A = rho A + (1 - rho) g^2``; ``d = -sqrt(D + epsilon) g / sqrt(A + epsilon)``;
    ``D = rho D + (1 - rho) d^2``; ``w += lr d``."""

    NAME = "adadelta"
    PARAMS = (
        lr_param(0.001),
        beta_param("rho", 0.95, "decay of the running averages"),
        epsilon_param(),
        *common_params(),
    )

    def slot_specs(self):
        return {"accumulated_grad": 0.0, "accumulated_delta_var": 0.0}

    def _update(self, w, g, slots, lr, scalars, t1, t2):
        dt = w.dtype.type
        acc_g, acc_d = slots["accumulated_grad"], slots["accumulated_delta_var"]
        eps = dt(self.epsilon)
        np.multiply(g, g, out=t1)
        ema(acc_g, self.rho, t1, t1)
        np.add(acc_d, eps, out=t1)
        np.sqrt(t1, out=t1)
        t1 *= g
        np.add(acc_g, eps, out=t2)
        np.sqrt(t2, out=t2)
        t1 /= t2
        np.negative(t1, out=t1)  # delta
        np.multiply(t1, t1, out=t2)
        ema(acc_d, self.rho, t2, t2)
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
    clips = [k for k in CLIP_NAMES if values.get(k) is not None]
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
