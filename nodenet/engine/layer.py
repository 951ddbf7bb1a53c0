"""The Layer base: what every block of the catalog declares and does.

A block is one class registered in :data:`LAYERS` under its Keras 3 name. It
declares its parameters (``PARAMS``), palette category, input ports, a pure
``infer_shape`` and its weights (``weight_specs``, in Keras order and layout),
and computes ``forward`` / ``backward`` on numpy arrays. Weights live outside
the layer, in a dict keyed like ``weight_specs``, so one optimizer updates any
block and the same layer object serves every dtype.

Blocks whose output passes through ``activation`` (Dense, Conv2D, Activation,
...) set ``POST_ACTIVATION``: the base applies it after ``_forward`` and
undoes it in ``backward`` unless the loss already gave dL/dlogits (a softmax
fused with cross-entropy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nodenet.engine import activations
from nodenet.engine.params import Param, resolve_params
from nodenet.engine.registry import Registry
from nodenet.errors import ParamError, ShapeError

Shape = tuple  # a tensor shape without the batch dimension; None marks a variable size

LAYERS: Registry = Registry("block type")

CATEGORIES = (
    "Input / Output",
    "Core",
    "Convolution",
    "Pooling",
    "Recurrent",
    "Normalization",
    "Merge",
    "Attention",
    "Augmentation",
)


def register(cls):
    """Class decorator: add a block to the catalog under its ``TYPE``."""
    LAYERS.register(cls.TYPE)(cls)
    return cls


def fmt_shape(shape: Shape) -> str:
    """A shape as Keras prints it, batch included: ``(None, 28, 64)``."""
    dims = ", ".join("None" if d is None else str(d) for d in (None, *shape))
    return f"({dims})"


@dataclass(frozen=True)
class WeightSpec:
    """One weight array: its Keras name and shape, how it starts, whether it trains."""

    name: str
    shape: tuple[int, ...]
    initializer: str = "zeros"
    trainable: bool = True
    regularizer: dict | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Example:
    """A setting the contract tests exercise: parameters and input shapes.

    ``input_dtype`` is ``"int32"`` for blocks that read indices (Embedding),
    with values drawn below ``int_high``.
    """

    params: dict = field(default_factory=dict)
    input_shapes: tuple = ((4,),)
    input_dtype: str = "float32"
    int_high: int = 10


@dataclass
class Context:
    """What a forward pass needs beyond weights and inputs."""

    training: bool = False
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))


class Layer:
    """A block of the catalog. Subclasses set the class attributes and the hooks."""

    TYPE: ClassVar[str] = ""
    CATEGORY: ClassVar[str] = "Core"
    DOC: ClassVar[str] = ""  # one line for the palette tooltip; defaults to the docstring
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    KEY_PARAMS: ClassVar[tuple[str, ...]] = ()  # shown on the canvas node
    N_INPUTS: ClassVar[int | None] = 1  # None: variadic, at least MIN_INPUTS
    MIN_INPUTS: ClassVar[int] = 2
    MAX_INPUTS: ClassVar[int | None] = None  # variadic: at most this many (None: any)
    POST_ACTIVATION: ClassVar[bool] = False
    INTEGER_INPUT: ClassVar[bool] = False  # reads indices; no gradient flows to its input
    # frozen (trainable=False), it runs in inference mode while training too (Keras 3's
    # BatchNormalization: ``training and self.trainable``)
    INFERENCE_WHEN_FROZEN: ClassVar[bool] = False
    EXAMPLES: ClassVar[tuple[Example, ...]] = (Example(),)
    # PARAMS that Keras takes when the layer is called, not built (``use_causal_mask``)
    CALL_ARGS: ClassVar[tuple[str, ...]] = ()
    # ``_forward`` returns a new array nobody else holds: a relu may overwrite it in place
    FRESH_OUTPUT: ClassVar[bool] = False
    # set by the model for one backward pass: arrays the weight gradients are written into,
    # keyed like ``weight_specs`` (blocks that do not use it return new arrays)
    grad_out: dict[str, np.ndarray] | None = None

    def __init__(self, params: dict | None = None, name: str = ""):
        self.name = name or self.TYPE.lower()
        self.config: dict[str, Any] = resolve_params(self.PARAMS, params or {}, self.TYPE)
        self.check_config()

    @classmethod
    def from_config(cls, params: dict, name: str = "") -> Layer:
        """The constructor, with an error naming the block type when it fails."""
        try:
            return cls(params, name)
        except ParamError as err:
            raise ParamError(f"{cls.TYPE}: {err}", err.param) from None

    def get_config(self) -> dict[str, Any]:
        return dict(self.config)

    def __getattr__(self, name: str) -> Any:
        config = self.__dict__.get("config")
        if config is not None and name in config:
            return config[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"{self.TYPE}({self.name!r}, {self.config})"

    # -- declarations -----------------------------------------------------

    @classmethod
    def doc(cls) -> str:
        return cls.DOC or (cls.__doc__ or "").strip().splitlines()[0]

    @classmethod
    def variadic(cls) -> bool:
        return cls.N_INPUTS is None

    @classmethod
    def accepts_inputs(cls, count: int) -> bool:
        if cls.N_INPUTS is None:
            return count >= cls.MIN_INPUTS
        return count == cls.N_INPUTS

    @classmethod
    def partly_wired(cls, count: int) -> bool:
        """Whether ``count`` inputs are a step towards an accepted wiring (an LSTM's initial
        h before its c): the editor lets such an edge in; the analysis names what is missing."""
        return False

    def check_config(self) -> None:
        """Checks that span several parameters; raise :class:`ParamError`."""

    def infer_shape(self, input_shapes: list[Shape]) -> Shape:
        """The output shape (no batch dimension) for these input shapes.

        Pure: no weights, no arrays. Raises :class:`ShapeError` with one sentence.
        """
        raise NotImplementedError

    def n_outputs(self) -> int:
        """How many outputs the block has with its parameters (edges name one by
        ``from_port``). A block with more than one returns a list of arrays from
        :meth:`forward`, takes a list of gradients (one per output, zeros for an unused
        one) in :meth:`backward`, and overrides :meth:`infer_shapes`."""
        return 1

    def infer_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        """The shape of every output, in output order (one block, one output: its
        :meth:`infer_shape`)."""
        return [self.infer_shape(input_shapes)]

    def weight_specs(self, input_shapes: list[Shape]) -> list[WeightSpec]:
        """The weights this block owns for these input shapes, in Keras order."""
        return []

    def count_params(self, input_shapes: list[Shape]) -> tuple[int, int]:
        """(trainable, non-trainable) parameter counts."""
        specs = self.weight_specs(input_shapes)
        trainable = sum(s.size for s in specs if s.trainable)
        return trainable, sum(s.size for s in specs) - trainable

    # -- computation --------------------------------------------------------

    def forward(
        self, weights: dict[str, np.ndarray], inputs: list[np.ndarray], ctx: Context
    ) -> tuple[np.ndarray, Any]:
        """Output for a batch of ``inputs``, and a cache for :meth:`backward`."""
        z, cache = self._forward(weights, inputs, ctx)
        activation = self.config["activation"] if self.POST_ACTIVATION else "linear"
        if activation == "linear":
            return z, (cache, None, None)
        if activation == "relu" and self.FRESH_OUTPUT:
            # a > 0 exactly where z > 0, so ``a`` stands in for z in relu's gradient
            a = activations.relu_inplace(z)
            return a, (cache, a, a)
        a = activations.apply(activation, z)
        return a, (cache, z, a)

    def backward(
        self,
        weights: dict[str, np.ndarray],
        cache: Any,
        grad: np.ndarray,
        from_logits: bool = False,
    ) -> tuple[list[np.ndarray | None], dict[str, np.ndarray]]:
        """Gradients of the inputs and of the weights, given dL/d(output).

        With ``from_logits`` the grad is already taken before the activation.
        An input gradient is ``None`` for integer inputs.
        """
        inner, z, a = cache
        if z is not None and not from_logits:
            grad = activations.grad(self.config["activation"], grad, z, a)
        return self._backward(weights, inner, grad)

    def _forward(self, weights, inputs, ctx) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _backward(self, weights, cache, grad) -> tuple[list, dict]:
        raise NotImplementedError


# -- helpers shared by several blocks -------------------------------------


def expect_rank(input_shape: Shape, ranks: int | tuple[int, ...], what: str) -> None:
    """Raise a ShapeError unless ``input_shape`` (no batch) has one of ``ranks``."""
    ranks = (ranks,) if isinstance(ranks, int) else ranks
    if len(input_shape) not in ranks:
        wanted = " or ".join(str(r + 1) for r in ranks)
        raise ShapeError(
            f"{what} expects a {wanted}-D input (batch included), got {fmt_shape(input_shape)}"
        )


def known(dim: int | None, what: str, shape: Shape) -> int:
    """A dimension that must be known to size weights."""
    if dim is None:
        raise ShapeError(f"{what} needs a known size, got {fmt_shape(shape)}")
    return dim


def kernel_params(*, default_init: str = "glorot_uniform"):
    """The initializer and regularizer parameters Keras gives kernel-bearing layers."""
    from nodenet.engine.initializers import NAMES as INITS
    from nodenet.engine.params import Initializer, Regularizer

    return (
        Initializer("kernel_initializer", default_init, "how the kernel starts", choices=INITS),
        Initializer("bias_initializer", "zeros", "how the bias starts", choices=INITS),
        Regularizer("kernel_regularizer", None, "L1/L2 penalty on the kernel, added to the loss"),
        Regularizer("bias_regularizer", None, "L1/L2 penalty on the bias, added to the loss"),
    )


def text_wiring_problem(layers: dict[str, Layer], feeds: dict[str, list]) -> str | None:
    """Why strings would reach a block that takes numbers (or numbers a block that takes
    strings) in a graph of ``layers`` fed as ``feeds`` (node -> [(source, port)]), or None."""
    for node_id, sources in feeds.items():
        takes_text = getattr(layers[node_id], "STRING_INPUT", False)
        for source, _ in sources:
            source_layer = layers[source]
            gives_text = source_layer.TYPE == "Input" and source_layer.config["dtype"] == "string"
            if gives_text and not takes_text:
                return (
                    f"{node_id}: the string Input {source!r} feeds it text, which it cannot "
                    "read; put a TextVectorization between them"
                )
            if takes_text and not gives_text:
                return (
                    f"{node_id}: a TextVectorization reads text: feed it an Input of dtype "
                    f"string (not {source!r})"
                )
    return None
