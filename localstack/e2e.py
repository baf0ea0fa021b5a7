#!/usr/bin/env python3
"""End to end with the REAL stage functions: LocalStack's Step Functions executes the real
statemachine.asl.json; its Lambda tasks reach the Rust handlers served by `cargo lambda watch`
(through localstack/bridge.py); the functions read their secrets from LocalStack's Secrets
Manager and write the lake in LocalStack's S3; PostgreSQL 15 and the MongoDB wire server are
real servers. Driven by localstack/e2e.sh, which starts and deploys everything first.

Scenarios (one line each, PASS/FAIL, then 'N passed, N failed'; exit 1 on any failure):
  1. an execution runs every step and SUCCEEDS; the curated Parquet parts and the manifests are
     in the bucket; the score function scored with the ranker file (learned signal and reasons
     in every row); the API function answers /reviews/{id}/top from them, with the reasons
  1b. incremental: a run that edits two reviews of one product rewrites only that product's
     bucket (the route Map routes each raw part in a child execution; the bucket Map, a
     Distributed Map reading its items from S3, has one item); the new
     snapshot references the first run's files for the other buckets; the API serves the edits
  1c. a bucket merge that fails for real (its carried file is gone): the execution FAILS through
     the failure path and commits nothing; with the file back, the next execution publishes the
     edit the failed one held
  2. MongoDB stopped: the execution SUCCEEDS with the archive deferred; MongoDB back: the next
     execution archives the backlog (the earlier run and its own)
  3. PostgreSQL stopped for the first attempts: Retry absorbs it, the execution SUCCEEDS
  4. a fatal error (an invalid run id): FAILED through the failure path, error recorded
  4b. erasure in production: the erase function (invoked as the administrator would) removes a
     buyer from every version of every object of the bucket and from the archive; a later
     execution that re-reads the buyer's rows from the source writes them back redacted only
  5. an EventBridge rule on rate(1 minute) starts an execution by itself, which SUCCEEDS
  6. the functions' logs hold neither database password (they ran with both)

  localstack/e2e.sh      (not this file directly)
"""
import argparse
import json
import urllib.parse
import os
import subprocess
import tempfile
import sys
import threading
import time
import urllib.request
import uuid

import boto3

from schedule import rule_starts_execution

