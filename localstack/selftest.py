#!/usr/bin/env python3
"""Checks the wiring LocalStack -> Step Functions -> bridge -> (fake) cargo lambda watch.

Runs the REAL statemachine.asl.json (as deployed by localstack/deploy.sh) against
localstack/fake_lambda.py, scripting faults through its /_fake/faults endpoint, and checks that
Retry, Catch, the deferred archive, the failure path, the row-count guard and the Map behave.
With --schedule it also enables the EventBridge rule on rate(1 minute) and waits for the
execution it starts.

  localstack/up.sh --fake && localstack/deploy.sh && \
    .cache/localstack-venv/bin/python localstack/selftest.py [--schedule]

It needs the fake on the watch port (not the real functions): it is a test of the plumbing and of
the state machine, not of the stages. Prints one line per scenario and 'N passed, N failed'.
"""
import argparse
import json
import os
import sys
import time
import urllib.request
import uuid

import boto3

from schedule import rule_starts_execution

ENDPOINT = f"http://127.0.0.1:{os.environ.get('LS_PORT', '4566')}"
FAKE = f"http://127.0.0.1:{os.environ.get('LAMBDA_WATCH_PORT', '9000')}"
BRIDGE = f"http://127.0.0.1:{os.environ.get('LAMBDA_BRIDGE_PORT', '9001')}"
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
SM_NAME = os.environ.get("REVIEWS_STATE_MACHINE", "reviews-pipeline")
SM_ARN = f"arn:aws:states:{REGION}:000000000000:stateMachine:{SM_NAME}"

sfn = boto3.client("stepfunctions", endpoint_url=ENDPOINT, region_name=REGION,
                   aws_access_key_id="test", aws_secret_access_key="test")
