#!/usr/bin/env bash
# Build every Lambda with cargo-lambda (release, x86_64, zip for provided.al2023) and print the
# size of each zip and of its bootstrap. Installs cargo-lambda and zig from PyPI on first use.
#
#   scripts/lambda-sizes.sh [--arm64]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.cache/cargo-lambda-venv"
if [ ! -x "$venv/bin/cargo-lambda" ] || ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  echo "lambda-sizes: installing cargo-lambda==1.9.2 and ziglang==0.13.0 into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'cargo-lambda==1.9.2' 'ziglang==0.13.0'
fi
arch="--x86-64"
[ "${1:-}" = "--arm64" ] && arch="--arm64"
functions=(extract archive transform score publish api erase)
pkgs=()
for f in "${functions[@]}"; do pkgs+=(-p "reviews-$f-function"); done
PATH="$venv/bin:$PATH" cargo lambda build --release "$arch" --output-format zip "${pkgs[@]}" >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
printf '%-20s %12s %14s\n' function "zip (bytes)" "bootstrap (bytes)"
for f in "${functions[@]}"; do
  zip="$target_dir/lambda/reviews-$f/bootstrap.zip"
  [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
  unzipped="$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")"
  printf '%-20s %12s %14s\n' "reviews-$f" "$(stat -c %s "$zip")" "$unzipped"
done
