"""The PyTorch export of a project with groups: an ``nn.Module`` class per definition (its
submodules named after the definition's inner ids, an instance of a definition's class per
``Group`` block inside it), and one attribute per ``Group`` block in the graph's class, so
``state_dict`` keys read ``b1.d1.weight``. The graph's class draws and freezes every weight
(``self.b1.d1``), as it does without groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nodenet.errors import ShapeError, shorten
from nodenet.export._code import LINE, block, class_name, doc_text, docstring
from nodenet.export._groups import Scope, scope_vars
from nodenet.export.blocks import exporter
from nodenet.export.snippets import TORCH_HELPERS

if TYPE_CHECKING:
    from nodenet.export._common import Graph


def group_classes(graph: Graph, main: str) -> dict[str, str]:
    """A class name per definition (``res`` -> ``Res``), after checking that all its
    instances take inputs of one shape (a class is built for one)."""
    from nodenet.export._torch_training import RESERVED

    groups = graph.groups
    assert groups is not None
    taken = {main, *TORCH_HELPERS, *RESERVED, *graph.names.values()}
    classes = {}
    for name, scope in groups.scopes.items():
        first, *others = groups.every[name]
        for node_id in scope.items:
            if node_id in scope.instances:
                continue
            shapes = graph.input_shapes(scope.prefix + node_id)
            for path in others:
                if graph.input_shapes(f"{path}/{node_id}") != shapes:
                    raise ShapeError(
                        f"{path}: its group {shorten(name)!r} is used with inputs of "
                        f"another shape than at {first}; one PyTorch class cannot take both "
                        "(give each its own group)"
                    )
        classes[name] = class_name(name, taken=taken)
        taken.add(classes[name])
    return classes


def group_modules(graph: Graph, classes: dict[str, str], modules: list[str]) -> list[str]:
    """The graph's own submodules (``modules``) and an instance per ``Group`` block, in order."""
    groups = graph.groups
    assert groups is not None
    own = {line.split(" = ", 1)[0]: line for line in modules}
    lines = []
    for node_id in groups.top.items:
        attr = f"self.{graph.names[node_id]}"
        if node_id in groups.top.instances:
            lines.append(f"{attr} = {classes[groups.top.instances[node_id]]}()")
        elif attr in own:
            lines.append(own[attr])
    return lines


def group_forward(graph: Graph) -> list[str]:
    """The graph's ``forward`` lines up to its return: blocks, and ``Group`` blocks called."""
    groups = graph.groups
    assert groups is not None
    top, lines = groups.top, []
    for node_id in top.items:
        node = top.nodes[node_id]
        if node.type in ("Input", "Output"):
            continue
        attr = f"self.{graph.names[node_id]}"
        tensors = [graph.var(*groups.flat(top, s, p)) for s, p in top.feeds[node_id]]
        if node_id in top.instances:
            outs = groups.targets[node_id]
            lines.append(f"{', '.join(outs)} = {attr}({', '.join(tensors)})")
        else:
            expr = exporter(graph.layers[node_id]).torch_forward(
                attr, tensors, graph.input_shapes(node_id)
            )
            lines.append(f"{graph.targets(node_id)} = {expr}")
    return lines


def group_sources(graph: Graph, classes: dict[str, str]) -> list[str]:
    groups = graph.groups
    assert groups is not None
    return [_class(graph, scope, classes) for scope in groups.scopes.values()]


def _class(graph: Graph, scope: Scope, classes: dict[str, str]) -> str:
    groups = graph.groups
    assert groups is not None and scope.definition is not None
    names = scope_vars(groups, scope, graph.layers)
    modules, body = [], []
    for node_id in scope.items:
        attr, flat_id = f"self.{scope.local[node_id]}", scope.prefix + node_id
        tensors = [names[s, p] for s, p in scope.feeds[node_id]]
        count = 0
        while (node_id, count) in names:
            count += 1
        outs = ", ".join(names[node_id, j] for j in range(count))
        if node_id in scope.instances:
            modules.append(f"{attr} = {classes[scope.instances[node_id]]}()")
            body.append(f"{outs} = {attr}({', '.join(tensors)})")
            continue
        export, shapes = exporter(graph.layers[flat_id]), graph.input_shapes(flat_id)
        constructor = export.torch_module(shapes)
        if constructor is not None:
            modules.append(f"{attr} = {constructor}")
        body.append(f"{outs} = {export.torch_forward(attr, tensors, shapes)}")
    results = [names[s, p] for s, p in scope.outputs]
    body.append(f"return {', '.join(results)}")
    returns = "torch.Tensor" if len(results) == 1 else "tuple[torch.Tensor, ...]"
    doc = (
        f"The group {doc_text(scope.definition)}: one instance per Group block that uses it, "
        "each with its own weights (the graph's class draws them)."
    )
    name = classes[scope.definition]
    lines = [f"class {name}(nn.Module):", *docstring(doc, 4), ""]
    lines += ["    def __init__(self) -> None:", "        super().__init__()"]
    lines += [block(modules, 8)] if modules else []
    params = ", ".join(f"{v}: torch.Tensor" for v in scope.inputs)
    head = f"    def forward(self, {params}) -> {returns}:"
    if len(head) > LINE:  # as ruff splits a signature
        inner = f"        self, {params}"
        if len(inner) > LINE:
            inner = ",\n".join(f"        {p}" for p in ["self", *params.split(", ")]) + ","
        head = f"    def forward(\n{inner}\n    ) -> {returns}:"
    return "\n".join([*lines, "", head, block(body, 8)])
