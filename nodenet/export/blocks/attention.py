"""Exporters of the attention blocks (MultiHeadAttention, Attention, AdditiveAttention) and
the torch helpers they call.

Keras is called as Keras's own code calls these layers: ``mha(query, value, key,
use_causal_mask=True)`` and ``attention([query, value], use_causal_mask=True)``. The torch
modules are plain einsum and softmax on channels-last tensors, with the einsum equations
the engine block builds as Keras does (:func:`nodenet.engine.layers.multi_head_attention.
equations`), and weights kept in Keras's layouts (``query.kernel`` is ``query/kernel``).
"""

from __future__ import annotations

from nodenet.engine.layers.multi_head_attention import equations
from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import arguments, torch_helper

torch_helper(
    "AttentionProjection",
    '''
class AttentionProjection(nn.Module):
    """One of Keras MultiHeadAttention's EinsumDense projections: the last ``contracted``
    axes of x times a kernel shaped (*contracted sizes, *output sizes), plus a bias."""

    def __init__(self, kernel_shape: tuple[int, ...], contracted: int, use_bias: bool):
        super().__init__()
        self.contracted = contracted
        self.kernel = nn.Parameter(torch.zeros(kernel_shape))
        self.bias = nn.Parameter(torch.zeros(kernel_shape[contracted:])) if use_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.tensordot(x, self.kernel, dims=self.contracted)
        return out if self.bias is None else out + self.bias
''',
)
torch_helper(
    "MultiHeadAttention",
    '''
class MultiHeadAttention(nn.Module):
    """Keras's MultiHeadAttention on channels-last tensors: project query, key and value
    to heads, softmax(query . key / sqrt(key_dim)) over the attention axes (a causal mask
    as Keras builds it), dropout on those weights, weigh the values, project back."""

    def __init__(
        self,
        dims: tuple[int, int, int],
        heads: int,
        key_dim: int,
        value_dim: int,
        output_shape: tuple[int, ...],
        equations: tuple[str, str],
        attention_axes: int,
        use_bias: bool = True,
        dropout: float = 0.0,
        causal: bool = False,
        scores: bool = False,
    ):
        super().__init__()
        query_dim, value_in, key_in = dims
        self.query = AttentionProjection((query_dim, heads, key_dim), 1, use_bias)
        self.key = AttentionProjection((key_in, heads, key_dim), 1, use_bias)
        self.value = AttentionProjection((value_in, heads, value_dim), 1, use_bias)
        self.attention_output = AttentionProjection((heads, value_dim, *output_shape), 2, use_bias)
        self.scale = 1.0 / math.sqrt(float(key_dim))
        self.dot, self.combine = equations
        self.n_axes, self.causal, self.with_weights = attention_axes, causal, scores
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, value: torch.Tensor, key: torch.Tensor | None = None):
        key = value if key is None else key
        q = self.query(query) * self.scale
        scores = torch.einsum(self.dot, self.key(key), q)
        mask = None
        if self.causal:  # (1, Tq, Tv), axes added as Keras adds them
            ones = torch.ones(query.shape[1], value.shape[1], dtype=torch.bool)
            mask = ones.tril().unsqueeze(0).to(scores.device)
            while mask.dim() < scores.dim():
                mask = mask.unsqueeze(-2 * self.n_axes - 1)
            scores = scores.masked_fill(~mask, -1e9)
        dims = tuple(range(scores.dim() - self.n_axes, scores.dim()))
        probs = torch.exp(scores - torch.logsumexp(scores, dim=dims, keepdim=True))
        if mask is not None:
            probs = probs.masked_fill(~mask, 0.0)
        combined = torch.einsum(self.combine, self.dropout(probs), self.value(value))
        out = self.attention_output(combined)
        return (out, probs) if self.with_weights else out  # the weights before dropout
''',
)
torch_helper(
    "DotAttention",
    '''
class DotAttention(nn.Module):
    """Keras's Attention and AdditiveAttention on [query, value(, key)] channels-last:
    scores of each query step against each key step, a softmax over the key steps
    (step i sees steps j <= i with the causal mask), dropout, the weighted values."""

    def __init__(
        self,
        mode: str,
        scale_shape: tuple[int, ...] | None,
        dropout: float = 0.0,
        causal: bool = False,
        scores: bool = False,
    ):
        super().__init__()
        self.mode, self.causal, self.with_weights = mode, causal, scores
        self.scale = None if scale_shape is None else nn.Parameter(torch.ones(scale_shape))
        if mode == "concat":
            self.concat_score_weight = nn.Parameter(torch.ones(()))
        self.dropout = nn.Dropout(dropout)

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        if self.mode == "dot":
            scores = q @ k.transpose(-1, -2)
            return scores if self.scale is None else scores * self.scale
        summed = q.unsqueeze(-2) + k.unsqueeze(-3)
        if self.mode == "additive":
            t = torch.tanh(summed)
            return (t if self.scale is None else self.scale * t).sum(-1)
        t = torch.tanh(summed if self.scale is None else self.scale * summed)
        return self.concat_score_weight * t.sum(-1)

    def forward(self, inputs: list[torch.Tensor]):
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        scores = self.scores(q, k)
        if self.causal:
            tq, tv = scores.shape[-2:]
            allowed = torch.ones(tq, tv, dtype=torch.bool, device=scores.device).tril()
            scores = torch.where(allowed, scores, scores - 1e9)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        return (weights @ v, weights) if self.with_weights else weights @ v  # after dropout
''',
)


