"""Exporters of the convolution and pooling blocks.

Tensors stay channels-last, as in Keras, and are moved to channels-first around
torch's convolutions and pools. The padding is the block's own
(``pads``, ``geometry``, ``crops``): symmetric padding goes to the torch op,
anything else to ``F.pad`` before it, and padding that depends on a size known
only at run time to a generated helper (``pad_same``, ``pool_same``).
"""

from __future__ import annotations

import numpy as np

from nodenet.export import torch_helpers  # noqa: F401  (registers their torch helpers)
from nodenet.export._code import py_arguments, py_value
from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import (
    Source,
    channels_first,
    channels_last,
    one_or_tuple,
    torch_activation,
    torch_pad,
)


def _symmetric(pads) -> bool:
    return pads is not None and all(before == after for before, after in pads)


def _with_bias(state: dict, weights: dict) -> dict:
    if "bias" in weights:
        state["bias"] = weights["bias"]
    return state


# -- convolutions -------------------------------------------------------------------------


@exports("Conv1D", "Conv2D", "Conv3D")
class ConvExporter(BlockExporter):
    KERAS_REQUIRED = ("filters", "kernel_size")

    def window_options(self, shape) -> dict:
        """torch's stride, padding (when symmetric) and dilation of the block's window."""
        _, strides, dilation = self.layer.sizes()
        options = {}
        if max(strides) > 1:
            options["stride"] = one_or_tuple(strides)
        pads = self.layer.pads(shape[:-1])
        if _symmetric(pads) and any(before for before, _ in pads):
            options["padding"] = one_or_tuple([before for before, _ in pads])
        if max(dilation) > 1:
            options["dilation"] = one_or_tuple(dilation)
        return options

    def torch_module(self, input_shapes):
        (shape,) = input_shapes
        kernel = self.layer.sizes()[0]
        options = self.window_options(shape)
        if not self.config["use_bias"]:
            options["bias"] = False
        if self.torch_groups(shape) > 1:
            options["groups"] = self.torch_groups(shape)
        args = [shape[-1], self.layer.out_channels(shape[-1]), one_or_tuple(kernel)]
        return f"nn.Conv{self.layer.RANK}d({py_arguments(args, options)})"

    def torch_groups(self, shape) -> int:
        """torch's ``groups``: input channels in separate convolutions."""
        return self.config.get("groups", 1)

    def torch_forward(self, module, args, input_shapes):
        x = channels_first(args[0])
        pads = self.layer.pads(input_shapes[0][:-1])
        if pads is None:
            kernel, strides, dilation = self.layer.sizes()
            x = f"pad_same({x}, {py_value(kernel)}, {py_value(strides)}, {py_value(dilation)})"
        elif not _symmetric(pads):
            x = f"F.pad({x}, {torch_pad(pads)})"
        return torch_activation(self.config["activation"], channels_last(f"{module}({x})"))

    def torch_state(self, weights, input_shapes):
        kernel = weights["kernel"]  # (*window, in, out) -> torch's (out, in, *window)
        return _with_bias({"weight": np.moveaxis(kernel, (-1, -2), (0, 1))}, weights)

    def keras_weights(self, state, input_shapes):
        return _with_bias({"kernel": np.moveaxis(state["weight"], (0, 1), (-1, -2))}, state)

    def torch_weights(self, module, input_shapes):
        return {"kernel": [f"{module}.weight"], "bias": [f"{module}.bias"]}


