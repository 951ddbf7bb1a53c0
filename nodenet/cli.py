"""The ``nodenet`` command: the GUI by default, and every headless job.

Errors are one sentence on stderr with a non-zero exit code, never a traceback.
With ``--json`` a command prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from nodenet import __version__
from nodenet.cli_import import HELP as IMPORT_HELP
from nodenet.cli_import import cmd_import, export_keras_model_cli
from nodenet.cli_runs import HELP as RUNS_HELP
from nodenet.cli_runs import (
    add_record_option,
    add_runs_options,
    cmd_runs,
    end_recording,
    record_training,
)
from nodenet.cli_sweep import HELP as SWEEP_HELP
from nodenet.cli_sweep import add_sweep_options, cmd_sweep
from nodenet.errors import NodenetError, ValidationError, shorten
from nodenet.torch_backend.devices import TorchMissing

EXIT_PROBLEMS = 1  # the input has problems (validate, a bad file)
EXIT_USAGE = 2  # argparse's own code for bad arguments
EXIT_INTERNAL = 70  # a bug in nodenet


def _load(path: str):
    """The project at ``path``; a sample whose dataset is missing runs on its fallback."""
    from nodenet.graph.project import load
    from nodenet.samples import with_fallback

    project, note = with_fallback(load(path))
    if note:
        print(note, file=sys.stderr)
    return project


def cmd_validate(args: argparse.Namespace) -> int:
    from nodenet.graph.project import validate

    project = _load(args.file)
    problems = validate(project)
    if args.json:
        _print_json(
            {
                "file": args.file,
                "ok": not problems,
                "problems": [
                    {"node": p.node, "field": p.field, "message": p.message} for p in problems
                ],
            }
        )
    else:
        for p in problems:
            print(_error_line(str(p)))
        if not problems:
            print(f"{args.file}: no problems")
    return EXIT_PROBLEMS if problems else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nodenet.graph.summary import summarize

    summary = summarize(_load(args.file))
    if args.json:
        _print_json(summary.to_dict())
    else:
        print(summary.to_text(expand_nested=getattr(args, "expand_nested", False)))
    return 0


def _format_logs(metrics) -> str:
    """``loss 0.3412 - accuracy 0.9 - ...``: every metric, as the events carry them."""
    return " - ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class _Progress:
    """The run's events on stderr: a tqdm bar per epoch, and a line per finished epoch."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def __call__(self, event) -> None:
        from nodenet.backend import BatchEnd, EpochEnd, Failed, Finished

        if isinstance(event, BatchEnd):
            self.batch(event)
        elif isinstance(event, EpochEnd):
            self.epoch(event)
        elif isinstance(event, Finished | Failed):
            self.close()

    def batch(self, event) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=event.batches,
                file=sys.stderr,
                leave=False,
                unit="batch",
                desc=f"Epoch {event.epoch}",
                dynamic_ncols=True,
            )
        self.bar.update(event.batch - self.bar.n)
        self.bar.set_postfix_str(_format_logs(event.metrics)[:80], refresh=False)

    def epoch(self, event) -> None:
        self.close()
        if not self.quiet:
            print(
                f"Epoch {event.epoch}/{event.epochs} - {event.epoch_seconds:.1f}s - "
                f"{_format_logs(event.metrics)}",
                file=sys.stderr,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_train(args: argparse.Namespace) -> int:
    import signal
    import threading

    from nodenet.atomic import remove_stale_temps, write_file
    from nodenet.runner import file_digest, weights_path

    project = _load(args.file)
    backend = _backend(args)
    backend.build(project, allow_outside_data=args.allow_outside_data)
    _hold_weights(backend, project, args.quiet)
    stop = threading.Event()

    def interrupt(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "\nnodenet: stopping after this batch (Ctrl-C again to quit at once)", file=sys.stderr
        )

    previous = signal.signal(signal.SIGINT, interrupt)
    progress = _Progress(quiet=args.quiet)
    recorder = record_training(args, project, backend)  # NAME.runs.sqlite (docs/runs.md)
    try:
        history = backend.fit(
            on_event=recorder.wrap(progress),
            should_stop=stop.is_set,
            epochs=args.epochs,
            progress_interval=0.1,  # a terminal needs no more than 10 updates a second
        )
    finally:
        progress.close()
        signal.signal(signal.SIGINT, previous)
        recorder.abandon()
    test = backend.evaluate()
    skipped = _report_skipped(backend)
    weights_out = Path(args.weights_out) if args.weights_out else weights_path(project)
    backend.save_weights(weights_out)
    end_recording(recorder, test, weights_out, history)
    from nodenet.samples import HISTORY_SUFFIX

    history_out = (
        Path(args.history_out)
        if args.history_out
        else weights_out.with_name(weights_out.name.replace(".weights.npz", "") + HISTORY_SUFFIX)
    )
    # weights first, then the history naming their sha256: a kill in between leaves new
    # weights beside a history whose digest no longer matches (runner.history_matches)
    result = {
        **history.to_dict(),
        "test": test,
        "weights": str(weights_out),
        "weights_sha256": file_digest(weights_out),
        "history_file": str(history_out),
        **({"skipped_files": skipped} if skipped is not None else {}),
    }
    remove_stale_temps(history_out)
    write_file(history_out, json.dumps(result, indent=2) + "\n")
    if args.json:
        _print_json(result)
    else:
        if history.stopped == "user":
            print("stopped by Ctrl-C; the weights so far are saved", file=sys.stderr)
        if test is not None:
            print("test: " + _format_logs(test))
        print(f"weights: {weights_out}\nhistory: {history_out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nodenet.reports import summarize, to_json

    backend = _backend(args)
    backend.build(_load(args.file), allow_outside_data=args.allow_outside_data)
    backend.load_weights(args.weights)
    result = backend.evaluate()
    _report_skipped(backend)
    if result is None:
        raise NodenetError(f"{args.file}: the data has no test split (set data.split.test)")
    if args.json:  # the metrics, then the reports the GUI's Evaluation tab shows
        _print_json({**result, "reports": to_json(summarize(backend, None, metrics=result))})
    else:
        print(_format_logs(result))
    return 0


def _report_skipped(backend) -> dict | None:
    """The notes and unreadable files of a folder dataset on stderr; the skipped files as
    plain data, or None for data that is not a folder."""
    data = getattr(backend, "data", None)
    extra = data.meta.dataset.extra if data is not None else {}
    for note in extra.get("notes") or ():
        print(f"nodenet: {note}", file=sys.stderr)
    log = extra.get("skipped")
    if log is None or not hasattr(log, "message"):
        return None
    message = log.message()
    if message:
        print(f"nodenet: {message}", file=sys.stderr)
    return log.to_dict()


def cmd_predict(args: argparse.Namespace) -> int:
    from nodenet.errors import DataError
    from nodenet.runner import load_arrays

    backend = _backend(args)
    backend.build(_load(args.file), load_data=False)
    backend.load_weights(args.weights)
    arrays = load_arrays(args.input)  # refuses text arrays, naming the file and the array
    ids = backend.input_ids
    if len(ids) == 1 and ids[0] not in arrays and len(arrays) == 1:
        arrays = {ids[0]: next(iter(arrays.values()))}
    try:  # batch by batch into the output file: never all the outputs in memory
        shapes = backend.write_predictions(arrays, args.output)
    except DataError as err:  # the inputs do not fit the model: the --input file is at fault
        raise DataError(f"{args.input}: {err}") from None
    print(f"{args.output}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()), file=sys.stderr)
    return 0


def _read_weights(path: str) -> dict:
    from nodenet.errors import WeightsError
    from nodenet.safeio import read_npz

    return read_npz(path, WeightsError)


def _export_onnx(args: argparse.Namespace, project, weights: dict | None) -> int:
    """``export --to onnx``: one .onnx file, weights inside (the seeded initial ones without
    ``--weights``, as ``train --epochs 0`` writes them)."""
    from nodenet.errors import WeightsError
    from nodenet.export.onnx import export_onnx, require_onnx

    if args.data:
        raise NodenetError("--data writes the data generated code reads; an ONNX file needs none")
    require_onnx()  # says how to install the onnx extra
    from nodenet.export.onnx.export import save_onnx

    try:
        model = export_onnx(project, weights, args.opset)
    except WeightsError as err:
        raise WeightsError(f"{args.weights}: {err}") from None
    path = save_onnx(model, args.output)
    names = ", ".join(i.name for i in model.graph.input)
    outs = ", ".join(o.name for o in model.graph.output)
    opset = model.opset_import[0].version
    print(f"{path}: ONNX opset {opset}, inputs {names}, outputs {outs}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nodenet.errors import WeightsError
    from nodenet.export import data_npz, export_keras, export_pytorch
    from nodenet.export._common import write_file

    project = _load(args.file)
    weights = _read_weights(args.weights) if args.weights else None
    if args.to == "onnx":
        return _export_onnx(args, project, weights)
    if args.to == "keras-model":
        return export_keras_model_cli(args, project, weights)
    exporter = export_keras if args.to == "keras" else export_pytorch
    try:
        code = exporter(project, weights)
    except WeightsError as err:
        raise WeightsError(f"{args.weights}: {err}") from None
    out = Path(args.output)
    try:
        written = code.write(out)
        if args.data:
            written.append(out.with_name(out.stem + "_data.npz"))
            write_file(written[-1], data_npz(project, allow_outside_data=args.allow_outside_data))
    except OSError as err:
        raise NodenetError(f"{out}: cannot be written: {err.strerror or err}") from None
    for path in written:
        print(path, file=sys.stderr)
    return 0


def cmd_import_keras(args: argparse.Namespace) -> int:
    from nodenet.atomic import write_file
    from nodenet.errors import WeightsError
    from nodenet.export import import_keras_archive
    from nodenet.export._common import npz_bytes
    from nodenet.graph.project import save
    from nodenet.runner import weights_path

    project, weights = import_keras_archive(args.file, weights=not args.no_weights)
    save(project, args.output)
    kinds = sum(1 for n in project.nodes if n.type not in ("Input", "Output"))
    print(f"{args.output}: {kinds} blocks from {args.file}", file=sys.stderr)
    if weights is not None:  # NAME.weights.npz beside the project, where train writes them
        written = write_file(weights_path(project), npz_bytes(weights), WeightsError)
        print(f"{written}: the trained weights from {args.file}", file=sys.stderr)
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from nodenet.platform_check import check_gui_platform

    check_gui_platform()  # before Qt, which aborts the process when it cannot open a window
    try:
        from nodenet.ui.app import run
    except ImportError as err:
        raise NodenetError(f"the GUI cannot start: {err}") from None
    return run(args.file, new=args.new)


def _print_json(doc) -> None:
    """Print ``doc`` as strict JSON: NaN and infinities (a diverged loss) become ``null``,
    as JSON has no such numbers; ``allow_nan=False`` makes any one left a bug, not output."""
    json.dump(_finite_json(doc), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")


def _finite_json(value):
    """``value`` with every non-finite float replaced by ``None`` (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    return value


MAX_ERROR_LINE = 500  # characters of one printed error line


def _error_line(text: str) -> str:
    """One printed error line, cut to :data:`MAX_ERROR_LINE` characters."""
    return shorten(text, MAX_ERROR_LINE)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "validate": (cmd_validate, "list every problem of a project, one per line (exit 1 if any)"),
    "summary": (cmd_summary, "print the Keras-style model summary"),
    "train": (
        cmd_train,
        "train a project on its data, with a progress bar; writes weights and history",
    ),
    "evaluate": (cmd_evaluate, "loss and metrics of trained weights on the test split"),
    "predict": (cmd_predict, "outputs for inputs from an .npz file (arrays keyed by Input id)"),
    "export": (cmd_export, "write the model as Keras 3 or PyTorch code, or as an ONNX file"),
    "import-keras": (
        cmd_import_keras,
        "make a project from a Keras model config (model.to_json(), or a .keras file)",
    ),
}
COMMANDS["runs"] = (cmd_runs, RUNS_HELP)
COMMANDS["import"] = (cmd_import, IMPORT_HELP)
COMMANDS["sweep"] = (cmd_sweep, SWEEP_HELP)
_NO_JSON = ("predict", "export", "import-keras", "import")


def _hold_weights(backend, project, quiet: bool) -> None:
    """Frozen blocks (and with ``training.warm_start`` every block) start from the weights
    file beside the project where it fits them (imported or trained before), as in the
    GUI; training leaves the frozen ones as they are."""
    from nodenet.backend import hold_weights
    from nodenet.errors import WeightsError
    from nodenet.runner import weights_path
    from nodenet.safeio import read_npz

    held = weights_path(project)
    warm = bool(project.training.get("warm_start"))
    if held is None or not held.exists() or (all(n.trainable for n in project.nodes) and not warm):
        return
    kept = hold_weights(backend, project, read_npz(held, WeightsError))
    if kept and not quiet:
        which = "the blocks" if warm else "the frozen blocks"
        print(f"nodenet: {which} start from {held.name}", file=sys.stderr)


def _training_count(name: str) -> Callable[[str], int]:
    """An argparse type: a whole number in the range of the project's ``training.<name>``."""

    def parse(text: str) -> int:
        from nodenet.engine.settings import TRAINING_PARAMS

        param = next(p for p in TRAINING_PARAMS if p.name == name)
        try:
            return param.coerce(int(text))
        except (ValueError, NodenetError):
            raise argparse.ArgumentTypeError(f"must be {param.expected()} (got {text!r})") from None

    return parse


def _backend(args: argparse.Namespace):
    """The backend ``--backend`` names: the numpy engine, or PyTorch in a child process."""
    if getattr(args, "backend", "numpy") != "torch":
        from nodenet.backend import NumpyBackend

        return NumpyBackend()
    from nodenet.torch_backend.cli_options import torch_backend

    return torch_backend(args)


def _add_options(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("train", "evaluate", "predict"):
        from nodenet.torch_backend.cli_options import add_backend_options

        add_backend_options(p)
    if name == "summary":
        p.add_argument(
            "--expand-nested",
            action="store_true",
            help="list the blocks inside each group too (--json always nests them)",
        )
    if name == "runs":
        add_runs_options(p)
    if name == "sweep":
        add_sweep_options(p)
    if name == "train":
        add_record_option(p)
        p.add_argument(
            "--epochs",
            type=_training_count("epochs"),
            help="override the project's epochs (0 writes the freshly initialized weights)",
        )
        p.add_argument(
            "--weights-out",
            metavar="W",
            help="weights file (default: NAME.weights.npz beside the project)",
        )
        p.add_argument(
            "--history-out",
            metavar="H",
            help="history JSON (default: NAME.history.json beside the weights)",
        )
        p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    if name in ("train", "evaluate", "export"):
        p.add_argument(
            "--allow-outside-data",
            action="store_true",
            help="read data files outside the project's folder too (refused by default)",
        )
    if name in ("evaluate", "predict"):
        p.add_argument("--weights", metavar="W", required=True, help="trained weights (.npz)")
    if name == "predict":
        p.add_argument("--input", metavar="X", required=True, help=".npz of inputs")
        p.add_argument("--output", metavar="Y", required=True, help=".npz to write")
    if name == "export":
        p.add_argument(
            "--to",
            choices=("keras", "pytorch", "onnx", "keras-model"),
            required=True,
            help="the format (keras-model: a .keras file for keras.models.load_model)",
        )
        p.add_argument(
            "--opset",
            type=int,
            default=None,
            metavar="N",
            help="ONNX opset of --to onnx (default 17; 13 to 21)",
        )
        p.add_argument(
            "--weights", metavar="W", help="trained weights (.npz) to export with the model"
        )
        p.add_argument(
            "-o",
            "--output",
            metavar="OUT",
            required=True,
            help="the file to write (OUT.py for code, OUT.onnx for ONNX)",
        )
        p.add_argument(
            "--data",
            action="store_true",
            help="also write the prepared data the code reads (OUT_data.npz)",
        )
    if name in ("import-keras", "import"):
        p.add_argument(
            "-o", "--output", metavar="FILE", required=True, help="the project file to write"
        )
        p.add_argument(
            "--no-weights",
            action="store_true",
            help="leave out a .keras archive's trained weights (written by default as "
            "NAME.weights.npz beside the project; reading them needs h5py)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nodenet",
        description="Design and train neural networks visually. Without a command, opens "
        "the GUI (on FILE if given).",
    )
    parser.add_argument("--version", action="version", version=f"nodenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the GUI (the default)")
    gui.add_argument("file", nargs="?", help="project file to open")
    gui.add_argument(
        "--new", action="store_true", help="start from an empty canvas (one Input, one Output)"
    )
    gui.set_defaults(run=cmd_gui)
    for name, (func, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        what = "Keras model config (.json or .keras)" if name == "import-keras" else "project"
        what = "model (.keras, Keras JSON or .onnx)" if name == "import" else what
        p.add_argument("file", help=f"{what} file")
        if name not in _NO_JSON:
            p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        _add_options(name, p)
        p.set_defaults(run=func)
    return parser


def _looks_like_a_file(word: str) -> bool:
    return Path(word).exists() or "/" in word or word.endswith(".json")


def _not_a_command(word: str) -> str:
    """The usage error for a first word that is neither a command nor a file."""
    commands = ["gui", *COMMANDS]
    close = difflib.get_close_matches(word, commands, n=1)
    if close:
        return f"nodenet: {word!r} is not a nodenet command; did you mean {close[0]!r}?"
    return (
        f"nodenet: {word!r} is neither a nodenet command nor a file; the commands are "
        f"{', '.join(commands)} (nodenet --help)"
    )


def _naming_the_file(args: argparse.Namespace, message: str) -> str:
    """``message``, led by the command's FILE unless it already names a file it was given."""
    given = [
        str(value)
        for key in ("file", "weights", "input", "output", "weights_out", "history_out")
        if (value := getattr(args, key, None))
    ]
    if args.run is cmd_gui or not args.file or any(path in message for path in given):
        return message
    return f"{args.file}: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    known = {"gui", *COMMANDS, "-h", "--help", "--version"}
    word = argv[0] if argv else None
    if word is None or word == "--new":
        argv = ["gui", *argv]
    elif word not in known and not word.startswith("-"):
        if not _looks_like_a_file(word):  # a mistyped command, not a file to open
            print(_not_a_command(word), file=sys.stderr)
            return EXIT_USAGE
        argv = ["gui", *argv]
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TorchMissing as err:  # the choice of backend cannot be served: a usage error
        print(_error_line(f"nodenet: {err}"), file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as err:
        for problem in err.problems:
            print(_error_line(_naming_the_file(args, str(problem))), file=sys.stderr)
        return EXIT_PROBLEMS
    except NodenetError as err:
        lines = f"nodenet: {_naming_the_file(args, str(err))}".splitlines()[:12]
        print("\n".join(_error_line(line) for line in lines), file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print("nodenet: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: say so in one line, not a traceback
        print(
            _error_line(f"nodenet: internal error ({type(err).__name__}: {err}); please report it"),
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
