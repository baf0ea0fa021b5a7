#!/usr/bin/env python3
"""Build the score function's Lambda layer zip from the repository's models/ directory.

Layer layout (extracted by Lambda under /opt; the function gets REVIEWS_MODEL_DIR=/opt/models and
ORT_DYLIB_PATH=/opt/models/onnxruntime/libonnxruntime.so.1.31.1 from Terraform):
  models/onnxruntime/libonnxruntime.so.1.31.1
  models/<name>/model.onnx, tokenizer.json, config.json
  models/ranker.json  (with --ranker: the learned ranking from `reviews train`; Terraform's
                       score_ranker = true gives the function REVIEWS_RANKER=/opt/models/ranker.json)

A ranker is packed only when it was trained with the model the layer packs (the classifier id
`zero-shot:<name>:<model.onnx size>` in its training record): with another one, the function
would refuse it at every cold start.

models/ itself is filled by the project's model setup (PyPI packages onnxruntime==1.31.1 and the
model package; see docs/ARCHITECTURE.md section 8.4); this script only packs it.

  python3 scripts/infra/build_score_layer.py                       # fp32 all-MiniLM-L6-v2
  python3 scripts/infra/build_score_layer.py --model all-MiniLM-L6-v2-int8 --as all-MiniLM-L6-v2
  REVIEWS_MODEL_DIR=models/all-MiniLM-L6-v2 reviews train --input votes.csv --out ranker.json
  python3 scripts/infra/build_score_layer.py --ranker ranker.json

Limits: 250 MB unzipped for function + layers; the zip goes through S3 (Terraform uploads it to the
artifacts bucket), so the 50 MB direct-upload limit does not apply.
"""
import argparse
import json
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
    ap.add_argument("--ranker", default=None, help="a ranker file from `reviews train` to pack as models/ranker.json")
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
    if args.ranker:
        check_ranker(Path(args.ranker), name, (models / args.model / "model.onnx").stat().st_size)
        entries.append((Path(args.ranker), "models/ranker.json", 0o644))
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


def check_ranker(path, name, model_size):
    """Refuse a ranker file the function would refuse: not one, or trained with another model."""
    try:
        ranker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        sys.exit(f"build_score_layer: --ranker {path}: {e}")
    if not isinstance(ranker, dict) or ranker.get("format") != "reviews-ranker":
        sys.exit(f"build_score_layer: --ranker {path} is not a ranker file (reviews train writes one)")
    expected = f"zero-shot:{name}:{model_size}"
    trained = (ranker.get("training") or {}).get("classifier")
    if trained != expected:
        sys.exit(f"build_score_layer: --ranker {path} was trained with the classifier {trained!r}, the layer "
                 f"packs {expected!r}: train it with this model (REVIEWS_MODEL_DIR=<models>/{name} reviews train ...)")


if __name__ == "__main__":
    main()
