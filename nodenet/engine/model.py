"""A built model: a valid project turned into layers and weights.

Forward runs the nodes in topological order; backward runs them in reverse,
summing gradients where a tensor fans out (per output, for a block with several:
an edge names the output it reads, see :attr:`Model.feeds`). Weights live in one dict per node,
keyed as the block's ``weight_specs`` name them, and save to ``.npz`` under
``node_id/weight_name`` keys in Keras layouts (:mod:`nodenet.engine.model_io`, with the
checks of the input arrays).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nodenet.engine.adapt import pending as adapt_pending
from nodenet.engine.blueprint import Blueprint
from nodenet.engine.flat_params import FlatParams
from nodenet.engine.initializers import initialize
from nodenet.engine.layer import Context, Layer, WeightSpec
from nodenet.engine.layers import conv_pool
from nodenet.engine.layers.normalization import fusable_pool
from nodenet.engine.layers.text_vectorization import text_wiring_problem
from nodenet.engine.model_io import InputsIO, WeightsIO, initial_state
from nodenet.errors import DataError, NodenetError, ShapeError, TrainingError
from nodenet.safeio import over_budget, size_of


@dataclass(frozen=True)
class Head:
    """An Output node and how its loss is computed."""

    id: str
    source: str  # the node feeding the Output
    loss: str
    metrics: tuple[str, ...]
    loss_weight: float
    fused_activation: str | None  # softmax / sigmoid fused with the loss, else None
    from_logits: bool = False  # the loss takes the input as logits (Keras's from_logits)
    label_smoothing: float = 0.0


class Model(WeightsIO, InputsIO):
    """Layers, weights and the forward/backward passes of a valid project.

    Parameters
    ----------
    blueprint : nodenet.engine.blueprint.Blueprint
        The analyzed graph (:meth:`nodenet.graph.validation.Analysis.blueprint`).
    dtype : numpy dtype
        float32 for training; float64 for gradient checks.
    seed : int, optional
        Seeds the weight initializers (the same seed gives the same weights).
    fuse : bool
        Run each convolution that feeds only a max pooling as one step with it
        (:mod:`nodenet.engine.layers.conv_pool`), and each BatchNormalization that feeds
        only a relu Activation with it (``BatchNormalization.forward_relu``), with the
        max pooling that relu alone feeds too (``forward_relu_pool``): same results,
        fewer passes over memory.
    """

    def __init__(
        self,
        blueprint: Blueprint,
        dtype=np.float32,
        seed: int | None = None,
        fuse: bool = True,
    ):
        self.name = blueprint.name
        self.dtype = np.dtype(dtype)
        self.order: list[str] = list(blueprint.order)
        self.layers: dict[str, Layer] = {i: blueprint.layers[i] for i in self.order}
        # what feeds each node, by input port: (source node, its output)
        self.feeds: dict[str, list[tuple[str, int]]] = {
            i: list(blueprint.sources[i]) for i in self.order
        }
        self.sources: dict[str, list[str]] = {
            i: [src for src, _ in self.feeds[i]] for i in self.order
        }
        problem = text_wiring_problem(self.layers, self.feeds)
        if problem:
            raise ShapeError(problem)
        self.shapes = dict(blueprint.shapes)
        self.output_shapes = dict(blueprint.output_shapes)
        # nodes with several outputs: their value is a list of arrays, one per output
        self.multi: dict[str, int] = {
            i: n for i in self.order if (n := self.layers[i].n_outputs()) > 1
        }
        self.input_ids = list(blueprint.inputs)
        self.consumers: dict[str, list[str]] = {i: [] for i in self.order}
        for node_id in self.order:
            for src in self.sources[node_id]:
                self.consumers[src].append(node_id)
        self.pool_after: dict[str, str] = self._fuse_conv_pools() if fuse else {}
        # frozen blocks (Keras's trainable=False): every weight non-trainable, no update
        self.frozen = frozenset(i for i in blueprint.frozen if i in self.layers)
        self.specs: dict[str, list[WeightSpec]] = {
            i: _frozen_specs(self.layers[i].weight_specs(self.input_shapes(i)), i in self.frozen)
            for i in self.order
        }
        self._inference = {i for i in self.frozen if self.layers[i].INFERENCE_WHEN_FROZEN}
        self.relu_after: dict[str, str] = self._fuse_norm_relus() if fuse else {}
        self.pool_after_relu: dict[str, str] = self._fuse_relu_pools()
        # blocks run in the step of the block before them, which takes their gradient
        self._fused_into = {pool: conv for conv, pool in self.pool_after.items()}
        self._fused_into.update({act: norm for norm, act in self.relu_after.items()})
        self._fused_into.update({pool: norm for norm, pool in self.pool_after_relu.items()})
        self._backprop = self._needing_backward()
        self.heads = [self._head(node_id) for node_id in blueprint.outputs]
        self._head_ids = [h.id for h in self.heads]
        self._regularized = [  # (node, spec) of every trainable weight with a penalty
            (i, s) for i in self.order for s in self.specs[i] if s.regularizer and s.trainable
        ]
        self._forward_plan = self._plan_forward()
        self._backward_plan = self._plan_backward()
        self._flat: FlatParams | None = None  # the trainable weights in one array, once fit
        self.weights: dict[str, dict[str, np.ndarray]] = {}
        self.initialize(seed)
        self._caches: dict[str, object] = {}
        self._outputs: dict[str, list[np.ndarray]] = {}  # multi-output values, for backward

    def _needing_backward(self) -> set[str]:
        """The nodes a backward pass must visit: those with trainable weights and those
        downstream of one. Sets each layer's ``needs_input_grad``: a gradient into data
        or into blocks with nothing trainable upstream is never read, so blocks may skip it.
        """
        needed: set[str] = set()
        for node_id in self.order:
            sources = self.sources[node_id]
            upstream = any(s in needed for s in sources)
            self.layers[node_id].needs_input_grad = upstream
            if upstream or any(s.trainable for s in self.specs[node_id]):
                needed.add(node_id)
        return needed

    def input_shapes(self, node_id: str) -> list:
        """The shapes of what feeds ``node_id``, by input port."""
        return [self.shape_of(src, port) for src, port in self.feeds[node_id]]

    def shape_of(self, node_id: str, port: int = 0):
        """The shape of output ``port`` of ``node_id``."""
        if node_id in self.output_shapes:
            return self.output_shapes[node_id][port]
        return self.shapes[node_id]

    def _fuse_conv_pools(self) -> dict[str, str]:
        """Convolutions run as one step with the max pooling they alone feed: conv id -> pool id.

        See :mod:`nodenet.engine.layers.conv_pool`; the results are the same.
        """
        pairs = {}
        for node_id in self.order:
            consumers, sources = self.consumers[node_id], self.sources[node_id]
            if len(consumers) != 1 or len(sources) != 1:
                continue
            layer, pool = self.layers[node_id], self.layers[consumers[0]]
            if node_id in self.multi or consumers[0] in self.multi:
                continue
            if conv_pool.fusable(layer, pool, self.input_shapes(node_id)[0]):
                pairs[node_id] = consumers[0]
        return pairs

    def _fuse_norm_relus(self) -> dict[str, str]:
        """BatchNormalizations (not frozen) run as one step with the relu Activation they
        alone feed: norm id -> activation id. The results are the same."""
        pairs = {}
        for node_id in self.order:
            consumers = self.consumers[node_id]
            if self.layers[node_id].TYPE != "BatchNormalization" or len(consumers) != 1:
                continue
            act = self.layers[consumers[0]]
            relu = act.TYPE == "Activation" and act.config["activation"] == "relu"
            if relu and node_id not in self._inference:
                pairs[node_id] = consumers[0]
        return pairs

    def _fuse_relu_pools(self) -> dict[str, str]:
        """BatchNormalizations run with their relu (:meth:`_fuse_norm_relus`) and the max
        pooling that relu alone feeds: norm id -> pool id (``BatchNormalization.
        forward_relu_pool``). The results are the same."""
        triples = {}
        for node_id, act in self.relu_after.items():
            consumers = self.consumers[act]
            if len(consumers) != 1 or act in self.multi or consumers[0] in self.multi:
                continue
            pool = self.layers[consumers[0]]
            if fusable_pool(pool, self.input_shapes(consumers[0])[0]):
                triples[node_id] = consumers[0]
        return triples

    def _head(self, node_id: str) -> Head:
        config = self.layers[node_id].config
        ((source, _),) = self.feeds[node_id]
        layer = self.layers[source]
        fused = None
        single = source not in self.multi
        if single and layer.POST_ACTIVATION and len(self.consumers[source]) == 1:
            activation = layer.config["activation"]
            from nodenet.engine.losses import get_loss

            options = (config["from_logits"], config["label_smoothing"])
            if get_loss(config["loss"], *options).can_fuse(activation):
                fused = activation
        return Head(
            node_id,
            source,
            config["loss"],
            tuple(config["metrics"]),
            config["loss_weight"],
            fused,
            config["from_logits"],
            config["label_smoothing"],
        )

    # -- weights -----------------------------------------------------------------

    def initialize(self, seed: int | None = None) -> None:
        """Draw fresh weights with each block's initializers (Keras defaults)."""
        rng = np.random.default_rng(seed)
        self.weights = {
            node_id: {
                s.name: initialize(s.initializer, s.shape, rng, self.dtype, f"{node_id}: {s.name}")
                for s in self.specs[node_id]
            }
            for node_id in self.order
        }
        for node_id in self.order:  # state that is no weight (a vocabulary)
            self.weights[node_id].update(initial_state(self.layers[node_id]))
        # blocks whose weights are statistics of the training data, set by fit (adapt.py)
        # unless set_weights gives them first
        self.to_adapt: set[str] = adapt_pending(self)

    def count_params(self) -> tuple[int, int]:
        specs = [s for node_specs in self.specs.values() for s in node_specs]
        trainable = sum(s.size for s in specs if s.trainable)
        return trainable, sum(s.size for s in specs) - trainable

    def trainable(self) -> tuple[dict[str, np.ndarray], list[tuple[str, str, str]]]:
        """Every trainable array keyed ``node/name``, and (key, node, name) triples."""
        params, keys = {}, []
        for node_id in self.order:
            for spec in self.specs[node_id]:
                if spec.trainable:
                    key = f"{node_id}/{spec.name}"
                    params[key] = self.weights[node_id][spec.name]
                    keys.append((key, node_id, spec.name))
        return params, keys

    def flat_trainable(self) -> FlatParams:
        """The trainable weights as views into one contiguous array (for a fused update).

        The first call, and any call after a weight array was replaced, moves the weights
        into a new buffer: the weight dicts then hold its views, with the same values.
        """
        params, keys = self.trainable()
        flat = self._flat
        if flat is None or not flat.holds(params):
            flat = FlatParams(params, self.dtype)
            for key, node_id, name in keys:
                self.weights[node_id][name] = flat.params[key]
                flat.by_node.setdefault(node_id, {})[name] = flat.grad_views[key]
            self._flat = flat
        return flat

    # -- computation -------------------------------------------------------------

    def forward(
        self,
        inputs: dict[str, np.ndarray],
        training: bool = False,
        rng: np.random.Generator | None = None,
        keep_cache: bool | None = None,
    ) -> dict[str, np.ndarray]:
        """Outputs keyed by Output node id for a batch of ``inputs`` keyed by Input id.

        The caches for :meth:`backward` are kept when ``keep_cache`` (default:
        ``training``); gradients of the inference-mode graph need ``keep_cache=True``.
        """
        keep = training if keep_cache is None else keep_cache
        ctx = Context(training=training, rng=rng or np.random.default_rng(0))
        frozen_ctx = Context(training=False, rng=ctx.rng)  # a frozen BatchNormalization's
        values: dict[str, Any] = {}  # an array per node; a list of them for a multi-output one
        caches: dict[str, Any] = {}
        self._caches = caches
        self._outputs = {}
        weights = self.weights
        for node_id, layer, feeds, step, follower in self._forward_plan:
            if step == _INPUT and node_id in inputs:
                xs = [inputs[node_id]]
            else:  # port None: a block with one output
                xs = [values[s] if p is None else values[s][p] for s, p in feeds]
            try:
                if step <= _INPUT:
                    values[node_id], cache = layer.forward(weights[node_id], xs, ctx)
                elif step == _FROZEN:
                    values[node_id], cache = layer.forward(weights[node_id], xs, frozen_ctx)
                elif step == _CONV_POOL:  # a convolution run with its max pooling
                    args = (layer, self.layers[follower], weights[node_id], xs[0], ctx)
                    values[follower], cache = conv_pool.forward(*args)
                elif step == _NORM_RELU:  # a BatchNormalization run with its relu
                    values[follower], cache = layer.forward_relu(weights[node_id], xs, ctx)
                else:  # a BatchNormalization run with its relu and the pooling after
                    pool = self.layers[follower]
                    values[follower], cache = layer.forward_relu_pool(
                        weights[node_id], xs, ctx, pool
                    )
            except (NodenetError, MemoryError):
                raise
            except Exception as err:  # a bug in a block: say which block
                raise _blame(err, node_id, layer, "forward") from err
            if keep:
                caches[node_id] = cache
                if node_id in self.multi:
                    self._outputs[node_id] = values[node_id]
        return {h: values[h] for h in self._head_ids}

    def _plan_forward(self) -> list[tuple[str, Layer, list, int, str | None]]:
        """Per node in order, what :meth:`forward` does: (id, layer, feeds, step, follower);
        a feed's port is None for a block with one output; the blocks run in the step of
        the one before them (a pooling after its convolution, step ``_CONV_POOL``; a relu
        after its normalization, ``_NORM_RELU``, and a max pooling after that relu,
        ``_NORM_RELU_POOL``) are left out, the last of them named as its follower."""
        plan = []
        for node_id in self.order:
            layer = self.layers[node_id]
            if node_id in self._fused_into:
                continue
            feeds = [(s, p if s in self.multi else None) for s, p in self.feeds[node_id]]
            step, follower = self._fused_step(node_id)
            if follower is None:
                if node_id in self._inference:
                    step = _FROZEN
                else:
                    step = _INPUT if layer.TYPE == "Input" else _PLAIN
            plan.append((node_id, layer, feeds, step, follower))
        return plan

    def _fused_step(self, node_id: str) -> tuple[int | None, str | None]:
        """The step that runs ``node_id`` with the blocks after it, and the last of them
        (its follower); (None, None) for a block run alone."""
        for step, followers in (
            (_CONV_POOL, self.pool_after),
            (_NORM_RELU_POOL, self.pool_after_relu),
            (_NORM_RELU, self.relu_after),
        ):
            if node_id in followers:
                return step, followers[node_id]
        return None, None

    def _plan_backward(self) -> list[tuple[str, Layer, list, dict[str, str] | None]]:
        """Per node a backward pass visits, in reverse order: (id, layer, feeds, keys);
        feeds are (source, port, its number of outputs if several, else 0) by input port,
        None for an Input (no gradient goes to data); keys map weight names to ``node/name`` (None
        for a frozen block)."""
        plan = []
        for node_id in reversed(self.order):
            if node_id not in self._backprop:  # nothing trainable here or upstream
                continue
            feeds = [
                None if self.layers[s].TYPE == "Input" else (s, p, self.multi.get(s, 0))
                for s, p in self.feeds[node_id]
            ]
            keys = {w.name: f"{node_id}/{w.name}" for w in self.specs[node_id]}
            plan.append(
                (node_id, self.layers[node_id], feeds, None if node_id in self.frozen else keys)
            )
        return plan

    def backward(
        self, output_grads: dict[str, np.ndarray], into: FlatParams | None = None
    ) -> dict[str, np.ndarray]:
        """Weight gradients keyed ``node/name`` from dL/d(output) per Output id.

        For a head whose activation is fused with its loss, ``output_grads`` holds
        dL/dlogits of the node feeding it. Requires a ``forward(training=True)`` first.
        With ``into`` (:meth:`flat_trainable`), blocks that can write their weight
        gradients straight into its gradient buffer do: the returned arrays are then its
        views, valid until the next pass.
        """
        buffers = {} if into is None else into.by_node
        grads: dict[str, Any] = {}  # dL/d(output) per node; a list per output for a multi one
        logits: dict[str, np.ndarray] = {}
        for head in self.heads:
            if head.id not in output_grads:
                continue
            if head.fused_activation:
                logits[head.source] = output_grads[head.id]
            else:
                grads[head.id] = output_grads[head.id]
        weight_grads: dict[str, np.ndarray] = {}
        for node_id, layer, feeds, keys in self._backward_plan:
            if node_id in logits:
                g, from_logits = logits.pop(node_id), True
            elif node_id in grads:
                g, from_logits = grads.pop(node_id), False
            else:
                continue
            if node_id in self._fused_into:  # the block it ran with takes the gradient
                grads[self._fused_into[node_id]] = g
                continue
            if node_id in self.multi:  # an output nothing used gets a zero gradient
                g = [
                    np.zeros_like(out) if gi is None else gi
                    for gi, out in zip(g, self._outputs[node_id], strict=True)
                ]
            args = (node_id, layer, g, from_logits, buffers.get(node_id))
            input_grads, wgrads = self._backward_step(*args)
            if keys is not None:  # None: a frozen block, whose weights get no update
                for name, wg in wgrads.items():
                    weight_grads[keys.get(name) or f"{node_id}/{name}"] = wg
            _send_back(grads, feeds, input_grads)
        self._caches = {}
        self._outputs = {}
        return weight_grads

    def _backward_step(self, node_id: str, layer: Layer, g, from_logits: bool, into):
        """One block's input and weight gradients, run as :meth:`forward` ran it."""
        cache, weights = self._caches[node_id], self.weights[node_id]
        try:
            if node_id in self.pool_after:
                return conv_pool.backward(layer, weights, cache, g)
            if node_id in self.pool_after_relu:
                return layer.backward_relu_pool(weights, cache, g)
            if node_id in self.relu_after:
                return layer.backward_relu(weights, cache, g)
            layer.grad_out = into
            return layer.backward(weights, cache, g, from_logits=from_logits)
        except (NodenetError, MemoryError):
            raise
        except Exception as err:  # a bug in a block: say which block
            raise _blame(err, node_id, layer, "backward") from err
        finally:
            layer.grad_out = None

    def regularization(self, grads: dict[str, np.ndarray] | None = None) -> float:
        """The L1/L2 penalty of every regularized weight; adds its gradient to ``grads``."""
        total = 0.0
        for node_id, spec in self._regularized:
            reg = spec.regularizer
            w = self.weights[node_id][spec.name]
            l1, l2 = reg.get("l1", 0.0), reg.get("l2", 0.0)
            total += l1 * float(np.abs(w).sum()) + l2 * float(np.square(w).sum())
            if grads is not None:
                key = f"{node_id}/{spec.name}"
                extra = (l1 * np.sign(w) + (2 * l2) * w).astype(w.dtype)
                grads[key] = grads[key] + extra if key in grads else extra
        return total

    def predict_batches(
        self, inputs: dict[str, np.ndarray], batch_size: int = 256
    ) -> Iterator[dict[str, np.ndarray]]:
        """Outputs keyed by Output id, one batch after another, in sample order.

        The batch is made smaller than ``batch_size`` when its forward pass would
        not fit the memory budget (:meth:`inference_batch`).
        """
        inputs = self.check_inputs(inputs, cast=False)
        n = _length(inputs)
        batch_size = self.inference_batch(batch_size)
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size] for k, v in inputs.items()}
            yield self.forward(self.cast_batch(batch), training=False)

    def output_bytes(self, n: int) -> int:
        """Bytes of the outputs of every head for ``n`` samples."""
        return sum(size_of((n, *self.shapes[h.id]), self.dtype.itemsize) for h in self.heads)

    def predict(
        self, inputs: dict[str, np.ndarray], batch_size: int = 256
    ) -> dict[str, np.ndarray]:
        """Outputs for all samples of ``inputs``, computed batch by batch.

        The gathered outputs are checked against the memory budget first; the
        command line's ``predict`` writes them batch by batch instead.
        """
        n = _length(self.check_inputs(inputs, cast=False))
        reason = over_budget(self.output_bytes(n))
        if reason is not None:
            raise DataError(f"the outputs for {n:,} samples would take {reason}")
        parts: dict[str, list[np.ndarray]] = {h.id: [] for h in self.heads}
        for outputs in self.predict_batches(inputs, batch_size):
            for key, value in outputs.items():
                parts[key].append(value)
        return {
            k: np.concatenate(v) if v else np.zeros((0, *self.shapes[k]), self.dtype)
            for k, v in parts.items()
        }


