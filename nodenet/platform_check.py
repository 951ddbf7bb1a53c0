"""Can Qt open a window here? Asked before Qt is loaded, because Qt cannot say so itself.

When its platform plugin cannot start (no display, or a system library of the xcb
plugin missing: the PySide6 wheel bundles Qt but not the ``libxcb-*`` it links to)
Qt prints a paragraph and aborts the process (exit 134). :func:`gui_problem` finds
these cases from the environment and from ``ldd`` on the xcb plugin, without
importing any Qt module, and says what to do in one sentence. The packages it names
come from ``nodenet/system_packages.txt``, the list that
``scripts/install-system-deps.sh`` installs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from nodenet.errors import NodenetError

PACKAGES_FILE = "system_packages.txt"
HEADLESS = "the headless commands work without one (nodenet --help)"


class PlatformError(NodenetError):
    """The GUI cannot start here: no display, or system libraries Qt needs are missing."""


def system_packages() -> dict[str, tuple[str, ...]]:
    """Debian/Ubuntu package -> the shared libraries Qt loads from it, in the file's order."""
    text = resources.files("nodenet").joinpath(PACKAGES_FILE).read_text(encoding="utf-8")
    packages: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            packages[fields[0]] = tuple(fields[1:])
    return packages


def xcb_plugin() -> Path | None:
    """PySide6's ``Qt/plugins/platforms/libqxcb.so``, found without importing PySide6."""
    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder, "Qt", "plugins", "platforms", "libqxcb.so")
        if path.is_file():
            return path
    return None


def run_ldd(path: Path) -> str:
    """``ldd path`` (every library the loader would map, or "not found"); "" if ldd fails."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return ""
    try:
        done = subprocess.run(
            [ldd, str(path)],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout


def not_found(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as ``name => not found``, each once, in its order."""
    names = re.findall(r"^\s*(\S+) => not found\s*$", ldd_output, re.MULTILINE)
    return list(dict.fromkeys(names))


def install_hint(libraries: list[str]) -> str:
    """How to install ``libraries``: the apt-get command for the packages that hold them."""
    owner = {lib: pkg for pkg, libs in system_packages().items() for lib in libs}
    packages = list(dict.fromkeys(owner[lib] for lib in libraries if lib in owner))
    unknown = [lib for lib in libraries if lib not in owner]
    also = f" and the packages providing {', '.join(unknown)}" if unknown else ""
    if not packages:
        return f"install the packages providing them{also}"
    command = f"apt-get install -y {' '.join(packages)}"
    if shutil.which("apt-get") is None:
        return f"install your system's packages providing them (Debian, Ubuntu: {command}){also}"
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"install them with: {sudo}apt-get update && {sudo}{command}{also}"


def x_server_answers(display: str) -> bool:
    """Whether something accepts connections at ``display`` (":0", "unix:1", "host:10.0").

    Forms this does not know count as answering: Qt will judge them.
    """
    match = re.fullmatch(r"(?P<host>[^:/]*):(?P<number>\d+)(?:\.\d+)?", display)
    if match is None:
        return True
    host, number = match["host"], int(match["number"])
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        for address in ("\0" + path, path):  # Linux servers listen on both
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                try:
                    sock.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        socket.create_connection((host, 6000 + number), timeout=2).close()
    except (ConnectionRefusedError, socket.gaierror):
        return False
    except OSError:  # slow or filtered: let Qt try
        return True
    return True


def gui_problem(
    env: Mapping[str, str] | None = None,
    plugin: Path | None = None,
    ldd: Callable[[Path], str] = run_ldd,
) -> str | None:
    """Why Qt could not open a window here, as one sentence; None when it should.

    ``env``: the environment (default ``os.environ``); ``plugin``: the xcb plugin
    (default PySide6's); ``ldd``: what lists the plugin's libraries (for tests).
    Only Linux's default platform (xcb, X11) is judged: ``QT_QPA_PLATFORM`` set to
    anything else (offscreen, minimal, wayland, a fallback list), or a Wayland
    session without it, is left to Qt.
    """
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    chosen = [p.split(":", 1)[0].strip() for p in env.get("QT_QPA_PLATFORM", "").split(";")]
    chosen = [p for p in chosen if p]
    if chosen not in ([], ["xcb"]):
        return None
    wayland = bool(env.get("WAYLAND_DISPLAY"))
    if wayland and not chosen:
        return None  # Qt takes its wayland platform in a Wayland session
    display = env.get("DISPLAY", "")
    if not display:
        unset = "DISPLAY is unset" if wayland else "DISPLAY and WAYLAND_DISPLAY are unset"
        return f"no display to open the window on ({unset}); {HEADLESS}"
    if not x_server_answers(display):
        return f"no X server answers at DISPLAY={display}; start one or correct DISPLAY; {HEADLESS}"
    plugin = plugin or xcb_plugin()
    missing = not_found(ldd(plugin)) if plugin else []
    if missing:
        return (
            f"Qt's X11 (xcb) platform cannot load: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing; {install_hint(missing)}"
        )
    return None


def check_gui_platform() -> None:
    """Raise :class:`PlatformError` when :func:`gui_problem` finds one."""
    problem = gui_problem()
    if problem:
        raise PlatformError(problem)
