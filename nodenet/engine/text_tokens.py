"""Keras's TextVectorization rules on plain Python strings: one implementation for the block
and for text folders.

Keras (``keras/src/layers/preprocessing/text_vectorization.py`` and ``index_lookup.py``)
runs these steps with TensorFlow string ops; they are written here as they behave there:

- standardize: ``tf.strings.lower`` lowers ASCII letters only (its default encoding), then
  :data:`PUNCTUATION` (Keras's regex, ``,-\\.`` being the range ``,`` ``-`` ``.``) is removed;
- split: ``"whitespace"`` is ``tf.strings.split``, which splits on runs of ASCII whitespace
  and drops empty pieces; ``"character"`` gives the Unicode code points;
- ngrams: ``tf.strings.ngrams`` with each width in turn, joined by a space, none of a width
  longer than the text;
- vocabulary: tokens counted over the data, the special tokens taken out, sorted by count
  then by the token's UTF-8 bytes, both descending (``np.lexsort(...)[::-1]``), cut to
  ``max_tokens`` less the special tokens;
- idf: ``log(1 + documents / (1 + documents holding the token))`` in float64, cast to
  float32; the OOV token gets the mean of the learned ones.

Index 0 is the mask ``""`` (padding) and 1 the OOV token ``"[UNK]"`` for ``"int"`` output;
the other modes have no mask index and the OOV token at 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
ASCII_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
MASK, OOV = "", "[UNK]"
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SPLIT = ("whitespace", "character", None)
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")


def standardize(text: str, mode: str | None = "lower_and_strip_punctuation") -> str:
    """``text`` lowered (ASCII letters) and/or stripped of Keras's punctuation."""
    if mode in ("lower", "lower_and_strip_punctuation"):
        text = text.translate(ASCII_LOWER)
    if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = PUNCTUATION.sub("", text)
    return text


def split(text: str, mode: str | None = "whitespace") -> list[str]:
    """The pieces of ``text``: on ASCII whitespace runs, per character, or the whole."""
    if mode == "whitespace":
        return [piece for piece in ASCII_WHITESPACE.split(text) if piece]
    if mode == "character":
        return list(text)
    return [text]


def ngram_widths(ngrams: int | Sequence[int] | None) -> tuple[int, ...] | None:
    """Keras's ``ngrams`` argument as widths: ``n`` means 1 to ``n``."""
    if ngrams is None:
        return None
    if isinstance(ngrams, int):
        return tuple(range(1, ngrams + 1))
    return tuple(ngrams)


def with_ngrams(tokens: list[str], widths: tuple[int, ...] | None) -> list[str]:
    """Each width's n-grams in turn (``tf.strings.ngrams`` with separator " ")."""
    if widths is None:
        return tokens
    return [
        " ".join(tokens[i : i + width]) for width in widths for i in range(len(tokens) - width + 1)
    ]


def tokenize(
    text: str,
    standardize_mode: str | None = "lower_and_strip_punctuation",
    split_mode: str | None = "whitespace",
    ngrams: int | Sequence[int] | None = None,
) -> list[str]:
    """The tokens TextVectorization looks up for one string."""
    tokens = split(standardize(text, standardize_mode), split_mode)
    return with_ngrams(tokens, ngram_widths(ngrams))


def special_tokens(output_mode: str) -> list[str]:
    """The tokens before the learned ones: mask and OOV for ``"int"``, else OOV only."""
    return [MASK, OOV] if output_mode == "int" else [OOV]


def ranked(counts: Counter, max_learned: int | None) -> list[str]:
    """Tokens by count, ties by UTF-8 bytes, both descending; at most ``max_learned``."""
    order = sorted(counts, key=lambda t: (counts[t], t.encode("utf-8")), reverse=True)
    return order if max_learned is None else order[:max_learned]


def vocabulary(
    documents: Iterable[list[str]], max_tokens: int | None, output_mode: str = "int"
) -> list[str]:
    """The vocabulary ``adapt`` learns from tokenized ``documents``, special tokens first."""
    counts = Counter(token for tokens in documents for token in tokens)
    return _with_specials(counts, max_tokens, output_mode)


def _with_specials(counts: Counter, max_tokens: int | None, output_mode: str) -> list[str]:
    specials = special_tokens(output_mode)
    for token in (MASK, OOV):
        counts.pop(token, None)
    learned = ranked(counts, None if not max_tokens else max_tokens - len(specials))
    return [*specials, *learned]


