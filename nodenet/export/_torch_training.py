"""The training half of a generated PyTorch module: Keras's fit, in torch.

Losses are Keras's (cross-entropies on probabilities, renormalized and clipped
to ``[1e-7, 1 - 1e-7]``; one value per position, averaged), weighted per
output and summed with the L1/L2 penalties; the optimizer is Keras's (Adam,
AdamW and RMSprop generated, the others torch's with Keras's settings; decoupled
weight decay), stepped with
the project's schedule, clipping, early stopping and ReduceLROnPlateau.
``main`` runs on one device, or under ``torchrun`` with DistributedDataParallel
(gloo on CPU, NCCL on GPU; a DistributedSampler shards the training set).
"""

from __future__ import annotations

from nodenet.engine.metrics import direction_of
from nodenet.engine.optimizers import check_optimizer
from nodenet.export._code import (
    block,
    doc_text,
    docstring,
    py_arguments,
    py_str,
    py_value,
    total,
    wrap,
)
from nodenet.export._common import Graph
from nodenet.export._data_code import load_data_source
from nodenet.export._torch_templates import (
    ACCURACIES,
    ADAM,
    ADAMW,
    CLASS_WEIGHTS,
    KERAS_EPSILON,
    LOAD_WEIGHTS,
    LOSSES,
    MAIN,
    RMSPROP,
    RMSPROP_DEFAULTS,
    SPLIT_TAIL,
    TO_DATASET,
)
from nodenet.export.blocks import exporter
from nodenet.export.blocks.preprocessing import learning_vocabulary, normalizing
from nodenet.export.blocks.text_vectorization import TO_TEXT_DATASET, takes_text
from nodenet.export.snippets import Source

FUNCTIONS = (
    "build_model load_weights load_data prepare to_dataset split_tail compute_loss metrics "
    "regularization make_optimizer learning_rate class_weights run_epoch fit main module "
    "TextSamples RMSprop Adam AdamW"
).split()
CONSTANTS = (
    "SEED EPOCHS BATCH_SIZE VALIDATION_SPLIT SHUFFLE INPUTS OUTPUTS EPSILON WEIGHTS DATA "
    "MONITOR PATIENCE MIN_DELTA RESTORE_BEST CLASS_WEIGHT WEIGHT_DECAY"
).split()
RESERVED = (*FUNCTIONS, *CONSTANTS, *LOSSES, *ACCURACIES)
TORCH_OPTIMIZERS = {  # nodenet name -> torch class, {Keras argument: torch argument}
    "sgd": ("SGD", {"momentum": "momentum", "nesterov": "nesterov"}),
    "adam": ("Adam", {"epsilon": "eps", "amsgrad": "amsgrad"}),
    "adamw": ("AdamW", {"epsilon": "eps", "amsgrad": "amsgrad", "weight_decay": "weight_decay"}),
    "rmsprop": (
        "RMSprop",
        {"rho": "rho", "momentum": "momentum", "epsilon": "epsilon", "centered": "centered"},
    ),
    "adagrad": (
        "Adagrad",
        {"initial_accumulator_value": "initial_accumulator_value", "epsilon": "eps"},
    ),
    "adadelta": ("Adadelta", {"rho": "rho", "epsilon": "eps"}),
    "adamax": ("Adamax", {"epsilon": "eps"}),
    "nadam": ("NAdam", {"epsilon": "eps"}),
}
GENERATED_OPTIMIZERS = {
    "rmsprop": (RMSPROP,),
    "adam": (KERAS_EPSILON, ADAM),
    "adamw": (KERAS_EPSILON, ADAMW),
}
_TORCH_DEFAULTS = {
    "momentum": 0.0,
    "nesterov": False,
    "amsgrad": False,
    "centered": False,
    "alpha": 0.99,
    "rho": 0.9,
    "initial_accumulator_value": 0.0,
}


