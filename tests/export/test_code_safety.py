"""Exported code is data-safe: text from a project never becomes code.

Every string a project holds (its name, node ids, the data path, a monitored
quantity) reaches the generated Keras and PyTorch modules only as a quoted
literal, or escaped inside a docstring. The property test renames a sample
project's nodes, name, data path and monitors with arbitrary text and checks
that each module compiles and has exactly the shape of the same project
exported with plain placeholder names: the same statements and calls (every
callee on a fixed allow-list), each piece of text an exact string constant.
The regression tests run the modules of the payloads issue 13 found.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import importlib.util
import json
import keyword
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nodenet.export import export_keras, export_pytorch, import_keras
from nodenet.export._code import doc_text, py_str, wrap
from nodenet.export._common import read_graph
from nodenet.graph.project import Project, analyze, load

ROOT = Path(__file__).parents[2]
SAMPLES = sorted((ROOT / "sample_projects").glob("*.json"))
BASES = ("two_in_two_out", "digits_mlp", "reviews_bilstm", "mnist1d_gru")
EXPORTERS = {"keras": export_keras, "pytorch": export_pytorch}
TOKEN = "zq"  # every placeholder starts with it; no generated name does

# Every callee the generators write, as a dotted name: "<node>" stands for an identifier made
# from a node id, "?" for an expression that is not a name (a call's result, a subscript).
ALLOWED_CALLS = frozenset(
    """
    <node> <node>.flatten <node>.long ? ?.abs ?.add_ ?.clamp ?.float ?.items ?.join ?.log
    ?.mean ?.mul_ ?.numpy ?.permutation ?.reshape ?.square ?.sum ?.to ?.with_name DataLoader
    DistributedDataParallel DistributedSampler F.max_pool1d F.max_pool2d F.pad Path RMSprop
    TensorDataset __doc__.splitlines argparse.ArgumentParser arrays.items binary_accuracy
    binary_crossentropy build_model categorical_accuracy categorical_crossentropy
    channels_first channels_last compile_model compute_loss copy.deepcopy data.get
    denominator.sqrt dict dist.all_reduce dist.destroy_process_group dist.get_rank
    dist.init_process_group dist.is_initialized fit float importlib.util.find_spec int
    isinstance keras.Input keras.Model keras.backend.backend keras.callbacks.EarlyStopping
    keras.callbacks.ReduceLROnPlateau keras.optimizers.Adam keras.optimizers.RMSprop
    keras.optimizers.SGD keras.utils.set_random_seed key.split labels.astype
    layer.set_weights layers.Bidirectional layers.Concatenate layers.Conv1D layers.Conv2D
    layers.Dense layers.Dropout layers.Embedding layers.Flatten layers.GRU layers.LSTM
    layers.MaxPooling1D layers.MaxPooling2D layers.SimpleRNN len load_data load_diabetes
    load_digits load_weights logs.items logs.update loss.backward main make_optimizer
    math.floor math.sqrt max mean_squared_error merge_directions merge_pair metrics
    model.compile model.evaluate model.fit model.load_state_dict model.parameters
    model.state_dict model.summary net net.train next nn.Conv1d nn.Conv2d nn.Dropout
    nn.Embedding nn.GRU nn.LSTM nn.Linear nn.RNN nn.init.normal_ nn.init.ones_
    nn.init.orthogonal_ nn.init.trunc_normal_ nn.init.uniform_ nn.init.zeros_ np.eye np.load
    np.random.default_rng np.savez optimizer.step optimizer.zero_grad os.environ.get
    outputs.chunk parameter.sub_ parser.add_argument parser.parse_args plateau.step prepare
    print probs.argmax probs.clamp probs.log probs.sum range round run_epoch
    self.reset_parameters split_tail super super.__init__ t.to target.argmax to_dataset
    torch.as_tensor torch.cat torch.cuda.is_available torch.cuda.set_device torch.device
    torch.from_numpy torch.manual_seed torch.no_grad torch.optim.SGD
    torch.optim.lr_scheduler.ReduceLROnPlateau torch.relu torch.set_grad_enabled
    torch.sigmoid torch.softmax torch.stack torch.tensor torch.zeros_like totals.get
    totals.values train_loader.sampler.set_epoch tuple validation.items value.cpu
    value.detach variance_scaling_ with_ones x.astype x.mean x.movedim x.std zip
    Adam all super.step ?.astype np.abs np.maximum np.where
    """.split()
) | frozenset(  # TextVectorization (reviews_folder_textvec): its tokenizer, adapt, text batches
    """
    ?.append ?.split TextSamples TextVectorization adapt_normalization adapt_text counts.get
    counts.pop documents.get enumerate features.predict hook.remove iter layer.adapt
    layer.get_vocabulary layers.TextVectorization learned.astype learned.mean list map
    math.log model model.eval model.modules model.train module.adapt
    module.register_forward_pre_hook np.array np.asarray np.concatenate out.clamp
    self.index.get self.set_vocabulary self.tokens set sorted str str.maketrans sum t.encode
    text.translate texts.items torch.is_tensor torch.zeros x.items x.values
    self.register_buffer torch.empty
    """.split()
)

# Text that has broken generated code before, or could: quotes, escapes, line breaks.
NASTY = (
    'x""";open("PWNED","w").write("1");raise SystemExit(0);"""',
    'y" + str(open("PWNED","w")) + "',
    "y' + str(open('PWNED','w')) + '",
    "\\N{oops}",
    'a\n"""\nimport os',
    "\\",
    "a\\",
    '"',
    "'''",
    "\r",
    "\x00",
    "\u2028",
    "\x85",
    "\ufeff",
    "\ud800",
    "{x}",
    "# comment",
    "x)\nimport os\n(",
    "é中文",
    "\t\x0b\x0c",
)
FRAGMENTS = st.sampled_from(
    ['"', "'", '"""', "\\", "\n", "\r", "\\N{oops}", "{", "}", "#", ")", "(", ",", ":", " ",
     "\x00", "\u2028", "\ud800", "open(", "x", "é", "1"]
)  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(min_size=1, max_size=12),
    st.lists(FRAGMENTS, min_size=1, max_size=8).map("".join),
    st.text(st.characters(codec=None, categories=("Cs", "Cc", "Zl", "Zp", "Po")), min_size=1),
)


