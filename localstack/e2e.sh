#!/usr/bin/env bash
# The production shape, end to end on one machine, with the real functions (localstack/e2e.py
# says what is checked). Called by scripts/test; needs PostgreSQL and the MongoDB wire server
# running (scripts/services/*.sh start) and, for the model-based score, scripts/fetch-model.sh.
#
#   localstack/e2e.sh [--no-schedule]
#
# Steps: build the function binaries and the CLI; create a fresh source database with
# `reviews db setup --synthetic`; start LocalStack + the bridge from a purged state; deploy
# (bucket, secrets holding the two URIs, state machine, a DISABLED daily rule); serve the
# functions with `cargo lambda watch`; run the scenarios; stop everything (also on failure).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$LS_ROOT"

E2E_DB="${E2E_DB:-reviews_e2e}"
E2E_ROWS="${E2E_ROWS:-2000}"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

echo "e2e: building the functions and the CLI"
cargo build --bins -p reviews-cli -p reviews-extract-function -p reviews-archive-function \
  -p reviews-transform-function -p reviews-score-function -p reviews-publish-function -p reviews-api-function \
  -p reviews-erase-function

descendants() { # pid: every process below it (children first listed after their parent)
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}
cleanup() {
  # cargo lambda watch starts one process per function; make sure none outlives the test. Only
  # the processes below the watch pid this test started are stopped (never by name).
  local below=""
  [ -f "$LS_CACHE/watch.pid" ] && below="$(descendants "$(cat "$LS_CACHE/watch.pid")")"
  bash "$LS_ROOT/localstack/down.sh" >/dev/null 2>&1 || true
  for pid in $below; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "e2e: source database $E2E_DB with $E2E_ROWS synthetic reviews"
admin="$(bash scripts/services/postgres.sh url)"
psql "$admin" -qc "DROP DATABASE IF EXISTS $E2E_DB WITH (FORCE)" >/dev/null
reader_password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
REVIEWS_PG_ADMIN_URL="$admin" REVIEWS_PG_READER_PASSWORD="$reader_password" \
  "$target_dir/debug/reviews" db setup --database "$E2E_DB" --owner-role e2e_owner \
  --reader-role e2e_reader --synthetic "$E2E_ROWS" --seed 1 >/dev/null
host_port="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).netloc.split("@")[-1])' "$admin")"
# TLS as the admin URL has it (sslmode=verify-full and the test cluster's CA).
tls_query="$(python3 -c 'import sys, urllib.parse as u; print(u.urlsplit(sys.argv[1]).query)' "$admin")"

bash localstack/down.sh --purge >/dev/null
bash localstack/up.sh
# The score function scores with a learned ranking: a ranker file `reviews train` builds from
# reviews with votes, with the classifier the function uses (the model from this checkout).
echo "e2e: a ranker file for the score function (reviews train)"
mkdir -p "$LS_CACHE"
"$target_dir/debug/reviews" generate --reviews 1500 --seed 7 --out "$LS_CACHE/votes.csv" >/dev/null
REVIEWS_MODEL_DIR="$LS_ROOT/models" "$target_dir/debug/reviews" train --input "$LS_CACHE/votes.csv" \
  --out "$LS_CACHE/ranker.json" 2>&1 | tail -n 1
REVIEWS_PG_URI="postgres://e2e_reader:$reader_password@$host_port/$E2E_DB?$tls_query" \
REVIEWS_MONGO_URI="$(bash scripts/services/mongo.sh url)" \
REVIEWS_SCHEDULE_STATE=DISABLED REVIEWS_BUCKETS=8 \
  bash localstack/deploy.sh
# The functions' settings beyond outputs.env: a short MongoDB wait (the archive scenario stops
# it), no extract safety lag (the scenarios change the source and run at once; nothing else
# writes to it), the API re-reading the pointer every second, the model from this checkout, the
# ranker file, logs at info.
REVIEWS_MONGO_TIMEOUT_SECS=2 REVIEWS_PG_SAFETY_LAG_SECS=0 REVIEWS_RELOAD_SECS=1 \
REVIEWS_MODEL_DIR="$LS_ROOT/models" REVIEWS_RANKER="$LS_CACHE/ranker.json" RUST_LOG=info \
  bash localstack/watch.sh

# The erasure scan decodes Parquet and reads the archive with the test venv (pyarrow, pymongo).
[ -n "${REVIEWS_PYTHON:-}" ] || eval "$(bash scripts/test-env.sh)"
REVIEWS_MONGO_DIR="${REVIEWS_MONGO_DIR:-$LS_ROOT/.cache/services/mongo}" LS_CACHE="$LS_CACHE" \
REVIEWS_BIN="$target_dir/debug/reviews" E2E_DB="$E2E_DB" REVIEWS_PG_ADMIN_URL="$admin" \
REVIEWS_PG_READER_PASSWORD="$reader_password" REVIEWS_PYTHON="$REVIEWS_PYTHON" \
  "$LS_VENV/bin/python" localstack/e2e.py "$@" || {
    echo "e2e: FAILED; the last lines of the function log:" >&2
    tail -n 40 "$LS_CACHE/logs/cargo-lambda-watch.log" >&2
    exit 1
  }
