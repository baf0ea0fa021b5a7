#!/usr/bin/env bash
# Runs the storefront browser test in headless Debian Chromium.
#
#   BASE_URL=http://127.0.0.1:8080 frontend/tests/run.sh     # against a running server (default URL)
#   frontend/tests/run.sh --mock                             # starts its own: frontend/dev/serve.sh,
#                                                            # `reviews serve` on a fixture lake
#
# --mock takes the `reviews` binary from REVIEWS_BIN (default: frontend/dev/serve.sh builds it)
# and gives the server STOREFRONT_START_TIMEOUT seconds (default 900, a first build included)
# to answer /health.
#
# Installs what it needs when missing: the npm dependencies (npm ci, from package-lock.json) and
# the Debian chromium package (apt-get). SCREENSHOT (default <repo>/target/storefront.png) says
# where the screenshots go.
set -euo pipefail

FRONTEND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
use_mock=0
for arg in "$@"; do
  case "$arg" in
    --mock) use_mock=1 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

cd "$FRONTEND_DIR"

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is not installed (apt-get install -y nodejs npm)" >&2
  exit 1
fi

if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "run.sh: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "run.sh: $CHROMIUM_PATH missing; installing Debian chromium"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -x "$CHROMIUM_PATH" ] || { echo "run.sh: chromium still missing at $CHROMIUM_PATH" >&2; exit 1; }

server_pid=""
work=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

if [ "$use_mock" -eq 1 ]; then
  # The real server (`reviews serve`) on a small fixture lake the real pipeline builds.
  work="$(mktemp -d "${TMPDIR:-/tmp}/storefront-test.XXXXXX")"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
  echo "run.sh: starting dev/serve.sh --port $port (fixture lake in $work)"
  STOREFRONT_WORK="$work" bash dev/serve.sh --port "$port" >"$work/serve.log" 2>&1 &
  server_pid=$!
  deadline=$(( $(date +%s) + ${STOREFRONT_START_TIMEOUT:-900} ))
  until python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$port/health" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
      cat "$work/serve.log" >&2
      echo "run.sh: the storefront server did not answer /health on port $port" >&2
      exit 1
    fi
    sleep 0.2
  done
  export BASE_URL="http://127.0.0.1:$port"
fi

export BASE_URL="${BASE_URL:-http://127.0.0.1:8080}"
export CHROMIUM_PATH
node tests/storefront.mjs