def training_code(graph: Graph, model_class: str, with_weights: bool) -> list[str]:
    """The module-level parts after the model class, in order."""
    optimizer = check_optimizer(graph.training["optimizer"])[0]
    parts = [
        _constants(graph, with_weights, optimizer),
        _build_model(model_class),
    ]
    if with_weights:
        parts.append(LOAD_WEIGHTS)
    text = takes_text(graph.layers.values())  # strings stay strings, batched as lists
    parts += [block(load_data_source(graph)), TO_TEXT_DATASET if text else TO_DATASET, SPLIT_TAIL]
    parts += [LOSSES[loss].strip("\n") for loss in _losses(graph)]
    if _class_weighted(graph):
        parts.append(CLASS_WEIGHTS)
    metrics = _metrics(graph)
    parts.append(_compute_loss(graph))
    parts += [source.strip("\n") for name, source in ACCURACIES.items() if f"{name}(" in metrics]
    parts.append(metrics)
    penalties = _regularization_terms(graph)
    if penalties:
        parts.append(_regularization(penalties))
    schedule = optimizer["learning_rate"]
    if isinstance(schedule, dict):
        parts.append(_learning_rate(schedule))
    parts += GENERATED_OPTIMIZERS.get(optimizer["name"], ())
    parts += [_make_optimizer(optimizer, bool(graph.frozen()))]
    parts.append(_run_epoch(graph, optimizer, bool(penalties)))
    parts += [_fit(graph), _main(graph, with_weights)]
    return parts


def _losses(graph: Graph) -> list[str]:
    return list(dict.fromkeys(_loss_of(graph.layers[o].config) for o in graph.outputs))


def _loss_of(config: dict) -> str:
    """The loss function an Output calls: ``*_from_logits`` for a logits head."""
    return _loss(config["loss"] + ("_from_logits" if config.get("from_logits") else ""))


def _smoothed(config: dict, target: str) -> str:
    """``target`` with Keras's label smoothing (categorical: toward uniform; binary: 0.5)."""
    s = config.get("label_smoothing", 0.0)
    if not s:
        return target
    if config["loss"] == "binary_crossentropy":
        return f"({target} * {1 - s!r} + {s / 2!r})"
    return f"({target} * {1 - s!r} + {s!r} / {target}.shape[-1])"


def _loss(name: str) -> str:
    """A loss's name, which the generated code calls: one of :data:`LOSSES` only."""
    if name not in LOSSES:
        raise ValueError(f"{name!r} has no PyTorch export")
    return name


def _constants(graph: Graph, with_weights: bool, optimizer: dict) -> str:
    t = graph.training
    lines = [
        f"SEED = {py_value(t['seed'] if t['seed'] is not None else 0)}",
        f"EPOCHS = {py_value(t['epochs'])}",
        f"BATCH_SIZE = {py_value(t['batch_size'])}",
        f"VALIDATION_SPLIT = {py_value(t['validation_split'])}",
        f"SHUFFLE = {py_value(bool(t['shuffle']))}",
        f"INPUTS = {py_value(graph.inputs)}",
        f"OUTPUTS = {py_value(graph.outputs)}",
    ]
    if any(loss.endswith("crossentropy") for loss in _losses(graph)):
        lines.append("EPSILON = 1e-7  # Keras's fuzz factor: probabilities are clipped to it")
    stop = t["early_stopping"]
    if stop:
        monitor = py_str(stop["monitor"])
        lines += [
            f"MONITOR = {monitor}  # early stopping, as keras.callbacks.EarlyStopping",
            f"PATIENCE = {py_value(stop['patience'])}",
            f"MIN_DELTA = {py_value(stop['min_delta'])}",
            f"RESTORE_BEST = {py_value(bool(stop['restore_best']))}",
        ]
    if _class_weighted(graph):
        table = {int(k): float(v) for k, v in t["class_weight"].items()}
        lines.append(f"CLASS_WEIGHT = {py_value(table)}")
    if optimizer.get("weight_decay") and optimizer["name"] != "adamw":
        lines.append(f"WEIGHT_DECAY = {py_value(optimizer['weight_decay'])}  # Keras's, decoupled")
    if with_weights:
        lines.append('WEIGHTS = Path(__file__).with_name(Path(__file__).stem + "_weights.npz")')
    return block(lines)


