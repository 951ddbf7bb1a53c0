#!/usr/bin/env bash
# Install the system packages nodenet's window needs on Debian and Ubuntu: the libraries
# of Qt's X11 (xcb) platform and a font, listed in nodenet/system_packages.txt (the list
# nodenet itself reads to name what is missing), and python3-venv when this Python
# cannot make a virtual environment (Debian ships venv's pip separately).
#
#   bash scripts/install-system-deps.sh     as root, or as a user who may use sudo
#
# Installs only what is missing. Elsewhere (no apt-get) it installs nothing and names
# the libraries to look for; on macOS and Windows Qt needs none.
set -euo pipefail

list="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/nodenet/system_packages.txt"
say() { echo "install-system-deps: $*" >&2; }

if [ "$(uname -s)" != Linux ]; then
    say "$(uname -s) needs no system packages for nodenet; nothing to do"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
    ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
    known=$("$ldconfig" -p 2>/dev/null | awk 'NR > 1 {print $1}' || true)
    wanted=()
    for library in $(sed -e 's/#.*//' "$list" | awk '{for (i = 2; i <= NF; i++) print $i}'); do
        grep -qxF "$library" <<<"$known" || wanted+=("$library")
    done
    if [ ${#wanted[@]} -eq 0 ]; then
        say "no apt-get here, and none is needed: the libraries nodenet's window loads are present"
    else
        say "no apt-get here, so nothing was installed; install the packages of your system" \
            "that provide these libraries, which Qt's X11 (xcb) platform loads: ${wanted[*]}"
    fi
    exit 0
fi

missing=()
for package in $(sed -e 's/#.*//' "$list" | awk 'NF {print $1}'); do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$package")
done
if ! command -v python3 >/dev/null 2>&1; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
    say "every package nodenet needs is installed"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        say "run this as root (there is no sudo) to install: ${missing[*]}"
        exit 1
    fi
    sudo=sudo
fi
say "installing ${missing[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
say "done"
