"""Write the folders of the folder-dataset samples (they are also written on first use).

    python sample_projects/data/make_sample_folders.py

``mnist_folder/``: the 5,000 images of the built-in ``mnist_5k`` as 28x28 grayscale
PNG files, one sub-folder per digit, ``DIGIT/NNNN.png`` with ``NNNN`` the image's row
in ``mnist_5k`` (needs the ``datasets`` extra). ``reviews_folder/``: 3,000 reviews of
the built-in ``reviews`` dataset (seed 1671) as text files in ``negative/`` and
``positive/``. Deterministic; an existing folder is left as it is. Each holds a
``.gitignore``, so the generated files are never committed.
"""

from pathlib import Path

from nodenet.engine.data.sample_folders import GENERATED, ensure_sample_folder


def main() -> None:
    here = Path(__file__).resolve().parent
    for name in GENERATED:
        folder = here / name
        written = ensure_sample_folder(folder)
        print(f"{'wrote' if written else 'kept'} {folder}")


if __name__ == "__main__":
    main()
