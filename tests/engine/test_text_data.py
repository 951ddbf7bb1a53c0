"""The generated ``reviews`` corpus: seeded, balanced, padded, and negations flip the sentiment.

Labels are recomputed here from the words themselves (an independent reading of the
rule: each sentiment word counts +1 or -1, reversed when ``not`` comes just before
it), and compared with what the dataset says.
"""

from __future__ import annotations

import itertools

import numpy as np

from nodenet.engine.data import load_builtin

POSITIVE = {"good", "great", "excellent", "wonderful", "love", "enjoyed", "fun", "brilliant"}
POSITIVE |= {"perfect", "best"}
NEGATIVE = {"bad", "awful", "terrible", "boring", "hate", "poor", "worst", "dull", "waste"}
NEGATIVE |= {"annoying"}


def reviews(seed: int = 1671, **options):
    return load_builtin("reviews", {"samples": 2000, **options}, seed)


def words_of(tokens: np.ndarray, vocabulary: list[str]) -> list[str]:
    return [vocabulary[t] for t in tokens if t != 0]


def score(words: list[str], negations: bool = True) -> int:
    total = 0
    for i, word in enumerate(words):
        value = (word in POSITIVE) - (word in NEGATIVE)
        flipped = negations and i > 0 and words[i - 1] == "not"
        total += -value if flipped else value
    return total


def test_the_same_seed_gives_the_same_reviews_and_another_seed_others():
    a, b, c = reviews(3), reviews(3), reviews(4)
    for name in ("x", "y"):
        assert a.arrays[name].tobytes() == b.arrays[name].tobytes()
    assert not np.array_equal(a.arrays["x"], c.arrays["x"])


def test_reviews_are_int32_token_rows_padded_in_front_with_two_classes():
    ds = reviews(samples=500, maxlen=16, min_length=5)
    x, y = ds.arrays["x"], ds.arrays["y"]
    assert x.shape == (500, 16) and x.dtype == np.int32
    assert y.shape == (500,) and set(np.unique(y)) == {0, 1}
    assert ds.meta.classes["y"] == ["negative", "positive"]
    lengths = (x != 0).sum(axis=1)
    assert lengths.min() >= 5 and lengths.max() == 16
    for row, n in zip(x, lengths, strict=True):  # padding first, then n words
        assert not row[: 16 - n].any() and row[16 - n :].all()


def test_the_labels_are_balanced():
    share = reviews(samples=4000).arrays["y"].mean()
    assert 0.45 <= share <= 0.55


def test_the_vocabulary_is_in_the_meta_and_covers_every_token():
    ds = reviews()
    vocabulary = ds.meta.extra["vocabulary"]
    assert vocabulary[0] == "<pad>" and len(vocabulary) == len(set(vocabulary)) == 42
    assert POSITIVE | NEGATIVE | {"not"} <= set(vocabulary)
    assert set(np.unique(ds.arrays["x"])) == set(range(42)), "every word is used"


def test_each_label_follows_the_words_with_not_flipping_the_next_one():
    ds = reviews()
    vocabulary = ds.meta.extra["vocabulary"]
    for tokens, label in zip(ds.arrays["x"], ds.arrays["y"], strict=True):
        total = score(words_of(tokens, vocabulary))
        assert total != 0 and int(total > 0) == label, words_of(tokens, vocabulary)


def test_word_order_matters_a_bag_of_words_misreads_the_negations():
    ds = reviews()
    vocabulary = ds.meta.extra["vocabulary"]
    texts = [words_of(tokens, vocabulary) for tokens in ds.arrays["x"]]
    negated = [
        any(a == "not" and b in POSITIVE | NEGATIVE for a, b in itertools.pairwise(t))
        for t in texts
    ]
    assert np.mean(negated) > 0.2, "many reviews negate a sentiment word"
    ignoring_not = np.array([score(t, negations=False) > 0 for t in texts])
    wrong = ignoring_not != ds.arrays["y"].astype(bool)
    assert 0.05 < wrong.mean() < 0.3
    rng = np.random.default_rng(0)
    shuffled = [score(list(rng.permutation(t))) > 0 for t in texts]
    assert np.mean(np.array(shuffled) != ds.arrays["y"].astype(bool)) > 0.05
