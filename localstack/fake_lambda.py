#!/usr/bin/env python3
"""Stand-in for `cargo lambda watch` (dev tool): fake stage functions, real wire behaviour.

It answers POST /2015-03-31/functions/<name>/invocations exactly the way cargo-lambda 1.9.2's
watch server does: 200 + the JSON result, 500 + the runtime's error document
{"errorType": ..., "errorMessage": ...} for a function error, 404 for an unknown binary. The
results follow the stage contract (small JSON: run id, keys, counts), without touching any data.
It exists to exercise statemachine.asl.json, localstack/bridge.py and the emulator wiring before
(or without) the Rust binaries; it proves nothing about the stages themselves.

Faults are scripted per function, at start (--fail) or at run time (POST /_fake/faults):
  reviews-extract=RetryableError:2      the first 2 calls fail with RetryableError, then succeed
  reviews-archive=RetryableError:*      every call fails
  reviews-transform=FatalError:1
  reviews-score=sleep:3                 each call sleeps 3 s (to see Map concurrency)
  reviews-publish=crash:1               like a cargo-lambda server error (500 without errorType):
                                        the bridge turns it into Lambda.ServiceException
  reviews-extract=empty:*               (extract/transform) zero rows: nothing to publish
  reviews-transform=lose:1              transform reports one row fewer than it read
GET /_fake/calls lists the calls; POST /_fake/reset clears calls and faults.

  python3 localstack/fake_lambda.py --port 9000 --fail reviews-extract=RetryableError:2
"""
import argparse
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FUNCTIONS = ["reviews-extract", "reviews-archive", "reviews-transform", "reviews-score",
             "reviews-publish", "reviews-api"]
ROWS, CLEANED, REJECTED = 10, 8, 2
LOCK = threading.Lock()
FAULTS = {}  # name -> {"kind": str, "left": int | None, "arg": float}
CALLS = []
SHARD_SIZES = {}  # run_id -> rows per shard, as "written" by transform


def parse_fault(spec):
    name, _, rest = spec.partition("=")
    kind, _, count = rest.partition(":")
    if kind == "sleep":
        return name, {"kind": "sleep", "left": None, "arg": float(count or 1)}
    return name, {"kind": kind, "left": None if count in ("*", "") else int(count), "arg": 0}


def result(name, event, mode=None):
    run_id = event.get("run_id")
    if mode == "empty" and name == "reviews-extract":
        run_id = run_id or f"{event['start_time'][:10]}-{event['execution_name']}"
        return {"run_id": run_id, "raw_keys": [f"raw/run={run_id}/part-00000.parquet"], "rows": 0,
                "watermark": "2026-01-01T00:00:00Z", "incremental": True}
    if mode == "empty" and name == "reviews-transform":
        return {"run_id": run_id, "rows_in": 0, "cleaned": 0, "rejected": 0, "rejected_by_reason": {},
                "rejects_key": f"rejects/run={run_id}/rejects.csv", "carried": 0, "total_rows": 0,
                "shards": []}
    if mode == "lose" and name == "reviews-transform":
        out = result(name, event)
        out["rejected"] -= 1
        return out
    if name == "reviews-extract":
        run_id = run_id or f"{event['start_time'][:10]}-{event['execution_name']}"
        return {"run_id": run_id, "raw_keys": [f"raw/run={run_id}/part-00000.parquet"], "rows": ROWS,
                "watermark": "2026-01-01T00:00:00Z", "incremental": False}
    if name == "reviews-archive":
        return {"run_id": run_id, "archived_runs": [run_id], "documents": ROWS}
    if name == "reviews-transform":
        shard_rows = int(event.get("shard_rows") or 10000)
        n = max(1, math.ceil(CLEANED / shard_rows))
        SHARD_SIZES[run_id] = [min(shard_rows, CLEANED - i * shard_rows) for i in range(n)]
        return {"run_id": run_id, "rows_in": ROWS, "cleaned": CLEANED, "rejected": REJECTED,
                "rejected_by_reason": {"empty_text": REJECTED},
                "rejects_key": f"rejects/run={run_id}/rejects.csv", "carried": 0, "total_rows": CLEANED,
                "shards": [{"run_id": run_id, "cleaned_key": f"cleaned/run={run_id}/part-{i:05}.parquet",
                            "index": i} for i in range(n)]}
    if name == "reviews-score":
        i = event["index"]
        return {"run_id": run_id, "curated_key": f"curated/run={run_id}/part-{i:05}.parquet",
                "rows": SHARD_SIZES.get(run_id, [0] * (i + 1))[i]}
    if name == "reviews-publish":
        return {"run_id": run_id, "manifest_key": "curated/_latest.json", "rows": event["expected_rows"],
                "checksum": "sha256:fake"}
    return {"ok": True}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_fake/calls":
            with LOCK:
                return self.send(200, CALLS)
        self.send(404, {"title": "Not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if parts == ["_fake", "reset"]:
            with LOCK:
                CALLS.clear()
                FAULTS.clear()
            return self.send(200, {"reset": True})
        if parts == ["_fake", "faults"]:
            with LOCK:
                for spec in json.loads(raw):
                    k, v = parse_fault(spec)
                    FAULTS[k] = v
            return self.send(200, {"faults": FAULTS})
        if len(parts) != 4 or parts[:2] != ["2015-03-31", "functions"] or parts[3] != "invocations":
            return self.send(404, {"title": "Not found"})
        name = parts[2]
        if name not in FUNCTIONS:
            # cargo-lambda's answer for a binary that is not in the project
            return self.send(404, {"title": "Missing function",
                                   "detail": f"that function doesn't exist as a binary in your project. "
                                             f"Available functions: {FUNCTIONS}"})
        event = json.loads(raw or b"{}")
        with LOCK:
            fault = FAULTS.get(name)
            fire = None
            if fault and fault["kind"] != "sleep" and (fault["left"] is None or fault["left"] > 0):
                fire = fault["kind"]
                if fault["left"] is not None:
                    fault["left"] -= 1
            CALLS.append({"function": name, "event": event, "at": time.time(), "error": fire})
        if fault and fault["kind"] == "sleep":
            time.sleep(fault["arg"])
        if fire == "crash":
            # cargo lambda watch's own failure (ServerError): 500 + problem JSON, no errorType
            return self.send(500, {"type": "https://httpstatuses.com/500", "title": "Internal Server Error",
                                   "status": 500})
        if fire in ("empty", "lose"):
            return self.send(200, result(name, event, fire))
        if fire:
            # cargo lambda watch: HTTP 500 with the runtime's error document
            return self.send(500, {"errorType": fire, "errorMessage": f"fake {name}: injected {fire}"})
        try:
            return self.send(200, result(name, event))
        except (KeyError, TypeError, ValueError) as e:
            return self.send(500, {"errorType": "FatalError", "errorMessage": f"fake {name}: bad input: {e!r}"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--fail", action="append", default=[], help="name=Kind:count (see above)")
    args = ap.parse_args()
    for spec in args.fail:
        k, v = parse_fault(spec)
        FAULTS[k] = v
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"msg": "fake cargo-lambda watch listening", "port": args.port}), file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
