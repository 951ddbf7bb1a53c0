"""The module the PyTorch training process executes is data-safe, like the exports.

It is the PyTorch export of the project plus one function of the backend's own, the
optimizer step. Text from a project (node ids, its name, data path, monitored names)
reaches it only as string literals: renamed with arbitrary text, the module has exactly
the tree of the same project with placeholder names, every callee is on the exports'
allow-list or the step's own short list, and the step itself holds no project text at
all (tests/export/test_code_safety.py has the generator of hostile texts).
"""

from __future__ import annotations

import ast
import copy

import pytest
from hypothesis import HealthCheck, assume, given, settings

from nodenet.graph.project import analyze
from nodenet.torch_backend.source import STEP, child_source, graph_of, step_function
from tests.export.test_code_safety import (
    ALLOWED_CALLS,
    base,
    callees,
    cases,
    placeholders,
    renamed,
    same_shape,
)

STEP_CALLS = frozenset(
    """
    learning_rate loss.backward net.parameters nn.utils.clip_grad_norm_
    nn.utils.clip_grad_value_ optimizer.step optimizer.zero_grad parameter.mul_ torch.no_grad
    """.split()
)
SETTINGS = {  # the optional lines of the step: schedule, clipping, weight decay
    "optimizer": {
        "name": "adam",
        "learning_rate": {
            "schedule": "ExponentialDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 10,
            "decay_rate": 0.9,
        },
        "clipnorm": 1.0,
        "weight_decay": 0.001,
    }
}


def hardened(stem: str):
    project = base(stem)
    project.training.update(copy.deepcopy(SETTINGS))
    return project


def check(stem: str, texts: dict) -> None:
    project = hardened(stem)
    plain_texts = placeholders(project)
    plain = renamed(project, plain_texts)
    keyed = dict(zip(plain_texts, texts.values(), strict=False))
    hostile = renamed(project, keyed)
    assume(not analyze(hostile).problems)
    tree = ast.parse(child_source(hostile))
    compile(tree, "child.py", "exec")
    node_names = same_shape(ast.parse(child_source(plain)), tree, keyed, plain_texts)
    extra = callees(tree, node_names) - ALLOWED_CALLS - STEP_CALLS
    assert not extra, f"calls the generator does not write: {sorted(extra)}"
    assert step_function(graph_of(hostile)) == step_function(graph_of(plain))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_any_text_stays_text_in_the_module_the_child_runs(case):
    check(*case)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_any_text_stays_text_in_the_module_the_child_runs_at_length(case):
    check(*case)


def test_the_step_calls_only_its_own_short_list():
    seen = set()
    for clip in ("clipnorm", "global_clipnorm", "clipvalue"):
        project = hardened("digits_mlp")
        optimizer = project.training["optimizer"]
        optimizer.pop("clipnorm")
        optimizer[clip] = 0.5
        tree = ast.parse(step_function(graph_of(project)))
        (function,) = tree.body
        assert isinstance(function, ast.FunctionDef) and function.name == STEP
        seen |= callees(tree, set())
        strings = [
            n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        assert {s.value for s in strings[1:]} == {"lr"}  # after the docstring: a dict key only
    assert seen == STEP_CALLS
