#!/usr/bin/env bash
# Serve the Lambda binaries with `cargo lambda watch` on 127.0.0.1:$LAMBDA_WATCH_PORT (default
# 9000), behind localstack/bridge.py. Called by `up.sh --watch`; usable on its own.
#
# - cargo-lambda comes from PyPI (cargo-lambda==1.9.2 ships a prebuilt binary; `cargo install`
#   takes over 30 minutes here) into $LS_ROOT/.cache/cargo-lambda-venv.
# - The functions get the variables of $LS_CACHE/outputs.env (written by deploy.sh): the emulated
#   endpoint (AWS_ENDPOINT_URL), dummy credentials, REVIEWS_LAKE_URI and the secret ids. Run
#   deploy.sh first, or export them yourself.
# - watch compiles a function at its first invocation (`cargo run --bin <name>`): build the
#   binaries beforehand (cargo build --bins) so that the first Step Functions task does not wait
#   for a compile. --ignore-changes: no hot reload while tests run.
set -euo pipefail
source "$(dirname "$0")/env.sh"
CL_VENV="${CARGO_LAMBDA_VENV:-$LS_ROOT/.cache/cargo-lambda-venv}"

if [ ! -x "$CL_VENV/bin/cargo-lambda" ]; then
  echo "watch: installing cargo-lambda==1.9.2 into $CL_VENV"
  python3 -m venv "$CL_VENV"
  "$CL_VENV/bin/pip" install -q 'cargo-lambda==1.9.2'
fi

if pid_alive "$LS_CACHE/watch.pid"; then
  echo "watch: already running (pid $(cat "$LS_CACHE/watch.pid"))"
  exit 0
fi

if [ -f "$LS_CACHE/outputs.env" ]; then
  set -a; source "$LS_CACHE/outputs.env"; set +a
else
  echo "watch: $LS_CACHE/outputs.env not found (run localstack/deploy.sh first); functions get no lake/secret settings" >&2
fi

mkdir -p "$LS_CACHE/logs"
(
  cd "$LS_ROOT"
  PATH="$CL_VENV/bin:$PATH" nohup cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_WATCH_PORT" --ignore-changes \
    >"$LS_CACHE/logs/cargo-lambda-watch.log" 2>&1 &
  echo $! >"$LS_CACHE/watch.pid"
)
# Wait for the port only: an HTTP probe could trigger a compile (watch builds on first request).
deadline=$(( $(date +%s) + ${WATCH_START_TIMEOUT:-120} ))
until (exec 3<>"/dev/tcp/127.0.0.1/$LAMBDA_WATCH_PORT") 2>/dev/null; do
  pid_alive "$LS_CACHE/watch.pid" || { echo "watch: cargo lambda watch exited; see $LS_CACHE/logs/cargo-lambda-watch.log" >&2; exit 1; }
  [ "$(date +%s)" -lt "$deadline" ] || { echo "watch: not listening after ${WATCH_START_TIMEOUT:-120}s" >&2; exit 1; }
  sleep 0.5
done
echo "watch: cargo lambda watch on 127.0.0.1:$LAMBDA_WATCH_PORT (log: $LS_CACHE/logs/cargo-lambda-watch.log)"