ENDPOINT = f"http://127.0.0.1:{os.environ.get('LS_PORT', '4566')}"
WATCH = f"http://127.0.0.1:{os.environ.get('LAMBDA_WATCH_PORT', '9000')}"
BRIDGE = f"http://127.0.0.1:{os.environ.get('LAMBDA_BRIDGE_PORT', '9001')}"
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
SM_NAME = os.environ.get("REVIEWS_STATE_MACHINE", "reviews-pipeline")
SM_ARN = f"arn:aws:states:{REGION}:000000000000:stateMachine:{SM_NAME}"
BUCKET = os.environ.get("REVIEWS_BUCKET", "reviews-lake")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def client(name):
    return boto3.client(name, endpoint_url=ENDPOINT, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


sfn, events, s3 = client("stepfunctions"), client("events"), client("s3")
RESULTS = []


def check(title, cond, detail=""):
    RESULTS.append(bool(cond))
    print(f"{'PASS' if cond else 'FAIL'}  {title}{'  -- ' + detail if detail else ''}", flush=True)


def service(name, action):
    subprocess.run(["bash", f"{ROOT}/scripts/services/{name}.sh", action], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start(execution_input, prefix="e2e"):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    arn = sfn.start_execution(stateMachineArn=SM_ARN, name=name,
                              input=json.dumps(execution_input))["executionArn"]
    return arn, name, time.monotonic()


def wait(arn, name, started, timeout=600):
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            break
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{name} still RUNNING after {timeout}s")
        time.sleep(0.5)
    d["_seconds"] = round(time.monotonic() - started, 1)
    d["_name"] = name
    d["_output"] = json.loads(d["output"]) if d.get("output") else {}
    return d


def run(execution_input, timeout=600):
    return wait(*start(execution_input), timeout=timeout)


def history(arn):
    return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]


def failed_tasks(arn, state):
    """Error names of the failed attempts of a Task state, in order."""
    out, current = [], None
    for e in history(arn):
        if e["type"] == "TaskStateEntered":
            current = e["stateEnteredEventDetails"]["name"]
        elif e["type"] == "TaskFailed" and current == state:
            out.append(e["taskFailedEventDetails"].get("error"))
    return out


def s3_keys(prefix):
    keys, token = [], None
    while True:
        kw = {"Bucket": BUCKET, "Prefix": prefix}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        keys += [o["Key"] for o in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return keys
        token = r["NextContinuationToken"]


API_RETRIES = []


def api(path):
    """GET through the API function served by cargo lambda watch (function URL shape).
    cargo lambda watch answers 500 in a few ms, without calling the function, while it spawns a
    new function instance, and sometimes holds a request without an answer: both are retried
    (and listed in API_RETRIES, printed at the end); the API's own errors carry {"error": ...}
    and are returned."""
    req = urllib.request.Request(f"{WATCH}/lambda-url/reviews-api{path}")
    for attempt in range(4):
        try:
            # The API answers in milliseconds; a first call may wait for the instance to start.
            with urllib.request.urlopen(req, timeout=45) as r:
                return r.status, json.loads(r.read())
        except (TimeoutError, ConnectionResetError) as e:
            # The watcher sometimes holds a request routed to an instance it is replacing.
            if attempt == 3:
                raise
            API_RETRIES.append((path, f"{type(e).__name__}: {e}"))
            continue
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                parsed = json.loads(body or b"null")
            except ValueError:
                parsed = None
            # The API's own errors are {"error": {...}}; anything else came from the watcher.
            if e.code == 500 and not (isinstance(parsed, dict) and "error" in parsed) and attempt < 3:
                API_RETRIES.append((path, body[:80]))
                time.sleep(1)
                continue
            return e.code, parsed


def load_more(seed):
    """Change the source: synthetic rows of another seed (same review ids, new content) are
    updates the incremental extract must pick up."""
    subprocess.run([os.environ["REVIEWS_BIN"], "db", "setup", "--database", os.environ["E2E_DB"],
                    "--owner-role", "e2e_owner", "--reader-role", "e2e_reader", "--synthetic", os.environ.get("E2E_MORE_ROWS", "300"), "--seed", str(seed), "--json"],
                   check=True, stdout=subprocess.DEVNULL)


def scenario_success():
    d = run({"buckets": 8})
    o = d["_output"]
    run_id = o.get("run_id", "")
    pub = o.get("publish", {})
    rows = o.get("rows", {})
    check("execution runs every step and SUCCEEDS",
          d["status"] == "SUCCEEDED" and rows.get("extracted", 0) > 0 and rows.get("all_accounted_for")
          and o.get("archive", {}).get("status") == "archived" and pub.get("status") == "published"
          and o["merge"]["buckets_written"] >= 2,
          f"{d['status']} in {d['_seconds']}s, run {run_id}, rows {rows}, merge {o.get('merge')}, "
          f"cause {d.get('cause', '')[:200]}")
    parts = s3_keys(f"curated/run={run_id}/")
    latest = json.loads(s3.get_object(Bucket=BUCKET, Key="curated/_latest.json")["Body"].read())
    check("curated Parquet parts and manifests are in the emulated bucket",
          sum(k.endswith(".parquet") for k in parts) == o["merge"]["buckets_written"]
          and f"curated/run={run_id}/_manifest.json" in parts and latest.get("run_id") == run_id
          and latest.get("rows") == pub.get("rows"),
          f"{len(parts)} objects under curated/run={run_id}/, _latest.json -> {latest.get('run_id')}")
    try:
        listing = s3.get_object(Bucket=BUCKET, Key="curated/_athena/symlink.txt")["Body"].read().decode().splitlines()
    except Exception as e:  # missing: the check below fails with the reason
        listing = [f"({e})"]
    check("publish wrote the query listing (what Athena reads): the s3:// URI of every live file",
          listing == [f"s3://{BUCKET}/{k}" for k in latest.get("keys", [])],
          f"{len(listing)} lines (first: {listing[:1]}), {len(latest.get('keys', []))} live files")
    learned = learned_columns(next(k for k in latest.get("keys", []) if k.endswith(".parquet")))
    check("the score function scored with the ranker file (REVIEWS_RANKER): every curated row has "
          "the learned signal and its reasons",
          learned.get("rows", 0) > 0 and learned.get("learned_nulls") == 0 and learned.get("with_reasons", 0) > 0
          and 0.0 <= learned.get("learned_min", -1) <= learned.get("learned_max", 2) <= 1.0,
          json.dumps(learned))
    status, products = api("/products?per_page=5")
    product = (products or {}).get("products", [{}])[0].get("product_id") if status == 200 else None
    status, top = api(f"/reviews/{product}/top?limit=3") if product else (None, None)
    reviews = (top or {}).get("reviews", [])
    check("the API function answers /reviews/{id}/top from the published dataset, with why each review is there",
          status == 200 and 1 <= len(reviews) <= 3 and all("relevance" in r or "score" in r for r in reviews)
          and all("buyer_id" not in r for r in reviews) and all(isinstance(r.get("reasons"), list) for r in reviews),
          f"GET /reviews/{product}/top -> {status}, {len(reviews)} reviews, reasons {[r.get('reasons') for r in reviews]}")
    status, err = api("/reviews/..%2Fetc/top")
    check("the API function answers a bad product id with a 4xx JSON error",
          status is not None and 400 <= status < 500 and isinstance(err, dict), f"{status} {json.dumps(err)[:100]}")
    return d


def learned_columns(key):
    """The learned signal and reasons of one curated file, decoded by pyarrow (the test venv)."""
    with tempfile.NamedTemporaryFile(suffix=".parquet") as f:
        f.write(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        f.flush()
        code = ("import json, sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); "
                "l = [x for x in t.column('sig_learned').to_pylist() if x is not None]; "
                "print(json.dumps({'rows': t.num_rows, 'learned_nulls': t.column('sig_learned').null_count, "
                "'learned_min': min(l, default=None), 'learned_max': max(l, default=None), "
                "'with_reasons': sum(1 for r in t.column('reasons').to_pylist() if r)}))")
        out = subprocess.run([os.environ["REVIEWS_PYTHON"], "-c", code, f.name],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def bridge_calls(function, since, until):
    """Invocations of `function` the bridge answered between two time.time() instants."""
    with urllib.request.urlopen(f"{BRIDGE}/_bridge/calls", timeout=10) as r:
        calls = json.loads(r.read())
    return [c for c in calls if c["function"] == function and since <= c["at"] <= until]


def latest_snapshot():
    return json.loads(s3.get_object(Bucket=BUCKET, Key="curated/_latest.json")["Body"].read())


def source_admin_url():
    """The admin URL with the source database in its path (its TLS query kept)."""
    parts = urllib.parse.urlsplit(os.environ["REVIEWS_PG_ADMIN_URL"])
    return urllib.parse.urlunsplit(parts._replace(path="/" + os.environ["E2E_DB"]))


def psql_source(sql):
    admin = source_admin_url()
    return subprocess.run(["psql", admin, "-qAtc", sql], check=True, capture_output=True, text=True).stdout.split()


def scenario_incremental():
    """After a full run, a run that edits two reviews of one product rewrites only that product's
    bucket: the new snapshot references the earlier run's files for every other bucket, and the
    API serves the edited text from the new run."""
    before = latest_snapshot()
    first_run = before.get("run_id")
    # A product whose every review the API can return at once (limit 50), with two or more.
    status, page = api("/products?per_page=100")
    candidates = [p for p in (page or {}).get("products", []) if 2 <= p.get("review_count", 0) <= 50]
    product = candidates[0]["product_id"] if candidates else None
    status, top = api(f"/reviews/{product}/top?limit=50") if product else (None, {})
    edited = [r["review_id"] for r in (top or {}).get("reviews", [])][:2]
    token = f"e2e-edit-{uuid.uuid4().hex[:8]}"
    if len(edited) == 2:
        ids = ",".join("'" + r.replace("'", "''") + "'" for r in edited)
        psql_source(f"UPDATE review SET text = text || ' ({token})' WHERE review_id IN ({ids}) RETURNING review_id")
    t_start = time.time()
    d = run({})
    score_calls = bridge_calls("reviews-score", t_start, time.time())
    transform_calls = bridge_calls("reviews-transform", t_start, time.time())
    events = history(d["executionArn"])
    map_entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "MapStateEntered"]
    map_runs = [e["type"] for e in events if e["type"] in ("MapRunStarted", "MapRunSucceeded", "MapRunFailed")]
    o = d["_output"]
    second_run = o.get("run_id")
    merge, pub = o.get("merge", {}), o.get("publish", {})
    latest = latest_snapshot()
    files = latest.get("bucket_files", [])
    rewritten = sorted(f["bucket"] for f in files if f.get("run_id") == second_run)
    kept = [f for f in files if f.get("run_id") != second_run]
    check("an edit of one product's reviews rewrites only some buckets; the others stay the first run's files",
          d["status"] == "SUCCEEDED" and len(edited) == 2 and pub.get("status") == "published"
          and latest.get("run_id") == second_run and latest.get("buckets") == merge.get("buckets") == before.get("buckets")
          and 1 <= merge.get("buckets_written", 0) < merge.get("buckets", 0)
          and len(rewritten) == merge.get("buckets_written") and len(files) == latest.get("buckets")
          and kept and all(f.get("run_id") == first_run and f.get("curated_key", "").startswith(f"curated/run={first_run}/")
                           for f in kept)
          and sum(k.endswith(".parquet") and "/bucket=" in k for k in s3_keys(f"curated/run={second_run}/")) == len(rewritten)
          and map_entered == ["RouteParts", "MergeBuckets"] and map_runs == ["MapRunStarted", "MapRunSucceeded"] * 2
          and len(score_calls) == merge.get("changed") == len(rewritten)
          and len(transform_calls) == 2,
          f"{d['status']} in {d['_seconds']}s, merge {merge}, rewritten buckets {rewritten} by {second_run}, "
          f"{len(kept)} kept from {sorted({f.get('run_id') for f in kept})}, edited {edited} of {product}, "
          f"distributed maps {map_entered} {map_runs}, {len(transform_calls)} transform call(s) "
          f"(one raw part + the plan), {len(score_calls)} score call(s), "
          f"cause {d.get('cause', '')[:200]}")
    changes = pub.get("changes", {})
    # The API re-reads the pointer at most every REVIEWS_RELOAD_SECS (e2e.sh sets 1 s).
    deadline, served = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        status, served = api(f"/reviews/{product}/top?limit=50")
        if status == 200 and served.get("run_id") == second_run:
            break
        time.sleep(1)
    texts = {r["review_id"]: r.get("text", "") for r in (served or {}).get("reviews", [])}
    check("the published dataset after the edit: same row count, the edits counted, the new texts served",
          latest.get("rows") == before.get("rows") == pub.get("rows") and changes.get("updated") == 2
          and changes.get("new") == 0 and served.get("run_id") == second_run
          and all(token in texts.get(r, "") for r in edited) and len(texts) == candidates[0]["review_count"],
          f"rows {before.get('rows')} -> {latest.get('rows')}, changes {changes}, API run {served.get('run_id')}, "
          f"edited texts served: {[token in texts.get(r, '') for r in edited]}")


def scenario_mongo_down():
    load_more(101)
    service("mongo", "stop")
    try:
        d = run({})
    finally:
        service("mongo", "start")
    o = d["_output"]
    a = o.get("archive", {})
    check("MongoDB stopped: execution SUCCEEDS, archive deferred with the error recorded",
          d["status"] == "SUCCEEDED" and a.get("status") == "deferred" and a.get("error") == "RetryableError"
          and o.get("publish", {}).get("status") == "published",
          f"{d['status']} in {d['_seconds']}s, archive {json.dumps(a)[:160]}")
    deferred_run = o.get("run_id")
    d2 = run({})
    a2 = d2["_output"].get("archive", {})
    check("MongoDB back: the next execution archives the backlog, then its own run",
          d2["status"] == "SUCCEEDED" and a2.get("status") == "archived"
          and a2.get("archived_runs", [])[:1] == [deferred_run]
          and a2.get("archived_runs", [])[-1] == d2["_output"].get("run_id"),
          f"{d2['status']} in {d2['_seconds']}s, archived_runs {a2.get('archived_runs')}")


def scenario_postgres_down():
    load_more(202)
    service("postgres", "stop")
    arn, name, started = start({})
    restarted = threading.Event()

    def restart_after_failures():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(failed_tasks(arn, "Extract")) < 2:
            time.sleep(0.5)
        service("postgres", "start")
        restarted.set()

    t = threading.Thread(target=restart_after_failures)
    t.start()
    d = wait(arn, name, started)
    t.join()
    if not restarted.is_set():
        service("postgres", "start")
    fails = failed_tasks(arn, "Extract")
    check("PostgreSQL stopped for the first attempts: Retry absorbs it, the execution SUCCEEDS",
          d["status"] == "SUCCEEDED" and len(fails) >= 2 and set(fails) == {"RetryableError"}
          and d["_output"].get("rows", {}).get("extracted", 0) > 0,
          f"{d['status']} in {d['_seconds']}s after extract failures {fails}")


def bucket_of(product_id, buckets):
    """The lake's product bucket (crates/lake/src/layout.rs: FNV-1a 64 of the id, mod n)."""
    h = 0xCBF29CE484222325
    for b in product_id.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % buckets


def scenario_merge_fails():
    """A bucket whose carried file is gone: its merge fails (a FatalError in one child of the
    bucket Map), the execution FAILS through the failure path and nothing is committed. With
    the file back, the next execution publishes the edit that the failed one held."""
    before = latest_snapshot()
    status, page = api("/products?per_page=20")
    product = ((page or {}).get("products") or [{}])[0].get("product_id")
    status, top = api(f"/reviews/{product}/top?limit=1") if product else (None, {})
    review = ((top or {}).get("reviews") or [{}])[0].get("review_id")
    bucket = bucket_of(product or "", before.get("buckets", 1))
    carried = next((f["cleaned_key"] for f in before.get("bucket_files", []) if f["bucket"] == bucket), None)
    token = f"e2e-lost-{uuid.uuid4().hex[:8]}"
    if not (review and carried):
        check("a bucket merge that fails fails the execution", False, f"no product/bucket file: {product} {carried}")
        return
    body = s3.get_object(Bucket=BUCKET, Key=carried)["Body"].read()
    quoted = review.replace("'", "''")
    psql_source(f"UPDATE review SET text = text || ' ({token})' WHERE review_id = '{quoted}' RETURNING review_id")
    s3.delete_object(Bucket=BUCKET, Key=carried)
    try:
        d = run({})
    finally:
        s3.put_object(Bucket=BUCKET, Key=carried, Body=body)
    after = latest_snapshot()
    cause = d.get("cause", "")
    check("a bucket merge that fails (its carried file is gone) FAILS the execution; nothing is committed",
          d["status"] == "FAILED" and cause.startswith("score failed") and after == before,
          f"{d['status']}, error {d.get('error')}, cause {cause[:160]}, "
          f"pointer {'unchanged' if after == before else 'MOVED'}")
    d2 = run({})
    o = d2["_output"]
    deadline, served = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        status, served = api(f"/reviews/{product}/top?limit=50")
        if status == 200 and served.get("run_id") == o.get("run_id"):
            break
        time.sleep(1)
    texts = {r["review_id"]: r.get("text", "") for r in (served or {}).get("reviews", [])}
    check("with the file back, the next execution publishes the edit the failed one held",
          d2["status"] == "SUCCEEDED" and o.get("publish", {}).get("status") == "published"
          and o.get("publish", {}).get("changes", {}).get("updated") == 1 and token in texts.get(review, ""),
          f"{d2['status']}, changes {o.get('publish', {}).get('changes')}, edit served: {token in texts.get(review, '')}, "
          f"cause {d2.get('cause', '')[:160]}")


def scenario_fatal():
    d = run({"run_id": "not a valid run id!"})
    fails = failed_tasks(d["executionArn"], "Extract")
    recorded = [json.loads(e["stateExitedEventDetails"]["output"]).get("failure")
                for e in history(d["executionArn"])
                if e["type"] == "PassStateExited" and e["stateExitedEventDetails"]["name"] == "ExtractFailed"]
    check("a fatal error: not retried, FAILED through the failure path with the error recorded",
          d["status"] == "FAILED" and d.get("error") == "FatalError" and fails == ["FatalError"]
          and d.get("cause", "").startswith("extract failed: ") and "run id" in d.get("cause", "")
          and recorded and recorded[0].get("step") == "extract",
          f"{d['status']}, error {d.get('error')}, cause {d.get('cause', '')[:120]}")


def scenario_conditional_put():
    """The commit point relies on S3 conditional writes: check that this S3 honours them."""
    key = "e2e/conditional.json"
    first = s3.put_object(Bucket=BUCKET, Key=key, Body=b"1", IfNoneMatch="*")
    codes = []
    for kwargs in ({"IfNoneMatch": "*"}, {"IfMatch": '"not-the-current-etag"'}):
        try:
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"2", **kwargs)
            codes.append(200)
        except s3.exceptions.ClientError as e:
            codes.append(e.response["ResponseMetadata"]["HTTPStatusCode"])
    ok = s3.put_object(Bucket=BUCKET, Key=key, Body=b"3", IfMatch=first["ETag"])
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.delete_object(Bucket=BUCKET, Key=key)
    check("LocalStack S3 honours If-None-Match: * and If-Match (the commit point's compare-and-swap)",
          codes == [412, 412] and body == b"3" and ok.get("ETag"),
          f"refused with {codes}, matching write {'ok' if ok.get('ETag') else 'failed'}")


def scenario_overlap():
    """Two executions at once (a schedule and a manual re-run): one runs the stages, the other
    ends at AnotherRunHoldsLease having written nothing; the pointer moves once."""
    load_more(303)
    before = json.loads(s3.get_object(Bucket=BUCKET, Key="curated/_latest.json")["Body"].read())
    first = start({})
    second = start({})
    d1, d2 = wait(*first), wait(*second)
    outcomes = []
    for d in (d1, d2):
        lease_held = any(e["type"] == "SucceedStateEntered"
                         and e["stateEnteredEventDetails"]["name"] == "AnotherRunHoldsLease"
                         for e in history(d["executionArn"]))
        outcomes.append("lease_held" if lease_held else d["_output"].get("publish", {}).get("status"))
    latest = json.loads(s3.get_object(Bucket=BUCKET, Key="curated/_latest.json")["Body"].read())
    loser = [d for d, o in zip((d1, d2), outcomes) if o == "lease_held"]
    loser_keys = s3_keys(f"raw/run={loser[0]['_output'].get('run_id')}/") if loser and loser[0]["_output"].get("run_id") else []
    check("two executions at once: one publishes, the other ends at AnotherRunHoldsLease and writes nothing",
          d1["status"] == "SUCCEEDED" and d2["status"] == "SUCCEEDED" and sorted(outcomes) == ["lease_held", "published"]
          and latest.get("sequence") == before.get("sequence", 0) + 1 and not loser_keys,
          f"{d1['status']}/{d2['status']}, outcomes {outcomes}, sequence {before.get('sequence')} -> {latest.get('sequence')}")


def scenario_deletion():
    """A review deleted at the source leaves the live dataset with the next run, counted."""
    before = json.loads(s3.get_object(Bucket=BUCKET, Key="curated/_latest.json")["Body"].read())
    admin = source_admin_url()
    deleted = subprocess.run(
        ["psql", admin, "-qAtc", "DELETE FROM review WHERE review_id IN (SELECT review_id FROM review WHERE rating "
         "BETWEEN 1 AND 5 AND char_length(text) > 40 ORDER BY review_id LIMIT 3) RETURNING review_id"],
        check=True, capture_output=True, text=True).stdout.split()
    d = run({})
    o = d["_output"]
    changes = o.get("rows", {}).get("changes", {})
    latest = json.loads(s3.get_object(Bucket=BUCKET, Key="curated/_latest.json")["Body"].read())
    check("rows deleted at the source leave the dataset with the next run; the counts add up",
          d["status"] == "SUCCEEDED" and len(deleted) == 3 and 1 <= changes.get("deleted", 0) <= 3
          and latest.get("rows") == before.get("rows", 0) - changes.get("deleted", 0) + changes.get("new", 0) - changes.get("removed_by_reject", 0) - changes.get("erased", 0),
          f"{d['status']}, deleted {deleted}, changes {changes}, rows {before.get('rows')} -> {latest.get('rows')}")


def erasure_scan(needles):
    """Objects (every version) and archive documents holding any of `needles`
    (localstack/erasure_scan.py, run with the test venv: it decodes Parquet)."""
    mongo_uri = subprocess.run(["bash", f"{ROOT}/scripts/services/mongo.sh", "url"], check=True,
                               capture_output=True, text=True).stdout.strip()
    out = subprocess.run([os.environ["REVIEWS_PYTHON"], f"{ROOT}/localstack/erasure_scan.py",
                          "--endpoint", ENDPOINT, "--bucket", BUCKET, "--mongo-uri", mongo_uri,
                          # The archive function's collection (other tests' collections share the server).
                          "--mongo-collection", "raw_reviews",
                          "--skip-key", "state/erased_buyers.json", *needles],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def scenario_erasure():
    """The administrator's erasure in production: the erase function removes the buyer from every
    object version and the archive; the source still holds the buyer's rows (it is not the
    pipeline's to scrub), so a later run that re-reads them must write them redacted."""
    buyer = (psql_source("SELECT buyer_id FROM review WHERE buyer_id IS NOT NULL AND rating BETWEEN 1 AND 5 "
                         "AND char_length(text) > 40 GROUP BY buyer_id ORDER BY count(*) DESC, buyer_id LIMIT 1")
             or [None])[0]
    token = f"e2e-erase-{uuid.uuid4().hex[:8]}"
    quoted = (buyer or "").replace("'", "''")
    edited = psql_source(f"UPDATE review SET text = text || ' ({token})' WHERE buyer_id = '{quoted}' RETURNING review_id")
    d = run({})
    before = erasure_scan([buyer, token]) if buyer else {"holding": []}
    where = {h.split("/")[0].split(":")[0] for h in before["holding"]}
    check("before the erasure the scan finds the buyer's edited rows in raw/, cleaned/, curated/ and the archive",
          d["status"] == "SUCCEEDED" and edited and {"raw", "cleaned", "curated", "mongo"} <= where,
          f"buyer {buyer} ({len(edited)} reviews), {d['status']}, found in {sorted(where)} "
          f"({len(before['holding'])} objects/documents of {before.get('objects')} + {before.get('documents')})")
    lam = boto3.client("lambda", endpoint_url=BRIDGE, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    r = lam.invoke(FunctionName="reviews-erase", Payload=json.dumps({"buyer_id": buyer}).encode())
    report = json.loads(r["Payload"].read() or b"null") or {}
    after = erasure_scan([buyer, token])
    check("the erase function removes the buyer from every object version and every archive document",
          "FunctionError" not in r and report.get("complete") is True and report.get("newly_recorded") is True
          and report.get("archive_documents_deleted", 0) >= 1 and after["holding"] == []
          and after["objects"] > 0 and after["documents"] > 0,
          f"{r.get('FunctionError', 'ok')}, report {json.dumps(report)[:300]}, still holding {after['holding'][:5]} "
          f"(searched {after['objects']} object versions, {after['documents']} documents)")
    again = f"e2e-erase-again-{uuid.uuid4().hex[:8]}"
    psql_source(f"UPDATE review SET text = text || ' ({again})' WHERE buyer_id = '{quoted}' RETURNING review_id")
    d2 = run({})
    later = erasure_scan([buyer, token, again])
    extracted = d2["_output"].get("rows", {}).get("extracted", 0)
    check("a later execution re-reads the erased buyer's rows from the source and writes them redacted only",
          d2["status"] == "SUCCEEDED" and extracted >= len(edited) and later["holding"] == [],
          f"{d2['status']}, {extracted} rows extracted, still holding {later['holding'][:5]}, "
          f"cause {d2.get('cause', '')[:160]}")


def scenario_schedule():
    found, seen = rule_starts_execution(sfn, events, SM_ARN, rule="reviews-e2e-schedule")
    d = wait(found["executionArn"], found["name"], time.monotonic()) if found else {}
    check("an EventBridge rule on rate(1 minute) starts an execution by itself, which SUCCEEDS",
          found is not None and d.get("status") == "SUCCEEDED",
          f"execution {found and found['name']} seen {seen}s after PutTargets, {d.get('status')}")


def scenario_no_secret_in_logs():
    """The functions ran with known secret values (the reader's password is random per run, the
    archive writer's is the server's): neither may appear in any log line they wrote."""
    logs = os.path.join(os.environ.get("LS_CACHE", f"{ROOT}/.cache/localstack"), "logs")
    text = ""
    for name in ("cargo-lambda-watch.log", "bridge.log"):
        with open(os.path.join(logs, name), errors="replace") as f:
            text += f.read()
    secrets = [os.environ["REVIEWS_PG_READER_PASSWORD"]]
    with open(os.environ["REVIEWS_MONGO_DIR"] + "/writer.password") as f:
        secrets.append(f.read().strip())
    leaked = [i for i, s in enumerate(secrets) if s and s in text]
    stages_logged = all(m in text for m in ("extract from the change feed done", "transform done", "secret read"))
    check("no secret in the functions' logs (they ran with known secret values)",
          not leaked and stages_logged and all(len(s) >= 8 for s in secrets),
          f"{len(text)} bytes of logs searched for {len(secrets)} secrets; leaked: {leaked}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-schedule", action="store_true", help="skip the EventBridge scenario (about 1 min)")
    args = ap.parse_args()
    t0 = time.monotonic()
    scenario_success()
    scenario_incremental()
    scenario_merge_fails()
    scenario_mongo_down()
    scenario_postgres_down()
    scenario_fatal()
    scenario_conditional_put()
    scenario_overlap()
    scenario_deletion()
    scenario_erasure()
    if not args.no_schedule:
        scenario_schedule()
    scenario_no_secret_in_logs()
    passed = sum(RESULTS)
    if API_RETRIES:
        print(f"note: {len(API_RETRIES)} API call(s) retried (a bare 500 or no answer from cargo lambda watch): {API_RETRIES[:3]}")
    print(f"e2e: {time.monotonic() - t0:.0f}s; {passed} passed, {len(RESULTS) - passed} failed", flush=True)
    sys.exit(0 if passed == len(RESULTS) else 1)


if __name__ == "__main__":
    main()
