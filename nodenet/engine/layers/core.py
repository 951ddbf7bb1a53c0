"""Core blocks: Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector."""

from __future__ import annotations

import numpy as np

from nodenet.engine import activations
from nodenet.engine.layer import (
    Example,
    Layer,
    WeightSpec,
    expect_rank,
    kernel_params,
    known,
    register,
)
from nodenet.engine.params import Bool, Choice, Int


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
    EXAMPLES = (
        Example({"units": 3}, ((4,),)),
        Example({"units": 5, "activation": "tanh"}, ((2, 3),)),
        Example({"units": 4, "activation": "softmax", "use_bias": False}, ((6,),)),
    )

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        expect_rank(shape, tuple(range(1, 8)), "Dense")
        return (*shape[:-1], self.config["units"])

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        n_in = known(shape[-1], "Dense's last input axis", shape)
        c = self.config
        specs = [WeightSpec("kernel", (n_in, c["units"]), c["kernel_initializer"],
                            regularizer=c["kernel_regularizer"])]
        if c["use_bias"]:
            specs.append(WeightSpec("bias", (c["units"],), c["bias_initializer"],
                                    regularizer=c["bias_regularizer"]))
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
        grads = {"kernel": x2.T @ g2}
        if "bias" in weights:
            grads["bias"] = g2.sum(axis=0)
        return [grad @ kernel.T], grads
