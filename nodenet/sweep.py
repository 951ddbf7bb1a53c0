"""Hyperparameter sweeps with Optuna: every trial a recorded run, the study beside them.

A sweep trains the project once per trial with values drawn from its search space
(:mod:`nodenet.sweep_space`). The Optuna study lives in the project's runs database
(``NAME.runs.sqlite``, Optuna's RDB storage, its tables beside the runs tables), and each
trial is a run there (``study`` and ``trial`` columns). Trial 0 is the project's own
settings, so the result says whether the best trial beat them. Each finished epoch reports
the objective to the trial, so a pruner stops a bad trial early; a pruned trial's run
ends ``stopped``, its message saying it was pruned.

``jobs > 1`` runs the trials in that many child processes (``python -m nodenet.sweep``),
which share the study through the SQLite file (with Optuna's heartbeat, so a child that
dies leaves its trial failed, not running) and each use ``cores // jobs`` BLAS threads.
Optuna is an optional extra: ``pip install 'nodenet[optuna]'``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nodenet.engine.events import EPOCH_SECONDS
from nodenet.errors import NodenetError
from nodenet.sweep_space import (
    ParamSpec,
    SweepError,
    apply_trial,
    current_value,
    resolve_specs,
)

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median",)
HEARTBEAT_SECONDS = 10  # a child's trial beats this often; 3 missed beats fail it
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def require_optuna():
    """The ``optuna`` module; a :class:`SweepError` saying how to install it when missing."""
    try:
        import optuna
    except ImportError:
        raise SweepError(
            "sweeps need Optuna, an optional extra: pip install 'nodenet[optuna]' "
            "(or pip install optuna)"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class SweepConfig:
    """What to sweep and how: plain data, handed to child processes as JSON."""

    project_file: str
    params: list[str]
    trials: int = 20
    jobs: int = 1
    sampler: str = "tpe"
    prune: str | None = None
    seed: int | None = None
    backend: str = "numpy"
    device: str = "cpu"
    epochs: int | None = None
    objective: str | None = None
    study: str | None = None
    allow_outside_data: bool = False
    defaults_trial: bool = True  # trial 0: the project's own settings
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SweepConfig:
        return cls(**json.loads(text))


def storage_url(project_file: str | Path) -> str:
    """Optuna's RDB storage URL of the project's runs database."""
    from nodenet.runs_db import runs_path

    return f"sqlite:///{runs_path(Path(project_file).resolve())}"


def make_storage(url: str, heartbeat: bool = False):
    """Optuna's RDB storage on the SQLite file, waiting for other writers (30 s)."""
    optuna = require_optuna()
    kwargs: dict[str, Any] = {"engine_kwargs": {"connect_args": {"timeout": 30}}}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_SECONDS, grace_period=3 * HEARTBEAT_SECONDS)
    return optuna.storages.RDBStorage(url, **kwargs)


def objective_of(project: Any, override: str | None = None) -> tuple[str, str]:
    """The metric a sweep optimizes and its direction (``minimize``/``maximize``): the
    early-stopping monitor if set, else ``val_loss``; ``max`` for accuracy-like names, as
    Keras decides in ``auto`` mode (an explicit early-stopping mode wins)."""
    from nodenet.engine.metrics import direction_of

    stopping = project.training.get("early_stopping") or {}
    metric = override or stopping.get("monitor") or "val_loss"
    mode = stopping.get("mode", "auto") if not override else "auto"
    if mode == "auto":
        mode = "max" if direction_of(metric) == "up" else "min"
    return metric, "maximize" if mode == "max" else "minimize"


