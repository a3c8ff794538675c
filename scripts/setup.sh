#!/usr/bin/env bash
# Idempotent setup: system packages the tests need, the project's venv, then the browser client:
# its npm dependencies (web_client/node_modules) and its bundled pages (web_client/dist/).
#
#   scripts/setup.sh                # system packages (if missing) + .venv + web client
#   scripts/setup.sh --server-only  # .venv + web client (the server alone needs no service)
#
# Works from any working directory; safe to run repeatedly.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

server_only=0
for arg in "$@"; do
    case "$arg" in
        --server-only) server_only=1 ;;
        -h|--help)
            sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup.sh: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

log() { echo "setup: $*" >&2; }

# --- system packages ---------------------------------------------------------

have_postgres_server() {
    local bindir
    if command -v pg_config >/dev/null 2>&1; then
        bindir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$bindir" && -x "$bindir/postgres" && -x "$bindir/initdb" ]]; then
            return 0
        fi
    fi
    for bindir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$bindir/postgres" && -x "$bindir/initdb" ]]; then
            return 0
        fi
    done
    command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1
}

missing_packages() {
    local -a pkgs=()
    have_postgres_server || pkgs+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || pkgs+=(nginx)
    # coturn (turnserver) runs deploy/turnserver.conf in tests/deploy/test_turn.py.
    command -v turnserver >/dev/null 2>&1 || [[ -x /usr/bin/turnserver ]] || pkgs+=(coturn)
    # Janus (VideoRoom plugin) is the rooms' selective forwarding unit in tests/web and tests/signaling.
    command -v janus >/dev/null 2>&1 || [[ -x /usr/bin/janus ]] || pkgs+=(janus)
    command -v age >/dev/null 2>&1 || pkgs+=(age)
    command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || pkgs+=(chromium-driver)
    command -v ffmpeg >/dev/null 2>&1 || pkgs+=(ffmpeg)
    command -v npm >/dev/null 2>&1 || pkgs+=(npm)
    # Chinese glyphs for the pages' screenshots taken by the browser tests.
    dpkg -s fonts-noto-cjk >/dev/null 2>&1 || pkgs+=(fonts-noto-cjk)
    echo "${pkgs[@]+"${pkgs[@]}"}"
}

install_system_packages() {
    local -a pkgs
    read -r -a pkgs <<<"$(missing_packages)"
    if [[ ${#pkgs[@]} -eq 0 ]]; then
        return 0
    fi

    local -a sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
        else
            log "missing system packages: ${pkgs[*]}"
            log "install them as root:"
            log "  apt-get update && apt-get install -y --no-install-recommends ${pkgs[*]}"
            exit 1
        fi
    fi

    log "installing system packages: ${pkgs[*]}"
    "${sudo[@]+"${sudo[@]}"}" apt-get update -q
    # Package maintainer scripts may try to start services (the postgresql
    # package creates and starts a default cluster). On machines without an
    # init system that may print errors; the tests start their own servers, so
    # only the package installation itself has to succeed.
    if ! "${sudo[@]+"${sudo[@]}"}" apt-get install -y -q --no-install-recommends "${pkgs[@]}"; then
        log "apt-get install failed; trying to finish configuration with dpkg --configure -a"
        "${sudo[@]+"${sudo[@]}"}" dpkg --configure -a || true
    fi

    read -r -a pkgs <<<"$(missing_packages)"
    if [[ ${#pkgs[@]} -ne 0 ]]; then
        log "still missing after apt-get install: ${pkgs[*]}"
        exit 1
    fi
}

if [[ "$server_only" -eq 0 ]]; then
    install_system_packages
fi

# --- Python virtual environment ---------------------------------------------

VENV="$ROOT/.venv"
STAMP="$VENV/.setup-stamp"

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating .venv"
    python3 -m venv "$VENV"
    rm -f "$STAMP"
fi

if [[ ! -e "$STAMP" || "$ROOT/pyproject.toml" -nt "$STAMP" ]]; then
    log "installing the project into .venv (pip install -e '.[test]')"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    touch "$STAMP"
fi

# --- web client --------------------------------------------------------------------------------
# The pages load nothing from a CDN: the locked npm dependencies (socket.io-client among them) are
# bundled with the pages' own modules into dist/.

WEB="$ROOT/web_client"

if [[ -f "$WEB/package-lock.json" ]]; then
    if ! command -v npm >/dev/null 2>&1; then
        # Only with --server-only (otherwise npm was installed above): the API works without the page.
        log "npm is missing: the pages will lack /static/dist/; install nodejs and npm and run setup again"
    elif [[ ! -d "$WEB/node_modules" || "$WEB/package-lock.json" -nt "$WEB/node_modules" ]]; then
        log "installing the web client's npm dependencies (npm ci)"
        (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error)
        touch "$WEB/node_modules"
    fi
    if [[ -d "$WEB/node_modules" ]]; then
        # The pages are bundled from src/ into dist/ (esbuild): again when any source, the build
        # script or the lockfile is newer than the last build.
        BUILD_STAMP="$WEB/dist/.build-stamp"
        if [[ ! -f "$BUILD_STAMP" ]] || [[ -n "$(find "$WEB/src" "$WEB/build.mjs" "$WEB/package.json" \
                "$WEB/package-lock.json" -newer "$BUILD_STAMP" -print -quit)" ]]; then
            log "bundling the web client's pages (npm run build)"
            (cd "$WEB" && npm run build --silent)
            touch "$BUILD_STAMP"
        fi
    fi
fi
