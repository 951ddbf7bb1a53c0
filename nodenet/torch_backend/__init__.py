"""Training with PyTorch, in a process of its own: :class:`TorchBackend`.

The optional `torch` extra (``pip install 'nodenet[torch]'``) provides it; without it,
choosing it raises :class:`TorchMissing` saying how to install it, and nothing else
changes. Importing this package never imports PyTorch: the devices are asked for only
when a backend is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nodenet.torch_backend.devices import (
    INSTALL,
    DeviceError,
    TorchMissing,
    available_devices,
    check_device,
    parse_device,
    require_torch,
    torch_installed,
)

if TYPE_CHECKING:
    from nodenet.torch_backend.backend import TorchBackend

__all__ = [
    "INSTALL",
    "DeviceError",
    "TorchBackend",
    "TorchMissing",
    "available_devices",
    "check_device",
    "parse_device",
    "require_torch",
    "torch_installed",
]


def __getattr__(name: str) -> Any:
    if name == "TorchBackend":
        from nodenet.torch_backend.backend import TorchBackend

        return TorchBackend
    raise AttributeError(name)
