#!/usr/bin/env python3
"""Negative self-test of the IAM rules of check_infra.py (run by `scripts/infra-check.sh --self-test`).

Each case copies infra/ to a temporary directory, breaks one thing on purpose (a stage role that
gets a secret, an attached managed policy, states:* for the administrator, a secret without its
resource policy, a stage role without its unconditioned s3:ListBucket of the lake, the CA
bundle layer on another function than extract, the administrator invoking another function than
erase, the erase function without its entry in local.function_grants, ...), runs check_infra.py
--no-checkov --infra <copy>, and expects it to fail with a message naming the rule. The copy is `terraform fmt`-ed after each edit when terraform is installed, so only the
broken rule fails. Exit status 1 when a case does not behave; the last line is 'N passed, N failed'.
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = Path(__file__).resolve().parent / "check_infra.py"

MAIN = "main.tf"
ERASE_GRANTS = '''    erase = {
      secrets = ["mongodb"]
      bucket  = ["s3:ListBucketVersions"]
      lake = {
        read   = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
        write  = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
        delete = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
        purge  = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]
      }
    }
'''
ERASE = "erasure.tf"
SEPARATE_ERASE_ROLE = '''resource "aws_iam_role" "erase" {
  name               = "${local.prefix}-${var.environment}-eraser"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "erase" {
  statement {
    sid       = "ReadArchiveSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.mongodb.arn]
  }
}

resource "aws_iam_role_policy" "erase" {
  name   = "eraser"
  role   = aws_iam_role.erase.id
  policy = data.aws_iam_policy_document.erase.json
}
'''
ERASE_INVOKE = '''    actions   = ["lambda:InvokeFunction"]
    resources = [local.function_arns["erase"]]
'''
VPC_ATTACHMENT = '''
resource "aws_iam_role_policy_attachment" "score_vpc" {
  role       = aws_iam_role.function["score"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}
'''
S3_FULL_ATTACHMENT = '''
resource "aws_iam_role_policy_attachment" "publish_s3" {
  role       = aws_iam_role.function["publish"].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonS3FullAccess"
}
'''
SECRET_POLICY = '''resource "aws_secretsmanager_secret_policy" "database" {
  for_each            = local.database_secret_arns
  secret_arn          = each.value
  policy              = data.aws_iam_policy_document.database_secret[each.key].json
  block_public_policy = true
}
'''
LIST_LAKE = '''    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [module.lake.bucket_arn]
'''
PREFIX_CONDITION = '''    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["curated/", "curated/*"]
    }
'''
ENV_VIA_LAMBDA = '''    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }
'''

# (what is broken, [(file under infra/, old text, new text)], text expected in a FAIL line or None: must pass)
CASES = [
    ("transform gets the PostgreSQL secret",
     [(MAIN, '    transform = {\n      secrets = []', '    transform = {\n      secrets = ["postgres"]')],
     "(ReadPostgresSecret): secret(s) ['postgres'] beyond none"),
    ("extract gets the MongoDB secret too",
     [(MAIN, 'secrets = ["postgres"] #', 'secrets = ["postgres", "mongodb"] #')],
     "secret(s) ['mongodb'] beyond ['postgres']"),
    ("archive loses its secret",
     [(MAIN, '    archive = {\n      secrets = ["mongodb"] #', '    archive = {\n      secrets = [] #')],
     "lacks its secret"),
    ("score gets AWSLambdaVPCAccessExecutionRole attached (logs and ec2 on \"*\")",
     [(MAIN, "# Each database secret:", VPC_ATTACHMENT + "\n# Each database secret:")],
     'Resource "*" for'),
    ("publish gets a managed policy the checker does not know",
     [(MAIN, "# Each database secret:", S3_FULL_ATTACHMENT + "\n# Each database secret:")],
     "is not one the checker knows"),
    ("the state machine gets AWSXRayDaemonWriteAccess back (GetSamplingStatisticSummaries on \"*\")",
     [("modules/state_machine/main.tf", 'resource "aws_cloudwatch_log_group" "state_machine" {',
       'resource "aws_iam_role_policy_attachment" "state_machine_xray" {\n  role       = aws_iam_role.state_machine.name\n'
       '  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"\n}\n\n'
       'resource "aws_cloudwatch_log_group" "state_machine" {')],
     "xray:GetSamplingStatisticSummaries"),
    ("function network interfaces on Resource \"*\"",
     [(MAIN, '    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]\n'
             '    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]',
       '    actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]\n'
       '    resources = ["*"]')],
     'Resource "*" for'),
    ("score may write the commit point",
     [(MAIN, '"state/runs/run=*/bucket-*.json",       # the bucket record',
       '"curated/_latest.json", "state/runs/run=*/bucket-*.json", # the bucket record')],
     "write 'curated/_latest.json' beyond"),
    ("transform may read the lease",
     [(MAIN, '"raw/run=*/deletions.json",      # plan:', '"state/lease.json", "raw/run=*/deletions.json", # plan:')],
     "read 'state/lease.json' beyond"),
    # Listing the lake: every function role and the API role list the lake bucket with no
    # condition (S3 answers 404, not 403, for a missing key only then), and no other bucket.
    ("the stage roles lose their lake ListBucket",
     [(MAIN, "  statement {\n" + LIST_LAKE + "  }\n", "", 1)],
     "secrets ['postgres']: lacks s3:ListBucket on the lake bucket without condition"),
    ("the stage roles list the lake only under an s3:prefix again (403 for a missing key)",
     [(MAIN, LIST_LAKE, LIST_LAKE + PREFIX_CONDITION.replace('["curated/", "curated/*"]', '["state/*", "raw/*"]'), 1)],
     "secrets ['postgres']: ListLake: s3:ListBucket with conditions"),
    ("the stage roles list the artifacts bucket too",
     [(MAIN, LIST_LAKE, LIST_LAKE.replace("[module.lake.bucket_arn]",
                                          '[module.lake.bucket_arn, "arn:${local.partition}:s3:::${module.lake.artifacts_bucket_name}"]'), 1)],
     "s3:ListBucket on ['${module.lake.bucket_arn}', 'arn:"),
    ("publish reads every object of the lake (<lake>/*)",
     [(MAIN, '"state/runs/run=*/plan.json",\n', '"*",\n')],
     "read '*' beyond"),
    ("the API loses its lake ListBucket",
     [(MAIN, "  statement {\n" + LIST_LAKE + "  }\n\n  statement {\n    sid       = \"ReadCurated\"",
       "  statement {\n    sid       = \"ReadCurated\"")],
     "API role: s3:GetObject on curated/ only, s3:ListBucket of the lake bucket (+ own logs, env decryption, X-Ray); "
     "nothing else: lacks s3:ListBucket on the lake"),
    ("the API lists the lake only under curated/ again (403 before the first publish)",
     [(MAIN, LIST_LAKE + "  }\n\n  statement {\n    sid       = \"ReadCurated\"",
       LIST_LAKE + PREFIX_CONDITION + "  }\n\n  statement {\n    sid       = \"ReadCurated\"")],
     "ListLake: s3:ListBucket with conditions [('StringLike', 's3:prefix', ['curated/', 'curated/*'])]"),
    ("administrator gets states:*",
     [(MAIN, '"states:StopExecution", "states:RedriveExecution", "states:ListMapRuns",',
       '"states:*", "states:StopExecution", "states:RedriveExecution", "states:ListMapRuns",')],
     "wildcard action states:*"),
    ("administrator gets logs:*",
     [(MAIN, '"logs:StartQuery", "logs:GetLogGroupFields",', '"logs:StartQuery", "logs:GetLogGroupFields", "logs:*",')],
     "wildcard action logs:*"),
    ("administrator may change the retention of the logs",
     [(MAIN, '"logs:StartQuery", "logs:GetLogGroupFields",', '"logs:StartQuery", "logs:GetLogGroupFields", "logs:PutRetentionPolicy",')],
     "logs:PutRetentionPolicy"),
    ("administrator may delete a log group",
     [(MAIN, '"logs:StartQuery", "logs:GetLogGroupFields",', '"logs:StartQuery", "logs:GetLogGroupFields", "logs:DeleteLogGroup",')],
     "logs:DeleteLogGroup"),
    ("administrator may update the state machine",
     [(MAIN, '"states:StartExecution", "states:ListExecutions", "states:DescribeStateMachine"',
       '"states:StartExecution", "states:ListExecutions", "states:DescribeStateMachine", "states:UpdateStateMachine"')],
     "states:UpdateStateMachine"),
    ("administrator cannot redrive any more",
     [(MAIN, '"states:StopExecution", "states:RedriveExecution",', '"states:StopExecution",')],
     "lacks operator actions"),
    ("the database secrets lose their resource policy",
     [(MAIN, SECRET_POLICY, "")],
     "has a resource policy"),
    ("the PostgreSQL secret's policy lets the administrator read it too",
     [(MAIN, "values   = [for f, g in local.function_grants : aws_iam_role.function[f].arn if contains(g.secrets, each.key)]",
       "values   = concat([for f, g in local.function_grants : aws_iam_role.function[f].arn if contains(g.secrets, each.key)], [aws_iam_role.admin.arn])")],
     "database secret postgres"),
    ("the functions decrypt their environment without kms:ViaService",
     [(MAIN, ENV_VIA_LAMBDA, "", 1)],
     "kms:Decrypt without kms:ViaService"),
    ("the key policy no longer keeps secrets' ciphertext to Secrets Manager",
     [("modules/kms/main.tf", 'variable = "kms:EncryptionContext:SecretARN"', 'variable = "kms:EncryptionContext:Other"')],
     "key policy"),
    ("the stages share extract's role",
     [(MAIN, "role_arn               = aws_iam_role.function[each.key].arn",
       'role_arn               = aws_iam_role.function["extract"].arn')],
     "role of its own"),
    ("the API runs with publish's role",
     [(MAIN, "role_arn             = aws_iam_role.api.arn", 'role_arn             = aws_iam_role.function["publish"].arn')],
     "role of its own"),
    # The PostgreSQL CA bundle: a layer of extract alone, named by extract's REVIEWS_PG_SSLROOTCERT;
    # the secret TTL for the functions that read a secret.
    ("extract loses REVIEWS_PG_SSLROOTCERT",
     [(MAIN, "      REVIEWS_PG_SSLROOTCERT", "      # REVIEWS_PG_SSLROOTCERT")],
     "extract: REVIEWS_PG_SSLROOTCERT is None, not the layer's mounted '/opt/postgres-ca/ca-bundle.pem'"),
    ("extract's REVIEWS_PG_SSLROOTCERT names another path than the layer's",
     [(MAIN, '"/opt/postgres-ca/ca-bundle.pem"\n', '"/opt/ca-bundle.pem"\n')],
     "extract: REVIEWS_PG_SSLROOTCERT is '/opt/ca-bundle.pem'"),
    ("extract loses the CA layer",
     [(MAIN, "    extract   = [aws_lambda_layer_version.postgres_ca.arn]", "    extract   = []")],
     "extract: layers [] do not include the CA layer"),
    ("score gets the CA layer too",
     [(MAIN, "    score     = [aws_lambda_layer_version.score_runtime.arn]",
       "    score     = [aws_lambda_layer_version.score_runtime.arn, aws_lambda_layer_version.postgres_ca.arn]")],
     "score: gets the PostgreSQL CA layer"),
    ("the API gets the CA layer and REVIEWS_PG_SSLROOTCERT",
     [(MAIN, "  role_arn             = aws_iam_role.api.arn\n",
       "  role_arn             = aws_iam_role.api.arn\n  layer_arns           = [aws_lambda_layer_version.postgres_ca.arn]\n"),
      (MAIN, "    REVIEWS_CORS_ORIGIN  = module.storefront.url\n",
       '    REVIEWS_CORS_ORIGIN  = module.storefront.url\n    REVIEWS_PG_SSLROOTCERT = "/opt/postgres-ca/ca-bundle.pem"\n')],
     "api: gets the PostgreSQL CA layer (only extract connects to PostgreSQL); api: has REVIEWS_PG_SSLROOTCERT"),
    ("the CA layer zip puts the bundle elsewhere",
     [(MAIN, '    filename = "postgres-ca/ca-bundle.pem"', '    filename = "ca-bundle.pem"')],
     "data.archive_file packs var.postgres_ca_bundle"),
    ("archive loses REVIEWS_SECRET_TTL_SECS",
     [(MAIN, "      REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name\n"
             "      REVIEWS_SECRET_TTL_SECS = tostring(var.secret_ttl_seconds)\n",
       "      REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name\n", 1)],
     "archive: REVIEWS_SECRET_TTL_SECS is None"),
    ("publish gets REVIEWS_SECRET_TTL_SECS",
     [(MAIN, "    publish   = local.common_env\n",
       "    publish   = merge(local.common_env, { REVIEWS_SECRET_TTL_SECS = tostring(var.secret_ttl_seconds) })\n")],
     "publish: has REVIEWS_SECRET_TTL_SECS but reads no secret"),
    # The erase function (infra/erasure.tf): an entry of local.function_grants like the stages'.
    ("erase reads the PostgreSQL secret too",
     [(MAIN, ERASE_GRANTS, ERASE_GRANTS.replace('secrets = ["mongodb"]', 'secrets = ["mongodb", "postgres"]'))],
     "secret(s) ['postgres'] beyond ['mongodb']"),
    ("erase runs with archive's role",
     [(ERASE, 'aws_iam_role.function["erase"].arn', 'aws_iam_role.function["archive"].arn')],
     "role of its own"),
    ("erase without its entry in local.function_grants (no role of its own)",
     [(MAIN, ERASE_GRANTS, "")],
     'its role ${aws_iam_role.function["erase"].arn} does not exist'),
    ("erase gets a separate role again (outside local.function_grants)",
     [(ERASE, 'role_arn     = aws_iam_role.function["erase"].arn', 'role_arn     = aws_iam_role.erase.arn'),
      (ERASE, "module \"erase_function\" {", SEPARATE_ERASE_ROLE + "\nmodule \"erase_function\" {")],
     "aws_iam_role.erase (ReadArchiveSecret): secret(s) ['mongodb'] beyond none"),
    ("erase cannot delete under state/ (its journal, the erased list's old versions)",
     [(MAIN, 'delete = ["raw/*", "rejects/*", "cleaned/*", "curated/*", "state/*"]',
       'delete = ["raw/*", "rejects/*", "cleaned/*", "curated/*"]')],
     "delete misses the lake's data prefixes ['state/']"),
    ("erase cannot find the versions to purge (no s3:ListBucketVersions)",
     [(MAIN, ERASE_GRANTS, ERASE_GRANTS.replace('bucket  = ["s3:ListBucketVersions"]', 'bucket  = []'))],
     "lacks s3:ListBucketVersions on the lake bucket"),
    ("transform purges earlier versions too",
     [(MAIN, "    transform = {\n      secrets = []\n      bucket  = []\n",
       '    transform = {\n      secrets = []\n      bucket  = ["s3:ListBucketVersions"]\n'),
      (MAIN, "        delete = [ # remove_stale_files:", '        purge = ["cleaned/run=*/*.parquet"]\n        delete = [ # remove_stale_files:')],
     "LakePurge: purge 'cleaned/run=*/*.parquet' beyond nothing"),
    ("erase loses REVIEWS_SECRET_TTL_SECS",
     [(MAIN, '    erase = merge(local.common_env, {\n      REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name\n'
             '      REVIEWS_SECRET_TTL_SECS = tostring(var.secret_ttl_seconds)\n',
       '    erase = merge(local.common_env, {\n      REVIEWS_MONGO_SECRET_ID = aws_secretsmanager_secret.mongodb.name\n')],
     "erase: REVIEWS_SECRET_TTL_SECS is None"),
    ("erase gets the CA layer",
     [(ERASE, "  environment          = local.stage_env[\"erase\"]\n",
       "  environment          = local.stage_env[\"erase\"]\n  layer_arns           = [aws_lambda_layer_version.postgres_ca.arn]\n")],
     "erase: gets the PostgreSQL CA layer"),
    # The administrator starts erasures: lambda:InvokeFunction of the erase function, nothing else of Lambda.
    ("administrator may invoke another function than erase",
     [(MAIN, ERASE_INVOKE, ERASE_INVOKE.replace('[local.function_arns["erase"]]',
                                                '[local.function_arns["erase"], local.function_arns["extract"]]'))],
     "lambda:InvokeFunction on ['${local.function_arns[\"extract\"]}']"),
    ("administrator gets lambda:*",
     [(MAIN, ERASE_INVOKE, ERASE_INVOKE.replace('["lambda:InvokeFunction"]', '["lambda:*"]'))],
     "StartErasure: lambda:* (the administrator's only Lambda action"),
    ("administrator may update the erase function's code",
     [(MAIN, ERASE_INVOKE, ERASE_INVOKE.replace('["lambda:InvokeFunction"]', '["lambda:InvokeFunction", "lambda:UpdateFunctionCode"]'))],
     "StartErasure: lambda:UpdateFunctionCode"),
    ("administrator cannot start an erasure",
     [(MAIN, "  statement {\n    sid       = \"StartErasure\"\n" + ERASE_INVOKE + "  }\n", "")],
     "lacks lambda:InvokeFunction of the erase function"),
    ("administrator reads every log but the erase function's",
     [(MAIN, '[for arn in values(local.log_group_arns) : "${arn}:*"]',
       '[for s, arn in local.log_group_arns : "${arn}:*" if s != "erase"]')],
     "reads no log of the function(s) ['archive', 'erase'"),
]


def run_case(name, edits, expected, python):
    with tempfile.TemporaryDirectory(prefix="infra-selftest-") as tmp:
        copy = Path(tmp) / "infra"
        shutil.copytree(ROOT / "infra", copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
        for edit in edits:
            rel, old, new = edit[:3]
            count = edit[3] if len(edit) > 3 else -1
            f = copy / rel
            if old is None:
                f.write_text(new, encoding="utf-8")
                continue
            text = f.read_text(encoding="utf-8")
            if old not in text:
                return False, f"the text to break is no longer in infra/{rel}: {old[:80]!r}"
            f.write_text(text.replace(old, new, count), encoding="utf-8")
        tf = shutil.which("terraform") or shutil.which("tofu")
        if tf:
            subprocess.run([tf, "fmt", "-recursive", str(copy)], capture_output=True)
        proc = subprocess.run([python, str(CHECK), "--no-checkov", "--infra", str(copy)], capture_output=True, text=True)
        fails = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
        if expected is None:
            return proc.returncode == 0, "; ".join(fails) or proc.stderr[-300:]
        hit = [line for line in fails if expected in line]
        where = hit[0].find(expected) if hit else 0
        return proc.returncode == 1 and bool(hit), (hit[0][max(0, where - 90):where + 110] if hit else f"no FAIL mentions {expected!r}: {fails or proc.stderr[-300:]}")


def main():
    python = sys.executable
    passed = failed = 0
    for name, edits, expected in CASES:
        good, detail = run_case(name, edits, expected, python)
        want = "passes" if expected is None else "fails"
        if good:
            passed += 1
            print(f"ok    {name}: the check {want}" + (f": ...{detail}..." if expected else ""))
        else:
            failed += 1
            print(f"FAIL  {name}: the check should {want[:-1]}: {detail}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
