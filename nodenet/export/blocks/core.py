"""Exporters of the input/output, core, embedding and merge blocks."""

from __future__ import annotations

from nodenet.engine.layers.merge import EPSILON
from nodenet.export.blocks.base import BlockExporter, Passthrough, exports, renamed
from nodenet.export.snippets import literal, torch_activation

# -- input / output -----------------------------------------------------------------------


@exports("Input")
class InputExporter(Passthrough):
    """``keras.Input``: the Keras exporter writes it as ``keras.Input(shape=..., name=...)``;
    in torch, the forward's argument named after the node."""

    KERAS_REQUIRED = ("shape",)

    def keras_layer(self):
        return "Input", super().keras_layer()[1]


@exports("Output")
class OutputExporter(Passthrough):
    """A pass-through: the Keras exporter makes its input a model output named after the
    node and compiles its loss, loss weight and metrics."""

    def keras_layer(self):
        return "Identity", {}


# -- core ---------------------------------------------------------------------------------


@exports("Dense")
class DenseExporter(BlockExporter):
    KERAS_REQUIRED = ("units",)

    def torch_module(self, input_shapes):
        no_bias = "" if self.config["use_bias"] else ", bias=False"
        return f"nn.Linear({input_shapes[0][-1]}, {self.config['units']}{no_bias})"

    def torch_forward(self, module, args, input_shapes):
        return torch_activation(self.config["activation"], f"{module}({args[0]})")

    def torch_state(self, weights, input_shapes):
        state = {"weight": weights["kernel"].T}  # torch keeps (out, in)
        if "bias" in weights:
            state["bias"] = weights["bias"]
        return state

    def keras_weights(self, state, input_shapes):
        weights = {"kernel": state["weight"].T}
        if "bias" in state:
            weights["bias"] = state["bias"]
        return weights

    def torch_weights(self, module, input_shapes):
        return {"kernel": [f"{module}.weight"], "bias": [f"{module}.bias"]}


@exports("Activation")
class ActivationExporter(BlockExporter):
    KERAS_REQUIRED = ("activation",)

    def torch_forward(self, module, args, input_shapes):
        return torch_activation(self.config["activation"], args[0])


@exports("Dropout")
class DropoutExporter(BlockExporter):
    KERAS_REQUIRED = ("rate",)

    def torch_module(self, input_shapes):
        return f"nn.Dropout({self.config['rate']!r})"  # also scales kept values by 1 / (1 - rate)

    def torch_forward(self, module, args, input_shapes):
        if self.config["noise_shape"] is None:
            return f"{module}({args[0]})"
        return masked_dropout(module, args[0], self.config["noise_shape"])


def masked_dropout(module: str, x: str, noise_shape: list) -> str:
    """``x`` times its ``nn.Dropout`` ``module`` applied to ones of the mask's shape (batch
    first, None for ``x``'s size): one kept-and-scaled or dropped entry per mask element,
    and ones at inference."""
    dims = ", ".join(f"{x}.shape[{i}]" if d is None else str(d) for i, d in enumerate(noise_shape))
    return f"{x} * {module}({x}.new_ones({dims}))"


@exports("Flatten")
class FlattenExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"{args[0]}.flatten(1)"  # channels-last, so the order is Keras's


@exports("Reshape")
class ReshapeExporter(BlockExporter):
    KERAS_REQUIRED = ("target_shape",)

    def torch_forward(self, module, args, input_shapes):
        dims = ", ".join(str(d) for d in self.config["target_shape"])
        return f"{args[0]}.reshape({args[0]}.shape[0], {dims})"


@exports("Permute")
class PermuteExporter(BlockExporter):
    KERAS_REQUIRED = ("dims",)

    def torch_forward(self, module, args, input_shapes):
        return f"{args[0]}.permute{literal([0, *self.config['dims']])}"


@exports("RepeatVector")
class RepeatVectorExporter(BlockExporter):
    KERAS_REQUIRED = ("n",)

    def torch_forward(self, module, args, input_shapes):
        return f"{args[0]}.unsqueeze(1).repeat(1, {self.config['n']}, 1)"


@exports("Embedding")
class EmbeddingExporter(BlockExporter):
    KERAS_REQUIRED = ("input_dim", "output_dim")

    def torch_module(self, input_shapes):
        return f"nn.Embedding({self.config['input_dim']}, {self.config['output_dim']})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}({args[0]}.long())"  # float indices truncate, as Keras casts them

    def torch_state(self, weights, input_shapes):
        return renamed(weights, {"embeddings": "weight"})

    def keras_weights(self, state, input_shapes):
        return renamed(state, {"weight": "embeddings"})

    def torch_weights(self, module, input_shapes):
        return {"embeddings": [f"{module}.weight"]}


# -- merges -------------------------------------------------------------------------------


def keras_broadcast(args: list[str], input_shapes: list) -> list[str]:
    """The inputs of an element-wise merge as Keras aligns them: a lower-rank input gets new
    axes right after the batch axis (torch alone would align shapes from the right)."""
    rank = max(len(shape) for shape in input_shapes)
    return [
        arg if len(shape) == rank else f"{arg}[:, {', '.join(['None'] * (rank - len(shape)))}]"
        for arg, shape in zip(args, input_shapes, strict=True)
    ]


@exports("Add")
class AddExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return " + ".join(keras_broadcast(args, input_shapes))


@exports("Subtract")
class SubtractExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        first, second = keras_broadcast(args, input_shapes)
        return f"{first} - {second}"


@exports("Multiply")
class MultiplyExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return " * ".join(keras_broadcast(args, input_shapes))


@exports("Average")
class AverageExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"({' + '.join(keras_broadcast(args, input_shapes))}) / {len(args)}"


@exports("Maximum", "Minimum")
class ExtremumExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        reduce = {"Maximum": "torch.maximum", "Minimum": "torch.minimum"}[self.layer.TYPE]
        args = keras_broadcast(args, input_shapes)
        expr = args[0]
        for arg in args[1:]:
            expr = f"{reduce}({expr}, {arg})"
        return expr


@exports("Concatenate")
class ConcatenateExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        return f"torch.cat([{', '.join(args)}], dim={self.config['axis']})"


@exports("Dot")
class DotExporter(BlockExporter):
    KERAS_REQUIRED = ("axes",)

    def torch_forward(self, module, args, input_shapes):
        """``torch.einsum`` over the two axes; each input L2-normalized first with ``normalize``."""
        a, b = (tuple(s) for s in input_shapes)
        i, j = self.layer.contracted_axes([a, b])
        x, y = args
        if self.config["normalize"]:  # x / max(||x||, eps), Keras's l2_normalize
            x = f"F.normalize({x}, dim={i + 1}, eps={EPSILON!r})"
            y = f"F.normalize({y}, dim={j + 1}, eps={EPSILON!r})"
        if len(a) == len(b) == 1:
            return f"({x} * {y}).sum(dim=-1, keepdim=True)"
        letters = iter("cdefghijlmnopqrstuvwxyz")
        x_sub = "".join("k" if n == i else next(letters) for n in range(len(a)))
        y_sub = "".join("k" if n == j else next(letters) for n in range(len(b)))
        out = x_sub.replace("k", "") + y_sub.replace("k", "")
        return f'torch.einsum("b{x_sub},b{y_sub}->b{out}", {x}, {y})'
