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
     its own executions; IAM matches DESIGN section 3: the API role reaches nothing of the lake but s3:GetObject and
     s3:ListBucket on curated/ (plus its own logs, traces and env decryption); the pipeline worker
     only the lake prefixes and the two secrets; the administrator no cleaned/, curated/ or secret;
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

--allow-missing-functions turns the checks that need the Rust code (functions/<stage> and the
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
            errors.append(f"{f.relative_to(ROOT)}: {str(e).splitlines()[0][:200]}")
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


def check_iam(tf):
    main = INFRA / "main.tf"
    docs = {name: policy_statements(body) for d in tf.values() for _, name, body in blocks(d, "data", "aws_iam_policy_document")
            if True}
    d = tf.get(main, {})
    role_policies = [(n, b) for _, n, b in blocks(d, "resource", "aws_iam_role_policy")]
    attachments = [(n, b) for _, n, b in blocks(d, "resource", "aws_iam_role_policy_attachment")]

    # The API role: only what its one inline policy grants, plus the X-Ray managed policy.
    api_pols = [b for n, b in role_policies if "aws_iam_role.api." in str(one(b.get("role")))]
    check(len(api_pols) == 1 and one(api_pols[0].get("policy")) == "${data.aws_iam_policy_document.api.json}",
          "the API role has exactly one inline policy, data.aws_iam_policy_document.api")
    api_att = [one(b.get("policy_arn")) for n, b in attachments if "aws_iam_role.api." in str(one(b.get("role")))]
    check(all(str(a).endswith(":policy/AWSXRayDaemonWriteAccess") for a in api_att),
          "the API role's managed policies are only AWSXRayDaemonWriteAccess (no data access)", str(api_att))
    bad = []
    for st in docs.get("api", []):
        acts = set(st["actions"])
        if st["effect"] != "Allow":
            continue
        if any("*" in a for a in acts):
            bad.append(f"{st['sid']}: wildcard action {sorted(acts)}")
        s3 = {a for a in acts if a.startswith("s3:")}
        other = acts - s3
        if s3 - {"s3:GetObject", "s3:ListBucket"}:
            bad.append(f"{st['sid']}: S3 actions beyond GetObject/ListBucket: {sorted(s3)}")
        if "s3:GetObject" in s3 and not all(r.endswith("/curated/*") for r in st["resources"]):
            bad.append(f"{st['sid']}: GetObject outside curated/: {st['resources']}")
        if "s3:ListBucket" in s3:
            prefixes = [v for c in st["conditions"] if c["variable"] == "s3:prefix" for v in c["values"]]
            if not prefixes or not all(p.startswith("curated/") for p in prefixes):
                bad.append(f"{st['sid']}: ListBucket not limited to s3:prefix curated/: {prefixes}")
        if s3 and other:
            bad.append(f"{st['sid']}: mixes S3 and other actions")
        for a in other:
            if a in ("logs:CreateLogStream", "logs:PutLogEvents"):
                if not all('log_group_arns[\\"api\\"]' in r or 'log_group_arns["api"]' in r for r in st["resources"]):
                    bad.append(f"{st['sid']}: logs beyond the API's own log group: {st['resources']}")
            elif a == "kms:Decrypt":
                if st["resources"] != ["${module.kms.key_arn}"]:
                    bad.append(f"{st['sid']}: kms:Decrypt beyond the stack key: {st['resources']}")
            else:
                bad.append(f"{st['sid']}: action not allowed for the API role: {a}")
    check(docs.get("api") and not bad,
          "API role: s3:GetObject/s3:ListBucket on curated/ only (+ own logs, env decryption); nothing else",
          "; ".join(bad))

    # Pipeline worker: lake prefixes and its two secrets only.
    bad = []
    for st in docs.get("pipeline_worker", []):
        for a in st["actions"]:
            if a.startswith("s3:"):
                if a == "s3:ListBucket":
                    continue
                if not all("module.lake.data_prefixes" in r or re.search(r"/(raw|cleaned|rejects|curated|state)/\*$", r)
                           for r in st["resources"]):
                    bad.append(f"{st['sid']}: {a} beyond the lake prefixes")
            elif a.startswith("secretsmanager:"):
                if a not in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"):
                    bad.append(f"{st['sid']}: {a}")
            elif a not in ("kms:Decrypt", "logs:CreateLogStream", "logs:PutLogEvents"):
                bad.append(f"{st['sid']}: unexpected action {a}")
    check(docs.get("pipeline_worker") and not bad,
          "pipeline worker: lake raw/ cleaned/ rejects/ curated/ state/ + its secrets only", "; ".join(bad))

    # Administrator: Step Functions, logs, alarms; raw/ and rejects/ read; no cleaned/curated/secrets.
    bad = []
    for st in docs.get("admin", []):
        for a in st["actions"]:
            if a.startswith("secretsmanager:") or a.startswith("kms:") or a.startswith("lambda:") or a.startswith("iam:"):
                bad.append(f"{st['sid']}: {a}")
            if a.startswith("s3:"):
                if a not in ("s3:GetObject", "s3:ListBucket"):
                    bad.append(f"{st['sid']}: write {a}")
                objects = [r for r in st["resources"] if "/" in r.replace("${module.lake.bucket_arn}", "")]
                prefixes = [v for c in st["conditions"] if c["variable"] == "s3:prefix" for v in c["values"]]
                if a == "s3:GetObject" and not all(re.search(r"/(raw|rejects)/\*$", r) for r in objects):
                    bad.append(f"{st['sid']}: GetObject beyond raw/ and rejects/: {objects}")
                if a == "s3:ListBucket" and (not prefixes or not all(p.startswith(("raw/", "rejects/")) for p in prefixes)):
                    bad.append(f"{st['sid']}: ListBucket beyond raw/ and rejects/: {prefixes}")
    check(docs.get("admin") and not bad,
          "administrator: Step Functions + logs + raw/ rejects/ read; no cleaned/, curated/, secret or key", "; ".join(bad))


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
    """The field names of CURATED_SCHEMA in crates/domain/src/schema.rs, in order."""
    text = (ROOT / "crates" / "domain" / "src" / "schema.rs").read_text(encoding="utf-8")
    m = re.search(r"pub static CURATED_SCHEMA\b.*?vec!\[(.*?)\n\s*\],", text, re.S)
    return re.findall(r'Field::new\("([a-z_0-9]+)"', m.group(1)) if m else []


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
          str([f"{f.relative_to(ROOT)}:{n}" for f, n in versions]))
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
                    bad.append(f"{f.relative_to(ROOT)}:{i}")
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
    gen = Path(__file__).resolve().parent / "gen_asl.py"
    if not gen.exists():
        return
    out = subprocess.run([sys.executable, str(gen)], capture_output=True, text=True).stdout
    check(json.loads(out) == json.loads(ASL.read_text(encoding="utf-8")),
          "statemachine.asl.json equals scripts/infra/gen_asl.py's output (regenerate after editing either)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--allow-missing-functions", action="store_true")
    ap.add_argument("--no-checkov", action="store_true")
    ap.add_argument("--venv-bin", default=str(Path(sys.executable).parent))
    args = ap.parse_args()

    tf = parse_all_tf()
    check_fmt()
    invoked = check_asl(tf, args.allow_missing_functions)
    check_generator()
    if invoked is not None:
        check_functions(tf, invoked, args.allow_missing_functions)
    check_iam(tf)
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