# -- projects renamed through the project's own data ----------------------------------------


def base(stem: str) -> Project:
    """A sample project with a ReduceLROnPlateau and early stopping, monitoring by name."""
    project = load(ROOT / "sample_projects" / f"{stem}.json")
    project.training["early_stopping"] = {"monitor": "val_loss", "patience": 2}
    project.training["reduce_lr_on_plateau"] = {"monitor": "val_loss", "patience": 2}
    return project


def renamed(project: Project, texts: dict[str, str]) -> Project:
    """``project`` with node ids, name, data path and monitors replaced by ``texts``:
    keys are the old ids, ``name``, ``path`` and ``monitor`` (the edges and the data
    section's mappings follow the ids)."""
    out = project.copy()
    ids = {n.id: texts[n.id] for n in out.nodes}
    for node in out.nodes:
        node.id = ids[node.id]
    for edge in out.edges:
        edge.src, edge.dst = ids[edge.src], ids[edge.dst]
    out.name = texts["name"]
    data = copy.deepcopy(out.data)
    for key in ("inputs", "targets"):
        if isinstance(data.get(key), dict):
            data[key] = {ids.get(k, k): v for k, v in data[key].items()}
    preprocess = data.get("preprocess") or {}
    for key, value in preprocess.items():
        if isinstance(value, dict):
            preprocess[key] = {ids.get(k, k): v for k, v in value.items()}
    source = data.get("source") or {}
    if source.get("kind") != "builtin":
        source["path"] = f"data/{texts['path']}.npz"
    out.data = data
    for section in ("early_stopping", "reduce_lr_on_plateau"):
        if out.training.get(section):
            out.training[section]["monitor"] = texts["monitor"]
    return out


def placeholders(project: Project) -> dict[str, str]:
    """Plain text for every renamable string: ``zq00q``, ``zq01q``, ..."""
    keys = [n.id for n in project.nodes] + ["name", "path", "monitor"]
    return {key: f"{TOKEN}{i:02d}q" for i, key in enumerate(keys)}


