#!/usr/bin/env python3
"""Offline checks of statemachine.asl.json and infra/ (run by scripts/infra-check.sh).

No Terraform provider can be downloaded here, so no `terraform init/validate`: instead
  1. every .tf file parses (python-hcl2); `terraform fmt -check` when a terraform binary exists;
  2. the ASL is valid JSON, its placeholders are exactly the ones Terraform's templatefile() fills,
     it renders to valid JSON, every Next/Default target exists; its two Maps (raw parts, product
     buckets) are DISTRIBUTED (STANDARD child executions), the bucket Map reads its items with an
     S3 ItemReader from the lake bucket;
  3. every Lambda the ASL invokes exists in Terraform (pipeline_stages) and as functions/<stage>
     whose binary is reviews-<stage> (and functions/api for reviews-api);
  4. every Task retries the Lambda service exceptions and RetryableError with backoff and jitter
     and catches FatalError and States.ALL; Parallel and Map states catch too;
  5. every error name in Retry/Catch other than States.* / Lambda.* is RetryableError or FatalError
     and appears as a string literal in the Rust sources (crates/, functions/);
  6. the state machine role reads only the lake's state/runs/ (the ItemReader) and controls only
     its own executions; IAM matches docs/ARCHITECTURE.md section 5 and the roles table of
     infra/README.md, judged on each role's effective permissions: its inline policies (for_each
     documents evaluated per instance) plus its attached managed policies (MANAGED_POLICIES says
     what each grants; an unknown one fails):
     - no wildcard action anywhere; Resource "*" only for the actions of STAR_ALLOWED (those that
       support no resource scoping), by kind of role;
     - every kms:Decrypt grant has a kms:ViaService and a kms:EncryptionContext condition; the key
       policy denies decrypting a secret's ciphertext outside Secrets Manager;
     - one role per function: each stage's lake object access within its row of LAKE_MATRIX, and
       s3:ListBucket on the lake bucket without condition (S3 answers 404, not 403, for a missing
       key only then; no other bucket), only its own logs and environment; only extract reads
       the PostgreSQL secret, only archive and erase the MongoDB secret (SECRET_MATRIX), no other
       role any secret; the erase function reads, writes, deletes and purges (earlier versions:
       s3:DeleteObjectVersion, s3:ListBucketVersions) under every data prefix of the lake
       (modules/lake data_prefixes), no other function purges; every lambda_function module runs with its own
       role;
     - each database secret has a resource policy denying GetSecretValue to every principal but its
       functions' roles, and requests without TLS;
     - the API role reaches nothing of the lake but s3:GetObject on curated/ and s3:ListBucket of
       the lake bucket without condition (plus its own logs, traces and env decryption); the
       administrator operates executions, reads the logs of every function (no states:/logs: write
       or delete), invokes the erase function (lambda:InvokeFunction on its ARN, no other Lambda
       action or function), reads raw/ and rejects/, no cleaned/, curated/ or secret;
  6a. the extract function alone gets the PostgreSQL CA bundle layer (var.postgres_ca_bundle
     zipped by archive_file as postgres-ca/ca-bundle.pem) and REVIEWS_PG_SSLROOTCERT naming its
     mounted path /opt/postgres-ca/ca-bundle.pem; REVIEWS_SECRET_TTL_SECS (var.secret_ttl_seconds)
     goes to every function that reads a secret (extract, archive, erase), to no other;
  6b. the alarms exist (function errors and throttles, API 5xx and p99 latency, failed, timed-out
     and aborted executions, no publish for N hours), each with an action, and a dashboard;
  7. secrets have no value in Terraform (no aws_secretsmanager_secret_version, nothing secret in
     outputs);
  8. the Glue table Athena queries is an EXTERNAL_TABLE at the lake's curated/_athena/ (where
     publish and rollback write the listing, crates/stages/src/athena.rs), read with the symlink
     input format and the Parquet SerDe, its columns those of the curated schema
     (crates/domain/src/schema.rs) in order; the Athena workgroup enforces its configuration and
     encrypts its results; the analyst role reads curated/ only and writes only query results;
  9. checkov reports no failed check, and every `checkov:skip=` comment gives a reason.

--infra DIR checks another copy of infra/ (scripts/infra/check_infra_selftest.py breaks copies on
purpose and expects the checks to fail). --allow-missing-functions turns the checks that need the Rust code (functions/<stage> and the
error names in the sources) into warnings, for use before the functions exist. Exit status 1 on
any failure; the last line is 'N passed, N failed'.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
ASL = ROOT / "statemachine.asl.json"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import render_asl  # noqa: E402

LAMBDA_ERRORS = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.TooManyRequestsException"}
OUR_ERRORS = {"RetryableError", "FatalError"}
PLACEHOLDER_TO_STAGE = {k: v for k, v in render_asl.FUNCTIONS.items()}

PASSED, FAILED, WARNED = [], [], []


def ok(msg):
    PASSED.append(msg)
    print(f"ok    {msg}")


def fail(msg):
    FAILED.append(msg)
    print(f"FAIL  {msg}")


def warn(msg):
    WARNED.append(msg)
    print(f"WARN  {msg}")


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (f": {detail}" if detail else ""))
    return cond


# ------------------------------------------------------------------------------------------------
# HCL helpers (python-hcl2 wraps block attributes in lists)
# ------------------------------------------------------------------------------------------------
def one(v):
    while isinstance(v, list) and len(v) == 1:
        v = v[0]
    return v


def flat(v):
    if isinstance(v, list):
        out = []
        for x in v:
            out.extend(flat(x))
        return out
    return [v]


def rel(f):
    try:
        return f.relative_to(ROOT)
    except ValueError:
        return f.relative_to(INFRA.parent)


def parse_all_tf():
    import hcl2
    parsed = {}
    files = sorted(INFRA.rglob("*.tf"))
    errors = []
    for f in files:
        if ".terraform" in f.parts:
            continue
        try:
            with open(f, encoding="utf-8") as fh:
                parsed[f] = hcl2.load(fh)
        except Exception as e:  # lark errors have long messages
            errors.append(f"{rel(f)}: {str(e).splitlines()[0][:200]}")
    check(files and not errors, f"all {len(files)} .tf files parse (python-hcl2)", "; ".join(errors))
    return parsed


def blocks(parsed_file, kind, type_=None):
    """Yields (type, name, body) for resource/data blocks, or (name, body) for module blocks."""
    for b in parsed_file.get(kind, []):
        for t, named in b.items():
            if kind == "module":
                yield t, named
                continue
            if type_ and t != type_:
                continue
            for name, body in named.items():
                yield t, name, body


def policy_statements(body):
    out = []
    for st in body.get("statement", []):
        out.append({
            "sid": one(st.get("sid", "")),
            "effect": one(st.get("effect", "Allow")),
            "actions": flat(st.get("actions", [])),
            "resources": flat(st.get("resources", [])),
            "conditions": [{"test": one(c.get("test")), "variable": one(c.get("variable")),
                            "values": flat(c.get("values", []))} for c in st.get("condition", [])],
            "principals": [(one(p.get("type")), flat(p.get("identifiers", []))) for p in st.get("principals", [])],
        })
    return out


# ------------------------------------------------------------------------------------------------
# ASL
# ------------------------------------------------------------------------------------------------
def walk_states(states, scope="", out=None):
    """Flattens nested state machines: yields (scope, name, state, sibling_names)."""
    out = [] if out is None else out
    names = set(states)
    for name, st in states.items():
        out.append((scope, name, st, names))
        for i, br in enumerate(st.get("Branches", [])):
            walk_states(br["States"], f"{scope}{name}/branch{i}/", out)
        proc = st.get("ItemProcessor") or st.get("Iterator")
        if proc:
            walk_states(proc["States"], f"{scope}{name}/items/", out)
    return out


def check_asl(tf, allow_missing):
    text = ASL.read_text(encoding="utf-8")
    try:
        asl = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"statemachine.asl.json is valid JSON: {e}")
        return None
    ok("statemachine.asl.json is valid JSON")

    # Rendering as Terraform/LocalStack do.
    rendered = None
    try:
        values = dict(render_asl.DEFAULTS, Buckets=16, MapMaxConcurrency=4, LakeBucket="reviews-lake-check")
        for k, st in render_asl.FUNCTIONS.items():
            values[k] = f"arn:aws:lambda:us-east-1:000000000000:function:reviews-{st}"
        render_asl.validate(values)
        out = render_asl.render(text, values)
        rendered = json.loads(out)
        left = render_asl.placeholders(out)
        check(not left, "ASL renders to valid JSON with no placeholder left", str(left))
    except (SystemExit, json.JSONDecodeError) as e:
        fail(f"ASL renders: {e}")
    if rendered is not None:
        maps = {name: st for _, name, st, _ in walk_states(rendered["States"]) if st.get("Type") == "Map"}
        check(set(maps) == {"RouteParts", "MergeBuckets"}, "the Maps are RouteParts (raw parts) and MergeBuckets (product buckets)",
              str(sorted(maps)))
        for name, m in sorted(maps.items()):
            check(m.get("ItemProcessor", {}).get("ProcessorConfig") == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                  f"Map {name} is DISTRIBUTED with STANDARD child executions", json.dumps(m.get("ItemProcessor", {}).get("ProcessorConfig")))
            check("ResultPath" in m and "ResultSelector" in m and "$" not in m["ResultSelector"].values(),
                  f"Map {name} keeps a summary of its results (ResultSelector), not the per-item results")
        merge = maps.get("MergeBuckets", {})
        reader = merge.get("ItemReader", {})
        check(reader.get("Resource") == "arn:aws:states:::s3:getObject"
              and reader.get("ReaderConfig", {}).get("InputType") == "JSON"
              and reader.get("Parameters", {}).get("Bucket") == "reviews-lake-check"
              and "Key.$" in reader.get("Parameters", {}) and "ItemsPath" not in merge,
              "MergeBuckets reads its items with an S3 getObject ItemReader (JSON) from ${LakeBucket}", json.dumps(reader))
        # The raw part keys come in extract's output (one short key per part, bounded by the
        # extract's part size), so RouteParts may read them from the state.
        check(maps.get("RouteParts", {}).get("ItemsPath") == "$.raw_keys",
              "RouteParts iterates extract's raw part keys ($.raw_keys)")

    # Placeholders vs Terraform templatefile() variables.
    asl_ph = set(render_asl.placeholders(text))
    sm_main = INFRA / "modules" / "state_machine" / "main.tf"
    tf_text = sm_main.read_text(encoding="utf-8") if sm_main.exists() else ""
    m = re.search(r"templatefile\(var\.asl_path,\s*\{(.*?)\}\)", tf_text, re.S)
    tf_ph = set(re.findall(r"^\s*([A-Za-z0-9_]+)\s*=", m.group(1), re.M)) if m else set()
    check(asl_ph == tf_ph, "ASL placeholders == templatefile() variables in infra/modules/state_machine",
          f"ASL only: {sorted(asl_ph - tf_ph)}, Terraform only: {sorted(tf_ph - asl_ph)}")

    all_states = walk_states(asl["States"])
    # Transitions.
    bad = []
    for scope, name, st, siblings in all_states:
        targets = [st.get("Next"), st.get("Default")] + [c.get("Next") for c in st.get("Choices", [])] \
            + [c.get("Next") for c in st.get("Catch", [])]
        for t in filter(None, targets):
            if t not in siblings:
                bad.append(f"{scope}{name} -> {t}")
        if st["Type"] not in ("Choice", "Succeed", "Fail") and not st.get("Next") and not st.get("End"):
            bad.append(f"{scope}{name} has neither Next nor End")
    check(not bad, "every Next/Default/Catch target exists in its scope; every state ends or continues", "; ".join(bad))

    # Retry / Catch of every Task; Catch of Parallel and Map.
    tasks = [(scope, n, st) for scope, n, st, _ in all_states if st["Type"] == "Task"]
    problems = []
    invoked = {}
    for scope, n, st in tasks:
        where = f"{scope}{n}"
        fn = st.get("Parameters", {}).get("FunctionName", "")
        ph = re.fullmatch(r"\$\{([A-Za-z0-9_]+)\}", fn)
        if st.get("Resource") != "arn:aws:states:::lambda:invoke" or not ph:
            problems.append(f"{where}: not a lambda:invoke of a ${{...FunctionArn}} placeholder")
        else:
            invoked[where] = ph.group(1)
        retry = st.get("Retry", [])
        retried = set()
        for r in retry:
            retried |= set(r["ErrorEquals"])
            for field in ("IntervalSeconds", "BackoffRate", "MaxAttempts"):
                if field not in r:
                    problems.append(f"{where}: Retry {r['ErrorEquals']} lacks {field}")
            if r.get("JitterStrategy") != "FULL":
                problems.append(f"{where}: Retry {r['ErrorEquals']} lacks JitterStrategy FULL")
            if r.get("BackoffRate", 0) < 1:
                problems.append(f"{where}: Retry {r['ErrorEquals']} BackoffRate < 1")
        if "FatalError" in retried or "States.ALL" in retried:
            problems.append(f"{where}: retries FatalError/States.ALL")
        missing = (LAMBDA_ERRORS | {"RetryableError"}) - retried
        if missing:
            problems.append(f"{where}: does not retry {sorted(missing)}")
        caught = set()
        for c in st.get("Catch", []):
            caught |= set(c["ErrorEquals"])
        if not {"FatalError", "States.ALL"} <= caught:
            problems.append(f"{where}: does not catch FatalError and States.ALL")
    for scope, n, st, _ in all_states:
        if st["Type"] in ("Parallel", "Map"):
            caught = {e for c in st.get("Catch", []) for e in c["ErrorEquals"]}
            if "States.ALL" not in caught:
                problems.append(f"{scope}{n}: {st['Type']} does not catch States.ALL")
    check(tasks and not problems,
          f"{len(tasks)} Tasks retry Lambda.* + RetryableError (backoff, FULL jitter) and catch FatalError + States.ALL",
          "; ".join(problems))

    # Error names.
    names = set()
    for _, _, st, _ in all_states:
        for r in st.get("Retry", []) + st.get("Catch", []):
            names |= set(r["ErrorEquals"])
    ours = {e for e in names if not e.startswith("States.") and not e.startswith("Lambda.")}
    check(ours <= OUR_ERRORS, "error names in Retry/Catch (besides States.*/Lambda.*) are RetryableError/FatalError",
          f"unexpected: {sorted(ours - OUR_ERRORS)}")
    unknown_lambda = {e for e in names if e.startswith("Lambda.")} - LAMBDA_ERRORS
    check(not unknown_lambda, "Lambda.* names are Lambda service exceptions", str(sorted(unknown_lambda)))
    sources = [p for d in ("crates", "functions") for p in (ROOT / d).rglob("*.rs")] if True else []
    for e in sorted(ours):
        hits = [p for p in sources if f'"{e}"' in p.read_text(encoding="utf-8", errors="replace")]
        msg = f'error type "{e}" appears as a string literal in the Rust sources (crates/, functions/)'
        if hits:
            ok(msg + f" ({', '.join(str(h.relative_to(ROOT)) for h in hits[:3])})")
        elif allow_missing:
            warn(msg + ": not found (allowed by --allow-missing-functions)")
        else:
            fail(msg + f": not found in {len(sources)} .rs files")
    return invoked


def check_functions(tf, invoked, allow_missing):
    main = INFRA / "main.tf"
    locals_ = {}
    for f, d in tf.items():
        if f == main:
            for l in d.get("locals", []):
                locals_.update(l)
    stages = set(one(locals_.get("pipeline_stages", {})) or {})
    zip_expr = json.dumps(one(locals_.get("zip_paths", "")))
    check(stages, "infra/main.tf defines local.pipeline_stages")
    needed = {PLACEHOLDER_TO_STAGE.get(ph, f"?{ph}") for ph in invoked.values()}
    check(needed <= stages, "every Lambda the ASL invokes is a Terraform function (local.pipeline_stages)",
          f"missing in Terraform: {sorted(needed - stages)}")
    check(stages <= needed, "every Terraform stage function is invoked by the ASL", f"unused: {sorted(stages - needed)}")
    check("reviews-${s}/bootstrap.zip" in zip_expr,
          "Terraform takes each zip from <artifacts>/reviews-<stage>/bootstrap.zip (cargo lambda output)", zip_expr)
    mods = {name: body for d in tf.values() for name, body in blocks(d, "module")}
    check("api_function" in mods and "stage" in mods, "Terraform has the stage functions and the API function")
    for stage in sorted(needed | {"api"}):
        d = ROOT / "functions" / stage
        binary = f"reviews-{stage}"
        cargo = d / "Cargo.toml"
        msg = f"functions/{stage} exists and builds the binary {binary}"
        if cargo.exists():
            text = cargo.read_text(encoding="utf-8")
            has = re.search(r'^\s*name\s*=\s*"' + re.escape(binary) + '"', text, re.M) is not None
            has_main = (d / "src" / "main.rs").exists() or re.search(r"\[\[bin\]\]", text) is not None
            check(has and has_main, msg, f"{cargo.relative_to(ROOT)} has no package/bin named {binary} with a main")
        elif allow_missing:
            warn(msg + ": missing (allowed by --allow-missing-functions)")
        else:
            fail(msg + ": missing")


# ------------------------------------------------------------------------------------------------
# IAM: the effective permissions of every role, and the matrix they must stay within
# ------------------------------------------------------------------------------------------------
# AWS managed policies the checker knows, with what their current versions grant. Attaching one
# makes the role get these statements (then judged like inline ones); attaching any other AWS
# managed policy fails: the checker cannot know what it grants.
MANAGED_POLICIES = {
    "AWSXRayDaemonWriteAccess": [
        {"actions": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                     "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"], "resources": ["*"]}],
    "service-role/AWSLambdaBasicExecutionRole": [
        {"actions": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], "resources": ["*"]}],
    "service-role/AWSLambdaVPCAccessExecutionRole": [
        {"actions": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                     "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
                     "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                     "ec2:UnassignPrivateIpAddresses"], "resources": ["*"]}],
}

XRAY_WRITE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# The only actions a role may have on Resource "*" (they support no resource-level scoping), by
# kind of role. Anything else on "*", inline or from a managed policy, fails.
STAR_ALLOWED = {
    "function": XRAY_WRITE | {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"},
    "api": XRAY_WRITE,
    "admin": {"states:ListStateMachines", "logs:DescribeLogGroups", "logs:DescribeQueries",
              "logs:GetQueryResults", "logs:StopQuery", "cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
              "cloudwatch:ListDashboards"},
    "analyst": {"athena:ListWorkGroups", "athena:ListDataCatalogs"},
    "state_machine": XRAY_WRITE | {"xray:GetSamplingRules", "xray:GetSamplingTargets",
                                   "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                                   "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                                   "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"},
    "scheduler": set(),
}

# The database secrets each function may read (infra/README.md, "Roles"): every other role reads none.
SECRET_MATRIX = {"extract": {"postgres"}, "archive": {"mongodb"}, "erase": {"mongodb"}}

# Where in the lake each function may read, write and delete: the key patterns of
# local.function_grants must start with one of these. Only publish moves the commit point
# (curated/_latest.json); only extract and publish write the lease; only erase writes the erased
# list and deletes from raw/ of earlier runs' data beyond its own run's. Listing is not in the
# matrix: every function role must list the whole lake bucket (LAKE_LIST_RULE).
LAKE_MATRIX = {
    "extract": {"read": ("state/lease.json", "state/runs/", "curated/_latest.json"),
                "write": ("raw/run=", "state/lease.json", "state/runs/"),
                "delete": ("raw/run=",)},
    "archive": {"read": ("raw/run=", "state/runs/"),
                "write": ("state/archived/",),
                "delete": ()},
    "transform": {"read": ("raw/run=", "state/runs/", "state/erased_buyers.json", "cleaned/run=",
                           "curated/run=*/_manifest.json"),
                  "write": ("cleaned/run=", "rejects/run=", "state/runs/"),
                  "delete": ("cleaned/run=", "curated/run=", "rejects/run=")},
    "score": {"read": ("state/runs/", "state/erased_buyers.json", "cleaned/run=", "curated/run="),
              "write": ("cleaned/run=", "curated/run=", "state/runs/"),
              "delete": ("cleaned/run=", "curated/run=")},
    "publish": {"read": ("state/", "curated/"),
                "write": ("curated/_latest.json", "curated/run=", "curated/_athena/", "state/lease.json"),
                "delete": ()},
    # The right-to-erasure function (infra/erasure.tf, local.function_grants["erase"]): every data
    # prefix (checked to be covered, each verb), also as one "<lake>/*" grant.
    # It alone also purges (s3:DeleteObjectVersion) the earlier versions of what it rewrote or
    # deleted, found with s3:ListBucketVersions on the lake bucket ("list_versions").
    "erase": dict({v: ("",) for v in ("read", "write", "delete", "purge")}, list_versions=True),
}
S3_VERB = {"s3:GetObject": "read", "s3:PutObject": "write", "s3:DeleteObject": "delete", "s3:ListBucket": "list",
           "s3:DeleteObjectVersion": "purge", "s3:ListBucketVersions": "list_versions"}
LAKE_BUCKET = "${module.lake.bucket_arn}"
# S3 answers 404 (NoSuchKey) to GetObject/HeadObject of a missing key only to a caller with
# s3:ListBucket on the bucket, evaluated without an s3:prefix (a GetObject carries none): the lake
# code takes 404 as "none yet", so every function role and the API role list the lake bucket
# with no condition, and no other bucket.
LAKE_LIST_RULE = "s3:ListBucket on the lake bucket without condition (else a missing key answers 403, not 404)"

# The administrator's Step Functions and CloudWatch Logs actions: operating executions and reading
# logs. Any other states:/logs: action (a definition update, a deletion, a log write, a retention
# change, ...) fails.
ADMIN_STATES = {"states:StartExecution", "states:StopExecution", "states:DescribeExecution", "states:ListExecutions",
                "states:GetExecutionHistory", "states:DescribeStateMachine", "states:DescribeStateMachineForExecution",
                "states:DescribeMapRun", "states:ListMapRuns", "states:RedriveExecution", "states:ListStateMachines"}
ADMIN_LOGS = {"logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams", "logs:DescribeLogGroups",
              "logs:StartQuery", "logs:StopQuery", "logs:GetQueryResults", "logs:DescribeQueries",
              "logs:GetLogGroupFields"}
# The administrator's only Lambda grant: starting an erasure (infra/erasure.tf), lambda:InvokeFunction
# of the erase function's unqualified ARN (local.function_arns["erase"]), no other function, no
# other lambda: action.
ADMIN_LAMBDA = {"lambda:InvokeFunction"}
ERASE_ARNS = {'${local.function_arns["erase"]}', "${module.erase_function.arn}"}
# The administrator's log reads (GetLogEvents, FilterLogEvents, ...) must reach every function's log
# group: all of local.log_group_arns, or each one by name.
ADMIN_LOG_READS = {"logs:FilterLogEvents", "logs:GetLogEvents"}
ADMIN_NEEDS = {"states:StartExecution", "states:StopExecution", "states:DescribeExecution", "states:ListExecutions",
               "states:DescribeMapRun", "states:RedriveExecution", "logs:FilterLogEvents", "logs:GetLogEvents",
               "logs:StartQuery", "logs:GetQueryResults"}


class Unevaluable(Exception):
    pass


def attr(body, name, default=None):
    """A block attribute: python-hcl2 wraps each in a one-element list."""
    v = body.get(name, default)
    return v[0] if isinstance(v, list) and len(v) == 1 and name not in ("statement", "condition", "dynamic") else v


def module_dirs(tf):
    """{module directory: [parsed files]}: infra/ itself and each infra/modules/<name>."""
    out = {}
    for f, d in tf.items():
        out.setdefault(f.parent, []).append((f, d))
    return out


def module_locals(files):
    out = {}
    for _, d in files:
        for block in d.get("locals", []):
            for k, v in block.items():
                if not k.startswith("__"):
                    out[k] = v[0] if isinstance(v, list) and len(v) == 1 else v
    return out


REF = re.compile(r'^(each|statement|local)((?:\.\w+|\[(?:each\.key|statement\.key|statement\.value|"[^"]*")\])*)$')


def lookup(path, env, locals_):
    """Resolves each.key, each.value.x, statement.value, local.x["k"], local.x[each.key], ..."""
    m = REF.match(path)
    if not m:
        raise Unevaluable(path)
    head, rest = m.group(1), m.group(2)
    if head == "local":
        first = re.match(r"\.(\w+)", rest)
        if not first or first.group(1) not in locals_:
            raise Unevaluable(path)
        cur, rest = locals_[first.group(1)], rest[first.end():]
    else:
        first = re.match(r"\.(key|value)", rest)
        if not first or f"{head}.{first.group(1)}" not in env:
            raise Unevaluable(path)
        cur, rest = env[f"{head}.{first.group(1)}"], rest[first.end():]
    for part in re.findall(r'\.\w+|\[[^\]]+\]', rest):
        key = part[1:] if part.startswith(".") else part[1:-1]
        if key in ("each.key", "statement.key", "statement.value"):
            key = env.get(key)
        elif key.startswith('"'):
            key = key.strip('"')
        if isinstance(cur, dict) and key in cur:
            cur = cur[key]
        else:
            raise Unevaluable(path)
    return cur


def substitute(text, env):
    """each.key / statement.key / statement.value inside ${...} replaced by their (string) values."""
    for name in ("each.key", "statement.key", "statement.value"):
        v = env.get(name)
        if isinstance(v, str):
            text = re.sub(r"(?<![\w.])" + re.escape(name) + r"(?![\w])", json.dumps(v), text)
    return text


FOR_LIST = re.compile(r'^\$\{\[for (\w+) in ([^:]+?) : "(.*)"\]\}$', re.S)
FOR_ROLES = re.compile(r'^\$\{\[for (\w+)\s*,\s*(\w+) in local\.(\w+) : (.+?) if contains\(\2\.(\w+),\s*([\w.]+)\)\]\}$', re.S)


def ev(expr, env, locals_):
    """The value of an HCL expression as python-hcl2 renders it: data where it can be computed
    from locals and for_each values, else the expression text with each.key/statement.* filled in."""
    if isinstance(expr, list):
        out = []
        for x in expr:
            v = ev(x, env, locals_)
            out.extend(v if isinstance(v, list) else [v])
        return out
    if isinstance(expr, dict):
        return {k: ev(v, env, locals_) for k, v in expr.items() if not k.startswith("__")}
    if not isinstance(expr, str) or "${" not in expr:
        return expr
    m = re.fullmatch(r"\$\{([\w.\[\]\"-]+)\}", expr)
    if m:
        try:
            return lookup(m.group(1), env, locals_)
        except Unevaluable:
            return substitute(expr, env)
    m = FOR_LIST.match(expr)
    if m:
        var, src, template = m.group(1), m.group(2).strip(), m.group(3).replace('\\"', '"')
        items = ev("${" + src + "}", env, locals_)
        if not isinstance(items, list):
            raise Unevaluable(expr)
        return [substitute(template.replace("${" + var + "}", str(i)), env) for i in items]
    m = FOR_ROLES.match(expr)
    if m:
        kvar, vvar, loc, template, field, needle = m.groups()
        table = locals_.get(loc)
        want = ev("${" + needle + "}", env, locals_)
        if not isinstance(table, dict):
            raise Unevaluable(expr)
        return ["${" + template.replace(f"[{kvar}]", f'["{k}"]') + "}" for k, v in table.items()
                if isinstance(v, dict) and want in (v.get(field) or [])]
    return substitute(expr, env)


def for_each_keys(body, env, locals_):
    """[(key, value)] of a block's for_each, or [(None, None)] when it has none."""
    if "for_each" not in body:
        return [(None, None)]
    v = ev(attr(body, "for_each"), env, locals_)
    if isinstance(v, dict):
        return list(v.items())
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return [(x, x) for x in v]
    raise Unevaluable(f"for_each {attr(body, 'for_each')}")


