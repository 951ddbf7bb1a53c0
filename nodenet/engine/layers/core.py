"""Core blocks: Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector."""

from __future__ import annotations

import math

import numpy as np

from nodenet.engine import activations
from nodenet.engine.layer import (
    Example,
    Layer,
    Shape,
    WeightSpec,
    expect_rank,
    fmt_shape,
    kernel_params,
    known,
    register,
)
from nodenet.engine.params import Bool, Choice, Float, Int, NoiseShape, ShapeParam
from nodenet.errors import ParamError, ShapeError


@register
class Dense(Layer):
    """Densely connected layer: ``activation(x @ kernel + bias)`` on the last axis.

    Input shape: (..., in). Output shape: (..., units). Like Keras, an N-D
    input is transformed along its last axis only.
    """

    TYPE = "Dense"
    CATEGORY = "Core"
    PARAMS = (
        Int("units", 32, "number of output features", min=1),
        Choice("activation", "linear", "applied to the output", choices=activations.NAMES),
        Bool("use_bias", True, "add a learned bias"),
        *kernel_params(),
    )
    KEY_PARAMS = ("units", "activation")
    POST_ACTIVATION = True
    FRESH_OUTPUT = True
    EXAMPLES = (
        Example({"units": 3}, ((4,),)),
        Example({"units": 5, "activation": "tanh"}, ((2, 3),)),
        Example({"units": 4, "activation": "softmax", "use_bias": False}, ((6,),)),
        Example({"units": 3, "activation": "silu"}, ((4,),)),
        Example({"units": 4, "activation": "hard_sigmoid"}, ((2, 3),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, tuple(range(1, 8)), "Dense")
        return (*shape[:-1], self.config["units"])

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], "Dense's last input axis", shape)
        c = self.config
        specs = [
            WeightSpec(
                "kernel",
                (n_in, c["units"]),
                c["kernel_initializer"],
                regularizer=c["kernel_regularizer"],
            )
        ]
        if c["use_bias"]:
            specs.append(
                WeightSpec(
                    "bias", (c["units"],), c["bias_initializer"], regularizer=c["bias_regularizer"]
                )
            )
        return specs

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        z = x @ weights["kernel"]
        if "bias" in weights:
            z += weights["bias"]
        return z, x

    def _backward(self, weights, x, grad):
        kernel = weights["kernel"]
        x2 = x.reshape(-1, kernel.shape[0])
        g2 = grad.reshape(-1, kernel.shape[1])
        out = self.grad_out or {}  # views into the model's gradient buffer while training
        grads = {"kernel": np.matmul(x2.T, g2, out=out.get("kernel"))}
        if "bias" in weights:  # the column sums as a product: 3x faster than g2.sum(axis=0)
            grads["bias"] = np.matmul(_ones(len(g2), g2.dtype), g2, out=out.get("bias"))
        if not getattr(self, "needs_input_grad", True):  # fed by data: nobody reads dx
            return [None], grads
        return [grad @ kernel.T], grads


_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


