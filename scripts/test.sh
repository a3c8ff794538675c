#!/usr/bin/env bash
# Install what the tests need (idempotent), then run the whole test suite: the browser client's
# unit tests (node) and every Python test, slow end-to-end ones included.
# Arguments are passed to pytest, e.g. scripts/test.sh tests/test_services.py -q
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/setup.sh"
if [[ $# -eq 0 ]]; then
    (cd "$ROOT/web_client" && npm test --silent)
fi
exec "$ROOT/.venv/bin/python" -m pytest "$@"