events = boto3.client("events", endpoint_url=ENDPOINT, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")


def http(method, url, doc=None):
    data = json.dumps(doc).encode() if doc is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def fake(faults=()):
    http("POST", f"{FAKE}/_fake/reset", {})
    if faults:
        http("POST", f"{FAKE}/_fake/faults", list(faults))


def calls(name=None):
    return [c for c in http("GET", f"{FAKE}/_fake/calls") if name is None or c["function"] == name]


def run(execution_input, timeout=240):
    name = f"selftest-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    arn = sfn.start_execution(stateMachineArn=SM_ARN, name=name, input=json.dumps(execution_input))["executionArn"]
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{name} still RUNNING after {timeout}s")
        time.sleep(0.25)
    d["_seconds"] = round(time.monotonic() - started, 1)
    d["_name"] = name
    d["_output"] = json.loads(d["output"]) if d.get("output") else None
    return d


RESULTS = []


def check(title, cond, detail=""):
    RESULTS.append(bool(cond))
    print(f"{'PASS' if cond else 'FAIL'}  {title}{'  -- ' + detail if detail else ''}", flush=True)


def scenario_happy():
    fake()
    d = run({})
    o = d["_output"] or {}
    check("happy path: SUCCEEDED with each step's counts",
          d["status"] == "SUCCEEDED" and o["rows"] == {"extracted": 10, "cleaned": 8, "rejected": 2,
                                                       "all_accounted_for": True}
          and o["archive"]["status"] == "archived" and o["publish"]["status"] == "published"
          and o["run_id"].endswith(d["_name"]) and o["publish"]["rows"] == 8,
          f"{d['status']} in {d['_seconds']}s, run_id={o.get('run_id')}")
    ev = calls("reviews-extract")[0]["event"]
    check("extract receives execution_name, start_time and run_id null",
          ev["execution_name"] == d["_name"] and ev["run_id"] is None and ev["start_time"][:2] == "20", json.dumps(ev))
    return d


def scenario_overrides():
    fake()
    d = run({"run_id": "2026-01-02-manual", "shard_rows": 3})
    o = d["_output"] or {}
    check("input overrides run_id and shard_rows: 3 shards scored, keys passed to publish",
          d["status"] == "SUCCEEDED" and o["run_id"] == "2026-01-02-manual"
          and o["score"]["shards"] == 3 and o["score"]["rows_per_shard"] == [3, 3, 2]
          and len(o["load_curated"]["curated_keys"]) == 3
          and calls("reviews-publish")[0]["event"]["curated_keys"] == o["load_curated"]["curated_keys"]
          and calls("reviews-publish")[0]["event"]["expected_rows"] == 8,
          f"{d['status']} in {d['_seconds']}s, score={o.get('score')}")
    scores = calls("reviews-score")
    check("Map items are exactly {run_id, cleaned_key, index}",
          all(set(c["event"]) == {"run_id", "cleaned_key", "index"} for c in scores) and len(scores) == 3)


def scenario_map_concurrency():
    fake(["reviews-score=sleep:2"])
    d1 = run({"shard_rows": 2, "max_concurrency": 1})  # 4 shards one at a time: >= 8 s
    d4 = run({"shard_rows": 2, "max_concurrency": 4})  # 4 shards at once: ~2 s
    check("MaxConcurrencyPath is honoured (4 shards x 2 s: concurrency 1 vs 4)",
          d1["status"] == d4["status"] == "SUCCEEDED" and d1["_seconds"] >= 8 and d4["_seconds"] < d1["_seconds"] - 3,
          f"concurrency 1: {d1['_seconds']}s, concurrency 4: {d4['_seconds']}s")


def scenario_retry_extract():
    fake(["reviews-extract=RetryableError:2"])
    d = run({})
    n = len(calls("reviews-extract"))
    check("extract RetryableError x2: retried with backoff, then SUCCEEDED",
          d["status"] == "SUCCEEDED" and n == 3, f"{d['status']} in {d['_seconds']}s after {n} extract calls")


def scenario_service_exception():
    fake(["reviews-publish=crash:1"])
    d = run({})
    n = len(calls("reviews-publish"))
    check("cargo-lambda server error -> Lambda.ServiceException: retried, then SUCCEEDED",
          d["status"] == "SUCCEEDED" and n == 2, f"{d['status']} in {d['_seconds']}s after {n} publish calls")


def scenario_archive_deferred():
    fake(["reviews-archive=RetryableError:*"])
    d = run({})
    o = d["_output"] or {}
    a = o.get("archive", {})
    n = len(calls("reviews-archive"))
    check("archive down: run SUCCEEDED, archive deferred with the error recorded",
          d["status"] == "SUCCEEDED" and a.get("status") == "deferred" and a.get("error") == "RetryableError"
          and "injected RetryableError" in a.get("cause", "") and o["publish"]["status"] == "published",
          f"{d['status']} in {d['_seconds']}s, {n} archive calls, archive={json.dumps(a)[:120]}")


def scenario_fatal(function, step):
    fake([f"{function}=FatalError:1"])
    d = run({})
    n = len(calls(function))
    check(f"{step} FatalError: not retried, FAILED through the failure path",
          d["status"] == "FAILED" and d.get("error") == "FatalError" and n == 1
          and d.get("cause", "").startswith(f"{step} failed: ") and "injected FatalError" in d.get("cause", ""),
          f"{d['status']} in {d['_seconds']}s, error={d.get('error')}, cause={d.get('cause', '')[:90]}")
    return d


def scenario_retry_exhausted():
    fake(["reviews-transform=RetryableError:*"])
    d = run({}, timeout=400)
    n = len(calls("reviews-transform"))
    check("transform RetryableError forever: 1 call + 5 retries, then FAILED with RetryableError",
          d["status"] == "FAILED" and d.get("error") == "RetryableError" and n == 6,
          f"{d['status']} in {d['_seconds']}s after {n} transform calls")


def scenario_empty():
    fake(["reviews-extract=empty:*", "reviews-transform=empty:*"])
    d = run({})
    o = d["_output"] or {}
    check("no new rows: SUCCEEDED, score and publish skipped",
          d["status"] == "SUCCEEDED" and o.get("publish", {}).get("status") == "skipped"
          and not calls("reviews-score") and not calls("reviews-publish"),
          f"{d['status']} in {d['_seconds']}s, publish={o.get('publish')}")


def scenario_rows_lost():
    fake(["reviews-transform=lose:1"])
    d = run({})
    check("cleaned + rejected != extracted: FAILED with RowsUnaccounted before score",
          d["status"] == "FAILED" and d.get("error") == "RowsUnaccounted" and not calls("reviews-score"),
          f"{d['status']}, cause={d.get('cause')}")


def scenario_history_records_failure(d):
    hist = sfn.get_execution_history(executionArn=d["executionArn"], maxResults=1000)["events"]
    passes = [e for e in hist if e["type"] == "PassStateExited"
              and e["stateExitedEventDetails"]["name"] in ("TransformFailed", "StagesFailed")]
    ok = False
    for e in passes:
        out = json.loads(e["stateExitedEventDetails"]["output"])
        ok = ok or (out.get("failure", {}).get("error") == "FatalError")
    check("failure path Pass states record {step, error, cause} in the history", ok, f"{len(passes)} Pass exits")


def scenario_schedule():
    fake()
    t0 = time.monotonic()
    found, t_start = rule_starts_execution(sfn, events, SM_ARN, rule="reviews-selftest-schedule")
    status, d = None, None
    if found:
        while True:
            d = sfn.describe_execution(executionArn=found["executionArn"])
            status = d["status"]
            if status != "RUNNING" or time.monotonic() - t0 > 240:
                break
            time.sleep(0.5)
    out = json.loads(d["output"]) if d and d.get("output") else {}
    check("EventBridge rule rate(1 minute) starts an execution that SUCCEEDS",
          found is not None and status == "SUCCEEDED" and out.get("run_id", "").endswith(found["name"]),
          f"execution {found and found['name']} seen {t_start}s after PutTargets, "
          f"{status} {round(time.monotonic() - t0 - t_start, 1)}s later, run_id={out.get('run_id')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schedule", action="store_true", help="also test the EventBridge rule (about 1 min)")
    ap.add_argument("--quick", action="store_true", help="skip the slow retry-exhaustion scenario")
    args = ap.parse_args()
    t0 = time.monotonic()
    http("GET", f"{BRIDGE}/_bridge/health")
    scenario_happy()
    scenario_overrides()
    scenario_map_concurrency()
    scenario_retry_extract()
    scenario_service_exception()
    scenario_archive_deferred()
    d = scenario_fatal("reviews-transform", "transform")
    scenario_history_records_failure(d)
    scenario_fatal("reviews-extract", "extract")
    scenario_fatal("reviews-score", "score")
    scenario_fatal("reviews-publish", "publish")
    scenario_empty()
    scenario_rows_lost()
    if not args.quick:
        scenario_retry_exhausted()
    if args.schedule:
        scenario_schedule()
    fake()
    passed = sum(RESULTS)
    print(f"selftest: {time.monotonic() - t0:.0f}s")
    print(f"{passed} passed, {len(RESULTS) - passed} failed")
    sys.exit(0 if passed == len(RESULTS) else 1)


if __name__ == "__main__":
    main()