# -- comparing a module with its placeholder twin --------------------------------------------


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


_IDENTIFIER_FIELDS = {
    (ast.Name, "id"),
    (ast.Attribute, "attr"),
    (ast.arg, "arg"),
    (ast.keyword, "arg"),
    (ast.FunctionDef, "name"),
    (ast.ClassDef, "name"),
    (ast.alias, "name"),
    (ast.alias, "asname"),
}


def normalized(text: str) -> str:
    return " ".join(text.split())


def same_shape(a: ast.AST, b: ast.AST, texts: dict[str, str], plain_texts: dict[str, str]):
    """Check that ``hostile`` is ``plain`` with its placeholders replaced: the same tree,
    identifiers that differ only where the plain one is a placeholder's, and each string
    constant the plain one with every placeholder replaced by its text (docstrings up to
    how lines are wrapped). Returns the identifiers made from placeholders."""
    a_nodes, b_nodes = list(ast.walk(a)), list(ast.walk(b))
    assert len(a_nodes) == len(b_nodes), "the module's tree differs from the plain export's"
    pairs = {plain_texts[k]: texts[k] for k in plain_texts}
    idents: dict[str, str] = {}
    b_docs = docstrings(b)
    for x, y in zip(a_nodes, b_nodes, strict=True):
        assert type(x) is type(y), f"{ast.dump(x)[:80]} became {ast.dump(y)[:80]}"
        for field, value in ast.iter_fields(x):
            other = getattr(y, field)
            if isinstance(value, ast.AST):
                continue
            if isinstance(value, list):
                assert len(value) == len(other), f"{type(x).__name__}.{field} differs"
                continue
            if (type(x), field) in _IDENTIFIER_FIELDS and value != other:
                assert value.startswith((TOKEN, TOKEN.capitalize())), (value, other)
                assert other.isidentifier() and not keyword.iskeyword(other), other
                assert other not in dir(builtins), other
                idents[value] = other
            elif isinstance(x, ast.Constant) and isinstance(value, str):
                expected = value
                doc = id(y) in b_docs
                for old, new in [*pairs.items(), *idents.items()]:
                    expected = expected.replace(old, shown(new) if doc else new)
                if doc:  # the text as repr shows it, the lines wrapped anywhere
                    assert normalized(other) == normalized(expected)
                elif other != expected:  # a Keras layer named by the variable of an id
                    # holding a "." (Keras's torch backend refuses one in a layer name)
                    by_variable = value
                    for old, new in [*idents.items(), *pairs.items()]:
                        by_variable = by_variable.replace(old, new)
                    dotted = any("." in pairs[k] and k in value for k in pairs)
                    assert dotted and other == by_variable, (other, expected)
            else:
                assert value == other, f"{type(x).__name__}.{field}: {value!r} != {other!r}"
    return set(idents.values())


def callee(func: ast.AST, node_names: set[str]) -> str:
    """A call's callee as a dotted name (see :data:`ALLOWED_CALLS`)."""
    if isinstance(func, ast.Name):
        return "<node>" if func.id in node_names else func.id
    if isinstance(func, ast.Attribute):
        return f"{callee(func.value, node_names)}.{func.attr}"
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "super":
        return "super"
    return "?"


