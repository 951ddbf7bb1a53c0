"""The folders of the bundled folder-dataset samples, written on first use.

Thousands of small files do not belong in the source tree, so the samples'
folders are generated from data nodenet already has, the first time a sample
reads them (or by ``python sample_projects/data/make_sample_folders.py``):

``mnist_folder``
    the 5,000 images of the built-in ``mnist_5k`` as 28x28 grayscale PNG files,
    ``DIGIT/NNNN.png`` where ``NNNN`` is the image's row in ``mnist_5k``
    (needs the ``datasets`` extra).
``reviews_folder``
    3,000 reviews of the built-in ``reviews`` dataset (seed 1671) as text files,
    ``negative/NNNN.txt`` and ``positive/NNNN.txt``.

Only a missing folder of that name directly inside a bundled sample's ``data``
folder is generated; a folder is written under a temporary name and renamed
when complete, and holds a ``.gitignore`` so it is never committed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from nodenet.atomic import write_into_new_folder
from nodenet.errors import DataError
from nodenet.safeio import bundled_samples

REVIEWS_SAMPLES = 3000
REVIEWS_SEED = 1671


def write_mnist_folder(dest: Path) -> None:
    """The 5,000 ``mnist_5k`` images as ``dest/DIGIT/NNNN.png`` (8-bit grayscale)."""
    from nodenet.engine.data.prepare import load_builtin

    ds = load_builtin("mnist_5k", {})
    x, y = ds.arrays["x"], ds.arrays["y"]
    for digit in range(10):
        (dest / str(digit)).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(dest / str(int(label)) / f"{i:04d}.png")


def write_reviews_folder(dest: Path) -> None:
    """``REVIEWS_SAMPLES`` generated reviews as ``dest/{negative,positive}/NNNN.txt``."""
    from nodenet.engine.data.prepare import load_builtin

    ds = load_builtin("reviews", {"samples": REVIEWS_SAMPLES, "maxlen": 20}, REVIEWS_SEED)
    words = ds.meta.extra["vocabulary"]
    classes = ds.meta.classes["y"]
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
    for i, (tokens, label) in enumerate(zip(ds.arrays["x"], ds.arrays["y"], strict=True)):
        text = " ".join(words[t] for t in tokens if t != 0)
        sentence = text[:1].upper() + text[1:] + ".\n"
        write_into_new_folder(dest / classes[int(label)] / f"{i:04d}.txt", sentence)


GENERATED: dict[str, Callable[[Path], None]] = {
    "mnist_folder": write_mnist_folder,
    "reviews_folder": write_reviews_folder,
}


def generated_sample(path: Path) -> bool:
    """Whether ``path`` is a bundled sample's generated folder (existing or not)."""
    if path.name not in GENERATED or path.parent.name != "data":
        return False
    parent = path.parent.parent.resolve()
    return any(parent == root for root in bundled_samples())


def ensure_sample_folder(path: Path) -> bool:
    """Write the bundled sample folder ``path`` if it is one and missing; True if written."""
    if path.exists() or not generated_sample(path):
        return False
    temp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    try:
        GENERATED[path.name](temp)
        write_into_new_folder(
            temp / ".gitignore", "# generated on first use; see sample_folders.py\n*\n"
        )
        os.replace(temp, path)
    except OSError as err:
        raise DataError(
            f"{path}: the sample's folder cannot be written ({err.strerror or err})"
        ) from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return True
