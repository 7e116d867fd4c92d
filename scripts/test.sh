#!/usr/bin/env bash
# Run every test: lint (ruff), types (mypy), then pytest (unit, simulator, integration with a real
# PostgreSQL started by the tests, and the real alpaca-py client against the simulator).
# Sets everything up first on a fresh Debian 12 machine (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo
echo "==> ruff (lint)"
.venv/bin/ruff check agent tests benchmarks scripts roles playbooks inventory
echo
echo "==> mypy (types, strict) on the agent and the simulator"
.venv/bin/mypy
echo
echo "==> pytest"
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