def eval_statements(doc, env, locals_):
    """The statements of one aws_iam_policy_document instance, static and dynamic."""
    def one_statement(st, env):
        if "dynamic" in st:
            raise Unevaluable("dynamic blocks inside a statement")
        return {
            "sid": re.sub(r'\$\{"(\w*)"\}', r"\1", re.sub(r'\$\{replace\("([^"]*)", "([^"]*)", "([^"]*)"\)\}', lambda m: m.group(1).replace(m.group(2), m.group(3)),
                          re.sub(r'\$\{title\("(\w+)"\)\}', lambda m: m.group(1).title(), str(ev(attr(st, "sid", ""), env, locals_))))),
            "effect": ev(attr(st, "effect", "Allow"), env, locals_),
            "actions": [str(a) for a in ev(st.get("actions", []), env, locals_)],
            "not_actions": [str(a) for a in ev(st.get("not_actions", []), env, locals_)],
            "resources": [str(r) for r in ev(st.get("resources", []), env, locals_)],
            "principals": [(ev(attr(p, "type"), env, locals_), [str(i) for i in ev(p.get("identifiers", []), env, locals_)])
                           for p in st.get("principals", [])],
            "conditions": [{"test": ev(attr(c, "test"), env, locals_), "variable": ev(attr(c, "variable"), env, locals_),
                            "values": [str(v) for v in ev(c.get("values", []), env, locals_)]}
                           for c in st.get("condition", [])],
        }
    out = [one_statement(st, env) for st in doc.get("statement", [])]
    for dyn in doc.get("dynamic", []):
        for kind, d in dyn.items():
            if kind != "statement":
                raise Unevaluable(f"dynamic {kind}")
            if "iterator" in d:
                raise Unevaluable("dynamic statement with an iterator")
            for k, v in for_each_keys(d, env, locals_):
                content = d.get("content", [{}])
                content = content[0] if isinstance(content, list) else content
                out.append(one_statement(content, dict(env, **{"statement.key": k, "statement.value": v})))
    if any(s["not_actions"] for s in out):
        raise Unevaluable("not_actions")
    return out