def _ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of ``n`` ones (kept for the next batch of the same size)."""
    key = (n, np.dtype(dtype))
    ones = _ONES.get(key)
    if ones is None:
        if len(_ONES) > 16:  # batch sizes come and go: keep a few
            _ONES.clear()
        ones = _ONES[key] = np.ones(n, dtype)
        ones.flags.writeable = False
    return ones


@register
class Activation(Layer):
    """Applies an activation function to its input, element by element.

    Input shape: any. Output shape: the input shape. Softmax acts on the last axis.
    """

    TYPE = "Activation"
    CATEGORY = "Core"
    PARAMS = (Choice("activation", "relu", "the function applied", choices=activations.NAMES),)
    KEY_PARAMS = ("activation",)
    POST_ACTIVATION = True
    EXAMPLES = (
        Example({"activation": "relu"}, ((4,),)),
        Example({"activation": "tanh"}, ((2, 3),)),
        Example({"activation": "softmax"}, ((3, 5),)),
        Example({"activation": "gelu"}, ((2, 2, 2),)),
        Example({"activation": "hard_silu"}, ((6,),)),
        Example({"activation": "mish"}, ((2, 3),)),
        Example({"activation": "log_softmax"}, ((3, 4),)),
        Example({"activation": "squareplus"}, ((5,),)),
        Example({"activation": "sparsemax"}, ((2, 5),)),
    )

    def infer_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def _forward(self, weights, inputs, ctx):
        return inputs[0], None

    def _backward(self, weights, cache, grad):
        return [grad], {}


@register
class Dropout(Layer):
    """Sets a random fraction ``rate`` of inputs to 0 while training, scaling the rest.

    Kept values are divided by ``1 - rate`` so the expected sum is unchanged;
    at inference the layer is the identity. Input shape: any; output shape:
    the same. ``noise_shape`` (batch first, ``null`` for the input's size) shares
    one mask entry along its size-1 axes, as Keras does. Masks come from the run's
    seeded generator; ``seed`` is carried to exported code.
    """

    TYPE = "Dropout"
    CATEGORY = "Core"
    PARAMS = (
        Float("rate", 0.5, "fraction of the inputs to drop while training", min=0.0, max=1.0),
        NoiseShape("noise_shape", None, "shape of the dropout mask, batch first (null: input's)"),
        Int("seed", None, "seed of the exported layer's random generator", min=0, optional=True),
    )
    KEY_PARAMS = ("rate",)
    EXAMPLES = (
        Example({"rate": 0.5}, ((6,),)),
        Example({"rate": 0.2, "seed": 7}, ((3, 4),)),
        Example({"rate": 0.0}, ((4,),)),
        Example({"rate": 1.0}, ((2, 3),)),
        Example({"rate": 0.4, "noise_shape": [None, 1, 1, None]}, ((3, 2, 4),)),
        Example({"rate": 0.3, "noise_shape": [None, 1, 1, 1]}, ((2, 3, 2),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        check_noise_shape(self.config["noise_shape"], shape, self.TYPE)
        return tuple(shape)

    def mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The mask's shape for an input of ``shape`` (batch included)."""
        return concrete_noise_shape(self.config["noise_shape"], shape)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        rate = self.config["rate"]
        if not ctx.training or rate == 0.0:
            return x, None
        shape = self.mask_shape(x.shape)
        if rate == 1.0:
            keep = np.zeros(shape, dtype=bool)
            return np.zeros_like(x), keep
        keep = ctx.rng.random(shape, dtype=np.float32) >= np.float32(rate)
        out = x / (1.0 - rate)
        out *= keep
        return out, keep

    def _backward(self, weights, keep, grad):
        if keep is None:
            return [grad], {}
        rate = self.config["rate"]
        if rate == 1.0:
            return [np.zeros_like(grad)], {}
        dx = grad / (1.0 - rate)
        dx *= keep
        return [dx], {}


def concrete_noise_shape(noise_shape: list | None, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A Keras ``noise_shape`` made concrete for an array of ``shape`` (batch included):
    ``None`` entries take the array's size."""
    if noise_shape is None:
        return tuple(shape)
    return tuple(n if d is None else d for d, n in zip(noise_shape, shape, strict=True))


def check_noise_shape(noise_shape: list | None, shape: Shape, what: str) -> None:
    """Raise a ShapeError unless ``noise_shape`` broadcasts to ``shape`` (no batch)."""
    if noise_shape is None:
        return
    full = (None, *shape)
    fits = len(noise_shape) == len(full) and all(
        d is None or d == 1 or d == n for d, n in zip(noise_shape, full, strict=True)
    )
    if not fits:
        dims = ", ".join("None" if d is None else str(d) for d in noise_shape)
        raise ShapeError(
            f"{what} noise_shape ({dims}) does not fit the input {fmt_shape(shape)}: it needs "
            f"{len(full)} sizes, each None, 1 or the input's"
        )


@register
class Flatten(Layer):
    """Flattens every sample to one axis.

    Input shape: (d1, d2, ...). Output shape: (d1·d2·…,), or (None,) when a
    dimension is variable.
    """

    TYPE = "Flatten"
    CATEGORY = "Core"
    EXAMPLES = (
        Example({}, ((2, 3),)),
        Example({}, ((2, 2, 3),)),
        Example({}, ((4,),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        if any(d is None for d in shape):
            return (None,)
        return (math.prod(shape),)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        return x.reshape(x.shape[0], math.prod(x.shape[1:])), x.shape

    def _backward(self, weights, shape, grad):
        return [grad.reshape(shape)], {}


@register
class Reshape(Layer):
    """Reshapes every sample to ``target_shape``; one ``-1`` is inferred.

    Input shape: any with the same number of elements. Output shape:
    ``target_shape`` (a ``-1`` resolved, or None when the input has a
    variable dimension).
    """

    TYPE = "Reshape"
    CATEGORY = "Core"
    PARAMS = (
        ShapeParam(
            "target_shape",
            [-1],
            "shape of each sample after reshaping (one -1 is inferred)",
            allow_minus_one=True,
        ),
    )
    KEY_PARAMS = ("target_shape",)
    EXAMPLES = (
        Example({"target_shape": [3, 2]}, ((6,),)),
        Example({"target_shape": [-1, 2]}, ((2, 3, 2),)),
        Example({"target_shape": [4, -1, 1]}, ((2, 4),)),
        Example({"target_shape": [6]}, ((3, 2),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        target = list(self.config["target_shape"])
        if any(d is None for d in shape):
            return tuple(None if d == -1 else d for d in target)
        size = math.prod(shape)
        known_size = math.prod(d for d in target if d != -1)
        if -1 in target:
            if size % known_size:
                raise ShapeError(
                    f"Reshape cannot fit {fmt_shape(shape)} ({size} values per sample) into "
                    f"target_shape {target}: {size} is not a multiple of {known_size}"
                )
            target[target.index(-1)] = size // known_size
        elif size != known_size:
            raise ShapeError(
                f"Reshape cannot turn {fmt_shape(shape)} ({size} values per sample) into "
                f"target_shape {target} ({known_size} values)"
            )
        return tuple(target)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        target = self.infer_shape([x.shape[1:]])
        return x.reshape(x.shape[0], *target), x.shape

    def _backward(self, weights, shape, grad):
        return [grad.reshape(shape)], {}


@register
class Permute(Layer):
    """Permutes the axes of every sample; ``dims`` counts axes from 1 (the batch is 0).

    Input shape: (d1, ..., dn). Output shape: (d_dims[0], ..., d_dims[n-1]);
    ``dims=[2, 1]`` swaps the two axes of a (steps, features) input.
    """

    TYPE = "Permute"
    CATEGORY = "Core"
    PARAMS = (ShapeParam("dims", [2, 1], "new order of the input axes, numbered from 1"),)
    KEY_PARAMS = ("dims",)
    EXAMPLES = (
        Example({"dims": [2, 1]}, ((3, 4),)),
        Example({"dims": [3, 1, 2]}, ((2, 3, 4),)),
        Example({"dims": [1]}, ((5,),)),
    )

    def check_config(self):
        dims = self.config["dims"]
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ParamError(f"dims must be a permutation of 1 to {len(dims)} (got {dims})", "dims")

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        dims = self.config["dims"]
        if len(shape) != len(dims):
            raise ShapeError(
                f"Permute with dims {dims} expects a {len(dims) + 1}-D input (batch "
                f"included), got {fmt_shape(shape)}"
            )
        return tuple(shape[d - 1] for d in dims)

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        return np.transpose(x, (0, *self.config["dims"])), None

    def _backward(self, weights, cache, grad):
        inverse = np.argsort((0, *self.config["dims"]))
        return [np.transpose(grad, inverse)], {}


@register
class RepeatVector(Layer):
    """Repeats a vector ``n`` times along a new time axis.

    Input shape: (features,). Output shape: (n, features).
    """

    TYPE = "RepeatVector"
    CATEGORY = "Core"
    PARAMS = (Int("n", 3, "number of repetitions", min=1),)
    KEY_PARAMS = ("n",)
    EXAMPLES = (Example({"n": 3}, ((4,),)), Example({"n": 1}, ((2,),)))

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, 1, "RepeatVector")
        return (self.config["n"], shape[0])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        return np.repeat(x[:, np.newaxis, :], self.config["n"], axis=1), None

    def _backward(self, weights, cache, grad):
        return [grad.sum(axis=1)], {}
