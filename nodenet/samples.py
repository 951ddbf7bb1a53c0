"""The bundled sample projects: what each one is, what it promises, and loading it.

A sample is an ordinary project file in ``sample_projects/`` with one extra
top-level key, ``"sample"`` (kept by :mod:`nodenet.graph.project` like any key it
does not know)::

    "sample": {
      "title": "MNIST: two hidden layers of 128",
      "description": "One paragraph shown in File > Open Sample and on the welcome page.",
      "order": 20,
      "promise": {"output": "digit", "metric": "accuracy", "at_least": 0.95},
      "fallback": {
        "missing": "mnist_5k",
        "data": { ...a whole "data" section... },
        "shapes": {"pixels": [64]},
        "promise": {"output": "digit", "metric": "accuracy", "at_least": 0.95}
      }
    }

``promise`` is the test result the sample reaches when trained to the end
(``at_least`` for scores, ``at_most`` for errors); ``benchmarks/train_samples.py``
checks every promise. ``fallback`` lets a sample written for a dataset of the
``datasets`` extra run without it: when the built-in dataset ``missing`` is
not installed, :func:`load_sample` swaps in the fallback's data section, Input
shapes and promise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodenet.engine import builtin_datasets
from nodenet.engine.data.real import EXTRA_HINT
from nodenet.errors import NodenetError, ProjectFileError
from nodenet.graph.project import Project, load
from nodenet.safeio import bundled_samples


@dataclass(frozen=True)
class Promise:
    """A sample's expected test result: ``metric`` of ``output`` at least / at most ``bound``."""

    output: str
    metric: str
    bound: float
    higher_is_better: bool = True

    def met_by(self, value: float) -> bool:
        return value >= self.bound if self.higher_is_better else value <= self.bound

    def __str__(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        return f"{self.output} {self.metric} {sign} {self.bound:g}"


@dataclass(frozen=True)
class Sample:
    """One bundled sample project (as written, before any fallback)."""

    name: str  # the file's stem, e.g. "digits_mlp"
    path: Path
    title: str
    description: str
    order: int
    promise: Promise | None
    fallback: dict[str, Any] | None

    def uses_fallback(self) -> bool:
        """True when the dataset the sample is written for is not installed here."""
        return bool(self.fallback) and not _installed(self.fallback.get("missing"))

    def effective_promise(self) -> Promise | None:
        """The promise that holds on this machine (the fallback's when it applies)."""
        if self.uses_fallback() and self.fallback.get("promise"):
            return _promise(self.fallback["promise"], self.path)
        return self.promise


HISTORY_SUFFIX = ".history.json"  # what `nodenet train` writes beside a project's weights


def sample_dir() -> Path | None:
    """The bundled samples: inside the package if installed so, else the source tree."""
    folders = bundled_samples()
    return folders[0] if folders else None


def list_samples(skip_unreadable: bool = False) -> list[Sample]:
    """Every sample, in its ``order`` (then by name). Files without a ``sample`` key are skipped.

    A file that cannot be read raises, unless ``skip_unreadable`` (the GUI's galleries)
    leaves it out.
    """
    folder = sample_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder is not None else []:
        if path.name.endswith(HISTORY_SUFFIX):  # a run's history, written beside a sample
            continue
        try:
            found.append(read_sample(path))
        except NodenetError:
            if not skip_unreadable:
                raise
    return sorted((s for s in found if s is not None), key=lambda s: (s.order, s.name))


def find_sample(name: str) -> Sample:
    """The sample called ``name`` (file stem); ProjectFileError naming the choices if none."""
    samples = list_samples()
    for sample in samples:
        if sample.name == name:
            return sample
    names = ", ".join(s.name for s in samples)
    raise ProjectFileError(f"no sample called {name!r}; the samples are: {names}")


def read_sample(path: Path) -> Sample | None:
    """The :class:`Sample` described by project file ``path``, or None if it has no metadata."""
    meta = load(path).extra.get("sample")
    if not isinstance(meta, dict):
        return None
    where = f"{path.name}: sample"
    for key in ("title", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise ProjectFileError(f"{where}.{key} must be a non-empty text")
    promise = meta.get("promise")
    fallback = meta.get("fallback")
    if fallback is not None and not isinstance(fallback, dict):
        raise ProjectFileError(f"{where}.fallback must be an object")
    return Sample(
        name=path.stem,
        path=path,
        title=meta["title"].strip(),
        description=" ".join(meta["description"].split()),
        order=int(meta.get("order", 1000)),
        promise=_promise(promise, path) if promise is not None else None,
        fallback=copy.deepcopy(fallback),
    )


def load_sample(sample: Sample | str) -> Project:
    """The sample's project, with its fallback applied when its dataset is not installed.

    The project keeps ``path`` so relative data paths resolve, but it is a
    copy: saving it is the caller's choice (the GUI asks for a new name).
    """
    if isinstance(sample, str):
        sample = find_sample(sample)
    return with_fallback(load(sample.path))[0]


def with_fallback(project: Project) -> tuple[Project, str | None]:
    """``project``, with its sample fallback applied if its dataset is not installed here.

    Returns the project (changed in place) and a sentence saying what was swapped,
    or None when nothing was. Projects without sample metadata are returned as they are.
    """
    meta = project.extra.get("sample")
    fallback = meta.get("fallback") if isinstance(meta, dict) else None
    if not isinstance(fallback, dict) or _installed(fallback.get("missing")):
        return project, None
    project.data = copy.deepcopy(fallback["data"])
    for node_id, shape in fallback.get("shapes", {}).items():
        project.node(node_id).params["shape"] = list(shape)
    source = project.data.get("source", {}).get("name", "another dataset")
    note = (
        f"{project.name}: the dataset {fallback.get('missing')!r} is not installed "
        f"({EXTRA_HINT}); running the sample on {source!r} instead"
    )
    return project, note


def _installed(dataset: object) -> bool:
    return any(d["name"] == dataset and d["available"] for d in builtin_datasets())


def _promise(doc: Any, path: Path) -> Promise:
    where = f"{path.name}: sample.promise"
    if not isinstance(doc, dict) or not {"output", "metric"} <= doc.keys():
        raise ProjectFileError(f"{where} needs 'output', 'metric' and 'at_least' or 'at_most'")
    if "at_least" in doc:
        return Promise(doc["output"], doc["metric"], float(doc["at_least"]), True)
    if "at_most" in doc:
        return Promise(doc["output"], doc["metric"], float(doc["at_most"]), False)
    raise ProjectFileError(f"{where} needs 'at_least' or 'at_most'")