def scope_nodes(scope: ast.AST):
    """The nodes of a module's or a function's own scope: not those of the functions
    defined inside it, which are scopes of their own."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def callees(tree: ast.AST, node_names: set[str]) -> set[str]:
    """Every callee; a loop variable of the generator's own code (``for t in batch``) is
    not a node's variable even when a node has the same name, in the scope of that loop
    (a node's input ``k`` in ``forward`` stays a node where a function elsewhere loops
    over ``k``)."""
    names = set()
    functions = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
    for scope in [tree, *(n for n in ast.walk(tree) if isinstance(n, functions))]:
        nodes = list(scope_nodes(scope))
        loops = [n for n in nodes if isinstance(n, ast.For | ast.comprehension)]
        own = {t.id for loop in loops for t in ast.walk(loop.target) if isinstance(t, ast.Name)}
        for node in nodes:
            if isinstance(node, ast.Call):
                name = callee(node.func, node_names - own)
                node_call = name.startswith("self.") and name[5:] in node_names
                names.add("<node>" if node_call else name)
    return names


@functools.cache
def plain_export(stem: str, what: str) -> tuple[Project, dict[str, str], ast.AST]:
    """A base exported with placeholder text: the project, the placeholders, the tree."""
    project = base(stem)
    texts = placeholders(project)
    return project, texts, ast.parse(EXPORTERS[what](renamed(project, texts)).source)


def check_project(stem: str, texts: dict[str, str]) -> None:
    for what, export in EXPORTERS.items():
        project, plain_texts, plain_tree = plain_export(stem, what)
        keyed = dict(zip(plain_texts, texts.values(), strict=False))
        hostile = renamed(project, keyed)
        assume(not analyze(hostile).problems)  # ids the project itself refuses never export
        source = export(hostile).source
        tree = ast.parse(source)
        compile(tree, f"{what}.py", "exec")
        node_names = same_shape(plain_tree, tree, keyed, plain_texts)
        extra = callees(tree, node_names) - ALLOWED_CALLS
        assert not extra, f"{what}: calls the generator does not write: {sorted(extra)}"
        if what == "keras":  # each id names a layer, an input or an output; the name, the model
            # (an id with a "." names its layer by its variable: Keras's torch backend
            # refuses the dot in a layer name)
            constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
            variables = read_graph(hostile).names
            missing = [
                i
                for i in (n.id for n in hostile.nodes)
                if i not in constants and not ("." in i and variables[i] in constants)
            ]
            assert not missing and hostile.name in constants


def as_id(text: str) -> str:
    """``text`` without what no id may hold (control characters, the weights-key ``/``)."""
    return "".join(c for c in text if ord(c) >= 32 and ord(c) != 127 and c != "/")


@st.composite
def cases(draw):
    """A base project's stem and text for each of its ids, its name, path and monitors."""
    stem = draw(st.sampled_from(BASES))
    count = len(plain_export(stem, "keras")[0].nodes)
    texts = draw(st.lists(TEXT, min_size=count + 3, max_size=count + 3))
    texts[:count] = [as_id(t) for t in texts[:count]]
    assume(len(set(texts[:count])) == count and all(t.strip() for t in texts[:count]))
    assume(all(TOKEN not in t for t in texts))
    return stem, dict(enumerate(texts))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_any_text_stays_text_in_both_exports(case):
    stem, texts = case
    check_project(stem, texts)


@pytest.mark.slow
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(cases())
def test_any_text_stays_text_in_both_exports_at_length(case):
    stem, texts = case
    check_project(stem, texts)


def _named_k() -> tuple[str, dict[int, str]]:
    """reviews_bilstm with its Input called ``k`` (the example Hypothesis found)."""
    escape = 'x""";open("PWNED","w").write("1");raise SystemExit(0);"""'
    texts = ["k", escape, 'y" + str(open("PWNED","w")) + "', "0", "1", escape, escape, escape]
    return "reviews_bilstm", dict(enumerate(texts))


@settings(max_examples=1, database=None, deadline=None)
@given(st.just(_named_k()))
def test_a_node_named_like_a_loop_variable_of_the_generator_stays_a_node(case):
    """The PyTorch module's forward reads input ``k`` (``k.long()``) while the training
    code elsewhere loops over ``k``: a call on the node's variable, allowed."""
    check_project(*case)


def test_the_allow_list_is_what_the_samples_call():
    """Every sample (one also with weights) and every base calls only allowed names, and
    together they call all of them: the list is no larger than the generators need."""
    from nodenet.runner import build_model

    seen = set()
    plains = [renamed(p, placeholders(p)) for p in map(load, SAMPLES)]
    plains += [renamed(p, placeholders(p)) for p in map(base, BASES)]
    weighted = plains[[path.stem for path in SAMPLES].index("two_in_two_out")]
    runs = [(plain, None) for plain in plains] + [(weighted, build_model(weighted).get_weights())]
    for plain, weights in runs:
        for export in EXPORTERS.values():
            source = export(plain, weights).source
            names = {i for i in _names(source) if i.startswith((TOKEN, "Zq"))}
            seen |= callees(ast.parse(source), names)
    assert seen <= ALLOWED_CALLS, sorted(seen - ALLOWED_CALLS)
    assert ALLOWED_CALLS <= seen, sorted(ALLOWED_CALLS - seen)


