"""Before Qt: no display, or a missing library of the xcb plugin, is one sentence, never
Qt's abort. Libraries are never really removed: ``ldd``'s output is handed in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodenet import platform_check
from nodenet.cli import main
from nodenet.platform_check import gui_problem, install_hint, not_found, system_packages

ROOT = Path(__file__).parent.parent
SAMPLE = ROOT / "sample_projects" / "digits_mlp.json"
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="only Linux's X11 platform is judged"
)
PLUGIN = Path("/fake/PySide6/Qt/plugins/platforms/libqxcb.so")

LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd3b1e5000)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x7f)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f6335f35000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibfancy.so.9 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f63360a9000)
"""
LDD_COMPLETE = "\n".join(
    line.replace("not found", "/lib/x86_64-linux-gnu/lib.so (0x1)")
    for line in LDD_MISSING.splitlines()
)


@pytest.fixture
def x_server(monkeypatch):
    """An X server that answers wherever DISPLAY points."""
    monkeypatch.setattr(platform_check, "x_server_answers", lambda display: True)


def test_ldd_output_gives_each_missing_library_once_in_order():
    assert not_found(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libfancy.so.9"]
    assert not_found(LDD_COMPLETE) == []
    assert not_found("") == []


def test_the_package_list_maps_the_libraries_qt_needs():
    packages = system_packages()
    owner = {lib: pkg for pkg, libs in packages.items() for lib in libs}
    assert owner["libxcb-icccm.so.4"] == "libxcb-icccm4"
    assert owner["libxcb-keysyms.so.1"] == "libxcb-keysyms1"
    assert owner["libxcb-cursor.so.0"] == "libxcb-cursor0"
    assert owner["libgthread-2.0.so.0"] == owner["libglib-2.0.so.0"] == "libglib2.0-0"
    # the libraries Qt loads even offscreen stay in the list .ci/run installs from
    assert {"libegl1", "libgl1", "libxkbcommon0", "libfontconfig1", "libdbus-1-3"} <= set(packages)
    assert packages["fonts-dejavu-core"] == ()


def test_the_install_script_reads_the_list_the_package_ships():
    script = (ROOT / "scripts" / "install-system-deps.sh").read_text()
    assert "nodenet/system_packages.txt" in script
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/install-system-deps.sh" in ci


def test_missing_libraries_are_named_with_the_command_that_installs_them(x_server, monkeypatch):
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(platform_check.os, "geteuid", lambda: 1000)
    problem = gui_problem({"DISPLAY": ":0"}, PLUGIN, ldd=lambda path: LDD_MISSING)
    assert problem is not None and "\n" not in problem
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libfancy.so.9 are missing" in problem
    assert "sudo apt-get update && sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in problem
    assert "packages providing libfancy.so.9" in problem


def test_as_root_the_command_has_no_sudo_and_without_apt_it_names_debian_packages(monkeypatch):
    monkeypatch.setattr(platform_check.os, "geteuid", lambda: 0)
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert install_hint(["libxcb-icccm.so.4"]) == (
        "install them with: apt-get update && apt-get install -y libxcb-icccm4"
    )
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: None)
    hint = install_hint(["libxcb-icccm.so.4"])
    assert "your system's packages" in hint and "apt-get install -y libxcb-icccm4" in hint


def test_a_complete_plugin_passes(x_server):
    assert gui_problem({"DISPLAY": ":0"}, PLUGIN, ldd=lambda path: LDD_COMPLETE) is None


def test_without_a_display_it_says_so_and_does_not_look_at_libraries(x_server):
    def ldd(path):
        raise AssertionError("no display: the libraries do not matter")

    for env in ({}, {"QT_QPA_PLATFORM": "xcb"}, {"DISPLAY": ""}):
        problem = gui_problem(env, PLUGIN, ldd=ldd)
        assert problem.startswith("no display") and "nodenet --help" in problem
    # asked for xcb in a Wayland session: X11 is still missing
    problem = gui_problem({"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"}, PLUGIN, ldd)
    assert problem.startswith("no display") and "(DISPLAY is unset)" in problem


@pytest.mark.parametrize(
    "env",
    [
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "minimal"},
        {"QT_QPA_PLATFORM": "wayland"},
        {"QT_QPA_PLATFORM": "vnc:size=800x600"},
        {"QT_QPA_PLATFORM": "xcb;offscreen"},  # Qt falls back on offscreen
        {"WAYLAND_DISPLAY": "wayland-0"},  # a Wayland session: Qt takes wayland first
        {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"},
    ],
)
def test_other_platforms_are_left_to_qt(x_server, env):
    assert gui_problem(env, PLUGIN, ldd=lambda path: LDD_MISSING) is None


def test_a_display_nobody_answers_is_named():
    problem = gui_problem({"DISPLAY": ":4077"}, PLUGIN, ldd=lambda path: LDD_COMPLETE)
    assert problem.startswith("no X server answers at DISPLAY=:4077")


def test_the_real_plugin_is_found_and_read_without_loading_qt():
    code = (
        "import sys\n"
        "from nodenet.platform_check import not_found, run_ldd, xcb_plugin\n"
        "plugin = xcb_plugin()\n"
        "print(plugin is None or plugin.name == 'libqxcb.so', isinstance(not_found("
        "run_ldd(plugin) if plugin else ''), list))\n"
        "print(any(m.startswith('PySide6') for m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "False"]


def test_the_gui_command_refuses_before_qt_with_exit_1(monkeypatch, capsys):
    monkeypatch.setattr(platform_check, "gui_problem", lambda: "no display to open the window on")
    assert main([str(SAMPLE)]) == 1
    out, err = capsys.readouterr()
    assert err == "nodenet: no display to open the window on\n" and out == ""


def test_no_display_is_one_line_on_stderr_and_exit_1():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    done = subprocess.run(
        [sys.executable, "-m", "nodenet", str(SAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nodenet: no display") and "nodenet --help" in lines[0]
