"""The exporter of TextVectorization, and the plain-Python tokenizer PyTorch code carries.

Keras gets ``layers.TextVectorization`` with the block's arguments, its vocabulary (and
idf weights) written out as literals; Keras's layer runs on TensorFlow string ops, so
that code needs TensorFlow installed whatever the backend. PyTorch gets a generated
``TextVectorization`` module with no parameters or buffers: its ``forward`` takes the
strings (a list or a numpy array, one per sample), tokenizes them in plain Python by
Keras's rules and returns the tensor of ids or values the rest of the network reads.
A learned vocabulary reaches both as the ``vocabulary`` argument: exported with weights,
:func:`state_as_params` moves it from the weights into the block's parameters.
"""

from __future__ import annotations

import numpy as np

from nodenet.engine.layers.text_vectorization import STATE, TextVectorization, learned_params
from nodenet.export.blocks.base import BlockExporter, exports
from nodenet.export.snippets import arguments, torch_helper
from nodenet.graph.project import Project

Weights = dict[str, np.ndarray]

torch_helper(
    "TextVectorization",
    '''
class TextVectorization(nn.Module):
    """Keras's TextVectorization in plain Python before the tensors: strings in, token ids
    ("int") or one vector per string ("multi_hot", "count", "tf_idf") out, float32."""

    PUNCTUATION = str.maketrans("", "", "!\\"#$%&()*+,-./:;<=>?@[\\\\]^_`{|}~\'")
    LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    SPACES = str.maketrans("\\t\\n\\v\\f\\r", "     ")

    def __init__(
        self,
        max_tokens=None,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        ngrams=None,
        output_mode="int",
        output_sequence_length=None,
        pad_to_max_tokens=False,
        vocabulary=None,
        idf_weights=None,
    ):
        super().__init__()
        self.max_tokens, self.standardize, self.split = max_tokens, standardize, split
        self.ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode, self.length = output_mode, output_sequence_length
        self.pad_to_max_tokens = pad_to_max_tokens
        self.specials = ["", "[UNK]"] if output_mode == "int" else ["[UNK]"]
        self.set_vocabulary(vocabulary or [], idf_weights)
        # no state: marks the device the module was moved to, where its output is made
        self.register_buffer("anchor", torch.empty(0), persistent=False)

    def set_vocabulary(self, vocabulary, idf_weights=None) -> None:
        """Keras's set_vocabulary: the special tokens are put in front unless there; the
        OOV token's idf weight is then the mean of the given ones."""
        vocabulary = list(vocabulary)
        found = vocabulary[: len(self.specials)] == self.specials
        self.vocabulary = vocabulary if found else self.specials + vocabulary
        self.index = {token: i for i, token in enumerate(self.vocabulary)}
        self.idf = None
        if idf_weights is not None:
            idf = list(idf_weights) if found else [sum(idf_weights) / len(idf_weights)]
            self.idf = idf + ([] if found else list(idf_weights))

    def adapt(self, texts) -> None:
        """Keras's adapt: tokens by count, then by UTF-8 bytes, both descending, at most
        max_tokens with the special tokens; tf_idf also learns log(1 + N / (1 + df))."""
        counts, documents, n = {}, {}, 0
        for text in np.asarray(texts).reshape(len(texts), -1)[:, 0]:
            tokens = self.tokens(str(text))
            for token in tokens:
                counts[token] = counts.get(token, 0) + 1
            for token in set(tokens):
                documents[token] = documents.get(token, 0) + 1
            n += 1
        for token in ("", "[UNK]"):
            counts.pop(token, None)
        ranked = sorted(counts, key=lambda t: (counts[t], t.encode("utf-8")), reverse=True)
        if self.max_tokens:
            ranked = ranked[: self.max_tokens - len(self.specials)]
        idf = None
        if self.output_mode == "tf_idf":
            learned = np.array([math.log(1 + n / (1 + documents[t])) for t in ranked])
            learned = learned.astype(np.float32)
            idf = [float(learned.mean()) if len(learned) else 0.0, *map(float, learned)]
        self.set_vocabulary(self.specials + ranked, idf)

    def tokens(self, text: str) -> list:
        """The tokens of one string: standardized, split, and joined into n-grams."""
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.translate(self.LOWER)  # ASCII letters only, as TensorFlow lowers
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = text.translate(self.PUNCTUATION)
        if self.split == "whitespace":
            words = [w for w in text.translate(self.SPACES).split(" ") if w]
        elif self.split == "character":
            words = list(text)
        else:
            words = [text]
        if self.ngrams is None:
            return words
        return [" ".join(words[i : i + n]) for n in self.ngrams for i in range(len(words) - n + 1)]

    def forward(self, texts) -> torch.Tensor:
        documents = [self.tokens(str(t)) for t in np.asarray(texts).reshape(len(texts), -1)[:, 0]]
        if self.output_mode == "int":
            rows = [[0 if t == "" else self.index.get(t, 1) for t in d] for d in documents]
            width = self.length if self.length is not None else max(map(len, rows), default=0)
            out = torch.zeros(len(rows), width, device=self.anchor.device)
            for i, row in enumerate(rows):
                row = row[:width]
                out[i, : len(row)] = torch.tensor(row, dtype=torch.float32)
            return out
        width = self.max_tokens if self.pad_to_max_tokens else len(self.vocabulary)
        out = torch.zeros(len(documents), width, device=self.anchor.device)
        for i, document in enumerate(documents):
            for token in document:
                if token != "":
                    out[i, self.index.get(token, 0)] += 1.0
        if self.output_mode == "multi_hot":
            return out.clamp(max=1.0)
        if self.output_mode == "tf_idf":
            weights = torch.zeros(width, device=self.anchor.device)
            weights[: len(self.idf)] = torch.tensor(self.idf[:width], dtype=torch.float32)
            return out * weights
        return out
''',
)


