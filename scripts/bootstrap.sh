#!/usr/bin/env bash
# Set up everything Catalyst needs on a fresh Debian 12 machine, as root:
# Debian packages (Python venv, PostgreSQL server binaries for the tests), then the venv at .venv
# with every Python dependency pinned by requirements/constraints.txt.
# Safe to run again: each step only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev build-essential make git postgresql postgresql-client
              ca-certificates procps psmisc debootstrap systemd-container tinyproxy openssh-client iproute2)

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: run this as root (it installs Debian packages)." >&2
    exit 2
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    step "Debian packages already present"
fi

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    step "Creating the virtualenv at .venv"
    rm -rf .venv
    "$PY" -m venv .venv
fi

stamp=.venv/.catalyst-installed
want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    step "Installing Catalyst and its pinned dependencies into .venv"
    .venv/bin/pip install -q -c requirements/constraints.txt -e '.[sim,dev,report]'
    echo "$want" > "$stamp"
else
    step "Python dependencies already installed"
fi
step "Bootstrap done"
