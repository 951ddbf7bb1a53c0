"""The engine benchmark compares like with like: each of its models has as many weights in
the hand-written PyTorch module as in nodenet's model, and the module maps the benchmark's
random data to the output shape nodenet's model gives."""

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the benchmark's reference modules need torch")

from benchmarks.engine_bench_models import (  # noqa: E402
    MODELS,
    forward_flops,
    random_data,
    torch_inputs,
    torch_module,
    torch_params,
)
from nodenet.runner import build_model  # noqa: E402


def one_blas_thread():
    """One BLAS thread: on a busy machine a two-threaded QR (the orthogonal initializer of
    a recurrent kernel) can take seconds; these tests check shapes and counts, not speed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1)


@pytest.mark.parametrize("name", list(MODELS))
def test_torch_module_matches_nodenet_model(name):
    project = MODELS[name]()
    module = torch_module(name)
    with one_blas_thread():
        model = build_model(project, seed=0)
        assert torch_params(module) == model.count_params()  # (trainable, non-trainable)
        x, _ = random_data(model, 3, np.random.default_rng(0))
        expected = model.predict(x)["y"].shape
        with torch.no_grad():
            got = module.eval()(*torch_inputs(x))
    assert tuple(got.shape) == expected


# 2 * m * n * k per product, summed by hand from each model's layer shapes
HAND_FLOPS = {
    "mlp": 2 * (784 * 128 + 128 * 128 + 128 * 10),
    # conv outputs 26x26x32 from 3x3x1 windows and 11x11x64 from 3x3x32, flatten 5x5x64
    "cnn": 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 128 + 128 * 10),
    "bn_cnn": 2 * (26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 10),
    "deep_mlp": 2 * (784 * 256 + 3 * 256 * 256 + 256 * 10),
    # 124 positions x 5 steps x 8 channels, then 58 positions x 5 x 64
    "conv1d": 2 * (124 * 64 * 5 * 8 + 58 * 64 * 5 * 64 + 64 * 10),
    # 28 steps of input and recurrent products, 4 / 3 / 1 gates
    "lstm": 2 * (28 * (28 + 128) * 4 * 128 + 128 * 10),
    "gru": 2 * (28 * (28 + 128) * 3 * 128 + 128 * 10),
    "simple_rnn": 2 * (28 * (28 + 256) * 256 + 256 * 10),
    "two_input": 2 * (784 * 128 + 28 * (28 + 64) * 4 * 64 + 192 * 10),
    "emb_bilstm": 2 * (2 * 80 * (64 + 64) * 4 * 64 + 128 * 10),  # the look-up is no product
}


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_flops_count_products_from_shapes(name):
    with one_blas_thread():
        assert forward_flops(MODELS[name]()) == HAND_FLOPS[name]


class Turns(list):
    """(side, batches) in the order the sides trained, a side's consecutive batches summed."""

    def take(self, side: str, count: int) -> None:
        if self and self[-1][0] == side:
            self[-1] = (side, self[-1][1] + count)
        else:
            self.append((side, count))


@pytest.mark.parametrize(
    ("turn_seconds", "turns"),
    [
        (0.0, [("nodenet", 1), ("pytorch", 1)] * 12),  # every batch a turn
        (float("inf"), [("nodenet", 12), ("pytorch", 12)]),  # --blocks: one turn each
    ],
)
def test_engine_benchmark_times_nodenet_and_pytorch_in_turns(monkeypatch, turn_seconds, turns):
    """engine_vs_torch's repeat: both frameworks train every batch, in turns of the batches
    nodenet trained in its first ``turn_seconds``."""
    from benchmarks import turns as bench
    from nodenet.engine.callbacks import Callback

    seen = Turns()
    take = seen.take

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            take("nodenet", 1)

    nodenet_fit, torch_train = bench.fit, bench.TorchSide.train

    def fit(*args, **kwargs):  # only the timed epoch (the one with a stop check) is counted
        if kwargs.get("should_stop") is not None:
            kwargs["callbacks"] = [Batches()]
        return nodenet_fit(*args, **kwargs)

    def train(self, count):
        take("pytorch", count)
        return torch_train(self, count)

    monkeypatch.setattr(bench, "fit", fit)
    monkeypatch.setattr(bench.TorchSide, "train", train)
    project, batch = MODELS["mlp"](), 16
    with one_blas_thread():
        x, y = random_data(build_model(project), 12 * batch, np.random.default_rng(0))
        rates = bench.time_in_turns(project, "mlp", x, y, 12, batch, turn_seconds, handover=0)
    assert seen == [("pytorch", 4), *turns]  # PyTorch's warm-up first
    assert all(np.isfinite(r) and r > 0 for r in rates)


def test_turns_last_as_many_batches_as_the_first_turn_took():
    """in_turns on a clock that moves 0.03 s per batch of the first training: its first
    turn of 0.1 s takes 4 batches, and every turn after it, of either, is 4 batches."""
    from benchmarks import turns as bench

    now, seen = [0.0], Turns()
    take = seen.take

    def drive(before_batch):
        for _ in range(10):
            before_batch()
            take("first", 1)
            now[0] += 0.03

    class Other:
        def train(self, count):
            take("other", count)
            now[0] += 0.05 * count  # slower: its turns are still the first one's length
            return 0.05 * count

    seconds = bench.in_turns(drive, Other(), 10, 0.1, handover=0, clock=lambda: now[0])
    turns = [("first", 4), ("other", 4)] * 2
    assert seen == [*turns, ("first", 2), ("other", 2)]
    assert seconds == pytest.approx((10 * 0.03, 10 * 0.05))
