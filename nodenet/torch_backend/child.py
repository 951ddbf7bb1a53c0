"""The PyTorch training process: ``python -m nodenet.torch_backend.child FOLDER``.

Started by :class:`nodenet.torch_backend.TorchBackend` (alone, or as each worker of
``torch.distributed.run``), it reads its work from ``FOLDER``
(:mod:`nodenet.torch_backend.handover`), builds the model from the module nodenet
generates for the project (:func:`nodenet.torch_backend.source.child_source`), loads the
weights nodenet gave it, and trains, evaluates or predicts. It reports the typed run
events as JSON lines on stdout (:mod:`nodenet.torch_backend.wire`; under torchrun from
the first process only), polls for the stop file before every batch, and writes the
trained weights back in Keras layouts. An error ends it with a ``failed`` line and exit
code 1.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nodenet.engine.callbacks import CallbackList, TrainingState, from_settings
from nodenet.engine.events import (
    EPOCH_SECONDS,
    BatchEnd,
    EpochEnd,
    Failed,
    Finished,
    History,
    Prepared,
    Throttle,
)
from nodenet.engine.runtime import tune_allocator
from nodenet.errors import DataError, NodenetError, TrainingError
from nodenet.graph.project import Project
from nodenet.safeio import read_npz
from nodenet.torch_backend import handover, wire
from nodenet.torch_backend.devices import torch_device
from nodenet.torch_backend.source import STEP, child_source, graph_of, keras_arrays, torch_arrays

IN_MEMORY_BYTES = 2**31  # a split up to this size is read into memory; larger, gathered per batch


class Mapped:
    """A memory-mapped array gathered batch by batch (data larger than memory)."""

    def __init__(self, array: np.ndarray, dtype: str | None = None):
        self.array, self.dtype = array, dtype or array.dtype

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, idx) -> torch.Tensor:
        rows = idx.numpy() if isinstance(idx, torch.Tensor) else idx
        return torch.from_numpy(np.ascontiguousarray(self.array[rows], dtype=self.dtype))


class Emitter:
    """JSON lines on stdout, from the first process only."""

    def __init__(self, rank: int):
        self.rank = rank

    def __call__(self, event) -> None:
        self.line(wire.encode(event))

    def line(self, text: str) -> None:
        if self.rank == 0:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


class Weights:
    """The model as nodenet's callbacks see it: ``get_weights`` / ``set_weights`` of its
    ``state_dict`` (early stopping keeps and restores the best epoch's)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def get_weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def set_weights(self, weights: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(weights)


class Rate:
    """A torch optimizer's learning rate as nodenet's ReduceLROnPlateau reads and sets it."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value


class Job:
    """One run of the child: the model built, the data mapped, ready to fit or evaluate."""

    def __init__(self, folder: Path, emit: Emitter, rank: int, world: int, device):
        self.folder, self.emit, self.device = folder, emit, device
        self.rank, self.world = rank, world
        self.job = handover.read_job(folder)
        project = Project.from_json(
            (folder / handover.PROJECT).read_text(encoding="utf-8"), "project"
        )
        self.graph = graph_of(project)
        # a module-level constant may name a file beside the module (never read here)
        self.code: dict[str, Any] = {
            "__name__": "nodenet_torch_model",
            "__file__": str(folder / "model.py"),
        }
        exec(
            compile(child_source(project), "<nodenet: generated PyTorch model>", "exec"), self.code
        )
        torch.manual_seed(int(self.job.get("seed") or 0))
        self.model = self.code["build_model"]()
        weights = read_npz(folder / handover.WEIGHTS)
        state = torch_arrays(self.graph, weights)
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.model.to(device)
        self.weighted = "training" in inspect.signature(self.code["compute_loss"]).parameters
        self.penalty = self.code.get("regularization")
        self.inputs, self.outputs = self.job["inputs"], self.job["outputs"]

    # -- data ---------------------------------------------------------------------------

    def split(self, name: str) -> tuple[list[torch.Tensor], list[torch.Tensor]] | None:
        entry = self.job["splits"].get(name)
        if not entry:
            return None
        x, y = handover.read_split(self.folder, entry)
        size = sum(a.nbytes for a in (*x.values(), *y.values()))
        in_memory = size <= self.job.get("in_memory_bytes", IN_MEMORY_BYTES)  # else per batch

        def column(array: np.ndarray, dtype: str | None = None):
            if not in_memory:
                return Mapped(array, dtype)
            return torch.from_numpy(np.array(array, dtype=dtype or array.dtype))  # a copy

        dtypes = dict(zip(self.inputs, self.job["input_dtypes"], strict=True))
        inputs = [column(x[k], dtypes[k]) for k in self.inputs]
        return inputs, [column(y[k]) for k in self.outputs if k in y]

    def loss(self, outputs, targets: dict, training: bool) -> torch.Tensor:
        loss = (
            self.code["compute_loss"](outputs, targets, training)
            if self.weighted
            else self.code["compute_loss"](outputs, targets)
        )
        return loss + self.penalty(self.model) if self.penalty is not None else loss

    def batch(self, tensors: list[torch.Tensor], idx) -> list[torch.Tensor]:
        if self.device.type == "cpu":
            return [t[idx] for t in tensors]
        return [t[idx].to(self.device, non_blocking=True) for t in tensors]

    # -- evaluation and prediction --------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, x, y, prefix: str = "") -> dict[str, float]:
        """Loss and metrics over every sample, inference mode, on this process alone."""
        self.model.eval()
        n, size = len(x[0]), max(int(self.job["batch_size"]), 256)
        if n == 0:
            raise DataError("there are no samples to evaluate")
        totals: dict[str, torch.Tensor] = {}
        for start in range(0, n, size):
            idx = slice(start, start + size)
            outputs = self.model(*self.batch(x, idx))
            targets = dict(zip(self.outputs, self.batch(y, idx), strict=True))
            values = {"loss": self.loss(outputs, targets, False)}
            values.update(self.code["metrics"](outputs, targets))
            count = min(size, n - start)
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value.detach().double() * count
        return {prefix + k: float(v / n) for k, v in totals.items()}

    @torch.no_grad()
    def predict(self, x) -> list[tuple[str, str, tuple[int, ...]]]:
        self.model.eval()
        n, size = len(x[0]), int(self.job.get("predict_batch") or 256)
        if n == 0:
            raise DataError("there are no samples to predict")
        files: list[Any] = []
        for start in range(0, n, size):
            out = self.model(*self.batch(x, slice(start, start + size)))
            heads = [out[o] for o in self.outputs] if isinstance(out, dict) else [out]
            if not files:
                for k, head in enumerate(heads):
                    shape = (n, *head.shape[1:])
                    path = self.folder / f"predicted_{k}.npy"
                    files.append(np.lib.format.open_memmap(path, "w+", np.float32, shape))
            for file, head in zip(files, heads, strict=True):
                file[start : start + len(head)] = head.float().cpu().numpy()
        for file in files:
            file.flush()
        return [
            (o, f"predicted_{k}.npy", f.shape)
            for k, (o, f) in enumerate(zip(self.outputs, files, strict=True))
        ]

    # -- training -------------------------------------------------------------------------

    def fit(self) -> None:
        job, model = self.job, self.model
        train = self.split("train")
        val = self.split("val")
        n = len(train[0][0])
        batch_size, epochs = int(job["batch_size"]), int(job["epochs"])
        optimizer = self.code["make_optimizer"](model)
        net = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(model, device_ids=ids)
        history = History()
        state = TrainingState(Weights(model), Rate(optimizer), history)
        hooks = CallbackList(
            from_settings(job["early_stopping"], job["reduce_lr_on_plateau"]), state
        )
        sampler = None
        if self.world > 1:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(
                range(n),
                self.world,
                self.rank,
                shuffle=bool(job["shuffle"]),
                seed=int(job["seed"] or 0),
            )
        shard = len(sampler) if sampler is not None else n
        batches = math.ceil(shard / batch_size)
        report = Throttle(self.emit, float(job["progress_interval"]))
        report.now(
            Prepared(
                train=n,
                val=len(val[0][0]) if val else 0,
                test=int(job["test_samples"]),
                epochs=epochs,
                batches=batches,
                batch_size=batch_size,
                params=int(job["params"]),
                outputs=tuple(self.outputs),
            )
        )
        order_rng = np.random.default_rng(job["seed"])
        step, samples, start = 0, 0, time.perf_counter()
        measured = True  # whether the model has metrics besides its loss (until seen otherwise)
        stop_file = str(self.folder / handover.STOP)  # os.path.exists: a stat, nothing more
        hooks.on_train_begin()
        for epoch in range(epochs):
            hooks.on_epoch_begin(epoch)
            if sampler is not None:
                sampler.set_epoch(epoch)
                order = np.fromiter(iter(sampler), dtype=np.int64)
            else:
                order = order_rng.permutation(n) if job["shuffle"] else np.arange(n)
            epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
            net.train()
            totals: dict[str, torch.Tensor] = {}
            count, loss_sum, since_loss, since_count, stopped = 0, 0.0, 0.0, 0, False
            for b in range(batches):
                if self.stop_requested(stop_file):
                    stopped = True
                    break
                idx = torch.from_numpy(np.sort(order[b * batch_size : (b + 1) * batch_size]))
                xb = self.batch(train[0], idx)
                targets = dict(zip(self.outputs, self.batch(train[1], idx), strict=True))
                outputs = net(*xb)
                loss = self.loss(outputs, targets, True)
                value = float(loss)
                if not math.isfinite(value):
                    raise TrainingError(
                        f"the loss became {value} at epoch {epoch + 1}, batch {b + 1}: training "
                        "stopped (try a lower learning rate, or check the data for extreme values)"
                    )
                step = self.code[STEP](net, optimizer, loss, step)
                size = len(idx)
                loss_sum += value * size
                if measured:  # the metrics' running sums stay tensors: no wait on a GPU
                    with torch.no_grad():
                        values = self.code["metrics"](outputs, targets)
                        for key, v in values.items():
                            totals[key] = totals.get(key, 0.0) + v.detach().double() * size
                    measured = bool(values)
                count, samples = count + size, samples + size
                since_loss, since_count = since_loss + value * size, since_count + size
                if report.wants_batch(last=b == batches - 1):
                    elapsed = time.perf_counter() - epoch_start
                    running = {"loss": loss_sum / count}
                    running.update((k, float(v / count)) for k, v in totals.items())
                    running["learning_rate"] = float(optimizer.param_groups[0]["lr"])
                    report.batch(
                        BatchEnd(
                            epoch + 1, epochs, b + 1, batches, step, running,
                            since_loss / since_count, count * self.world / max(elapsed, 1e-9),
                        )
                    )  # fmt: skip
                    since_loss, since_count = 0.0, 0
            if count == 0:
                history.stopped = "user"
                break
            logs = self.epoch_logs(
                {"loss": torch.tensor(loss_sum, dtype=torch.float64), **totals}, count
            )
            if val:
                logs.update(self.evaluate(*val, prefix="val_"))
            logs["learning_rate"] = float(optimizer.param_groups[0]["lr"])
            logs[EPOCH_SECONDS] = time.perf_counter() - epoch_start
            cpu = time.process_time() - epoch_cpu
            self.emit.line(wire.record("timing", epoch=epoch + 1, cpu_seconds=cpu))
            history.epochs.append(logs)
            shown = {k: v for k, v in logs.items() if k != EPOCH_SECONDS}
            report.epoch(EpochEnd(epoch + 1, epochs, shown, step, logs[EPOCH_SECONDS]))
            if stopped:
                history.stopped = "user"
                break
            hooks.on_epoch_end(epoch, logs)
            if state.stop_training:
                history.stopped = history.stopped or "callback"
                break
        hooks.on_train_end()
        seconds = time.perf_counter() - start
        if self.rank == 0:
            self.write_weights()
            test = self.split("test")
            if test:  # the figures and the outputs the evaluation reports show
                metrics = self.evaluate(*test)
                predicted = [[o, f, list(s)] for o, f, s in self.predict(test[0])]
                self.emit.line(
                    wire.record("result", split="test", metrics=metrics, predicted=predicted)
                )
        report.now(Finished(history, step, samples * self.world, seconds))  # every process's

    def epoch_logs(self, totals: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        """The epoch's means over every process's samples."""
        sums = torch.stack(
            [
                *(torch.as_tensor(v) for v in totals.values()),
                torch.tensor(float(count), dtype=torch.float64),
            ]
        )
        if self.world > 1:
            import torch.distributed as dist

            sums = sums.to(self.device)
            dist.all_reduce(sums)
        return {k: float(v / sums[-1]) for k, v in zip(totals, sums[:-1], strict=True)}

    def stop_requested(self, stop_file: str) -> bool:
        """Whether the parent asked to stop; every process takes the same decision."""
        asked = os.path.exists(stop_file)
        if self.world == 1:
            return asked
        import torch.distributed as dist

        flag = torch.tensor([1.0 if asked else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def write_weights(self) -> None:
        state = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        handover.write_arrays(self.folder / handover.TRAINED, keras_arrays(self.graph, state))


def run(folder: Path, emit: Emitter, rank: int, world: int) -> None:
    settings = handover.read_job(folder)
    local_rank = int(os.environ.get("LOCAL_RANK", 0)) if world > 1 else None
    device = torch_device(settings["device"], local_rank=local_rank)
    threads = settings.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    job = Job(folder, emit, rank, world, device)
    mode = job.job["mode"]
    if mode == "fit":
        job.fit()
    elif mode == "evaluate":
        x, y = job.split("eval")
        emit.line(wire.record("result", split="eval", metrics=job.evaluate(x, y)))
    elif mode == "predict":
        x, _ = job.split("eval")
        files = job.predict(x)
        emit.line(wire.record("result", predicted=[[o, f, list(s)] for o, f, s in files]))
    else:
        raise TrainingError(f"unknown job mode {mode!r}")


def watch_parent(poll: float = 1.0) -> None:
    """End this process soon after the one that started it is gone (nodenet was killed):
    a run nobody reads must not keep a GPU busy."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(3)

    threading.Thread(target=watch, name="nodenet-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    watch_parent()
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank, world = 0, 1
    if distributed:
        import torch.distributed as dist

        job = handover.read_job(Path(argv[0]))
        dist.init_process_group("nccl" if job["device"].startswith("cuda") else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    emit = Emitter(rank)
    tune_allocator()  # as the engine: large freed blocks stay in the heap (fewer page faults)
    try:
        run(Path(argv[0]), emit, rank, world)
    except NodenetError as err:
        emit(Failed(str(err)))
        return 1
    except torch.cuda.OutOfMemoryError:
        emit(Failed("out of memory on the GPU: try a smaller batch size or fewer units"))
        return 1
    except Exception as err:  # reported, then the process ends: the parent stays up
        traceback.print_exc(file=sys.stderr)
        what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        emit(Failed(f"the PyTorch process failed ({what})"))
        return 1
    finally:
        if distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