def _build_model(model_class: str) -> str:
    return f"def build_model() -> {model_class}:\n    return {model_class}()"


def _head(graph: Graph, output_id: str, what: str) -> str:
    """``outputs`` of one head: the tensor itself for a one-output model."""
    return what if len(graph.outputs) == 1 else f"{what}[{py_str(output_id)}]"


def _class_weighted(graph: Graph) -> bool:
    """Whether training weighs samples by class (Keras's class_weight: one output only)."""
    return bool(graph.training["class_weight"]) and len(graph.outputs) == 1


def _compute_loss(graph: Graph) -> str:
    doc = "Each output's loss averaged over its positions, times its loss weight, summed."
    terms = []
    for o in graph.outputs:
        config = graph.layers[o].config
        target = _smoothed(config, f"targets[{py_str(o)}]")
        values = f"{_loss_of(config)}({_head(graph, o, 'outputs')}, {target})"
        weight = "" if config["loss_weight"] == 1.0 else f"{py_value(config['loss_weight'])} * "
        terms.append(f"{weight}{values}.mean()")
    if not _class_weighted(graph):
        head = "def compute_loss(outputs, targets: dict) -> torch.Tensor:"
        return "\n".join([head, *docstring(doc, 4), *total(terms, 4)])
    (output_id,) = graph.outputs
    config = graph.layers[output_id].config
    target = f"targets[{py_str(output_id)}]"
    lines = [
        f"values = {_loss_of(config)}(outputs, {_smoothed(config, target)})",
        "if training:",
        f"    weights = class_weights({target})",
        "    values = values * weights.view(-1, *[1] * (values.ndim - 1))",
        "return values.mean()",
    ]
    doc += " In training, each sample's loss is scaled by its class's weight (class_weight)."
    head = "def compute_loss(outputs, targets: dict, training: bool = False) -> torch.Tensor:"
    return "\n".join([head, *docstring(doc, 4), block(lines, 4)])


def _metric(graph: Graph, output_id: str, name: str) -> str | None:
    """A torch expression of a metric's batch mean, or None for Keras's stateful ones."""
    p, t = _head(graph, output_id, "outputs"), f"targets[{py_str(output_id)}]"
    loss = graph.layers[output_id].config["loss"]
    if name == "mae":
        return f"({p} - {t}).abs().mean()"
    if name == "mse":
        return f"({p} - {t}).square().mean()"
    if name != "accuracy":
        return None
    if graph.shapes[output_id][-1] == 1:  # Keras 3 picks the accuracy from the shapes
        return f"binary_accuracy({p}, {t})"
    if loss == "sparse_categorical_crossentropy":
        return f"sparse_categorical_accuracy({p}, {t})"
    return f"categorical_accuracy({p}, {t})"


def _metrics(graph: Graph) -> str:
    entries, skipped = [], []
    for o in graph.outputs:
        for name in graph.layers[o].config["metrics"]:
            key = name if len(graph.outputs) == 1 else f"{o}_{name}"
            expr = _metric(graph, o, name)
            if expr is None:
                skipped.append(key)
            else:
                entries.append(f"{py_str(key)}: {expr},")
    doc = "Batch means of the metrics Keras reports per output."
    if _class_weighted(graph):
        doc += " Unlike Keras's, they are not weighted by class_weight while training."
    if skipped:
        doc += f" Not computed here (Keras's stateful metrics): {doc_text(', '.join(skipped))}."
    lines = ["def metrics(outputs, targets: dict) -> dict[str, torch.Tensor]:", *docstring(doc, 4)]
    if not entries:
        return "\n".join([*lines, "    return {}"])
    return "\n".join([*lines, "    return {", block(entries, 8), "    }"])


