#!/usr/bin/env bash
# Fuzz the code that meets hostile input, each target for a bounded time (cargo fuzz, libFuzzer).
#
#   scripts/fuzz.sh                      every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh     longer
#   scripts/fuzz.sh readers http         some targets only
#
# Targets (fuzz/fuzz_targets/):
#   readers   arbitrary bytes into AmazonReader, TSV and CSV layouts, every row read
#   cleaning  arbitrary RawReview rows into Cleaner::check/admit: each row admitted or rejected
#             with a reason and its original fields; clean_text idempotent
#   http      arbitrary method/path/query/headers into reviews_api::router (with a small curated
#             dataset, and without one): no 5xx (but 503 without a dataset), every 4xx body JSON
#
# Needs the nightly toolchain (libFuzzer instrumentation); installs cargo-fuzz from crates.io if
# missing. Seeds are the hand-written inputs in fuzz/corpus/<target>/ (read only), helped by the
# dictionary fuzz/dict/<target>.dict; what the fuzzer discovers goes to
# .cache/fuzz/corpus/<target>/ (kept between runs), crash inputs to fuzz/artifacts/<target>/.
# Builds run under `nice` with FUZZ_JOBS (default 1) parallel jobs, for a shared 2-core machine.
# Exit status: non-zero if any target crashed (panic, failed assertion, sanitizer report,
# timeout or out-of-memory), with the input that did it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
sanitizer="${FUZZ_SANITIZER:-address}"
cargo_fuzz_version="0.13.2"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(readers cleaning http)

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz $cargo_fuzz_version from crates.io"
  CARGO_BUILD_JOBS="$jobs" nice -n 19 cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

echo "fuzz: building ${targets[*]} (sanitizer $sanitizer)"
for t in "${targets[@]}"; do
  CARGO_BUILD_JOBS="$jobs" nice -n 19 cargo +nightly fuzz build --sanitizer "$sanitizer" "$t"
done

logs="$root/.cache/fuzz/logs"
mkdir -p "$logs"
failed=0
summary=()
for t in "${targets[@]}"; do
  work="$root/.cache/fuzz/corpus/$t"
  mkdir -p "$work" "$root/fuzz/artifacts/$t"
  log="$logs/$t.log"
  echo "fuzz: $t for ${seconds}s (log: ${log#"$root"/})"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  set +e
  # -timeout: one input taking 10 s counts as a crash (a hang); -rss_limit_mb: so does 2 GiB.
  nice -n 19 cargo +nightly fuzz run --sanitizer "$sanitizer" "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //' || true)"
  if [ "$rc" -ne 0 ]; then
    failed=$((failed + 1))
    echo "fuzz: $t FAILED (exit $rc):" >&2
    grep -E -A2 'panicked at|==[0-9]+==ERROR|ERROR: libFuzzer|^SUMMARY:|ParseDictionaryFile|^error' "$log" | head -24 >&2 || true
    grep -A2 '^Failing input' "$log" >&2 || true
    summary+=("$(printf '%-9s %12s execs %8s/s  cov %6s  CRASH (exit %s)' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$rc")")
  else
    summary+=("$(printf '%-9s %12s execs %8s/s  cov %6s  0 crashes' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}")")
  fi
done

echo
echo "fuzz: ${seconds}s per target, sanitizer $sanitizer"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: $failed target(s) crashed; inputs in fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run TARGET FILE)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s), 0 crashes"
