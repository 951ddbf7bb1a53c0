"""The command line's backend options: ``--backend numpy|torch``, ``--device``, ``--nproc``,
``--nnodes``, ``--rdzv-endpoint`` (of ``train``, ``evaluate`` and ``predict``)."""

from __future__ import annotations

import argparse
import shlex
import sys

from nodenet.cli_types import positive_count
from nodenet.torch_backend.devices import DeviceError, parse_device


def _device(text: str) -> str:
    try:
        return parse_device(text)
    except DeviceError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """Add the options choosing what runs the model (the numpy engine by default)."""
    group = p.add_argument_group("backend (what runs the model)")
    group.add_argument(
        "--backend",
        choices=("numpy", "torch"),
        default="numpy",
        help="numpy: nodenet's engine (default); torch: PyTorch in a child process "
        "(pip install 'nodenet[torch]')",
    )
    group.add_argument(
        "--device",
        type=_device,
        default="cpu",
        help="with --backend torch: cpu (default), cuda, cuda:N or mps",
    )
    group.add_argument(
        "--nproc",
        type=positive_count,
        default=1,
        metavar="N",
        help="with --backend torch: N processes per machine under torchrun "
        "(DistributedDataParallel; gloo on CPU, NCCL on CUDA)",
    )
    group.add_argument(
        "--nnodes",
        metavar="N",
        help="with --nproc: the number of machines (torchrun's --nnodes, e.g. 2 or 1:4)",
    )
    group.add_argument(
        "--rdzv-endpoint",
        metavar="HOST:PORT",
        help="with --nnodes: where the machines meet (torchrun's --rdzv-endpoint)",
    )
    group.add_argument(
        "--workdir",
        metavar="DIR",
        help="with --backend torch: where its temporary job folder goes (with --nnodes, a "
        "folder every machine sees at the same path)",
    )


def torch_backend(args: argparse.Namespace):
    """The :class:`TorchBackend` the options ask for; with ``--nnodes``, the command each
    other machine runs is printed on stderr."""
    from nodenet.torch_backend import TorchBackend

    backend = TorchBackend(
        args.device,
        args.nproc,
        nnodes=args.nnodes,
        rdzv_endpoint=args.rdzv_endpoint,
        workdir=args.workdir,
    )
    if args.nnodes:
        command = shlex.join(backend.command(python="python"))
        print(f"nodenet: on each other machine, run: {command}", file=sys.stderr)
    return backend
