"""TimeDistributed: one block applied to every time step of its input, with shared weights.

The input is (batch, time, ...); the wrapped block sees each step, (batch, ...), and
its outputs are stacked back on the time axis. Keras calls the layer once per step;
for the blocks that may be wrapped (:func:`wrappable`: one input, one output, each
sample computed on its own) that equals one call on the steps folded into the batch,
(batch * time, ...), which is what the block computes.
"""

from __future__ import annotations

from typing import Any

from nodenet.engine.layer import LAYERS, Example, Layer, expect_rank, fmt_shape, register
from nodenet.engine.layers.recurrent import wrapped
from nodenet.engine.params import NestedBlock
from nodenet.errors import ParamError, ShapeError

# blocks that cannot be wrapped although they take one input: the graph's ends,
# BatchNormalization (Keras takes its batch statistics per step while training), and
# LayerScale (keras.applications' class has no output shape for Keras's TimeDistributed)
_NOT_WRAPPABLE = ("Input", "Output", "BatchNormalization", "Normalization", "LayerScale")


def wrappable(cls: type[Layer]) -> bool:
    """Whether TimeDistributed may wrap blocks of class ``cls``: called on one float
    input (a recurrent block without initial states), no call arguments (Keras's
    TimeDistributed passes none on), and none of ``_NOT_WRAPPABLE``."""
    return (
        cls.accepts_inputs(1)
        and not cls.INTEGER_INPUT
        and not getattr(cls, "CALL_ARGS", ())
        and cls.TYPE not in _NOT_WRAPPABLE
    )


class _Wrappable:
    """The classes of :func:`wrappable` blocks, read from the catalog when iterated:
    blocks register module by module, many after this one."""

    def __iter__(self):
        return iter([LAYERS.get(name) for name in sorted(LAYERS) if wrappable(LAYERS.get(name))])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class AnyBlock(NestedBlock):
    """A wrapper's inner block of any :func:`wrappable` type (see :class:`NestedBlock`),
    described in a few words rather than by every type's name."""

    def coerce(self, value: Any) -> Any:
        if isinstance(value, dict) and value.get("type") not in {b.TYPE for b in self.blocks}:
            raise self.fail(_WRAPPABLE_TEXT, value.get("type"))
        return super().coerce(value)

    def describe(self) -> str:
        return f'{{"type": {_WRAPPABLE_TEXT}, "params": {{its parameters}}}}'


_WRAPPABLE_TEXT = (
    "a block with one float input and one output (not " + ", ".join(_NOT_WRAPPABLE) + ")"
)


@register
class TimeDistributed(Layer):
    """Applies one block to every time step of the input, with the same weights.

    ``layer`` is the wrapped block, ``{"type": "Dense", "params": {"units": 8}}``:
    any block with one float input and one output (not Input, Output, Embedding,
    BatchNormalization or LayerScale: see :func:`wrappable`). Input shape: (time,
    ...) with at least one axis after time. Output shape: (time, *the block's
    output for (...)). Weights: the block's, with its names.
    """

    TYPE = "TimeDistributed"
    CATEGORY = "Core"
    PARAMS = (
        AnyBlock(
            "layer",
            {"type": "Dense", "params": {}},
            "the block applied to every time step, with its parameters",
            blocks=_Wrappable(),
        ),
    )
    KEY_PARAMS = ("layer",)
    EXAMPLES = (
        Example({"layer": wrapped("Dense", units=3, activation="relu")}, ((4, 5),)),
        Example({"layer": wrapped("Conv2D", filters=2, kernel_size=2)}, ((3, 4, 4, 2),)),
        Example({"layer": wrapped("MaxPooling2D", pool_size=2)}, ((2, 4, 4, 3),)),
        Example({"layer": wrapped("Dense", units=2, use_bias=False)}, ((3, 2, 4),)),
        Example({"layer": wrapped("GlobalAveragePooling1D")}, ((3, 4, 2),)),
    )

    def __init__(self, params: dict | None = None, name: str = ""):
        super().__init__(params, name)
        inner = self.config["layer"]
        self.inner: Layer = LAYERS.get(inner["type"])(inner["params"], self.name)
        if self.inner.n_outputs() != 1:
            raise ParamError(
                f"layer: TimeDistributed wraps a block with one output ({inner['type']} has "
                f"{self.inner.n_outputs()})",
                "layer",
            )

    def _step_shape(self, shape: tuple) -> tuple:
        expect_rank(shape, tuple(range(2, 8)), "TimeDistributed")
        return tuple(shape[1:])

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        try:
            out = self.inner.infer_shape([self._step_shape(shape)])
        except ShapeError as err:
            raise ShapeError(f"TimeDistributed on {fmt_shape(shape)}: {err}") from None
        return (shape[0], *out)

    def weight_specs(self, input_shapes):
        (shape,) = input_shapes
        return self.inner.weight_specs([self._step_shape(shape)])

    def _forward(self, weights, inputs, ctx):
        (x,) = inputs
        batch, steps = x.shape[:2]
        out, cache = self.inner.forward(weights, [x.reshape(batch * steps, *x.shape[2:])], ctx)
        return out.reshape(batch, steps, *out.shape[1:]), (cache, x.shape)

    def _backward(self, weights, cache, grad):
        inner_cache, shape = cache
        folded = grad.reshape(shape[0] * shape[1], *grad.shape[2:])
        (dx,), grads = self.inner.backward(weights, inner_cache, folded)
        return [None if dx is None else dx.reshape(shape)], grads
