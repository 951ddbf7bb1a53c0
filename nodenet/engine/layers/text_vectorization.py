"""TextVectorization: strings to token ids or token vectors, with Keras 3's rules.

The tokenizing rules live in :mod:`nodenet.engine.text_tokens` (shared with text
folders). The block's vocabulary is either given (``vocabulary``, and ``idf_weights``
for ``tf_idf``) or learned from the training split before training, as
``layer.adapt(train_texts)`` learns it in Keras (:mod:`nodenet.engine.adapt`). It is
state, not a weight: no parameter counts it (Keras counts none) and nothing trains it,
but it is saved with the weights as ``node/vocabulary`` (a unicode array, read back
without pickle) and ``node/idf_weights`` (float32, ``tf_idf`` only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nodenet.engine import text_tokens as tt
from nodenet.engine.layer import (  # noqa: F401  (text_wiring_problem: its home is layer.py)
    Example,
    Layer,
    fmt_shape,
    register,
    text_wiring_problem,
)
from nodenet.engine.params import Bool, Choice, Int, Param, _as_float, _is_int
from nodenet.errors import DataError, ParamError, ShapeError

MAX_NGRAM = 32
STATE = ("vocabulary", "idf_weights")


class Vocabulary(Param):
    """``null`` or a non-empty list of strings (Keras's ``vocabulary`` as a list)."""

    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
            return list(value)
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "null or a non-empty list of strings"


class Ngrams(Param):
    """``null``, an integer n (widths 1 to n) or a list of widths (Keras's ``ngrams``)."""

    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        if value is None or (_is_int(value) and 1 <= value <= MAX_NGRAM):
            return value
        if (
            isinstance(value, list | tuple)
            and value
            and all(_is_int(v) and 1 <= v <= MAX_NGRAM for v in value)
        ):
            return list(value)
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return f"null, an integer from 1 to {MAX_NGRAM} or a non-empty list of them"


class IdfWeights(Param):
    """``null`` or a non-empty list of finite numbers (``tf_idf``'s given weights)."""

    kind: ClassVar[str] = "any"

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list | tuple) and value:
            numbers = [_as_float(v) for v in value]
            if all(n is not None for n in numbers):
                return numbers
        raise self.fail(self.describe(), value)

    def describe(self) -> str:
        return "null or a non-empty list of finite numbers"


