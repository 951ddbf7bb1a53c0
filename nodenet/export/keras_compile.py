"""How a Keras model was compiled, as nodenet's Output settings and optimizer.

The loss, loss weight and metrics of each output (given once, per output name, or as a
list), the optimizer with its settings and a learning-rate schedule. Losses and metrics
are known by the names nodenet's own registries give them (:data:`~nodenet.engine.losses.
LOSSES`, :data:`~nodenet.engine.metrics.METRICS`: Keras's function names) and by the
Keras names the metrics reproduce (``binary_accuracy``, ``mean_absolute_error``), plus
Keras's shorthands (``mse``, ``acc``); a Keras class (``MeanSquaredError``, ``AUC``) is
known by its snake_case name. Metrics nodenet does not compute are left out.
"""

from __future__ import annotations

import functools
from typing import Any

from nodenet.engine.losses import LOSSES
from nodenet.engine.losses import check_options as check_loss_options
from nodenet.engine.metrics import METRICS
from nodenet.engine.optimizers import OPTIMIZERS
from nodenet.engine.schedules import SCHEDULES, check_schedule
from nodenet.errors import brief, shorten
from nodenet.export.keras_weights import keras_snake

SKIP = object()  # what a conversion gives after recording a problem
_SKIP = SKIP
# Keras's shorthand names of losses and metrics, by the name nodenet registers
_KERAS_SHORTHANDS = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "huber_loss": "huber",
    "acc": "accuracy",
}
# what nodenet's metrics are told to build to learn the Keras metric they reproduce:
# (targets, predictions) shapes of a binary, a sparse and a categorical output
_PROBE_SHAPES = (((None, 1), (None, 1)), ((None,), (None, 3)), ((None, 3), (None, 3)))


@functools.cache
def keras_losses() -> dict[str, str]:
    """nodenet's loss for each Keras name of it (function and snake_case class names)."""
    names = {name: name for name in LOSSES}
    names.update((k, v) for k, v in _KERAS_SHORTHANDS.items() if v in LOSSES)
    return names


@functools.cache
def keras_metrics() -> dict[str, str]:
    """nodenet's metric for each Keras name of it: its own name, the Keras metrics it
    reproduces (``accuracy`` is ``binary_accuracy``, ``categorical_accuracy`` or
    ``sparse_categorical_accuracy`` by the output's shape), and Keras's shorthands."""
    names = {name: name for name in METRICS}
    for name in METRICS:
        for shapes in _PROBE_SHAPES:
            metric = METRICS.get(name)(*shapes)
            names.setdefault(keras_snake(metric.kind), name)
    names.update((k, v) for k, v in _KERAS_SHORTHANDS.items() if v in METRICS)
    return names