def thread_count(jobs: int, cores: int | None = None) -> int:
    """BLAS threads for each of ``jobs`` processes sharing the machine."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


def _sampler(config: SweepConfig, specs: list[ParamSpec], offset: int = 0):
    optuna = require_optuna()
    seed = None if config.seed is None else config.seed + offset
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":
        infinite = [s.text() for s in specs if not s.finite]
        if infinite:
            raise SweepError(
                f"{infinite[0]}: the grid sampler needs a finite range (int or categorical)"
            )
        return optuna.samplers.GridSampler({s.key: s.grid() for s in specs}, seed=seed)
    raise SweepError(f"--sampler must be one of {', '.join(SAMPLERS)} (got {config.sampler!r})")


def _pruner(config: SweepConfig):
    optuna = require_optuna()
    if config.prune is None:
        return optuna.pruners.NopPruner()
    if config.prune == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5)  # epochs count from 1
    raise SweepError(f"--prune must be one of {', '.join(PRUNERS)} (got {config.prune!r})")


def load_project(config: SweepConfig):
    from nodenet.graph.project import load
    from nodenet.samples import with_fallback

    project, _note = with_fallback(load(config.project_file))
    return project


def open_study(
    config: SweepConfig,
    *,
    create: bool = True,
    offset: int = 0,
    heartbeat: bool = False,
    project: Any = None,
):
    """The study of ``config`` in the project's runs database (created with its settings,
    and trial 0 enqueued, when ``create``), the project (``project``, else read from
    ``config.project_file``) and the resolved specs."""
    from nodenet.runs_db import RunsDB, runs_path

    optuna = require_optuna()
    project = load_project(config) if project is None else project
    specs = resolve_specs(project, config.params)
    if config.trials < 1:
        raise SweepError(f"--trials must be at least 1 (got {config.trials})")
    sampler, pruner = _sampler(config, specs, offset), _pruner(config)  # checked first
    RunsDB(runs_path(Path(config.project_file).resolve())).close()  # refuses a bad file
    metric, direction = objective_of(project, config.objective)
    storage = make_storage(storage_url(config.project_file), heartbeat)
    name = config.study or time.strftime("sweep-%Y%m%d-%H%M%S")
    config.study = name
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if create and not study.trials:
        study.set_user_attr("params", [s.text() for s in specs])
        study.set_user_attr("objective", metric)
        if config.defaults_trial:
            defaults = {s.key: current_value(project, s.key) for s in specs}
            defaults = {k: v for k, v in defaults.items() if not isinstance(v, dict | list)}
            study.enqueue_trial(defaults, user_attrs={"defaults": True})
    return study, project, specs


class TrialRunner:
    """The objective Optuna calls: trains one trial as a recorded run; its value."""

    def __init__(
        self,
        config: SweepConfig,
        project: Any,
        specs: list[ParamSpec],
        *,
        on_epoch: Callable[[int, int, int, float | None], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.config, self.project, self.specs = config, project, specs
        self.metric, self.direction = objective_of(project, config.objective)
        self.on_epoch, self.should_stop = on_epoch, should_stop or (lambda: False)

    def backend(self):
        if self.config.backend == "torch":
            from nodenet.torch_backend import TorchBackend

            return TorchBackend(self.config.device, 1)
        from nodenet.backend import NumpyBackend

        return NumpyBackend()

    def __call__(self, trial) -> float:
        from nodenet.engine.events import EpochEnd
        from nodenet.runs_recorder import start_recording

        optuna = require_optuna()
        with warnings.catch_warnings():  # trial 0 keeps the project's value, in range or not
            warnings.filterwarnings("ignore", message="Fixed parameter")
            values = {s.key: s.suggest(trial) for s in self.specs}
        project = apply_trial(self.project, values)
        backend = self.backend()
        backend.build(project, allow_outside_data=self.config.allow_outside_data)
        study = self.config.study
        recorder = start_recording(
            project,
            backend,
            source="sweep",
            device=self.config.device if self.config.backend == "torch" else "cpu",
            name=f"{study} #{trial.number}",
            study=study,
            trial=trial.number,
        )
        trial.set_user_attr("run_id", recorder.run_id)
        if recorder.error:
            trial.set_user_attr("record_error", recorder.error)
        pruned: list[int] = []

        def watch(event) -> None:
            if not isinstance(event, EpochEnd):
                return
            value = event.metrics.get(self.metric)
            if value is not None:
                trial.report(float(value), event.epoch)
                if self.config.prune and trial.should_prune():
                    pruned.append(event.epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial.number, event.epoch, event.epochs, value)

        try:
            history = backend.fit(
                on_event=recorder.wrap(watch),
                should_stop=lambda: bool(pruned) or self.should_stop(),
                epochs=self.config.epochs,
            )
        finally:
            recorder.abandon()
        test = backend.evaluate()
        with tempfile.TemporaryDirectory(prefix="nodenet-trial-") as folder:
            weights = backend.save_weights(Path(folder) / "trial.weights.npz")
            recorder.done(test, weights, history)
        final = final_metrics(history)
        trial.set_user_attr("metrics", _finite(final))
        trial.set_user_attr("test", _finite(test or {}))
        if pruned:
            _mark_pruned(recorder, self.config.prune, pruned[0], history)
            trial.set_user_attr("pruned_at", pruned[0])
            raise optuna.TrialPruned(f"pruned after epoch {pruned[0]}")
        if self.should_stop():
            raise SweepStopped("the sweep was stopped")
        if self.metric not in final:
            names = ", ".join(final) or "none"
            raise SweepError(f"the objective {self.metric!r} is not logged (logged: {names})")
        return float(final[self.metric])


class SweepStopped(NodenetError):
    """A sweep stopped by its caller in the middle of a trial (the trial fails)."""


def final_metrics(history) -> dict[str, float]:
    """The metrics of the weights a run ended with (the best epoch's when restored)."""
    if not history.epochs:
        return {}
    chosen = history.best_epoch if history.restored_best else None
    row = history.epochs[(chosen or len(history.epochs)) - 1]
    return {k: float(v) for k, v in row.items() if k != EPOCH_SECONDS}


def _finite(metrics: dict) -> dict:
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in metrics.items()}