# what forward does with a node: run it; take it from the inputs (else run it); run it in
# inference mode (a frozen BatchNormalization); run it with the max pooling after it; run
# it with the relu after it; run it with the relu and the max pooling after that
_PLAIN, _INPUT, _FROZEN, _CONV_POOL, _NORM_RELU, _NORM_RELU_POOL = 0, 1, 2, 3, 4, 5


def _send_back(grads: dict[str, Any], feeds: list, input_grads: list) -> None:
    """Add a block's input gradients to what its sources have received (one gradient per
    output for a block with several; None feeds are data, None gradients integers)."""
    for feed, ig in zip(feeds, input_grads, strict=False):
        if ig is None or feed is None:
            continue
        src, port, outputs = feed
        if outputs:
            per_output = grads.setdefault(src, [None] * outputs)
            old = per_output[port]
            per_output[port] = ig if old is None else old + ig
        elif src in grads:
            grads[src] = grads[src] + ig
        else:
            grads[src] = ig


def _frozen_specs(specs: list[WeightSpec], frozen: bool) -> list[WeightSpec]:
    """A frozen block's weights, all non-trainable (its own specs otherwise)."""
    return [replace(s, trainable=False) for s in specs] if frozen else specs


def _blame(err: Exception, node_id: str, layer: Layer, step: str) -> TrainingError:
    """A TrainingError for a bug ``err`` raised inside a block, naming the block and pass."""
    what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return TrainingError(f"the block {node_id!r} ({layer.TYPE}) failed in its {step} pass ({what})")


def _length(arrays: dict[str, np.ndarray]) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"the arrays have different numbers of samples: {lengths}")
    return next(iter(lengths.values()), 0)