@exports("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
class ConvTransposeExporter(ConvExporter):
    """torch's transposed convolutions; the kernel (*window, filters, channels) moves to
    torch's (channels, filters, *window) as a convolution's does."""

    def _geometry(self) -> tuple[list[int], list[int], list[int]]:
        """torch's padding and output_padding per axis, and what to cut off the end after.

        Keras keeps the full transposed output minus the block's (before, after)
        crops per axis; torch cuts ``padding`` at both ends and adds
        ``output_padding`` at the end.
        """
        paddings, extras, cuts = [], [], []
        for before, after in self.layer.crops():  # before >= 0; after < 0 adds positions
            paddings.append(before)
            extras.append(max(before - after, 0))
            cuts.append(max(after - before, 0))
        return paddings, extras, cuts

    def torch_module(self, input_shapes):
        (shape,) = input_shapes
        kernel, strides, dilation = self.layer.sizes()
        paddings, extras, _ = self._geometry()
        options = {}
        if max(strides) > 1:
            options["stride"] = one_or_tuple(strides)
        if any(paddings):
            options["padding"] = one_or_tuple(paddings)
        if any(extras):
            options["output_padding"] = one_or_tuple(extras)
        if not self.config["use_bias"]:
            options["bias"] = False
        if max(dilation) > 1:
            options["dilation"] = one_or_tuple(dilation)
        args = [shape[-1], self.config["filters"], one_or_tuple(kernel)]
        return f"nn.ConvTranspose{self.layer.RANK}d({py_arguments(args, options)})"

    def torch_forward(self, module, args, input_shapes):
        out = f"{module}({channels_first(args[0])})"
        _, _, cuts = self._geometry()
        if any(cuts):
            ends = ", ".join(f":-{c}" if c else ":" for c in cuts)
            out = f"{out}[:, :, {ends}]"
        return torch_activation(self.config["activation"], channels_last(out))


@exports("UpSampling1D", "UpSampling2D", "UpSampling3D")
class UpSamplingExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        factors = self.layer.factors()
        if self.config.get("interpolation", "nearest") == "nearest":
            if len(factors) == 3:  # three chained repeats would outgrow a line
                return f"upsample_nearest({args[0]}, {py_value(list(factors))})"
            repeats = (f".repeat_interleave({f}, dim={d})" for d, f in enumerate(factors, 1))
            return args[0] + "".join(repeats)
        scale = py_value(list(factors))
        scaled = f'F.interpolate({channels_first(args[0])}, scale_factor={scale}, mode="bilinear")'
        return channels_last(scaled)  # half-pixel centres, edges clamped: Keras's bilinear


# -- pooling ------------------------------------------------------------------------------


@exports("MaxPooling1D", "MaxPooling2D", "MaxPooling3D")
class PoolingExporter(BlockExporter):
    """Keras's pooling on the torch backend: symmetric "same" padding is left to the pool
    (averages ignore it); padding with an odd side anywhere replicates the edge values
    first, and averages then count them."""

    def torch_forward(self, module, args, input_shapes):
        pool, strides, pads = self.layer.geometry(input_shapes[0][:-1])
        rank = self.layer.RANK
        x = channels_first(args[0])
        if pads is None:
            mode = '"max"' if self.layer.MODE == "max" else '"average"'
            return channels_last(f"pool_same({x}, {mode}, {py_value(pool)}, {py_value(strides)})")
        kind = "max" if self.layer.MODE == "max" else "avg"
        options = {} if strides == pool else {"stride": one_or_tuple(strides)}
        if self.config["padding"] == "same":
            if _symmetric(pads):
                if any(before for before, _ in pads):
                    options["padding"] = one_or_tuple([before for before, _ in pads])
                    if kind == "avg":
                        options["count_include_pad"] = False
            else:
                x = f'F.pad({x}, {torch_pad(pads)}, mode="replicate")'
        call = f"F.{kind}_pool{rank}d({py_arguments([Source(x), one_or_tuple(pool)], options)})"
        return channels_last(call)


@exports("AveragePooling1D", "AveragePooling2D", "AveragePooling3D")
class AveragePoolingExporter(PoolingExporter):
    KERAS_REQUIRED = ("pool_size",)  # Keras gives it no default

    def torch_forward(self, module, args, input_shapes):
        spatial = input_shapes[0][:-1]
        pool, strides, pads = self.layer.geometry(spatial)
        small = any(n is not None and n < k for n, k in zip(spatial, pool, strict=True))
        if self.layer.RANK < 3 or not small or not _symmetric(pads):
            return super().torch_forward(module, args, input_shapes)
        # torch's avg_pool3d refuses an input smaller than its window, padding or not:
        # sums over zero padding, divided by the count of real elements in each window
        options = {} if strides == pool else {"stride": one_or_tuple(strides)}
        x = channels_first(args[0])
        sums, counts = (
            py_arguments([Source(f"F.pad({t}, {torch_pad(pads)})"), one_or_tuple(pool)], options)
            for t in (x, f"torch.ones_like({x}[:, :1])")
        )
        return channels_last(f"F.avg_pool3d({sums}) / F.avg_pool3d({counts})")


@exports(*(f"Global{mode}Pooling{rank}D" for mode in ("Max", "Average") for rank in (1, 2, 3)))
class GlobalPoolingExporter(BlockExporter):
    def torch_forward(self, module, args, input_shapes):
        dims = "1" if self.layer.RANK == 1 else py_value(tuple(range(1, self.layer.RANK + 1)))
        keep = ", keepdim=True" if self.config["keepdims"] else ""
        reduce = "amax" if self.layer.MODE == "max" else "mean"
        return f"{args[0]}.{reduce}(dim={dims}{keep})"