ROLE_REF = re.compile(r'^\$\{aws_iam_role\.(\w+)(?:\[(each\.key|"[^"]+")\])?\.(?:id|name|arn|unique_id)\}$')
DOC_REF = re.compile(r'^\$\{data\.aws_iam_policy_document\.(\w+)(?:\[(each\.key|"[^"]+")\])?\.json\}$')


def role_kind(moddir, name):
    if moddir == INFRA:
        if name == "function":  # every function role comes from local.function_grants (erase's too)
            return "function"
        return {"api": "api", "admin": "admin", "analyst": "analyst"}.get(name, "other")
    if moddir == INFRA / "modules" / "state_machine":
        return {"state_machine": "state_machine", "scheduler": "scheduler"}.get(name, "other")
    return "other"


def role_label(moddir, name, key):
    where = "" if moddir == INFRA else f"module {moddir.name}: "
    return f'{where}aws_iam_role.{name}' + (f'["{key}"]' if key is not None else "")


def iam_model(tf):
    """Every role with its statements (inline policies, inline_policy blocks, attached managed and
    customer policies), and the problems met while building them."""
    roles, problems = {}, []
    for moddir, files in module_dirs(tf).items():
        locals_ = module_locals(files)
        docs = {n: b for _, d in files for _, n, b in blocks(d, "data", "aws_iam_policy_document")}
        policies = {n: b for _, d in files for _, n, b in blocks(d, "resource", "aws_iam_policy")}

        def doc_statements(ref, env, what):
            m = DOC_REF.match(str(ref))
            if not m or m.group(1) not in docs:
                problems.append(f"{what}: policy {ref} is not an aws_iam_policy_document of this module")
                return []
            doc = docs[m.group(1)]
            idx = m.group(2)
            key = env.get("each.key") if idx == "each.key" else (idx.strip('"') if idx else None)
            try:
                inst = dict(for_each_keys(doc, {}, locals_))
                if key is None and "for_each" in doc:
                    raise Unevaluable("an instance of a for_each document without its key")
                dv = inst.get(key) if key is not None else None
                if key is not None and key not in inst:
                    raise Unevaluable(f"no instance {key}")
                return eval_statements(doc, {"each.key": key, "each.value": dv}, locals_)
            except Unevaluable as e:
                problems.append(f"{what}: cannot evaluate {ref} ({e})")
                return []

        for _, d in files:
            for _, name, body in blocks(d, "resource", "aws_iam_role"):
                try:
                    instances = for_each_keys(body, {}, locals_)
                except Unevaluable as e:
                    problems.append(f"aws_iam_role.{name}: cannot evaluate ({e})")
                    continue
                for key, val in instances:
                    label = role_label(moddir, name, key)
                    kind = role_kind(moddir, name)
                    fkey = key if name == "function" else None
                    roles[(moddir, name, key)] = {"label": label, "kind": kind, "fkey": fkey, "statements": [],
                                                  "managed": []}
                    env = {"each.key": key, "each.value": val}
                    for ip in body.get("inline_policy", []):
                        for s in doc_statements(attr(ip, "policy"), env, f"{label} inline_policy"):
                            roles[(moddir, name, key)]["statements"].append(dict(s, source="inline_policy"))
                    for arn in flat(attr(body, "managed_policy_arns", [])):
                        roles[(moddir, name, key)]["managed"].append(str(arn))

        def target(body, what):
            m = ROLE_REF.match(str(attr(body, "role")))
            if not m:
                problems.append(f"{what}: role {attr(body, 'role')} is not a reference to an aws_iam_role")
                return []
            name, idx = m.group(1), m.group(2)
            try:
                out = []
                for key, val in for_each_keys(body, {}, locals_):
                    rkey = key if idx == "each.key" else (idx.strip('"') if idx else None)
                    if (moddir, name, rkey) not in roles:
                        raise Unevaluable(f"no role instance {role_label(moddir, name, rkey)}")
                    out.append(((moddir, name, rkey), {"each.key": key, "each.value": val}))
                return out
            except Unevaluable as e:
                problems.append(f"{what}: cannot evaluate ({e})")
                return []

        for _, d in files:
            for _, name, body in blocks(d, "resource", "aws_iam_role_policy"):
                for rid, env in target(body, f"aws_iam_role_policy.{name}"):
                    for s in doc_statements(attr(body, "policy"), env, f"aws_iam_role_policy.{name}"):
                        roles[rid]["statements"].append(dict(s, source=f"aws_iam_role_policy.{name}"))
            for _, name, body in blocks(d, "resource", "aws_iam_role_policy_attachment"):
                for rid, env in target(body, f"aws_iam_role_policy_attachment.{name}"):
                    arn = str(ev(attr(body, "policy_arn"), env, locals_))
                    cm = re.fullmatch(r"\$\{aws_iam_policy\.(\w+)\.arn\}", arn)
                    if cm and cm.group(1) in policies:
                        for s in doc_statements(attr(policies[cm.group(1)], "policy"), {}, f"aws_iam_policy.{cm.group(1)}"):
                            roles[rid]["statements"].append(dict(s, source=f"aws_iam_policy.{cm.group(1)}"))
                    else:
                        roles[rid]["managed"].append(arn)
    for role in roles.values():
        for arn in role["managed"]:
            m = re.search(r":iam::aws:policy/(.+)$", arn)
            if not m or m.group(1) not in MANAGED_POLICIES:
                problems.append(f"{role['label']}: managed policy {arn} is not one the checker knows (MANAGED_POLICIES)")
                continue
            for s in MANAGED_POLICIES[m.group(1)]:
                role["statements"].append({"sid": m.group(1), "effect": "Allow", "actions": s["actions"],
                                           "resources": s["resources"], "principals": [], "conditions": [],
                                           "source": f"managed {m.group(1)}"})
    return roles, problems


