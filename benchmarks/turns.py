"""nodenet and PyTorch timed in turns within one repeat of ``engine_vs_torch.py``.

Timed one after the other, a repeat's two halves lie up to a second apart, and a shared
machine's speed moves on that scale; in turns both meet the same load
(benchmarks/README.md has the measurements). ``torch_against_itself`` times PyTorch
against itself the same way, to show how far the machine alone moves a ratio.
"""

from __future__ import annotations

import time

from benchmarks.engine_bench_models import BATCH, torch_inputs, torch_module
from nodenet.engine.training import fit
from nodenet.runner import build_model

# nodenet and PyTorch take turns of about TURN_SECONDS within a repeat, so that both meet
# the same load (the machines are shared). At each handover the main thread waits
# HANDOVER seconds, busy and untimed: PyTorch's OpenMP workers go on spinning for a few
# milliseconds after its turn, and would hold the second core while nodenet's began.
# Shorter turns cost both frameworks more than a steady run (benchmarks/README.md).
TURN_SECONDS = 0.1
HANDOVER = 0.01


def rest(seconds: float) -> None:
    """Wait ``seconds`` on a busy loop: the core stays awake, as in training."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class TorchSide:
    """PyTorch's training of ``MODELS[name]``: Adam, cross-entropy on the logits, batches
    of a fresh shuffle per pass over ``x``; :meth:`train` runs the next ones."""

    def __init__(self, name, x, y, batch=BATCH):
        import torch

        torch.set_num_threads(2)
        self.torch, self.batch = torch, batch
        self.module = torch_module(name)
        params = [p for p in self.module.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=1e-3, eps=1e-7)
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.xs = torch_inputs(x)
        self.target = torch.from_numpy(next(iter(y.values())).argmax(1))
        self.order, self.next = None, 0
        self.train(4)  # warm-up
        self.order = None  # the timed batches start a fresh shuffle

    def train(self, count: int) -> float:
        """Seconds for the next ``count`` training steps."""
        start = time.perf_counter()
        batch = self.batch
        for _ in range(count):
            if self.order is None or (self.next + 1) * batch > len(self.order):
                self.order, self.next = self.torch.randperm(len(self.target)), 0
            idx = self.order[self.next * batch : (self.next + 1) * batch]
            self.next += 1
            self.opt.zero_grad()
            loss = self.loss_fn(self.module(*[v[idx] for v in self.xs]), self.target[idx])
            loss.backward()
            self.opt.step()
        return time.perf_counter() - start


def nodenet_model(project, x, y, batch=BATCH):
    """``project`` built (seed 0) and warmed up on four batches."""
    model = build_model(project, seed=0)
    warm = {k: v[: 4 * batch] for k, v in x.items()}, {k: v[: 4 * batch] for k, v in y.items()}
    fit(model, *warm, epochs=1, batch_size=batch, shuffle=False)
    return model


def in_turns(
    drive, other, batches, turn_seconds, handover, clock=time.perf_counter
) -> tuple[float, float]:
    """Seconds of two trainings of ``batches`` batches each, taking turns.

    ``drive(before_batch)`` runs the first training, its set-up timed too, and calls
    ``before_batch()`` before each batch; ``other`` (a :class:`TorchSide`) is the second,
    ``other.train(count)`` giving its seconds for ``count`` batches. The first's first turn
    lasts ``turn_seconds``, and the batches it took are every turn's length after it,
    for both; at a turn's end ``before_batch`` hands over to ``other``, and that time is
    taken off the first's. A first training shorter than one turn runs in one go, then
    the second in one go."""
    other_seconds = away = 0.0
    done = 0  # the second's batches
    turn = 0  # batches per turn, once the first turn has set it

    def hand_over(count: int) -> None:
        nonlocal other_seconds, away, done
        start = clock()
        rest(handover)
        other_seconds += other.train(count)
        done += count
        rest(handover)
        away += clock() - start

    calls = iter(range(batches))

    def before_batch() -> None:
        nonlocal turn
        b = next(calls)
        if b and not turn and clock() - start >= turn_seconds:
            turn = b
        if turn and b % turn == 0:
            hand_over(turn)

    rest(handover)
    start = clock()
    drive(before_batch)
    first_seconds = clock() - start - away
    hand_over(batches - done)  # the second's last turn
    return first_seconds, other_seconds


def time_in_turns(
    project, name, x, y, batches, batch=BATCH, turn_seconds=TURN_SECONDS, handover=HANDOVER
) -> tuple[float, float]:
    """nodenet's and PyTorch's samples/s over ``batches`` each, taking turns
    (:func:`in_turns`; nodenet trains one epoch with ``fit``, whose stop check, before
    each batch, hands over)."""
    torch_side = TorchSide(name, x, y, batch)
    model = nodenet_model(project, x, y, batch)

    def drive(before_batch) -> None:
        def should_stop() -> bool:
            before_batch()
            return False

        fit(model, x, y, epochs=1, batch_size=batch, shuffle=True, seed=0, should_stop=should_stop)

    seconds = in_turns(drive, torch_side, batches, turn_seconds, handover)
    return tuple(batches * batch / s for s in seconds)


def torch_against_itself(name, x, y, batches, batch=BATCH, turn_seconds=TURN_SECONDS) -> float:
    """samples/s of one PyTorch training over another's, the same model and data, timed
    as nodenet and PyTorch are (``--noise``): what the machine alone makes of a ratio."""
    first, second = TorchSide(name, x, y, batch), TorchSide(name, x, y, batch)

    def drive(before_batch) -> None:
        for _ in range(batches):
            before_batch()
            first.train(1)

    seconds = in_turns(drive, second, batches, turn_seconds, HANDOVER)
    return seconds[1] / seconds[0]
