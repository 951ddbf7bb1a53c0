"""Write what the `nodenet` command prints for every sample project into a folder.

Run it before and after a change that must not alter results, then compare:

    python3 scripts/output_snapshot.py /tmp/before
    ... change ...
    python3 scripts/output_snapshot.py /tmp/after
    diff -r /tmp/before /tmp/after

For each sample: ``summary`` (table and JSON), ``train --epochs 1`` with the
project's seed (the weights' checksum and the history without wall times),
``predict`` on seeded random inputs, and both exports with the trained weights.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "sample_projects").glob("*.json"))
TIMED = ("time", "seconds", "elapsed", "duration")


def nodenet(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "nodenet", *args], capture_output=True, text=True, check=False
    )
    return f"exit {done.returncode}\n{done.stdout}"


def untimed(value):
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if not any(t in k for t in TIMED)}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def random_inputs(sample: Path, path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for node in json.loads(sample.read_text())["nodes"]:
        if node["type"] == "Input":
            params = node.get("params", {})
            shape = [4, *params["shape"]]
            integer = str(params.get("dtype", "float32")).startswith("int")
            arrays[node["id"]] = rng.integers(0, 3, shape) if integer else rng.random(shape)
    np.savez(path, **arrays)


def write(path: Path, work: Path, text: str) -> None:
    """``text`` with the temporary folder's name replaced, so runs compare equal."""
    path.write_text(text.replace(str(work), "<work>"))


def snapshot(sample: Path, out: Path, work: Path) -> None:
    stem = sample.stem
    write(out / f"{stem}.summary.txt", work, nodenet("summary", str(sample)))
    summary_json = nodenet("summary", str(sample), "--json")
    write(out / f"{stem}.summary.json", work, summary_json)
    weights, history = work / f"{stem}.weights.npz", work / f"{stem}.history.json"
    train = nodenet(
        "train",
        str(sample),
        "--epochs",
        "1",
        "--quiet",
        "--weights-out",
        str(weights),
        "--history-out",
        str(history),
        "--allow-outside-data",
    )
    lines = [train.splitlines()[0]]
    if weights.exists():
        with np.load(weights, allow_pickle=False) as arrays:
            for key in sorted(arrays.files):
                lines.append(f"{key} {hashlib.sha256(arrays[key].tobytes()).hexdigest()[:16]}")
        lines.append(json.dumps(untimed(json.loads(history.read_text())), sort_keys=True))
    write(out / f"{stem}.train.txt", work, "\n".join(lines) + "\n")
    try:
        random_inputs(sample, work / "x.npz")
        predicted = work / "y.npz"
        text = nodenet(
            "predict",
            str(sample),
            "--weights",
            str(weights),
            "--input",
            str(work / "x.npz"),
            "--output",
            str(predicted),
        )
        if predicted.exists():
            with np.load(predicted, allow_pickle=False) as arrays:
                text += "".join(
                    f"{k} {np.round(arrays[k], 5).tolist()}\n" for k in sorted(arrays.files)
                )
            predicted.unlink()
    except (KeyError, ValueError) as error:
        text = f"no inputs: {error}\n"
    write(out / f"{stem}.predict.txt", work, text)
    for target in ("keras", "pytorch"):
        code = work / f"{stem}_{target}.py"
        status = nodenet(
            "export", str(sample), "--to", target, "--weights", str(weights), "-o", str(code)
        )
        write(
            out / f"{stem}.export-{target}.txt",
            work,
            status + (code.read_text() if code.exists() else ""),
        )


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="nodenet-snapshot-"))
    for sample in SAMPLES:
        snapshot(sample, out, work)
        print(sample.stem, file=sys.stderr)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
