""":class:`TorchBackend`: a project trained by PyTorch in a process of its own.

nodenet builds, validates and prepares as for its own engine (an inner
:class:`nodenet.backend.NumpyBackend` holds the project's model, its weights in Keras
layouts and its data), then hands the work to a child process
(:mod:`nodenet.torch_backend.child`) through a temporary folder
(:mod:`nodenet.torch_backend.handover`): the project, the weights, every data array as a
memory-mapped ``.npy``. The child's JSON lines come back as the typed events the numpy
engine emits, so whoever consumes a run (the command line, the GUI's worker) cannot tell
the two apart. At the end the trained weights come home in Keras layouts: evaluate,
predict, save them or export them as after any run.

A GPU error, an out-of-memory or a crash ends the child, not nodenet: :meth:`fit` then
emits :class:`Failed` naming what happened (its exit code or signal and the child's last
messages) and raises :class:`TrainingError` with the same message, as the numpy engine
does for a failed run. Stop (``should_stop``) is honoured before the child's next batch;
a child that does not answer within ``stop_timeout`` seconds is killed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nodenet.backend import NumpyBackend
from nodenet.engine.callbacks import Callback, CallbackList, TrainingState
from nodenet.engine.events import (
    BatchEnd,
    EpochEnd,
    Failed,
    Finished,
    History,
    Prepared,
    Sink,
)
from nodenet.errors import DataError, TrainingError
from nodenet.safeio import read_npz
from nodenet.torch_backend import handover
from nodenet.torch_backend.devices import check_device, require_torch
from nodenet.torch_backend.process import ChildProcess, child_command

Arrays = dict[str, np.ndarray]


class TorchBackend:
    """The :class:`nodenet.backend.Backend` that trains with PyTorch in a child process.

    ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked against this machine's
    PyTorch: :class:`DeviceError`); ``nproc`` > 1 runs the child under
    ``torch.distributed.run`` (DistributedDataParallel, gloo on CPU, NCCL on CUDA);
    ``nnodes`` and ``rdzv_endpoint`` are passed to it for several machines. Without
    PyTorch installed, :class:`TorchMissing` says how to install it. ``workdir``: where
    the temporary folder goes (by default the system's temporary folder). ``threads``:
    the CPU threads of each process (``torch.set_num_threads``; by default PyTorch's own
    choice, one per core: a GUI leaves one core to itself with ``os.cpu_count() - 1``).

    Callbacks get the epoch hooks only (``on_train_begin``, ``on_epoch_end`` with the
    epoch's logs, ``on_train_end``): the batches run in the child. A callback that sets
    ``state.stop_training`` stops the run before the child's next batch.
    """

    name = "torch"
    in_memory_bytes = 2**31  # data up to this size is read into the child's memory at once;
    # larger data is gathered from its memory-mapped files batch by batch

    def __init__(
        self,
        device: str = "cpu",
        nproc: int = 1,
        *,
        nnodes: str | None = None,
        rdzv_endpoint: str | None = None,
        stop_timeout: float = 10.0,
        workdir: str | Path | None = None,
        threads: int | None = None,
    ):
        require_torch()
        self.device = check_device(device)
        if nproc < 1:
            raise TrainingError(f"nproc must be at least 1 (got {nproc})")
        self.nproc, self.nnodes, self.rdzv_endpoint = nproc, nnodes, rdzv_endpoint
        self.stop_timeout, self.threads = stop_timeout, threads
        self.numpy = NumpyBackend()
        self.project: Any = None
        self.process: ChildProcess | None = None  # the running child, for the curious (tests)
        self.test_result: dict[str, float] | None = None  # the last fit's test metrics
        self._test_outputs: Arrays | None = None  # and its outputs on the test split
        self.epoch_cpu_seconds: list[float] = []  # the last fit's, per epoch (benchmarks)
        self._folder = Path(tempfile.mkdtemp(prefix="nodenet-torch-", dir=workdir))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, True)
        self._written: dict[str, dict | None] = {}  # split -> its files (see handover)

    def command(self, python: str | None = None) -> list[str]:
        """The command line of the child process (torchrun's with ``nproc`` > 1 or
        ``nnodes``: the one every machine runs)."""
        return child_command(
            self._folder, self.nproc, self.nnodes, self.rdzv_endpoint, python or sys.executable
        )

    def close(self) -> None:
        """Remove the temporary folder (also done when the backend is collected)."""
        self._cleanup()

    # -- Backend: what the inner numpy backend holds ------------------------------------

    def build(
        self,
        project: Any,
        *,
        seed: int | None = None,
        load_data: bool = True,
        allow_outside_data: bool = False,
    ) -> None:
        self.numpy.build(
            project, seed=seed, load_data=load_data, allow_outside_data=allow_outside_data
        )
        self.project, self._written = project, {}
        self.test_result = self._test_outputs = None

    @property
    def data(self) -> Any:
        return self.numpy.data

    @property
    def training(self) -> dict[str, Any]:
        return self.numpy.training

    @property
    def outputs(self) -> dict[str, str]:
        return self.numpy.outputs

    @property
    def input_ids(self) -> list[str]:
        return self.numpy.input_ids

    def get_weights(self) -> Arrays:
        return self.numpy.get_weights()

    def set_weights(self, weights: Arrays, source: str = "weights") -> None:
        self.numpy.set_weights(weights, source=source)
        self.test_result = self._test_outputs = None

    def count_params(self) -> tuple[int, int]:
        return self.numpy.count_params()

    def save_weights(self, path: str | Path) -> Path:
        return self.numpy.save_weights(path)

    def load_weights(self, path: str | Path) -> None:
        self.numpy.load_weights(path)
        self.test_result = self._test_outputs = None

    # -- Backend: what the child does ---------------------------------------------------

    def fit(
        self,
        *,
        on_event: Sink | None = None,
        callbacks: Sequence[Callback] = (),
        should_stop: Callable[[], bool] | None = None,
        epochs: int | None = None,
        progress_interval: float = 0.0,
    ) -> History:
        """Train in the child; events as the numpy engine's (see the class)."""
        sink = on_event or (lambda event: None)
        self.test_result = self._test_outputs = None
        self.epoch_cpu_seconds = []
        splits = self._data_splits()
        t = self.training
        job = self._job("fit", splits)
        job.update(
            epochs=t["epochs"] if epochs is None else int(epochs),
            shuffle=bool(t["shuffle"]),
            early_stopping=t["early_stopping"] or None,
            reduce_lr_on_plateau=t["reduce_lr_on_plateau"] or None,
            progress_interval=float(progress_interval),
            test_samples=int(self.data.meta.sizes.get("test", 0) or 0),
            params=sum(self.count_params()),
        )
        state = TrainingState(self, None, History())
        hooks = CallbackList(callbacks, state)
        ended: dict[str, Any] = {}

        def handle(item: Any) -> None:
            if isinstance(item, Prepared):
                sink(item)
                hooks.on_train_begin()
            elif isinstance(item, BatchEnd):
                sink(item)
            elif isinstance(item, EpochEnd):
                sink(item)
                state.history.epochs.append(dict(item.metrics))
                hooks.on_epoch_end(item.epoch - 1, dict(item.metrics))
            elif isinstance(item, Finished | Failed):
                ended["event"] = item
            elif item.get("event") == "timing":
                self.epoch_cpu_seconds.append(float(item["cpu_seconds"]))
            elif item.get("split") == "test":
                ended["test"] = item

        def stop() -> bool:
            return state.stop_training or (should_stop is not None and should_stop())

        code = self._run(job, handle, stop)
        end = ended.get("event")
        if isinstance(end, Finished) and code == 0:
            trained = read_npz(self._folder / handover.TRAINED, TrainingError)
            self.numpy.set_weights(trained, source="the weights trained by PyTorch")
            if "test" in ended:
                self.test_result = dict(ended["test"]["metrics"])
                self._test_outputs = self._predicted(ended["test"]["predicted"])
            state.history = end.history
            hooks.on_train_end()
            sink(end)
            return end.history
        message = end.message if isinstance(end, Failed) else self.process.failure(code)
        sink(Failed(message))
        raise TrainingError(message)

    def evaluate(
        self, inputs: Arrays | None = None, targets: Arrays | None = None
    ) -> dict[str, float] | None:
        """Loss and metrics, computed by PyTorch: on the test split by default (the last
        fit's figures when the weights have not changed since), else on ``inputs``."""
        if inputs is None:
            if self.test_result is not None:
                return dict(self.test_result)
            if self._test_split() is None:
                return None
            entry = self._test_split()
        else:
            entry = self._given(inputs, targets)
        result = self._call("evaluate", entry)
        return {k: float(v) for k, v in result["metrics"].items()}

    def predict(self, inputs: Arrays, batch_size: int = 256) -> Arrays:
        """Outputs keyed by Output id, computed by PyTorch in inference mode (for the test
        split's inputs after a fit, those the fit's process computed)."""
        test = self.data.test if self.data is not None else None
        if self._test_outputs is not None and test and inputs is test.get("inputs"):
            return {k: v.copy() for k, v in self._test_outputs.items()}
        result = self._call("predict", self._given(inputs, None), predict_batch=int(batch_size))
        return self._predicted(result["predicted"])

    def _predicted(self, files: list) -> Arrays:
        return {
            output: np.array(np.load(self._folder / file, mmap_mode="r", allow_pickle=False))
            for output, file, _ in files
        }

    def write_predictions(
        self, inputs: Arrays, path: str | Path, batch_size: int = 256
    ) -> dict[str, tuple[int, ...]]:
        """Outputs for ``inputs`` written to the ``.npz`` file ``path``; each one's shape."""
        from nodenet.atomic import write_file
        from nodenet.export._common import npz_bytes

        outputs = self.predict(inputs, batch_size)
        write_file(Path(path), npz_bytes(outputs), DataError)
        return {k: tuple(v.shape) for k, v in outputs.items()}

    # -- the hand-over ----------------------------------------------------------------------

    def _run(self, job: dict, handle: Callable[[Any], None], stop=None) -> int:
        handover.write_job(self._folder, job)
        handover.write_arrays(self._folder / handover.WEIGHTS, self.get_weights())
        handover.put_text(self._folder / handover.PROJECT, self.project.to_json())
        (self._folder / handover.TRAINED).unlink(missing_ok=True)
        self.process = ChildProcess(self.command(), self._folder)
        return self.process.drive(handle, stop, self.stop_timeout)

    def _job(self, mode: str, splits: dict) -> dict[str, Any]:
        t = self.training
        return {
            "mode": mode,
            "device": self.device,
            "seed": t["seed"],
            "batch_size": int(t["batch_size"]),
            "inputs": self.input_ids,
            "input_dtypes": [self._input_dtype(i) for i in self.input_ids],
            "in_memory_bytes": self.in_memory_bytes,
            "threads": self.threads,
            "outputs": list(self.outputs),
            "splits": splits,
        }

    def _input_dtype(self, node_id: str) -> str:
        return (
            "int32"
            if self.numpy.run.model.layers[node_id].config["dtype"] == "int32"
            else "float32"
        )

    def _call(self, mode: str, entry: dict, **extra) -> dict:
        """Run the child once to evaluate or predict the split ``entry``; its result."""
        job = {**self._job(mode, {"eval": entry}), **extra}
        found: dict[str, Any] = {}

        def handle(item: Any) -> None:
            if isinstance(item, Failed):
                found["failed"] = item.message
            elif isinstance(item, dict) and item.get("event") == "result":
                found["result"] = item

        code = self._run(job, handle)
        if code == 0 and "result" in found:
            return found["result"]
        raise TrainingError(found.get("failed") or self.process.failure(code))

    def _given(self, inputs: Arrays, targets: Arrays | None) -> dict:
        """The entry of arrays given to evaluate or predict: the test split's when they are
        its own (written once), else written now."""
        test = self.data.test if self.data is not None else None
        if test and inputs is test.get("inputs"):
            return self._test_split()
        model = self.numpy.run.model
        x = _cast_inputs(model, model.check_inputs(inputs, cast=False))
        return handover.write_split(self._folder, "eval", x, _cast_targets(targets or {}))

    def _test_split(self) -> dict | None:
        """The test split written once (a folder's files decoded), or None without one."""
        if "test" not in self._written:
            test, entry = self.data.test if self.data is not None else None, None
            if test and _count(test):
                entry = self._write("test", test["inputs"], test["targets"])
            self._written["test"] = entry
        return self._written["test"]

    def _write(self, name: str, x, y: Arrays) -> dict:
        from nodenet.engine.data.stream import is_streamed

        if is_streamed(x):  # a folder's files, decoded once into a .npy file
            x, y = decoded(self._folder, name, x, y).values()
        model = self.numpy.run.model
        return handover.write_split(self._folder, name, *_cast(model, x, y))

    def _data_splits(self) -> dict[str, dict]:
        """The prepared data written once: train (after ``validation_split``), val, test;
        Normalization blocks adapted to the training samples first, as the engine does."""
        from nodenet.engine.adapt import adapt
        from nodenet.engine.data.stream import is_streamed
        from nodenet.engine.training import split_validation

        if "train" in self._written:
            return {k: v for k, v in self._written.items() if v is not None}
        data, model, t = self.data, self.numpy.run.model, self.training
        if data is None:
            raise DataError("the project was built without its data: nothing to train on")
        x, y = data.train["inputs"], data.train["targets"]
        if is_streamed(x):
            x, y = decoded(self._folder, "train", x, y).values()
        val = data.val if data.val and _count(data.val) else None
        if val is None and t["validation_split"]:
            (x, y), (vx, vy) = split_validation(x, y, t["validation_split"])
            val = {"inputs": vx, "targets": vy}
        if model.to_adapt:
            adapt(model, model.check_inputs(x))
        self._written["train"] = self._write("train", x, y)
        self._written["val"] = self._write("val", val["inputs"], val["targets"]) if val else None
        self._test_split()
        return {k: v for k, v in self._written.items() if v is not None}


def decoded(folder: Path, name: str, x: dict, y: Arrays) -> dict[str, Arrays]:
    """A split of a streamed folder dataset as memory-mapped arrays: its files decoded
    batch by batch into ``folder/<name>_decoded.npy``; the samples whose file could not be
    read are left out, of the targets too."""
    ((key, column),) = x.items()
    n = len(column)
    path = folder / f"{name}_decoded.npy"
    out = np.lib.format.open_memmap(path, "w+", column.dtype, column.shape)
    kept, filled = [], 0
    for positions, batch in column.batches(np.arange(n), 256):
        out[filled : filled + len(positions)] = batch
        filled += len(positions)
        kept.append(positions)
    out.flush()
    del out
    rows = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if filled < n:
        array = np.array(array[:filled])
    return {"inputs": {key: array}, "targets": {k: np.asarray(v)[rows] for k, v in y.items()}}


def _count(split: dict) -> int:
    arrays = split.get("inputs") or {}
    return len(next(iter(arrays.values()))) if arrays else 0


def _cast(model, x: Arrays, y: Arrays) -> tuple[Arrays, Arrays]:
    return _cast_inputs(model, model.check_inputs(x, cast=False)), _cast_targets(y)


def _cast_inputs(model, x: Arrays) -> Arrays:
    """Inputs as they are (the child casts each batch to the Input's int32 or float32,
    so memory-mapped data stays on disk); text refused."""
    for node_id in x:
        if model.layers[node_id].config["dtype"] == "string":
            raise DataError(
                f"{node_id}: the PyTorch backend takes numbers only, and this Input takes "
                "text: train this project with the nodenet engine"
            )
    return x


def _cast_targets(y: Arrays) -> Arrays:
    out = {}
    for key, value in y.items():
        value = np.asarray(value)
        out[key] = value.astype(np.float32) if value.dtype.kind == "f" else value
    return out
