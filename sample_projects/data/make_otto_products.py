"""Build otto_products.csv: the data of the Otto-style product classifier sample.

    python sample_projects/data/make_otto_products.py

Laid out like the Otto Group Product Classification data: an ``id`` column, 93 count
features ``feat_1`` .. ``feat_93`` and a ``target`` ``Class_1`` .. ``Class_9``, with Otto's
unbalanced class shares (Class_2 and Class_6 common, Class_1 rare). The counts are generated,
not real: each class has a rate per feature (a shared base rate, raised or lowered on a third
of the features for that class; Class_3 borrows most of its rates from Class_2, so the two
are easily confused, as in Otto), each product an overall activity (gamma, mean 1), and a
count is Poisson with rate ``activity * rate``: mostly zeros and small numbers. Learnable,
not trivially: a small MLP reaches about 0.8 accuracy. Deterministic (seed 1671).
"""

from pathlib import Path

import numpy as np

ROWS, FEATURES, SEED = 3000, 93, 1671
# the class shares of Otto's training set (61,878 products)
SHARES = np.array([1929, 16122, 8004, 2691, 2739, 14135, 2839, 8464, 4955], dtype=float)
SPREAD = 1.0  # how far a class's rate moves from the base rate, in log units
INFORMATIVE = 1 / 3  # the fraction of features whose rate a class moves
BORROWED = 0.7  # how much of Class_2's rates Class_3 takes


def class_rates(rng: np.random.Generator) -> np.ndarray:
    """Rates (9, 93): a base rate per feature, moved up or down per class on some features."""
    base = rng.gamma(0.7, 0.6, FEATURES)
    moved = rng.random((len(SHARES), FEATURES)) < INFORMATIVE
    rates = base * np.exp(SPREAD * rng.standard_normal((len(SHARES), FEATURES)) * moved)
    rates[2] = BORROWED * rates[1] + (1 - BORROWED) * rates[2]
    return rates


def products(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Counts (ROWS, 93) int and class labels (ROWS,) 0..8."""
    rates = class_rates(rng)
    labels = rng.choice(len(SHARES), size=ROWS, p=SHARES / SHARES.sum())
    activity = rng.gamma(2.0, 0.5, (ROWS, 1))
    return rng.poisson(activity * rates[labels]), labels


def main() -> None:
    counts, labels = products(np.random.default_rng(SEED))
    header = ["id", *(f"feat_{i + 1}" for i in range(FEATURES)), "target"]
    lines = [",".join(header)]
    for i, (row, label) in enumerate(zip(counts, labels, strict=True)):
        lines.append(f"{i + 1},{','.join(map(str, row))},Class_{label + 1}")
    out = Path(__file__).with_name("otto_products.csv")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}: {ROWS} products, {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
