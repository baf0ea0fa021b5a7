#!/usr/bin/env bash
# Benchmarks the serving API (`reviews serve`) against the original way of serving it (FastAPI +
# pandas, bench/api/fastapi_baseline.py), on the same synthetic curated lake, one server at a time:
# cold start (process start -> /health 200), RSS after load and peak (VmHWM), and warm lookup
# latency (p50/p99) and throughput with wrk on 127.0.0.1. Prints a table and the ratios and writes
# bench/api/last-result.json. See bench/api/README.md.
#
# Usage: scripts/bench-api.sh [--reviews N] [--buckets B] [--duration S] [--single-duration S] [--warmup S]
#                             [--connections C] [--threads T] [--limit L]
#                             [--only both|ours|baseline] [--out FILE]
# Environment: REVIEWS_BIN (default target/release/reviews), BENCH_API_DIR (lakes and logs,
#   default target/bench-api), REVIEWS_SERVE_ARGS (extra arguments for `reviews serve`),
#   BENCH_STARTUP_TIMEOUT (seconds a server may take to answer /health 200, default 300).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
reviews_n=1000000
duration=15
single_duration=10
warmup=3
connections=32
threads=2
limit=5
only=both
buckets=""
out="$root/bench/api/last-result.json"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench-api: error: $*" >&2; exit 1; }
log() { echo "bench-api: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --reviews) reviews_n="$2"; shift 2 ;;
    --buckets) buckets="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --single-duration) single_duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --connections) connections="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
