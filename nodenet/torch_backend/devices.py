"""Which PyTorch devices a run may use: ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

:func:`parse_device` checks the spelling without PyTorch; :func:`available_devices` and
:func:`check_device` ask the installed PyTorch what this machine has, and say what is
missing (:class:`DeviceError`, naming the device and what PyTorch sees).
"""

from __future__ import annotations

import importlib.util
import re

from nodenet.errors import NodenetError

INSTALL = "pip install 'nodenet[torch]'"
_SPELLING = re.compile(r"cpu|mps|cuda(:\d{1,3})?")


class TorchMissing(NodenetError):
    """The PyTorch backend was chosen but PyTorch is not installed."""


class DeviceError(NodenetError):
    """The device asked for is not on this machine (or not in its PyTorch build)."""


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def require_torch() -> None:
    """:class:`TorchMissing`, saying how to install PyTorch, when it is not installed."""
    if not torch_installed():
        raise TorchMissing(
            f"the PyTorch backend needs PyTorch, which is not installed: {INSTALL} "
            "(or see pytorch.org for a build for your GPU)"
        )


def parse_device(spec: str) -> str:
    """``spec`` normalized (``CUDA:0`` -> ``cuda:0``); :class:`DeviceError` if it is not one
    of ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    text = str(spec).strip().lower()
    if not _SPELLING.fullmatch(text):
        raise DeviceError(f"device {spec!r}: expected cpu, cuda, cuda:N or mps")
    return text


def available_devices() -> list[str]:
    """The devices this machine's PyTorch can train on: ``cpu``, then each ``cuda:N``, then
    ``mps`` where Apple's Metal backend is available."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{k}" for k in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device(spec: str) -> str:
    """``spec`` normalized, after checking this machine's PyTorch has it."""
    device = parse_device(spec)
    if device == "cpu":
        return device
    import torch

    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError(
                "device 'mps': Apple's Metal (MPS) backend is not available to this PyTorch "
                f"{torch.__version__} (it needs macOS on Apple silicon)"
            )
        return device
    if not torch.cuda.is_available():
        build = "built without CUDA" if torch.version.cuda is None else "finds no CUDA GPU"
        raise DeviceError(
            f"device {device!r}: this PyTorch {torch.__version__} is {build}; "
            "install a CUDA build of PyTorch (pytorch.org) or choose cpu"
        )
    count = torch.cuda.device_count()
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise DeviceError(
            f"device {device!r}: PyTorch sees {count} CUDA device(s) "
            f"({', '.join(f'cuda:{k}' for k in range(count))})"
        )
    return device


def torch_device(spec: str, local_rank: int | None = None):
    """The ``torch.device`` to train on: under torchrun on CUDA, ``cuda:LOCAL_RANK``."""
    import torch

    device = check_device(spec)
    if device.startswith("cuda"):
        index = local_rank if local_rank is not None else int(device.partition(":")[2] or 0)
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device(device)
