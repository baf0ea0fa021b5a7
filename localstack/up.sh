#!/usr/bin/env bash
# Start LocalStack in host mode (no Docker) plus the Lambda bridge, and wait until healthy.
#
#   localstack/up.sh            install (first time), start LocalStack + bridge
#   localstack/up.sh --watch    also start `cargo lambda watch` on the watch port (localstack/watch.sh)
#
# Idempotent: a component already running (pid file alive) is left alone.
set -euo pipefail
source "$(dirname "$0")/env.sh"
mkdir -p "$LS_CACHE/fs" "$LS_CACHE/logs"

WITH=""
for a in "$@"; do
  case "$a" in
    --watch) WITH=watch ;;
    *) echo "usage: $0 [--watch]" >&2; exit 2 ;;
  esac
done

t0=$(date +%s.%N)

# 1. The venv (Python >= 3.13: localstack-core 2026.3.0 imports warnings.deprecated).
if ! "$LS_VENV/bin/python" -c 'import localstack.runtime.main, localstack.aws.components' 2>/dev/null; then
  echo "up: installing LocalStack into $LS_VENV"
  [ -x "$LS_PYTHON" ] || { echo "up: need Python 3.13 at $LS_PYTHON (set LS_PYTHON)" >&2; exit 1; }
  "$LS_PYTHON" -m venv "$LS_VENV"
  "$LS_VENV/bin/pip" install -q --upgrade pip
  "$LS_VENV/bin/pip" install -q "$LOCALSTACK_PIN" "${LOCALSTACK_EXTRA_PINS[@]}"
fi
t_install=$(date +%s.%N)

# 2. The bridge first: LocalStack sends its Lambda API calls to it.
if ! pid_alive "$LS_CACHE/bridge.pid"; then
  nohup "$LS_VENV/bin/python" "$LS_ROOT/localstack/bridge.py" --port "$LAMBDA_BRIDGE_PORT" \
    --upstream "http://127.0.0.1:$LAMBDA_WATCH_PORT" --functions "$REVIEWS_FUNCTIONS" \
    >"$LS_CACHE/logs/bridge.log" 2>&1 &
  echo $! >"$LS_CACHE/bridge.pid"
fi
wait_http "http://127.0.0.1:$LAMBDA_BRIDGE_PORT/_bridge/health" 10 || { echo "up: bridge did not start; see $LS_CACHE/logs/bridge.log" >&2; exit 1; }

# 3. LocalStack in host mode.
if ! pid_alive "$LS_CACHE/localstack.pid"; then
  (
    cd "$LS_CACHE"
    # DISTRIBUTED_MODE=1: LocalStack's internal AWS clients resolve endpoints like any boto client
    # (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>) instead of forcing its own gateway. So:
    #   AWS_ENDPOINT_URL        -> LocalStack itself (STS, Step Functions, S3, ...; never AWS)
    #   AWS_ENDPOINT_URL_LAMBDA -> the bridge -> cargo lambda watch
    # LOCALSTACK_HOST and DNS_ADDRESS=0 keep every address loopback (no DNS server, no
    # *.localstack.cloud names); DISABLE_EVENTS=1 turns analytics off.
    env -u AWS_PROFILE \
      GATEWAY_LISTEN="127.0.0.1:$LS_PORT" GATEWAY_SERVER=hypercorn \
      LOCALSTACK_HOST="127.0.0.1:$LS_PORT" \
      OVERRIDE_IN_DOCKER=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 DNS_ADDRESS=0 \
      FILESYSTEM_ROOT="$LS_CACHE/fs" \
      SERVICES="${LS_SERVICES:-s3,secretsmanager,stepfunctions,events,sts,iam,logs}" \
      DISTRIBUTED_MODE=1 \
      AWS_ENDPOINT_URL="$LS_ENDPOINT" \
      AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$LAMBDA_BRIDGE_PORT" \
      AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION="$LS_REGION" \
      nohup "$LS_VENV/bin/python" -m localstack.runtime.main >"$LS_CACHE/logs/localstack.log" 2>&1 &
    echo $! >"$LS_CACHE/localstack.pid"
  )
fi
healthy=0
deadline=$(( $(date +%s) + ${LS_START_TIMEOUT:-120} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if out=$(curl -fsS --max-time 2 "$LS_ENDPOINT/_localstack/health" 2>/dev/null) &&
     echo "$out" | "$LS_VENV/bin/python" -c '
import json, sys
s = json.load(sys.stdin)["services"]
need = ["s3", "secretsmanager", "stepfunctions", "events", "sts"]
sys.exit(0 if all(s.get(n) in ("available", "running") for n in need) else 1)'; then
    healthy=1; break
  fi
  pid_alive "$LS_CACHE/localstack.pid" || break
  sleep 0.3
done
if [ "$healthy" != 1 ]; then
  echo "up: LocalStack is not healthy; last log lines:" >&2
  tail -n 30 "$LS_CACHE/logs/localstack.log" >&2
  exit 1
fi
t_ready=$(date +%s.%N)

# 4. Optional: cargo lambda watch on the watch port.
if [ "$WITH" = watch ]; then
  "$LS_ROOT/localstack/watch.sh"
fi

python3 - "$t0" "$t_install" "$t_ready" <<'PY'
import sys
t0, ti, tr = map(float, sys.argv[1:])
print(f"up: LocalStack healthy at http://127.0.0.1:{__import__('os').environ.get('LS_PORT','4566')} "
      f"(install/check {ti-t0:.1f}s, start {tr-ti:.1f}s); bridge on :{__import__('os').environ.get('LAMBDA_BRIDGE_PORT','9001')}")
PY
