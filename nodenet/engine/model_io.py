"""What a :class:`nodenet.engine.model.Model` takes in and gives out: its weights (copied
out and in, saved to and read from ``.npz``) and its input arrays (checked and cast).

:class:`WeightsIO` and :class:`InputsIO` are mixins of ``Model``, written against its
``order``, ``specs``, ``layers``, ``weights``, ``shapes`` and ``dtype``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nodenet.engine.layer import Layer, fmt_shape
from nodenet.errors import DataError, WeightsError
from nodenet.safeio import BUDGET_VARIABLE, fmt_bytes, memory_budget, size_of

if TYPE_CHECKING:
    from nodenet.engine.layer import WeightSpec

NUMERIC_KINDS = "biuf"  # booleans, integers and floats: what a model can take
INFERENCE_FACTOR = 3  # an inference batch is sized for this many times its blocks' outputs


class WeightsIO:
    """A model's weights keyed ``node_id/weight_name`` (Keras layouts), in and out."""

    order: list[str]
    specs: dict[str, list[WeightSpec]]
    layers: dict[str, Layer]
    weights: dict[str, dict[str, np.ndarray]]
    to_adapt: set[str]

    def get_weights(self) -> dict[str, np.ndarray]:
        """A copy of every weight, keyed ``node_id/weight_name``."""
        return {
            f"{node_id}/{name}": w.copy()
            for node_id, ws in self.weights.items()
            for name, w in ws.items()
        }

    def set_weights(self, flat: dict[str, np.ndarray], source: str = "weights") -> None:
        """Copy weights in; refuse, naming the weight, anything that does not match."""
        expected = {f"{i}/{s.name}": s.shape for i in self.order for s in self.specs[i]}
        states = {f"{i}/{n}": (i, n) for i in self.order for n in _state_names(self.layers[i])}
        missing = [k for k in [*expected, *states] if k not in flat]
        if missing:
            raise WeightsError(f"{source} has no {missing[0]!r} (the graph needs it)")
        extra = [k for k in flat if k not in expected and k not in states]
        if extra:
            raise WeightsError(f"{source} has {extra[0]!r}, which the graph does not have")
        for key, shape in expected.items():
            array = np.asarray(flat[key])
            if array.shape != tuple(shape):
                raise WeightsError(
                    f"{source}: {key!r} has shape {array.shape} but the graph needs {tuple(shape)}"
                )
            if array.dtype.kind not in "fiu":
                raise WeightsError(f"{source}: {key!r} is not numeric ({array.dtype})")
        state = self._checked_state(flat, states, source)
        self.to_adapt -= self._given_statistics(flat)
        for node_id, arrays in state.items():
            self.weights[node_id].update(arrays)
        for node_id in self.order:  # not key.split: an id inside a group holds "/" too
            for spec in self.specs[node_id]:
                array = np.asarray(flat[f"{node_id}/{spec.name}"], dtype=self.dtype)
                np.copyto(self.weights[node_id][spec.name], array)

    def _checked_state(
        self, flat: dict[str, np.ndarray], states: dict[str, tuple[str, str]], source: str
    ) -> dict[str, dict[str, np.ndarray]]:
        """The state arrays of ``flat`` per node (copies), each block's check passed."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for key, (node_id, name) in states.items():
            out.setdefault(node_id, {})[name] = np.array(flat[key])
        for node_id, arrays in out.items():
            problem = self.layers[node_id].check_state(arrays)
            if problem:
                raise WeightsError(f"{source}: {node_id!r}: {problem}")
        return out

    def _given_statistics(self, flat: dict[str, np.ndarray]) -> set[str]:
        """The blocks waiting to adapt (:mod:`nodenet.engine.adapt`) that ``flat`` gives
        other statistics than they hold: those come from a file, an import or a run and are
        kept. Given back their own fresh values (a model's weights set again with only some
        blocks changed), a block still adapts."""
        given = set()
        for node_id in self.to_adapt:
            for name, current in self.weights[node_id].items():
                value = np.asarray(flat[f"{node_id}/{name}"])
                if current.shape != value.shape or not np.array_equal(current, value):
                    given.add(node_id)
        return given

    def save_weights(self, path: str | os.PathLike) -> Path:
        """Write every weight to ``path`` (``.npz``) atomically.

        A failed write (no permission, a full disk) leaves any previous file intact
        and raises :class:`WeightsError` naming the file. Temporary files that an
        earlier, killed write left beside ``path`` are removed.
        """
        from nodenet.atomic import remove_stale_temps, write_file

        remove_stale_temps(path)  # left by a write killed before its rename
        buffer = io.BytesIO()
        np.savez(buffer, **self.get_weights())
        write_file(path, buffer.getvalue(), WeightsError)
        return Path(path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Read weights saved by :meth:`save_weights`; never unpickles anything.

        Each array's header is checked against the memory budget before it is read.
        """
        from nodenet.safeio import read_npz

        self.set_weights(read_npz(path, WeightsError), source=str(path))


