"""Training on a folder of images streamed from disk: peak memory, throughput, waiting.

    python benchmarks/folder_stream.py                    # 60,000 images of 64x64x3
    python benchmarks/folder_stream.py --images 6000      # a quicker run
    python benchmarks/folder_stream.py --keep /tmp/imgs   # reuse (or keep) the folder
    python benchmarks/folder_stream.py --no-cache         # decode the PNG files every epoch

Writes ``--images`` random 64x64 RGB PNG files in 10 class sub-folders (each class
has its own tint, so there is something to learn) into a temporary folder, then
trains a small CNN for 2 epochs on them with nodenet's ``image_directory`` source,
streamed with the disk cache on (the cache goes to the same temporary folder).

Reports the peak resident memory of the whole process (``ru_maxrss``), the images
per second decoded and trained, and per epoch the share of the training time spent
waiting for the reader thread. Goals: peak RSS under 1 GB (the images as float32
would take 2.9 GB), waiting under 10 % of the time after the first epoch (epoch 2
reads the decoded cache, not the PNG files).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nodenet.engine.callbacks import Callback
from nodenet.graph.project import load
from nodenet.runner import build_run

SIZE = 64
CLASSES = 10


def write_images(root: Path, count: int, seed: int = 0) -> None:
    """``count`` random tinted 64x64 RGB PNG files, ``root/class_K/NNNNNN.png``."""
    rng = np.random.default_rng(seed)
    tints = rng.integers(40, 216, (CLASSES, 3))
    for k in range(CLASSES):
        (root / f"class_{k}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        k = i % CLASSES
        noise = rng.integers(-40, 41, (SIZE, SIZE, 3))
        pixels = np.clip(tints[k] + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"class_{k}" / f"{i:06d}.png", compress_level=1)


def project_doc(folder: Path, epochs: int, cache: bool = True) -> dict:
    layers = [
        ("img", "Input", {"shape": [SIZE, SIZE, 3]}),
        (
            "conv_1",
            "Conv2D",
            {"filters": 8, "kernel_size": [3, 3], "strides": [2, 2], "activation": "relu"},
        ),
        ("pool_1", "MaxPooling2D", {"pool_size": [2, 2]}),
        ("conv_2", "Conv2D", {"filters": 16, "kernel_size": [3, 3], "activation": "relu"}),
        ("pool_2", "GlobalAveragePooling2D", {}),
        ("probs", "Dense", {"units": CLASSES, "activation": "softmax"}),
        ("label", "Output", {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}),
    ]
    nodes = [{"id": i, "type": t, "params": p} for i, t, p in layers]
    edges = [{"from": a[0], "to": b[0], "port": 0} for a, b in itertools.pairwise(layers)]
    return {
        "format": "nodenet-project",
        "version": 1,
        "name": "folder_stream",
        "nodes": nodes,
        "edges": edges,
        "training": {"epochs": epochs, "batch_size": 64, "seed": 1, "validation_split": 0.0},
        "data": {
            "source": {
                "kind": "image_directory",
                "path": str(folder),
                "image_size": [SIZE, SIZE],
                "cache": cache,
            },
            "preprocess": {"scale": 1 / 255},
        },
    }


class EpochWaits(Callback):
    """The reader's waiting time and the training time of each epoch."""

    def __init__(self, stats):
        self.stats, self.rows = stats, []

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.waited = time.perf_counter(), self.stats.wait_seconds
        self.decoded, self.cached = self.stats.decoded, self.stats.from_cache

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        waited = self.stats.wait_seconds - self.waited
        self.rows.append(
            {
                "epoch": epoch + 1,
                "seconds": round(seconds, 2),
                "wait_seconds": round(waited, 2),
                "wait_share": round(waited / seconds, 4),
                "decoded": self.stats.decoded - self.decoded,
                "from_cache": self.stats.from_cache - self.cached,
                "loss": round(logs["loss"], 4),
            }
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="write (or reuse) the folder here")
    parser.add_argument("--no-cache", action="store_true", help="decode the files every epoch")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="nodenet-folder-bench-"))
    folder = args.keep or work / "images"
    os.environ["NODENET_CACHE_DIR"] = str(work / "cache")
    try:
        start = time.perf_counter()
        if not folder.exists():
            write_images(folder, args.images)
        written = time.perf_counter() - start
        rss_before = peak_rss_mb()
        (work / "bench.json").write_text(
            json.dumps(project_doc(folder.resolve(), args.epochs, not args.no_cache))
        )
        run = build_run(load(work / "bench.json"), allow_outside_data=True)
        column = run.data.train["inputs"]["img"]
        waits = EpochWaits(column.source.stats)
        start = time.perf_counter()
        run.fit(callbacks=[waits])
        seconds = time.perf_counter() - start
        result = {
            "images": len(column),
            "as_float32_gb": round(len(column) * SIZE * SIZE * 3 * 4 / 1e9, 2),
            "write_seconds": round(written, 1),
            "train_seconds": round(seconds, 1),
            "images_per_second": round(len(column) * args.epochs / seconds, 1),
            "peak_rss_mb_before_training": round(rss_before, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "epochs": waits.rows,
            "skipped": column.source.skipped.count,
        }
        print(json.dumps(result, indent=2))
        ok = result["peak_rss_mb"] < 1024 and all(r["wait_share"] < 0.10 for r in waits.rows[1:])
        print("goals met" if ok else "goals NOT met", file=sys.stderr)
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