def _names(source: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
    return out


# -- the quoting functions -------------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_py_str_is_one_line_literal_of_the_text(text):
    source = py_str(text)
    assert "\n" not in source and "\r" not in source
    assert "\u2028" not in source and "\x85" not in source
    tree = ast.parse(source, mode="eval")
    assert isinstance(tree.body, ast.Constant) and tree.body.value == text
    source.encode("utf-8")  # a lone surrogate is escaped, never written raw


@given(st.text(st.characters(codec=None)))
def test_py_str_round_trips_any_text(text):
    assert ast.literal_eval(py_str(text)) == text


@given(st.text(st.characters(codec=None)))
def test_doc_text_never_ends_a_docstring(text):
    escaped = doc_text(text)
    assert escaped.isprintable() and '"' not in escaped.replace('\\"', "")
    tree = ast.parse(f'"""The {escaped} data"""', mode="eval")
    assert tree.body.value == f"The {shown(text)} data"
    tree.body.value.encode("utf-8")


def shown(text: str) -> str:
    """How a docstring shows text: as ``repr`` does, without the quotes."""
    return repr(text)[1:-1]


def test_wrap_does_not_split_a_string_ending_in_a_backslash():
    line = f"    call({py_str('a' * 40 + chr(92))}, {py_str('b, c' * 12)}, other)"
    wrapped = wrap(line)
    assert ast.parse(wrapped.strip())
    call = ast.parse(wrapped.strip()).body[0].value
    assert [a.value for a in call.args[:2]] == ["a" * 40 + "\\", "b, c" * 12]


# -- the payloads of issue 13, run ----------------------------------------------------------

NAME_PAYLOAD = 'x""";open("PWNED","w").write("1");raise SystemExit(0);"""'
OUTPUT_PAYLOAD = 'y" + str(open("PWNED","w")) + "'


def write_modules(projects: dict[str, Project], folder: Path) -> list[Path]:
    """Both exports of each project written to ``folder`` (``<key>_<exporter>.py``)."""
    paths = []
    for key, project in projects.items():
        for what, export in EXPORTERS.items():
            source = export(project).source
            source.encode("utf-8")  # no lone surrogate is written raw
            paths.append(folder / f"exported_{key}_{what}.py")
            paths[-1].write_text(source, encoding="utf-8")
    return paths


def run_in_process(paths: list[Path], folder: Path, monkeypatch) -> None:
    """Run each module as an import (``__name__`` is not ``__main__``: it only defines
    things) with ``folder`` as the working directory; none may create a file."""
    monkeypatch.chdir(folder)
    before = set(folder.iterdir())
    for path in paths:
        runpy.run_path(str(path), run_name="exported")
    assert set(folder.iterdir()) == before
    assert not (folder / "PWNED").exists()


def two_heads(**texts: str) -> Project:
    project = load(ROOT / "sample_projects" / "two_in_two_out.json")
    keys = {n.id: n.id for n in project.nodes} | {"name": project.name, "path": "digits"}
    keys["monitor"] = "val_loss"
    return renamed(project, {**keys, **texts})


PAYLOADS = {
    "name": {"name": NAME_PAYLOAD},
    "output_id": {"ink": OUTPUT_PAYLOAD},
    "name_n_escape": {"name": "\\N{oops}"},
    "name_newline_quotes": {"name": 'a\n"""\nimport os'},
    "path": {"path": '\\N{oops}\n"""'},
    "ids": {"digit": "\\N{oops}", "meta": 'm"""', "image": "\\"},
    "monitor": {"monitor": 'val_loss"] + open("PWNED", "w")["'},
    "surrogates": {"name": "\ud800\x00\u2028", "image": "\ud800"},
}


@pytest.mark.parametrize("what", sorted(EXPORTERS))
def test_a_project_name_is_only_in_the_docstring(what):
    source = EXPORTERS[what](two_heads(name=NAME_PAYLOAD)).source
    tree = ast.parse(source)
    assert NAME_PAYLOAD in normalized(ast.get_docstring(tree, clean=False) or "")
    assert "open" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Raise)]