@register
class TextVectorization(Layer):
    """Turns strings into token ids (``int``) or one vector per string (``multi_hot``,
    ``count``, ``tf_idf``), as Keras's TextVectorization does.

    Each string is standardized (``lower_and_strip_punctuation``: ASCII letters lowered,
    Keras's punctuation removed), split (on whitespace) and optionally joined into
    ``ngrams``, then looked up in the vocabulary: learned from the training split
    (most frequent first, at most ``max_tokens`` entries with the special ones) unless
    given. ``int``: index 0 pads, 1 is ``[UNK]``, the output is cut or padded to
    ``output_sequence_length``. Other modes: ``[UNK]`` is index 0 and the width is
    ``max_tokens`` with ``pad_to_max_tokens``, else the given vocabulary's size. Input
    shape: (1,) strings (an Input of dtype ``string``). Output shape:
    (output_sequence_length,) or (vocabulary width,), float32 ids or values. No weights;
    the vocabulary (and idf weights) is state saved with them. Keras's ``one_hot`` mode,
    callables, ``sparse`` and ``ragged`` are not supported.
    """

    TYPE = "TextVectorization"
    CATEGORY = "Core"
    STRING_INPUT: ClassVar[bool] = True  # reads strings (an Input of dtype "string")
    INTEGER_INPUT = True  # no gradient flows to its input
    PARAMS = (
        Int("max_tokens", None, "largest vocabulary, special tokens included", 2, None, True),
        Choice(
            "standardize",
            "lower_and_strip_punctuation",
            "how text is normalized before splitting",
            tt.STANDARDIZE,
        ),
        Choice("split", "whitespace", "how text is cut into tokens", tt.SPLIT),
        Ngrams("ngrams", None, "also make n-grams of these widths (n: widths 1 to n)"),
        Choice("output_mode", "int", "ids, or one vector per string", tt.OUTPUT_MODES),
        Int(
            "output_sequence_length",
            None,
            "int mode: ids cut or padded to this length (null: the longest in the batch)",
            1,
            None,
            True,
        ),
        Bool("pad_to_max_tokens", False, "vector modes: output max_tokens wide"),
        Vocabulary("vocabulary", None, "the vocabulary (null: learned from the training data)"),
        IdfWeights("idf_weights", None, "tf_idf with a given vocabulary: its idf weights"),
    )
    KEY_PARAMS = ("output_mode", "max_tokens")
    EXAMPLES = (
        Example({"output_sequence_length": 6}, ((1,),), input_dtype="string"),
        Example(
            {"vocabulary": ["the", "cat", "sat"], "output_sequence_length": 4},
            ((1,),),
            input_dtype="string",
        ),
        Example(
            {"output_mode": "multi_hot", "vocabulary": ["a", "cat", "dog"]},
            ((1,),),
            input_dtype="string",
        ),
        Example(
            {"output_mode": "count", "max_tokens": 6, "pad_to_max_tokens": True, "ngrams": 2},
            ((1,),),
            input_dtype="string",
        ),
        Example(
            {
                "output_mode": "tf_idf",
                "vocabulary": ["the", "cat"],
                "idf_weights": [0.5, 1.25],
            },
            ((1,),),
            input_dtype="string",
        ),
        Example(
            {
                "standardize": None,
                "split": "character",
                "vocabulary": ["a", "b"],
                "output_sequence_length": 8,
            },
            ((1,),),
            input_dtype="string",
        ),
    )

    def check_config(self):
        c = self.config
        mode = c["output_mode"]
        if c["pad_to_max_tokens"] and c["max_tokens"] is None:
            raise ParamError("pad_to_max_tokens needs max_tokens", "pad_to_max_tokens")
        if mode != "int" and c["output_sequence_length"] is not None:
            raise ParamError(
                f'output_sequence_length is for output_mode "int", not "{mode}"',
                "output_sequence_length",
            )
        if c["idf_weights"] is not None and mode != "tf_idf":
            raise ParamError('idf_weights are for output_mode "tf_idf"', "idf_weights")
        if c["vocabulary"] is None:
            if c["idf_weights"] is not None:
                raise ParamError("idf_weights need a given vocabulary", "idf_weights")
            return
        problem = tt.given_problem(c["vocabulary"], mode, c["max_tokens"])
        if problem:
            raise ParamError(problem, "vocabulary")
        if mode == "tf_idf":
            if c["idf_weights"] is None:
                raise ParamError(
                    'output_mode "tf_idf" with a given vocabulary needs its idf_weights',
                    "idf_weights",
                )
            if len(c["idf_weights"]) != len(c["vocabulary"]):
                raise ParamError(
                    f"idf_weights has {len(c['idf_weights'])} numbers but the vocabulary "
                    f"has {len(c['vocabulary'])} entries",
                    "idf_weights",
                )

    def adapts(self) -> bool:
        """Whether the vocabulary is learned from the training data (not given)."""
        return self.config["vocabulary"] is None

    def width(self) -> int | None:
        """The output width of the vector modes, when known before any data is read."""
        c = self.config
        if c["pad_to_max_tokens"]:
            return c["max_tokens"]
        if c["vocabulary"] is not None:
            return len(tt.full_vocabulary(c["vocabulary"], c["output_mode"])[0])
        return None

    def infer_shape(self, input_shapes):
        (shape,) = input_shapes
        if tuple(shape) != (1,):
            raise ShapeError(
                f"TextVectorization takes one string per sample, shape (None, 1); got "
                f"{fmt_shape(shape)}"
            )
        c = self.config
        if c["output_mode"] == "int":
            return (c["output_sequence_length"],)
        width = self.width()
        if width is None:
            raise ShapeError(
                f'TextVectorization output_mode "{c["output_mode"]}" needs its width before '
                "the data is read: set max_tokens with pad_to_max_tokens, or give a vocabulary"
            )
        return (width,)

    # -- state: the vocabulary (and idf weights) --------------------------------------------

    def initial_state(self) -> dict[str, np.ndarray]:
        """The state before any data: the given vocabulary, or the special tokens alone
        (every token out of vocabulary) until the block adapts."""
        c = self.config
        if c["vocabulary"] is None:
            vocab, found = tt.special_tokens(c["output_mode"]), True
        else:
            vocab, found = tt.full_vocabulary(c["vocabulary"], c["output_mode"])
        state = {"vocabulary": np.array(vocab, dtype=str)}
        if c["output_mode"] == "tf_idf":
            pad = c["max_tokens"] if c["pad_to_max_tokens"] else None
            if c["idf_weights"] is None:
                idf = np.zeros(pad or len(vocab), np.float32)
            else:
                idf = tt.full_idf(c["idf_weights"], found, pad)
            state["idf_weights"] = idf
        return state

    def check_state(self, state: dict[str, np.ndarray]) -> str | None:
        """Why ``state`` (read from a file) cannot be this block's, or None."""
        c = self.config
        vocab = state["vocabulary"]
        if vocab.dtype.kind != "U" or vocab.ndim != 1:
            return f"the vocabulary must be a 1-D array of strings, got {vocab.dtype} {vocab.shape}"
        specials = tt.special_tokens(c["output_mode"])
        if list(vocab[: len(specials)]) != specials:
            return f"the vocabulary must start with {specials}"
        limit = c["max_tokens"] if c["max_tokens"] is not None else None
        width = self.width()
        if c["output_mode"] != "int" and width is not None:
            limit = width
        if limit is not None and len(vocab) > limit:
            return f"the vocabulary has {len(vocab)} entries, more than {limit}"
        if c["output_mode"] == "tf_idf":
            idf = state.get("idf_weights")
            if idf is None or idf.dtype.kind != "f" or idf.ndim != 1:
                return "tf_idf needs 1-D float idf_weights"
            if len(idf) < len(vocab):
                return f"idf_weights has {len(idf)} numbers for {len(vocab)} vocabulary entries"
        return None

    def state_names(self) -> tuple[str, ...]:
        """The names of the state arrays, saved as ``node/name``."""
        return STATE if self.config["output_mode"] == "tf_idf" else STATE[:1]

    def adapter(self) -> VocabularyAdapter:
        """What learns the vocabulary from batches of strings (see :mod:`..adapt`)."""
        return VocabularyAdapter(self)

    # -- computation -------------------------------------------------------------------------

    def tokens(self, x: np.ndarray) -> list[list[str]]:
        """The token list of each sample of a (batch, 1) or (batch,) string array."""
        c = self.config
        texts = _strings(x, self.name).reshape(len(x), -1)
        if texts.shape[1] != 1:
            raise DataError(
                f"TextVectorization {self.name!r} takes one string per sample, got {texts.shape[1]}"
            )
        return [
            tt.tokenize(str(text), c["standardize"], c["split"], c["ngrams"])
            for text in texts[:, 0]
        ]

    def _forward(self, weights, inputs, ctx):
        c = self.config
        state = {k: weights[k] for k in STATE if k in weights} or self.initial_state()
        vocab = [str(t) for t in state["vocabulary"]]
        documents = self.tokens(inputs[0])
        if c["output_mode"] == "int":
            ids = tt.encode_ids(documents, vocab, c["output_sequence_length"])
            return ids.astype(np.float32), None
        width = self.width() or len(vocab)
        idf = state.get("idf_weights")
        return tt.encode_counts(documents, vocab, width, c["output_mode"], idf), None

    def _backward(self, weights, cache, grad):
        return [None], {}


