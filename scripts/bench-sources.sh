#!/usr/bin/env bash
# Source and sink benchmark: extract throughput from PostgreSQL and archive throughput to the
# MongoDB wire server, with peak memory, at two sizes (memory must stay flat as rows grow).
# Baseline in the same run: psql's COPY of the same rows to /dev/null (the server's own read
# speed, no client decoding, no Parquet).
#
#   scripts/bench-sources.sh [SMALL [LARGE [ARCHIVE_ROWS]]]     default 200000 1000000 100000
#
# Starts PostgreSQL and the MongoDB wire server if needed (scripts/services/). Debug profile
# with dependencies at opt-level 2 (the workspace's dev profile), like the tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
small="${1:-200000}" large="${2:-1000000}" archive_rows="${3:-100000}"
bash scripts/services/postgres.sh start >&2
bash scripts/services/mongo.sh start >&2
cargo build -q -p reviews-postgres --example extract_bench
cargo build -q -p reviews-archive --example archive_bench
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
admin="$(bash scripts/services/postgres.sh url)"
# The admin URL with the bench database in its path (its TLS query kept).
bench_url="$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/bench_reviews")))' "$admin")"
copy_baseline() {
  local t0 t1
  t0=$(date +%s.%N)
  psql "$bench_url" -qAtc "COPY (SELECT r.*, p.title AS product_title, p.category FROM review r JOIN product p USING (product_id)) TO STDOUT" >/dev/null
  t1=$(date +%s.%N)
  python3 -c "import sys; print(f'baseline psql COPY: {float(sys.argv[2])-float(sys.argv[1]):.1f} s')" "$t0" "$t1"
}
psql "$admin" -qc "DROP DATABASE IF EXISTS bench_reviews WITH (FORCE)" >/dev/null 2>&1 || true
for n in "$small" "$large"; do
  echo "== $n reviews"
  "$target_dir/debug/examples/extract_bench" load "$n"
  copy_baseline
  "$target_dir/debug/examples/extract_bench" extract
done
echo "== archive $archive_rows raw rows"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$target_dir/debug/examples/archive_bench" raw "$archive_rows" "$dir"
"$target_dir/debug/examples/archive_bench" archive "$dir"