case "$only" in both|ours|baseline) ;; *) die "--only must be both, ours or baseline" ;; esac
for v in reviews_n duration single_duration warmup connections threads limit; do
  flag="--${v//_/-}"; [ "$v" = reviews_n ] && flag=--reviews
  [[ "${!v}" =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 -o "$v" = warmup ] \
    || die "$flag must be a positive whole number, got '${!v}'"
done
[ "$connections" -ge "$threads" ] || die "--connections must be >= --threads"

bin="${REVIEWS_BIN:-$root/target/release/reviews}"
work_root="${BENCH_API_DIR:-$root/target/bench-api}"
startup_timeout="${BENCH_STARTUP_TIMEOUT:-300}"
venv="$root/.cache/bench-venv"
py="$venv/bin/python"
util="$root/bench/api/bench_util.py"
lua="$root/bench/api/random_products.lua"

# ---------------------------------------------------------------- prerequisites
[ -x "$bin" ] || die "$bin not found: build it first (cargo build --release -p reviews-cli)"
serve_args=()
if [ -n "${REVIEWS_SERVE_ARGS:-}" ]; then read -r -a serve_args <<<"$REVIEWS_SERVE_ARGS"; fi
if [ "$only" != baseline ]; then
  if ! "$bin" serve --help >/dev/null 2>&1; then
    die "'$bin serve' does not exist (yet): build a reviews binary with the serve subcommand," \
        "or measure only the FastAPI baseline with --only baseline"
  fi
fi
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian package)"
  { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null 2>&1 \
    || die "wrk is missing and 'apt-get install wrk' failed: install it (Debian package wrk)"
fi
command -v curl >/dev/null 2>&1 || die "curl is required"
if ! "$py" -c 'import fastapi, uvicorn, pandas, pyarrow' 2>/dev/null; then
  log "creating the bench venv in $venv (pinned fastapi, uvicorn, pandas, pyarrow)"
  python3 -m venv "$venv" || die "python3 -m venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/bench/api/requirements.txt" \
    || die "pip install of bench/api/requirements.txt failed"
fi

# ---------------------------------------------------------------- the lake
lake="$work_root/lake-$reviews_n${buckets:+-b$buckets}"
logs="$work_root/logs"
mkdir -p "$work_root" "$logs"
if [ ! -f "$lake/.bench-complete" ] || [ ! -f "$lake/curated/_latest.json" ]; then
  log "building a lake of $reviews_n synthetic reviews in $lake (once per N)"
  rm -rf "$lake"
  t0=$(date +%s)
  # Keyword topics: this measures serving, and the model would take an hour on 1M reviews here.
  "$bin" run --lake "$lake" --synthetic "$reviews_n" --run-id bench --classifier keywords \
    ${buckets:+--buckets "$buckets"} \
    >"$logs/lake-build.log" 2>&1 \
    || { tail -n 30 "$logs/lake-build.log" >&2; die "reviews run failed (log: $logs/lake-build.log)"; }
  [ -f "$lake/curated/_latest.json" ] || die "reviews run left no $lake/curated/_latest.json"
  echo "$reviews_n" >"$lake/.bench-complete"
  log "lake built in $(( $(date +%s) - t0 )) s"
else
  log "reusing the lake in $lake"
fi
products_file="$work_root/products-$reviews_n.txt"
n_products=$("$py" "$util" products "$lake" "$products_file") || die "could not list product ids from $lake"
probe_product=$(head -n 1 "$products_file")
log "$n_products products listed in $products_file"

# ---------------------------------------------------------------- servers
# Both servers and wrk share this machine's cores: anything else running (a cargo build) skews the
# figures. Say so loudly and record the load average with the result.
load_before=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load_before" 'BEGIN { exit !(l > 0.8) }'; then
  log "WARNING: 1-minute load average is $load_before before benchmarking: other work is running" \
      "and the figures will be skewed; rerun on a quiet machine for numbers to quote"
fi
server_pids=()
cleanup() {
  local pid
  for pid in "${server_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }

stop_server() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# drain BASE LABEL: wait until the server has worked off requests left queued by the previous wrk
# run (wrk closes its connections at the deadline, but a slow server still answers what it had
# accepted): /health must answer within 0.2 s. Without this, the next run's first requests wait
# behind that backlog and show up as its tail latency.
drain() {
  local base=$1 label=$2 t0 secs
  t0=$(now_ns)
  while :; do
    secs=$(curl -s -o /dev/null -w '%{time_total}' --max-time 60 "$base/health" 2>/dev/null) || secs=99
    awk -v s="$secs" 'BEGIN { exit !(s < 0.2) }' && break
    [ $(( ($(now_ns) - t0) / 1000000000 )) -lt 120 ] \
      || die "[$label] the server did not become idle within 120 s after a wrk run"
  done
  sleep 0.5
}

# measure_side LABEL PORT CMD...: start the server, time its cold start, check it, load it with
# wrk, read its memory, stop it, and write $logs/LABEL.json.
measure_side() {
  local label=$1 port=$2; shift 2
  local base="http://127.0.0.1:$port" health="$logs/$label-health.json" code t0 t1 pid
  log "[$label] starting: $*"
  t0=$(now_ns)
  "$@" >"$logs/$label-server.log" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logs/$label-server.log" >&2
      die "[$label] the server exited before /health answered 200 (log: $logs/$label-server.log)"
    fi
    code=$(curl -s -o "$health" -w '%{http_code}' --max-time 2 "$base/health" 2>/dev/null) || true
    [ "$code" = 200 ] && break
    if [ $(( ($(now_ns) - t0) / 1000000000 )) -ge "$startup_timeout" ]; then
      tail -n 30 "$logs/$label-server.log" >&2
      die "[$label] /health did not answer 200 within ${startup_timeout}s (last status: ${code:-none})"
    fi
    sleep 0.01
  done
  t1=$(now_ns)
  local cold_ms=$(( (t1 - t0) / 1000000 ))
  local rss_load; rss_load=$(kib VmRSS "$pid")
  log "[$label] /health 200 after ${cold_ms} ms; RSS $(( rss_load / 1024 )) MiB"

  "$py" "$util" check "$base" "$probe_product" "$limit" >"$logs/$label-probe.json" \
    || die "[$label] GET /reviews/$probe_product/top?limit=$limit is not a good 200 (see above)"
  # Launch to the first answer of a product's reviews (the API fetches that product's bucket
  # now; the baseline had everything loaded before /health).
  local first_ms=$(( ($(now_ns) - t0) / 1000000 ))
  log "[$label] first /reviews answer after ${first_ms} ms"

  local wrk_env=(env BENCH_PRODUCTS="$products_file" BENCH_LIMIT="$limit")
  if [ "$warmup" -gt 0 ]; then
    "${wrk_env[@]}" BENCH_LABEL=warmup wrk -t "$threads" -c "$connections" -d "${warmup}s" \
      --timeout 30s -s "$lua" "$base" >"$logs/$label-wrk-warmup.txt" 2>&1 \
      || die "[$label] wrk warm-up failed: $(tail -n 5 "$logs/$label-wrk-warmup.txt")"
    drain "$base" "$label"
  fi
  log "[$label] wrk: $threads threads, $connections connections, ${duration}s"
  "${wrk_env[@]}" BENCH_LABEL=loaded wrk -t "$threads" -c "$connections" -d "${duration}s" \
    --timeout 30s --latency -s "$lua" "$base" >"$logs/$label-wrk-loaded.txt" 2>&1 \
    || die "[$label] wrk failed: $(tail -n 5 "$logs/$label-wrk-loaded.txt")"
  drain "$base" "$label"
  log "[$label] wrk: 1 thread, 1 connection, ${single_duration}s"
  "${wrk_env[@]}" BENCH_LABEL=single wrk -t 1 -c 1 -d "${single_duration}s" \
    --timeout 30s --latency -s "$lua" "$base" >"$logs/$label-wrk-single.txt" 2>&1 \
    || die "[$label] wrk failed: $(tail -n 5 "$logs/$label-wrk-single.txt")"
  kill -0 "$pid" 2>/dev/null || die "[$label] the server died during the benchmark (log: $logs/$label-server.log)"
  local rss_bench peak
  rss_bench=$(kib VmRSS "$pid"); peak=$(kib VmHWM "$pid")
  local f
  for f in loaded single; do
    if grep -q 'Non-2xx or 3xx responses' "$logs/$label-wrk-$f.txt"; then
      grep 'Non-2xx' "$logs/$label-wrk-$f.txt" >&2
      die "[$label] some responses were not 2xx during the $f run: figures would be meaningless"
    fi
  done
  stop_server "$pid"
  "$py" "$util" side "$logs/$label.json" \
    "server=$label" "command=$(printf '%q ' "$@")" "cold_start_ms=$cold_ms" "first_answer_ms=$first_ms" \
    "rss_after_load_kib=$rss_load" "rss_after_bench_kib=$rss_bench" "peak_rss_kib=$peak" \
    "health_file=$health" "probe_product=$probe_product" \
    "probe_review_ids=$(cat "$logs/$label-probe.json")" \
    --wrk-json "loaded=$logs/$label-wrk-loaded.txt" --wrk-json "single=$logs/$label-wrk-single.txt"
  sed -n '/Latency Distribution/,/Requests\/sec/p' "$logs/$label-wrk-loaded.txt" >&2
}

report_args=()
if [ "$only" != baseline ]; then
  port=$("$py" "$util" free-port)
  measure_side ours "$port" "$bin" serve --lake "$lake" --addr "127.0.0.1:$port" "${serve_args[@]}"
  report_args+=(--ours "$logs/ours.json")
fi
if [ "$only" != ours ]; then
  port=$("$py" "$util" free-port)
  measure_side baseline "$port" "$py" "$root/bench/api/fastapi_baseline.py" --lake "$lake" --port "$port"
  report_args+=(--baseline "$logs/baseline.json")
fi
if [ "$only" = both ] && ! cmp -s "$logs/ours-probe.json" "$logs/baseline-probe.json"; then
  log "note: for $probe_product the two servers returned different review ids" \
      "(ours $(cat "$logs/ours-probe.json"), baseline $(cat "$logs/baseline-probe.json")); ties in relevance?"
fi

versions=$("$py" -c 'import json, sys, fastapi, uvicorn, pandas, pyarrow
print(json.dumps({"python": sys.version.split()[0], "fastapi": fastapi.__version__,
  "uvicorn": uvicorn.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}))')
"$py" "$util" report "$out" "${report_args[@]}" \
  "n_reviews=$reviews_n" "products=$n_products" "limit=$limit" "threads=$threads" \
  "connections=$connections" "duration_s=$duration" "single_duration_s=$single_duration" \
  "warmup_s=$warmup" "cores=$(nproc)" "only=$only" "buckets=${buckets:-default}" \
  "serve_args=${REVIEWS_SERVE_ARGS:-}" \
  "git_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "wrk=$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)" "baseline_versions=$versions" \
  "lake=$lake" "logs=$logs" "loadavg_before=$load_before" \
  "loadavg_after=$(cut -d' ' -f1 /proc/loadavg)"
