#!/usr/bin/env bash
# Stop what localstack/up.sh (and watch.sh) started, by the pids they recorded. Keeps the venv.
#   localstack/down.sh          stop
#   localstack/down.sh --purge  stop and delete LocalStack's state ($LS_CACHE/fs), logs and outputs
set -euo pipefail
source "$(dirname "$0")/env.sh"

stop() { # name pidfile
  local pidfile="$2"
  if pid_alive "$pidfile"; then
    local pid; pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    echo "down: stopped $1 (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop "cargo lambda watch" "$LS_CACHE/watch.pid"
stop "LocalStack" "$LS_CACHE/localstack.pid"
stop "bridge" "$LS_CACHE/bridge.pid"

if [ "${1:-}" = "--purge" ]; then
  rm -rf "$LS_CACHE/fs" "$LS_CACHE/logs" "$LS_CACHE/outputs.env" "$LS_CACHE/statemachine.rendered.json"
  echo "down: purged $LS_CACHE state"
fi
