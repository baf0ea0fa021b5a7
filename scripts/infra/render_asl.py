#!/usr/bin/env python3
"""Render statemachine.asl.json the way Terraform's templatefile() does, for emulators and checks.

Every ${Name} placeholder is replaced by a value given as Name=value (or, for the Lambda ARNs, built
from --account/--region/--function-prefix). The result must be valid JSON with no ${...} left; the
script exits non-zero otherwise.

  python3 scripts/infra/render_asl.py statemachine.asl.json \
      --region us-east-1 --account 000000000000 Buckets=16 MapMaxConcurrency=4 > rendered.json

Placeholders (the same names as in infra/modules/state_machine/main.tf):
  ExtractFunctionArn ArchiveFunctionArn TransformFunctionArn ScoreFunctionArn PublishFunctionArn
  Buckets            product buckets of the dataset (a number, or null: the live snapshot's)
  MapMaxConcurrency  Map MaxConcurrency (number, 0 = no limit)
--map-mode DISTRIBUTED applies the same textual switch as Terraform (var.map_mode).
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
INLINE_MODE = '"Mode": "INLINE"'
DISTRIBUTED_MODE = '"Mode": "DISTRIBUTED",\n          "ExecutionType": "STANDARD"'


def placeholders(text):
    return sorted(set(PLACEHOLDER.findall(text)))


def render(text, values):
    missing = [name for name in placeholders(text) if name not in values]
    if missing:
        raise SystemExit(f"render_asl: no value for placeholder(s): {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("asl")
    ap.add_argument("assignments", nargs="*", help="Name=value")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="000000000000")
    ap.add_argument("--function-prefix", default="reviews-")
    ap.add_argument("--map-mode", choices=["INLINE", "DISTRIBUTED"], default="INLINE")
    ap.add_argument("--list", action="store_true", help="print the placeholders and exit")
    args = ap.parse_intermixed_args()

    text = open(args.asl, encoding="utf-8").read()
    if args.list:
        print("\n".join(placeholders(text)))
        return
    values = {"Buckets": "null", "MapMaxConcurrency": 8}
    for key, short in FUNCTIONS.items():
        values[key] = f"arn:aws:lambda:{args.region}:{args.account}:function:{args.function_prefix}{short}"
    for a in args.assignments:
        if "=" not in a:
            raise SystemExit(f"render_asl: expected Name=value, got {a!r}")
        k, v = a.split("=", 1)
        values[k] = v
    if not re.fullmatch(r"[0-9]+", str(values["MapMaxConcurrency"])):
        raise SystemExit(f"render_asl: MapMaxConcurrency must be a non-negative integer, got {values['MapMaxConcurrency']!r}")
    if not re.fullmatch(r"[1-9][0-9]*|null", str(values["Buckets"])):
        raise SystemExit(f"render_asl: Buckets must be a positive integer or null, got {values['Buckets']!r}")
    out = render(text, values)
    if args.map_mode == "DISTRIBUTED":
        if out.count(INLINE_MODE) != 1:
            raise SystemExit("render_asl: expected exactly one Map ProcessorConfig Mode INLINE to switch")
        out = out.replace(INLINE_MODE, DISTRIBUTED_MODE)
    try:
        json.loads(out)
    except json.JSONDecodeError as e:
        raise SystemExit(f"render_asl: rendered definition is not valid JSON: {e}")
    sys.stdout.write(out)


if __name__ == "__main__":
    main()