class VocabularyCounter:
    """Token counts (and document counts, for ``tf_idf``) gathered batch by batch, as
    Keras's ``update_state`` gathers them; :meth:`result` is its ``finalize_state``."""

    def __init__(self, max_tokens: int | None, output_mode: str):
        self.max_tokens, self.output_mode = max_tokens, output_mode
        self.counts: Counter = Counter()
        self.documents: Counter = Counter()
        self.n_documents = 0

    def add(self, documents: Iterable[list[str]]) -> None:
        for tokens in documents:
            self.counts.update(tokens)
            if self.output_mode == "tf_idf":
                self.documents.update(set(tokens))
                self.n_documents += 1

    def result(self) -> tuple[list[str], np.ndarray | None]:
        """The vocabulary, and for ``tf_idf`` the idf weights (float32, one per entry)."""
        vocab = _with_specials(Counter(self.counts), self.max_tokens, self.output_mode)
        if self.output_mode != "tf_idf":
            return vocab, None
        learned = vocab[len(special_tokens(self.output_mode)) :]
        idf = np.array(
            [math.log(1 + self.n_documents / (1 + self.documents[t])) for t in learned],
            np.float64,
        ).astype(np.float32)
        oov = np.mean(idf, dtype=np.float32) if idf.size else np.float32(0.0)
        return vocab, np.concatenate([np.array([oov], np.float32), idf])


def full_vocabulary(given: Sequence[str], output_mode: str) -> tuple[list[str], bool]:
    """A vocabulary given as a parameter, with the special tokens in front (added unless
    it starts with them); and whether it did (Keras's ``found_special_tokens``)."""
    specials = special_tokens(output_mode)
    found = list(given[: len(specials)]) == specials
    return (list(given) if found else [*specials, *given]), found


def given_problem(given: Sequence[str], output_mode: str, max_tokens: int | None) -> str | None:
    """Why Keras's ``set_vocabulary`` refuses ``given``, or None."""
    if not given:
        return "the vocabulary must not be empty"
    full, _ = full_vocabulary(given, output_mode)
    tokens = full[len(special_tokens(output_mode)) :]
    repeated = sorted(t for t, n in Counter(tokens).items() if n > 1)
    if repeated:
        return f"the vocabulary repeats {repeated[0]!r}"
    if MASK in tokens:
        return 'the vocabulary holds the mask token "" after its start'
    if max_tokens is not None and len(full) > max_tokens:
        return f"the vocabulary has {len(full)} entries, more than max_tokens={max_tokens}"
    return None


def full_idf(given_idf: Sequence[float], found: bool, pad_to: int | None) -> np.ndarray:
    """Given idf weights as Keras pads them: the mean in front for the OOV token (unless
    the vocabulary held its special tokens), zeros behind up to ``pad_to``."""
    idf = np.asarray(given_idf, np.float64)
    front = 0 if found else 1
    back = 0 if pad_to is None else pad_to - front - idf.size
    value = 0.0 if found else float(np.average(idf))
    padded = np.pad(idf, (front, max(back, 0)), constant_values=(value, 0.0))
    return padded.astype(np.float32)


def encode_ids(
    documents: Sequence[list[str]], vocab: Sequence[str], length: int | None
) -> np.ndarray:
    """``"int"`` output: (len(documents), length) ids, 0 padding at the end, cut at
    ``length``; ``None`` pads to the longest document (at least 1 column stays 0-wide
    only when every document is empty)."""
    lookup = {t: i for i, t in enumerate(vocab)}
    lookup[MASK] = 0
    rows = [[lookup.get(t, 1) for t in tokens] for tokens in documents]
    width = length if length is not None else max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width), np.int64)
    for i, row in enumerate(rows):
        row = row[:width]
        out[i, : len(row)] = row
    return out


def encode_counts(
    documents: Sequence[list[str]],
    vocab: Sequence[str],
    depth: int,
    output_mode: str,
    idf: np.ndarray | None = None,
) -> np.ndarray:
    """``"multi_hot"``, ``"count"`` or ``"tf_idf"`` output: (len(documents), depth) float32;
    the OOV token is index 0; the empty token (Keras's mask) counts nowhere."""
    lookup = {t: i for i, t in enumerate(vocab)}
    out = np.zeros((len(documents), depth), np.float32)
    for i, tokens in enumerate(documents):
        for token in tokens:
            if token != MASK:
                out[i, lookup.get(token, 0)] += 1.0
    if output_mode == "multi_hot":
        return np.minimum(out, 1.0)
    if output_mode == "tf_idf":
        weights = np.zeros(depth, np.float32)
        weights[: min(depth, len(idf))] = idf[:depth]
        return out * weights
    return out
