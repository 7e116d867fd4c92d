#!/usr/bin/env bash
# The Catalyst demo on a fresh Debian 12 machine (run as root): sets everything up, then runs
# scripts/demo.py (simulator, a scripted day through alpaca-py, a paper day traded by the agent,
# an emergency stop and resume). Everything it starts, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
