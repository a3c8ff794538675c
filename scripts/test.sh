#!/usr/bin/env bash
# Install what the tests need (idempotent), then run the whole test suite.
# Arguments are passed to pytest, e.g. scripts/test.sh tests/test_services.py -q
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/setup.sh"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