def _regularization_terms(graph: Graph) -> list[str]:
    terms, frozen = [], set(graph.frozen())  # Keras adds none for a frozen layer's weights
    for node_id in graph.computing():
        if node_id in frozen:
            continue
        layer, shapes = graph.layers[node_id], graph.input_shapes(node_id)
        refs = exporter(layer).torch_weights(f"model.{graph.attr(node_id)}", shapes)
        for spec in layer.weight_specs(shapes):
            if not spec.regularizer or not spec.trainable:
                continue
            for ref in refs.get(spec.name, []):
                if spec.regularizer.get("l1"):
                    terms.append(f"{py_value(spec.regularizer['l1'])} * {ref}.abs().sum()")
                if spec.regularizer.get("l2"):
                    terms.append(f"{py_value(spec.regularizer['l2'])} * {ref}.square().sum()")
    return terms


def _regularization(terms: list[str]) -> str:
    doc = docstring("The L1/L2 penalties Keras adds to the loss for regularized weights.", 4)
    head = "def regularization(model: nn.Module) -> torch.Tensor:"
    return "\n".join([head, *doc, *total(terms, 4)])


def _learning_rate(schedule: dict) -> str:
    c = dict(schedule)
    name = c.pop("schedule")
    lines = [f"Keras's {doc_text(name)}({doc_text(py_arguments([], c))}) at an optimizer step."]
    if name in ("ExponentialDecay", "InverseTimeDecay"):
        lines.append(f"progress = step / {py_value(c['decay_steps'])}")
        if c["staircase"]:
            lines.append("progress = math.floor(progress)")
        lr0, rate = py_value(c["initial_learning_rate"]), py_value(c["decay_rate"])
        if name == "ExponentialDecay":
            lines.append(f"return {lr0} * {rate} ** progress")
        else:
            lines.append(f"return {lr0} / (1 + {rate} * progress)")
    elif name == "PiecewiseConstantDecay":
        lines += [
            f"for boundary, value in zip({py_value(c['boundaries'])}, "
            f"{py_value(c['values'][:-1])}, strict=True):",
            "    if step <= boundary:",
            "        return value",
            f"return {py_value(c['values'][-1])}",
        ]
    else:
        lines += _cosine_lines(c)
    doc = docstring(lines[0], 4)
    return "\n".join(["def learning_rate(step: int) -> float:", *doc, block(lines[1:], 4)])


def _cosine_lines(c: dict) -> list[str]:
    lr0, alpha = py_value(c["initial_learning_rate"]), py_value(c["alpha"])
    steps, warmup = py_value(c["decay_steps"]), py_value(c["warmup_steps"])
    if c["warmup_target"] is None:
        return [
            f"cosine = 0.5 * (1 + math.cos(math.pi * min(step, {steps}) / {steps}))",
            f"return {lr0} * ((1 - {alpha}) * cosine + {alpha})",
        ]
    target = py_value(c["warmup_target"])
    return [
        f"step = min(step, {py_value(c['decay_steps'] + c['warmup_steps'])})",
        f"if step < {warmup}:",
        f"    return ({target} - {lr0}) * step / {warmup} + {lr0}",
        f"cosine = 0.5 * (1 + math.cos(math.pi * (step - {warmup}) / {steps}))",
        f"return {target} * ((1 - {alpha}) * cosine + {alpha})",
    ]


def _make_optimizer(optimizer: dict, frozen: bool = False) -> str:
    name = optimizer["name"]
    torch_class, renames = TORCH_OPTIMIZERS[name]
    schedule = isinstance(optimizer["learning_rate"], dict)
    args = {"lr": Source("learning_rate(0)") if schedule else optimizer["learning_rate"]}
    if "beta_1" in optimizer and (optimizer["beta_1"], optimizer["beta_2"]) != (0.9, 0.999):
        args["betas"] = (optimizer["beta_1"], optimizer["beta_2"])
    defaults = RMSPROP_DEFAULTS if name == "rmsprop" else _TORCH_DEFAULTS
    for keras_name, torch_name in renames.items():
        value = optimizer[keras_name]
        if torch_name == "eps" or value != defaults.get(torch_name, not value):
            args[torch_name] = value
    if name == "nadam":
        args["momentum_decay"] = 1.0  # Keras's momentum schedule: 0.96 ** step
    where = "" if name in GENERATED_OPTIMIZERS else "torch.optim."  # epsilon where Keras puts it
    params = "model.parameters()"
    if frozen:  # a frozen block's weights are left out, as Keras's optimizer leaves them
        params = "[p for p in model.parameters() if p.requires_grad]"
    call = f"{where}{torch_class}({params}, {py_arguments([], args)})"
    doc = f"The project's {doc_text(name)} optimizer, configured as Keras configures it."
    if frozen:
        doc += " Frozen blocks' weights are left out."
    head = "def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:"
    return "\n".join([head, *docstring(doc, 4), block([f"return {call}"], 4)])


