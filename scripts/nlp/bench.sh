#!/usr/bin/env bash
# NLP scoring benchmark: the Rust scorer (ONNX Runtime via `ort`) against the Python stacks, in
# one run, on the same reviews (text = headline + ". " + body), with the same thread count.
#
#   scripts/nlp/bench.sh                          # ~20 min on 2 busy cores
#   BENCH_VENV=/tmp/st-venv scripts/nlp/bench.sh  # reuse an existing venv with the same pins
#
# One after another:
#   1. Rust, crates/nlp/examples/throughput.rs (release), fp32 all-MiniLM-L6-v2, first N reviews
#   2. Python, sentence-transformers encode on torch, same model and reviews
#   3. Rust again on the first ZS_N reviews (the zero-shot subset, for a like-for-like ratio)
#   4. transformers' ZeroShotClassificationPipeline on the first ZS_N reviews, one pair per label
#      (the 7 topics of crates/nlp/topics.toml) per review: a COST STAND-IN, since no NLI model
#      can be had here (MiniLM-L6 encoder + random NLI head; see scripts/nlp/bench.py)
# Each process reports its own scoring time and peak RSS (VmHWM). Then scripts/nlp/bench.py
# prints a table (reviews/s, tokens/s, share of the CPU's FLOP peak, peak RSS, ratios against the
# aims 2.5x and 10x) and writes every figure to target/bench/nlp.json.
#
# Environment (default):
#   N (10000), ZS_N (500), THREADS (2), REVIEWS_CSV (../shared/data/amazon_uk_sample_10k.csv)
#   RUST_BATCH (16, EncoderConfig's default), ST_BATCH (32, encode's default),
#   ZS_BATCH (1, the pipeline's default): each stack at its usual batch size
#   BENCH_VENV (.cache/bench-venv, created with $PYTHON (python3.11) from
#     scripts/nlp/bench-requirements.txt when missing or out of date: ~6 GB, as torch from PyPI
#     brings the CUDA wheels; a venv given here is used as it is)
#   CPU_MHZ (clock for the FLOP peak; default "cpu MHz" of /proc/cpuinfo, nominal in a VM)
#   CARGO_BUILD_JOBS
# The model and the ONNX Runtime library come from scripts/fetch-model.sh (run here; ~2 s when
# everything is there).
# Wall-clock figures move with whatever else runs on the machine; the runs share it one after
# the other, so compare the ratios. To stay out of another job's way: nice -n 19 scripts/nlp/bench.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${N:-10000}"
ZS_N="${ZS_N:-500}"
THREADS="${THREADS:-2}"
RUST_BATCH="${RUST_BATCH:-16}"
ST_BATCH="${ST_BATCH:-32}"
ZS_BATCH="${ZS_BATCH:-1}"
CSV="${REVIEWS_CSV:-$ROOT/../shared/data/amazon_uk_sample_10k.csv}"
OUT="$ROOT/target/bench"
REQ="$ROOT/scripts/nlp/bench-requirements.txt"
PY="${PYTHON:-python3.11}"

log() { printf '[bench] %s\n' "$*"; }
step() { log "$1 (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; echo "$1: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.log"; }

[[ -f "$CSV" ]] || { echo "reviews CSV not found: $CSV (set REVIEWS_CSV)" >&2; exit 1; }
mkdir -p "$OUT"
: >"$OUT/load.log"

# Python venv: a given BENCH_VENV is used as it is (warned about when it differs from the pins);
# the default one is (re)created whenever the pins in the requirements file change.
if [[ -n "${BENCH_VENV:-}" ]]; then
  VENV="$BENCH_VENV"
  if ! diff -q <(grep -v '^#' "$REQ" | grep -v '^setuptools==' | sort -f) \
                <("$VENV/bin/python" -m pip freeze --disable-pip-version-check | sort -f) >/dev/null; then
    log "warning: $VENV differs from $REQ"
  fi
else
  VENV="$ROOT/.cache/bench-venv"
  want="$(grep -v '^#' "$REQ" | sha256sum | cut -d' ' -f1)"
  if [[ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    log "creating $VENV from $REQ (PyPI, several minutes)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want" >"$VENV/.requirements.sha256"
  fi
fi

log "model and runtime"
"$ROOT/scripts/fetch-model.sh" --no-int8

log "building the Rust example (release)"
cd "$ROOT"
cargo build --release --quiet -p reviews-nlp --example throughput
rust() {
  cargo run --release --quiet -p reviews-nlp --example throughput -- --csv "$CSV" \
    --threads "$THREADS" --batch "$RUST_BATCH" --max-tokens 0 "$@"
}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
py() { "$VENV/bin/python" "$ROOT/scripts/nlp/bench.py" "$@" --csv "$CSV" --threads "$THREADS"; }

step "1/4 Rust ORT fp32, $N reviews"
rust --n "$N" --json "$OUT/rust.json"
step "2/4 Python sentence-transformers, $N reviews"
py st --n "$N" --batch "$ST_BATCH" --out "$OUT/st.json"
step "3/4 Rust ORT fp32, first $ZS_N reviews"
rust --n "$ZS_N" --json "$OUT/rust-subset.json"
step "4/4 zero-shot pipeline stand-in, first $ZS_N reviews"
py zeroshot --n "$ZS_N" --batch "$ZS_BATCH" --topics "$ROOT/crates/nlp/topics.toml" --out "$OUT/zeroshot.json"
step "done"

"$VENV/bin/python" "$ROOT/scripts/nlp/bench.py" report --threads "$THREADS" --rust "$OUT/rust.json" \
  --st "$OUT/st.json" --rust-subset "$OUT/rust-subset.json" --zeroshot "$OUT/zeroshot.json" \
  --load-log "$OUT/load.log" ${CPU_MHZ:+--mhz "$CPU_MHZ"} --out "$OUT/nlp.json"
