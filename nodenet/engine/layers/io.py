"""Input and Output: where data enters the graph and where losses attach."""

from __future__ import annotations

from nodenet.engine.layer import Example, Layer, register
from nodenet.engine.params import Bool, Choice, Float, ShapeParam, StrList
from nodenet.errors import ParamError

LOSS_NAMES = (
    "mean_squared_error",
    "mean_absolute_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "huber",
)
METRIC_NAMES = ("accuracy", "mae", "mse", "precision", "recall", "auc")


@register
class Input(Layer):
    """A model input (``keras.Input``): a batch of tensors of ``shape``.

    Output shape: ``shape``. ``dtype`` int32 feeds indices (to an Embedding); ``string``
    feeds text, one string per sample (shape [1]), to a TextVectorization.
    """

    TYPE = "Input"
    CATEGORY = "Input / Output"
    PARAMS = (
        ShapeParam("shape", [1], "tensor shape without the batch dimension", allow_none=True),
        Choice(
            "dtype", "float32", "element type of the data", choices=("float32", "int32", "string")
        ),
    )
    KEY_PARAMS = ("shape",)
    N_INPUTS = 0
    EXAMPLES = (Example({"shape": [4]}, ((4,),)), Example({"shape": [3, 2]}, ((3, 2),)))

    def infer_shape(self, input_shapes):
        return tuple(self.config["shape"])

    def _forward(self, weights, inputs, ctx):
        return inputs[0], None

    def _backward(self, weights, cache, grad):
        return [grad], {}


@register
class Output(Layer):
    """A model output: the tensor it receives is a prediction, scored by ``loss``.

    Output shape: the input shape. ``loss_weight`` scales this head's loss in
    the total; ``metrics`` are reported per epoch. ``from_logits`` (the cross-entropy
    losses) scores the input as logits, as Keras's ``CategoricalCrossentropy(
    from_logits=True)``: the loss applies the softmax (or sigmoid) itself, stably;
    predictions stay the raw logits and metrics see them as Keras's do (binary
    accuracy, precision and recall threshold the logit at 0.5). ``label_smoothing``
    (categorical and binary cross-entropy) smooths the targets as Keras does.
    """

    TYPE = "Output"
    CATEGORY = "Input / Output"
    PARAMS = (
        Choice(
            "loss", "categorical_crossentropy", "loss minimized for this head", choices=LOSS_NAMES
        ),
        StrList("metrics", ["accuracy"], "metrics reported for this head", choices=METRIC_NAMES),
        Float("loss_weight", 1.0, "weight of this head's loss in the total", min=0.0),
        Bool("from_logits", False, "the input is logits, not probabilities (cross-entropies)"),
        Float(
            "label_smoothing",
            0.0,
            "smooth the targets toward uniform (categorical and binary cross-entropy)",
            min=0.0,
            max=1.0,
        ),
    )
    KEY_PARAMS = ("loss",)

    def check_config(self):
        from nodenet.engine.losses import check_options

        c = self.config
        problem = check_options(c["loss"], c["from_logits"], c["label_smoothing"])
        if problem:
            field = "from_logits" if "from_logits" in problem.split()[0] else "label_smoothing"
            raise ParamError(problem, field)

    def infer_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def _forward(self, weights, inputs, ctx):
        return inputs[0], None

    def _backward(self, weights, cache, grad):
        return [grad], {}