def _mark_pruned(recorder, pruner: str | None, epoch: int, history) -> None:
    """The pruned trial's run: ``stopped``, its message naming the pruner and the epoch."""
    from nodenet.runs_db import RunsDB

    if recorder.path is None or recorder.run_id is None:
        return
    with RunsDB(recorder.path) as db:
        db.finish(
            recorder.run_id,
            "stopped",
            message=f"pruned by the sweep's {pruner} pruner after epoch {epoch}",
            best_epoch=history.best_epoch,
        )


def run_sweep(
    config: SweepConfig,
    *,
    on_trial: Callable[[Any], None] | None = None,
    on_epoch: Callable[[int, int, int, float | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    project: Any = None,
):
    """Run the sweep (in this process, or in ``config.jobs`` children that read the
    project file); its study. ``project``: the project to sweep in this process (the
    GUI's document, saved or not), at ``config.project_file``."""
    if config.jobs > 1:
        return _run_parallel(config, on_trial=on_trial, should_stop=should_stop)
    study, project, specs = open_study(config, project=project)
    runner = TrialRunner(config, project, specs, on_epoch=on_epoch, should_stop=should_stop)
    stop = should_stop or (lambda: False)

    def after(study, trial) -> None:
        if on_trial is not None:
            on_trial(trial)
        if stop():
            study.stop()

    study.optimize(
        runner,
        n_trials=config.trials,
        catch=(NodenetError, ArithmeticError),
        callbacks=[after],
    )
    return study


def _quotas(trials: int, jobs: int) -> list[int]:
    """Trials per child: ``trials`` shared out as evenly as possible."""
    return [q for q in (trials // jobs + (i < trials % jobs) for i in range(jobs)) if q]


def _run_parallel(config: SweepConfig, *, on_trial=None, should_stop=None):
    """``config.jobs`` children, each ``python -m nodenet.sweep`` with its share of trials."""
    optuna = require_optuna()
    study, _project, _specs = open_study(config)
    env = dict(os.environ)
    threads = str(thread_count(config.jobs))
    env.update({name: threads for name in THREAD_VARIABLES})
    children = []
    for i, quota in enumerate(_quotas(config.trials, config.jobs)):
        if i == 1:  # the first child takes trial 0 alone: SQLite cannot lock the
            _wait_for_queue(study, children[0][0])  # queue for two taking it at once
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (the child's output; closed below)
        command = [sys.executable, "-m", "nodenet.sweep", config.to_json(), str(quota), str(i)]
        children.append((subprocess.Popen(command, env=env, stdout=log, stderr=log), log))
    seen: set[int] = set()
    try:
        while True:
            done = all(child.poll() is not None for child, _ in children)
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    if on_trial is not None:
                        on_trial(trial)
            if done:
                break
            if should_stop is not None and should_stop():
                for child, _ in children:
                    child.terminate()
            time.sleep(0.5)
    finally:
        for child, _ in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    failures = []
    for child, log in children:
        log.seek(0)
        if child.returncode not in (0, -15):
            lines = log.read().strip().splitlines()
            failures.append(lines[-1] if lines else f"exit code {child.returncode}")
        log.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental in Optuna 3 and 4
        optuna.storages.fail_stale_trials(study)
    if failures and not any(t.state.is_finished() for t in study.trials):
        raise SweepError(f"the sweep's trial processes failed: {failures[0]}")
    return study


def _wait_for_queue(study, child) -> None:
    """Until no enqueued trial waits (or ``child`` ended)."""
    while child.poll() is None and any(t.state.name == "WAITING" for t in study.get_trials()):
        time.sleep(0.2)


def worker_main(argv: list[str] | None = None) -> int:
    """A child of a parallel sweep: ``CONFIG_JSON QUOTA INDEX``; runs its QUOTA trials."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config = SweepConfig.from_json(argv[0])
    quota, index = int(argv[1]), int(argv[2])
    try:
        study, project, specs = open_study(config, create=False, offset=index + 1, heartbeat=True)
        runner = TrialRunner(config, project, specs)
        study.optimize(runner, n_trials=quota, catch=(NodenetError, ArithmeticError))
    except NodenetError as err:
        print(f"nodenet: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