torch_helper(
    "adapt_text",
    '''
def adapt_text(model: nn.Module, data: dict, device) -> None:
    """Keras's adapt for each TextVectorization module without a given vocabulary: it learns
    one from the training texts that reach it (the validation split's tail left out), as
    nodenet does before training. The texts are caught on their way in, in one pass."""
    learning = [
        m
        for m in model.modules()
        if isinstance(m, TextVectorization) and len(m.vocabulary) == len(m.specials)
    ]
    train = data["train"]
    if data.get("validation") is None and VALIDATION_SPLIT:
        train, _ = split_tail(train, VALIDATION_SPLIT)
    texts = {module: [] for module in learning}

    def catch(module, args):
        texts[module].append(np.asarray(args[0]))

    hooks = [module.register_forward_pre_hook(catch) for module in learning]
    inputs = [np.asarray(train[0][key]) for key in INPUTS]
    model.eval()
    with torch.no_grad():
        for start in range(0, len(inputs[0]) if learning else 0, 1024):
            batch = [x[start : start + 1024] for x in inputs]
            model(*(x if x.dtype.kind == "U" else torch.as_tensor(x).to(device) for x in batch))
    for hook in hooks:
        hook.remove()
    for module, seen in texts.items():
        module.adapt(np.concatenate(seen))
    model.train()
''',
)

# the generated PyTorch training's datasets when an Input takes text: the strings stay strings
TO_TEXT_DATASET = '''class TextSamples(Dataset):
    """The samples of the arrays, one tuple each: the strings of a text array stay strings (a
    TextVectorization module reads them), the other arrays become tensors."""

    def __init__(self, arrays: list) -> None:
        self.arrays = [a if a.dtype.kind == "U" else torch.as_tensor(a) for a in arrays]

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: int) -> tuple:
        return tuple(str(a[i, 0]) if isinstance(a, np.ndarray) else a[i] for a in self.arrays)


def to_dataset(inputs: dict, targets: dict) -> TextSamples:
    """The inputs (INPUTS order), then the targets (OUTPUTS order); texts as strings."""
    arrays = [inputs[k] for k in INPUTS] + [targets[k] for k in OUTPUTS]
    return TextSamples([np.asarray(a) for a in arrays])'''


def takes_text(layers) -> bool:
    """Whether any of ``layers`` (built blocks) is an Input of strings."""
    return any(layer.TYPE == "Input" and layer.config["dtype"] == "string" for layer in layers)


@exports("TextVectorization")
class TextVectorizationExporter(BlockExporter):
    """Keras: the layer with its arguments (TensorFlow needed at run time). PyTorch: the
    tokenizer module, which holds no tensors (``torch_state`` is empty)."""

    layer: TextVectorization
    KERAS_COMMENT = "TextVectorization runs on TensorFlow string ops: TensorFlow must be installed"

    def torch_module(self, input_shapes):
        c = self.config
        defaults = {p.name: p.default for p in self.layer.PARAMS}
        options = {k: c[k] for k in defaults if c[k] != defaults[k]}
        return f"TextVectorization({arguments([], options)})"

    def torch_forward(self, module, args, input_shapes):
        return f"{module}({args[0]})"


def state_as_params(project: Project, weights: Weights | None) -> tuple[Project, Weights | None]:
    """``project`` and ``weights`` for an export: each TextVectorization's state in the
    weights (its learned vocabulary, and idf weights) moved into its parameters
    (``vocabulary``, ``idf_weights``), which both exporters write out."""
    if weights is None:
        return project, None
    nodes = [n for n in project.nodes if n.type == TextVectorization.TYPE]
    if not any(f"{n.id}/{name}" in weights for n in nodes for name in STATE):
        return project, weights
    weights, project = dict(weights), project.copy()
    for node in project.nodes:
        if node.type != TextVectorization.TYPE:
            continue
        keys = {name: f"{node.id}/{name}" for name in STATE if f"{node.id}/{name}" in weights}
        state = {name: np.asarray(weights.pop(key)) for name, key in keys.items()}
        if "vocabulary" in state:
            node.params = learned_params(node.params, state)
    return project, weights