def secret_names(resources):
    out = set()
    for r in resources:
        m = re.search(r'aws_secretsmanager_secret\.(\w+)\.|database_secret_arns\["(\w+)"\]', r)
        out.add((m.group(1) or m.group(2)) if m else ("*" if "*" in r else f"?{r}"))
    return out


def within(pattern, envelope):
    return any(pattern.startswith(e) or pattern == e for e in envelope)


def lists_lake(s):
    """The statement grants s3:ListBucket on the lake bucket, with no condition."""
    return "s3:ListBucket" in s["actions"] and s["resources"] == [LAKE_BUCKET] and not s["conditions"]


def list_problems(s):
    """What is wrong with an s3:ListBucket statement: another bucket, or a condition."""
    out = []
    if s["resources"] != [LAKE_BUCKET]:
        out.append(f"{s['sid']}: s3:ListBucket on {s['resources']}: only the lake bucket {LAKE_BUCKET}")
    if s["conditions"]:
        out.append(f"{s['sid']}: s3:ListBucket with conditions "
                   f"{[(c['test'], c['variable'], c['values']) for c in s['conditions']]}: a GetObject of a missing key "
                   "would most likely answer 403, not 404")
    return out


def check_iam_roles(tf):
    roles, problems = iam_model(tf)
    check(not problems, f"IAM: the effective permissions of {len(roles)} roles are known (inline policies, attached "
          "managed policies of the checker's table)", "; ".join(problems))
    by_kind = {}
    for r in roles.values():
        by_kind.setdefault(r["kind"], []).append(r)
    allows = lambda r: [s for s in r["statements"] if s["effect"] == "Allow"]  # noqa: E731

    # Wildcard actions and Resource "*", for every role.
    bad = []
    for r in roles.values():
        for s in allows(r):
            for a in s["actions"]:
                if "*" in a:
                    bad.append(f"{r['label']} ({s['source']} {s['sid']}): wildcard action {a}")
            if "*" in s["resources"]:
                extra = sorted(set(s["actions"]) - STAR_ALLOWED.get(r["kind"], set()))
                if extra:
                    bad.append(f"{r['label']} ({s['source']} {s['sid']}): Resource \"*\" for {extra}")
    check(not bad, "IAM: no wildcard action in any role; Resource \"*\" only for the actions of the matrix "
          "(X-Ray writes, EC2 Describe, list/query actions) that support no resource scoping", "; ".join(bad))

    # kms:Decrypt carries conditions (ViaService and encryption context), in every role.
    bad = []
    for r in roles.values():
        for s in allows(r):
            if any(a == "kms:Decrypt" or a in ("*", "kms:*") or a.startswith("kms:Decrypt") for a in s["actions"]):
                variables = {c["variable"] for c in s["conditions"]}
                if "kms:ViaService" not in variables or not any(v.startswith("kms:EncryptionContext:") for v in variables):
                    bad.append(f"{r['label']} ({s['sid']}): kms:Decrypt without kms:ViaService and "
                               f"kms:EncryptionContext conditions: {sorted(variables)}")
    check(not bad, "IAM: every kms:Decrypt grant has a kms:ViaService and a kms:EncryptionContext condition", "; ".join(bad))

    # Secrets: only the functions of SECRET_MATRIX, only GetSecretValue, only their own.
    bad, readers = [], {}
    for r in roles.values():
        allowed = SECRET_MATRIX.get(r["fkey"], set()) if r["kind"] == "function" else set()
        got = set()
        for s in allows(r):
            if not any(a.startswith("secretsmanager:") for a in s["actions"]):
                continue
            names = secret_names(s["resources"])
            got |= names
            for a in s["actions"]:
                if a != "secretsmanager:GetSecretValue":
                    bad.append(f"{r['label']} ({s['sid']}): {a}")
            if names - allowed:
                bad.append(f"{r['label']} ({s['sid']}): secret(s) {sorted(names - allowed)} beyond {sorted(allowed) or 'none'}")
        if r["kind"] == "function" and r["fkey"] in SECRET_MATRIX and not SECRET_MATRIX[r["fkey"]] <= got:
            bad.append(f"{r['label']}: lacks its secret(s) {sorted(SECRET_MATRIX[r['fkey']] - got)}")
        for n in got & allowed:
            readers.setdefault(n, set()).add(r["label"])
    check(not bad, "IAM: only extract reads the PostgreSQL secret, only archive (and erase) the MongoDB secret; "
          "no other role reads a secret", "; ".join(bad))

    lake_locals = module_locals(module_dirs(tf).get(INFRA / "modules" / "lake", []))
    lake_prefixes = [str(x) for x in flat(lake_locals.get("data_prefixes", []))]
    # Each function role: the lake within its row of LAKE_MATRIX, and nothing but its own logs,
    # its own environment, X-Ray, the VPC network interfaces and its secret.
    for r in sorted(by_kind.get("function", []), key=lambda r: r["label"]):
        k, bad = r["fkey"], []
        matrix = LAKE_MATRIX.get(k)
        if matrix is None:
            fail(f"IAM {r['label']}: function {k!r} has no row in the checker's LAKE_MATRIX")
            continue
        for s in allows(r):
            for a in s["actions"]:
                svc = a.split(":", 1)[0]
                if svc == "s3":
                    verb = S3_VERB.get(a)
                    if verb is None:
                        bad.append(f"{s['sid']}: {a}")
                    elif verb == "list":
                        bad += list_problems(s)
                    elif verb == "list_versions":
                        if not matrix.get("list_versions"):
                            bad.append(f"{s['sid']}: {a}: only erase lists the lake's object versions")
                        if s["resources"] != [LAKE_BUCKET]:
                            bad.append(f"{s['sid']}: {a} on {s['resources']}: only the lake bucket {LAKE_BUCKET}")
                    else:
                        for res in s["resources"]:
                            key = res[len(LAKE_BUCKET) + 1:] if res.startswith(LAKE_BUCKET + "/") else None
                            if key is None:
                                bad.append(f"{s['sid']}: {a} on {res}, not a lake object")
                            elif not within(key, matrix.get(verb, ())):
                                bad.append(f"{s['sid']}: {verb} {key!r} beyond {matrix.get(verb) or 'nothing'}")
                elif a in ("logs:CreateLogStream", "logs:PutLogEvents"):
                    own = f'${{local.log_group_arns["{k}"]}}:*'
                    if s["resources"] != [own]:
                        bad.append(f"{s['sid']}: {a} beyond its own log group: {s['resources']}")
                elif a == "kms:Decrypt":
                    if s["resources"] != ["${module.kms.key_arn}"]:
                        bad.append(f"{s['sid']}: kms:Decrypt beyond the stack key")
                    ctx = {v for c in s["conditions"] if c["variable"] == "kms:EncryptionContext:aws:lambda:FunctionArn"
                           for v in c["values"]}
                    if ctx and not all(f'local.function_arns["{k}"]' in v for v in ctx):
                        bad.append(f"{s['sid']}: decrypts the environment of another function: {sorted(ctx)}")
                elif a.startswith("secretsmanager:") or a in STAR_ALLOWED["function"]:
                    pass  # judged above
                elif a in ("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
                           "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"):
                    if any(":ec2:" not in res for res in s["resources"]):
                        bad.append(f"{s['sid']}: {a} on {s['resources']}")
                else:
                    bad.append(f"{s['sid']}: action not in a function's matrix: {a}")
        if not any(lists_lake(s) for s in allows(r)):
            bad.append(f"lacks {LAKE_LIST_RULE}")
        if k == "erase":  # the scrub reaches every object: each data prefix of the lake, each verb
            for verb in ("read", "write", "delete", "purge"):
                keys = {res[len(LAKE_BUCKET) + 1:] for s in allows(r) for a in s["actions"] if S3_VERB.get(a) == verb
                        for res in s["resources"] if res.startswith(LAKE_BUCKET + "/")}
                short = [p for p in lake_prefixes if f"{p}*" not in keys and "*" not in keys]
                if short:
                    bad.append(f"{verb} misses the lake's data prefixes {short} (modules/lake data_prefixes)")
            if not any("s3:ListBucketVersions" in s["actions"] for s in allows(r)):
                bad.append("lacks s3:ListBucketVersions on the lake bucket (the versions to purge)")
        verbs = sorted({S3_VERB[a] for s in allows(r) for a in s["actions"] if a in S3_VERB} - {"list", "list_versions"})
        check(not bad, f"IAM {r['label']}: lists the lake bucket (no condition), lake {'/'.join(verbs)} within its "
              "matrix row, own logs and environment, "
              f"X-Ray, VPC interfaces, secrets {sorted(SECRET_MATRIX.get(k, set())) or 'none'}", "; ".join(bad))
    return roles, readers


