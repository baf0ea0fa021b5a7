#!/usr/bin/env bash
# Load test with a publish in the middle: `reviews serve` on loopback under wrk at the highest
# rate the machine gives (closed loop, C connections), for a bounded time, while a second run is
# published into the same lake halfway through. Passes only with zero errors (connect, read,
# write, timeout, non-2xx) and the new run being served at the end; prints requests, rate and
# latency percentiles, and writes them to target/load-test.json.
#
#   scripts/load-test.sh [--reviews N] [--duration S] [--connections C]   (defaults 200000 30 32)
#
# Uses target/release/reviews (built if missing or older than the sources) and wrk (Debian's
# package; installed with apt-get when missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
reviews_n=200000 duration=30 connections=32
while [ $# -gt 0 ]; do
  case "$1" in
    --reviews) reviews_n="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    *) echo "usage: $0 [--reviews N] [--duration S] [--connections C]" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { apt-get install -y -q wrk >/dev/null || { echo "load-test: wrk is missing" >&2; exit 1; }; }
bin="${REVIEWS_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/reviews}"
if [ -z "${REVIEWS_BIN:-}" ]; then cargo build --release -q -p reviews-cli; fi

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
lake="$work/lake"

echo "load-test: publishing run A ($reviews_n synthetic reviews)" >&2
"$bin" run --lake "$lake" --synthetic "$reviews_n" --seed 1 --run-id load-a --classifier keywords --json >/dev/null
"$bin" serve --lake "$lake" --addr "127.0.0.1:$port" --reload-secs 1 --no-storefront 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$port" "$work/products.txt" <<'PY'
import json, sys, urllib.request
port, out = sys.argv[1], sys.argv[2]
ids, page = [], 1
while True:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/products?per_page=100&page={page}") as r:
        doc = json.load(r)
    ids += [p["product_id"] for p in doc["products"]]
    if not doc["products"] or len(ids) >= doc["total"]:
        break
    page += 1
open(out, "w").write("\n".join(ids) + "\n")
PY

echo "load-test: wrk ${duration}s, $connections connections; run B is published after 5 s" >&2
( sleep 5
  "$bin" run --lake "$lake" --synthetic "$reviews_n" --seed 2 --run-id load-b --classifier keywords --json >"$work/publish.json"
  date +%s.%N >"$work/published_at" ) &
publisher=$!
t0=$(date +%s.%N)
BENCH_PRODUCTS="$work/products.txt" BENCH_LABEL=publish-under-load \
  wrk -t 2 -c "$connections" -d "${duration}s" --latency -s bench/api/random_products.lua \
  "http://127.0.0.1:$port" >"$work/wrk.txt"
wait "$publisher"
sleep 2
health="$(curl -fs "http://127.0.0.1:$port/health")"
python3 - "$work/wrk.txt" "$health" "$t0" "$work/published_at" "$root/target/load-test.json" <<'PY'
import json, sys
wrk_out, health, t0, published_at, out = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
line = next(l for l in open(wrk_out) if l.startswith("BENCH_JSON "))
r = json.loads(line.split(" ", 1)[1])
errors = sum(r["errors"].values())
at = float(open(published_at).read()) - t0
r.update({"published_after_s": round(at, 1), "served_run_after": health.get("run_id")})
import os
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump(r, open(out, "w"), indent=2)
l = r["latency_us"]
print(f"load-test: {r['requests']} requests in {r['duration_s']:.1f} s = {r['rps']:.0f} req/s, "
      f"p50 {l['p50']/1000:.2f} ms, p99 {l['p99']/1000:.2f} ms, p99.9 {l['p999']/1000:.2f} ms, max {l['max']/1000:.1f} ms; "
      f"errors {r['errors']}; run B published {at:.1f} s into the test; served after: {health.get('run_id')}")
ok = errors == 0 and health.get("run_id") == "load-b" and at < r["duration_s"]
print("load-test: PASS" if ok else "load-test: FAIL")
sys.exit(0 if ok else 1)
PY