class CompileReader:
    """The compile settings part of the importer's reader (mixed into it): fills
    ``heads`` (Output params by Output id) and ``training``, recording ``problems``."""

    outputs: list[tuple[str, str]]
    problems: list[str]
    training: dict

    def compile(self, compile_config: dict) -> None:
        self.heads = {output_id: {} for output_id, _ in self.outputs}
        for key, field, convert in (
            ("loss", "loss", self.loss),
            ("loss_weights", "loss_weight", float),
            ("metrics", "metrics", self.metrics),
        ):
            for output_id, value in self.per_output(compile_config.get(key)).items():
                converted = convert(value)
                if isinstance(converted, dict):  # a loss with its options: Output params
                    self.heads[output_id].update(converted)
                elif converted is not _SKIP:
                    self.heads[output_id][field] = converted
        optimizer = compile_config.get("optimizer")
        if optimizer:
            self.optimizer(optimizer)

    def per_output(self, value: Any) -> dict[str, Any]:
        """A compile setting given once, per output (dict) or as a list, by Output id.

        A dict is keyed by output name: the model's output key or its output layer's name.
        """
        ids = [output_id for output_id, _ in self.outputs]
        if value is None:
            return {}
        if isinstance(value, dict) and not {"class_name", "config"} <= set(value):
            by_name = {source: output_id for output_id, source in self.outputs}
            by_name.update((output_id, output_id) for output_id in ids)
            unknown = [k for k in value if k not in by_name]
            if unknown:
                self.problems.append(
                    f"compile_config names {brief(unknown[0])}, which is not an output "
                    f"(outputs: {shorten(', '.join(by_name), 120)})"
                )
            return {by_name[k]: v for k, v in value.items() if k in by_name}
        if isinstance(value, list) and len(value) == len(ids) and len(ids) > 1:
            return dict(zip(ids, value, strict=True))
        return dict.fromkeys(ids, value)

    def loss(self, value: Any) -> Any:
        name = value.get("class_name") if isinstance(value, dict) else value
        key = keras_snake(name) if isinstance(name, str) else None
        if key not in keras_losses():
            self.problems.append(f"the loss {brief(name)} is not one nodenet has")
            return _SKIP
        config = (value.get("config") or {}) if isinstance(value, dict) else {}
        if not isinstance(config, dict):
            raise TypeError(f"the loss's config must be an object (got {brief(config)})")
        options = {"loss": keras_losses()[key]}
        if config.get("from_logits"):
            options["from_logits"] = True
        if config.get("label_smoothing"):
            options["label_smoothing"] = config["label_smoothing"]
        problem = check_loss_options(
            options["loss"], bool(config.get("from_logits")), config.get("label_smoothing") or 0
        )
        if problem:
            self.problems.append(f"the loss {name}: {problem}")
            return _SKIP
        return options if len(options) > 1 else options["loss"]

    def metrics(self, value: Any) -> Any:
        names = value if isinstance(value, list) else [value]
        found = []
        for item in names:
            name = item.get("class_name") if isinstance(item, dict) else item
            metric = keras_metrics().get(keras_snake(name)) if isinstance(name, str) else None
            if metric and metric not in found:
                found.append(metric)
        return found

    def optimizer(self, value: Any) -> None:
        kind = value.get("class_name") if isinstance(value, dict) else value
        name = kind.lower() if isinstance(kind, str) else ""
        if name not in OPTIMIZERS:
            self.problems.append(f"the optimizer {brief(kind)} is not one nodenet has")
            return
        config = value.get("config", {}) if isinstance(value, dict) else {}
        if not isinstance(config, dict):
            raise TypeError(f"the optimizer's config must be an object (got {brief(config)})")
        known = {p.name for p in OPTIMIZERS.get(name).PARAMS}
        settings = {k: v for k, v in config.items() if k in known and v is not None}
        if isinstance(settings.get("learning_rate"), dict):
            schedule = self.schedule(settings["learning_rate"])
            if schedule is _SKIP:
                return
            settings["learning_rate"] = schedule
        self.training["optimizer"] = {"name": name, **settings}

    def schedule(self, value: dict) -> Any:
        """A ``keras.optimizers.schedules`` object as nodenet's schedule of the same name,
        or _SKIP after a problem (never a silent default rate)."""
        kind, config = value.get("class_name"), value.get("config") or {}
        if not isinstance(config, dict):
            raise TypeError(f"the schedule's config must be an object (got {brief(config)})")
        if kind not in SCHEDULES:
            self.problems.append(
                f"the learning-rate schedule {brief(kind)} is not one nodenet has "
                f"(it has: {', '.join(SCHEDULES)})"
            )
            return _SKIP
        known = {p.name for p in SCHEDULES.get(kind).PARAMS}
        extra = [k for k in config if k not in known and k != "name"]
        settings, errors = check_schedule(
            {"schedule": kind, **{k: v for k, v in config.items() if k in known}},
            "learning_rate",
        )
        problems = [f"{k}={brief(config[k])} is not supported" for k in extra]
        problems += [str(err) for err in errors]
        if problems:
            self.problems.append(f"the learning-rate schedule {kind}: {'; '.join(problems)}")
            return _SKIP
        return settings