def check_function_wiring(tf, roles):
    """Every lambda_function module runs with a role of its own: the stages with
    aws_iam_role.function[each.key], any other with aws_iam_role.function["<name>"] or
    aws_iam_role.<name> (the API: aws_iam_role.api)."""
    files = module_dirs(tf).get(INFRA, [])
    locals_ = module_locals(files)
    bad, used = [], {}
    for _, d in files:
        for name, body in blocks(d, "module"):
            if str(attr(body, "source")).rstrip("/") != "./modules/lambda_function":
                continue
            try:
                instances = for_each_keys(body, {}, locals_)
            except Unevaluable as e:
                bad.append(f"module {name}: cannot evaluate for_each ({e})")
                continue
            for key, val in instances:
                env = {"each.key": key, "each.value": val}
                fn = substitute(str(attr(body, "name")), env)
                m = re.fullmatch(r'\$\{local\.function_names\["([\w-]+)"\]\}', fn)
                if not m:
                    bad.append(f"module {name}: name {fn} is not local.function_names[<function>]")
                    continue
                f = m.group(1)
                role = substitute(str(attr(body, "role_arn")), env)
                if role not in (f'${{aws_iam_role.function["{f}"].arn}}', f"${{aws_iam_role.{f}.arn}}"):
                    bad.append(f"module {name}[{key}] (function {f}): role_arn {role} is not its own role "
                               f'(aws_iam_role.function["{f}"] or aws_iam_role.{f})')
                    continue
                rid = (INFRA, "function", f) if "function[" in role else (INFRA, f, None)
                if rid not in roles:
                    bad.append(f"module {name}[{key}]: its role {role} does not exist")
                if rid in used:
                    bad.append(f"function {f}: role shared with {used[rid]}")
                used[rid] = f
    orphans = [r["label"] for rid, r in roles.items() if rid[0] == INFRA and rid[1] == "function" and rid not in used]
    if orphans:
        bad.append(f"function roles without a function: {orphans}")
    check(used and not bad, f"every Lambda runs with a role of its own ({len(used)} functions: "
          f"{', '.join(sorted(used.values()))})", "; ".join(bad))


CA_FILE = "postgres-ca/ca-bundle.pem"  # the CA bundle's path in its layer zip (under /opt when mounted)
ENV_ITEM = re.compile(r"'([A-Z][A-Z0-9_]*)': '((?:[^'\\]|\\.)*)'")


def function_instances(tf):
    """[(function name, module name, body, env)] for every lambda_function module instance of
    infra/, and the problems met while evaluating them."""
    files = module_dirs(tf).get(INFRA, [])
    locals_ = module_locals(files)
    out, bad = [], []
    for _, d in files:
        for name, body in blocks(d, "module"):
            if str(attr(body, "source")).rstrip("/") != "./modules/lambda_function":
                continue
            try:
                instances = for_each_keys(body, {}, locals_)
            except Unevaluable as e:
                bad.append(f"module {name}: cannot evaluate for_each ({e})")
                continue
            for key, val in instances:
                env = {"each.key": key, "each.value": val}
                m = re.fullmatch(r'\$\{local\.function_names\["([\w-]+)"\]\}', substitute(str(attr(body, "name")), env))
                if not m:
                    bad.append(f"module {name}: name {attr(body, 'name')} is not local.function_names[<function>]")
                    continue
                out.append((m.group(1), name, body, env))
    return out, bad, locals_


def function_environment(body, env, locals_):
    """{variable: value expression} of a lambda_function module instance's environment: the
    literal keys of its merge(local.common_env, {...}) (local.stage_env[each.key] followed)."""
    expr = ev(attr(body, "environment", ""), env, locals_)
    if isinstance(expr, list):
        expr = one(expr)
    if not isinstance(expr, str):
        raise Unevaluable(f"environment {attr(body, 'environment')}")
    out = {}
    for name in re.findall(r"local\.(\w+)", expr):  # merged locals (local.common_env), one level
        if isinstance(locals_.get(name), str):
            out.update(ENV_ITEM.findall(one(locals_[name])))
    out.update(ENV_ITEM.findall(expr))
    return out