def _step_lines(graph: Graph, optimizer: dict) -> list[str]:
    """The body of a training step, after the forward pass."""
    lines = []
    if isinstance(optimizer["learning_rate"], dict):
        lines += ["for group in optimizer.param_groups:", '    group["lr"] = learning_rate(step)']
    lines += ["optimizer.zero_grad()", "loss.backward()"]
    if optimizer["clipnorm"]:
        lines += [
            "for parameter in net.parameters():  # Keras's clipnorm: each array on its own",
            f"    nn.utils.clip_grad_norm_(parameter, {py_value(optimizer['clipnorm'])})",
        ]
    if optimizer["global_clipnorm"]:
        lines.append(
            f"nn.utils.clip_grad_norm_(net.parameters(), {py_value(optimizer['global_clipnorm'])})"
        )
    if optimizer["clipvalue"]:
        clip = py_value(optimizer["clipvalue"])
        lines.append(f"nn.utils.clip_grad_value_(net.parameters(), {clip})")
    if optimizer.get("weight_decay") and optimizer["name"] != "adamw":
        lines += [
            "with torch.no_grad():  # Keras's weight decay, before the update",
            "    for parameter in net.parameters():",
            '        parameter.mul_(1 - WEIGHT_DECAY * optimizer.param_groups[0]["lr"])',
        ]
        if graph.frozen():  # not a frozen block's weights: the optimizer does not hold them
            lines[-2:] = [
                '    for parameter in optimizer.param_groups[0]["params"]:',
                '        parameter.mul_(1 - WEIGHT_DECAY * optimizer.param_groups[0]["lr"])',
            ]
    return [*lines, "optimizer.step()", "step += 1"]


def _run_epoch(graph: Graph, optimizer: dict, regularized: bool) -> str:
    weighted = ", training" if _class_weighted(graph) else ""
    loss = f"loss = compute_loss(outputs, targets{weighted})"
    if regularized:
        loss += " + regularization(model)"
    lines = [
        "training = optimizer is not None",
        "net.train(training)",
    ]
    if regularized:
        lines.append("model = net.module if isinstance(net, DistributedDataParallel) else net")
    lines += [
        "totals, count = {}, 0",
        "for batch in loader:",
        "    tensors = [t.to(device) if torch.is_tensor(t) else t for t in batch]"
        if takes_text(graph.layers.values())  # a batch of strings is a list
        else "    tensors = [t.to(device) for t in batch]",
        "    inputs, outcomes = tensors[: len(INPUTS)], tensors[len(INPUTS) :]",
        "    targets = dict(zip(OUTPUTS, outcomes, strict=True))",
        "    with torch.set_grad_enabled(training):",
        "        outputs = net(*inputs)",
        f"        {loss}",
        "    if training:",
        *("        " + line for line in _step_lines(graph, optimizer)),
        '    for key, value in {"loss": loss, **metrics(outputs, targets)}.items():',
        "        totals[key] = totals.get(key, 0.0) + value.detach() * len(tensors[0])",
        "    count += len(tensors[0])",
        "sums = torch.stack([*totals.values(), torch.tensor(float(count), device=device)])",
        "if training and dist.is_initialized():",
        "    dist.all_reduce(sums)  # each process trained on its own shard",
        "means = zip(totals, sums[:-1], strict=True)",
        "return {key: float(total / sums[-1]) for key, total in means}, step",
    ]
    doc = docstring(
        "One pass over loader, training when given an optimizer: the mean loss and metrics "
        "over its samples, and the optimizer's step count after it.",
        4,
    )
    head = "def run_epoch(net: nn.Module, loader: DataLoader, device, optimizer=None, step=0):"
    return "\n".join([head, *doc, block(lines, 4)])