@pytest.mark.parametrize("what", sorted(EXPORTERS))
def test_an_output_id_is_a_string_constant(what):
    source = EXPORTERS[what](two_heads(ink=OUTPUT_PAYLOAD)).source
    tree = ast.parse(source)
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert constants.count(OUTPUT_PAYLOAD) >= 2  # OUTPUTS and the loss, or the targets
    assert "open" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


@pytest.mark.parametrize("key", sorted(PAYLOADS))
def test_payload_modules_compile(key):
    for export in EXPORTERS.values():
        source = export(two_heads(**PAYLOADS[key])).source
        compile(source, f"{key}.py", "exec")
        source.encode("utf-8")


def test_payload_modules_run_and_create_nothing(tmp_path, monkeypatch):
    pytest.importorskip("keras", reason="the Keras module imports keras")
    pytest.importorskip("torch", reason="the PyTorch module imports torch")
    projects = {key: two_heads(**texts) for key, texts in PAYLOADS.items()}
    run_in_process(write_modules(projects, tmp_path), tmp_path, monkeypatch)


@pytest.mark.slow
def test_payload_modules_run_in_a_fresh_interpreter(tmp_path):
    """As a user runs them: a new Python, the module's folder as working directory."""
    pytest.importorskip("keras", reason="the Keras module imports keras")
    pytest.importorskip("torch", reason="the PyTorch module imports torch")
    projects = {key: two_heads(**texts) for key, texts in PAYLOADS.items()}
    paths = write_modules(projects, tmp_path)
    script = "import runpy, sys\nfor p in sys.argv[1:]:\n    runpy.run_path(p, run_name='m')"
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND") or "torch"}
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, paths)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "PWNED").exists()


def keras_config(model_name: str, layer_name: str) -> dict:
    """A small Keras 2 functional config: Input x -> Dense ``layer_name``."""
    return {
        "class_name": "Model",
        "config": {
            "name": model_name,
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "x",
                    "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "x"},
                    "inbound_nodes": [],
                },
                {
                    "class_name": "Dense",
                    "name": layer_name,
                    "config": {"name": layer_name, "units": 2, "activation": "softmax"},
                    "inbound_nodes": [[["x", 0, 0, {}]]],
                },
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [[layer_name, 0, 0]],
        },
    }


def test_a_keras_model_name_is_text_through_import_and_export(tmp_path, monkeypatch):
    """A Keras config whose model and layer names carry the payloads imports to a project
    whose exports hold them as text and create no file when run."""
    path = tmp_path / "model.json"
    path.write_text(json.dumps(keras_config(NAME_PAYLOAD, OUTPUT_PAYLOAD)))
    project = import_keras(path)
    assert project.name == NAME_PAYLOAD
    assert OUTPUT_PAYLOAD in [n.id for n in project.nodes]
    for export in EXPORTERS.values():
        tree = ast.parse(export(project).source)
        constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert "open" not in {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert OUTPUT_PAYLOAD in constants or export is export_pytorch
    if importlib.util.find_spec("keras") and importlib.util.find_spec("torch"):
        folder = tmp_path / "run"
        folder.mkdir()
        run_in_process(write_modules({"imported": project}, folder), folder, monkeypatch)


@pytest.mark.filterwarnings("ignore:Using `assume` outside a property-based test")
def test_regression_a_node_named_like_a_loop_variable_of_the_template():
    """A node called ``t`` and the training loop's ``for t in batch`` live in different
    functions: both exports stay text-only (found by the long text search)."""
    hostile = 'x""";open("PWNED","w").write("1");raise SystemExit(0);"""'
    texts = {0: hostile, 1: 'y" + str(open("PWNED","w")) + "', 2: "1", 3: "t", 4: "0"}
    check_project("digits_mlp", {**texts, 5: hostile, 6: hostile, 7: hostile})