def check_function_layers_env(tf):
    """The PostgreSQL CA bundle: var.postgres_ca_bundle zipped (archive_file) as
    postgres-ca/ca-bundle.pem into a layer of the extract function alone, whose REVIEWS_PG_SSLROOTCERT names its mounted
    path; and REVIEWS_SECRET_TTL_SECS (var.secret_ttl_seconds) for extract and archive only."""
    files = module_dirs(tf).get(INFRA, [])
    archives = {n: b for _, d in files for _, n, b in blocks(d, "data", "archive_file")}
    ca_archives = {n for n, b in archives.items()
                   if any(str(one(s.get("filename"))) == CA_FILE for s in b.get("source", []))}
    ca_ok = [n for n in ca_archives
             if any(str(one(s.get("content"))) == "${file(var.postgres_ca_bundle)}"
                    for s in archives[n].get("source", []) if str(one(s.get("filename"))) == CA_FILE)
             and one(archives[n].get("type")) == "zip"]
    check(len(ca_archives) == 1 and ca_ok,
          f"data.archive_file packs var.postgres_ca_bundle (file()) as {CA_FILE}, in one zip",
          f"archives with {CA_FILE}: {sorted(ca_archives)}, of var.postgres_ca_bundle: {sorted(ca_ok)}")
    layers = {n: b for _, d in files for _, n, b in blocks(d, "resource", "aws_lambda_layer_version")}
    ca_layers = {n for n, b in layers.items() for a in ca_archives
                 if str(one(b.get("filename"))) == f"${{data.archive_file.{a}.output_path}}"}
    hashed = {n for n in ca_layers for a in ca_archives
              if str(one(layers[n].get("source_code_hash"))) == f"${{data.archive_file.{a}.output_base64sha256}}"}
    check(len(ca_layers) == 1 and hashed == ca_layers,
          "one aws_lambda_layer_version of that zip (filename, source_code_hash from the archive_file)",
          f"layers {sorted(ca_layers)}, hashed {sorted(hashed)}")
    ca_refs = {f"${{aws_lambda_layer_version.{n}.arn}}" for n in ca_layers}

    instances, bad, locals_ = function_instances(tf)
    envs, layers_of = {}, {}
    for f, name, body, env in instances:
        try:
            got = ev(attr(body, "layer_arns", []), env, locals_) if "layer_arns" in body else []
            if not isinstance(got, list) or not all(isinstance(x, str) and re.fullmatch(r"\$\{[\w.\[\]\"]+\}", x)
                                                    for x in got):
                raise Unevaluable(f"layer_arns {attr(body, 'layer_arns')}")
            layers_of[f] = got
            envs[f] = function_environment(body, env, locals_)
        except Unevaluable as e:
            bad.append(f"module {name} (function {f}): cannot evaluate ({e})")
    for f, got in sorted(layers_of.items()):
        has = [x for x in got if x in ca_refs]
        if f == "extract" and len(has) != 1:
            bad.append(f"extract: layers {got} do not include the CA layer {sorted(ca_refs)} once")
        if f != "extract" and has:
            bad.append(f"{f}: gets the PostgreSQL CA layer (only extract connects to PostgreSQL)")
    want = f"/opt/{CA_FILE}"
    for f, e in sorted(envs.items()):
        v = e.get("REVIEWS_PG_SSLROOTCERT")
        if f == "extract" and v != want:
            bad.append(f"extract: REVIEWS_PG_SSLROOTCERT is {v!r}, not the layer's mounted {want!r}")
        if f != "extract" and v is not None:
            bad.append(f"{f}: has REVIEWS_PG_SSLROOTCERT")
    check("extract" in envs and not bad,
          f"extract alone gets the PostgreSQL CA layer and REVIEWS_PG_SSLROOTCERT={want}", "; ".join(bad))

    bad = []
    for f, e in sorted(envs.items()):
        v = e.get("REVIEWS_SECRET_TTL_SECS")
        if (f in ("extract", "archive") or SECRET_MATRIX.get(f)) and v != "${tostring(var.secret_ttl_seconds)}":
            bad.append(f"{f}: REVIEWS_SECRET_TTL_SECS is {v!r}, not tostring(var.secret_ttl_seconds)")
        if f not in ("extract", "archive") and not SECRET_MATRIX.get(f) and v is not None:
            bad.append(f"{f}: has REVIEWS_SECRET_TTL_SECS but reads no secret")
    check({"extract", "archive"} <= set(envs) and not bad,
          "REVIEWS_SECRET_TTL_SECS (var.secret_ttl_seconds) for extract, archive (and erase): every function that reads "
          "a secret, for no function without one",
          "; ".join(bad))


def check_secret_policies(tf, roles, readers):
    """Each database secret has a resource policy that denies GetSecretValue to every principal
    but the roles of the functions that read it, and denies requests without TLS."""
    files = module_dirs(tf).get(INFRA, [])
    locals_ = module_locals(files)
    docs = {n: b for _, d in files for _, n, b in blocks(d, "data", "aws_iam_policy_document")}
    secrets = [n for _, d in files for _, n, _ in blocks(d, "resource", "aws_secretsmanager_secret")]
    policies = {}
    for _, d in files:
        for name, body in [(n, b) for _, n, b in blocks(d, "resource", "aws_secretsmanager_secret_policy")]:
            try:
                for key, val in for_each_keys(body, {}, locals_):
                    env = {"each.key": key, "each.value": val}
                    arn = str(ev(attr(body, "secret_arn"), env, locals_))
                    m = re.fullmatch(r"\$\{aws_secretsmanager_secret\.(\w+)\.(?:arn|id)\}", arn)
                    pm = DOC_REF.match(str(attr(body, "policy")))
                    if not m or not pm or pm.group(1) not in docs:
                        raise Unevaluable(f"secret {arn}, policy {attr(body, 'policy')}")
                    doc = docs[pm.group(1)]
                    dkey = key if pm.group(2) == "each.key" else (pm.group(2) or "").strip('"') or None
                    inst = dict(for_each_keys(doc, {}, locals_))
                    policies[m.group(1)] = eval_statements(doc, {"each.key": dkey, "each.value": inst.get(dkey)}, locals_)
            except Unevaluable as e:
                fail(f"aws_secretsmanager_secret_policy.{name}: cannot evaluate ({e})")
    for s in sorted(secrets):
        sts = policies.get(s)
        expected = {rid for rid, r in roles.items() if r["label"] in readers.get(s, set())}
        want = {f'${{aws_iam_role.function["{rid[2]}"].arn}}' if rid[1] == "function" else f"${{aws_iam_role.{rid[1]}.arn}}"
                for rid in expected}
        if sts is None:
            fail(f"database secret {s}: has a resource policy (aws_secretsmanager_secret_policy): missing")
            continue
        denies = [st for st in sts if st["effect"] == "Deny"
                  and any(a in ("secretsmanager:GetSecretValue", "secretsmanager:*", "*") for a in st["actions"])
                  and any(t in ("AWS", "*") and "*" in ids for t, ids in st["principals"])]
        only = [st for st in denies if any(c["variable"].lower() == "aws:principalarn"
                                           and c["test"] in ("ArnNotEquals", "ArnNotLike", "StringNotEquals", "StringNotLike")
                                           and set(c["values"]) == want for c in st["conditions"])]
        tls = [st for st in denies if any(c["variable"] == "aws:SecureTransport" and c["values"] == ["false"]
                                          for c in st["conditions"])]
        check(want and only and tls,
              f"database secret {s}: its resource policy denies GetSecretValue to all but {sorted(want) or '(no reader!)'}, "
              "and requests without TLS",
              f"deny statements {[(st['sid'], st['conditions']) for st in denies]}")


def check_key_policy(tf):
    kms = INFRA / "modules" / "kms" / "main.tf"
    docs = {n: policy_statements(b) for _, n, b in blocks(tf.get(kms, {}), "data", "aws_iam_policy_document")}
    ok_ = any(st["effect"] == "Deny" and "kms:Decrypt" in st["actions"]
              and any(c["test"] == "Null" and c["variable"] == "kms:EncryptionContext:SecretARN" and c["values"] == ["false"]
                      for c in st["conditions"])
              and any(c["test"] == "StringNotEquals" and c["variable"] == "kms:ViaService"
                      and all(v.startswith("secretsmanager.") for v in c["values"]) for c in st["conditions"])
              for st in docs.get("key", []))
    check(ok_, "key policy: a secret's ciphertext is decrypted only through Secrets Manager (Deny otherwise)")


