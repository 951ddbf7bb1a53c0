"""Build digits_two_heads.npz: the data of the two-input, two-output sample.

    python sample_projects/data/make_digits_two_heads.py

From scikit-learn's bundled digits (1,797 images of 8x8): ``image`` (8, 8, 1) scaled to
[0, 1]; ``meta`` (4,) the ink in each quadrant of the image; targets ``digit`` (the class)
and ``ink`` (the total ink in pixel units less 20, divided by 2: about zero mean and unit
spread, so its squared error weighs like the class loss). Deterministic.
"""

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    digits = load_digits()
    image = (digits.images / 16.0).astype(np.float32)[..., None]
    quadrants = [image[:, :4, :4], image[:, :4, 4:], image[:, 4:, :4], image[:, 4:, 4:]]
    meta = np.stack([q.sum(axis=(1, 2, 3)) / 16.0 for q in quadrants], axis=1)
    ink = ((image.sum(axis=(1, 2, 3)) - 20.0) / 2.0)[:, None]
    out = Path(__file__).with_name("digits_two_heads.npz")
    np.savez_compressed(
        out,
        image=image,
        meta=meta.astype(np.float32),
        digit=digits.target.astype(np.int32),
        ink=ink.astype(np.float32),
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
