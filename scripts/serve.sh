#!/usr/bin/env bash
# Build the venv if needed, then run the server (python -m server).
# Configuration comes from MEDIATION_* environment variables
# (MEDIATION_HOST, MEDIATION_PORT, MEDIATION_DATA_DIR, ...).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/setup.sh" --server-only
exec "$ROOT/.venv/bin/python" -m server "$@"