def check_iam(tf):
    docs = {name: policy_statements(body) for d in tf.values() for _, name, body in blocks(d, "data", "aws_iam_policy_document")}
    roles, readers = check_iam_roles(tf)
    check_function_wiring(tf, roles)
    check_secret_policies(tf, roles, readers)
    check_key_policy(tf)

    # The API role: curated/ read only; no managed policy.
    api = roles.get((INFRA, "api", None))
    check(api is not None and not api["managed"] and {s["source"] for s in api["statements"]} == {"aws_iam_role_policy.api"},
          "the API role has exactly one inline policy, data.aws_iam_policy_document.api, and no managed policy",
          str(api and (api["managed"], sorted({s["source"] for s in api["statements"]}))))
    bad = []
    for st in docs.get("api", []):
        acts = set(st["actions"])
        if st["effect"] != "Allow":
            continue
        s3 = {a for a in acts if a.startswith("s3:")}
        other = acts - s3
        if s3 - {"s3:GetObject", "s3:ListBucket"}:
            bad.append(f"{st['sid']}: S3 actions beyond GetObject/ListBucket: {sorted(s3)}")
        if "s3:GetObject" in s3 and not all(r.endswith("/curated/*") for r in st["resources"]):
            bad.append(f"{st['sid']}: GetObject outside curated/: {st['resources']}")
        if "s3:ListBucket" in s3:
            bad += list_problems(st)
        if s3 and other:
            bad.append(f"{st['sid']}: mixes S3 and other actions")
        for a in other:
            if a in ("logs:CreateLogStream", "logs:PutLogEvents"):
                if not all('log_group_arns[\\"api\\"]' in r or 'log_group_arns["api"]' in r for r in st["resources"]):
                    bad.append(f"{st['sid']}: logs beyond the API's own log group: {st['resources']}")
            elif a == "kms:Decrypt":
                if st["resources"] != ["${module.kms.key_arn}"]:
                    bad.append(f"{st['sid']}: kms:Decrypt beyond the stack key: {st['resources']}")
            elif a not in XRAY_WRITE:
                bad.append(f"{st['sid']}: action not allowed for the API role: {a}")
    if not any(lists_lake(st) for st in docs.get("api", []) if st["effect"] == "Allow"):
        bad.append(f"lacks {LAKE_LIST_RULE}: the API serves a missing curated/_latest.json as "
                   "\"no dataset has been published yet\"")
    check(docs.get("api") and not bad,
          "API role: s3:GetObject on curated/ only, s3:ListBucket of the lake bucket (+ own logs, env decryption, "
          "X-Ray); nothing else", "; ".join(bad))

    # Administrator: executions, logs (read), alarms; raw/ and rejects/ read; no cleaned/curated/secrets.
    bad = []
    admin = roles.get((INFRA, "admin", None))
    statements = [s for s in (admin or {}).get("statements", []) if s["effect"] == "Allow"]
    actions = {a for st in statements for a in st["actions"]}
    infra_locals = module_locals(module_dirs(tf).get(INFRA, []))
    grants = infra_locals.get("function_grants")
    functions = sorted(set(grants) if isinstance(grants, dict) else set()) + ["api"]
    for st in statements:
        for a in st["actions"]:
            svc = a.split(":", 1)[0]
            if svc in ("secretsmanager", "kms", "iam", "ec2") or svc == "*":
                bad.append(f"{st['sid']}: {a}")
            if svc == "lambda":
                if a not in ADMIN_LAMBDA:
                    bad.append(f"{st['sid']}: {a} (the administrator's only Lambda action is lambda:InvokeFunction "
                               "of the erase function)")
                elif set(st["resources"]) - ERASE_ARNS:
                    bad.append(f"{st['sid']}: {a} on {sorted(set(st['resources']) - ERASE_ARNS)}: the administrator "
                               f"invokes the erase function only ({sorted(ERASE_ARNS)})")
            if svc == "states" and a not in ADMIN_STATES:
                bad.append(f"{st['sid']}: {a} (not an operator action: writes or deletes the state machine, or unlisted)")
            if svc == "logs" and a not in ADMIN_LOGS:
                bad.append(f"{st['sid']}: {a} (not a log read: writes or deletes logs, or unlisted)")
            if svc == "s3":
                if a not in ("s3:GetObject", "s3:ListBucket"):
                    bad.append(f"{st['sid']}: write {a}")
                objects = [r for r in st["resources"] if "/" in r.replace("${module.lake.bucket_arn}", "")]
                prefixes = [v for c in st["conditions"] if c["variable"] == "s3:prefix" for v in c["values"]]
                if a == "s3:GetObject" and not all(re.search(r"/(raw|rejects)/\*$", r) for r in objects):
                    bad.append(f"{st['sid']}: GetObject beyond raw/ and rejects/: {objects}")
                if a == "s3:ListBucket" and (not prefixes or not all(p.startswith(("raw/", "rejects/")) for p in prefixes)):
                    bad.append(f"{st['sid']}: ListBucket beyond raw/ and rejects/: {prefixes}")
            if svc == "states" and a != "states:ListStateMachines":
                for r in st["resources"]:
                    if not (r == "${module.state_machine.arn}" or "local.sfn_" in r
                            or re.search(r":(execution|mapRun):\$\{local\.prefix\}-pipeline[:/]\*$", r)):
                        bad.append(f"{st['sid']}: {a} on {r}, not the pipeline's state machine, executions or map runs")
    if ADMIN_NEEDS - actions:
        bad.append(f"lacks operator actions {sorted(ADMIN_NEEDS - actions)}")
    if "erase" in functions and not any("lambda:InvokeFunction" in st["actions"] and set(st["resources"]) & ERASE_ARNS
                                        for st in statements):
        bad.append("lacks lambda:InvokeFunction of the erase function (the administrator starts erasures)")
    # Log reads reach every function's log group (the erase function's too).
    log_res = [r for st in statements if ADMIN_LOG_READS <= set(st["actions"]) for r in st["resources"]]
    every = any(re.search(r"for (\w+) in values\(local\.log_group_arns\) : \\?\"\$\{\1\}:\*\\?\"", r) for r in log_res)
    missing = [f for f in functions if not every
               and f'${{local.log_group_arns["{f}"]}}:*' not in log_res
               and not (f == "erase" and "${module.erase_function.log_group_arn}:*" in log_res)]
    if missing:
        bad.append(f"reads no log of the function(s) {missing} ({sorted(ADMIN_LOG_READS)} on every "
                   "local.log_group_arns group)")
    check(admin is not None and not bad,
          "administrator: start/stop/redrive/inspect executions and map runs, invoke the erase function (no other "
          "Lambda), read and query every function's logs, alarms; raw/ and "
          "rejects/ read; no write or delete on logs or the state machine, no cleaned/, curated/, secret or key",
          "; ".join(bad))


def check_state_machine_role(tf):
    sm = INFRA / "modules" / "state_machine" / "main.tf"
    docs = {name: policy_statements(body) for _, name, body in blocks(tf.get(sm, {}), "data", "aws_iam_policy_document")}
    bad = []
    for st in docs.get("state_machine", []):
        acts = set(st["actions"])
        s3 = {a for a in acts if a.startswith("s3:")}
        states = {a for a in acts if a.startswith("states:")}
        if s3 and (s3 != {"s3:GetObject"} or acts != s3
                   or not all(r.endswith("${var.lake_bucket_name}/state/runs/*") for r in st["resources"])):
            bad.append(f"{st['sid']}: S3 beyond s3:GetObject on the lake's state/runs/*: {sorted(acts)} {st['resources']}")
        if states and (any("*" == r for r in st["resources"])
                       or not all(r == "${local.sm_arn}" or re.fullmatch(r"\$\{local\.arn_prefix\}:execution:\$\{var\.name\}[/:]\*", r)
                               for r in st["resources"])):
            bad.append(f"{st['sid']}: Step Functions actions beyond this state machine: {st['resources']}")
    has_reader = any("s3:GetObject" in st["actions"] for st in docs.get("state_machine", []))
    has_children = any("states:StartExecution" in st["actions"] for st in docs.get("state_machine", []))
    check(docs.get("state_machine") and has_reader and has_children and not bad,
          "state machine role: s3:GetObject on the lake's state/runs/* (ItemReader), child executions of itself only",
          "; ".join(bad) or f"ItemReader read {has_reader}, StartExecution {has_children}")


SYMLINK_INPUT = "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


def curated_schema_columns():
    """The field names of the curated schema (fn curated_schema in crates/domain/src/schema.rs,
    which builds CURATED_SCHEMA), in order."""
    text = (ROOT / "crates" / "domain" / "src" / "schema.rs").read_text(encoding="utf-8")
    # The current version's fields, in order: every Field::new of the function body (those of
    # earlier versions only are cast or left out, never named only there).
    m = re.search(r"fn curated_schema\(.*?\n\}\n", text, re.S)
    return re.findall(r'Field::new\("([a-z_0-9]+)"', m.group(0)) if m else []


