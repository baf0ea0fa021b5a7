#!/usr/bin/env bash
# Browser test of the storefront: runs the pipeline on synthetic data, starts `reviews serve`
# on a free loopback port, and drives headless Chromium through the storefront
# (frontend/tests/storefront.mjs). Screenshot: target/storefront.png.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="${REVIEWS_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/reviews}"
[ -x "$bin" ] || cargo build -p reviews-cli
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" run --lake "$work/lake" --synthetic 3000 --run-id browser >/dev/null
"$bin" serve --lake "$work/lake" --addr 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" 2>/dev/null || true)"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "reviews serve did not start:"; cat "$work/serve.err"; exit 1; }
mkdir -p target
BASE_URL="$url" SCREENSHOT="$root/target/storefront.png" bash frontend/tests/run.sh