class VocabularyAdapter:
    """Counts the tokens of the training strings batch by batch; :meth:`result` is the
    learned state (Keras's ``adapt``: ``update_state`` per batch, ``finalize_state``)."""

    def __init__(self, layer: TextVectorization):
        c = layer.config
        self.layer = layer
        self.counter = tt.VocabularyCounter(c["max_tokens"], c["output_mode"])

    def add(self, x: np.ndarray) -> None:
        self.counter.add(self.layer.tokens(x))

    def result(self) -> dict[str, np.ndarray]:
        c = self.layer.config
        vocab, idf = self.counter.result()
        state = {"vocabulary": np.array(vocab, dtype=str)}
        if idf is not None:
            pad = c["max_tokens"] if c["pad_to_max_tokens"] else None
            state["idf_weights"] = np.pad(idf, (0, max(0, (pad or 0) - len(idf))))
        return state


def _strings(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` as a unicode array (bytes decoded as UTF-8); anything else is refused."""
    x = np.asarray(x)
    if x.dtype.kind == "U":
        return x
    if x.dtype.kind == "S":
        return np.char.decode(x, "utf-8")
    if x.dtype.kind == "O" and all(isinstance(v, str) for v in x.reshape(-1)):
        return x.astype(str)
    raise DataError(
        f"TextVectorization {name!r} needs strings (an Input of dtype string), got {x.dtype}"
    )


def learned_params(params: dict, state: dict[str, np.ndarray]) -> dict:
    """A TextVectorization's ``params`` with its state (a learned vocabulary, and idf
    weights) written in as ``vocabulary`` and ``idf_weights``, special tokens first, as
    Keras's ``set_vocabulary`` takes them: what an export writes for a trained block."""
    out = dict(params)
    vocab = [str(t) for t in state["vocabulary"]]
    out["vocabulary"] = vocab
    if "idf_weights" in state:
        out["idf_weights"] = [float(v) for v in state["idf_weights"][: len(vocab)]]
    return out