@exports("MultiHeadAttention")
class MultiHeadAttentionExporter(BlockExporter):
    KERAS_REQUIRED = ("num_heads", "key_dim")

    def output_suffixes(self, count):
        return ["", "_scores"][:count]  # mha, mha_scores = layers.MultiHeadAttention(...)(...)

    def keras_call(self, tensors):
        return ", ".join([*tensors, *self.keras_call_keywords()])

    def torch_module(self, input_shapes):
        c, layer = self.config, self.layer
        query, value, key = [*input_shapes, input_shapes[1]][:3]
        axes = layer.axes(tuple(query))
        dims = [query[-1], value[-1], key[-1]]
        output = c["output_shape"] or [query[-1]]
        options = {}
        if not c["use_bias"]:
            options["use_bias"] = False
        if c["dropout"]:
            options["dropout"] = c["dropout"]
        if c["use_causal_mask"]:
            options["causal"] = True
        if c["return_attention_scores"]:
            options["scores"] = True
        positional = [
            dims,
            c["num_heads"],
            c["key_dim"],
            layer.head_value_dim,
            list(output),
            list(equations(len(query) + 2, axes)),
            len(axes),
        ]
        return f"MultiHeadAttention({arguments(positional, options)})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}({', '.join(args)})"

    def torch_state(self, weights, input_shapes):
        return {name.replace("/", "."): array for name, array in weights.items()}

    def keras_weights(self, state, input_shapes):
        return {name.replace(".", "/"): array for name, array in state.items()}

    def torch_weights(self, module, input_shapes):
        return {
            s.name: [f"{module}.{s.name.replace('/', '.')}"]
            for s in self.layer.weight_specs(list(input_shapes))
        }


@exports("Attention", "AdditiveAttention")
class DotAttentionExporter(BlockExporter):
    def output_suffixes(self, count):
        return ["", "_scores"][:count]

    def torch_module(self, input_shapes):
        c = self.config
        if self.layer.TYPE == "AdditiveAttention":
            mode, scale = "additive", [input_shapes[0][-1]] if c["use_scale"] else None
        else:
            mode, scale = c["score_mode"], [] if c["use_scale"] else None
        options = {}
        if c["dropout"]:
            options["dropout"] = c["dropout"]
        if c["use_causal_mask"]:
            options["causal"] = True
        if c["return_attention_scores"]:
            options["scores"] = True
        return f"DotAttention({arguments([mode, scale], options)})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}([{', '.join(args)}])"

    def torch_state(self, weights, input_shapes):
        return dict(weights)

    def keras_weights(self, state, input_shapes):
        return dict(state)

    def torch_weights(self, module, input_shapes):
        return {s.name: [f"{module}.{s.name}"] for s in self.layer.weight_specs(list(input_shapes))}