class InputsIO:
    """A model's input arrays checked against its Inputs, cast, and sized to the budget."""

    input_ids: list[str]
    layers: dict[str, Layer]
    shapes: dict
    output_shapes: dict
    order: list[str]
    dtype: np.dtype

    def check_inputs(
        self, inputs: dict[str, np.ndarray], cast: bool = True
    ) -> dict[str, np.ndarray]:
        """The fed arrays after checking names, dtypes and shapes; cast to the model dtype
        unless ``cast`` is false (then :meth:`cast_batch` casts each batch as it is used,
        so a large uint8 input is never copied whole as float32)."""
        out = {}
        for node_id in self.input_ids:
            if node_id not in inputs:
                raise DataError(f"no data for the Input {node_id!r}")
            array = np.asarray(inputs[node_id])
            if self.layers[node_id].config["dtype"] == "string":
                if array.dtype.kind not in "US":
                    raise DataError(
                        f"{node_id}: this string Input needs text, but the data holds "
                        f"{array.dtype} values"
                    )
            elif array.dtype.kind not in NUMERIC_KINDS:
                hint = (
                    "; for text give the Input dtype string and a TextVectorization block"
                    if array.dtype.kind in "US"
                    else ""
                )
                raise DataError(
                    f"{node_id}: the data holds {array.dtype} values ({_kind_words(array)}), "
                    f"not numbers{hint}"
                )
            shape = self.shapes[node_id]
            if array.ndim != len(shape) + 1 or any(
                d is not None and d != a for d, a in zip(shape, array.shape[1:], strict=False)
            ):
                raise DataError(
                    f"{node_id}: the data has shape {fmt_shape(array.shape[1:])} "
                    f"but the Input has shape {fmt_shape(shape)}"
                )
            out[node_id] = array
        return self.cast_batch(out) if cast else out

    def cast_batch(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Checked inputs cast to what each Input takes (int32 or the model dtype)."""
        out = {}
        for node_id, array in inputs.items():
            dtype = self.layers[node_id].config["dtype"]
            if dtype == "string":  # text stays text; a TextVectorization reads it
                out[node_id] = array
                continue
            want = np.int32 if dtype == "int32" else self.dtype
            out[node_id] = array if array.dtype == want else array.astype(want)
        return out

    def sample_bytes(self) -> int:
        """Bytes of the outputs of every block for one sample, all kept until a pass ends."""
        itemsize = self.dtype.itemsize
        return sum(
            size_of(shape, itemsize)
            for i in self.order
            for shape in self.output_shapes.get(i, (self.shapes[i],))
        )

    def inference_batch(self, requested: int) -> int:
        """The largest batch, at most ``requested``, whose forward pass fits the budget.

        A batch is sized for :data:`INFERENCE_FACTOR` times its blocks' outputs (the
        temporaries inside a block: convolution windows, gates), and is at least one
        sample. Raises :class:`DataError` when one sample's outputs alone do not fit.
        """
        per_sample, budget = self.sample_bytes(), memory_budget()
        if per_sample > budget:
            raise DataError(
                f"one sample needs {fmt_bytes(per_sample)} for the outputs of every block, "
                f"more than the memory budget of {fmt_bytes(budget)} "
                f"(set {BUDGET_VARIABLE} to change it)"
            )
        return max(1, min(int(requested), budget // (INFERENCE_FACTOR * per_sample)))


def _state_names(layer: Layer) -> tuple[str, ...]:
    """The names of a block's state arrays: saved with its weights (``node/name``) but
    neither counted nor trained (a TextVectorization's vocabulary)."""
    names = getattr(layer, "state_names", None)
    return tuple(names()) if callable(names) else ()


def initial_state(layer: Layer) -> dict[str, np.ndarray]:
    """A block's state arrays before any data (empty for a block without state)."""
    return layer.initial_state() if _state_names(layer) else {}


def _kind_words(array: np.ndarray) -> str:
    return {"U": "text", "S": "bytes", "O": "objects", "c": "complex numbers"}.get(
        array.dtype.kind, "not numbers"
    )
