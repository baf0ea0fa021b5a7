#!/usr/bin/env bash
# Installs what the tests need into .cache/ (idempotent; fast when already there) and prints
# the environment variables the tests read. Source it, or run it and eval its output.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="$root/.cache"
mkdir -p "$cache"

# An independent Parquet reader (pyarrow) for the tests that check our files open elsewhere.
venv="$cache/test-venv"
# moto: an S3 emulator, so the S3 lake is tested against a real S3 API on loopback.
# duckdb: reads the live snapshot through the query listing (scripts/query-check.py).
# pymongo: the e2e erasure scan reads every archive document (localstack/erasure_scan.py).
if ! "$venv/bin/python" -c 'import pyarrow, moto, duckdb, pymongo' 2>/dev/null; then
  echo "test-env: installing pyarrow, moto, duckdb and pymongo into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'pyarrow==26.0.1' 'moto[server]==5.2.5' \
    'duckdb==1.5.6' 'pymongo==4.20.1'
fi

echo "export REVIEWS_PYTHON='$venv/bin/python'"
echo "export REVIEWS_MOTO_SERVER='$venv/bin/moto_server'"
echo "export REVIEWS_SHARED_DATA='${REVIEWS_SHARED_DATA:-$(cd "$root/.." && pwd)/shared/data}'"
