#!/usr/bin/env bash
# The storefront in development, on the real server: builds a small fixture lake with the real
# pipeline (`reviews run --synthetic N --seed S --classifier keywords`, about a second) and serves
# it with `reviews serve`, so the page talks to the API exactly as deployed.
#
#   frontend/dev/serve.sh                 http://127.0.0.1:8080/: page and API from `reviews serve`
#   frontend/dev/serve.sh --live          the page from frontend/ on disk (reload to see an edit),
#                                         the API beside it on another port, cross-origin (CORS)
#   frontend/dev/serve.sh --down          the API has no dataset: every data call answers 503
#   frontend/dev/serve.sh --unreachable   (--live) the page points at a closed port: network errors
#   frontend/dev/serve.sh --hang          (--live) the page points at a port that never answers:
#                                         loading states, then the page's timeout (10 s)
#
# Options: --port P (default 8080; 0 picks a free one), --reviews N (default 2000), --seed S
# (default 42). `reviews serve` embeds the page files at build time: without --live the page is
# the one built into the binary. Environment: REVIEWS_BIN (default: `cargo build -p reviews-cli`,
# then ${CARGO_TARGET_DIR:-target}/debug/reviews), STOREFRONT_WORK (fixture lake and logs, default
# .cache/storefront). --live, --unreachable and --hang need python3 (the static file server).
# Stops what it started on exit (Ctrl-C).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

port=8080 reviews=2000 seed=42 live=0 mode=normal
while [ "$#" -gt 0 ]; do
  case "$1" in
    --port) port="$2"; shift 2 ;;
    --reviews) reviews="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --live) live=1; shift ;;
    --down) mode=down; shift ;;
    --unreachable) mode=unreachable; live=1; shift ;;
    --hang) mode=hang; live=1; shift ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "serve.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

work="${STOREFRONT_WORK:-$root/.cache/storefront}"
mkdir -p "$work"
# One server per work folder: the fixture lake is rebuilt at every start. The lock is held by
# the servers too (they inherit it), until the last one ends.
exec 9>"$work/.lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  echo "serve.sh: another serve.sh is using $work (stop it, or set STOREFRONT_WORK)" >&2
  exit 1
fi

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bin=""
lake=""
if [ "$mode" = normal ] || [ "$mode" = down ]; then
  if [ -n "${REVIEWS_BIN:-}" ]; then
    bin="$REVIEWS_BIN"
  else
    echo "serve.sh: cargo build -p reviews-cli" >&2
    cargo build -p reviews-cli >&2
    bin="${CARGO_TARGET_DIR:-$root/target}/debug/reviews"
  fi
  [ -x "$bin" ] || { echo "serve.sh: $bin is not an executable" >&2; exit 1; }
  if [ "$mode" = down ]; then
    lake="$work/empty-lake"
    rm -rf "$lake"
    mkdir -p "$lake"
    echo "serve.sh: serving an empty lake: the API answers 503 until a dataset is published" >&2
  else
    lake="$work/lake"
    rm -rf "$lake"
    echo "serve.sh: fixture lake $lake: reviews run --synthetic $reviews --seed $seed --classifier keywords" >&2
    "$bin" run --lake "$lake" --synthetic "$reviews" --seed "$seed" --classifier keywords \
      --run-id storefront >"$work/run.log" 2>&1 ||
      { cat "$work/run.log" >&2; echo "serve.sh: the fixture run failed" >&2; exit 1; }
  fi
fi

if [ "$live" -eq 0 ]; then
  # Same origin: `reviews serve` serves the page (built in) and the API. In the foreground, so
  # that the process a caller started is the one serving.
  trap - EXIT INT TERM
  exec "$bin" serve --lake "$lake" --addr "127.0.0.1:$port"
fi

# --live: the page files from frontend/ (links, so an edit shows on reload) and a config.js
# that points the page at the API, served by a static file server with Cache-Control: no-cache.
www="$work/www"
rm -rf "$www"
mkdir -p "$www"
for f in index.html app.js style.css favicon.svg; do ln -s "$root/frontend/$f" "$www/$f"; done
python3 - "$www" "$port" >"$work/page.log" 2>&1 <<'PY' &
import functools, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])),
                                         functools.partial(Handler, directory=sys.argv[1]))
print(f"page on http://127.0.0.1:{server.server_address[1]}/", flush=True)
server.serve_forever()
PY
pids+=("$!")

wait_for_url() { # log file: prints the first loopback URL the process wrote there
  local u=""
  for _ in $(seq 1 100); do
    u="$(grep -o 'http://127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 || true)"
    [ -n "$u" ] && { echo "$u"; return 0; }
    sleep 0.1
  done
  return 1
}
page_url="$(wait_for_url "$work/page.log")" ||
  { cat "$work/page.log" >&2; echo "serve.sh: the page server did not start" >&2; exit 1; }

case "$mode" in
  normal|down)
    "$bin" serve --lake "$lake" --addr 127.0.0.1:0 --no-storefront --cors-origin "$page_url" \
      >"$work/api.out" 2>"$work/api.err" &
    pids+=("$!")
    api_url="$(wait_for_url "$work/api.out")" ||
      { cat "$work/api.err" >&2; echo "serve.sh: reviews serve did not start" >&2; exit 1; }
    ;;
  unreachable)
    # A port that was free a moment ago and that nothing listens on.
    api_url="http://127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    ;;
  hang)
    # Listens (the kernel accepts connections) but never reads or answers.
    python3 -c 'import socket,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(64); print(f"http://127.0.0.1:{s.getsockname()[1]}", flush=True); time.sleep(1e9)' \
      >"$work/hang.out" 2>&1 &
    pids+=("$!")
    api_url="$(wait_for_url "$work/hang.out")" || { echo "serve.sh: the hanging port did not open" >&2; exit 1; }
    ;;
esac
echo "window.REVIEWS_API_BASE = \"$api_url\";" >"$www/config.js"

echo "storefront: $page_url/  (page from frontend/, API at $api_url, $mode; Ctrl-C stops)"
wait -n "${pids[@]}" || true
echo "serve.sh: a server stopped (logs in $work)" >&2
exit 1
