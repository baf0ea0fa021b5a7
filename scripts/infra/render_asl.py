#!/usr/bin/env python3
"""Render statemachine.asl.json the way Terraform's templatefile() does, for emulators and checks.

Every ${Name} placeholder is replaced by a value given as Name=value (or, for the Lambda ARNs, built
from --account/--region/--function-prefix). The result must be valid JSON with no ${...} left; the
script exits non-zero otherwise.

  python3 scripts/infra/render_asl.py statemachine.asl.json \
      --region us-east-1 --account 000000000000 Buckets=16 MapMaxConcurrency=4 \
      LakeBucket=reviews-lake > rendered.json

Placeholders (the same names as in infra/modules/state_machine/main.tf):
  ExtractFunctionArn ArchiveFunctionArn TransformFunctionArn ScoreFunctionArn PublishFunctionArn
  Buckets            product buckets of the dataset (1..4096), or null (default): the live
                     snapshot's count, else the transform function's default (64)
  MapMaxConcurrency  MaxConcurrency of the bucket Map (number, 0 = no limit; default 8)
  LakeBucket         the lake bucket's name: the bucket Map's ItemReader reads the run's plan
                     items from it (default reviews-lake)
"""
import argparse
import json
import re
import sys

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
FUNCTIONS = {
    "ExtractFunctionArn": "extract",
    "ArchiveFunctionArn": "archive",
    "TransformFunctionArn": "transform",
    "ScoreFunctionArn": "score",
    "PublishFunctionArn": "publish",
}
MAX_BUCKETS = 4096
DEFAULTS = {"Buckets": "null", "MapMaxConcurrency": 8, "LakeBucket": "reviews-lake"}


def placeholders(text):
    return sorted(set(PLACEHOLDER.findall(text)))


def render(text, values):
    missing = [name for name in placeholders(text) if name not in values]
    if missing:
        raise SystemExit(f"render_asl: no value for placeholder(s): {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def validate(values):
    """The values that end up inside the definition's JSON: refuse anything else."""
    b = str(values["Buckets"])
    if b != "null" and not (re.fullmatch(r"[0-9]+", b) and 1 <= int(b) <= MAX_BUCKETS):
        raise SystemExit(f"render_asl: Buckets must be null or a whole number from 1 to {MAX_BUCKETS}, got {b!r}")
    if not re.fullmatch(r"[0-9]+", str(values["MapMaxConcurrency"])):
        raise SystemExit(f"render_asl: MapMaxConcurrency must be a non-negative integer, got {values['MapMaxConcurrency']!r}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", str(values["LakeBucket"])):
        raise SystemExit(f"render_asl: LakeBucket must be an S3 bucket name, got {values['LakeBucket']!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("asl")
    ap.add_argument("assignments", nargs="*", help="Name=value")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="000000000000")
    ap.add_argument("--function-prefix", default="reviews-")
    ap.add_argument("--list", action="store_true", help="print the placeholders and exit")
    args = ap.parse_intermixed_args()

    text = open(args.asl, encoding="utf-8").read()
    if args.list:
        print("\n".join(placeholders(text)))
        return
    values = dict(DEFAULTS)
    for key, short in FUNCTIONS.items():
        values[key] = f"arn:aws:lambda:{args.region}:{args.account}:function:{args.function_prefix}{short}"
    for a in args.assignments:
        if "=" not in a:
            raise SystemExit(f"render_asl: expected Name=value, got {a!r}")
        k, v = a.split("=", 1)
        values[k] = v
    validate(values)
    out = render(text, values)
    try:
        json.loads(out)
    except json.JSONDecodeError as e:
        raise SystemExit(f"render_asl: rendered definition is not valid JSON: {e}")
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
