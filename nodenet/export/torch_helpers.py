"""Helpers the generated PyTorch code calls for normalization, convolution, pooling and
recurrent blocks.

Registered with :func:`nodenet.export.snippets.torch_helper`; the exporter
writes a helper into the generated module only where the code calls it, in
the order they are registered here.
"""

from __future__ import annotations

from nodenet.export.snippets import torch_helper

torch_helper(
    "BatchNormalization",
    '''
class BatchNormalization(nn.Module):
    """Keras's BatchNormalization on channels-last tensors.

    Training normalizes with the batch's mean and biased variance and updates
    ``moving = moving * momentum + batch * (1 - momentum)``; inference uses the
    moving statistics. (torch's BatchNorm tracks the unbiased variance instead.)
    """

    def __init__(
        self,
        features: int,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
    ):
        super().__init__()
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.gamma = nn.Parameter(torch.ones(features)) if scale else None
        self.beta = nn.Parameter(torch.zeros(features)) if center else None
        self.register_buffer("moving_mean", torch.zeros(features))
        self.register_buffer("moving_variance", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis % x.ndim
        shape = [-1 if d == axis else 1 for d in range(x.ndim)]
        if self.training:
            dims = [d for d in range(x.ndim) if d != axis]
            variance, mean = torch.var_mean(x, dim=dims, correction=0)
            with torch.no_grad():
                self.moving_mean.lerp_(mean, 1.0 - self.momentum)
                self.moving_variance.lerp_(variance, 1.0 - self.momentum)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        out = (x - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.epsilon)
        if self.gamma is not None:
            out = out * self.gamma.view(shape)
        if self.beta is not None:
            out = out + self.beta.view(shape)
        return out
''',
)
torch_helper(
    "LayerNormalization",
    '''
class LayerNormalization(nn.Module):
    """Keras's LayerNormalization over the last axis with an offset but no scale."""

    def __init__(self, features: int, epsilon: float = 1e-3):
        super().__init__()
        self.epsilon = epsilon
        self.beta = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], None, self.beta, self.epsilon)
''',
)
torch_helper(
    "same_padding",
    '''
def same_padding(length: int, window: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras's "same" padding of one axis: (before, after), the odd one at the end."""
    span = (window - 1) * dilation + 1
    total = max(0, (math.ceil(length / stride) - 1) * stride + span - length)
    return total // 2, total - total // 2
''',
)
torch_helper(
    "pad_same",
    '''
def pad_same(x: torch.Tensor, window, strides, dilation) -> torch.Tensor:
    """Keras's zero "same" padding of a channels-first tensor sized only at run time."""
    axes = zip(x.shape[2:], window, strides, dilation, strict=True)
    pads = [same_padding(n, k, s, d) for n, k, s, d in axes]
    return F.pad(x, [p for pair in reversed(pads) for p in pair])
''',
)
torch_helper(
    "pool_same",
    '''
def pool_same(x: torch.Tensor, mode: str, window, strides) -> torch.Tensor:
    """Keras's "same" pooling of a channels-first tensor sized only at run time.

    Symmetric padding is left to the pool (averages leave it out); an odd
    padding anywhere replicates the edges first, and averages count them.
    """
    pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], window, strides, strict=True)]
    rank = len(window)
    if all(before == after for before, after in pads):
        padding = [before for before, _ in pads]
        if mode == "max":
            return (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1](x, window, strides, padding)
        average = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1]
        return average(x, window, strides, padding, count_include_pad=False)
    x = F.pad(x, [p for pair in reversed(pads) for p in pair], mode="replicate")
    if mode == "max":
        return (F.max_pool1d, F.max_pool2d, F.max_pool3d)[rank - 1](x, window, strides)
    return (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[rank - 1](x, window, strides)
''',
)
torch_helper(
    "time_dropout",
    '''
def time_dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Dropout of (batch, steps, features) with one mask per sample, reused at every step."""
    return x * F.dropout(torch.ones_like(x[:, :1]), rate, training)
''',
)
torch_helper(
    "with_ones",
    '''
def with_ones(x: torch.Tensor) -> torch.Tensor:
    """x (batch, steps, features) with a last feature of ones, whose input weights hold
    Keras's single recurrent bias (torch's LSTM and RNN would add a second one)."""
    return F.pad(x, (0, 1), value=1.0)
''',
)
torch_helper(
    "merge_pair",
    '''
def merge_pair(forward: torch.Tensor, backward: torch.Tensor, mode: str) -> torch.Tensor:
    """Keras's Bidirectional merge_mode: concat, sum, mul or ave."""
    if mode == "concat":
        return torch.cat([forward, backward], dim=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    return (forward + backward) / 2
''',
)
torch_helper(
    "merge_directions",
    '''
def merge_directions(outputs: torch.Tensor, mode: str, last_step: bool) -> torch.Tensor:
    """Merge the two halves of a torch bidirectional output (batch, steps, 2 * units).

    The backward half is in input order, so its last step read is at position 0.
    """
    forward, backward = outputs.chunk(2, dim=-1)
    if last_step:
        forward, backward = forward[:, -1], backward[:, 0]
    return merge_pair(forward, backward, mode)
''',
)
torch_helper(
    "squareplus",
    """
def squareplus(x: torch.Tensor) -> torch.Tensor:
    \"\"\"Keras's squareplus (b = 4): (x + sqrt(x ** 2 + 4)) / 2.\"\"\"
    return (x + torch.sqrt(x * x + 4)) / 2
""",
)
torch_helper(
    "sparse_plus",
    """
def sparse_plus(x: torch.Tensor) -> torch.Tensor:
    \"\"\"Keras's sparse_plus: 0 below -1, (x + 1) ** 2 / 4 up to 1, x above.\"\"\"
    return torch.where(x <= -1, 0.0, torch.where(x < 1, (x + 1) ** 2 / 4, x))
""",
)
torch_helper(
    "sparse_sigmoid",
    """
def sparse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    \"\"\"Keras's sparse_sigmoid: (x + 1) / 2 clipped to [0, 1].\"\"\"
    return torch.clamp((x + 1) / 2, 0.0, 1.0)
""",
)
torch_helper(
    "sparsemax",
    """
def sparsemax(x: torch.Tensor) -> torch.Tensor:
    \"\"\"Keras 3's sparsemax on the last axis, its threshold computed as Keras computes it.\"\"\"
    ranked = torch.sort(x, dim=-1, descending=True).values
    cumsum = torch.cumsum(ranked, dim=-1)
    r = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    support = ranked - (cumsum - 1) / r > 0
    k = support.sum(dim=-1, keepdim=True)
    tau = (torch.where(support, cumsum, 0.0).sum(dim=-1, keepdim=True) - 1) / k
    return torch.clamp(x - tau, min=0.0)
""",
)
torch_helper(
    "ACTIVATIONS",
    """
ACTIVATIONS = {  # Keras's activations by name
    "linear": lambda x: x,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=-1),
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "gelu": F.gelu,
    "swish": F.silu,
    "silu": F.silu,
    "relu6": F.relu6,
    "celu": F.celu,
    "squareplus": squareplus,
    "soft_shrink": lambda x: F.softshrink(x, 0.5),
    "hard_shrink": lambda x: F.hardshrink(x, 0.5),
    "sparse_plus": sparse_plus,
    "tanh_shrink": F.tanhshrink,
    "sparse_sigmoid": sparse_sigmoid,
    "exponential": torch.exp,
    "hard_sigmoid": F.hardsigmoid,
    "hard_silu": F.hardswish,
    "hard_swish": F.hardswish,
    "hard_tanh": F.hardtanh,
    "log_sigmoid": F.logsigmoid,
    "log_softmax": lambda x: torch.log_softmax(x, dim=-1),
    "mish": F.mish,
    "sparsemax": sparsemax,
}
""",
)
torch_helper(
    "Recurrent",
    '''
class Recurrent(nn.Module):
    """A Keras recurrent layer (SimpleRNN, LSTM or GRU) run step by step.

    Weights are Keras's: kernel (features, k * units), recurrent_kernel
    (units, k * units) and bias (k * units,), or (2, 3 * units) for a GRU with
    reset_after; gates in Keras's order (LSTM i, f, c, o; GRU z, r, h).
    Dropout masks are drawn once per batch and reused at every step; with
    recurrent_dropout, one per gate for the inputs and one per gate for the
    state. Input (batch, steps, features); output (batch, units), or
    (batch, steps, units) in reading order with return_sequences; with
    return_state, the tuple (output, h) or, for an LSTM, (output, h, c). The
    states start at zero, or at the initial states given after the input.
    """

    GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}

    def __init__(
        self,
        cell: str,
        features: int,
        units: int,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        go_backwards: bool = False,
        reset_after: bool = True,
        return_state: bool = False,
    ):
        super().__init__()
        self.cell, self.units, self.gates = cell, units, self.GATES[cell]
        self.activation = ACTIVATIONS[activation]
        self.recurrent_activation = ACTIVATIONS[recurrent_activation]
        self.dropout, self.recurrent_dropout = dropout, recurrent_dropout
        self.return_sequences, self.go_backwards = return_sequences, go_backwards
        self.return_state = return_state
        self.reset_after = reset_after and cell == "GRU"
        width = self.gates * units
        self.kernel = nn.Parameter(torch.empty(features, width))
        self.recurrent_kernel = nn.Parameter(torch.empty(units, width))
        bias_shape = (2, width) if self.reset_after else (width,)
        self.bias = nn.Parameter(torch.zeros(bias_shape)) if use_bias else None

    def forward(self, x: torch.Tensor, *initial: torch.Tensor):
        if self.go_backwards:
            x = x.flip(1)
        per_gate = self.gates if self.recurrent_dropout > 0 else 1
        x_masks = self._masks(self.dropout, per_gate, x[:, 0])
        h = initial[0] if initial else x.new_zeros(len(x), self.units)
        h_masks = self._masks(self.recurrent_dropout, self.gates, h)
        inputs = self._project(x, x_masks)
        c = initial[1] if len(initial) > 1 else torch.zeros_like(h)
        outputs = []
        for t in range(x.shape[1]):
            h, c = self.step(inputs[:, t], h, c, h_masks)
            outputs.append(h)
        output = torch.stack(outputs, dim=1) if self.return_sequences else h
        if not self.return_state:
            return output
        return (output, h, c) if self.cell == "LSTM" else (output, h)

    def step(self, x, h, c, masks):
        """The next (h, c) from one step's input pre-activations x (batch, k * units)."""
        act, gate = self.activation, self.recurrent_activation
        if self.cell == "SimpleRNN":
            return act(x + _recur(h, self.recurrent_kernel, masks)), c
        if self.cell == "LSTM":
            i, f, g, o = (x + _recur(h, self.recurrent_kernel, masks)).chunk(4, dim=-1)
            c = gate(f) * c + gate(i) * act(g)
            return gate(o) * act(c), c
        x_z, x_r, x_h = x.chunk(3, dim=-1)
        if self.reset_after:
            recurrent = _recur(h, self.recurrent_kernel, masks)
            if self.bias is not None:
                recurrent = recurrent + self.bias[1]
            h_z, h_r, h_h = recurrent.chunk(3, dim=-1)
            z, r = gate(x_z + h_z), gate(x_r + h_r)
            candidate = act(x_h + r * h_h)
        else:
            zr_kernel, h_kernel = self.recurrent_kernel.split([2 * self.units, self.units], 1)
            zr_masks = None if masks is None else masks[:2]
            h_z, h_r = _recur(h, zr_kernel, zr_masks).chunk(2, dim=-1)
            z, r = gate(x_z + h_z), gate(x_r + h_r)
            h_masked = h if masks is None else h * masks[2]
            candidate = act(x_h + (r * h_masked) @ h_kernel)
        return z * h + (1 - z) * candidate, c

    def _masks(self, rate: float, count: int, like: torch.Tensor):
        """count dropout masks shaped like ``like`` (scaled by 1 / (1 - rate)), or None."""
        if rate == 0 or not self.training:
            return None
        return F.dropout(torch.ones(count, *like.shape, dtype=like.dtype, device=like.device), rate)

    def _project(self, x: torch.Tensor, masks) -> torch.Tensor:
        """Input pre-activations of every step: (batch, steps, k * units)."""
        if masks is None:
            out = x @ self.kernel
        elif len(masks) == 1:
            out = (x * masks[0][:, None]) @ self.kernel
        else:
            kernels = self.kernel.chunk(self.gates, dim=1)
            out = torch.cat([(x * m[:, None]) @ k for m, k in zip(masks, kernels, strict=True)], -1)
        if self.bias is None:
            return out
        return out + (self.bias[0] if self.reset_after else self.bias)
''',
)
torch_helper(
    "_recur",
    '''
def _recur(h: torch.Tensor, kernel: torch.Tensor, masks) -> torch.Tensor:
    """h (batch, units) times a recurrent kernel; with masks, each gate's columns meet h
    masked for that gate."""
    if masks is None:
        return h @ kernel
    kernels = kernel.chunk(len(masks), dim=1)
    return torch.cat([(h * m) @ k for m, k in zip(masks, kernels, strict=True)], dim=-1)
''',
)
torch_helper(
    "Bidirectional",
    '''
class Bidirectional(nn.Module):
    """Keras's Bidirectional: backward_layer reads the sequence from its end; its outputs
    are flipped back to input order and merged with the forward layer's."""

    def __init__(self, forward_layer: nn.Module, backward_layer: nn.Module, merge_mode="concat"):
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge_mode = merge_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, y_back = self.forward_layer(x), self.backward_layer(x)
        if self.backward_layer.return_sequences:
            y_back = y_back.flip(1)
        return merge_pair(y, y_back, self.merge_mode)
''',
)
torch_helper(
    "upsample_nearest",
    '''
def upsample_nearest(x: torch.Tensor, factors) -> torch.Tensor:
    """Keras's nearest UpSampling3D: each step repeated ``factor`` times along its axis."""
    for axis, factor in enumerate(factors, 1):
        x = x.repeat_interleave(factor, dim=axis)
    return x
''',
)