def _plateau(graph: Graph) -> tuple[list[str], list[str]]:
    """Creating torch's ReduceLROnPlateau as Keras's behaves, and stepping it."""
    plateau = graph.training["reduce_lr_on_plateau"]
    if not plateau:
        return [], []
    mode = plateau["mode"]
    if mode == "auto":
        mode = "max" if direction_of(plateau["monitor"]) == "up" else "min"
    options = {
        "mode": mode,
        "factor": plateau["factor"],
        "patience": max(plateau["patience"] - 1, 0),  # Keras reduces on the patience-th bad epoch
        "threshold": plateau["min_delta"],
        "threshold_mode": "abs",
        "cooldown": plateau["cooldown"],
        "min_lr": plateau["min_lr"],
    }
    create = [
        f"plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "
        f"{py_arguments([], options)})"
    ]
    monitor = py_str(plateau["monitor"])
    step = [f"if {monitor} in logs:", f"    plateau.step(logs[{monitor}])"]
    return create, step


def _early_stopping(graph: Graph) -> tuple[list[str], list[str], list[str]]:
    stop = graph.training["early_stopping"]
    if not stop:
        return [], [], []
    mode = stop["mode"]
    if mode == "auto":
        mode = "max" if direction_of(stop["monitor"]) == "up" else "min"
    current = "-logs[MONITOR]" if mode == "max" else "logs[MONITOR]"
    start = ["best, best_state, wait = math.inf, None, 0"]
    check = [
        "if MONITOR not in logs:",
        "    continue",
        "wait += 1",
        f"if {current} < best - MIN_DELTA:",
        f"    best, wait = {current}, 0",
        "    if RESTORE_BEST:",
        "        best_state = copy.deepcopy(model.state_dict())",
        "elif wait >= PATIENCE:",
        "    if rank == 0:",
        '        print(f"Early stopping after epoch {epoch + 1}", flush=True)',
        "    break",
    ]
    end = ["if best_state is not None:", "    model.load_state_dict(best_state)"]
    return start, check, end


def _fit(graph: Graph) -> str:
    create_plateau, step_plateau = _plateau(graph)
    start, check, end = _early_stopping(graph)
    lines = []
    if start:
        lines.append("model = net.module if isinstance(net, DistributedDataParallel) else net")
    lines += [*create_plateau, *start, "step = 0", "for epoch in range(epochs):"]
    lines += [
        "    if isinstance(train_loader.sampler, DistributedSampler):",
        "        train_loader.sampler.set_epoch(epoch)  # a new shuffle every epoch",
        "    logs, step = run_epoch(net, train_loader, device, optimizer, step)",
        "    if validation_loader is not None:",
        "        validation, _ = run_epoch(net, validation_loader, device)",
        '        logs.update({f"val_{key}": value for key, value in validation.items()})',
        "    if rank == 0:",
        '        text = " - ".join(f"{key} {value:.4f}" for key, value in logs.items())',
        '        print(f"Epoch {epoch + 1}/{epochs} - {text}", flush=True)',
        *("    " + line for line in step_plateau + check),
        *end,
    ]
    doc = docstring(
        "Keras's fit: an epoch of training, then validation, logs (first process only) and "
        "the callbacks.",
        4,
    )
    head = (
        "def fit(net: nn.Module, optimizer, train_loader: DataLoader, validation_loader, "
        "epochs: int, device, rank: int) -> None:"
    )
    return "\n".join([wrap(head), *doc, block(lines, 4)])


def _main(graph: Graph, with_weights: bool) -> str:
    load = "    load_weights(model, WEIGHTS)\n" if with_weights else ""
    if not with_weights and learning_vocabulary(graph.layers.values()):  # vocabularies first
        load += "    adapt_text(model, data, device)\n"
    if not with_weights and normalizing(graph.layers.values()):  # Normalization: adapt first
        load += "    adapt_normalization(model, data, device)\n"
    return MAIN.replace("{load}", load)