def check_analytics(tf):
    tables = [(f, n, b) for f, d in tf.items() for _, n, b in blocks(d, "resource", "aws_glue_catalog_table")]
    dbs = [n for d in tf.values() for _, n, _ in blocks(d, "resource", "aws_glue_catalog_database")]
    if not check(len(tables) == 1 and len(dbs) == 1, "one Glue database and one Glue table (the curated snapshot)",
                 f"{len(dbs)} databases, {len(tables)} tables"):
        return
    f, name, table = tables[0]
    sd = one(table.get("storage_descriptor", {})) or {}
    serde = one(sd.get("ser_de_info", {})) or {}
    location = one(sd.get("location"))
    athena_rs = (ROOT / "crates" / "stages" / "src" / "athena.rs").read_text(encoding="utf-8")
    m = re.search(r'pub const SYMLINK_KEY: &str = "([^"]+)"', athena_rs)
    listing_dir = m.group(1).rsplit("/", 1)[0] + "/" if m else "?"
    check(location == "s3://${module.lake.bucket_name}/" + listing_dir and listing_dir == "curated/_athena/",
          f"Glue table {name}: location is the lake's {listing_dir}, where publish writes the listing (athena.rs SYMLINK_KEY)",
          f"location {location}, listing {m.group(1) if m else 'not found in athena.rs'}")
    check(one(table.get("table_type")) == "EXTERNAL_TABLE" and one(sd.get("input_format")) == SYMLINK_INPUT
          and one(serde.get("serialization_library")) == PARQUET_SERDE,
          f"Glue table {name}: EXTERNAL_TABLE, SymlinkTextInputFormat, ParquetHiveSerDe",
          f"{one(table.get('table_type'))}, {one(sd.get('input_format'))}, {one(serde.get('serialization_library'))}")
    locals_ = {}
    for l in tf.get(f, {}).get("locals", []):
        locals_.update(l)
    declared = [c.get("name") for c in one(locals_.get("curated_columns", [])) or []]
    dyn = [one(b.get("columns", {}).get("for_each")) for b in sd.get("dynamic", [])]
    schema = curated_schema_columns()
    check(schema and declared == schema and dyn == ["${local.curated_columns}"],
          f"Glue table {name}: columns = the curated schema's {len(schema)} fields, in order",
          f"schema.rs {schema}, Terraform {declared} (columns from {dyn})")

    wgs = [b for d in tf.values() for _, _, b in blocks(d, "resource", "aws_athena_workgroup")]
    conf = one(one(wgs[0]).get("configuration", {})) if len(wgs) == 1 else {}
    res = one(conf.get("result_configuration", {})) or {}
    enc = one(res.get("encryption_configuration", {})) or {}
    check(len(wgs) == 1 and one(conf.get("enforce_workgroup_configuration")) is True
          and one(enc.get("encryption_option")) in ("SSE_KMS", "CSE_KMS")
          and str(one(res.get("output_location"))).startswith("s3://${aws_s3_bucket.athena_results.id}/"),
          "Athena workgroup: enforced configuration, KMS-encrypted results in the results bucket", json.dumps(conf)[:300])

    docs = {n: policy_statements(b) for d in tf.values() for _, n, b in blocks(d, "data", "aws_iam_policy_document")}
    bad = []
    lake_objects = "${module.lake.bucket_arn}/"
    results = "${aws_s3_bucket.athena_results.arn}"
    for st in docs.get("analyst", []):
        for a in st["actions"]:
            svc = a.split(":", 1)[0]
            if svc not in ("s3", "athena", "glue", "kms"):
                bad.append(f"{st['sid']}: {a}")
            if svc == "s3":
                for r in st["resources"]:
                    if r == "${module.lake.bucket_arn}":
                        prefixes = [v for c in st["conditions"] if c["variable"] == "s3:prefix" for v in c["values"]]
                        if a == "s3:ListBucket" and (not prefixes or not all(p.startswith("curated/") for p in prefixes)):
                            bad.append(f"{st['sid']}: ListBucket on the lake beyond curated/: {prefixes}")
                        elif a not in ("s3:ListBucket", "s3:GetBucketLocation"):
                            bad.append(f"{st['sid']}: {a} on the lake bucket")
                    elif r.startswith(lake_objects):
                        if a != "s3:GetObject" or r != lake_objects + "curated/*":
                            bad.append(f"{st['sid']}: {a} on {r}: the lake is read on curated/ only")
                    elif not r.startswith(results):
                        bad.append(f"{st['sid']}: {a} on {r}")
            if svc == "kms" and not any(c["variable"] == "kms:ViaService" for c in st["conditions"]):
                bad.append(f"{st['sid']}: {a} without a kms:ViaService condition")
            if svc == "glue" and not a.startswith(("glue:Get", "glue:BatchGet")):
                bad.append(f"{st['sid']}: {a} changes the catalog")
    check(docs.get("analyst") and not bad,
          "analyst role: lake curated/ read, the Glue table read, the workgroup, its own results; nothing else",
          "; ".join(bad))


def check_alarms(tf):
    """Each alarm the runbook relies on exists, notifies someone, and the publish metric follows
    the state machine (its filter names the state entered right after a successful Publish)."""
    alarms = [b for _, d in tf.items() for _, _, b in blocks(d, "resource", "aws_cloudwatch_metric_alarm")]

    def find(namespace, metric):
        return [b for b in alarms if one(b.get("namespace")) == namespace and one(b.get("metric_name")) == metric]

    per_function = "${local.function_names}"
    for namespace, metric, what, extra in [
        ("AWS/Lambda", "Errors", "errors of every function", lambda b: one(b.get("for_each")) == per_function),
        ("AWS/Lambda", "Throttles", "throttles of every function", lambda b: one(b.get("for_each")) == per_function),
        ("AWS/ApiGateway", "5xx", "API 5xx", lambda b: True),
        ("AWS/ApiGateway", "Latency", "API p99 latency", lambda b: one(b.get("extended_statistic")) == "p99"),
        ("AWS/States", "ExecutionsFailed", "failed executions", lambda b: True),
        ("AWS/States", "ExecutionsTimedOut", "timed-out executions", lambda b: True),
        ("AWS/States", "ExecutionsAborted", "aborted executions", lambda b: True),
        ("Reviews/Pipeline", "Published", "no publish for N hours",
         lambda b: one(b.get("comparison_operator")) == "LessThanThreshold"
         and one(b.get("treat_missing_data")) == "breaching"),
    ]:
        found = [b for b in find(namespace, metric) if extra(b) and flat(b.get("alarm_actions"))]
        check(bool(found), f"alarm on {what} ({namespace} {metric}) with an action")
    dashboards = [n for _, d in tf.items() for _, n, _ in blocks(d, "resource", "aws_cloudwatch_dashboard")]
    check(bool(dashboards), "a CloudWatch dashboard", str(dashboards))

    asl = json.loads(ASL.read_text(encoding="utf-8"))
    after_publish = {st.get("Next") for _, name, st, _ in walk_states(asl["States"]) if name == "Publish"}
    patterns = [one(b.get("pattern")) or "" for _, d in tf.items()
                for _, n, b in blocks(d, "resource", "aws_cloudwatch_log_metric_filter")
                if one(flat(b.get("metric_transformation"))[0].get("name") if b.get("metric_transformation") else None)
                == "Published"]
    named = [m.group(1) for p in patterns for m in [re.search(r'details\.name = \\"(\w+)\\"', p)] if m]
    check(len(named) == 1 and named[0] in after_publish,
          "the Published metric counts entries of the state after a successful Publish",
          f"filter names {named}, Publish continues to {sorted(x for x in after_publish if x)}")


def check_secrets(tf):
    versions = [(f, n) for f, d in tf.items() for _, n, _ in blocks(d, "resource", "aws_secretsmanager_secret_version")]
    check(not versions, "no aws_secretsmanager_secret_version: secret values never enter Terraform state",
          str([f"{rel(f)}:{n}" for f, n in versions]))
    outs = (INFRA / "outputs.tf").read_text(encoding="utf-8") if (INFRA / "outputs.tf").exists() else ""
    check(not re.search(r"secret_string|secret_binary|password", outs, re.I),
          "outputs.tf exposes no secret value (only secret names)")


def check_checkov(venv_bin, run):
    bad = []
    for f in INFRA.rglob("*.tf"):
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if "checkov:skip" in line:
                m = re.search(r"checkov:skip=(CKV2?_AWS_\d+):(.*)$", line)
                if not m or len(m.group(2).strip()) < 15:
                    bad.append(f"{rel(f)}:{i}")
    check(not bad, "every checkov:skip in infra/ names a check and gives a reason", ", ".join(bad))
    if not run:
        warn("checkov not run (--no-checkov)")
        return
    exe = Path(venv_bin) / "checkov"
    proc = subprocess.run([str(exe), "-d", str(INFRA), "--framework", "terraform", "--skip-download",
                           "--quiet", "-o", "json"], capture_output=True, text=True,
                          env=dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING="false"))
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        fail(f"checkov ran and produced JSON (exit {proc.returncode}): {proc.stderr[-500:]}")
        return
    reports = data if isinstance(data, list) else [data]
    failed, summary = [], {}
    for r in reports:
        for c in r.get("results", {}).get("failed_checks", []):
            failed.append(f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})")
        for k, v in r.get("summary", {}).items():
            if isinstance(v, int):
                summary[k] = summary.get(k, 0) + v
    check(not failed and summary.get("passed", 0) > 0,
          f"checkov: {summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
          f"{summary.get('skipped', 0)} skipped with a reason in the code", "; ".join(failed))


def check_fmt():
    tf = shutil.which("terraform") or shutil.which("tofu")
    if not tf:
        warn("terraform fmt not run (no terraform/tofu binary)")
        return
    proc = subprocess.run([tf, "fmt", "-recursive", "-check", "-list=true", str(INFRA)], capture_output=True, text=True)
    check(proc.returncode == 0, f"`{Path(tf).name} fmt -check` (offline: no provider needed)", proc.stdout.strip())


def check_generator():
    gen = ROOT / "statemachine.py"
    if not gen.exists():
        return
    out = subprocess.run([sys.executable, str(gen)], capture_output=True, text=True).stdout
    check(json.loads(out) == json.loads(ASL.read_text(encoding="utf-8")),
          "statemachine.asl.json equals statemachine.py's output (regenerate after editing either: cargo xtask contracts)")


def main():
    global INFRA
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allow-missing-functions", action="store_true")
    ap.add_argument("--no-checkov", action="store_true")
    ap.add_argument("--venv-bin", default=str(Path(sys.executable).parent))
    ap.add_argument("--infra", type=Path, default=INFRA, help="the infra/ directory to check")
    args = ap.parse_args()
    INFRA = args.infra.resolve()

    tf = parse_all_tf()
    check_fmt()
    invoked = check_asl(tf, args.allow_missing_functions)
    check_generator()
    if invoked is not None:
        check_functions(tf, invoked, args.allow_missing_functions)
    check_iam(tf)
    check_function_layers_env(tf)
    check_state_machine_role(tf)
    check_analytics(tf)
    check_alarms(tf)
    check_secrets(tf)
    check_checkov(args.venv_bin, not args.no_checkov)
    print()
    if FAILED:
        print("infra-check FAILED:")
        for m in FAILED:
            print(f"  - {m}")
    if WARNED:
        print(f"{len(WARNED)} warning(s)")
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
